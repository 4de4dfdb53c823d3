"""Cold start of a replica: process start -> HTTP up -> ready -> first image, phase by phase.

Starts a real `bentoml serve` on the demo pipeline (CPU here), polls `/livez` and `/readyz`,
sends the first generation the moment it is ready, and reads the service's own start-up
phases (weights, backend, prefetch, warm-up) from its `ready` log line. Runs it `--runs`
times and reports medians. Prints one JSON line and a short table; docs/SCALING.md quotes it.

    python bench/coldstart.py [--runs 3] [--size 256] [--steps 4] [--prefetch demo-ava]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, median  # noqa: E402
from builds.demo import build_demo, read_demo_env  # noqa: E402
from builds.serving import free_port  # noqa: E402


def poll(url: str, deadline: float) -> float:
    """Seconds (monotonic clock) at which `url` first answered 200."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.monotonic()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer 200 in time")


def ready_phases(log_path: Path) -> dict:
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"event": "ready"' in line:
            return json.loads(line).get("startup_ms", {})
    return {}


def one_cold_start(home: Path, workdir: Path, args) -> dict:
    import os
    import subprocess

    port = free_port()
    env = {**os.environ, "ATELIER_HOME": str(home), "BENTOML_HOME": str(workdir / "bentoml"), "BENTOML_DO_NOT_TRACK": "True",
           "ATELIER_AUDIT_DIR": str(workdir / "audit"), "ATELIER_CACHE_DIR": str(workdir / "cache"),
           "ATELIER_PREFETCH": args.prefetch, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    log_path = workdir / "server.log"
    bentoml = Path(sys.executable).with_name("bentoml")
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([str(bentoml), "serve", "service.gateway.service:Gateway", "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=Path(__file__).resolve().parent.parent, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = started + 300
        live = poll(url + "/livez", deadline)
        ready = poll(url + "/readyz", deadline)
        body = json.dumps({"twin_id": args.twin, "prompt": "studio photo, linen dress", "width": args.size,
                           "height": args.size, "steps": args.steps, "seed": 1}).encode()
        request = urllib.request.Request(url + "/v1/generate/image", data=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {read_demo_env(home / 'demo.env')['ATELIER_DEMO_KEY']}"})
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
        first_image = time.monotonic()
    finally:
        import os
        import signal

        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
    return {
        "process_to_live_s": round(live - started, 3),
        "live_to_ready_s": round(ready - live, 3),
        "ready_to_first_image_s": round(first_image - ready, 3),
        "process_to_first_image_s": round(first_image - started, 3),
        "service_phases_ms": ready_phases(log_path),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--twin", default="demo-ava")
    parser.add_argument("--prefetch", default="demo-ava", help="ATELIER_PREFETCH for the replica")
    parser.add_argument("--home", type=Path, default=None, help="demo home (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = build_demo(args.home or Path(tmp) / "home").home
        runs = []
        for index in range(args.runs):
            workdir = Path(tmp) / f"run-{index}"
            workdir.mkdir()
            runs.append(one_cold_start(home, workdir, args))
    keys = ("process_to_live_s", "live_to_ready_s", "ready_to_first_image_s", "process_to_first_image_s")
    phases = sorted({name for run in runs for name in run["service_phases_ms"]})
    report = {
        "bench": "coldstart",
        "request": {"size": args.size, "steps": args.steps, "twin": args.twin, "prefetch": args.prefetch},
        "runs": runs,
        "median": {key: round(median([run[key] for run in runs]), 3) for key in keys},
        "median_service_phases_ms": {name: round(median([run["service_phases_ms"].get(name, 0.0) for run in runs]), 1)
                                     for name in phases},
        "machine": describe(),
    }
    print(json.dumps(report))
    print(f"{'phase (median of ' + str(args.runs) + ')':<34}{'seconds':>10}")
    for key in keys:
        print(f"{key:<34}{report['median'][key]:>10.2f}")
    for name, ms in report["median_service_phases_ms"].items():
        print(f"{'  in ready: ' + name:<34}{ms / 1000:>10.2f}")
    return report


if __name__ == "__main__":
    main()
