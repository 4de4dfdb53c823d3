"""Trust under attack, in-process: one gateway on a private demo home (tests/trust_support.py),
each finding of the hostile test replayed against it.

Findings covered here: the unauthenticated audit flood and per-source limits (1), the verify
chunk bomb and per-key verify slots (3), a forged credential naming a real generation and
tenants seeing each other's ids (4), a stripped image that verify could not trace (5), a
revoked likeness still served under a copied twin (5), refusals told apart by their work (6),
malformed uploads and broken adapters (7), a forged X-Forwarded-For (8), an admin locking
itself out (9). Tests run in file order: the destructive ones (revocation, lockout) last.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save

from tests.png_support import chunk, png_chunks
from tests.trust_support import audit_bytes, audit_records, build_world, freeze_minute

GEN = {"twin_id": "demo-ava", "prompt": "studio photo, linen dress", "width": 256, "height": 256, "steps": 2}
ATTACKER = "198.51.100.7"


@pytest.fixture(scope="module")
def world(demo_home, tmp_path_factory):
    world = build_world(demo_home, tmp_path_factory.mktemp("trust-world"))
    yield world
    world.close()


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def generated(world, key: str = "demo", **overrides) -> tuple[bytes, dict]:
    response = world.client(key).post("/v1/generate", json={**GEN, **overrides})
    assert response.status_code == 200, response.text
    body = response.json()
    return base64.b64decode(body["images"][0]["data_base64"]), body


def verify(world, data: bytes, key: str = "demo", content_type: str = "image/png"):
    return world.client(key).post("/v1/verify", content=data, headers={"content-type": content_type})


# -- 1. protection before authentication -----------------------------------------------------


@pytest.fixture()
def frozen_minute(world, monkeypatch):
    freeze_minute(world, monkeypatch)


def test_a_keyless_flood_costs_a_few_compact_records_and_keyed_traffic_goes_on(world, frozen_minute):
    attacker = world.client(key=None, source=ATTACKER)
    before = audit_bytes(world)
    statuses = Counter()
    for i in range(400):
        route = "/v1/generate" if i % 2 else "/v1/jobs/submit"
        body = {"twin_id": "demo-ava", "prompt": "flood brief " + "x" * 1500}
        statuses[attacker.post(route, json=body).status_code] += 1
    budget = world.settings.source_failures_per_minute
    assert statuses == {401: budget, 429: 400 - budget}
    keyed = world.client("admin").get("/v1/admin/twins/list")  # another source, a valid key: unaffected
    assert keyed.status_code == 200
    grown = audit_bytes(world) - before
    assert grown < 4 * 1024, grown  # one record per kind of refusal, plus the keyed request's own
    world.core.trust.refusals.flush(everything=True)
    [summary] = audit_records(world, event="refused_unauthenticated", client_ip=ATTACKER)
    assert summary["total"] == 400 and sum(summary["counts"].values()) == 400, summary
    assert summary["counts"].get("429 too_many_auth_failures /v1/generate") == 200 - budget // 2, summary["counts"]
    everything = json.dumps(audit_records(world))
    assert "flood brief" not in everything  # never a prompt


def test_a_refused_source_costs_no_database_work(world, frozen_minute):
    import threading

    from sqlalchemy import event

    for _ in range(world.settings.source_failures_per_minute):
        world.client(key=None, source=ATTACKER).get("/v1/admin/twins/list")

    statements = []

    def count(*args, **kwargs):
        if threading.current_thread().name != "atelier-keyindex":  # the key index's own poll is not a request's
            statements.append(1)

    admin_id = world.keys["admin"].split("_")[1]
    forged = {"Authorization": f"Bearer atl_{admin_id}_{'x' * 43}"}  # a real key id, a made-up secret
    event.listen(world.core.registry.engine, "before_cursor_execute", count)
    try:
        keyless = world.client(key=None, source=ATTACKER).get("/v1/admin/twins/list")
        wrong = world.client(key=None, source=ATTACKER).get("/v1/admin/twins/list", headers=forged)
    finally:
        event.remove(world.core.registry.engine, "before_cursor_execute", count)
    for response in (keyless, wrong):
        assert error(response) == (429, "too_many_auth_failures") and response.headers["Retry-After"]
    assert statements == []  # refused before any key was looked up in the database
    # A valid key from that source is still served (tests/test_side_door_limits.py has the rest).
    assert world.client(key="admin", source=ATTACKER).get("/v1/admin/twins/list").status_code == 200


# -- 3. verify hardening ---------------------------------------------------------------------


def chunk_bomb(chunks: int = 200_000) -> bytes:
    """A small valid PNG, then many tiny text chunks before its pixels (the attack used 1.7 M)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buffer, format="PNG")
    data = buffer.getvalue()
    ihdr_end = 8 + 25
    text = chunk(b"tEXt", b"k\x00v")
    return data[:ihdr_end] + text * chunks + data[ihdr_end:]


