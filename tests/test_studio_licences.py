"""Studio's Licences pages in a real browser (issue 28): a brand asks for a licence in Studio,
the person signs in with their talent key, sees its terms in plain words and accepts it: the
browser makes an Ed25519 key (non-extractable, in IndexedDB), registers its public half and
signs; the signature the server keeps verifies offline. The brand's next generation is
admitted; the person revokes in Studio and the next one answers `403 licence_revoked`.

Also: every request the person's page sends holds only public values (the public key, the
signature, ids), nothing is loaded from another origin, no CSP violation, no API key in any
page; another browser is told that the registered key is not its own and may replace it; and
without JavaScript the page says that signing needs it.

On the session's served demo (`served_demo`, shared with the API contract tests: this module
only adds a tenant of its own and licences for it). Chromium and Playwright as in
conftest.py (`browser`, `shots`) and tests/studio_browser.py (`Visit`); without them these tests skip.
"""

from __future__ import annotations

import base64
import re
import secrets
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from service.licence_document import check_signature
from tests.studio_browser import Visit, axe_violations, no_key_in

pytestmark = pytest.mark.slow
TWIN = "demo-ben"
SMALL = {"width": 256, "height": 256, "steps": 2}
PURPOSE = "Product pages of the AW26 knitwear line on lumen.example"
# What the person's page may post, by route: ids, the decision, the public key, the signature.
POSTED = {"/studio/login": {"api_key", "csrf_token"}, "/studio/licences/signing-key": {"public_key"},
          "/studio/licences/decide": {"licence_id", "decision", "signature"},
          "/studio/licences/revoke": {"csrf_token", "licence_id"},
          "/studio/licences/end-twin": {"csrf_token", "twin_id"}}
