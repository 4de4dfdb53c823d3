"""What product-to-model conditioning costs on the demo pipeline, against a plain generation.

Loads the demo engine in this process (the eager backend, marking off: the engine's own work
only), with the demo conditioning models, and times the same request as: plain text; with a
garment whose embeddings are cached; with a new garment each time (embedding computed); with
a pose preset; as an edit of a 256 px source. Requests alternate, so drift on a shared machine
hits them alike; medians and ratios to plain are reported. Then, under the compile backend
(regional torch.compile, `aot_eager` so it runs in seconds on a CPU), the recompiles that new
garments, poses and edits cause after warm-up are counted with `error_on_recompile` off and
dynamo's own counter. Prints one JSON line and a table; docs/BENCHMARKS.md quotes it.

    python bench/conditioning.py [--rounds 9] [--size 256] [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, median  # noqa: E402
from builds.demo import build_demo  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args(argv)

    import torch
    from PIL import Image, ImageDraw

    from service.conditioning import PRESETS, Conditioning, Edit, Garment, Pose, render_pose
    from service.config import Settings
    from service.engine import Engine
    from service.registry import open_registry
    from service.schemas import GenerateRequest

    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        build_demo(home)
        assets = home / "demo" / "assets"
        report: dict = {"bench": "conditioning", "machine": describe(), "size": args.size, "steps": args.steps}
        for backend in ("eager", "compile"):
            settings = Settings.from_env({"ATELIER_HOME": str(home), "ATELIER_WARMUP": "1", "ATELIER_BACKEND": backend,
                                          "ATELIER_COMPILE_COMPILER": "aot_eager", "ATELIER_COMPILE_DYNAMIC": "0",
                                          "ATELIER_WARMUP_SIZES": f"{args.size}x{args.size}"})
            engine = Engine.from_settings(settings, open_registry(settings.db_url))  # warms up text, pose and edit
            request = GenerateRequest(twin_id="demo-ava", prompt="studio photo", width=args.size, height=args.size,
                                      steps=args.steps, seed=1)
            shirt = Image.open(assets / "garment-tshirt.png").convert("RGB")
            mask = Image.new("L", (args.size, args.size), 0)
            ImageDraw.Draw(mask).rectangle((args.size // 4, args.size // 4, 3 * args.size // 4, 3 * args.size // 2), fill=255)
            source = Image.new("RGB", (args.size, args.size), (120, 110, 100))
            fresh = iter(range(10**6))
            kinds = {
                "plain": lambda: None,
                "garment_cached": lambda: Conditioning(garments=(Garment("a" * 64, shirt, "tops"),)),
                "garment_uncached": lambda: Conditioning(garments=(Garment(f"{next(fresh):064x}", shirt, "tops"),)),
                "pose": lambda: Conditioning(pose=Pose(render_pose(PRESETS["walking"], args.size, args.size), PRESETS["walking"])),
                "edit": lambda: Conditioning(edit=Edit(source, mask)),
            }
            if backend == "eager":
                engine.generate(request, conditioning=kinds["garment_cached"]())  # fills the cache once
                times: dict[str, list[float]] = {k: [] for k in kinds}
                for _ in range(args.rounds):
                    for name, make in kinds.items():
                        conditioning = make()
                        started = time.perf_counter()
                        engine.generate(request, conditioning=conditioning)
                        times[name].append((time.perf_counter() - started) * 1000)
                plain = median(times["plain"])
                report["eager_ms"] = {k: round(median(v), 1) for k, v in times.items()}
                report["ratio_to_plain"] = {k: round(median(v) / plain, 3) for k, v in times.items()}
            else:
                graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
                for name, make in kinds.items():
                    for _ in range(2):  # a new garment id each time for the uncached one
                        engine.generate(request, conditioning=make())
                engine.generate(request.model_copy(update={"twin_id": "demo-ben"}),
                                conditioning=Conditioning(pose=Pose(render_pose(PRESETS["seated"], args.size, args.size))))
                report["compile_recompiles_after_warmup"] = torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs
                report["compile_fallbacks"] = engine.backend.status().get("eager_fallback_calls")
    print(json.dumps(report))
    print(f"{'request':<20}{'median ms':>12}{'x plain':>10}")
    for name, ms in report["eager_ms"].items():
        print(f"{name:<20}{ms:>12.1f}{report['ratio_to_plain'][name]:>10.3f}")
    print(f"recompiles under compile after warm-up (new garments, poses, an edit, another twin): "
          f"{report['compile_recompiles_after_warmup']}")
    return report


if __name__ == "__main__":
    main()
