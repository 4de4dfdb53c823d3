"""Atelier's official clients (clients/): generated from the contract, up to date, and working.

- Up to date: `clients/generate.py --check` exports the document from the gateway's router
  (no server) and regenerates both clients into a temporary directory with the pinned
  generators (openapi-python-client from clients/.venv, openapi-typescript from
  clients/typescript/node_modules); the committed clients/openapi.json, Python package and
  TypeScript schema.d.ts must be exactly what they make.
- The Python layer alone: every generated module imports; its webhook verifier against the
  service's own signer (`service.jobs.webhooks`), the reference library and the spec's test
  vector; its retries (sync and async) against a local HTTP server answering 429 and 503 with
  `Retry-After` (seconds, HTTP date, too long), a multipart body sent again whole, and no retry
  of any other status.
- Against one `bentoml serve` of the demo with ATELIER_DEV_CALLBACKS=1 (its webhooks go to a
  receiver on 127.0.0.1), shared by this module: each client runs the README's flows:
  generate, generate/image, verify, an error, a job whose webhooks the receiver verifies
  (submit with an Idempotency-Key, wait, page through results one item a page, download), and
  a real 429 (`too_many_concurrent`) retried after its Retry-After; and each client's README
  example runs as written. The TypeScript checks skip, saying why, where node or npm (or
  `npm ci`'s packages) are missing; the Python ones always run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import importlib.util
import io
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, snapshot_registry

CLIENTS = REPO_ROOT / "clients"
TS = CLIENTS / "typescript"
SMALL = {"width": 256, "height": 256, "steps": 2}
PNG = b"\x89PNG"

if importlib.util.find_spec("atelier_client") is None:  # not installed (`make install` does): from the tree
    sys.path.insert(0, str(CLIENTS / "python"))

import atelier_client  # noqa: E402
from atelier_client import ApiError, RetryPolicy, WebhookVerificationError, connect, unwrap, verify_webhook  # noqa: E402


def load_generate_script():
    spec = importlib.util.spec_from_file_location("clients_generate", CLIENTS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def typescript_missing() -> str | None:
    """Why the TypeScript client cannot be built here, or None."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: the TypeScript client's checks skip (.ci/run installs them)"
    if not (TS / "node_modules" / "openapi-fetch").is_dir():
        return "clients/typescript/node_modules is missing: `make install` runs npm ci there"
    return None


TS_MISSING = typescript_missing()
if TS_MISSING:
    print(f"tests/test_clients.py: {TS_MISSING}")
needs_typescript = pytest.mark.skipif(TS_MISSING is not None, reason=TS_MISSING or "")


# -- the generated code is up to date -----------------------------------------------------------


def test_the_committed_document_and_python_client_are_what_the_generator_makes():
    generate = load_generate_script()
    stale = generate.check(typescript=False)
    assert stale == [], f"out of date (run `make clients` and commit): {stale}"
    assert (CLIENTS / "python" / "atelier_client" / "generated" / "api" / "jobs" / "submit_job.py").exists()


@needs_typescript
def test_the_committed_typescript_schema_is_what_openapi_typescript_makes():
    generate = load_generate_script()
    with tempfile.TemporaryDirectory() as work:
        fresh = Path(work) / "schema.d.ts"
        generate.generate_typescript(generate.DOCUMENT, fresh)
        assert fresh.read_bytes() == generate.TS_SCHEMA.read_bytes(), "run `make clients` and commit schema.d.ts"
    assert "submitJob: {" in generate.TS_SCHEMA.read_text()


def test_the_generated_python_client_is_typed_from_the_contract():
    from atelier_client.generated.api.jobs import get_job_image, submit_job
    from atelier_client.generated.models import JobAccepted
    from atelier_client.generated.types import File

    assert "JobAccepted" in str(submit_job.sync.__annotations__["return"])  # not a plain dict
    assert "File" in str(get_job_image.sync.__annotations__["return"])  # image bytes, not an ErrorBody
    assert JobAccepted.from_dict({"job_id": "j", "task_id": "j", "status": "queued", "items_total": 1,
                                  "status_url": "/s", "result_url": "/r"}).items_total == 1
    assert File is atelier_client.generated.types.File
    modules = [m.name for m in pkgutil.walk_packages(atelier_client.generated.__path__, "atelier_client.generated.")]
    for name in modules:  # every generated module imports (0.29.1 needs a template fix for /v1/verify's)
        importlib.import_module(name)
    assert "atelier_client.generated.api.verify.verify_image" in modules and len(modules) > 100


