"""Studio's job builder and review at a glance (issue 30, items 2, 3 and 7 for jobs).

In a real browser (Debian's Chromium under Playwright) on the session's served demo
(`served_demo`: this module adds a brand tenant of its own, its key, its webhook receiver on
loopback and paper consent for two of the demo's twins, and never changes the demo's keys):
a brand without twins is told what to do; an empty quick job keeps its input and says
what is missing on its field; a hostile CSV comes back with each problem on its row
and column and the input kept; a 6-row CSV mixing two twins (some rows with a garment image)
is imported and submitted with a title; the job reads `awaiting review`; the lightbox shows an
image beside its packshot with its provenance; one item is rejected from the keyboard with a
reason, one approved with `a`, the rest with Approve all; the zip holds exactly the approved
images (each opens); the rejected item's `job.item.completed` carries the reason, and the API's
results show it. Every page: no CSP violation, no API key, alt text on every image, and no
serious or critical axe-core violation.

Without the browser, the CSV reader's bounds and refusals are checked in process.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
import zipfile
from types import SimpleNamespace

import httpx
import pytest
from PIL import Image

from service.studio import job_builder
from service.studio.job_builder import MAX_CSV_BYTES, MAX_ROWS, Choices, Row
from tests.studio_browser import Visit, all_images_have_alt, axe_violations, no_key_in, webhook_receiver

pytestmark = pytest.mark.slow
TWINS = ("demo-ava", "demo-cleo")
REASON = "The sleeve is cut off at the elbow"


# -- the CSV reader, in process ----------------------------------------------------------------------


def choices(asset: str = "a" * 64) -> Choices:
    twins = [{"id": "demo-ava", "display_name": "Ava (demo twin)"}, {"id": "demo-cleo", "display_name": "Cleo (demo twin)"}]
    return Choices.of(twins, {"brand_loft": ("loft", None)}, lambda asset_id: asset_id == asset,
                      [{"asset_id": asset, "name": "tee", "category": "tops"}])


def rows_and_problems(text: str | bytes) -> tuple[list[Row], list, list]:
    data = text.encode() if isinstance(text, str) else text
    rows, problems = job_builder.read_csv(data)
    return rows, problems, job_builder.check(rows, choices())


def test_the_csv_reader_bounds_the_file_and_names_each_hostile_cell():
    # the file: encoding, NUL, size, header, rows
    assert "not UTF-8" in rows_and_problems(b"sku,twin\nA,demo-ava\n\xff\xfe,x\n")[1][0].message
    assert "NUL" in rows_and_problems(b"sku,twin\nA\x00,demo-ava\n")[1][0].message
    assert "at most 256 KiB" in rows_and_problems(b"sku,twin\n" + b"A,demo-ava\n" * (MAX_CSV_BYTES // 10))[1][0].message
    assert "unknown column 'colour'" in rows_and_problems("sku,twin,colour\nA,demo-ava,red\n")[1][0].message
    assert "no 'twin' column" in rows_and_problems("sku,prompt\nA,coat\n")[1][0].message
    many = rows_and_problems("sku,twin,prompt\n" + "A,demo-ava,coat\n" * (MAX_ROWS + 1))
    assert len(many[0]) == MAX_ROWS and "more than 500 rows" in many[1][0].message
    # the cells: a formula, a line break, a scene in the prompt, an unknown twin, a huge cell (kept, cut)
    text = ("\ufeffSKU,Twin,Garments,Category,Scene,Prompt\n"
            "=HYPERLINK(\"http://x\"),demo-ava,,,,coat\n"
            "B,Cleo (demo twin),,,,\"red coat\nsecond line\"\n"
            "C,demo-ava,,,,\"linen dress, studio_white\"\n"
            "D,zoe,,,,coat\n"
            f"E,demo-ava,{'a' * 64},,brand_loft,{'x' * 5000}\n"
            "F,demo-cleo,,,STUDIO_WHITE,\n")
    rows, file_problems, problems = rows_and_problems(text)
    assert file_problems == []
    where = {(p.row, p.column): p.message for p in problems}
    assert "formula" in where[(1, "sku")] and rows[0].values["sku"] == '=HYPERLINK("http://x")'  # kept as typed
    assert "control character" in where[(2, "prompt")]
    assert "'studio_white' is a scene preset" in where[(3, "prompt")]
    assert "not a twin your brand may use" in where[(4, "twin")]
    assert "5000 characters" in where[(5, "prompt")] and len(rows[4].values["prompt"]) == 2000  # cut, kept
    assert (5, "category") not in where and rows[4].values["category"] == "tops"  # the listed garment's
    assert rows[1].values["twin"] == "demo-cleo" and rows[5].values["scene"] == "studio_white"  # names normalised
    assert set(where) == {(1, "sku"), (2, "prompt"), (3, "prompt"), (4, "twin"), (5, "prompt")}
    # a CSV Studio hands out never carries a formula; the template reads back clean
    assert [job_builder.csv_cell(v) for v in ("=1+1", "+a", "-b", "@c", "ok", None)] == ["'=1+1", "'+a", "'-b", "'@c", "ok", ""]
    template = job_builder.template_csv(choices().twins)
    rows, file_problems, problems = rows_and_problems(template)
    assert len(rows) == 2 and file_problems == [] and problems == []
    body, problems = job_builder.body_of(rows, title="AW26", steps=2, review=True, per_item=False)
    assert problems == [] and [i.twin_id for i in body.items] == ["demo-ava", "demo-cleo"] and body.title == "AW26"


# -- in the browser, on the served demo --------------------------------------------------------------


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def brand(served_demo):
    """A brand tenant of this module's own with a generate key and a webhook receiver on
    loopback; it has no twin yet (the test grants consent for two once it has seen the guidance)."""
    with webhook_receiver() as (hooks_url, got):
        url, admin = served_demo["url"], bearer(served_demo["admin"])
        tenant = f"maison-{secrets.token_hex(3)}"
        calls = [("/v1/admin/tenants", {"tenant_id": tenant, "name": "Maison Lumière"}),
                 ("/v1/admin/tenants/delivery", {"tenant_id": tenant,
                                                 "webhook_url": hooks_url})]
        for path, body in calls:
            answer = httpx.post(url + path, headers=admin, timeout=60, json=body)
            assert answer.status_code in (200, 201), answer.text
        minted = httpx.post(url + "/v1/admin/keys", headers=admin, timeout=60, json={
            "tenant_id": tenant, "scopes": ["generate", "verify"], "name": "catalogue team", "requests_per_minute": 6000})
        assert minted.status_code == 201, minted.text
        yield SimpleNamespace(url=url, tenant=tenant, key=minted.json()["token"], admin=served_demo["admin"],
                              demo=served_demo["demo"], home=served_demo["home"], hooks=got)


def grant_consent(brand) -> None:
    """Paper consent for TWINS naming the demo tenant (as the demo has it) and this module's brand."""
    for twin in TWINS:
        answer = httpx.post(brand.url + "/v1/admin/consent", headers=bearer(brand.admin), timeout=60, json={
            "twin_id": twin, "tenants": ["demo", brand.tenant], "uses": ["ecommerce", "lookbook", "social_ads"],
            "pay_rate_ref": "demo-rate-card", "recorded_by": "tests/test_studio_jobs.py"})
        assert answer.status_code == 201, answer.text


