"""Every request that reaches Atelier leaves an audit record, written before the response."""

import json
import urllib.request

import pytest

from builds.serving import serve
from service.audit.events import generation_event
from tests.audit_reading import find
from service.schemas import GenerateRequest
from tests.conftest import SMALL, kill_all

GEN = {"twin_id": "demo-ben", "prompt": "audit me, linen shirt", "seed": 77, **SMALL}


def test_generation_is_recorded_with_images_and_marks(client, records):
    body = client.post("/v1/generate", json=GEN).json()
    [record] = records("generation_id", body["generation_id"])
    assert record["event"] == "generation" and record["outcome"] == "ok"
    assert record["twin_id"] == "demo-ben" and record["adapter_sha256"]
    assert record["params"]["prompt"] == {"verbatim": "audit me, linen shirt"}
    assert record["seed"] == 77 and record["base_model"].startswith("pipeline@")
    assert [i["sha256"] for i in record["images"]] == [i["sha256"] for i in body["images"]]
    assert [i["watermark_id"] for i in record["images"]] == [i["watermark_id"] for i in body["images"]]
    assert all(i["c2pa_manifest_sha256"] for i in record["images"])
    assert record["client_ip"] and "data_base64" not in json.dumps(record)


def test_refusals_and_failures_are_recorded(client, records, monkeypatch, demo_home):
    client.post("/v1/generate", json={**GEN, "twin_id": "nobody-audited"})
    [refused] = records("twin_id", "nobody-audited")
    assert refused["outcome"] == "refused" and refused["reason"] == "consent_missing"

    client.post("/v1/generate", json={**GEN, "width": 250, "prompt": "edge-refused"})
    edge = [r for r in records("event", "refused_at_edge") if r.get("field") == "width"]
    assert edge and edge[-1]["reason"] == "invalid_field" and edge[-1]["route"] == "/v1/generate"

    # A refusal before any key is accepted is a compact record (route, reason, source), never a
    # generation record and never the prompt. (Repeats from one source within a minute are
    # counted, not each recorded: see service/audit/refusals.py.)
    for headers, reason in [({"Authorization": "Bearer atl_000000000000_nope"}, "invalid_api_key"),
                            ({"Authorization": ""}, "missing_api_key")]:
        response = client.post("/v1/generate/image", json={**GEN, "prompt": "secret brief 41"}, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (401, reason)
        compact = [r for r in records("event", "refused_at_edge") if r["route"] == "/v1/generate/image" and r["reason"] == reason]
        assert compact and compact[-1]["outcome"] == "refused" and compact[-1]["client_ip"] and "params" not in compact[-1]
    assert not [r for r in records("event", "generation") if r["params"]["prompt"] == {"verbatim": "secret brief 41"}]
    assert not any(b"secret brief 41" in path.read_bytes() for path in (demo_home / "audit").rglob("*") if path.is_file())

    import service.provenance.marking as marking

    monkeypatch.setattr(marking, "add_xmp", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("down")))
    client.post("/v1/generate/image", json={**GEN, "twin_id": "demo-cleo", "prompt": "will fail"})
    failed = [r for r in records("twin_id", "demo-cleo") if r["params"]["prompt"] == {"verbatim": "will fail"}]
    assert failed[-1]["outcome"] == "failed" and failed[-1]["reason"] == "marking_failed"
    # the renderer failed it (and logged why); the gateway records the typed error it reported
    assert failed[-1]["status"] == 500 and "images" not in failed[-1]


