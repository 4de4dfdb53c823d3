"""Audit append cost: appends/s and added latency per append, each record committed to the registry.

Measures on the disk that holds `--dir` (default: a temp dir under $ATELIER_HOME or ./var):
- raw `write + fsync` of one 300-byte line (the floor the disk sets; the old local log's cost);
- building a record without I/O (canonical JSON, sha256, uuid, timestamp);
- ChainLog.append (the gateway's audit write: one transaction on the registry database, the
  embedded SQLite in WAL mode with full sync, and PostgreSQL when `--pg-url` names one) from 1
  thread and from 4 threads (group commit shares transactions), with an Ed25519 signer and
  the default checkpoint cadence, reporting appends/s and p50/p99 latency.
The service's target is <= 2 ms p50 added per generation (one append).

Prints one JSON line and a short table.

    python bench/audit.py [--appends 2000] [--threads 4] [--dir DIR] [--pg-url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from service.audit.checkpoint import CheckpointSigner  # noqa: E402
from service.audit.chain import ChainLog  # noqa: E402
from service.audit.record import GENESIS_HASH, build_record  # noqa: E402
from service.registry import open_registry  # noqa: E402
from service.registry.audit import AuditRecords  # noqa: E402


def machine() -> dict:
    try:
        from bench.machine import describe

        return describe()
    except Exception:  # torch missing: the audit bench does not need it
        return {"cores": os.cpu_count(), "python": platform.python_version()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def event(i: int) -> dict:
    return {
        "type": "generation", "tenant": "acme-fashion", "key_id": "k_3f9a2c", "twin_id": "twin-0042",
        "generation_id": f"gen-{i:08d}", "outcome": "ok", "num_images": 4, "seed": 1234 + i,
        "prompt_sha256": "9f" * 32, "width": 1024, "height": 1024, "steps": 30, "latency_ms": 2310,
    }


def raw_fsync(directory: Path, n: int) -> list[float]:
    path = directory / "raw.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    line = b"x" * 299 + b"\n"
    times = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            os.write(fd, line)
            os.fsync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return times


def build_only(n: int) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        build_record(event(i), i + 1, GENESIS_HASH)
        times.append(time.perf_counter() - start)
    return times


def appends(db_url: str, signer: CheckpointSigner, threads: int, per_thread: int) -> tuple[list[float], float, int]:
    """`ChainLog.append` (committed to the registry at `db_url`) from `threads` threads."""
    registry = open_registry(db_url)
    log = ChainLog(AuditRecords(registry.db), signer)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def worker(t: int) -> None:
        barrier.wait()
        mine = latencies[t]
        for i in range(per_thread):
            start = time.perf_counter()
            log.append(event(t * per_thread + i))
            mine.append(time.perf_counter() - start)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    log.close()
    registry.engine.dispose()
    return [x for chunk in latencies for x in chunk], elapsed, log.commits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=2000, help="appends per configuration")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite registry goes (the disk under test)")
    parser.add_argument("--pg-url", default=os.environ.get("ATELIER_BENCH_PG_URL"),
                        help="an empty PostgreSQL database to measure too (its tables are created; default "
                             "$ATELIER_BENCH_PG_URL)")
    args = parser.parse_args(argv)
    base = args.dir or Path(os.environ.get("ATELIER_HOME") or "var")
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-audit-", dir=base))
    signer = CheckpointSigner(Ed25519PrivateKey.generate())
    stores = {"sqlite": (f"sqlite:///{work / 'one.db'}", f"sqlite:///{work / 'many.db'}")}
    if args.pg_url:
        stores["postgresql"] = (args.pg_url, args.pg_url)
    measured = {}
    try:
        raw = raw_fsync(work, args.appends)
        cpu = build_only(args.appends)
        for name, (one, many) in stores.items():
            measured[name] = (appends(one, signer, 1, args.appends),
                              appends(many, signer, args.threads, args.appends // args.threads))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def ms(values: list[float], q: float) -> float:
        return round(percentile(values, q) * 1e3, 3)

    def row(sample) -> dict:
        values, seconds, commits = sample
        return {"appends_per_s": round(len(values) / seconds, 1), "p50_ms": ms(values, 0.5), "p99_ms": ms(values, 0.99),
                "commits": commits}

    result = {
        "bench": "audit",
        "machine": machine(),
        "filesystem_dir": str(base.resolve()),
        "appends": args.appends,
        "raw_write_fsync_ms": {"p50": ms(raw, 0.5), "p99": ms(raw, 0.99)},
        "build_record_ms": {"p50": ms(cpu, 0.5), "p99": ms(cpu, 0.99)},
        **{f"{name}_single_thread": row(single) for name, (single, _) in measured.items()},
        **{f"{name}_threads_{args.threads}": row(multi) for name, (_, multi) in measured.items()},
        "target_p50_ms": 2.0,
    }
    print(json.dumps(result))
    print()
    print(f"{'measure':<32}{'appends/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'commits':>8}")
    print(f"{'raw write+fsync':<32}{'':>12}{ms(raw, 0.5):>10.3f}{ms(raw, 0.99):>10.3f}")
    print(f"{'build record (no I/O)':<32}{'':>12}{ms(cpu, 0.5):>10.3f}{ms(cpu, 0.99):>10.3f}")
    for name in measured:
        for label, key in (("1 thread", f"{name}_single_thread"), (f"{args.threads} threads", f"{name}_threads_{args.threads}")):
            r = result[key]
            print(f"{name + ' append, ' + label:<32}{r['appends_per_s']:>12.1f}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}"
                  f"{r['commits']:>8}")
    print("target p50 <= 2 ms per append")
    return 0


if __name__ == "__main__":
    sys.exit(main())
