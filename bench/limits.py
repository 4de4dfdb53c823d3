"""Fleet-wide rate limits: what one admission's atomic update costs in the registry.

Measures `RateLimits.spend` (service/registry/limits.py: one `INSERT ... ON CONFLICT DO
UPDATE ... WHERE ... RETURNING` in its own transaction) on SQLite (a file in a temp dir, WAL,
`BEGIN IMMEDIATE`) and, when `--pg URL` (or ATELIER_TEST_PG_URL) is given, on PostgreSQL:
- admitted spends over many keys (the common case: each request's key has budget left);
- refused spends on one spent key (the upsert finds nothing, plus one read for Retry-After);
- 4 threads spending 4 keys at once (SQLite serialises writers; PostgreSQL locks rows);
each as p50/p99 milliseconds of the call, over fresh connections from the pool as the gateway
uses them. Prints one JSON line and a short table.

    python bench/limits.py [--n 2000] [--pg postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.registry import Database, open_registry  # noqa: E402
from service.registry.limits import RateLimits  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(call, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(ms: list[float]) -> dict:
    return {"p50_ms": round(percentile(ms, 0.5), 3), "p99_ms": round(percentile(ms, 0.99), 3), "n": len(ms)}


def measure(url: str, n: int) -> dict:
    open_registry(url).engine.dispose()  # schema at head (0008)
    db = Database(url)
    limits = RateLimits(db)
    try:
        timed(lambda i: limits.spend(f"bench-warm:{i % 50}", 60_000, 100), 200)
        admitted = timed(lambda i: limits.spend(f"bench-admit:{i % 500}", 60_000, 6_001), n)
        limits.spend("bench-spent", 1, 1)
        refused = timed(lambda i: limits.spend("bench-spent", 1, 1), n // 4)
        threaded: list[float] = []
        lock = threading.Lock()

        def worker(k: int) -> None:
            got = timed(lambda i: limits.spend(f"bench-thread:{k}", 60_000, 6_001), n // 4)
            with lock:
                threaded.extend(got)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"admitted": summary(admitted), "refused": summary(refused), "4 threads": summary(threaded)}
    finally:
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--pg", default=os.environ.get("ATELIER_TEST_PG_URL"))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'registry.db'}", args.n)
    if args.pg:
        results["postgresql"] = measure(args.pg, args.n)
    print(json.dumps({"bench": "limits", "cores": os.cpu_count(), "python": platform.python_version(), **results}))
    print(f"{'database':<12}{'case':<12}{'p50 ms':>10}{'p99 ms':>10}")
    for database, cases in results.items():
        for case, s in cases.items():
            print(f"{database:<12}{case:<12}{s['p50_ms']:>10}{s['p99_ms']:>10}")


if __name__ == "__main__":
    main()
