"""The person owns the consent (issue 28): a brand requests a licence, the person signs a
decision, generation is admitted only under an accepted licence and in its scope, the person
ends it, and the signed licence is checked offline; pay statements price the images at the
accepted rate. In process, on the session's gateway and registry; the registry-level rules
(a minor's guardian, a representative, keys per role) on a database of their own (SQLite,
and PostgreSQL when ATELIER_TEST_PG_URL is set).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.licence_document import encode_public_key, licence_hash, sign, verify_document
from tests.conftest import REPO_ROOT

TWIN = "demo-ben"
SMALL = {"width": 256, "height": 256, "steps": 2}
TERMS = {"twin_id": TWIN, "purpose": "Product pages of the AW26 knitwear line on maison-lumen.com",
         "uses": ["ecommerce"], "rate_per_image": "0.50", "currency": "EUR"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def parties(client, admin_headers):
    """A brand that never had paper consent for TWIN, and the person's talent key."""
    assert client.post("/v1/admin/tenants", headers=admin_headers,
                       json={"tenant_id": "maison", "name": "Maison Lumen"}).status_code in (201, 409)
    brand = client.post("/v1/admin/keys", headers=admin_headers, json={
        "tenant_id": "maison", "scopes": ["generate", "licensing"], "requests_per_minute": 6000}).json()["token"]
    talent = client.post("/v1/admin/keys", headers=admin_headers, json={  # the person's key: their twins
        "tenant_id": "demo", "scopes": ["talent"], "person_id": TWIN, "requests_per_minute": 6000}).json()
    assert talent["key"]["twin_ids"] == [TWIN], talent
    talent = talent["token"]
    other = client.post("/v1/admin/keys", headers=admin_headers, json={
        "tenant_id": "demo", "scopes": ["talent"], "twin_ids": ["demo-cleo"], "requests_per_minute": 6000}).json()["token"]
    return {"brand": bearer(brand), "talent": bearer(talent), "other": bearer(other), "key": Ed25519PrivateKey.generate()}


def generate(client, headers, use="ecommerce", seed=1):
    return client.post("/v1/generate", headers=headers,
                       json={"twin_id": TWIN, "prompt": "knit jumper, studio", "use": use, "seed": seed, **SMALL})


def code(response) -> str:
    return response.json()["error"]["code"]


