"""Tenancy over HTTP: API keys and scopes, every consent refusal, cross-tenant guessing, rate
limits, per-consent policy, and revocation (eviction, in-flight cancellation, deletion)."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone

import pytest

from service.errors import Forbidden
from service.schemas import GenerateRequest
from service.tenancy.consent import ConsentDenied, ConsentGate
from service.tenancy.ratelimit import RateLimited, RateLimiter
from service.tenancy.revocation import RevocationWatcher
from tests.conftest import SMALL, local_renderer
from tests.test_adapter_slot import lora_file

GEN = {**SMALL, "prompt": "studio photo, linen dress", "seed": 5}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_twin(client, admin_headers, demo_home, twin_id: str, seed: int, **consent) -> str:
    """Register a twin with its own adapter (its own sha256) and record consent for it."""
    data = lora_file(demo_home / "demo" / "pipeline", 4, 4.0, seed=seed)
    response = client.post("/v1/admin/twins", headers=admin_headers, data={"twin_id": twin_id},
                           files={"adapter": ("a.safetensors", data, "application/octet-stream")})
    assert response.status_code == 201, response.text
    body = {"twin_id": twin_id, "tenants": ["demo"], "uses": ["ecommerce"], "recorded_by": "tests", **consent}
    response = client.post("/v1/admin/consent", headers=admin_headers, json=body)
    assert response.status_code == 201, response.text
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def rival(client, admin_headers) -> dict[str, str]:
    """A second tenant with a generate+verify key and no consent for anything."""
    assert client.post("/v1/admin/tenants", headers=admin_headers, json={"tenant_id": "rival", "name": "Rival"}).status_code == 201
    response = client.post("/v1/admin/keys", headers=admin_headers, json={"tenant_id": "rival", "scopes": ["generate", "verify"],
                                                                        "requests_per_minute": 600})  # bursts of 61
    assert response.status_code == 201
    return bearer(response.json()["token"])


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# -- keys and scopes ------------------------------------------------------------------------


@pytest.mark.parametrize("authorization, code", [
    ("", "missing_api_key"), ("Token abc", "missing_api_key"), ("Bearer ", "missing_api_key"),
    ("Bearer not-a-key", "invalid_api_key"), ("Bearer atl_0123456789ab_secret", "invalid_api_key"),
    ("Bearer atl_../../etc_passwd", "invalid_api_key"),
])
def test_generation_needs_a_valid_key(client, authorization, code):
    assert error(client.post("/v1/generate", json={"twin_id": "demo-ava", **GEN}, headers={"Authorization": authorization})) == (401, code)


def test_a_wrong_secret_for_a_real_key_id_is_refused(client, demo_keys):
    token = demo_keys["ATELIER_DEMO_KEY"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert error(client.post("/v1/generate", json={"twin_id": "demo-ava", **GEN}, headers=bearer(forged))) == (401, "invalid_api_key")


def test_scopes_are_enforced_per_route(client, admin_headers, registry):
    _, verify_only = registry.create_api_key("demo", ["verify"], name="verify only")
    assert error(client.post("/v1/generate", json={"twin_id": "demo-ava", **GEN}, headers=bearer(verify_only))) == (403, "insufficient_scope")
    _, generate_only = registry.create_api_key("demo", ["generate"], name="generate only")
    png = client.post("/v1/generate/image", json={"twin_id": "demo-ava", **GEN}, headers=bearer(generate_only))
    assert png.status_code == 200
    refused = client.post("/v1/verify", content=png.content, headers={**bearer(generate_only), "content-type": "image/png"})
    assert error(refused) == (403, "insufficient_scope")
    ok = client.post("/v1/verify", content=png.content, headers={**bearer(verify_only), "content-type": "image/png"})
    assert ok.status_code == 200 and ok.json()["watermark"]["found"] is True


def test_base_model_generation_is_for_admin_keys_only(client, admin_headers):
    assert error(client.post("/v1/generate", json={"twin_id": None, **GEN})) == (403, "base_model_admin_only")
    assert client.post("/v1/generate", json={"twin_id": None, **GEN}, headers=admin_headers).status_code == 200


def test_revoked_key_and_disabled_tenant_stop_working_at_once(client, admin_headers):
    client.post("/v1/admin/tenants", headers=admin_headers, json={"tenant_id": "shortlived", "name": "Short"})
    created = client.post("/v1/admin/keys", headers=admin_headers, json={"tenant_id": "shortlived", "scopes": ["verify"]}).json()
    key = bearer(created["token"])
    png = client.post("/v1/generate/image", json={"twin_id": "demo-ava", **GEN}).content
    verify = lambda: client.post("/v1/verify", content=png, headers={**key, "content-type": "image/png"})  # noqa: E731
    assert verify().status_code == 200
    client.post("/v1/admin/tenants/disable", headers=admin_headers, json={"tenant_id": "shortlived"})
    assert error(verify()) == (401, "invalid_api_key")
    client.post("/v1/admin/tenants/disable", headers=admin_headers, json={"tenant_id": "shortlived", "disabled": False})
    assert verify().status_code == 200
    revoked = client.post("/v1/admin/keys/revoke", headers=admin_headers, json={"key_id": created["key"]["key_id"]})
    assert revoked.json() == {"key_id": created["key"]["key_id"], "revoked": True, "already_revoked": False}
    assert error(verify()) == (401, "invalid_api_key")
    assert error(client.post("/v1/admin/keys/revoke", headers=admin_headers, json={"key_id": "0" * 12})) == (404, "key_not_found")


def test_key_listing_never_shows_secrets(client, admin_headers, demo_keys):
    listing = client.get("/v1/admin/keys/list", headers=admin_headers, params={"tenant_id": "demo"})
    assert listing.status_code == 200 and len(listing.json()["keys"]) >= 2
    text = listing.text
    for token in demo_keys.values():
        assert token.split("_", 2)[2] not in text
    assert "salt" not in text and "hash" not in text


# -- consent --------------------------------------------------------------------------------


def test_every_consent_refusal_reason_is_a_403_and_audited(client, admin_headers, demo_home, records):
    now = datetime.now(timezone.utc)
    new_twin(client, admin_headers, demo_home, "consent-fay", seed=301,
             valid_until=(now - timedelta(days=1)).isoformat(), valid_from=(now - timedelta(days=30)).isoformat())
    new_twin(client, admin_headers, demo_home, "consent-gus", seed=302, territories=["FR", "DE"])
    new_twin(client, admin_headers, demo_home, "consent-hal", seed=303,
             valid_from=(now + timedelta(days=3)).isoformat())
    cases = [
        ({"twin_id": "consent-fay"}, "consent_expired"),
        ({"twin_id": "consent-hal"}, "consent_expired"),  # not valid yet
        ({"twin_id": "demo-ava", "use": "billboard"}, "use_not_allowed"),
        ({"twin_id": "consent-gus"}, "territory_not_allowed"),
        ({"twin_id": "consent-gus", "territory": "US"}, "territory_not_allowed"),
        ({"twin_id": "never-registered"}, "consent_missing"),
    ]
    for fields, reason in cases:
        response = client.post("/v1/generate", json={**GEN, **fields})
        assert error(response) == (403, reason), fields
        # The field at fault: the declared use, the territory, else the twin.
        assert response.json()["error"]["field"] == {"use_not_allowed": "use",
                                                     "territory_not_allowed": "territory"}.get(reason, "twin_id")
        last = [r for r in records("event", "generation") if r["twin_id"] == fields["twin_id"]][-1]
        assert (last["outcome"], last["reason"], last["tenant"]) == ("refused", reason, "demo")
        assert "images" not in last
    assert client.post("/v1/generate", json={**GEN, "twin_id": "consent-gus", "territory": "FR"}).status_code == 200


def test_a_new_consent_version_supersedes_and_history_stays(client, admin_headers, demo_home):
    new_twin(client, admin_headers, demo_home, "consent-ida", seed=304)
    assert error(client.post("/v1/generate", json={**GEN, "twin_id": "consent-ida", "use": "lookbook"})) == (403, "use_not_allowed")
    again = client.post("/v1/admin/consent", headers=admin_headers, json={
        "twin_id": "consent-ida", "tenants": ["demo"], "uses": ["ecommerce", "lookbook"], "recorded_by": "agent"})
    assert again.json()["consent"]["version"] == 2
    assert client.post("/v1/generate", json={**GEN, "twin_id": "consent-ida", "use": "lookbook"}).status_code == 200
    history = client.get("/v1/admin/consent/history", headers=admin_headers, params={"twin_id": "consent-ida"}).json()
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert history["versions"][0]["uses"] == ["ecommerce"]  # the old version is kept as it was


def test_consent_categories_and_deny_terms_shape_the_prompt_policy(client, admin_headers, demo_home, records):
    new_twin(client, admin_headers, demo_home, "consent-jo", seed=305,
             included_categories=["swimwear"], excluded_categories=["smoking"], deny_terms=["competitorco"])
    swim = {**GEN, "twin_id": "consent-jo", "prompt": "red bikini on a beach"}
    assert client.post("/v1/generate", json=swim).status_code == 200  # lifted by this consent
    assert error(client.post("/v1/generate", json={**swim, "twin_id": "demo-ava"})) == (422, "prompt_policy")  # not for Ava
    for prompt, category in [("lace lingerie set", "lingerie"), ("holding a c1garette", "smoking"),
                             ("C0MPETITORCO logo tee", "consent_terms"), ("naked on a beach", "nudity_sexual")]:
        response = client.post("/v1/generate", json={**GEN, "twin_id": "consent-jo", "prompt": prompt})
        assert error(response) == (422, "prompt_policy"), prompt
        assert category in response.json()["error"]["message"]
        assert records("event", "generation")[-1]["category"] == category


@pytest.mark.parametrize("body, field", [
    ({"excluded_categories": ["nudity_sexual"]}, "excluded_categories"),
    ({"included_categories": ["minors"]}, "included_categories"),
    ({"included_categories": ["fireworks"]}, "included_categories"),
    ({"tenants": ["no-such-tenant"]}, None),
    ({"tenants": ["../etc"]}, "tenants"),
    ({"territories": ["France"]}, "territories"),
    ({"valid_from": "2026-01-01T00:00:00"}, "valid_from"),  # naive: refused
    ({"uses": []}, "uses"),
])
def test_bad_consent_records_are_refused_with_4xx(client, admin_headers, body, field):
    full = {"twin_id": "demo-ava", "tenants": ["demo"], "uses": ["ecommerce"], "recorded_by": "tests", **body}
    response = client.post("/v1/admin/consent", headers=admin_headers, json=full)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"].get("field") == field or field is None


# -- tenants never reach each other's twins --------------------------------------------------


def test_another_tenant_cannot_use_or_probe_a_twin(client, rival, admin_headers, demo_home):
    new_twin(client, admin_headers, demo_home, "probe-kim", seed=306)
    client.post("/v1/admin/twins/revoke", headers=admin_headers, json={"twin_id": "probe-kim"})
    answers = set()
    for twin_id in ["demo-ava", "demo-ben", "demo-cleo", "probe-kim", "demo-zed", "a", "x" * 64, "admin"]:
        for use in ("ecommerce", "lookbook"):
            response = client.post("/v1/generate", json={**GEN, "twin_id": twin_id, "use": use}, headers=rival)
            assert error(response) == (403, "consent_missing"), twin_id
            answers.add(response.text)
    assert len(answers) == 1  # existing, revoked and absent twins all look the same
    for route, params in [("/v1/admin/consent/history", {"twin_id": "demo-ava"}), ("/v1/admin/twins/list", {}),
                          ("/v1/admin/keys/list", {"tenant_id": "demo"})]:
        assert error(client.get(route, params=params, headers=rival)) == (403, "insufficient_scope")
    assert error(client.get("/v1/usage", headers=rival)) == (403, "insufficient_scope")


# -- rate limits ----------------------------------------------------------------------------


def test_requests_per_minute_give_429_with_retry_after(client, registry):
    _, token = registry.create_api_key("demo", ["generate"], name="slow lane", requests_per_minute=20)
    for _ in range(3):  # a burst of 1 + 10% of the rate, then one every 3 s (service.tenancy.ratelimit)
        assert client.post("/v1/generate", json={**GEN, "twin_id": "demo-ava"}, headers=bearer(token)).status_code == 200
    refused = client.post("/v1/generate", json={**GEN, "twin_id": "demo-ava"}, headers=bearer(token))
    assert error(refused) == (429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 30


def test_rate_limiter_refills_and_bounds_concurrency():
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    with limiter.admit("k", 60, 2), limiter.admit("k", 60, 2):
        with pytest.raises(RateLimited) as busy, limiter.admit("k", 60, 2):
            pass
        assert busy.value.code == "too_many_concurrent" and busy.value.response_headers() == {"Retry-After": "1"}
    for _ in range(58):
        with limiter.admit("k", 60, 2):
            pass
    with pytest.raises(RateLimited) as empty, limiter.admit("k", 60, 2):
        pass
    assert empty.value.retry_after == 1
    now[0] += 1.0  # one token per second at 60/min
    with limiter.admit("k", 60, 2):
        pass
    with limiter.admit("other", 60, 2):  # keys do not share buckets
        pass


# -- revocation -----------------------------------------------------------------------------


def test_revocation_evicts_refuses_and_is_final(client, admin_headers, demo_home, records):
    """The registry refuses the twin the moment the call returns; the renderer (here in this
    process, polling every 100 ms) evicts its adapter from every tier and the slot by itself."""
    engine = local_renderer().engine
    sha = new_twin(client, admin_headers, demo_home, "revoke-lea", seed=307)
    assert client.post("/v1/generate", json={**GEN, "twin_id": "revoke-lea"}).status_code == 200
    assert engine.twins.cache.tiers_of(sha) == ["device", "host", "disk"] and engine.twins.slot.owner == sha
    response = client.post("/v1/admin/twins/revoke", headers=admin_headers, json={"twin_id": "revoke-lea"})
    assert response.status_code == 200 and response.json()["twin"]["revoked_at"]
    assert error(client.post("/v1/generate", json={**GEN, "twin_id": "revoke-lea"})) == (403, "revoked")
    deadline = time.monotonic() + 10
    while (engine.twins.cache.tiers_of(sha) or engine.twins.slot.owner == sha) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.twins.cache.tiers_of(sha) == [] and engine.twins.slot.owner != sha
    [revoke] = [r for r in records("event", "admin.revoke") if r["twin_id"] == "revoke-lea"]
    assert revoke["outcome"] == "ok" and revoke["actor"]["tenant"] == "demo"
    assert (demo_home / "adapters" / "revoke-lea" / f"{sha}.safetensors").exists()  # kept without the deletion flag
    again = client.post("/v1/admin/consent", headers=admin_headers,
                        json={"twin_id": "revoke-lea", "tenants": ["demo"], "uses": ["ecommerce"], "recorded_by": "x"})
    assert error(again) == (409, "twin_revoked")
    listing = client.get("/v1/admin/twins/list", headers=admin_headers).json()
    assert "revoke-lea" not in {t["id"] for t in listing["twins"]}


def test_revocation_with_deletion_removes_the_adapter_file(client, admin_headers, demo_home):
    sha = new_twin(client, admin_headers, demo_home, "revoke-max", seed=308)
    path = demo_home / "adapters" / "revoke-max" / f"{sha}.safetensors"
    assert path.exists()
    response = client.post("/v1/admin/twins/revoke", headers=admin_headers, json={"twin_id": "revoke-max", "delete": True})
    assert response.status_code == 200 and response.json()["twin"]["deleted"] is True
    assert not path.exists()
    assert error(client.post("/v1/generate", json={**GEN, "twin_id": "revoke-max"})) == (403, "revoked")
    assert error(client.post("/v1/admin/twins/revoke", headers=admin_headers, json={"twin_id": "no-such-twin"})) == (404, "twin_not_found")


def test_an_in_flight_generation_is_cancelled_between_steps(engine, registry, demo_home, tmp_path):
    """The watcher's set is what running generations check after each denoising step."""
    data = lora_file(demo_home / "demo" / "pipeline", 4, 4.0, seed=309)
    (demo_home / "adapters" / "inflight.safetensors").write_bytes(data)
    registry.put_twin("inflight-ned", display_name="Ned", adapter_key="inflight.safetensors",
                      adapter_sha256=hashlib.sha256(data).hexdigest(), rank=4)
    watcher = RevocationWatcher(registry, on_revoked=lambda twin: None)
    watcher.poll_once()
    steps_run = []

    def revoke_after_two_steps():
        steps_run.append(1)
        if len(steps_run) == 2:
            registry.revoke_twin("inflight-ned")
            watcher.poll_once()
        watcher.guard("inflight-ned")()

    request = GenerateRequest(twin_id="inflight-ned", prompt="studio photo", width=256, height=256, steps=8, seed=1)
    with pytest.raises(ConsentDenied) as cancelled:
        engine.generate(request, between_steps=revoke_after_two_steps)
    assert cancelled.value.code == "revoked" and len(steps_run) == 2
    assert engine.generate(GenerateRequest(twin_id="demo-ava", prompt="studio photo", width=256, height=256, steps=2)).images


def test_consent_gate_masks_revocation_for_strangers(registry):
    from service.tenancy.auth import Principal
    from service.tenancy.manage import record_consent

    registry.put_twin("gate-ola", display_name="Ola", adapter_key="x.safetensors", adapter_sha256="1" * 64, rank=4)
    record_consent(registry, "gate-ola", tenants=["demo"], uses=["ecommerce"], recorded_by="tests")
    registry.revoke_twin("gate-ola")
    gate = ConsentGate(registry)
    request = GenerateRequest(twin_id="gate-ola", prompt="studio photo", width=256, height=256)
    member = Principal("k1", "demo", frozenset({"generate"}), 60, 4)
    stranger = Principal("k2", "rival-two", frozenset({"generate"}), 60, 4)
    with pytest.raises(ConsentDenied) as told:
        gate.admit(member, request)
    assert told.value.code == "revoked"  # the tenant that held consent learns why
    with pytest.raises(ConsentDenied) as masked:
        gate.admit(stranger, request)
    assert masked.value.code == "consent_missing"
    with pytest.raises(Forbidden) as base:
        gate.admit(stranger, GenerateRequest(twin_id=None, prompt="studio photo"))
    assert base.value.code == "base_model_admin_only"