STORED_KEYS = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("atelier-studio-signing", 1);
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const get = open.result.transaction("keys").objectStore("keys").getAll();
    get.onsuccess = async () => {
      const out = [];
      for (const record of get.result) {
        let exported = "exported";
        try { await crypto.subtle.exportKey("pkcs8", record.privateKey); } catch (e) { exported = e.name; }
        out.push({publicKey: record.publicKey, extractable: record.privateKey.extractable,
                  type: record.privateKey.type, algorithm: record.privateKey.algorithm.name, exported});
      }
      resolve(out);
    };
  };
})"""


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def parties(served_demo):
    """A brand tenant of this module's own (no paper consent for TWIN), its key, and the person's."""
    url, admin = served_demo["url"], bearer(served_demo["admin"])
    tenant = f"lumen-{secrets.token_hex(3)}"
    made = httpx.post(url + "/v1/admin/tenants", headers=admin, timeout=30, json={"tenant_id": tenant, "name": "Lumen"})
    assert made.status_code == 201, made.text

    def mint(body: dict) -> str:
        minted = httpx.post(url + "/v1/admin/keys", headers=admin, timeout=30,
                            json={"requests_per_minute": 6000, **body})
        assert minted.status_code == 201, minted.text
        return minted.json()["token"]

    # TWIN under a person of this module's own: no signing key registered yet, whatever other
    # tests of the session did with the demo's persons
    person = f"studio-{secrets.token_hex(3)}"
    for path, body in (("/v1/admin/persons", {"person_id": person, "display_name": "Ben"}),
                       ("/v1/admin/twins/person", {"twin_id": TWIN, "person_id": person})):
        answer = httpx.post(url + path, headers=admin, timeout=30, json=body)
        assert answer.status_code in (200, 201), answer.text

    return SimpleNamespace(url=url, tenant=tenant, admin=served_demo["admin"],
                           brand=mint({"tenant_id": tenant, "scopes": ["generate", "licensing"], "name": "Lumen"}),
                           talent=mint({"tenant_id": "demo", "scopes": ["talent"], "twin_ids": [TWIN], "name": "Ben"}))


def generate(parties, seed: int) -> httpx.Response:
    return httpx.post(parties.url + "/v1/generate", headers=bearer(parties.brand), timeout=240,
                      json={"twin_id": TWIN, "prompt": "knit jumper, studio", "use": "ecommerce", "territory": "FR",
                            "seed": seed, **SMALL})


def code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


class Recorded(Visit):
    """A Visit that also records every request the page sends: its URL, method and body."""

    def __init__(self, browser, studio, **options):  # noqa: F811 - the browser fixture's value
        super().__init__(browser, studio)
        if options:  # a context of its own (e.g. without JavaScript)
            self.context.close()
            self.context = browser.new_context(**options)
            self.page = self.context.new_page()
            self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
            self.page.on("response", self._response)
        self.requests: list[tuple[str, str, str | None]] = []
        self.page.on("request", lambda r: self.requests.append((r.url, r.method, r.post_data)))

    def only_own_origin(self, origin: str) -> None:
        foreign = [u for u, _, _ in self.requests if not (u.startswith(origin + "/") or u == origin)]
        assert foreign == [], f"loaded from another origin: {foreign}"

    def csp_clean(self) -> None:
        assert not [e for e in self.errors if "Content Security Policy" in e or "Refused" in e], self.errors


def posted(visit: Recorded, path: str) -> list[dict]:
    return [dict(parse_qsl(body or "")) for url, method, body in visit.requests
            if method == "POST" and urlsplit(url).path == path]


def test_a_brand_asks_the_person_signs_in_the_browser_then_revokes(browser, parties, shots):  # noqa: F811
    studio = SimpleNamespace(url=parties.url)
    origin = parties.url

    # the brand asks for a licence in Studio
    brand = Recorded(browser, studio)
    try:
        brand.sign_in(parties.brand)
        brand.page.get_by_role("link", name="Licences").click()
        brand.page.get_by_label("Twin").fill(TWIN)
        brand.page.get_by_label(re.compile("^Purpose")).fill(PURPOSE)
        brand.page.get_by_label(re.compile("^Uses")).fill("ecommerce")
        brand.page.get_by_label(re.compile("^Territories")).fill("fr, de")
        brand.page.get_by_label("Rate per image").fill("0.50")
        brand.page.get_by_label("Currency").select_option("EUR")
        brand.page.get_by_role("button", name="Request licence").click()
        brand.page.wait_for_url(re.compile(r".*/studio/licences#licence-lic_[0-9a-f]{24}$"))
        licence_id = brand.page.url.rsplit("#licence-", 1)[1]
        card = brand.page.locator(f"#licence-{licence_id}")
        assert card.get_attribute("data-status") == "requested"
        assert "waiting for the person" in card.locator("[data-field=basis]").inner_text()
        brand.shot(shots, "licences-brand")
        assert axe_violations(brand.page) == []  # no serious or critical accessibility violation
        brand.only_own_origin(origin)
        brand.csp_clean()
        no_key_in(brand.html, parties.brand)
    finally:
        brand.close()
    assert code(generate(parties, seed=1)) == "licence_pending"

    # without JavaScript the page says that signing needs it, and offers no decision
    plain = Recorded(browser, studio, java_script_enabled=False)
    try:
        plain.sign_in(parties.talent)
        plain.page.goto(plain.base + "/licences")
        assert "needs JavaScript" in plain.page.locator("#needs-js").inner_text()
        assert plain.page.locator(f"#licence-{licence_id} button[data-sign]").first.is_disabled()
    finally:
        plain.close()

    # the person sees the terms in plain words and accepts: the browser signs
    person = Recorded(browser, studio)
    page = person.page
    try:
        person.sign_in(parties.talent)
        assert "Licences" in [a.inner_text() for a in page.locator("nav a").all()]
        page.get_by_role("link", name="Licences").click()
        card = page.locator(f"#licence-{licence_id}")
        assert card.locator("[data-field=brand]").inner_text() == parties.tenant
        assert card.locator("[data-field=purpose]").inner_text() == PURPOSE
        assert axe_violations(page) == []
        assert card.locator("[data-field=territories]").inner_text() == "DE, FR"
        assert card.locator("[data-field=rate]").inner_text() == "0.5 EUR per image"
        assert card.locator("[data-field=uses]").inner_text() == "ecommerce"
        page.locator("#signing-key[data-state=none]").wait_for()  # the script read this browser's key store
        assert "No signing key yet" in page.locator("[data-field=key-status]").inner_text()
        assert not page.get_by_role("button", name="Register this browser's key").is_visible()  # nothing to replace
        person.shot(shots, "licences-person")
        card.get_by_role("button", name="Accept and sign").click()
        page.locator(f"#licence-{licence_id}[data-status=accepted]").wait_for(timeout=60_000)
        assert "signed by the person on" in page.locator(f"#licence-{licence_id} [data-field=basis]").inner_text()
        assert page.locator("#signing-key").get_attribute("data-state") == "held"
        person.shot(shots, "licences-accepted")

        # the key stays in the browser, non-extractable; the server keeps its public half and the signature
        [stored] = page.evaluate(STORED_KEYS)
        assert stored["extractable"] is False and stored["type"] == "private" and stored["algorithm"] == "Ed25519"
        assert stored["exported"] == "InvalidAccessError"  # not even this page can read the private key
        [registered] = posted(person, "/studio/licences/signing-key")
        [decided] = posted(person, "/studio/licences/decide")
        assert registered["public_key"] == stored["publicKey"] and len(base64.b64decode(stored["publicKey"])) == 32
        assert decided["decision"] == "accept" and len(base64.b64decode(decided["signature"])) == 64
        document = httpx.get(origin + "/v1/talent/licences/document", headers=bearer(parties.talent), timeout=30,
                             params={"licence_id": licence_id}).json()
        [signature] = document["signatures"]
        assert (signature["role"], signature["decision"], signature["public_key"]) == (
            "person", "accept", stored["publicKey"])
        check_signature(signature["public_key"], signature["signature"], "accept", "person", document["sha256"])
        assert document["status"] == "accepted"

        # the Twins page tells the signed licence from the paper record
        page.get_by_role("link", name="Twins").click()
        twin = page.locator(f"#twin-{TWIN}")
        bases = [b.inner_text() for b in twin.locator("[data-field=basis]").all()]
        assert any(b.startswith("paper, recorded by ") for b in bases)
        assert any(b.startswith("signed by the person on ") for b in bases)
        person.shot(shots, "twins-licence")

        # the brand's generation is admitted under it
        made = generate(parties, seed=2)
        assert made.status_code == 200, made.text

        # another browser holds no key: it is told, and may register its own (replacing this one)
        other = Recorded(browser, studio)
        try:
            other.sign_in(parties.talent)
            other.page.goto(other.base + "/licences")
            other.page.locator("#signing-key[data-state=elsewhere]").wait_for()
            assert "held by another browser" in other.page.locator("[data-field=key-status]").inner_text()
            assert other.page.locator(f"#licence-{licence_id}").get_attribute("data-status") == "accepted"
            other.page.get_by_role("button", name="Register this browser's key").click()
            other.page.locator("#signing-key[data-state=held]").wait_for()
            [theirs] = other.page.evaluate(STORED_KEYS)
            me = httpx.get(origin + "/v1/talent/me", headers=bearer(parties.talent), timeout=30).json()
            assert me["signing_keys"]["person"] == theirs["publicKey"] != stored["publicKey"]
            other.only_own_origin(origin)
            other.csp_clean()
        finally:
            other.close()

        # the person revokes in Studio: the next generation is refused
        second = httpx.post(origin + "/v1/licences", headers=bearer(parties.brand), timeout=30,
                            json={"twin_id": TWIN, "purpose": PURPOSE, "uses": ["lookbook"], "rate_per_image": "1",
                                  "currency": "EUR"}).json()["licence_id"]
        page.get_by_role("link", name="Licences").click()
        page.locator(f"#licence-{licence_id}").get_by_role("button", name="Revoke").click()
        page.locator(f"#licence-{licence_id}[data-status=revoked]").wait_for()
        assert page.locator(f"#licence-{licence_id} [data-field=basis]").inner_text().startswith("ended on ")
        refused = generate(parties, seed=3)
        assert (refused.status_code, code(refused)) == (403, "licence_revoked")
        # and ends every licence of the twin: the request still open ends too
        page.get_by_text("End every licence of this twin").click()
        page.get_by_role("button", name=f"End every licence of {TWIN}").click()
        page.locator(f"#licence-{second}[data-status=revoked]").wait_for()
        assert page.locator(f"#twin-{TWIN} [data-status=requested], #twin-{TWIN} [data-status=accepted]").count() == 0

        # what the page sent: only public values, only to its own origin
        for url, method, body in person.requests:
            path = urlsplit(url).path
            if method == "POST":
                fields = set(dict(parse_qsl(body or "")))
                assert path in POSTED and fields <= POSTED[path], (path, fields)
            assert not re.search(r"pkcs8|privateKey|BEGIN|\"d\"", body or "")
        person.only_own_origin(origin)
        person.csp_clean()
        no_key_in(person.html, parties.talent, parties.admin)
    finally:
        person.close()
