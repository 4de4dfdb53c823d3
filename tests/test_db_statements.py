"""How many SQL statements a catalogue item costs the gateway, from submit to webhook.

A job is submitted over the gateway's router (`POST /jobs/submit`, with an Idempotency-Key),
dispatched here one leased group at a time (as the dispatcher's loop does, without its
threads), rendered by the session's tiny pipeline in process, and its `job.completed` posted
to a local receiver by the webhook sender. Every statement the gateway's registry engine
runs in that span is counted (`before_cursor_execute`; SQLite's `BEGIN IMMEDIATE` is counted
apart, as transactions: PostgreSQL sends no such statement), and apart those on the job
queue's own tables (jobs, items, tenant settings, presets, webhook deliveries). The renderer
has its own registry here, as in production, and is not counted.

Measured on SQLite (issue 26), statements in all (of them on the queue's tables):

    job of           before (commit 49054de)    after
    1 item           48 (31)                    45 (26)
    4 items          77 (50), 19.2 per item     54 (29), 13.5 per item
    each further     9.7 (6.3)                  3.0 (1.0)

(One lease and one render call per group; the key that submitted the job and the item's twin
read once per group, not per item; which leases still hold read once per group, and a group
recorded in one transaction with the job settled once; the tenant's delivery settings read
once per submission; canceled jobs reaped once per lease; the webhook claim read back by its
own UPDATE. The rest of the registry's share is admission, consent and idempotency.)

The bounds are what the current code meets with a little room; a change that adds a
statement per item breaks them.

Since the audit record moved into the registry (issue 27), each record is two statements on
the audit tables (the chain's tail moved, the record inserted: one transaction, shared by
concurrent records): the job's submission and each item's generation, so 2 x (items + 1).
They are counted apart (`AUDIT_PER_RECORD`). The rest grew by three statements per job, none
per item (2026-12-06): the submission takes the key's row lock and counts its open jobs again
in the transaction that writes the job (two gateways cannot both take the last slot), and the
consent decision reads the tenant's licences the person signed (issue 28) with its facts.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import event

from tests.conftest import SMALL

ITEM = {"twin_id": "demo-ava", "scene": "studio_white", "garment_description": "a linen shirt", **SMALL}
BOUND = {1: 50, 4: 60}  # items in the job -> most statements allowed from submit to webhook
QUEUE_BOUND = {1: 27, 4: 30}  # of them, on the job queue's own tables (the recount at submission: +1)
QUEUE_TABLES = re.compile(r"\b(jobs|job_items|tenant_settings|scene_presets|webhook_deliveries)\b")
AUDIT_TABLES = re.compile(r"\b(audit_chains|audit_records|audit_checkpoints)\b")
AUDIT_PER_RECORD = 2  # the chain's tail and the record, in one transaction
GENERATION_BOUND = 9  # statements of one synchronous generation, audit included (7 on 2026-12-07)
GENERATION_WRITE_TRANSACTIONS = 2  # of its transactions, those taking SQLite's write lock: the rate limit, the record


class Receiver(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):
        type(self).got.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def receiver():
    Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def gateway(copied_home, engine, tmp_path):
    """The gateway's core and router over a private copy of the demo, with no background
    thread (no dispatcher, no webhook sender, no watcher): every statement is this test's."""
    from starlette.testclient import TestClient

    from service.config import Settings
    from service.gateway.api import build_api
    from service.gateway.core import GatewayCore
    from service.gateway.render_client import LocalRenderClient
    from service.registry import open_registry
    from service.renderer.runtime import RendererRuntime
    from service.tenancy.revocation import RevocationWatcher

    settings = Settings.from_env({
        "ATELIER_HOME": str(copied_home), "ATELIER_AUDIT_DIR": str(tmp_path / "audit"), "ATELIER_WARMUP": "0",
        "ATELIER_DEV_CALLBACKS": "1", "ATELIER_JOBS_WORKER": "0",
    })
    renderer_registry = open_registry(settings.db_url)
    runtime = RendererRuntime(settings, renderer_registry, engine, RevocationWatcher(renderer_registry, lambda twin: None))
    core = GatewayCore.build(settings, LocalRenderClient(runtime))
    app = build_api()
    app.state.core = core
    with TestClient(app) as client:
        yield core, client
    core.close()
    core.registry.engine.dispose()
    renderer_registry.engine.dispose()


