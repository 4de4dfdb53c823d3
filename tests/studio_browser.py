"""Studio in a real browser, shared by the browser test modules: Debian's Chromium driven by
Playwright (`browser`, `shots` are fixtures in conftest.py, one per module), a `Visit` that
records every HTML page and console error, a webhook receiver on loopback (`webhook_receiver`),
and the checks every page must pass, accessibility
included (`axe_violations`: axe-core, a pinned devDependency of service/studio/package.json,
injected with `page.evaluate`, so the page's CSP stays as it is served).

Without Chromium (or Playwright) the browser tests skip with the reason `browser_missing` gives;
without axe-core (`npm ci --prefix service/studio`), `axe_violations` skips its test and says why.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parent.parent / "service" / "studio" / "node_modules" / "axe-core" / "axe.min.js"
# Runs in the page: axe over the whole document, its violations of the given impacts, each
# with the CSS selectors of the nodes it failed on.
AXE_RUN = """async (impacts) => {
  const result = await window.axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => impacts.includes(v.impact)).map(v => (
    {id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(" "))}));
}"""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def browser_missing() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium): Studio's browser tests skip"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]'): Studio's browser tests skip"
    return None


class Visit:
    """A browser context that records every HTML page served and every console error."""

    def __init__(self, browser, studio, viewport=None):
        self.context = browser.new_context(viewport=viewport or {"width": 1280, "height": 860}, accept_downloads=True)
        self.page = self.context.new_page()
        self.base = studio.url + "/studio"
        self.html: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("response", self._response)

    def _response(self, response) -> None:
        if "text/html" in (response.headers.get("content-type") or ""):
            try:
                self.html.append(response.text())
            except Exception:  # noqa: BLE001 - a redirect has no body
                pass

    def sign_in(self, key: str) -> None:
        page = self.page
        page.goto(self.base + "/login")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/studio/(?!login).*"))

    def shot(self, folder: Path, name: str) -> None:
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def no_key_in(pages: list[str], *keys: str) -> None:
    for key in keys:
        secret = key.split("_", 2)[-1]
        assert not [html for html in pages if key in html or secret in html], "an API key appeared in served HTML"


def all_images_have_alt(page) -> None:
    missing = page.eval_on_selector_all("img", "els => els.filter(e => !(e.getAttribute('alt') || '').trim()).length")
    assert missing == 0


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of `impacts` on the page as it is now: `{id, impact, help,
    targets}` each (targets: the failing nodes' CSS selectors). axe is evaluated in the page
    through the DevTools protocol (`page.evaluate`), never as a script tag, so Studio's CSP is
    neither changed nor tripped. Skips the calling test when axe-core is not installed."""
    if not AXE.is_file():
        import pytest

        pytest.skip(f"axe-core is not installed at {AXE} (npm ci --prefix service/studio): the accessibility "
                    "check skips")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;typeof window.axe")
    return page.evaluate(AXE_RUN, list(impacts))


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list]]:
    """A platform's webhook endpoint on loopback: (its URL, the JSON bodies posted so far), each
    answered 204. A receiver of its own per call, so no two modules share what they received."""
    got: list = []

    class Hooks(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", got
    finally:
        server.shutdown()
        server.server_close()
