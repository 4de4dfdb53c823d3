"""Audit log append cost: appends/s and added latency per append, each record fsynced.

Measures on the disk that holds `--dir` (default: a temp dir under $ATELIER_HOME or ./var):
- raw `write + fsync` of one 300-byte line (the floor the disk sets);
- building a record without I/O (canonical JSON, sha256, uuid, timestamp);
- AuditLog.append from 1 thread and from 4 threads (group commit shares fsyncs), with an
  Ed25519 signer and the default checkpoint cadence, reporting appends/s and p50/p99 latency;
- reopening the log (replaying every record hash to rebuild the Merkle frontier).
The service's target is <= 2 ms p50 added per generation (one append).

Prints one JSON line and a short table.

    python bench/audit.py [--appends 2000] [--threads 4] [--dir DIR]
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
from service.audit.log import AuditLog  # noqa: E402
from service.audit.record import GENESIS_HASH, build_record  # noqa: E402


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


def appends(directory: Path, signer: CheckpointSigner, threads: int, per_thread: int) -> tuple[list[float], float, int]:
    log = AuditLog(directory, signer)
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
    return [x for chunk in latencies for x in chunk], elapsed, log.fsyncs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=2000, help="appends per configuration")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (the disk under test)")
    args = parser.parse_args(argv)
    base = args.dir or Path(os.environ.get("ATELIER_HOME") or "var")
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-audit-", dir=base))
    signer = CheckpointSigner(Ed25519PrivateKey.generate())
    try:
        raw = raw_fsync(work, args.appends)
        cpu = build_only(args.appends)
        single, single_s, single_syncs = appends(work / "one", signer, 1, args.appends)
        multi, multi_s, multi_syncs = appends(work / "many", signer, args.threads, args.appends // args.threads)
        start = time.perf_counter()
        AuditLog(work / "many", signer, checkpoint_seconds=0).close()
        reopen_s = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def ms(values: list[float], q: float) -> float:
        return round(percentile(values, q) * 1e3, 3)

    result = {
        "bench": "audit",
        "machine": machine(),
        "filesystem_dir": str(base.resolve()),
        "appends": args.appends,
        "raw_write_fsync_ms": {"p50": ms(raw, 0.5), "p99": ms(raw, 0.99)},
        "build_record_ms": {"p50": ms(cpu, 0.5), "p99": ms(cpu, 0.99)},
        "single_thread": {"appends_per_s": round(len(single) / single_s, 1), "p50_ms": ms(single, 0.5), "p99_ms": ms(single, 0.99), "fsyncs": single_syncs},
        f"threads_{args.threads}": {"appends_per_s": round(len(multi) / multi_s, 1), "p50_ms": ms(multi, 0.5), "p99_ms": ms(multi, 0.99), "fsyncs": multi_syncs},
        "reopen_replay_s": {"records": len(multi), "seconds": round(reopen_s, 4)},
        "target_p50_ms": 2.0,
    }
    print(json.dumps(result))
    print()
    print(f"{'measure':<28}{'appends/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'fsyncs':>8}")
    print(f"{'raw write+fsync':<28}{'':>12}{ms(raw, 0.5):>10.3f}{ms(raw, 0.99):>10.3f}")
    print(f"{'build record (no I/O)':<28}{'':>12}{ms(cpu, 0.5):>10.3f}{ms(cpu, 0.99):>10.3f}")
    for name, key in (("append, 1 thread", "single_thread"), (f"append, {args.threads} threads", f"threads_{args.threads}")):
        row = result[key]
        print(f"{name:<28}{row['appends_per_s']:>12.1f}{row['p50_ms']:>10.3f}{row['p99_ms']:>10.3f}{row['fsyncs']:>8}")
    print(f"reopen ({len(multi)} records): {reopen_s * 1e3:.1f} ms; target p50 <= 2 ms per append")
    return 0


if __name__ == "__main__":
    sys.exit(main())
