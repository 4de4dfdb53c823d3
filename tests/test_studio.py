"""Studio in a real browser: Debian's Chromium driven by Playwright against a served Atelier
(`bentoml serve`: the gateway and its renderer in its own process), delivering to a real S3
(SeaweedFS) and posting webhooks to a receiver on loopback.

Flows: sign in with the demo key, generate, watch the denoising steps, then the image and its
provenance; a 3-item job with review, two approved and one rejected, only the two delivered
and announced; verify the downloaded image; a talent key sees only its own twins' usage; a
verify-only key has no Generate page; signing out ends the session. Security: a form post
without its CSRF token is refused, the session cookie's flags, and no API key in any HTML
served. A screenshot of each page is saved (ATELIER_STUDIO_SCREENSHOTS names the folder;
default: this run's temporary directory).

Without Chromium (or Playwright) the browser tests skip with the reason; the streamed
progress test still runs against the served instance with a plain HTTP client.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from types import SimpleNamespace

import httpx
import pytest

from builds.serving import serve
from tests.conftest import snapshot_registry
from tests.studio_browser import Visit, all_images_have_alt, no_key_in, webhook_receiver

pytestmark = pytest.mark.slow
PREFIX = "studio-review"


@pytest.fixture(scope="module")
def hooks():
    with webhook_receiver() as (url, got):
        yield SimpleNamespace(url=url, got=got)


@pytest.fixture(scope="module")
def studio(demo_home, demo_keys, s3_server, hooks, tmp_path_factory):
    """One served Atelier for the module, on a private copy of the demo home, delivering to S3."""
    root = tmp_path_factory.mktemp("studio")
    home = root / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("cache", "registry.db*"))
    snapshot_registry(demo_home, home / "registry.db")
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
           "ATELIER_S3_ENDPOINT_URL": s3_server.endpoint_url, "ATELIER_S3_REGION": s3_server.region,
           "ATELIER_DEV_CALLBACKS": "1", "ATELIER_JOB_POLL_MS": "100", "ATELIER_WARMUP": "0"}
    with serve(home, root / "served", env=env) as served:
        admin = {"Authorization": f"Bearer {demo_keys['ATELIER_ADMIN_KEY']}"}
        answer = httpx.post(served.url + "/v1/admin/tenants/delivery", headers=admin, timeout=30, json={
            "tenant_id": "demo", "output_target": f"s3://{s3_server.bucket}/{PREFIX}", "webhook_url": hooks.url})
        assert answer.status_code == 200, answer.text
        yield served


def test_the_generate_stream_reports_each_denoising_step(studio, demo_keys):
    """Without a browser: sign in over HTTP and read the stream Studio's Generate page reads."""
    with httpx.Client(base_url=studio.url, timeout=120) as http:
        login = http.get("/studio/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        signed = http.post("/studio/login", data={"api_key": demo_keys["ATELIER_DEMO_KEY"], "csrf_token": token})
        assert signed.status_code == 303
        page = http.get("/studio/generate")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        form = {"csrf_token": csrf, "twin_id": "demo-ben", "prompt": "stream look", "size": "preview_256", "steps": "4"}
        with http.stream("POST", "/studio/generate/stream", data=form) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = re.findall(r"event: (\w+)\ndata: (.*)\n\n", "".join(response.iter_text()))
    steps = [json.loads(data)["step"] for name, data in events if name == "progress"]
    assert steps == [0, 1, 2, 3, 4]  # every step, from the renderer's process, through the gateway
    name, data = events[-1]
    assert name == "result" and re.fullmatch(r"[0-9a-f]{32}", json.loads(data)["generation_id"])


def test_sign_in_generate_with_live_progress_then_verify_the_download(browser, studio, demo_keys, shots, tmp_path):
    visit = Visit(browser, studio)
    page = visit.page
    try:
        page.goto(visit.base + "/login")
        page.keyboard.press("Tab")  # keyboard only: the skip link, then the key field
        assert page.evaluate("document.activeElement.className") == "skip"
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # visible focus
        visit.shot(shots, "login")
        page.get_by_label("API key").focus()
        page.keyboard.type(demo_keys["ATELIER_DEMO_KEY"])
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/studio/twins$"))
        assert page.get_by_role("heading", name="Twins").is_visible()
        # the demo twins (earlier tests may have given the demo tenant consent for more)
        assert all(page.locator(f"#twin-{twin}").count() == 1 for twin in ("demo-ava", "demo-ben", "demo-cleo"))
        assert "ecommerce" in page.locator("#twin-demo-ava").inner_text()
        visit.shot(shots, "twins")

        cookie = next(c for c in visit.context.cookies() if c["name"] == "atelier_studio")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/studio"
        assert not cookie["secure"]  # plain http on loopback; Secure whenever the request came over https
        assert page.evaluate("document.cookie") == ""  # not readable from script, nor kept in storage
        stored = page.evaluate("[...Object.keys(localStorage), ...Object.keys(sessionStorage)]")
        assert set(stored) <= {"htmx-current-path-for-history"}  # htmx keeps the path it is on; no page, no key

        page.get_by_role("link", name="Generate").click()
        page.evaluate("""() => { window.seen = []; new MutationObserver(() => window.seen.push(
            document.getElementById('gen-status').textContent)).observe(document.getElementById('gen-status'),
            {childList: true, characterData: true, subtree: true}); }""")
        page.get_by_label("Twin").select_option("demo-ava")
        page.get_by_label("Prompt").fill("studio photo, linen summer dress")
        page.get_by_label("Size").select_option("preview_256")
        page.get_by_label("Steps").fill("6")
        page.get_by_role("button", name="Generate").click()
        page.locator("figure.result img").wait_for(timeout=120_000)
        seen = page.evaluate("window.seen")
        assert any(re.fullmatch(r"Denoising: step [1-5] of 6", text) for text in seen)  # live steps...
        assert seen[-1].startswith("Done")  # ...then the image
        assert page.evaluate("document.getElementById('gen-progress').value") == 6
        generation_id = page.locator("[data-field=generation_id]").inner_text()
        watermark_id = page.locator("[data-field=watermark_id]").inner_text()
        assert re.fullmatch(r"[0-9a-f]{32}", generation_id) and re.fullmatch(r"[0-9a-f]{16}", watermark_id)
        assert page.locator("[data-field=c2pa]").inner_text() in ("Valid", "Trusted", "valid", "trusted")
        all_images_have_alt(page)
        visit.shot(shots, "generate")

        with page.expect_download() as download:
            page.get_by_role("link", name="Download PNG").click()
        saved = tmp_path / "downloaded.png"
        download.value.save_as(saved)

        page.get_by_role("link", name="Verify").click()
        page.get_by_label(re.compile("^Image")).set_input_files(str(saved))
        page.get_by_role("button", name="Verify").click()
        report = page.locator("#verify-report [data-field=generation_id]")
        report.wait_for()
        assert report.inner_text() == generation_id
        assert watermark_id in page.locator("#verify-report [data-field=watermark]").inner_text()
        assert page.locator("#verify-report [data-field=training_mining]").inner_text().startswith("not allowed")
        assert "paper consent record" in page.locator("#verify-report [data-field=licence]").inner_text()
        visit.shot(shots, "verify")

        refused = page.request.post(visit.base + "/jobs", form={"twin_id": "demo-ava", "prompts": "no token"},
                                    max_redirects=0)
        assert refused.status == 403 and "csrf_failed" in refused.text()  # CSRF: no token, no job
        page.goto(visit.base + "/nope")
        assert page.get_by_role("alert").is_visible() and "{" not in page.get_by_role("alert").inner_text()

        page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, portrait
        page.goto(visit.base + "/generate")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        visit.shot(shots, "generate-tablet")
        assert not [e for e in visit.errors if "Content Security Policy" in e or "Refused" in e]
        no_key_in(visit.html, demo_keys["ATELIER_DEMO_KEY"], demo_keys["ATELIER_ADMIN_KEY"])
    finally:
        visit.close()


def test_a_reviewed_job_delivers_and_announces_only_the_approved_images(browser, studio, hooks, demo_keys, s3_server,
                                                                       shots):
    visit = Visit(browser, studio)
    page = visit.page
    try:
        visit.sign_in(demo_keys["ATELIER_DEMO_KEY"])
        page.goto(visit.base + "/jobs")
        page.get_by_label("Twin").select_option("demo-cleo")
        page.get_by_label(re.compile("^Prompts")).fill("red wool coat\nlinen summer dress\nblack denim jacket")
        page.get_by_label("Size").select_option("preview_256")
        page.get_by_label("Steps").fill("2")
        page.get_by_label(re.compile("Review each image")).check()
        page.get_by_role("button", name="Submit job").click()
        page.wait_for_url(re.compile(r".*/studio/jobs/[0-9a-f]{32}$"))
        job_id = page.url.rsplit("/", 1)[-1]
        deadline = time.monotonic() + 120
        while page.locator("[data-status=awaiting_review]").count() < 3:
            assert time.monotonic() < deadline, "the items were never held for review"
            page.wait_for_timeout(500)
            if page.locator("[data-status=pending], [data-status=running]").count() == 0:
                page.reload()
        all_images_have_alt(page)
        assert page.locator("#item-0 img").get_attribute("loading") == "lazy"
        loaded = "[...document.images].every(i => i.complete && i.naturalWidth > 0)"  # the held images show
        for _ in range(100):  # (wait_for_function evaluates a string: the page's CSP refuses that, rightly)
            if page.evaluate(loaded):
                break
            page.wait_for_timeout(100)
        assert page.evaluate(loaded)
        visit.shot(shots, "job-review")
        listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=f"{PREFIX}/{job_id}/")
        assert not listed.get("Contents")  # held: nothing delivered before a decision

        page.get_by_role("button", name="Approve item 0").click()
        page.locator("#item-0[data-status=done]").wait_for()
        page.get_by_role("button", name="Reject item 1").focus()  # keyboard: focus, then Enter
        page.keyboard.press("Enter")
        page.locator("#item-1[data-status=rejected]").wait_for()
        page.get_by_role("button", name="Approve item 2").click()
        page.locator("[data-field=job-status]", has_text="completed").wait_for()
        visit.shot(shots, "job-decided")
        page.goto(visit.base + "/jobs")
        assert page.locator(f"[data-job='{job_id}']", has_text="completed").count() == 1
        visit.shot(shots, "jobs")

        s3 = s3_server.client()
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"{PREFIX}/{job_id}/")
                      .get("Contents", []) if o["Key"].endswith(".png"))
        assert keys == [f"{PREFIX}/{job_id}/0-0.png", f"{PREFIX}/{job_id}/2-0.png"]  # only the approved two
        deadline = time.monotonic() + 30
        while not [h for h in hooks.got if h["type"] == "job.completed" and h["data"]["job_id"] == job_id]:
            assert time.monotonic() < deadline, "no job.completed webhook"
            time.sleep(0.2)
        [hook] = [h for h in hooks.got if h["type"] == "job.completed" and h["data"]["job_id"] == job_id]
        assert [a["index"] for a in hook["data"]["approved"]] == [0, 2] and hook["data"]["rejected"] == [1]
        assert sorted(i["key"] for a in hook["data"]["approved"] for i in a["images"]) == keys
        no_key_in(visit.html, demo_keys["ATELIER_DEMO_KEY"])
    finally:
        visit.close()