# -- the Python layer alone: webhooks ------------------------------------------------------------


SPEC = {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "ts": 1614265330,
        "body": b'{"test": 2432232314}', "signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}


def test_the_webhook_verifier_accepts_the_services_signatures_and_refuses_the_rest():
    from service.jobs.webhooks import headers_for, new_secret

    secret, now = new_secret(), int(time.time())
    body = json.dumps({"type": "job.completed", "timestamp": "t", "data": {"job_id": "j"}}).encode()
    headers = headers_for(secret, "msg_1", now, body)
    assert verify_webhook(secret, body, headers)["data"] == {"job_id": "j"}
    assert verify_webhook(secret, body, {k.upper(): v for k, v in headers.items()})["type"] == "job.completed"
    rotated = {**headers, "webhook-signature": f"v1,{base64.b64encode(b'x' * 32).decode()} {headers['webhook-signature']}"}
    assert verify_webhook(secret, body, rotated)["type"] == "job.completed"  # one valid signature among several

    refusals = [
        (new_secret(), body, headers),  # another secret
        (secret, body + b" ", headers),  # another body
        (secret, body, {**headers, "webhook-id": "msg_2"}),
        (secret, body, {k: v for k, v in headers.items() if k != "webhook-signature"}),
        (secret, body, {**headers, "webhook-signature": headers["webhook-signature"].replace("v1,", "v2,")}),
        (secret, body, {**headers, "webhook-timestamp": "soon"}),
    ]
    for args in refusals:
        with pytest.raises(WebhookVerificationError):
            verify_webhook(*args)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, body, headers, now=now + 301)  # five minutes' tolerance
    assert verify_webhook(secret, body, headers, now=now + 299)


def test_the_webhook_verifier_agrees_with_the_reference_library_and_the_spec_vector():
    from standardwebhooks.webhooks import Webhook

    headers = {"webhook-id": SPEC["id"], "webhook-timestamp": str(SPEC["ts"]), "webhook-signature": SPEC["signature"]}
    assert verify_webhook(SPEC["secret"], SPEC["body"], headers, now=SPEC["ts"]) == {"test": 2432232314}
    assert atelier_client.webhooks.sign(SPEC["secret"], SPEC["id"], SPEC["ts"], SPEC["body"]) == SPEC["signature"]

    stamp = datetime.now(timezone.utc).replace(microsecond=0)
    body = '{"type":"job.item.completed","data":{"index":0}}'
    signature = Webhook(SPEC["secret"]).sign("msg_ref", stamp, body)
    received = {"webhook-id": "msg_ref", "webhook-timestamp": str(int(stamp.timestamp())), "webhook-signature": signature}
    assert verify_webhook(SPEC["secret"], body.encode(), received)["data"] == {"index": 0}


# -- the Python layer alone: retries ---------------------------------------------------------------


class Stub(BaseHTTPRequestHandler):
    """Answers the next of `script` (status, headers) to each request; keeps what it got."""

    script: list = []
    got: list = []

    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        type(self).got.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        status, headers = type(self).script.pop(0) if type(self).script else (200, {})
        body = b'{"ok": true}' if status == 200 else json.dumps(
            {"error": {"code": "rate_limited" if status == 429 else "not_ready", "message": "later"}}).encode()
        self.send_response(status)
        for name, value in {"content-type": "application/json", "content-length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture()
def stub():
    Stub.script, Stub.got = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_429_and_503_are_retried_after_their_retry_after_with_the_same_body(stub):
    now = 1_800_000_000.0
    waits = []
    policy = RetryPolicy(sleep=waits.append, clock=lambda: now)
    client = connect(stub, "key-1", retries=policy)
    when = format_datetime(datetime.fromtimestamp(now + 7, timezone.utc), usegmt=True)
    Stub.script = [(429, {"Retry-After": "2"}), (503, {"Retry-After": when}), (200, {})]
    response = client.get_httpx_client().post("/v1/verify", files={"image": ("a.png", io.BytesIO(PNG + b"data"), "image/png")})
    assert response.status_code == 200 and waits == [2.0, 7.0]
    bodies = [body for _, _, _, body in Stub.got]
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2] and PNG + b"data" in bodies[0]
    assert all(headers["Authorization"] == "Bearer key-1" for _, _, headers, _ in Stub.got)


