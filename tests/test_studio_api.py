"""Studio's server side, in process (no browser needed): review of jobs, talent keys, the
renderer's streamed denoising steps, and the session security of Studio's pages.

The same flows run in a real browser against a served instance in tests/test_studio.py; these
run wherever Python does, so Studio's guarantees are checked even where Chromium is missing.
"""

from __future__ import annotations

import re
from contextlib import nullcontext

import pytest

from tests.conftest import SMALL
from tests.polling import wait_for

ITEM = {"twin_id": "demo-ava", **SMALL}



@pytest.fixture()
def core(client):
    from service.gateway.service import API

    return API.state.core


def test_a_review_job_holds_its_images_until_each_item_is_decided(client, core, admin_headers, records):
    store = core.jobs.store
    store.set_tenant_delivery("demo", webhook_url="https://127.0.0.1:9/atelier", webhook_secret="whsec_dGVzdA==")
    try:
        body = {"review": True, "items": [{**ITEM, "prompt": f"review look {i}", "sku": f"r{i}"} for i in range(3)]}
        job_id = client.post("/v1/jobs/submit", json=body).json()["job_id"]
        status = wait_for(lambda: (s := client.get(f"/v1/jobs/status?job_id={job_id}").json())
                          .get("items_awaiting_review") == 3 and s)
        assert status["status"] == "running" and status["review"] is True and status["items_done"] == 0
        page = client.get(f"/v1/jobs/get?job_id={job_id}").json()
        assert [i["status"] for i in page["items"]] == ["awaiting_review"] * 3
        held = client.get(page["items"][1]["images"][0]["url"])  # the reviewer sees the held image
        assert held.status_code == 200 and held.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert store.deliveries("demo", job_id) == []  # nothing announced while held

        approved = client.post("/v1/jobs/approve", json={"job_id": job_id, "items": [0, 2]})
        assert approved.status_code == 200 and approved.json()["decided"] == [0, 2]
        again = client.post("/v1/jobs/approve", json={"job_id": job_id, "items": [0]})
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_awaiting_review"
        assert client.post("/v1/jobs/reject", json={"job_id": job_id, "items": [7]}).status_code == 404
        rejected = client.post("/v1/jobs/reject", json={"job_id": job_id, "items": [1]}).json()
        assert rejected["status"] == "completed" and (rejected["items_done"], rejected["items_rejected"]) == (2, 1)

        items = client.get(f"/v1/jobs/get?job_id={job_id}").json()["items"]
        assert [i["status"] for i in items] == ["done", "rejected", "done"]
        assert items[1]["images"] == [] and len(items[0]["images"]) == 1
        assert client.get(f"/v1/jobs/image?job_id={job_id}&index=1&n=0").status_code == 404  # dropped
        [event] = [d for d in store.deliveries("demo", job_id) if d.event_type == "job.completed"]
        data = event.payload["data"]
        assert [a["index"] for a in data["approved"]] == [0, 2] and data["rejected"] == [1]
        assert all("data_base64" not in image for a in data["approved"] for image in a["images"])
        decisions = [r for r in records("event", "job.approve") + records("event", "job.reject") if r.get("job_id") == job_id]
        assert sorted((r["event"], tuple(r["items"]), r["outcome"]) for r in decisions) == [
            ("job.approve", (0,), "refused"), ("job.approve", (0, 2), "ok"), ("job.reject", (1,), "ok"),
            ("job.reject", (7,), "refused")]
        plain = client.post("/v1/jobs/submit", json={"items": [ITEM | {"prompt": "no review"}]}).json()["job_id"]
        wait_for(lambda: client.get(f"/v1/jobs/status?job_id={plain}").json()["status"] == "completed")
        refused = client.post("/v1/jobs/approve", json={"job_id": plain, "items": [0]})
        assert refused.status_code == 409 and refused.json()["error"]["field"] == "job_id"
    finally:
        store.set_tenant_delivery("demo", webhook_url=None, webhook_secret=None)