def upload_garment(brand) -> str:
    data = (brand.home / "demo" / "assets" / "garment-tshirt.png").read_bytes()
    answer = httpx.post(brand.url + "/v1/assets", headers=bearer(brand.key), timeout=60,
                        files={"file": ("tee.png", data, "image/png")}, data={"kind": "garment"})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["asset_id"]


def six_rows(garment: str) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["sku", "twin", "garments", "category", "scene", "pose", "size", "alt_text", "prompt"])
    writer.writerow(["AW26-TEE-WHITE-S", "demo-ava", garment, "tops", "studio_white", "front", "preview_256",
                     "Ava in the white tee, front", "a white cotton tee"])
    writer.writerow(["AW26-TEE-WHITE-M", "Cleo (demo twin)", garment, "tops", "studio_grey", "three-quarter",
                     "preview_256", "", "a white cotton tee"])
    writer.writerow(["AW26-COAT-RED", "demo-cleo", "", "", "street", "walking", "preview_256", "", "a red wool coat"])
    writer.writerow(["AW26-DRESS-LINEN", "demo-ava", "", "", "beach", "", "preview_256", "", "a linen summer dress"])
    writer.writerow(["AW26-KNIT-GREY", "demo-ava", "", "", "", "", "preview_256", "", "a grey knit jumper, studio"])
    writer.writerow(["AW26-SHIRT-BLUE", "demo-cleo", "", "", "lifestyle_home", "seated", "preview_256", "",
                     "a blue oxford shirt"])
    return out.getvalue()


HOSTILE = ("sku,twin,scene,prompt,size\n"
           "=HYPERLINK(\"http://evil.example\"),demo-ava,,a coat,preview_256\n"
           "AW26-B,demo-cleo,,\"a dress, studio_white\",preview_256\n"
           "AW26-C,nobody,,a shirt,preview_256\n")
LOADED = "[...document.images].every(i => i.complete && i.naturalWidth > 0)"