def test_what_is_not_retried(stub):
    waits = []
    client = connect(stub, "key-1", retries=RetryPolicy(sleep=waits.append, max_retries=2, max_wait_s=60))
    Stub.script = [(429, {"Retry-After": "3600"})]  # longer than max_wait_s: the caller decides
    assert client.get_httpx_client().get("/v1/jobs/list").status_code == 429 and waits == []
    Stub.script = [(500, {}), (200, {})]  # a 500 may have done the work: never resent by the transport
    assert client.get_httpx_client().get("/v1/jobs/list").status_code == 500 and waits == []
    Stub.script = [(503, {}), (503, {}), (503, {}), (200, {})]  # no Retry-After: back-off, at most max_retries
    response = client.get_httpx_client().get("/v1/jobs/list")
    assert response.status_code == 503 and waits == [1.0, 2.0]
    error = ApiError.from_answer(response.status_code, response.content, response.headers)
    assert (error.status, error.code) == (503, "not_ready")


def test_the_async_client_retries_too(stub):
    waits = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def call():
        client = connect(stub, "key-2", retries=RetryPolicy(async_sleep=sleep))
        async with client:
            return await client.get_async_httpx_client().get("/v1/jobs/list")

    Stub.script = [(429, {"Retry-After": "4"}), (200, {})]
    assert asyncio.run(call()).status_code == 200 and waits == [4.0]
    assert [headers["Authorization"] for _, _, headers, _ in Stub.got] == ["Bearer key-2"] * 2


# -- against a served instance ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(demo_home, demo_keys, tmp_path_factory):
    """One `bentoml serve` of a copy of the demo, webhooks allowed to 127.0.0.1."""
    from builds.serving import serve

    work = tmp_path_factory.mktemp("served-clients")
    home = work / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("cache", "registry.db*", "audit", "bentoml"))
    snapshot_registry(demo_home, home / "registry.db")
    env = {"ATELIER_CACHE_DIR": str(work / "cache"), "ATELIER_AUDIT_DIR": str(work / "audit"), "ATELIER_WARMUP": "0",
           "ATELIER_SOURCE_FAILURES_PER_MINUTE": "0", "ATELIER_RENDER_WAIT_S": "60", "ATELIER_JOB_POLL_MS": "100",
           "ATELIER_DEV_CALLBACKS": "1"}
    server = serve(home, work, env=env)
    try:
        yield {"url": server.url, "demo": demo_keys["ATELIER_DEMO_KEY"], "admin": demo_keys["ATELIER_ADMIN_KEY"]}
    finally:
        server.stop()


class Hooks(BaseHTTPRequestHandler):
    """A platform's webhook receiver: 204 to every post; keeps the raw body and headers."""

    got: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).got.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def hooks():
    Hooks.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/atelier"
    server.shutdown()
    server.server_close()


