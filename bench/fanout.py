"""Fan-out of one catalogue job: images/s with one renderer worker and with two.

Starts a real `bentoml serve` (gateway + renderer) twice on a copy of the demo home, with
ATELIER_RENDERER_WORKERS=1 and then 2 (one torch thread each, ATELIER_CPU_THREADS=1), submits
one 40-item job (256 px, `--steps`, inline delivery; the dispatch window one call deeper than
the workers, as a platform's queue holds the next call) and takes its time from the job's own
created_at and finished_at (status is polled every 0.5 s, so polling costs the gateway
little). The ratio is the fan-out's speed-up; on a 2-core machine the gateway's own work
(dispatch, audit, delivery) shares the cores with the two workers. Prints one JSON line and
a short table, and warns when a two-worker run did not spread; docs/BENCHMARKS.md quotes it
with the machine.

    python bench/fanout.py [--items 40] [--steps 8] [--rounds 1] [--logs DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, median  # noqa: E402
from builds.demo import ENV_FILE, build_demo, read_demo_env  # noqa: E402
from builds.serving import serve  # noqa: E402


def copy_home(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("cache", "audit", "registry.db*", "bentoml"))
    src, dst = sqlite3.connect(source / "registry.db"), sqlite3.connect(target / "registry.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


def run_job(workers: int, home: Path, items: int, steps: int, logs: Path | None = None) -> dict:
    import httpx

    token = read_demo_env(home / ENV_FILE)["ATELIER_DEMO_KEY"]
    env = {"ATELIER_RENDERER_WORKERS": str(workers), "ATELIER_RENDERER_CONCURRENCY": "1", "ATELIER_CPU_THREADS": "1",
           "ATELIER_DISPATCH_WINDOW": str(workers + 1)}  # one call queued per replica, as a platform's queue holds it
    with tempfile.TemporaryDirectory() as workdir, serve(home, Path(workdir), env=env) as server, httpx.Client(
            base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as client:
        server.wait_for_log('"logger": "atelier.renderer", "event": "ready"', count=workers)  # every worker loaded
        body = {"items": [{"twin_id": "demo-ava", "prompt": "linen dress, studio", "width": 256, "height": 256,
                           "steps": steps, "seed": i, "sku": f"B-{i}"} for i in range(items)]}
        warm = {k: v for k, v in body["items"][0].items() if k != "sku"}
        client.post("/v1/generate", json={**warm, "seed": 99}).raise_for_status()  # first-call costs out of the timing
        job_id = client.post("/v1/jobs/submit", json=body).json()["job_id"]
        # Polled slowly (each poll costs the gateway CPU the job needs); the job's own
        # created_at..finished_at is the time taken, whatever the polling.
        while (status := client.get("/v1/jobs/status", params={"job_id": job_id}).json())["status"] not in (
                "completed", "failed"):
            time.sleep(0.5)
        seconds = (datetime.fromisoformat(status["finished_at"]) - datetime.fromisoformat(status["created_at"])).total_seconds()
        rendered_by: Counter = Counter()
        offset = 0
        while offset is not None:
            page = client.get("/v1/jobs/get", params={"job_id": job_id, "offset": offset, "limit": 100}).json()
            rendered_by.update(item.get("rendered_by") for item in page["items"])
            offset = page["next_offset"]
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(server.log_path, logs / f"{home.name}.log")
    return {"seconds": round(seconds, 2), "images_per_s": round(items / seconds, 3),
            "items_per_worker": sorted(rendered_by.values())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="runs per worker count (alternating); medians reported")
    parser.add_argument("--logs", type=Path, help="keep each run's server log in this folder")
    args = parser.parse_args(argv)

    runs: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as scratch:
        demo = Path(scratch) / "demo"
        build_demo(demo)
        for round_ in range(args.rounds):
            for workers in (1, 2):
                home = copy_home(demo, Path(scratch) / f"home-{workers}-{round_}")
                runs[workers].append(run_job(workers, home, args.items, args.steps, args.logs))
    one = median([r["images_per_s"] for r in runs[1]])
    two = median([r["images_per_s"] for r in runs[2]])
    report = {"bench": "fanout", "machine": describe(), "items": args.items, "size": 256, "steps": args.steps,
              "one_worker_images_per_s": one, "two_workers_images_per_s": two, "speedup": round(two / one, 3),
              "target_speedup": 1.7, "runs": runs}
    print(json.dumps(report))
    print(f"{'renderer workers':<20}{'images/s':>10}{'items per worker':>22}")
    for workers in (1, 2):
        print(f"{workers:<20}{median([r['images_per_s'] for r in runs[workers]]):>10.3f}"
              f"{str(runs[workers][-1]['items_per_worker']):>22}")
    print(f"speed-up with two workers: {report['speedup']:.2f}x (target >= 1.7x)")
    uneven = [r["items_per_worker"] for r in runs[2] if len(r["items_per_worker"]) < 2
              or min(r["items_per_worker"]) < args.items / 3]
    if uneven:  # the render calls did not spread: keep the logs (--logs) to see which worker took them
        print(f"warning: {len(uneven)} two-worker run(s) did not spread: {uneven}")
    return report


if __name__ == "__main__":
    main()