def run_job(core, client, receiver, headers: dict, items: int) -> tuple[list[str], int]:
    """Submit, dispatch and announce one job of `items` items; (statements, transactions)."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    Receiver.got = []
    event.listen(core.registry.engine, "before_cursor_execute", count)
    try:
        body = {"items": [{**ITEM, "sku": f"S-{i}", "seed": i} for i in range(items)]}
        submitted = client.post("/jobs/submit", json=body, headers={**headers, "Idempotency-Key": f"count-{items}"})
        assert submitted.status_code == 202, submitted.text
        for _ in range(items + 1):  # leases until the queue is empty, as the dispatcher's loop
            leases = core.jobs.renders.lease()
            if not leases:
                break
            core.jobs.renders.dispatch(leases)
        assert core.jobs.dispatcher.send_due()
    finally:
        event.remove(core.registry.engine, "before_cursor_execute", count)
    assert len(Receiver.got) == 1 and b'"job.completed"' in Receiver.got[0] and b'"items_done":%d' % items in Receiver.got[0]
    begins = sum(1 for s in statements if s.strip().upper().startswith("BEGIN"))
    return [s for s in statements if not s.strip().upper().startswith("BEGIN")], begins


def test_statements_per_catalogue_item_from_submit_to_webhook(gateway, receiver, demo_keys, admin_headers):
    core, client = gateway
    settings = client.post("/admin/tenants/delivery", headers=admin_headers,
                           json={"tenant_id": "demo", "webhook_url": receiver, "rotate_webhook_secret": True})
    assert settings.status_code == 200, settings.text
    headers = {"Authorization": f"Bearer {demo_keys['ATELIER_DEMO_KEY']}"}
    counted = {}
    for items in sorted(BOUND):
        statements, transactions = run_job(core, client, receiver, headers, items)
        counted[items] = len(statements)
        print(f"{items} item(s): {len(statements)} statements in {transactions} transactions, "
              f"{len(statements) / items:.1f} per item")
        listing = "\n".join(" ".join(s.split())[:120] for s in statements)
        queue = [s for s in statements if QUEUE_TABLES.search(s.split("WHERE")[0]) and "api_keys" not in s]
        audit = [s for s in statements if AUDIT_TABLES.search(s.split("WHERE")[0])]
        assert len(audit) <= AUDIT_PER_RECORD * (items + 1), listing  # job.submit and each generation
        assert len(statements) - len(audit) <= BOUND[items], listing
        assert len(queue) <= QUEUE_BOUND[items], listing
    print(f"each further item: {(counted[4] - counted[1]) / 3:.1f} statements")


def test_statements_per_synchronous_generation(gateway, demo_keys):
    """A `POST /generate` answered 200 costs the registry a bounded number of statements and
    transactions (admission, consent, the watermark check and the audit record): the gateway's
    share of every image's latency (issue 27). Printed, so a change shows what it added."""
    core, client = gateway
    headers = {"Authorization": f"Bearer {demo_keys['ATELIER_DEMO_KEY']}"}
    body = {"twin_id": "demo-ava", "prompt": "a linen shirt", **SMALL}
    assert client.post("/generate", json=body, headers=headers).status_code == 200  # warm: caches filled
    statements: list[tuple[str, bool]] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append((statement, bool(conn.get_execution_options().get("atelier_read_only"))))

    event.listen(core.registry.engine, "before_cursor_execute", count)
    try:
        answered = client.post("/generate", json=body, headers=headers)
    finally:
        event.remove(core.registry.engine, "before_cursor_execute", count)
    assert answered.status_code == 200, answered.text
    begins = [s for s, _ in statements if s.strip().upper().startswith("BEGIN")]
    writing = [s for s in begins if "IMMEDIATE" in s.upper()]
    listing = "\n".join(("R " if read else "W ") + " ".join(s.split())[:140] for s, read in statements)
    print(f"one generation: {len(statements) - len(begins)} statements, {len(begins)} transactions "
          f"({len(writing)} taking SQLite's write lock)\n{listing}")
    assert len(statements) - len(begins) <= GENERATION_BOUND, listing
    assert len(writing) <= GENERATION_WRITE_TRANSACTIONS, listing