def wait_images(page) -> bool:
    for _ in range(100):  # (wait_for_function evaluates a string: the page's CSP refuses that, rightly)
        if page.evaluate(LOADED):
            return True
        page.wait_for_timeout(100)
    return False


def no_serious_axe(page, where: str) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{where}: {violations}"


def test_a_csv_job_mixing_twins_is_reviewed_in_the_lightbox_and_its_approved_images_download(
        browser, brand, shots, tmp_path):  # noqa: F811
    visit = Visit(browser, brand)
    page = visit.page
    try:
        visit.sign_in(brand.key)
        # a brand without usable twins is told what to do, and cannot submit
        page.goto(visit.base + "/jobs/new")
        assert "cannot use any twin yet" in page.locator("#no-twins").inner_text()
        assert page.get_by_role("button", name="Submit job").is_disabled()
        grant_consent(brand)
        garment = upload_garment(brand)

        # a quick job's empty form: the error on its field, the input kept (no error page)
        page.goto(visit.base + "/jobs")
        page.get_by_label(re.compile("^Title")).fill("Quick look")
        page.get_by_role("button", name="Submit job").click()
        assert "one prompt per line" in page.locator("#prompts-error").inner_text()
        assert page.get_by_label(re.compile("^Title")).input_value() == "Quick look"

        # a hostile CSV: every problem on its row and column, with the input kept
        page.goto(visit.base + "/jobs/new")
        assert page.locator("#no-twins").count() == 0
        (tmp_path / "hostile.csv").write_text(HOSTILE)
        page.get_by_label(re.compile("^Title")).fill("AW26 tees and knits")
        page.locator("#csv_file").set_input_files(str(tmp_path / "hostile.csv"))
        page.get_by_role("button", name="Import CSV").click()
        page.locator("#builder-errors").wait_for()
        summary = page.locator("#builder-errors").inner_text()
        assert "3 rows need attention" in summary and "Nothing was submitted" in summary
        assert "formula" in page.locator("#row-1-sku-error").inner_text()
        assert page.locator("#row-1-sku").input_value() == '=HYPERLINK("http://evil.example")'
        assert page.locator("#row-1-sku").get_attribute("aria-invalid") == "true"
        assert "scene preset" in page.locator("#row-2-prompt-error").inner_text()
        assert "not a twin your brand may use" in page.locator("#row-3-twin-error").inner_text()
        assert page.locator("#row-3-twin").input_value() == "nobody"  # kept, shown as not yours
        assert page.get_by_label(re.compile("^Title")).input_value() == "AW26 tees and knits"
        no_serious_axe(page, "builder with errors")
        visit.shot(shots, "job-builder-errors")
        page.get_by_role("button", name="Add a row").click()  # rows come and go in place, numbered again
        assert page.locator("tr[data-row]").count() == 4 and page.evaluate("document.activeElement.id") == "row-4-sku"
        page.get_by_role("button", name="Remove item 1").click()
        assert page.locator("tr[data-row]").count() == 3 and page.locator("#row-1-sku").input_value() == "AW26-B"

        # the 6-row CSV: two twins, garment images, scenes, poses; checked, then submitted
        (tmp_path / "aw26.csv").write_text(six_rows(garment))
        page.locator("#csv_file").set_input_files(str(tmp_path / "aw26.csv"))
        page.get_by_role("button", name="Import CSV").click()
        page.locator("#builder-notice").wait_for()
        assert "Imported 6 rows" in page.locator("#builder-notice").inner_text()
        assert page.locator("#builder-errors").count() == 0 and page.locator("tr[data-row]").count() == 6
        assert page.locator("#row-2-twin").input_value() == "demo-cleo"  # a display name read as its twin
        page.get_by_label("Steps").fill("2")
        page.get_by_label(re.compile("Announce each item")).check()
        assert page.get_by_label(re.compile("Review each image")).is_checked()
        no_serious_axe(page, "builder")
        visit.shot(shots, "job-builder")
        page.get_by_role("button", name="Submit job").click()
        page.wait_for_url(re.compile(r".*/studio/jobs/[0-9a-f]{32}$"))
        job_id = page.url.rsplit("/", 1)[-1]
        assert page.get_by_role("heading", level=1).inner_text().startswith("AW26 tees and knits")

        # the job reads as its truth: awaiting review once only the reviewer is waited on
        deadline = time.monotonic() + 180
        while page.locator("#job-items [data-status=awaiting_review]").count() < 6:
            assert time.monotonic() < deadline, "the items were never held for review"
            page.wait_for_timeout(500)
            if page.locator("#job-items [data-status=pending], #job-items [data-status=running]").count() == 0:
                page.reload()
        page.locator("[data-field=job-status]", has_text="awaiting review").wait_for()
        assert page.get_by_role("button", name="Approve all 6 items awaiting review").is_visible()
        assert wait_images(page)
        all_images_have_alt(page)
        no_serious_axe(page, "job awaiting review")

        # the lightbox: the result beside its packshot, with its provenance
        page.locator("#item-0 a.zoom").click()
        dialog = page.locator("#lightbox")
        dialog.locator("#item-view[data-index='0'] [data-field=packshot]").wait_for()
        assert wait_images(page)
        assert dialog.locator("[data-field=sku]").inner_text() == "AW26-TEE-WHITE-S"
        assert dialog.locator("[data-field=c2pa]").inner_text().lower() in ("valid", "trusted")
        assert re.fullmatch(r"[0-9a-f]{16}", dialog.locator("[data-field=watermark_id]").inner_text())
        no_serious_axe(page, "lightbox")
        page.screenshot(path=str(shots / "job-lightbox.png"))  # the viewport: the dialog is fixed in it
        # keyboard review: → to item 2, its reason typed, r rejects; the lightbox moves on; a approves
        page.keyboard.press("ArrowRight")
        dialog.locator("#item-view[data-index='1']").wait_for()
        page.keyboard.press("ArrowRight")
        dialog.locator("#item-view[data-index='2']").wait_for()
        assert dialog.locator("[data-field=packshot]").count() == 0 and "No packshot" in dialog.inner_text()
        dialog.get_by_label(re.compile("Reason for rejecting")).fill(REASON)
        dialog.locator("#item-view-title").focus()
        page.keyboard.press("r")
        dialog.locator("#item-view[data-index='3']").wait_for()  # the next item awaiting review
        page.locator("#item-2[data-status=rejected]").wait_for()
        page.keyboard.press("a")
        dialog.locator("#item-view[data-index='4']").wait_for()
        page.locator("#item-3[data-status=done]").wait_for()
        page.keyboard.press("Escape")
        assert not dialog.is_visible()
        assert page.locator("#item-2 [data-field=reason]").inner_text() == f"Rejected: {REASON}"

        page.get_by_role("button", name="Approve all 4 items awaiting review").click()
        page.locator("[data-field=job-status]", has_text="completed").wait_for(timeout=60_000)
        assert page.locator("[data-field=job-counts]").inner_text().endswith("5 approved · 1 rejected")
        visit.shot(shots, "job-approved")

        # the zip holds exactly the approved images, each one opens
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the approved images (zip)").click()
        saved = tmp_path / "approved.zip"
        download.value.save_as(saved)
        with zipfile.ZipFile(saved) as archive:
            names = sorted(archive.namelist())
            assert [int(n[:3]) for n in names] == [0, 1, 3, 4, 5], names
            assert names[0] == "000-AW26-TEE-WHITE-S-0.png"
            for name in names:
                with Image.open(io.BytesIO(archive.read(name))) as image:
                    image.load()
                    assert image.size == (256, 256)

        # the rejected item's webhook carries the reason; the API's results show it
        deadline = time.monotonic() + 60
        while not (item_events := [h for h in brand.hooks if h["type"] == "job.item.completed"
                                   and h["data"]["job_id"] == job_id and h["data"]["index"] == 2]):
            assert time.monotonic() < deadline, "no job.item.completed for the rejected item"
            time.sleep(0.2)
        assert item_events[0]["data"]["status"] == "rejected" and item_events[0]["data"]["reason"] == REASON
        results = httpx.get(brand.url + "/v1/jobs/get", headers=bearer(brand.key), timeout=60,
                            params={"job_id": job_id}).json()
        assert results["title"] == "AW26 tees and knits"
        assert {i["twin_id"] for i in results["items"]} == set(TWINS)  # a job that mixes twins
        assert results["items"][2]["rejection_reason"] == REASON and results["items"][0]["alt_text"] == "Ava in the white tee, front"

        page.goto(visit.base + "/jobs")
        row = page.locator(f"[data-job='{job_id}']")
        assert "AW26 tees and knits" in row.inner_text() and "1 rejected" in row.inner_text()
        no_serious_axe(page, "jobs")
        page.goto(visit.base + f"/jobs/{job_id}/items/2")  # an item's own page, as without JavaScript
        assert page.locator("[data-field=reason]").inner_text() == REASON
        no_serious_axe(page, "item page")
        assert not [e for e in visit.errors if "Content Security Policy" in e or "Refused" in e], visit.errors
        no_key_in(visit.html, brand.key, brand.admin, brand.demo)
    finally:
        visit.close()