@pytest.mark.parametrize("data, code", [
    (chunk_bomb(), "image_too_complex"),
    (chunk_bomb(300), "image_too_complex"),  # past the metadata chunk count already
])
def test_a_chunk_bomb_is_refused_before_any_parser_runs(world, data, code):
    response = verify(world, data)
    assert error(response) == (422, code) and response.json()["error"]["field"] == "image"
    [record] = [r for r in audit_records(world, event="verify") if r["upload_sha256"] == hashlib.sha256(data).hexdigest()]
    assert record["outcome"] == "refused" and record["reason"] == code


def test_jpeg_scan_and_metadata_bounds():
    from service.provenance.limits import ImageTooComplex, VerifyLimits, check_structure

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, format="JPEG", progressive=True)
    jpeg = buffer.getvalue()
    counts = check_structure(jpeg, "jpeg", VerifyLimits())
    assert 1 <= counts["scans"] <= 12
    app = b"\xff\xe1" + struct.pack(">H", 2 + 60000) + b"\x00" * 60000
    with pytest.raises(ImageTooComplex, match="bytes of metadata"):
        check_structure(jpeg[:2] + app * 200 + jpeg[2:], "jpeg", VerifyLimits())
    with pytest.raises(ImageTooComplex, match="scans"):
        check_structure(jpeg, "jpeg", VerifyLimits(max_scans=counts["scans"] - 1))


def test_verifies_are_bounded_per_key(world):
    from service.tenancy.auth import bearer_token

    key_id = bearer_token(f"Bearer {world.keys['rival']}").split("_")[1]
    slots = world.core.trust.verify_slots
    data, _ = generated(world)
    with slots.hold(key_id), slots.hold(key_id):
        assert error(verify(world, data, key="rival")) == (429, "too_many_concurrent")
        assert verify(world, data, key="demo").status_code == 200  # another key is not held back
    assert verify(world, data, key="rival").status_code == 200


# -- 4 and 5. what verify discloses, and to whom ----------------------------------------------


def test_verify_discloses_the_generation_only_to_its_tenant_and_admins(world):
    data, body = generated(world, seed=11)
    own = verify(world, data).json()
    assert own["generation_id"] == body["generation_id"] and own["made_by_this_service"] is True
    assert own["audit"]["tenant"] == "demo" and own["audit"]["twin_id"] == "demo-ava" and own["audit"]["outcome"] == "ok"
    other = verify(world, data, key="rival").json()
    assert other["generation_id"] == body["generation_id"] and other["made_by_this_service"] is True
    assert other["audit"] is None and "demo" not in json.dumps(other)  # no tenant, no twin
    admin = verify(world, data, key="ops").json()
    assert admin["audit"]["tenant"] == "demo"


def test_a_forged_credential_names_no_generation(world):
    data, body = generated(world, seed=12)
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(noise, format="PNG")
    copied = b"".join(raw for kind, raw in png_chunks(data) if kind not in (b"IHDR", b"IDAT", b"IEND"))
    clean = noise.getvalue()
    forged = clean[:33] + copied + clean[33:]
    report = verify(world, forged).json()
    assert report["c2pa"]["state"] == "Invalid" and report["watermark"]["found"] is False
    assert report["generation_id"] is None and report["audit"] is None and report["made_by_this_service"] is False
    assert body["generation_id"] not in json.dumps(report)


def test_a_stripped_image_resolves_through_the_watermark_index_on_any_replica(world):
    from service.provenance.disclosure import disclose
    from service.provenance.verify import verify_image
    from service.registry import open_registry

    data, body = generated(world, width=512, height=512, seed=8)
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="JPEG", quality=80)
    report = verify(world, buffer.getvalue(), content_type="image/jpeg").json()
    assert report["c2pa"]["state"] == "Absent" and report["watermark"]["found"] is True
    assert report["generation_id"] == body["generation_id"] and report["found_by"] == "watermark"
    assert report["audit"]["generation_id"] == body["generation_id"]
    # Another replica: its own connection to the registry, no audit log at all.
    replica = open_registry(world.settings.db_url)
    raw = verify_image(buffer.getvalue(), world.settings.max_verify_pixels, None)
    _, answer = disclose(raw, replica.find_watermark, tenant_id="demo", admin=False)
    assert answer["generation_id"] == body["generation_id"] and answer["audit"]["twin_id"] == "demo-ava"
    replica.engine.dispose()


