"""A brand with known usage on the session's served demo, for the usage tests (API and Studio).

`brand_usage(served)` sets up, once per served instance (both test modules share it):
- a tenant of its own ("Maison Usage …") with a brand key (`generate`, `licensing`, `usage`), a
  `generate`-only key, and a licence for `demo-cleo` that the twin's person accepts with a key
  of this module's own (a talent key for that person, which the Studio test signs in with);
- its images: one synchronous generation (use `social_ads`), a review job of three items
  (`ecommerce`) of which two are approved and one rejected, and a one-item job without review
  (delivered): 5 generated, 3 delivered, 1 rejected;
- another tenant's images: the demo tenant's own key generates `demo-cleo` once (use `lookbook`),
  which the brand must never see.
Nothing of the demo's is changed but the registered signing key of demo-cleo's person.
"""

from __future__ import annotations

import secrets
from types import SimpleNamespace

import httpx

from tests.polling import wait_for

TWIN = "demo-cleo"
SMALL = {"width": 256, "height": 256, "steps": 2}
EXPECTED = {"images": 5, "delivered": 3, "rejected": 1}  # the brand's own, all uses
_made: dict[str, SimpleNamespace] = {}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def brand_usage(served: dict) -> SimpleNamespace:
    if served["url"] not in _made:
        _made[served["url"]] = _set_up(served)
    return _made[served["url"]]


def _set_up(served: dict) -> SimpleNamespace:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from service.licence_document import encode_public_key, sign

    url, admin = served["url"], bearer(served["admin"])
    client = httpx.Client(base_url=url, timeout=120)

    def call(method: str, path: str, key: str | dict, expect: int, **kwargs) -> dict:
        headers = key if isinstance(key, dict) else bearer(key)
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == expect, (path, response.status_code, response.text)
        return response.json()

    tag = secrets.token_hex(3)
    tenant, name = f"usage-{tag}", f"Maison Usage {tag}"
    call("POST", "/v1/admin/tenants", admin, 201, json={"tenant_id": tenant, "name": name})

    def mint(body: dict) -> str:
        return call("POST", "/v1/admin/keys", admin, 201, json={"requests_per_minute": 6000, **body})["token"]

    brand = mint({"tenant_id": tenant, "scopes": ["generate", "licensing", "usage"], "name": "usage brand"})
    generate_only = mint({"tenant_id": tenant, "scopes": ["generate"], "name": "usage generate only"})
    talent = mint({"tenant_id": "demo", "scopes": ["talent"], "twin_ids": [TWIN], "name": "usage talent"})
    person = call("GET", "/v1/talent/me", talent, 200)

    # the brand asks for a licence and the person accepts it with a key of its own
    licence = call("POST", "/v1/licences", brand, 201, json={
        "twin_id": TWIN, "purpose": "Usage test: product pages and social ads", "uses": ["ecommerce", "social_ads"],
        "rate_per_image": "0.40", "currency": "EUR"})
    person_key = Ed25519PrivateKey.generate()
    call("POST", "/v1/talent/signing-key", talent, 200, json={"public_key": encode_public_key(person_key.public_key())})
    call("POST", "/v1/talent/licences/decide", talent, 200, json={
        "licence_id": licence["licence_id"], "decision": "accept",
        "signature": sign(person_key, "accept", "person", licence["sha256"])})

    # its images: one answered to the caller, three held for review (two approved, one rejected), one delivered
    made = call("POST", "/v1/generate", brand, 200, json={"twin_id": TWIN, "prompt": "usage, social ad",
                                                          "use": "social_ads", "seed": 1, **SMALL})
    item = {"twin_id": TWIN, "use": "ecommerce", **SMALL}
    review = call("POST", "/v1/jobs/submit", brand, 202, json={
        "review": True, "items": [{**item, "prompt": f"usage look {i}", "sku": f"U-{i}", "seed": 10 + i}
                                  for i in range(3)]})["job_id"]
    plain = call("POST", "/v1/jobs/submit", brand, 202, json={
        "items": [{**item, "prompt": "usage look plain", "sku": "U-9", "seed": 19}]})["job_id"]

    def items_of(job_id: str) -> list[dict]:
        return call("GET", "/v1/jobs/get", brand, 200, params={"job_id": job_id})["items"]

    wait_for(lambda: all(i["status"] == "awaiting_review" for i in items_of(review)), timeout=240)
    call("POST", "/v1/jobs/approve", brand, 200, json={"job_id": review, "items": [0, 1]})
    call("POST", "/v1/jobs/reject", brand, 200, json={"job_id": review, "items": [2]})
    wait_for(lambda: call("GET", "/v1/jobs/status", brand, 200, params={"job_id": plain})["status"] == "completed",
             timeout=240)

    # another tenant's image of the same twin: never in the brand's usage
    call("POST", "/v1/generate", bearer(served["demo"]), 200,
         json={"twin_id": TWIN, "prompt": "usage, other brand", "use": "lookbook", "seed": 2, **SMALL})
    client.close()
    return SimpleNamespace(url=url, tenant=tenant, name=name, brand=brand, generate_only=generate_only,
                           talent=talent, person=person["display_name"], generation_id=made["generation_id"],
                           admin=served["admin"], demo=served["demo"])


def sums(rows: list[dict], **match) -> dict[str, int]:
    """The counts of the rows matching `match` (field=value), summed."""
    chosen = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return {count: sum(r[count] or 0 for r in chosen) for count in ("images", "delivered", "rejected")}