def test_python_client_flows(served, hooks):
    from atelier_client.generated.api.admin import create_key, set_tenant_delivery
    from atelier_client.generated.api.generate import generate, generate_image
    from atelier_client.generated.api.jobs import cancel_job
    from atelier_client.generated.api.verify import verify_image
    from atelier_client.generated.models import (GenerateRequest, KeyCreateBody, TenantDeliveryBody,
                                                 VerifyImageFilesBody)
    from atelier_client.generated.types import File
    from atelier_client.jobs import iter_results, run_job, submit_job, wait_for_job

    tag = uuid.uuid4().hex[:8]
    admin = connect(served["url"], served["admin"])
    # the platform's key (the demo key's 60 requests a minute are too few for polling twice a second)
    platform = unwrap(create_key.sync_detailed(client=admin, body=KeyCreateBody.from_dict(
        {"tenant_id": "demo", "scopes": ["generate", "verify"], "name": f"py-{tag}", "requests_per_minute": 6000})))
    client = connect(served["url"], platform.token)

    # generate (JSON, base64), generate/image (bytes), verify
    result = unwrap(generate.sync_detailed(client=client, body=GenerateRequest.from_dict(
        {"twin_id": "demo-ava", "prompt": "a linen dress", "seed": 11, **SMALL})))
    data = base64.b64decode(result.images[0].data_base64)
    assert hashlib.sha256(data).hexdigest() == result.images[0].sha256
    image = unwrap(generate_image.sync_detailed(client=client, body=GenerateRequest.from_dict(
        {"twin_id": "demo-ava", "prompt": "a linen dress", "seed": 12, **SMALL})))
    png = image.payload.read()
    assert png.startswith(PNG)
    report = unwrap(verify_image.sync_detailed(client=client, body=VerifyImageFilesBody(
        image=File(payload=io.BytesIO(png), file_name="look.png", mime_type="image/png"))))
    assert report.made_by_this_service is True and report.generation_id

    # an error is one shape: status, stable code, field
    with pytest.raises(ApiError) as refused:
        unwrap(generate.sync_detailed(client=client, body=GenerateRequest.from_dict(
            {"twin_id": "demo-ava", "prompt": "a coat", **SMALL, "width": 100})))
    assert (refused.value.status, refused.value.code) == (422, "invalid_field") and "width" in refused.value.field

    # a job with webhooks: the receiver verifies them
    answer = unwrap(set_tenant_delivery.sync_detailed(client=admin, body=TenantDeliveryBody.from_dict(
        {"tenant_id": "demo", "webhook_url": hooks, "rotate_webhook_secret": True})))
    secret = answer.webhook_secret
    assert secret.startswith("whsec_")
    items = [{"twin_id": "demo-ava", "garment_description": garment, "scene": "studio_white", "sku": f"PY-{tag}-{i}",
              "seed": i, **SMALL} for i, garment in enumerate(["a red wool coat", "a white linen shirt", "a beige trench"])]
    body = {"webhook_per_item": True, "items": items}
    status, images = run_job(client, body, idempotency_key=f"py-{tag}-batch-1", poll_s=0.5, timeout_s=240)
    assert (status.status, status.items_done, status.items_failed) == ("completed", 3, 0)
    assert [item.sku for item, _, _ in images] == [f"PY-{tag}-{i}" for i in range(3)]
    assert all(data.startswith(PNG) for _, _, data in images)
    replay = submit_job(client, body, idempotency_key=f"py-{tag}-batch-1")  # a resend: the same job
    assert replay.job_id == status.job_id
    paged = [item.index for item in iter_results(client, status.job_id, page_size=1)]  # three pages
    assert paged == [0, 1, 2]

    deadline = time.monotonic() + 60
    mine = lambda: [(h, b) for h, b in Hooks.got if status.job_id.encode() in b]  # noqa: E731
    while time.monotonic() < deadline and not any(b"job.completed" in b for _, b in mine()):
        time.sleep(0.2)
    events = [verify_webhook(secret, raw, headers) for headers, raw in mine()]
    assert sorted(e["type"] for e in events) == ["job.completed"] + ["job.item.completed"] * 3
    assert events[-1]["type"] == "job.completed" and events[-1]["data"]["items_done"] == 3
    headers, raw = mine()[0]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, raw.replace(b"job", b"jab", 1), headers)

    # a real 429 (the key's one concurrent job), retried after its Retry-After
    minted = unwrap(create_key.sync_detailed(client=admin, body=KeyCreateBody.from_dict(
        {"tenant_id": "demo", "scopes": ["generate"], "name": f"py-retry-{tag}", "max_concurrent_jobs": 1,
         "requests_per_minute": 6000})))
    one = connect(served["url"], minted.token)
    blocker = submit_job(one, {"items": [{"twin_id": "demo-ava", "prompt": "a wool scarf", "seed": s, **SMALL}
                                         for s in range(4)]})

    waits = []

    def end_the_blocker(seconds: float) -> None:  # instead of waiting out the Retry-After
        waits.append(seconds)
        unwrap(cancel_job.sync_detailed(client=one, job_id=blocker.job_id))
        wait_for_job(one, blocker.job_id, poll_s=0.5, timeout_s=120)

    policy = RetryPolicy(sleep=end_the_blocker)
    second = submit_job(connect(served["url"], minted.token, retries=policy),
                        {"items": [{"twin_id": "demo-ava", "prompt": "a silk scarf", **SMALL}]})
    assert waits == [30.0] and second.job_id != blocker.job_id
    unwrap(cancel_job.sync_detailed(client=one, job_id=second.job_id))


