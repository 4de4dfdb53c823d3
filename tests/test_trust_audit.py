"""An audit write failure heals by itself, says nothing of the machine, and takes readiness away
while it lasts (finding 2). The registry's disk is made to refuse writes for real: a child
process sets its own file-size limit (RLIMIT_FSIZE) at the size of the SQLite write-ahead log,
the way a full disk refuses them, then lifts it. The compact ledger of unauthenticated refusals is tested here too."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT


def run_child(script: str, timeout: float = 180) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_failed_audit_write_is_a_clean_503_and_heals_when_the_disk_does(tmp_path):
    report = run_child(f"""
        import json, resource
        from pathlib import Path
        from service.audit.archive import ChainArchive
        from service.audit.checkpoint import CheckpointSigner
        from service.audit.chain import ChainLog
        from service.audit.recorder import Recorder
        from service.audit.verify import verify_log
        from service.errors import AtelierError
        from service.registry import open_registry
        from service.registry.audit import AuditRecords
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        db = Path({str(tmp_path / "registry.db")!r})
        store = AuditRecords(open_registry(f"sqlite:///{{db}}").db)
        signer = CheckpointSigner(Ed25519PrivateKey.generate())
        log = ChainLog(store, signer, checkpoint_every=4)
        recorder = Recorder(log, "verbatim")
        recorder.heal_interval_s = 0
        for i in range(6):
            recorder.record({{"event": "before", "i": i}})
        wal = db.with_name(db.name + "-wal")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (wal.stat().st_size + 10, hard))  # the disk is full
        answers = []
        for i in range(3):
            try:
                recorder.record({{"event": "during", "i": i, "padding": "x" * 200}})
                answers.append("recorded")
            except AtelierError as exc:
                answers.append([exc.status, exc.code, exc.message, exc.response_headers()])
        ready_while_full = recorder.available()
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
        ready_after = recorder.available()
        recorder.record({{"event": "after"}})
        recorder.close()
        records = list(store.iter_records())
        archive = ChainArchive(store, Path({str(tmp_path / "archive")!r}))
        results = [verify_log(archive.export(c.log_id, Path({str(tmp_path)!r}, c.log_id)), [signer.public_key])
                   for c in store.chains()]
        print(json.dumps({{"answers": answers, "ready_while_full": ready_while_full, "ready_after": ready_after,
                           "events": [r["event"] for r in records], "resumed": [r for r in records if r["event"] == "audit_resumed"],
                           "chains": [[c.size, c.ended_at is not None] for c in store.chains()],
                           "verified": all(r.ok for r in results), "errors": [str(e) for r in results for e in r.problems]}}))
    """)
    assert report["ready_while_full"] is False and report["ready_after"] is True
    for status, code, message, headers in report["answers"]:
        assert (status, code) == (503, "audit_unavailable") and headers == {"Retry-After": "5"}
        assert "SQLITE" not in message and "/" not in message and "Errno" not in message  # nothing of the machine
    # nothing uncommitted kept: the broken chain ends after its 6 records; a new one goes on
    assert report["events"] == ["before"] * 6 + ["audit_resumed", "after"]
    assert report["chains"] == [[6, True], [2, True]]
    [resumed] = report["resumed"]
    assert resumed["reason"].startswith("OperationalError:SQLITE_") and resumed["refused_appends"] >= 3
    assert resumed["unavailable_since"]
    assert report["verified"], report["errors"]  # both chains are whole, and checkpointed


def test_the_gateway_answers_audit_unavailable_and_is_not_ready_until_it_heals(demo_home, tmp_path):
    """The whole gateway in a child process: a route's record cannot be written -> 503 in our
    shape, readiness (what /readyz reports) false; space again -> served and ready, no restart."""
    import shutil

    from tests.conftest import snapshot_registry

    home = tmp_path / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("cache", "registry.db*", "audit", "bentoml"))
    snapshot_registry(demo_home, home / "registry.db")
    report = run_child(f"""
        import json, os, resource
        from pathlib import Path
        os.environ.update({{"ATELIER_HOME": {str(home)!r}, "ATELIER_JOBS_WORKER": "0", "ATELIER_WARMUP": "0"}})
        from starlette.testclient import TestClient
        from builds.demo import read_demo_env
        from service.config import get_settings
        from service.gateway.api import build_api
        from service.gateway.core import GatewayCore
        from service.gateway.render_client import HttpRenderClient

        keys = read_demo_env(Path({str(home)!r}) / "demo.env")
        core = GatewayCore.build(get_settings(), HttpRenderClient("http://127.0.0.1:9"))
        core.audit.heal_interval_s = 0
        api = build_api()
        api.state.core = core
        client = TestClient(api, headers={{"Authorization": "Bearer " + keys["ATELIER_ADMIN_KEY"]}})
        first = client.get("/admin/twins/list").status_code  # also writes the key's last_used_at
        wal = Path({str(home)!r}, "registry.db-wal")  # the registry, where the audit record is committed
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (wal.stat().st_size + 10, hard))
        full = client.get("/admin/twins/list")
        ready_while_full = core.audit.available()
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        ready_after = core.audit.available()
        after = client.get("/admin/twins/list").status_code
        core.close()
        print(json.dumps({{"first": first, "full": [full.status_code, full.json(), full.headers.get("retry-after")],
                           "ready_while_full": ready_while_full, "ready_after": ready_after, "after": after}}))
    """)
    status, body, retry = report["full"]
    assert (status, body["error"]["code"]) == (503, "audit_unavailable") and retry == "5"
    assert "SQLITE" not in json.dumps(body) and str(home) not in json.dumps(body)
    assert report["first"] == report["after"] == 200
    assert report["ready_while_full"] is False and report["ready_after"] is True


def test_the_refusal_ledger_records_firsts_at_once_and_counts_the_rest():
    from service.audit.refusals import OTHER, UNMATCHED, RefusalLedger
    from service.errors import AtelierError, Unauthorized

    records, now = [], [600.0]
    ledger = RefusalLedger(records.append, known_routes={"/v1/generate"}, max_sources=2, max_kinds=2,
                           clock=lambda: now[0])
    missing = Unauthorized("x", code="missing_api_key")
    for _ in range(50):
        ledger.refused("/v1/generate", missing, "198.51.100.1")
    ledger.refused("/v1/../etc/passwd" + "A" * 5000, missing, "198.51.100.1")
    ledger.refused("/v1/generate", AtelierError("x", code="other_kind"), "198.51.100.1")  # past max_kinds
    ledger.refused("/v1/generate", missing, "198.51.100.2")
    ledger.refused("/v1/generate", missing, "198.51.100.3")  # past max_sources
    assert [(r["route"], r["reason"], r["client_ip"]) for r in records] == [
        ("/v1/generate", "missing_api_key", "198.51.100.1"), (UNMATCHED, "missing_api_key", "198.51.100.1"),
        ("/v1/generate", "other_kind", "198.51.100.1"),  # the first kind past max_kinds, once
        ("/v1/generate", "missing_api_key", "198.51.100.2"), ("/v1/generate", "missing_api_key", "198.51.100.3")]
    assert all(r["event"] == "refused_at_edge" and r["unauthenticated"] for r in records)
    now[0] += 60  # the minute is over: the next refusal (or the timer) writes its summaries
    ledger.refused("/v1/generate", missing, "198.51.100.1")
    summaries = [r for r in records if r["event"] == "refused_unauthenticated"]
    assert [(s["client_ip"], s["total"]) for s in summaries] == [("198.51.100.1", 52)]  # sources with nothing unrecorded: none
    assert summaries[0]["counts"] == {"401 missing_api_key /v1/generate": 50, f"401 missing_api_key {UNMATCHED}": 1,
                                      OTHER: 1}
    assert summaries[0]["minute"] == "1970-01-01T00:10Z"