def test_a_brand_generates_only_under_a_licence_the_person_signed(client, parties, records, tmp_path):
    brand, talent, key = parties["brand"], parties["talent"], parties["key"]
    assert code(generate(client, brand)) == "consent_missing"  # no paper consent, no licence
    requested = client.post("/v1/licences", headers=brand, json=TERMS)
    assert requested.status_code == 201, requested.text
    licence = requested.json()
    assert licence["status"] == "requested" and licence["sha256"] == licence_hash(licence["terms"])
    assert licence["terms"]["rate_per_image"] == "0.5" and licence["terms"]["person_id"] == TWIN
    assert code(generate(client, brand)) == "licence_pending"

    # the person sees it, registers a key, and signs: a bad or foreign signature is refused
    listed = client.get("/v1/talent/licences", headers=talent).json()["licences"]
    assert licence["licence_id"] in [x["licence_id"] for x in listed]
    assert client.get("/v1/talent/licences", headers=parties["other"]).json()["licences"] == [] or all(
        x["twin_id"] != TWIN for x in client.get("/v1/talent/licences", headers=parties["other"]).json()["licences"])
    decide = {"licence_id": licence["licence_id"], "decision": "accept"}
    early = client.post("/v1/talent/licences/decide", headers=talent,
                        json={**decide, "signature": sign(key, "accept", "person", licence["sha256"])})
    assert early.status_code == 422 and early.json()["error"]["field"] == "signature"  # no key registered yet
    me = client.post("/v1/talent/signing-key", headers=talent,
                     json={"public_key": encode_public_key(key.public_key())})
    assert me.status_code == 200 and TWIN in me.json()["twin_ids"]
    for forged in (sign(Ed25519PrivateKey.generate(), "accept", "person", licence["sha256"]),  # another key
                   sign(key, "decline", "person", licence["sha256"]),  # a decline passed off as acceptance
                   sign(key, "accept", "guardian", licence["sha256"]),  # another role
                   sign(key, "accept", "person", "0" * 64)):  # other terms
        refused = client.post("/v1/talent/licences/decide", headers=talent, json={**decide, "signature": forged})
        assert refused.status_code == 422 and code(refused) == "invalid_signature", refused.text
    foreign = client.post("/v1/talent/licences/decide", headers=parties["other"],
                          json={**decide, "signature": sign(key, "accept", "person", licence["sha256"])})
    assert foreign.status_code == 404  # another person's licence reads as absent
    accepted = client.post("/v1/talent/licences/decide", headers=talent,
                           json={**decide, "signature": sign(key, "accept", "person", licence["sha256"])})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
    again = client.post("/v1/talent/licences/decide", headers=talent,
                        json={**decide, "signature": sign(key, "accept", "person", licence["sha256"])})
    assert code(again) == "licence_not_pending"

    # the brand sees the twin with the licence's terms; admitted in scope, refused out of it,
    # and the record names the signed licence
    [listed_twin] = [t for t in client.get("/v1/twins", headers=brand).json()["twins"] if t["id"] == TWIN]
    assert listed_twin["consent"]["licence_id"] == licence["licence_id"] and listed_twin["consent"]["uses"] == ["ecommerce"]
    made = generate(client, brand)
    assert made.status_code == 200, made.text
    [record] = records("generation_id", made.json()["generation_id"])
    assert record["consent"] == {"basis": "signed", "licence_id": licence["licence_id"],
                                 "licence_sha256": licence["sha256"]}
    out_of_scope = generate(client, brand, use="social_ads")
    assert (out_of_scope.status_code, code(out_of_scope), out_of_scope.json()["error"]["field"]) == (
        403, "licence_out_of_scope", "use")
    decisions = [r for r in records("event", "licence.accept") if r.get("licence_id") == licence["licence_id"]]
    assert [r["outcome"] for r in decisions] == ["refused"] * 6 + ["ok", "refused"]  # every try is on the record
    assert decisions[6]["signed_licence"]["sha256"] == licence["sha256"]
    assert decisions[0]["reason"] == "invalid_field" and decisions[1]["reason"] == "invalid_signature"

    # the signed licence checks offline; a tampered one does not
    document = client.get("/v1/talent/licences/document", headers=talent,
                          params={"licence_id": licence["licence_id"]}).json()
    assert client.get("/v1/licences/document", headers=brand, params={"licence_id": licence["licence_id"]}).json() == document
    assert verify_document(document).status == "accepted"
    good, bad = tmp_path / "licence.json", tmp_path / "tampered.json"
    good.write_text(json.dumps(document))
    bad.write_text(json.dumps({**document, "licence": {**document["licence"], "rate_per_image": "0.05"}}))
    ran = [subprocess.run([sys.executable, "-m", "service.cli", "licence", "verify", str(path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120) for path in (good, bad)]
    assert ran[0].returncode == 0 and "accepted" in ran[0].stdout, ran[0].stdout + ran[0].stderr
    assert ran[1].returncode == 1 and "hash" in ran[1].stdout

    # the pay statement: images at the accepted rate, due 45 days after the period
    today = dt.datetime.now(dt.timezone.utc).date()
    period = {"from": today.isoformat(), "to": today.isoformat()}
    statement = client.get("/v1/usage/talent/statement", headers=talent, params=period).json()
    [row] = [r for r in statement["rows"] if r["licence_id"] == licence["licence_id"]]
    made_under = [r for r in records("event", "generation") if (r.get("consent") or {}).get("licence_id")
                  == licence["licence_id"] and r["outcome"] == "ok"]
    assert row["images"] == sum(len(r["images"]) for r in made_under) == 1
    assert (row["brand"], row["rate_per_image"], row["currency"], row["amount"]) == ("maison", "0.5", "EUR", "0.5")
    assert statement["due"] == (today + dt.timedelta(days=45)).isoformat()

    # the person ends it: the next request is refused, wherever it arrives
    ended = client.post("/v1/talent/licences/revoke", headers=talent, json={"licence_id": licence["licence_id"]})
    assert ended.status_code == 200 and ended.json()["status"] == "revoked"
    assert code(generate(client, brand, seed=2)) == "licence_revoked"
    assert TWIN not in [t["id"] for t in client.get("/v1/twins", headers=brand).json()["twins"]]
    assert code(client.post("/v1/talent/licences/revoke", headers=talent,
                            json={"licence_id": licence["licence_id"]})) == "licence_not_active"


def test_a_declined_licence_and_one_brand_cannot_see_anothers(client, parties, admin_headers):
    brand, talent, key = parties["brand"], parties["talent"], parties["key"]
    client.post("/v1/talent/signing-key", headers=talent, json={"public_key": encode_public_key(key.public_key())})
    licence = client.post("/v1/licences", headers=brand, json={**TERMS, "uses": ["lookbook"]}).json()
    declined = client.post("/v1/talent/licences/decide", headers=talent, json={
        "licence_id": licence["licence_id"], "decision": "decline",
        "signature": sign(key, "decline", "person", licence["sha256"])})
    assert declined.json()["status"] == "declined"
    assert code(generate(client, brand, use="lookbook")) == "licence_declined"
    # the demo tenant (paper consent for its own uses) sees none of maison's licences
    demo_brand = client.post("/v1/admin/keys", headers=admin_headers, json={
        "tenant_id": "demo", "scopes": ["licensing"], "requests_per_minute": 6000}).json()["token"]
    assert all(x["tenant_id"] == "demo" for x in client.get("/v1/licences", headers=bearer(demo_brand)).json()["licences"])
    assert client.get("/v1/licences/document", headers=bearer(demo_brand),
                      params={"licence_id": licence["licence_id"]}).status_code == 404
    bad = client.post("/v1/licences", headers=brand, json={**TERMS, "currency": "XXX"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "currency"
    short = client.post("/v1/licences", headers=brand, json={**TERMS, "purpose": "ads"})
    assert short.status_code == 422 and short.json()["error"]["field"] == "purpose"
    assert client.post("/v1/licences", json=TERMS).json()["error"]["code"] == "insufficient_scope"  # a generate key

    # an operator sees every brand's licences, by brand, twin and state; nobody else does
    everyone = client.get("/v1/admin/licences", headers=admin_headers)
    assert everyone.status_code == 200, everyone.text
    assert licence["licence_id"] in [x["licence_id"] for x in everyone.json()["licences"]]
    only = client.get("/v1/admin/licences", headers=admin_headers,
                      params={"tenant_id": licence["tenant_id"], "twin_id": TWIN, "status": "declined"}).json()["licences"]
    assert licence["licence_id"] in [x["licence_id"] for x in only]
    assert all((x["tenant_id"], x["twin_id"], x["status"]) == (licence["tenant_id"], TWIN, "declined") for x in only)
    assert client.get("/v1/admin/licences", headers=admin_headers, params={"tenant_id": "demo", "status": "declined",
                                                                           "twin_id": TWIN}).json()["licences"] == []
    for params, field in (({"status": "pending"}, "status"), ({"tenant_id": "../x"}, "tenant_id"),
                          ({"twin_id": "a b"}, "twin_id"), ({"limit": "0"}, "limit")):
        refused = client.get("/v1/admin/licences", headers=admin_headers, params=params)
        assert refused.status_code == 422 and refused.json()["error"]["field"] == field, refused.text
    for key in (brand, talent, bearer(demo_brand)):
        assert code(client.get("/v1/admin/licences", headers=key)) == "insufficient_scope"


# -- the registry's rules, on a database of their own ---------------------------------------------


def test_a_minors_licence_needs_the_guardian_and_a_representative_may_act(db_url):
    from service.registry import open_registry

    registry = open_registry(db_url)
    registry.create_tenant("maison", "Maison")
    registry.persons.create_person("mina", "Mina", minor=True, guardian="A. Parent", representative="Agency X")
    digest = "a" * 64
    registry.put_twin("mina-1", display_name="Mina", adapter_key="m.safetensors", adapter_sha256=digest, rank=4,
                      person_id="mina")
    keys = {role: Ed25519PrivateKey.generate() for role in ("person", "representative", "guardian")}
    for role, private in keys.items():
        registry.persons.set_public_key("mina", role, encode_public_key(private.public_key()))
    licence = registry.licences.request("maison", "k1", "mina-1", purpose="Lookbook for the spring line",
                                        uses=["lookbook"], rate_per_image="1.25", currency="EUR")
    assert licence.terms["minor"] is True
    after_rep = registry.licences.decide(licence.id, role="representative", decision="accept",
                                         signature=sign(keys["representative"], "accept", "representative", licence.sha256))
    assert after_rep.status == "requested"  # a minor: the guardian too
    assert not registry.check_consent("mina-1", "maison", "lookbook").ok
    done = registry.licences.decide(licence.id, role="guardian", decision="accept",
                                    signature=sign(keys["guardian"], "accept", "guardian", licence.sha256))
    assert done.status == "accepted" and verify_document(done.document()).status == "accepted"
    decision = registry.check_consent("mina-1", "maison", "lookbook")
    assert decision.ok and decision.basis == "signed" and decision.licence_id == licence.id
    assert registry.licences.rates({licence.id}) == {licence.id: ("1.25", "EUR")}
    # a document missing the guardian's signature is not an accepted licence, offline either
    partial = {**done.document(), "signatures": [g for g in done.document()["signatures"] if g["role"] != "guardian"]}
    assert verify_document(partial).status == "undecided"
    ended = registry.licences.revoke_twin("mina-1", by="person")
    assert [x.id for x in ended] == [licence.id]
    assert registry.check_consent("mina-1", "maison", "lookbook").reason == "licence_revoked"
    # Every renderer's watcher learns of it (what in-flight rows check between steps), for a
    # day: nothing admitted earlier than that can still be rendering.
    from datetime import timedelta

    from service.tenancy.revocation import RevocationWatcher

    watcher = RevocationWatcher(registry, on_revoked=lambda twin: None)
    watcher.poll_once()
    assert watcher.licence_revoked(licence.id) and not watcher.licence_revoked("another")
    later = registry.db.now() + timedelta(hours=25)
    registry.db._clock = lambda: later  # noqa: SLF001 - the registry's one injected clock
    watcher._seen_version = None  # noqa: SLF001 - poll again whatever the version says
    watcher.poll_once()
    assert not watcher.licence_revoked(licence.id)
    registry.engine.dispose()