# -- 6. one path for every refusal ---------------------------------------------------------------


def test_unknown_foreign_and_revoked_twins_do_the_same_work(world):
    import threading

    from sqlalchemy import event

    from service.tenancy.manage import record_consent

    registry = world.core.registry
    for twin_id, sha, tenant, revoke in [("rival-only", "f", "rival", False), ("rival-gone", "e", "rival", True),
                                         ("demo-gone", "d", "demo", True)]:
        registry.put_twin(twin_id, display_name=twin_id, adapter_key=f"x/{twin_id}.safetensors", adapter_sha256=sha * 64,
                          rank=4)
        record_consent(registry, twin_id, tenants=[tenant], uses=["ecommerce"], recorded_by="tests")
        if revoke:
            registry.revoke_twin(twin_id)
    counts, answers = {}, {}
    client = world.client("demo")
    for twin_id in ("no-such-twin", "rival-only", "rival-gone", "demo-gone", "demo-ava"):
        statements = []

        def count(*args, **kwargs):
            if threading.current_thread().name != "atelier-keyindex":  # a background poll, not the request's work
                statements.append(args[2][:60])

        event.listen(registry.engine, "before_cursor_execute", count)
        try:
            response = client.post("/v1/generate/image", json={**GEN, "twin_id": twin_id, "prompt": "nude"})
        finally:
            event.remove(registry.engine, "before_cursor_execute", count)
        counts[twin_id] = len(statements)
        answers[twin_id] = (response.status_code, response.json()["error"]["code"], response.json()["error"]["message"])
    # The same statements whatever the twin (the last one is allowed, then refused by the prompt policy).
    assert len(set(counts.values())) == 1, counts
    assert answers["no-such-twin"] == answers["rival-only"] == answers["rival-gone"]
    assert answers["no-such-twin"][:2] == (403, "consent_missing")
    assert answers["demo-gone"][:2] == (403, "revoked")  # this tenant was named: it may know
    assert answers["demo-ava"][:2] == (422, "prompt_policy")


# -- 7. uploads and adapters ---------------------------------------------------------------------

LAYER = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"


def adapter(dtype=np.float32, meta=None, nan=False, inf=False, alpha=None, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((4, 64)) * 0.01).astype(dtype)
    b = (rng.standard_normal((64, 4)) * 0.01).astype(dtype)
    if nan:
        a.flat[0] = np.nan
    if inf:
        b.flat[0] = np.inf
    tensors = {f"unet.{LAYER}.lora_A.weight": a, f"unet.{LAYER}.lora_B.weight": b}
    if alpha is not None:
        tensors[f"unet.{LAYER}.alpha"] = np.array(alpha, dtype=np.float32)
    return save(tensors, metadata=meta)


def raw_safetensors(dtype: str, shape: list[int], nbytes: int) -> bytes:
    header = {f"unet.{LAYER}.lora_A.weight": {"dtype": dtype, "shape": shape, "data_offsets": [0, nbytes]},
              f"unet.{LAYER}.lora_B.weight": {"dtype": "F32", "shape": [64, 4], "data_offsets": [nbytes, nbytes + 1024]}}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\x00" * (nbytes + 1024)


def upload(world, files, data=None, headers=None, content=None):
    client = world.client("admin")
    if content is not None:
        return client.post("/v1/admin/twins", content=content, headers=headers)
    return client.post("/v1/admin/twins", data=data, files=files)


def meta(alpha) -> dict:
    return {"lora_adapter_metadata": json.dumps({"lora_alpha": alpha})}