def test_talent_sees_only_its_twins_usage_and_operators_see_usage_and_audit(browser, studio, demo_keys, shots):
    admin = {"Authorization": f"Bearer {demo_keys['ATELIER_ADMIN_KEY']}"}
    demo = {"Authorization": f"Bearer {demo_keys['ATELIER_DEMO_KEY']}"}
    for twin in ("demo-ben", "demo-ava"):
        made = httpx.post(studio.url + "/v1/generate", headers=demo, timeout=120,
                          json={"twin_id": twin, "prompt": "usage look", "width": 256, "height": 256, "steps": 2})
        assert made.status_code == 200
    generation_id = made.json()["generation_id"]
    minted = httpx.post(studio.url + "/v1/admin/keys", headers=admin, timeout=30,
                        json={"tenant_id": "demo", "scopes": ["talent"], "twin_ids": ["demo-ben"], "name": "Ben"}).json()

    talent = Visit(browser, studio)
    try:
        talent.sign_in(minted["token"])
        assert [a.inner_text() for a in talent.page.locator("nav a").all()] == ["Twins", "Licences", "Usage", "Statement", "Detect"]
        talent.page.goto(talent.base + "/usage")
        rows = talent.page.locator("table.usage tbody tr")
        assert rows.count() >= 1
        assert {r.get_attribute("data-twin") for r in rows.all()} == {"demo-ben"}  # never another person's likeness
        assert "demo-ava" not in talent.page.content()
        counted = talent.page.locator("#usage-counted").inner_text()  # says what its numbers are
        assert "any of Atelier's servers" in counted and "never counted" in counted
        talent.shot(shots, "usage-talent")
        csv = talent.page.request.get(talent.base + "/usage.csv")
        assert csv.ok and "demo-ben" in csv.text() and "demo-ava" not in csv.text()
        no_key_in(talent.html, minted["token"])
    finally:
        talent.close()

    operator = Visit(browser, studio)
    try:
        operator.sign_in(demo_keys["ATELIER_ADMIN_KEY"])
        operator.page.goto(operator.base + "/usage?period=day")
        twins = {r.get_attribute("data-twin") for r in operator.page.locator("table.usage tbody tr").all()}
        assert {"demo-ava", "demo-ben"} <= twins
        operator.shot(shots, "usage")
        operator.page.goto(operator.base + "/twins")
        assert operator.page.locator("#twin-demo-ava", has_text="Cache").count() == 1
        operator.page.goto(operator.base + "/audit")
        operator.page.get_by_label("Generation id").fill(generation_id)
        operator.page.get_by_role("button", name="Show records").click()
        operator.page.locator("[data-event=generation]").wait_for()
        assert "demo-ava" in operator.page.locator("[data-event=generation]").inner_text()
        operator.shot(shots, "audit")
        no_key_in(operator.html, demo_keys["ATELIER_ADMIN_KEY"])
    finally:
        operator.close()