def test_verify_and_admin_are_recorded_and_verify_finds_the_generation(client, records, admin_headers, demo_keys):
    import base64

    body = client.post("/v1/generate", json={**GEN, "seed": 78}).json()
    data = base64.b64decode(body["images"][0]["data_base64"])
    report = client.post("/v1/verify", content=data, headers={"content-type": "image/png"}).json()
    assert report["audit"]["generation_id"] == body["generation_id"]
    assert report["audit"]["twin_id"] == "demo-ben" and report["audit"]["outcome"] == "ok"
    assert any(r["event"] == "verify" for r in records("generation_id", body["generation_id"]))

    verified = records("generation_id", body["generation_id"])
    generated = next(r for r in verified if r["event"] == "generation")
    assert generated["tenant"] == "demo" and generated["consent"]["version"] >= 1
    assert generated["key_id"] == demo_keys["ATELIER_DEMO_KEY"].split("_")[1]
    client.post("/v1/admin/twins/evict", json={"twin_id": "demo-ben"}, headers=admin_headers)
    evicted = records("event", "admin.evict")[-1]
    assert evicted["twin_id"] == "demo-ben" and evicted["actor"]["tenant"] == "demo"
    assert demo_keys["ATELIER_ADMIN_KEY"] not in json.dumps(evicted)


def test_prompts_can_be_stored_as_hashes_only():
    request = GenerateRequest(twin_id="demo-ava", prompt="a private brief", negative_prompt="blurry")
    event = generation_event(route="/v1/generate", request=request, client_ip=None, base_model_id=None, prompts="sha256")
    assert "a private brief" not in json.dumps(event) and "blurry" not in json.dumps(event)
    assert len(event["params"]["prompt"]["sha256"]) == 64


@pytest.mark.slow
def test_kill_9_right_after_a_response_loses_nothing(demo_home, demo_keys, tmp_path):
    audit_dir = tmp_path / "audit"
    server = serve(demo_home, tmp_path, env={"ATELIER_AUDIT_DIR": str(audit_dir), "ATELIER_CACHE_DIR": str(tmp_path / "cache")})
    try:
        request = urllib.request.Request(server.url + "/v1/generate", data=json.dumps(GEN).encode(),
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {demo_keys['ATELIER_DEMO_KEY']}"})
        with urllib.request.urlopen(request, timeout=120) as response:
            generation_id = json.loads(response.read())["generation_id"]
        kill_all(server)  # the arbiter and every worker: no shutdown hook runs

    finally:
        server.stop()
    [record] = find(demo_home, "generation_id", generation_id)  # committed before the answer
    assert record["outcome"] == "ok"


def test_usage_report_for_admins(client, admin_headers):
    client.post("/v1/generate", json={**GEN, "twin_id": "demo-cleo", "num_images": 2, "seed": 90})
    auth = admin_headers
    assert client.get("/v1/usage", headers={"Authorization": ""}).status_code == 401
    assert client.get("/v1/usage").json()["error"]["code"] == "insufficient_scope"  # a generate key
    rows = client.get("/v1/usage", params={"twin": "demo-cleo"}, headers=auth).json()["rows"]
    assert rows and all(r["twin_id"] == "demo-cleo" for r in rows)
    assert sum(r["images"] for r in rows) >= 2
    csv = client.get("/v1/usage", params={"twin": "demo-cleo", "format": "csv"}, headers=auth)
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("day,tenant,twin_id")
    for params, field in [({"from": "yesterday"}, "from"), ({"twin": "../x"}, "twin"), ({"format": "xml"}, "format"), ({"color": "red"}, "color")]:
        response = client.get("/v1/usage", params=params, headers=auth)
        assert response.status_code == 422 and response.json()["error"]["field"] == field


def test_prompt_policy_refuses_before_generating_and_is_audited(client, records):
    for route in ("/v1/generate", "/v1/generate/image"):
        response = client.post(route, json={**GEN, "prompt": "studio portrait, n.u.d.e, soft light"})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "prompt_policy" and error["field"] == "prompt"
        assert "nudity_sexual" in error["message"] and "soft light" not in error["message"]
    refused = [r for r in records("event", "generation") if r.get("reason") == "prompt_policy"]
    assert refused and refused[-1]["category"] == "nudity_sexual" and "images" not in refused[-1]
    ok = client.post("/v1/generate", json={**GEN, "prompt": "nude heels, gunmetal blazer", "negative_prompt": "nudity, blurry"})
    assert ok.status_code == 200