@pytest.mark.parametrize("name, payload, status, code", [
    ("nan", adapter(nan=True), 422, "adapter_incompatible"),
    ("inf", adapter(inf=True), 422, "adapter_incompatible"),
    ("alpha-text", adapter(meta=meta("abc")), 422, "adapter_incompatible"),
    ("alpha-huge", adapter(meta=meta(1e308)), 422, "adapter_incompatible"),
    ("alpha-tensor-inf", adapter(alpha=np.inf), 422, "adapter_incompatible"),
    ("alpha-scale", adapter(alpha=4000.0), 422, "adapter_incompatible"),
    ("metadata-not-json", adapter(meta={"lora_adapter_metadata": "{"}), 422, "adapter_incompatible"),
    ("zero-d", raw_safetensors("F32", [], 4), 422, "adapter_incompatible"),
    ("bool", raw_safetensors("BOOL", [4, 64], 256), 422, "adapter_incompatible"),
    ("int8", raw_safetensors("I8", [4, 64], 256), 422, "adapter_incompatible"),
    ("fp8", raw_safetensors("F8_E4M3", [4, 64], 256), 422, "adapter_incompatible"),
])
def test_broken_adapters_are_refused_and_audited(world, name, payload, status, code):
    twin_id = f"broken-{name}"
    response = upload(world, {"adapter": ("a.safetensors", payload, "application/octet-stream")}, data={"twin_id": twin_id})
    assert error(response) == (status, code), response.text
    [record] = audit_records(world, event="admin.register", twin_id=twin_id)
    assert record["outcome"] == "refused" and record["reason"] == code
    assert world.core.registry.get_twin(twin_id, include_deleted=True) is None


def many_parts(count: int) -> bytes:
    return b"".join(b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(count)) + b"--b--\r\n"


@pytest.mark.parametrize("name, kwargs, status, code, field", [
    ("two-files", {"files": [("adapter", ("a", adapter(seed=1), "x")), ("adapter", ("b", adapter(seed=2), "x"))],
                   "data": {"twin_id": "two-files"}}, 422, "invalid_field", "adapter"),
    ("unknown-field", {"files": {"adapter": ("a", adapter(seed=3), "x")}, "data": {"twin_id": "uf", "colour": "red"}},
     422, "invalid_field", "colour"),
    ("text-as-file", {"files": {"twin_id": ("t", b"abc", "text/plain"), "adapter": ("a", adapter(seed=4), "x")}},
     422, "invalid_field", "twin_id"),
    ("no-boundary", {"content": b"--x\r\n\r\n", "headers": {"content-type": "multipart/form-data"}},
     400, "malformed_request", None),
    ("20000-parts", {"content": many_parts(20_000), "headers": {"content-type": "multipart/form-data; boundary=b"}},
     400, "malformed_request", None),
    ("torn", {"content": b'--b\r\nContent-Disposition: form-data; name="twin_id"\r\n\r\nabc',
              "headers": {"content-type": "multipart/form-data; boundary=b"}}, 422, "invalid_field", "twin_id"),
])
def test_malformed_uploads_are_4xx_in_our_shape_and_audited(world, name, kwargs, status, code, field):
    response = upload(world, kwargs.get("files"), data=kwargs.get("data"), headers=kwargs.get("headers"),
                      content=kwargs.get("content"))
    assert error(response) == (status, code), response.text
    assert response.json()["error"].get("field") == field
    refused = [r for r in audit_records(world) if r.get("reason") == code and r.get("outcome") == "refused"
               and (r.get("route") == "/v1/admin/twins" or r.get("event") == "admin.register")]
    who = refused[-1].get("tenant") or refused[-1].get("actor", {}).get("tenant")
    assert who == "demo"  # attributed to the admin key that sent it


def test_a_broken_render_fails_and_is_not_counted_as_usage(world):
    """A NaN adapter registered before the checks existed (written past them, into the
    registry) renders non-finite pixels: render_failed, nothing delivered, no usage."""
    from service.audit.usage import aggregate
    from service.tenancy.manage import record_consent

    from safetensors import safe_open
    from safetensors.numpy import load

    source = world.home / "adapters" / "demo-cleo.safetensors"
    with safe_open(str(source), framework="numpy") as handle:
        metadata = handle.metadata()
    tensors = load(source.read_bytes())
    first = sorted(k for k in tensors if k.endswith("lora_A.weight"))[0]
    tensors[first] = tensors[first].copy()
    tensors[first].flat[0] = np.nan  # one NaN weight: every pixel of the render goes NaN
    data = save(tensors, metadata=metadata)
    key = "legacy/nan.safetensors"
    world.core.adapters.write_bytes(key, data)
    world.core.registry.put_twin("legacy-nan", display_name="NaN", adapter_key=key,
                                 adapter_sha256=hashlib.sha256(data).hexdigest(), rank=4)
    record_consent(world.core.registry, "legacy-nan", tenants=["demo"], uses=["ecommerce"], recorded_by="tests")
    response = world.client("demo").post("/v1/generate", json={**GEN, "twin_id": "legacy-nan"})
    assert error(response) == (500, "render_failed") and "data_base64" not in response.text
    [record] = audit_records(world, event="generation", twin_id="legacy-nan")
    assert record["outcome"] == "failed" and record["reason"] == "render_failed" and "images" not in record
    assert not aggregate(audit_records(world), twin="legacy-nan")


