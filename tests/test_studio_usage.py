"""Studio's usage for a brand and for the talent, names in the header, Verify's audit number, and
axe-core's accessibility check, in a real browser on the session's served demo.

- A brand's `usage` key: the header names its tenant by display name; its Usage page shows its
  own images only (the demo tenant's image of the same twin never), generated, delivered and
  rejected counted separately (5, 3, 1) with each column explained, twins by display name and
  uses in words; its CSV holds its own rows only; asking for another tenant is a 403 page.
- A talent key: the header names the person (`GET /v1/talent/me`), not the brand's tenant; its
  Usage page breaks the twin's images down by brand (display names) and use, month by month.
- Verify's report shows the number of the generation's audit record (the `seq` the Audit page
  lists for it).
- axe-core (a devDependency of service/studio, injected with `page.evaluate`) reports no
  serious or critical violation on the sign-in, usage (brand and talent), account, verify,
  audit and twins pages; no console error, no CSP violation, images with alt text, no key in
  any page.

The brand and its images are tests/usage_support.py's. Chromium and Playwright as in
conftest.py (`browser`, `shots`) and tests/studio_browser.py; without them these tests skip.
"""

from __future__ import annotations

import base64
import re
from types import SimpleNamespace

import httpx
import pytest

from tests.studio_browser import Visit, all_images_have_alt, axe_violations, no_key_in
from tests.usage_support import EXPECTED, TWIN, bearer, brand_usage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def usage(served_demo):
    return brand_usage(served_demo)


def accessible(visit: Visit, name: str) -> None:
    """The page as it is now has no serious or critical axe violation, and every image has alt text."""
    found = axe_violations(visit.page)
    assert found == [], f"{name}: {found}"
    all_images_have_alt(visit.page)


def failures(visit: Visit) -> list[str]:
    """Every response of 400 or more the page got ("status url"), and where each console error
    came from ("console url"), recorded from now on: what a failed `clean` shows."""
    failed: list[str] = []
    visit.page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    visit.page.on("console", lambda m: failed.append(f"console {m.location['url']}") if m.type == "error" else None)
    return failed


def clean(visit: Visit, failed: list[str], *keys: str) -> None:
    """No console error (CSP violations included) but those of the failed responses the test
    asked for, and no key in any page."""
    asked = {"403": "?tenant=demo", "422": "?twin=x"}  # the refusals the brand's test asks for
    errors = [e for e in visit.errors
              if not any(f"status of {status}" in e and any(query in f for f in failed) for status, query in asked.items())]
    assert errors == [], (errors, failed)
    no_key_in(visit.html, *keys)


def test_a_brand_sees_its_own_usage_counted_three_ways(browser, usage, shots):
    visit = Visit(browser, SimpleNamespace(url=usage.url))
    page, failed = visit.page, failures(visit)
    try:
        page.goto(visit.base + "/login")
        accessible(visit, "sign-in")
        visit.sign_in(usage.brand)
        assert page.locator("[data-field=who] strong").inner_text() == usage.name  # the tenant's display name
        assert "Usage" in [a.inner_text() for a in page.locator("nav a").all()]
        page.goto(visit.base + "/twins")
        accessible(visit, "twins")

        page.goto(visit.base + "/usage")
        assert page.get_by_role("heading", level=1).inner_text() == "Your usage"
        totals = {k: page.locator(f"[data-total={k}] strong").inner_text() for k in EXPECTED}
        assert totals == {k: str(v) for k, v in EXPECTED.items()}
        legend = page.locator("#usage-columns").inner_text()
        assert all(word in legend for word in ("Generated", "Delivered", "Rejected", "reviewer rejected"))
        rows = page.locator("table.usage tbody tr").all()
        assert rows and {r.get_attribute("data-tenant") for r in rows} == {usage.tenant}  # never another tenant's
        assert {r.get_attribute("data-use") for r in rows} == {"ecommerce", "social_ads"}
        table = page.locator("table.usage").inner_text()
        assert "Cleo" in table and TWIN not in table and "social ads" in table  # names, not ids
        assert "lookbook" not in page.content()  # the demo tenant's image of the same twin
        assert page.locator("th", has_text="Brand").count() == 0  # one brand: its own
        visit.shot(shots, "usage-brand")
        accessible(visit, "usage (brand)")

        csv = page.request.get(visit.base + "/usage.csv?period=month")
        lines = csv.text().splitlines()
        assert csv.ok and lines[0] == "day,tenant,twin_id,use,generations,images,delivered,rejected"
        assert lines[1:] and all(f",{usage.tenant}," in line for line in lines[1:])

        refused = page.goto(visit.base + "/usage?tenant=demo")
        assert refused.status == 403
        assert "own tenant" in page.get_by_role("alert").inner_text()
        hostile = page.goto(visit.base + "/usage?twin=x%27%20OR%20%271%27%3D%271")
        assert hostile.status == 422 and "twin" in page.get_by_role("alert").inner_text()

        page.goto(visit.base + "/statement")  # what the brand owes this month: the licence's rate
        assert page.get_by_role("heading", level=1).inner_text() == "What your brand owes"
        owed = page.locator("[data-total=amount-EUR] strong").inner_text()
        assert owed.endswith(" EUR") and float(owed.split()[0]) == 2.0  # 5 images at 0.40
        owed = page.locator("table.statement tbody tr").all()
        assert owed and {r.get_attribute("data-brand") for r in owed} == {usage.tenant}
        assert "Cleo" in page.locator("table.statement").inner_text()
        visit.shot(shots, "statement-brand")
        accessible(visit, "statement (brand)")

        page.goto(visit.base + "/detect")  # the public check, as every viewer sees it
        accessible(visit, "detect")

        page.goto(visit.base + "/account")
        assert page.locator("[data-field=brand]").inner_text().startswith(usage.name)
        accessible(visit, "account")
        clean(visit, failed, usage.brand)
    finally:
        visit.close()


