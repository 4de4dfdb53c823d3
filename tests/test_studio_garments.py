"""Studio's garments, poses, gallery and edit flow in a real browser (issue 30, items 1, 4 and 7).

A brand's team uploads packshots (drawn here with PIL) by the file input and by a drop on the
form, sees each garment's thumbnail and category, picks one on Generate (a picker of
thumbnails, with pose presets as pictures) and generates with it; opens the gallery, finds
that generation by its filters and follows its links (verify the kept file, "use in a job",
"new seed", "edit this"); paints a mask on the kept generation and edits it: what lies
outside the painted area is kept. Hostile uploads (not an image, a decompression bomb, an
oversized file, a wrong CSRF token) each get a clear message, never a 500; a form refused
comes back with the input as typed; a tenant without a consented twin gets guidance.

On the session's served demo (`served_demo`: this module adds a key of its own to the demo
tenant, and a tenant of its own without consent; it changes no existing key or twin), with
Chromium and Playwright as in conftest.py and tests/studio_browser.py; without them the
browser test skips.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import re
import secrets
import struct
import zlib
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.studio_browser import Visit, all_images_have_alt, axe_violations, no_key_in

pytestmark = pytest.mark.slow
TWIN = "demo-cleo"
DROP = """async ([data, name, type, selector]) => {
  const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type}));
  const form = document.querySelector(selector);
  for (const kind of ["dragenter", "dragover", "drop"]) {
    form.dispatchEvent(new DragEvent(kind, {dataTransfer: transfer, bubbles: true, cancelable: true}));
  }
}"""


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def packshot(colour: tuple[int, int, int], size=(320, 400)) -> bytes:
    """A garment on white, as a flat-lay packshot: a T-shirt's outline filled with `colour`."""
    width, height = size
    image = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(image)
    body = [(0.30, 0.20), (0.42, 0.14), (0.58, 0.14), (0.70, 0.20), (0.86, 0.36), (0.76, 0.44), (0.70, 0.38),
            (0.70, 0.88), (0.30, 0.88), (0.30, 0.38), (0.24, 0.44), (0.14, 0.36)]
    draw.polygon([(x * width, y * height) for x, y in body], fill=colour, outline=(40, 40, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A tiny PNG whose header declares width x height pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def team(served_demo):
    """A key of this module's own for the demo tenant, and a tenant of its own with no twin."""
    url, admin = served_demo["url"], bearer(served_demo["admin"])

    def mint(body: dict) -> str:
        minted = httpx.post(url + "/v1/admin/keys", headers=admin, timeout=60, json={"requests_per_minute": 6000, **body})
        assert minted.status_code == 201, minted.text
        return minted.json()["token"]

    bare = f"bare-{secrets.token_hex(3)}"
    made = httpx.post(url + "/v1/admin/tenants", headers=admin, timeout=60, json={"tenant_id": bare, "name": "Bare Ltd"})
    assert made.status_code == 201, made.text
    return SimpleNamespace(url=url, admin=served_demo["admin"],
                           key=mint({"tenant_id": "demo", "scopes": ["generate", "verify"], "name": "garments test"}),
                           bare=mint({"tenant_id": bare, "scopes": ["generate"], "name": "bare"}))


def signed_in(url: str, key: str) -> tuple[httpx.Client, str]:
    """An HTTP client with a Studio session, and the session's CSRF token."""
    http = httpx.Client(base_url=url, timeout=120)
    login = http.get("/studio/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    assert http.post("/studio/login", data={"api_key": key, "csrf_token": token}).status_code == 303
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/studio/garments").text).group(1)
    return http, csrf


def alert_of(html: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</div>', html, re.S)
    assert found, html[:2000]
    return re.sub(r"<[^>]+>|\s+", " ", found.group(1)).strip()


def accessible(page) -> None:
    violations = axe_violations(page)
    assert violations == [], violations
    all_images_have_alt(page)


def mean_difference(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> float:
    first = np.asarray(a.convert("RGB").crop(box), dtype=np.float32)
    second = np.asarray(b.convert("RGB").crop(box), dtype=np.float32)
    return float(np.abs(first - second).mean())


def test_upload_generate_find_in_the_gallery_verify_and_edit(browser, team, shots):
    visit = Visit(browser, SimpleNamespace(url=team.url))
    page = visit.page
    shirt, skirt = packshot((40, 90, 170)), packshot((190, 60, 50), size=(300, 300))
    shirt_id, skirt_id = hashlib.sha256(shirt).hexdigest(), hashlib.sha256(skirt).hexdigest()
    failed: list[tuple[int, str]] = []  # every answer of 400 or more the pages got
    page.on("response", lambda r: failed.append((r.status, urlsplit(r.url).path)) if r.status >= 400 else None)
    console: list[tuple[str, str]] = []  # console errors and where they came from
    page.on("console", lambda m: console.append((m.text, urlsplit(m.location.get("url") or "").path))
            if m.type == "error" else None)
    try:
        visit.sign_in(team.key)
        page.locator("nav").get_by_role("link", name="Garments").click()
        page.wait_for_url(re.compile(r".*/studio/garments$"))

        # by the file input
        page.get_by_label("Garment image").set_input_files(
            files=[{"name": "linen-shirt.png", "mimeType": "image/png", "buffer": shirt}])
        page.get_by_label("Category", exact=True).select_option("tops")
        page.get_by_role("button", name="Upload").click()
        card = page.locator(f"#garment-{shirt_id}")
        card.wait_for()
        assert card.locator("[data-field=category]").inner_text() == "tops"
        assert card.locator("[data-field=name]").inner_text() == "linen-shirt"
        assert "chosen by your team" in card.locator("[data-field=chosen-by]").inner_text()

        # by a drop on the form
        page.get_by_label("Category", exact=True).select_option("bottoms")
        page.evaluate(DROP, [base64.b64encode(skirt).decode(), "pleated-skirt.png", "image/png", "form[data-garment-upload]"])
        page.locator(f"#garment-{skirt_id} [data-field=category]").wait_for()
        assert page.locator(f"#garment-{skirt_id} [data-field=category]").inner_text() == "bottoms"

        # a dropped file that is not an image: its message, and nothing listed
        page.evaluate(DROP, [base64.b64encode(b"not a picture at all").decode(), "notes.png", "image/png",
                             "form[data-garment-upload]"])
        refusal = page.locator("[data-upload-status] [role=alert]")
        refusal.wait_for()
        assert "send a PNG, JPEG or WebP image" in refusal.inner_text() and "unsupported_image" in refusal.inner_text()
        assert page.locator("#garment-list > li").count() == 2

        # thumbnails load (drawn from the stored images), and the list reads the same after a reload
        page.reload()
        for asset_id in (shirt_id, skirt_id):
            thumb = page.locator(f"#garment-{asset_id} img")
            thumb.wait_for()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
        assert page.locator(f"#garment-{skirt_id} [data-field=category]").inner_text() == "bottoms"
        accessible(page)
        visit.shot(shots, "garments")

        # a category changed on its card
        page.get_by_label("Category of pleated-skirt").select_option("one-pieces")
        page.locator(f"#garment-{skirt_id}").get_by_role("button", name="Save").click()
        page.locator(f"#garment-{skirt_id}[data-category=one-pieces]").wait_for()

        # Generate: the garment picker and the pose pictures
        page.locator("nav").get_by_role("link", name="Generate").click()
        picker = page.locator("#garment-picker")
        assert picker.locator(f"label[for=pick-{shirt_id}] img").get_attribute("alt") == "linen-shirt"
        assert page.locator("label[for=pose-walking] img").get_attribute("src").endswith("/poses/walking.png")
        assert re.fullmatch(r"Portrait 4:5 \(\d+×\d+\)", page.locator("#size option[value=portrait_4_5]").inner_text())
        assert page.locator("#num_images option").first.inner_text() == "1 image"
        page.get_by_label("Twin").select_option(TWIN)
        page.get_by_label("Prompt").fill("studio photo, linen shirt")
        page.get_by_label("Size").select_option("preview_256")
        page.get_by_label("Steps").fill("2")
        page.locator(f"label[for=pick-{shirt_id}]").click()
        page.locator("label[for=pose-front]").click()
        accessible(page)
        page.get_by_role("button", name="Generate").click()
        page.locator("figure.result img").wait_for(timeout=120_000)
        generation_id = page.locator("[data-field=generation_id]").inner_text()
        seed = page.locator("[data-field=seed]").inner_text()
        assert page.locator("[data-field=count]").inner_text().startswith("1 image ·")
        job_link = urlsplit(page.locator("[data-link=job]").get_attribute("href"))
        assert job_link.path == "/studio/jobs/new" and parse_qs(job_link.query) == {
            "twin_id": [TWIN], "twin": [TWIN], "garment": [shirt_id], "prompt": ["studio photo, linen shirt"],
            "pose": ["front"], "seed": [seed]}
        again = parse_qs(urlsplit(page.locator("[data-link=new-seed]").get_attribute("href")).query)
        assert again["garment"] == [shirt_id] and again["pose"] == ["front"] and "seed" not in again
        assert page.locator("[data-link=edit]").get_attribute("href").endswith(f"/edit?generation={generation_id}")
        all_images_have_alt(page)
        visit.shot(shots, "generate-garment")

        # the audit record names the garment's sha256 and category: the API's generation
        records = httpx.get(team.url + "/v1/admin/audit/records", headers=bearer(team.admin), timeout=60,
                            params={"generation_id": generation_id})
        assert records.status_code == 200, records.text
        [made] = [r for r in records.json()["records"] if r.get("event") == "generation"]
        assert made["conditioning"]["garments"][0] == {"sha256": shirt_id, "category": "tops", "strength": 0.8}
        assert made["conditioning"]["pose"] == {"preset": "front"}
        assert made["route"] == "/studio/generate" and made["twin_id"] == TWIN

        # "New seed" comes back prefilled (garment and pose checked), without the seed
        page.locator("[data-link=new-seed]").click()
        assert page.locator(f"#pick-{shirt_id}").is_checked() and page.locator("#pose-front").is_checked()
        assert page.get_by_label("Prompt").input_value() == "studio photo, linen shirt"
        assert page.locator("#seed").input_value() == ""

        # the gallery finds it, by twin and by day; another twin's filter does not
        page.locator("nav").get_by_role("link", name="Gallery").click()
        item = page.locator(f"#gen-{generation_id}")
        item.wait_for()
        today = dt.datetime.now(dt.timezone.utc).date().isoformat()
        page.get_by_label("Twin").select_option(TWIN)
        page.get_by_label("From").fill(today)
        page.get_by_label("To").fill(today)
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(re.compile(r".*/studio/gallery\?.*twin=demo-cleo.*"))
        assert item.count() == 1 and item.locator("[data-field=twin]").inner_text() == "Cleo (demo twin)"
        assert item.locator("[data-field=prompt]").inner_text() == "studio photo, linen shirt"
        assert item.locator("[data-link=edit]").get_attribute("href").endswith(f"/edit?generation={generation_id}")
        job_href = item.locator("[data-link=job]").get_attribute("href")
        assert parse_qs(urlsplit(job_href).query)["garment"] == [shirt_id]
        builder = page.request.get(team.url + job_href)  # the job builder, its first row filled in
        assert builder.status == 200 and shirt_id in builder.text() and TWIN in builder.text()
        assert "seed" not in parse_qs(urlsplit(item.locator("[data-link=new-seed]").get_attribute("href")).query)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=item.locator("img").first.element_handle())
        accessible(page)
        page.goto(visit.base + f"/gallery?twin=demo-ava&from={today}")
        assert page.locator(f"#gen-{generation_id}").count() == 0

        # verify the kept file: the same generation
        page.goto(visit.base + f"/gallery?twin={TWIN}")
        page.locator(f"#gen-{generation_id} [data-link=verify]").click()
        page.wait_for_url(re.compile(r".*/studio/gallery/verify$"))
        assert page.locator("[data-field=generation_id]").inner_text() == generation_id
        assert page.locator("[data-field=watermark]").inner_text().startswith("found")

        # edit this: paint the middle of the picture, describe the change
        page.goto(visit.base + f"/gallery?twin={TWIN}")
        page.locator(f"#gen-{generation_id} [data-link=edit]").click()
        page.wait_for_url(re.compile(rf".*/studio/edit\?generation={generation_id}$"))
        canvas = page.locator("#mask-canvas")
        canvas.wait_for()
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.40)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.65, box["y"] + box["height"] * 0.60, steps=8)
        page.mouse.up()
        assert page.locator("#mask-painted").is_checked()
        page.get_by_label("Describe the change").fill("a red wool jumper")
        page.locator("#edit-steps").fill("2")
        accessible(page)
        source = Image.open(io.BytesIO(page.request.get(team.url + page.locator("#edit-source").get_attribute("src")).body()))
        page.get_by_role("button", name="Edit", exact=True).click()
        page.locator("figure.result img, [role=alert]").first.wait_for(timeout=120_000)
        assert page.locator("[role=alert]").count() == 0, page.locator("[role=alert]").first.inner_text()
        edited_id = page.locator("[data-field=generation_id]").inner_text()
        assert re.fullmatch(r"[0-9a-f]{32}", edited_id) and edited_id != generation_id
        data_url = page.locator("figure.result img").get_attribute("src")
        edited = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
        assert edited.size == source.size
        side = source.size[0]
        corner, middle = (0, 0, side // 6, side // 6), (int(side * .42), int(side * .45), int(side * .58), int(side * .55))
        assert mean_difference(source, edited, corner) < 8  # outside the painting: kept (and re-marked)
        assert mean_difference(source, edited, middle) > 8  # the painted area: repainted
        visit.shot(shots, "edit")

        # the gallery shows the edit, naming its source
        page.goto(visit.base + f"/gallery?twin={TWIN}")
        assert generation_id[:12] in page.locator(f"#gen-{edited_id}").inner_text()
        assert page.locator("#gallery-items > li").first.get_attribute("id") == f"gen-{edited_id}"  # newest first
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")  # lazy images load, for the picture
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        page.evaluate("() => window.scrollTo(0, 0)")
        visit.shot(shots, "gallery")
        assert not [e for e in visit.errors if "Content Security Policy" in e or "Refused" in e], visit.errors
        assert failed == [(415, "/studio/garments")], failed  # the dropped file that is not an image
        # no console error but that refusal's (and Chromium's own favicon request, which Studio does not serve)
        assert [c for c in console if c[1] not in ("/studio/garments", "/favicon.ico")] == [], console
        no_key_in(visit.html, team.key, team.admin)
    finally:
        visit.close()


def test_hostile_uploads_get_clear_messages_never_a_500(team, served_demo):
    http, csrf = signed_in(team.url, team.key)
    try:
        before = http.get("/studio/garments").text.count('class="card garment"')

        def upload(data: bytes, *, token: str = csrf, headers=None, category="tops", name="x.png"):
            return http.post("/studio/garments", data={"csrf_token": token, "category": category, "view": "list"},
                             files={"file": (name, data, "image/png")}, headers=headers or {})

        plain = upload(b"%PDF-1.7 this is not an image")
        assert plain.status_code == 415 and "send a PNG, JPEG or WebP image" in alert_of(plain.text)
        assert 'value="tops" selected' in plain.text  # the form as it was
        bomb = upload(png_bomb())
        assert bomb.status_code == 413 and "too many pixels" in alert_of(bomb.text)
        limit = 20 * 1024**2  # ATELIER_MAX_ASSET_BYTES: the served demo's default
        big = upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * limit)
        assert big.status_code == 413 and f"the limit is {limit}" in alert_of(big.text)
        huge = upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * (limit + 256 * 1024))  # past the edge's cap: refused unread
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
        forged = upload(packshot((10, 10, 10)), token=csrf[::-1])
        assert forged.status_code == 403 and "did not come from Studio" in alert_of(forged.text)
        category = upload(packshot((20, 20, 20)), category="capes")
        assert category.status_code == 422 and "choose a garment category" in alert_of(category.text)
        fragment = upload(b"GIF89a not supported", headers={"HX-Request": "true", "X-CSRF-Token": csrf})
        assert fragment.status_code == 415 and fragment.text.lstrip().startswith('<div class="message error" role="alert">')
        assert http.get("/studio/garments").text.count('class="card garment"') == before  # none listed

        # without JavaScript: an upload goes back to the list, the garment in view
        shoe = packshot((90, 60, 30), size=(256, 256))
        posted = upload(shoe, name="C:\\shoots\\brown-boot.png", category="shoes")
        assert posted.status_code == 303
        assert posted.headers["location"] == f"/studio/garments#garment-{hashlib.sha256(shoe).hexdigest()}"
        assert ">brown-boot</h3>" in http.get("/studio/garments").text

        # a generation refused without JavaScript comes back with the input as typed, the refusal at its field
        refused = http.post("/studio/generate", data={"csrf_token": csrf, "twin_id": TWIN, "prompt": "  ",
                                                      "size": "portrait_4_5", "steps": "7", "territory": "fr"})
        assert refused.status_code == 422 and "write a prompt" in alert_of(refused.text)
        assert 'id="error-prompt"' in refused.text and 'aria-invalid="true" aria-describedby="error-prompt"' in refused.text
        assert 'value="portrait_4_5" selected' in refused.text and 'value="7"' in refused.text
        assert 'value="fr"' in refused.text
        bounded = http.post("/studio/generate", data={"csrf_token": csrf, "twin_id": TWIN, "prompt": "coat",
                                                      "size": "preview_256", "steps": "9"})
        assert bounded.status_code == 422 and "allows at most 2" in alert_of(bounded.text)  # ATELIER_MAX_STEPS
        assert ">coat</textarea>" in bounded.text

        # unknown gallery filters and pages: a message beside the filters, not a 500
        wrong = http.get("/studio/gallery", params={"from": "yesterday"})
        assert wrong.status_code == 422 and "YYYY-MM-DD" in alert_of(wrong.text)
        assert http.get("/studio/edit", params={"generation": "0" * 32}).status_code == 404
    finally:
        http.close()


def test_a_tenant_without_a_twin_is_told_what_to_do(team):
    http, _ = signed_in(team.url, team.bare)
    try:
        page = http.get("/studio/generate")
        assert page.status_code == 200
        assert "No twin is available to" in page.text and "Ask for a licence" in page.text
        assert 'id="twin_id"' not in page.text  # no empty dropdown
        gallery = http.get("/studio/gallery")
        assert gallery.status_code == 200 and "No generations yet" in gallery.text
        edit = http.get("/studio/edit")
        assert edit.status_code == 200 and "No kept generation yet" in edit.text
        assert "No garments yet" in http.get("/studio/garments").text
    finally:
        http.close()


def test_the_garment_list_keeps_a_category_per_garment_and_goes_with_a_purged_asset(tmp_path):
    """The list beside the assets (no server): newest first, per tenant, a category each."""
    from service.assets import AssetNotFound, AssetService
    from service.assets.store import AssetStore, LocalBlobs
    from service.errors import InvalidRequest

    assets = AssetService(AssetStore(LocalBlobs(tmp_path)), max_bytes=10**6, max_pixels=10**7)
    garments = assets.garments
    shirt = assets.add("acme", "garment", packshot((40, 90, 170)))
    skirt = assets.add("acme", "garment", packshot((190, 60, 50)))
    garments.put(shirt, "tops", name="C:\\shoots\\Linen Shirt.PNG")
    garments.put(skirt, "bottoms", name="skirt.png")
    assert [e.asset_id for e in garments.entries("acme")] == [skirt.asset_id, shirt.asset_id]  # newest first
    assert garments.get("acme", shirt.asset_id).name == "Linen Shirt"
    assert garments.entries("rival") == [] and garments.get("rival", shirt.asset_id) is None  # another tenant's
    changed = garments.set_category("acme", shirt.asset_id, "outerwear")
    assert (changed.category, changed.chosen_by) == ("outerwear", "person")
    assert garments.get("acme", shirt.asset_id).category == "outerwear"
    with pytest.raises(InvalidRequest):
        garments.set_category("acme", shirt.asset_id, "capes")
    mask = assets.add("acme", "mask", packshot((255, 255, 255)))
    with pytest.raises(InvalidRequest):
        garments.put(mask, "tops")  # only garments are listed
    garments.remove("acme", skirt.asset_id)
    assert [e.asset_id for e in garments.entries("acme")] == [shirt.asset_id]
    assert assets.info("acme", skirt.asset_id).kind == "garment"  # off the list, still an asset
    with pytest.raises(AssetNotFound):
        garments.remove("acme", skirt.asset_id)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    assert assets.store.purge(dt.timedelta(days=1), now=later) == 3  # the retention rule: assets and records
    assert garments.entries("acme") == [] and not list(tmp_path.rglob("*.json"))


def test_a_classifier_chooses_the_category_only_when_asked_and_is_always_shown():
    from service.errors import InvalidRequest
    from service.studio.garments import classify

    gate = SimpleNamespace(classifier=None, threshold=0.3)
    assert classify(gate, b"", "tops") == ("tops", "person", None)
    with pytest.raises(InvalidRequest):
        classify(gate, b"", "auto")  # nothing to ask
    gate.classifier = SimpleNamespace(classify=lambda data: {"tops": 0.2, "swimwear": 0.35, "bottoms": 0.45})
    assert classify(gate, b"", "auto") == ("swimwear", "classifier", "swimwear")  # a restricted category, as consent reads it
    assert classify(gate, b"", "bottoms") == ("bottoms", "person", "swimwear")  # the team's choice, the classifier's beside it
    gate.classifier = SimpleNamespace(classify=lambda data: {"tops": 0.7, "swimwear": 0.1, "sleepwear": 0.2})
    assert classify(gate, b"", "auto") == ("tops", "classifier", "tops")
    gate.classifier = SimpleNamespace(classify=lambda data: {"sleepwear": 0.9, "tops": 0.1})
    with pytest.raises(InvalidRequest):
        classify(gate, b"", "auto")  # sleepwear: no generation can declare it, so the team chooses