def test_a_verify_only_key_has_no_generate_page_and_signing_out_ends_the_session(browser, studio, demo_keys, shots):
    admin = {"Authorization": f"Bearer {demo_keys['ATELIER_ADMIN_KEY']}"}
    minted = httpx.post(studio.url + "/v1/admin/keys", headers=admin, timeout=30,
                        json={"tenant_id": "demo", "scopes": ["verify"], "name": "checker"}).json()
    visit = Visit(browser, studio)
    page = visit.page
    try:
        visit.sign_in(minted["token"])
        assert [a.inner_text() for a in page.locator("nav a").all()] == ["Verify", "Detect"]
        response = page.goto(visit.base + "/generate")
        assert response.status == 403
        alert = page.get_by_role("alert")
        assert "lacks the 'generate' scope" in alert.inner_text() and "{" not in alert.inner_text()
        visit.shot(shots, "no-generate")

        session = next(c for c in visit.context.cookies() if c["name"] == "atelier_studio")
        page.goto(visit.base + "/verify")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r".*/studio/login$"))
        assert not [c for c in visit.context.cookies() if c["name"] == "atelier_studio"]
        visit.context.add_cookies([session])  # the old session id, replayed: it is over on the server too
        page.goto(visit.base + "/verify")
        assert page.url.endswith("/studio/login")
        no_key_in(visit.html, minted["token"])
    finally:
        visit.close()