def test_a_talent_key_reads_only_its_own_twins_usage(client, admin_headers, demo_keys, records):
    def mint(**body):
        return client.post("/v1/admin/keys", headers=admin_headers, json={"tenant_id": "demo", **body})

    assert mint(scopes=["talent"]).status_code == 422  # a talent key names its twins
    assert mint(scopes=["generate"], twin_ids=["demo-cleo"]).status_code == 422  # only talent keys take twins
    assert mint(scopes=["talent", "generate"], twin_ids=["demo-cleo"]).status_code == 422  # read-only
    assert mint(scopes=["talent"], twin_ids=["nobody"]).status_code == 404
    created = mint(scopes=["talent", "verify"], twin_ids=["demo-cleo"], name="Cleo", requests_per_minute=600)
    assert created.status_code == 201 and created.json()["key"]["twin_ids"] == ["demo-cleo"]
    talent = {"Authorization": f"Bearer {created.json()['token']}"}
    assert any(r.get("twin_ids") == ["demo-cleo"] for r in records("event", "admin.key_create"))

    for twin in ("demo-cleo", "demo-ava"):
        assert client.post("/v1/generate", json={"twin_id": twin, "prompt": "usage look", **SMALL}).status_code == 200
    rows = client.get("/v1/usage/talent", headers=talent).json()["rows"]
    assert rows and {r["twin_id"] for r in rows} == {"demo-cleo"} and all(len(r["day"]) == 7 for r in rows)
    daily = client.get("/v1/usage/talent?period=day", headers=talent).json()["rows"]
    assert sum(r["images"] for r in daily) == sum(r["images"] for r in rows)
    csv = client.get("/v1/usage/talent?format=csv", headers=talent)
    assert csv.headers["content-type"].startswith("text/csv") and "demo-ava" not in csv.text and "demo-cleo" in csv.text
    assert client.get("/v1/usage/talent?twin=demo-ava", headers=talent).json()["error"]["field"] == "twin"
    assert client.get("/v1/usage", headers=talent).json()["error"]["code"] == "insufficient_scope"
    assert client.post("/v1/generate", headers=talent, json={"twin_id": "demo-cleo", "prompt": "x", **SMALL}).status_code == 403
    assert client.get("/v1/usage/talent").json()["error"]["code"] == "insufficient_scope"  # a brand's key
    # the statement: images per twin, brand, use and consent version; the same numbers when asked again
    period = {"from": "2020-01-01", "to": "2099-12-31"}
    statement = client.get("/v1/usage/talent/statement", headers=talent, params=period).json()
    assert {r["twin_id"] for r in statement["rows"]} == {"demo-cleo"} and statement["from"] == "2020-01-01"
    assert statement["images"] == sum(r["images"] for r in rows) == sum(r["images"] for r in statement["rows"])
    paper = [r for r in statement["rows"] if r["brand"] == "demo"]  # other tests' brands may hold licences for it
    assert paper and all(r["use"] and isinstance(r["consent_version"], int) and r["licence_id"] is None for r in paper)
    assert client.get("/v1/usage/talent/statement", headers=talent, params=period).json()["rows"] == statement["rows"]
    lines = client.get("/v1/usage/talent/statement", headers=talent, params={**period, "format": "csv"}).text.splitlines()
    assert lines[0] == "twin_id,brand,use,consent_version,licence_id,generations,images,rate_per_image,currency,amount"
    assert len(lines) == len(statement["rows"]) + 1
    refused = client.get("/v1/usage/talent/statement", headers=talent, params={"from": "2020-01-01"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "to"
    admin_rows = client.get("/v1/usage?period=month", headers=admin_headers).json()["rows"]
    assert {"demo-ava", "demo-cleo"} <= {r["twin_id"] for r in admin_rows}


def test_the_renderer_streams_every_denoising_step_to_the_gateway(core, demo_keys):
    from service.schemas import GenerateRequest

    with core.tenancy.admit(f"Bearer {demo_keys['ATELIER_DEMO_KEY']}", "generate") as principal:
        pass
    seen: list[tuple[int, int]] = []
    request = GenerateRequest(twin_id="demo-ben", prompt="progress look", width=256, height=256, steps=3, seed=5)
    result = core.generation.run(request, admit=lambda: nullcontext(principal), route="/studio/generate", client_ip=None,
                                 progress=lambda step, steps: seen.append((step, steps)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert result.images and result.images[0].watermark_id
    plain = core.generation.run(request, admit=lambda: nullcontext(principal), route="/v1/generate", client_ip=None)
    assert plain.images[0].width == result.images[0].width  # the unstreamed call is unchanged


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, key: str):
    client.cookies.clear()
    page = client.get("/studio/login")
    return client.post("/studio/login", data={"api_key": key, "csrf_token": csrf_of(page.text)}, follow_redirects=False)


def test_studio_sessions_are_server_side_csrf_bound_and_never_show_the_key(client, core, demo_keys, admin_headers):
    key = demo_keys["ATELIER_DEMO_KEY"]
    try:
        login = client.get("/studio/login")
        policy = login.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "default-src 'self'" in policy
        refused = client.post("/studio/login", data={"api_key": key}, follow_redirects=False)
        assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
        wrong = sign_in(client, key[:-2] + "xx")
        assert wrong.status_code == 401 and "not valid" in wrong.text and '{"error"' not in wrong.text
        signed = sign_in(client, key)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"].split(",")[0]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/studio" in cookie and "Secure" not in cookie
        session_id = client.cookies.get("atelier_studio")
        with core.registry.engine.connect() as connection:
            from sqlalchemy import text

            stored = [row[0] for row in connection.execute(text("SELECT id_sha256 FROM studio_sessions"))]
        assert session_id not in stored and len(stored[-1]) == 64  # only the id's hash is kept

        for path in ("/studio/twins", "/studio/generate", "/studio/jobs", "/studio/verify", "/studio/account"):
            page = client.get(path)
            assert page.status_code == 200 and key not in page.text and key.split("_", 2)[2] not in page.text  # atl_<id>_<secret>: the secret may hold "_"
        assert client.get("/studio/usage").status_code == 403  # a brand key: no usage, as on the API
        jobs = client.get("/studio/jobs")
        no_token = client.post("/studio/jobs", data={"twin_id": "demo-ava", "prompts": "x"}, follow_redirects=False)
        assert no_token.status_code == 403 and "csrf_failed" in no_token.text
        forged = client.post("/studio/jobs", data={"twin_id": "demo-ava", "prompts": "x", "csrf_token": "0" * 43},
                             follow_redirects=False)
        assert forged.status_code == 403
        bad = client.post("/studio/jobs", data={"twin_id": "demo-ava", "prompts": "", "csrf_token": csrf_of(jobs.text)})
        assert bad.status_code == 422 and "one prompt per line" in bad.text  # a message, not JSON

        out = client.post("/studio/logout", data={"csrf_token": csrf_of(jobs.text)}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"].endswith("/studio/login")
        client.cookies.set("atelier_studio", session_id, path="/studio")  # the old cookie, replayed
        after = client.get("/studio/jobs", follow_redirects=False)
        assert after.status_code == 303 and after.headers["location"].endswith("/studio/login")

        minted = client.post("/v1/admin/keys", headers=admin_headers, json={"tenant_id": "demo", "scopes": ["verify"]})
        assert sign_in(client, minted.json()["token"]).status_code == 303
        home = client.get("/studio/verify")
        assert ">Generate<" not in home.text and ">Verify<" in home.text
        assert client.get("/studio/generate").status_code == 403
        client.post("/v1/admin/keys/revoke", headers=admin_headers, json={"key_id": minted.json()["key"]["key_id"]})
        assert client.get("/studio/verify", follow_redirects=False).status_code == 303  # revoked: the session ends
    finally:
        client.cookies.clear()


def test_the_review_migration_keeps_every_job_item_and_down_revokes_only_talent_keys(tmp_path):
    """0005 adds columns in place: on SQLite a batch copy of `jobs` would cascade-delete its items."""
    from sqlalchemy import text

    from service.registry import JobStore
    from service.registry import Registry, downgrade, upgrade
    from service.registry.db import make_engine
    from service.registry.migrate import current_revision, head_revision

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade(url, "0004_trust")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO tenants (id, name, created_at, disabled) VALUES ('acme', 'Acme', '2026-01-01', false)"))
            conn.execute(text(
                "INSERT INTO jobs (id, tenant_id, key_id, status, priority, items_total, items_done, items_failed, output_target,"
                " url_expiry_s, webhook_per_item, cancel_requested, created_at) VALUES"
                " ('old', 'acme', 'k', 'queued', 5, 2, 0, 0, 'inline', 60, false, false, '2026-01-01')"))
            for idx in range(2):
                conn.execute(text("INSERT INTO job_items (job_id, idx, spec, status) VALUES ('old', :i, '{}', 'pending')"), {"i": idx})
        upgrade(url)
        assert current_revision(url) == head_revision()
        job = JobStore(engine).get_job("acme", "old", with_items=True)
        assert len(job.items) == 2 and job.review is False and job.items_rejected == 0
        registry = Registry(engine)
        registry.put_twin("ava", display_name="Ava", adapter_key="a.safetensors", adapter_sha256="a" * 64, rank=4)
        talent_id, _ = registry.create_api_key("acme", ["talent"], twin_ids=["ava"])
        brand_id, _ = registry.create_api_key("acme", ["generate"])
        downgrade(url, "0004_trust")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM job_items")).scalar() == 2
            revoked = dict(conn.execute(text("SELECT id, revoked_at IS NOT NULL FROM api_keys")).all())
        assert revoked == {talent_id: True, brand_id: False}
    finally:
        engine.dispose()
