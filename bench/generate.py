"""HTTP overhead of the service: p50 of POST /v1/generate over HTTP vs the engine in-process.

Starts a real `bentoml serve` on a free loopback port and loads the same pipeline in this
process; both are warmed, then the same request is sent alternately (HTTP, in-process) so
drift on a shared machine hits both equally. Prints one JSON line and a short table.

    python bench/generate.py [--rounds 30] [--size 256] [--steps 4] [--twin demo-ava]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, median  # noqa: E402
from builds.demo import build_demo, read_demo_env  # noqa: E402
from builds.serving import serve  # noqa: E402


def pixel_distance(a: bytes, b: bytes) -> float:
    """Mean absolute RGB difference (0-255) of two encoded images."""
    import numpy as np
    from PIL import Image

    first, second = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB"), dtype=np.float32) for x in (a, b))
    return float(np.abs(first - second).mean()) if first.shape == second.shape else float("inf")


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
    from service.provenance.marking import ProvenanceMarker
    from service.registry import open_registry
    from service.schemas import GenerateRequest

    home = build_demo(args.home)
    body = {"twin_id": args.twin, "prompt": "studio photo of a model in a linen dress", "width": args.size,
            "height": args.size, "steps": args.steps, "seed": 1234}
    request = GenerateRequest(**body)
    settings = Settings.from_env({"ATELIER_HOME": str(home.home)})
    # Marked like the served path (watermark, XMP, C2PA), so both sides do the same work.
    engine = Engine.from_settings(settings, open_registry(settings.db_url), marker=ProvenanceMarker.from_settings(settings))

    http_ms, server_total_ms, inproc_ms = [], [], []
    with tempfile.TemporaryDirectory() as workdir, serve(home.home, Path(workdir)) as server, httpx.Client(
        base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {read_demo_env(home.env_file)['ATELIER_DEMO_KEY']}"}
    ) as client:
        for round_index in range(args.warmup + args.rounds):
            start = time.perf_counter()
            response = client.post("/v1/generate", json=body)
            elapsed_http = (time.perf_counter() - start) * 1000
            response.raise_for_status()
            start = time.perf_counter()
            result = engine.generate(request)
            elapsed_inproc = (time.perf_counter() - start) * 1000
            served = base64.b64decode(response.json()["images"][0]["data_base64"])
            if pixel_distance(served, result.images[0].data) > 6.0:  # each image has its own watermark id
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
