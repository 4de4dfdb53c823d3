"""Dynamic shapes vs size buckets for the `compile` backend, measured on the UNet alone.

For each strategy (eager; compile with `dynamic=False`, i.e. one graph per shape: "buckets";
compile with `dynamic=True`), on a fresh UNet with the service's own `CompileBackend`
(regional, as served): warm up at the --warm sizes (CFG batch 2), then time steady calls at
those sizes, then at --new sizes never warmed (the first call there compiles again under
static shapes), then a batch of 1 (one image, no CFG) and a batch of 4 (two images with CFG)
at the first warm size. Reports per step: first-call seconds (compile included), steady
median ms, graphs compiled (dynamo's unique_graphs counter), and UNet calls the backend had
to serve eagerly (recompile limit reached: `status()["eager_fallback_calls"]`). Last, per
model, steady ms of every strategy at every shape again, their calls alternated round by
round (`interleaved_steady_ms`): on a shared machine, the figures to compare. Last, per
model, steady ms of every strategy at every shape again, their calls alternated round by
round (`interleaved_steady_ms`): on a shared machine, the figures to compare.

Models: `demo` (builds/demo.py's UNet: attention at one level) and `medium` (the same
SDXL layout scaled down, random weights from a config: attention at two levels, like SDXL's
640 and 1280 channel levels, which is what multiplies graphs under regional compilation).

    .venv/bin/python bench/compile_shapes.py [--models demo,medium] [--warm 256x256,256x320]
        [--new 264x256,384x320,512x512] [--reps 5] [--compiler inductor] [--out FILE]

Compiles start from an empty inductor cache directory unless --warm-caches. Timings are
this machine's (printed with it); nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.machine import describe, median  # noqa: E402

TOKENS, CROSS, POOLED, TIME_IDS = 77, 64, 32, 6


def demo_unet():
    from builds.demo import _components

    torch.manual_seed(0)
    return _components(vocab_size=1000)["unet"]


def medium_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        block_out_channels=(64, 128, 256), layers_per_block=2, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(1, 2, 4), transformer_layers_per_block=(1, 2, 2), use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=80,
        cross_attention_dim=CROSS, norm_num_groups=32,
    )


MODELS = {"demo": demo_unet, "medium": medium_unet}


def inputs(batch: int, width: int, height: int):
    g = torch.Generator().manual_seed(batch * 10007 + width * 31 + height)
    return dict(sample=torch.randn(batch, 4, height // 8, width // 8, generator=g),
                timestep=torch.tensor(500.0),
                encoder_hidden_states=torch.randn(batch, TOKENS, CROSS, generator=g),
                added_cond_kwargs={"text_embeds": torch.randn(batch, POOLED, generator=g),
                                   "time_ids": torch.tensor([[height, width, 0, 0, height, width]] * batch, dtype=torch.float32)})


def graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def call(unet, batch, width, height) -> float:
    feed = inputs(batch, width, height)
    start = time.perf_counter()
    with torch.no_grad():
        unet(feed.pop("sample"), feed.pop("timestep"), **feed, return_dict=False)
    return time.perf_counter() - start


def measure(model: str, strategy: str, warm, new, reps: int, compiler: str) -> dict:
    from service.engine.backends.compile import CompileBackend
    from service.engine.backends.eager import EagerBackend

    torch._dynamo.reset()
    unet = MODELS[model]()
    pipe = SimpleNamespace(unet=unet, components={"unet": unet})
    backend = EagerBackend() if strategy == "eager" else \
        CompileBackend("regional", dynamic=strategy == "dynamic", compiler=compiler, warmup_sizes=warm)
    backend.prepare(pipe)
    row: dict = {"model": model, "strategy": strategy,
                 "params_m": round(sum(p.numel() for p in unet.parameters()) / 1e6, 2)}
    row_start = graphs()

    def step(label, batch, width, height, steady=True):
        before = graphs()
        first = call(unet, batch, width, height)
        entry = {"first_call_s": round(first, 3), "graphs_compiled": graphs() - before}
        if steady:
            entry["steady_ms"] = round(median([call(unet, batch, width, height) for _ in range(reps)]) * 1000, 2)
        row[label] = entry

    for width, height in warm:
        step(f"warm {width}x{height}", 2, width, height, steady=False)  # what Engine.warm_up pays
    for width, height in warm:
        step(f"at warm {width}x{height}", 2, width, height)
    for width, height in new:
        step(f"new {width}x{height}", 2, width, height)
    width, height = warm[0]
    step(f"batch 1 at {width}x{height}", 1, width, height)
    step(f"batch 4 at {width}x{height}", 4, width, height)
    row["graphs_this_strategy"] = graphs() - row_start
    row["eager_fallback_calls"] = backend.status().get("eager_fallback_calls", 0)
    return row, unet, backend


def interleaved(unets: dict, shapes, rounds: int) -> dict:
    """Steady ms per strategy and shape, the strategies' calls alternated round by round, so
    the noise of a shared machine falls on all of them alike."""
    out = {}
    for batch, width, height in shapes:
        times = {name: [] for name in unets}
        for _ in range(rounds):
            for name, unet in unets.items():
                times[name].append(call(unet, batch, width, height))
        out[f"b{batch} {width}x{height}"] = {name: round(median(t) * 1000, 2) for name, t in times.items()}
    return out


def sizes(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(tuple(int(v) for v in item.split("x")) for item in text.split(",") if item)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="demo,medium")
    parser.add_argument("--strategies", default="eager,static,dynamic")
    parser.add_argument("--warm", type=sizes, default=sizes("256x256,256x320"))
    parser.add_argument("--new", type=sizes, default=sizes("264x256,384x320,512x512"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--compiler", default="inductor")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--warm-caches", action="store_true",
                        help="keep inductor's on-disk caches (default: a fresh cache directory, so compile times are cold)")
    args = parser.parse_args(argv)
    if not args.warm_caches:
        import os
        import tempfile

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)  # the recompile-limit warning is counted instead
    report = {"machine": describe(), "compiler": args.compiler, "warm": args.warm, "new": args.new,
              "reps": args.reps, "cold_caches": not args.warm_caches, "rows": []}
    began = time.perf_counter()
    report["interleaved_steady_ms"] = {}
    for model in args.models.split(","):
        unets = {}
        for strategy in args.strategies.split(","):
            row, unets[strategy], _ = measure(model, strategy, args.warm, args.new, args.reps, args.compiler)
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
        shapes = [(2, w, h) for w, h in (*args.warm, *args.new)] + [(1, *args.warm[0]), (4, *args.warm[0])]
        report["interleaved_steady_ms"][model] = interleaved(unets, shapes, args.reps)
        print(json.dumps({"model": model, "interleaved_steady_ms": report["interleaved_steady_ms"][model]}), flush=True)
        del unets
    report["total_s"] = round(time.perf_counter() - began, 1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    print(f"machine: {report['machine']}; total {report['total_s']} s")
    for row in report["rows"]:
        cells = [f"{k}: {v['first_call_s']}s/{v.get('steady_ms', '-')}ms/{v['graphs_compiled']}g"
                 for k, v in row.items() if isinstance(v, dict)]
        print(f"{row['model']:7} {row['strategy']:8} " + " | ".join(cells) +
              f" | graphs {row['graphs_this_strategy']}, eager calls {row['eager_fallback_calls']}")
    for model, table in report["interleaved_steady_ms"].items():
        print(f"{model}: interleaved steady ms " + " | ".join(
            f"{shape}: " + ", ".join(f"{k} {v}" for k, v in row.items()) for shape, row in table.items()))
    return report


if __name__ == "__main__":
    main()
