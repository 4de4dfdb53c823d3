"""HTTP overhead of the service: p50 of POST /v1/generate over HTTP vs the engine in-process.

Starts a real `bentoml serve` on a free loopback port and loads the same pipeline in this
process; both are warmed, then the same request is sent alternately (HTTP, in-process) so
drift on a shared machine hits both equally. Prints one JSON line and a short table.

    python bench/generate.py [--rounds 30] [--size 256] [--steps 4] [--twin demo-ava]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, median  # noqa: E402
from builds.demo import build_demo  # noqa: E402
from builds.serving import serve  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--twin", default="demo-ava")
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("ATELIER_HOME", "var")))
    args = parser.parse_args(argv)

    import httpx

    from service.config import Settings
    from service.engine import Engine
    from service.schemas import GenerateRequest

    home = build_demo(args.home)
    body = {"twin_id": args.twin, "prompt": "studio photo of a model in a linen dress", "width": args.size,
            "height": args.size, "steps": args.steps, "seed": 1234}
    request = GenerateRequest(**body)
    engine = Engine.from_settings(Settings.from_env({"ATELIER_HOME": str(home.home)}))

    http_ms, server_total_ms, inproc_ms = [], [], []
    with tempfile.TemporaryDirectory() as workdir, serve(home.home, Path(workdir)) as server, httpx.Client(
        base_url=server.url, timeout=120
    ) as client:
        for round_index in range(args.warmup + args.rounds):
            start = time.perf_counter()
            response = client.post("/v1/generate", json=body)
            elapsed_http = (time.perf_counter() - start) * 1000
            response.raise_for_status()
            start = time.perf_counter()
            result = engine.generate(request)
            elapsed_inproc = (time.perf_counter() - start) * 1000
            if response.json()["images"][0]["sha256"] != result.images[0].sha256:
                raise SystemExit("served and in-process images differ for the same request")
            if round_index >= args.warmup:
                http_ms.append(elapsed_http)
                server_total_ms.append(response.json()["timings_ms"]["total"])
                inproc_ms.append(elapsed_inproc)

    report = {
        "bench": "generate",
        "request": {"size": args.size, "steps": args.steps, "twin": args.twin, "rounds": args.rounds},
        "http_p50_ms": round(median(http_ms), 2),
        "inprocess_p50_ms": round(median(inproc_ms), 2),
        "server_engine_p50_ms": round(median(server_total_ms), 2),
        "ratio_http_over_inprocess": round(median(http_ms) / median(inproc_ms), 4),
        "http_overhead_p50_ms": round(median([h - s for h, s in zip(http_ms, server_total_ms)]), 2),
        "target_ratio": 1.10,
        "machine": describe(),
    }
    print(json.dumps(report))
    print(f"{'measure':<32}{'p50 ms':>10}")
    for key in ("http_p50_ms", "inprocess_p50_ms", "server_engine_p50_ms", "http_overhead_p50_ms"):
        print(f"{key:<32}{report[key]:>10.2f}")
    print(f"{'ratio http / in-process':<32}{report['ratio_http_over_inprocess']:>10.3f}  (target <= 1.10)")
    return report


if __name__ == "__main__":
    main()