# -- 8. the client address -------------------------------------------------------------------------


def test_x_forwarded_for_counts_only_from_trusted_proxies():
    from service.tenancy.preauth import client_address, source_key, trusted_networks

    none = trusted_networks(())
    lb = trusted_networks(("10.0.0.0/8",))
    assert client_address("127.0.0.1", ["6.6.6.6"], none) == "127.0.0.1"
    assert client_address("203.0.113.9", ["6.6.6.6"], lb) == "203.0.113.9"  # not a proxy: header ignored
    assert client_address("10.1.2.3", ["6.6.6.6, 198.51.100.2"], lb) == "198.51.100.2"  # the proxy's own hop
    assert client_address("10.1.2.3", ["198.51.100.2, 10.9.9.9"], lb) == "198.51.100.2"  # two trusted hops
    assert client_address("10.1.2.3", ["not-an-ip"], lb) == "10.1.2.3"
    assert source_key("2001:db8::1") == source_key("2001:db8::ffff") == "2001:db8::/64"


def test_a_forged_forwarded_for_is_not_what_the_audit_records(world):
    client = world.client("admin", source="127.0.0.1")
    response = client.get("/v1/admin/tenants/list", headers={"X-Forwarded-For": "6.6.6.6"})
    assert response.status_code == 200
    last = audit_records(world, event="admin.tenant_list")[-1]
    assert last["client_ip"] == "127.0.0.1"


# -- 5. likeness-level revocation (destructive: after the verify tests) ---------------------------


def test_a_likeness_is_registered_once(world):
    cleo = (world.home / "adapters" / "demo-cleo.safetensors").read_bytes()
    response = upload(world, {"adapter": ("a.safetensors", cleo, "application/octet-stream")}, data={"twin_id": "cleo-copy"})
    assert error(response) == (409, "adapter_in_use")
    assert world.core.registry.get_twin("cleo-copy", include_deleted=True) is None
    assert not (world.home / "adapters" / "cleo-copy").exists()  # nothing written


def test_revoking_a_twin_revokes_its_likeness_and_delete_removes_the_bytes(world):
    """`ben-copy` shares demo-ben's bytes (registered before registration refused that)."""
    from service.tenancy.manage import record_consent

    ben = world.core.registry.get_twin("demo-ben")
    with world.core.registry.engine.begin() as conn:  # as an older release let it happen
        from sqlalchemy import insert

        from service.registry.models import TwinRow
        from service.registry.db import utcnow

        conn.execute(insert(TwinRow).values(id="ben-copy", display_name="copy", adapter_key=ben.adapter_key,
                                            adapter_sha256=ben.adapter_sha256, rank=4, deleted=False, revision=1,
                                            created_at=utcnow(), updated_at=utcnow()))
    record_consent(world.core.registry, "ben-copy", tenants=["rival"], uses=["ecommerce"], recorded_by="tests")
    assert world.client("rival").post("/v1/generate", json={**GEN, "twin_id": "ben-copy"}).status_code == 200
    response = world.client("admin").post("/v1/admin/twins/revoke", json={"twin_id": "demo-ben", "delete": True})
    assert response.status_code == 200
    assert error(world.client("rival").post("/v1/generate", json={**GEN, "twin_id": "ben-copy"})) == (403, "revoked")
    assert world.core.registry.get_twin("ben-copy", include_deleted=True).revoked_at is not None
    assert not (world.home / "adapters" / ben.adapter_key).exists()  # the bytes are gone


# -- 9. the admin guard (last: it changes the admin keys) -----------------------------------------


def test_an_admin_cannot_lock_itself_out(world):
    admin = world.client("admin")
    assert error(admin.post("/v1/admin/tenants/disable", json={"tenant_id": "demo"})) == (409, "would_lock_out")
    assert world.core.registry.get_tenant("demo").disabled is False
    ops_key = [k for k in world.core.registry.list_keys("ops") if "admin" in k.scopes][0].key_id
    assert admin.post("/v1/admin/keys/revoke", json={"key_id": ops_key}).status_code == 200
    own = [k for k in world.core.registry.list_keys("demo") if "admin" in k.scopes][0].key_id
    assert error(admin.post("/v1/admin/keys/revoke", json={"key_id": own})) == (409, "would_lock_out")
    assert admin.get("/v1/admin/tenants/list").status_code == 200  # still in
    [refused] = [r for r in audit_records(world, event="admin.key_revoke") if r.get("key_id_revoked") == own]
    assert refused["outcome"] == "refused" and refused["reason"] == "would_lock_out"
