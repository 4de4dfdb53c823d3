"""`/` and `/docs` load nothing from another origin: Debian's Chromium, driven by Playwright,
opens them on a served Atelier (the session's `served_demo`) and records every request the
pages make.

`/docs` is the API reference rendered by Swagger UI, vendored through npm
(service/gateway/apidocs) and served by the gateway under a Content-Security-Policy that
names no other origin; `/` redirects to it (BentoML's own page loaded Google Tag Manager).
The page must render the contract (title, version, the bearer scheme's Authorize button)
with no CSP violation. Without Chromium or Playwright the browser test skips with the
reason; the headers test still runs over plain HTTP.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import httpx
import pytest

from service import __version__
from service.gateway.docs_page import ASSETS

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def browser_missing() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium): the docs page's browser test skips"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]'): the docs page's browser test skips"
    return None


def test_the_docs_page_is_served_under_a_csp_of_this_origin_only(served_demo):
    root = httpx.get(served_demo["url"] + "/", timeout=30)
    assert root.status_code == 307 and root.headers["location"] == "/docs"
    page = httpx.get(served_demo["url"] + "/docs", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "http" not in csp and "*" not in csp and "unsafe" not in csp
    assert "googletagmanager" not in page.text and "//" not in page.text.replace("<!doctype", "")
    for name in ASSETS:
        if not ASSETS[name][0].is_file():
            pytest.fail(f"{ASSETS[name][0]} is missing: run `make install` (npm ci in service/gateway/apidocs)")
        asset = httpx.get(served_demo["url"] + f"/docs/assets/{name}", timeout=30)
        assert asset.status_code == 200 and asset.content == ASSETS[name][0].read_bytes()
    for probe in ("/docs/assets/package.json", "/docs/assets/../../service.py", "/docs/assets/swagger-ui.js.map"):
        response = httpx.get(served_demo["url"] + probe, timeout=30)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", probe


@pytest.fixture(scope="module")
def browser():
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.mark.parametrize("start", ["/", "/docs"])
def test_the_pages_request_nothing_from_another_origin(served_demo, browser, start):
    origin = urlsplit(served_demo["url"])
    requests: list[str] = []
    violations: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: violations.append(message.text)
                if "Content Security Policy" in message.text or "Refused to" in message.text else None)
        page.goto(served_demo["url"] + start, wait_until="networkidle")
        page.wait_for_selector(".swagger-ui .info .title", timeout=60_000)
        title = page.inner_text(".swagger-ui .info .title")
        assert "Atelier" in title and __version__ in title
        assert page.locator("button.authorize").count() == 1  # the bearer scheme, for "Try it out"
        page.wait_for_selector(".opblock-tag", timeout=30_000)
        assert page.locator(".opblock-tag").count() >= 6  # the operations by tag: generate, jobs, admin...
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert requests, "the page made no request at all"
    foreign = [url for url in requests
               if not url.startswith("data:") and (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)]
    assert foreign == [], foreign
    assert any(url.endswith("/docs.json") for url in requests)
    assert violations == [], violations