@needs_typescript
def test_typescript_client_flows(served, tmp_path):
    tsc = TS / "node_modules" / "typescript" / "bin" / "tsc"
    built = subprocess.run(["node", str(tsc), "-p", "tsconfig.json"], cwd=TS, capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr  # the layer and the flows type-check
    env = {**os.environ, "ATELIER_URL": served["url"], "ATELIER_DEMO_KEY": served["demo"],
           "ATELIER_ADMIN_KEY": served["admin"], "TAG": uuid.uuid4().hex[:8]}
    ran = subprocess.run(["node", "dist/test/flows.js"], cwd=TS, env=env, capture_output=True, text=True, timeout=480)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-6000:]
    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    assert summary["error"] == {"status": 422, "code": "invalid_field", "field": summary["error"]["field"]}
    assert summary["job"]["items"] == 3 and summary["job"]["events"][-1] == "job.completed"
    assert sorted(summary["job"]["events"]) == ["job.completed"] + ["job.item.completed"] * 3
    assert summary["retry"]["waits"] == [30]
    assert summary["generate"]["verified"]

    # the README's example, as written (only its import points at the built package)
    from atelier_client.generated.api.admin import create_key
    from atelier_client.generated.models import KeyCreateBody

    key = unwrap(create_key.sync_detailed(client=connect(served["url"], served["admin"]), body=KeyCreateBody.from_dict(
        {"tenant_id": "demo", "scopes": ["generate"], "name": "ts-readme", "requests_per_minute": 6000})))
    example = readme_block(TS / "README.md", "ts").replace('"./dist/src/index.js"', json.dumps(str(TS / "dist/src/index.js")))
    (tmp_path / "example.mts").write_text(example)
    built = subprocess.run(["node", str(tsc), "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022",
                            "--lib", "es2022,dom", "--strict", "--skipLibCheck", "--types", "node", "--typeRoots",
                            str(TS / "node_modules" / "@types"), "--outDir", "out", "example.mts"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    ran = subprocess.run(["node", "out/example.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**env, "ATELIER_DEMO_KEY": key.token})
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert "AW26-COAT-RED 0" in ran.stdout and "completed" in ran.stdout


def readme_block(path: Path, language: str) -> str:
    """The first fenced `language` block of a README."""
    text = path.read_text()
    start = text.index(f"```{language}\n") + len(language) + 4
    return text[start:text.index("```", start)]


def test_the_python_readme_example_runs_as_written(served, tmp_path):
    from atelier_client.generated.api.admin import create_key
    from atelier_client.generated.models import KeyCreateBody

    admin = connect(served["url"], served["admin"])
    key = unwrap(create_key.sync_detailed(client=admin, body=KeyCreateBody.from_dict(
        {"tenant_id": "demo", "scopes": ["generate"], "name": "readme", "requests_per_minute": 6000})))
    (tmp_path / "example.py").write_text(readme_block(CLIENTS / "python" / "README.md", "python"))
    env = {**os.environ, "ATELIER_URL": served["url"], "ATELIER_DEMO_KEY": key.token}
    ran = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr[-4000:]
    written = list(tmp_path.glob("AW26-COAT-RED-0.*"))
    assert len(written) == 1 and written[0].read_bytes().startswith(PNG)


def test_a_client_that_waits_for_each_answer_is_never_refused_as_concurrent(served):
    """A key's concurrency slot is given back before its answer is sent: a client that sends
    one request at a time (as every SDK does) never meets `too_many_concurrent`, however soon
    it sends the next (the slot used to be released after the response, so a fast client's
    next request could find its own finished one still counted)."""
    admin = {"Authorization": f"Bearer {served['admin']}"}
    minted = httpx.post(served["url"] + "/v1/admin/keys", headers=admin, timeout=60, json={
        "tenant_id": "demo", "scopes": ["generate"], "name": f"serial-{uuid.uuid4().hex[:8]}",
        "max_concurrent_jobs": 1, "requests_per_minute": 100_000})
    assert minted.status_code == 201, minted.text
    refused = []
    with httpx.Client(base_url=served["url"], timeout=60,
                      headers={"Authorization": f"Bearer {minted.json()['token']}"}) as one_at_a_time:
        for _ in range(300):
            answer = one_at_a_time.get("/v1/twins")
            if answer.status_code != 200:
                refused.append((answer.status_code, answer.text[:200]))
    assert refused == []