def test_the_talent_sees_their_name_and_usage_by_brand_and_use(browser, usage, shots):
    visit = Visit(browser, SimpleNamespace(url=usage.url))
    page, failed = visit.page, failures(visit)
    try:
        visit.sign_in(usage.talent)
        who = page.locator("[data-field=who]").inner_text()
        assert page.locator("[data-field=who] strong").inner_text() == usage.person  # the person, not the tenant
        assert "· demo" not in who and "Demo brand" not in who
        page.goto(visit.base + "/usage")
        assert page.get_by_role("heading", level=1).inner_text() == "Where your likeness was used"
        brands = page.locator("[data-brand]")
        assert brands.locator(f"text={usage.name}").count() == 1  # by brand, by display name
        ours = page.locator(f"[data-brand='{usage.tenant}'] strong").inner_text()
        assert ours == str(EXPECTED["images"])
        rows = page.locator("table.usage tbody tr").all()
        assert {r.get_attribute("data-twin") for r in rows} == {TWIN}  # only this person's likeness
        ours = [r for r in rows if r.get_attribute("data-tenant") == usage.tenant]
        assert {r.get_attribute("data-use") for r in ours} == {"ecommerce", "social_ads"}
        assert all(re.fullmatch(r"\d{4}-\d{2}", r.locator("td").first.inner_text()) for r in rows)  # month by month
        assert all(usage.name in r.inner_text() for r in ours)
        assert {r.get_attribute("data-tenant") for r in rows} >= {usage.tenant, "demo"}
        visit.shot(shots, "usage-talent-brands")
        accessible(visit, "usage (talent)")

        page.goto(visit.base + "/statement")  # the person's side of the same rows
        assert page.get_by_role("heading", level=1).inner_text() == "Your pay statement"
        paid = page.locator(f"table.statement tbody tr[data-brand='{usage.tenant}']").all()
        assert paid and all(re.search(r"\b0\.40? EUR", r.inner_text()) for r in paid)  # the licence's rate
        assert page.locator("table.statement tbody tr[data-brand='demo']").count() >= 1  # every brand's
        owed_to_person = page.locator("[data-total=amount-EUR] strong").inner_text()
        assert owed_to_person.endswith(" EUR") and float(owed_to_person.split()[0]) >= 2.0  # this brand's 2.00, at least
        visit.shot(shots, "statement-talent")
        accessible(visit, "statement (talent)")

        page.goto(visit.base + "/account")
        assert page.locator("[data-field=person]").inner_text() == usage.person
        accessible(visit, "account (talent)")
        clean(visit, failed, usage.talent)
    finally:
        visit.close()


def test_verify_shows_the_audit_record_number(browser, usage, shots, tmp_path):
    made = httpx.post(usage.url + "/v1/generate", headers=bearer(usage.demo), timeout=120,
                      json={"twin_id": TWIN, "prompt": "verify look", "use": "lookbook", "seed": 3, "width": 256,
                            "height": 256, "steps": 2}).json()
    image = tmp_path / "made.png"
    image.write_bytes(base64.b64decode(made["images"][0]["data_base64"]))
    records = httpx.get(usage.url + "/v1/admin/audit/records", headers=bearer(usage.admin), timeout=60,
                        params={"generation_id": made["generation_id"]}).json()["records"]
    [record] = [r for r in records if r["event"] == "generation"]

    visit = Visit(browser, SimpleNamespace(url=usage.url))
    page, failed = visit.page, failures(visit)
    try:
        visit.sign_in(usage.admin)
        page.goto(visit.base + "/verify")
        page.get_by_label(re.compile("^Image")).set_input_files(str(image))
        page.get_by_role("button", name="Verify").click()
        number = page.locator("[data-field=audit-seq]")
        number.wait_for(timeout=60_000)
        assert number.inner_text() == f"#{record['seq']}"
        assert page.locator("[data-field=generation_id]").inner_text() == made["generation_id"]
        visit.shot(shots, "verify-audit-number")
        accessible(visit, "verify")

        page.get_by_role("link", name="every record of this generation").click()
        page.locator("[data-event=generation]").wait_for()
        assert f"#{record['seq']}" in page.locator("[data-event=generation]").inner_text()  # the same number
        accessible(visit, "audit")
        clean(visit, failed, usage.admin)
    finally:
        visit.close()
