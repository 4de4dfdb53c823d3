"""Mixed-twin batches: throughput of one pipeline batch of 4 items naming 4 distinct twins,
against 4 items of one twin, through the multi-lane adapter slot.

On the demo pipeline (CPU by default) at 256x256, 4 steps, guidance 5 (CFG: 8 UNet rows):
  * `same`: `Engine.generate_batch` of 4 items of one twin (lane 0, every row);
  * `mixed`: 4 items of 4 distinct twins (each twin in a lane, each row reading its lane);
  * `peft_same`: `same` with the slot layers running peft's own LoRA forward (the single-lane
    path before the lanes existed), to show what the lane gather costs a one-twin batch.
Before those, one slot layer alone (`--layers`, default on): the ways to compute the per-row
LoRA at the demo's layer sizes, single-threaded, best of 200 (microseconds): peft's two
Linears (one twin), gather + `torch.bmm` (what the slot runs), gather + `torch.einsum`, and
all lanes concatenated with a per-row mask (no gather, K+1 times the rank's FLOPs).
The three engine measures are interleaved round by round, so machine drift hits all alike; medians.
The last line printed is one JSON object (keys `mixed_vs_same`, `same_laned_vs_peft`, and
the issue's other figures, null where this bench does not measure them).

    python bench/mixed.py [--rounds 7] [--steps 4]
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
from bench.homes import home_with_twins  # noqa: E402
from service.config import Settings  # noqa: E402
from service.registry import open_registry  # noqa: E402

N_TWINS = 4


def make_home(root: Path) -> Path:
    return home_with_twins(root, "mixed", N_TWINS, 200)


def layer_micro() -> dict[str, dict[str, float]]:
    """Microseconds per call of one LoRA-targeted Linear, by method (see the module doc)."""
    import torch
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def best(fn, n=200) -> float:
        for _ in range(5):
            fn()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return round(min(times) * 1e6, 1)

    out = {}
    try:
        with torch.no_grad():
            # (UNet rows, tokens, channels, rank): the demo's two attention widths at 256 px, CFG over 4
            # items, at the demo's rank 4 and the default slot rank 32
            for rows_n, tokens, width, rank in [(8, 1024, 32, 4), (8, 256, 64, 4), (8, 1024, 32, 32)]:
                lanes = N_TWINS
                x, weight = torch.randn(rows_n, tokens, width), torch.randn(width, width)
                lane_a, lane_b = torch.randn(lanes + 1, rank, width), torch.randn(lanes + 1, width, rank)
                rows = torch.arange(rows_n) % lanes
                a0, b0 = lane_a[0].clone(), lane_b[0].clone()
                cat_a, cat_b = lane_a.reshape(-1, width), lane_b.permute(1, 0, 2).reshape(width, -1)
                mask = torch.zeros(rows_n, 1, (lanes + 1) * rank)
                for i, lane in enumerate(rows.tolist()):
                    mask[i, 0, lane * rank:(lane + 1) * rank] = 1

                def gather_bmm():
                    a, b = lane_a.index_select(0, rows), lane_b.index_select(0, rows)
                    return F.linear(x, weight) + torch.bmm(torch.bmm(x, a.transpose(1, 2)), b.transpose(1, 2))

                def gather_einsum():
                    a, b = lane_a[rows], lane_b[rows]
                    return F.linear(x, weight) + torch.einsum("bto,bpo->btp", torch.einsum("bti,bri->btr", x, a), b)

                out[f"rows{rows_n}_tokens{tokens}_width{width}_rank{rank}"] = {
                    "base_only": best(lambda: F.linear(x, weight)),
                    "peft_one_twin": best(lambda: F.linear(x, weight) + F.linear(F.linear(x, a0), b0)),
                    "gather_bmm": best(gather_bmm),
                    "gather_einsum": best(gather_einsum),
                    "concat_mask": best(lambda: F.linear(x, weight) + F.linear(F.linear(x, cat_a) * mask, cat_b)),
                }
    finally:
        torch.set_num_threads(threads)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--no-layers", action="store_true", help="skip the one-layer microbenchmark")
    args = parser.parse_args()
    layers = {} if args.no_layers else layer_micro()
    for shape, methods in layers.items():
        print(shape, methods)

    from service.engine import Engine
    from service.schemas import GenerateRequest

    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp))
        settings = Settings.from_env({"ATELIER_HOME": str(home), "ATELIER_WARMUP": "0"})
        engine = Engine.from_settings(settings, open_registry(settings.db_url))
        slot = engine.twins.slot
        laned = {name: type(m) for name, m in slot.modules.items()}  # subclasses of peft's LoRA layers

        def batch(twins: list[str]):
            items = [(GenerateRequest(twin_id=t, prompt="studio photo, linen dress", width=args.size, height=args.size,
                                      steps=args.steps, seed=10 + i, output_format="png"), 10 + i, f"b{i}")
                     for i, t in enumerate(twins)]
            start = time.perf_counter()
            engine.generate_batch(items)
            return time.perf_counter() - start

        def peft_forward(on: bool) -> None:
            for name, module in slot.modules.items():
                module.__class__ = laned[name].__bases__[0] if on else laned[name]

        same_twins, mixed_twins = ["mixed-0"] * N_TWINS, [f"mixed-{i}" for i in range(N_TWINS)]
        for twins in (same_twins, mixed_twins):  # first calls, adapters into the device tier
            batch(twins)
        samples: dict[str, list[float]] = {"same": [], "mixed": [], "peft_same": []}
        for _ in range(args.rounds):
            samples["same"].append(batch(same_twins))
            samples["mixed"].append(batch(mixed_twins))
            peft_forward(True)
            try:
                slot.load(engine.twins.cache.acquire(engine.twins.catalog.get("mixed-0"))[0])
                samples["peft_same"].append(batch(same_twins))
            finally:
                peft_forward(False)
        ms = {k: round(median(v) * 1000, 1) for k, v in samples.items()}
        ips = {k: round(N_TWINS / (v / 1000), 3) for k, v in ms.items()}
    result = {
        "machine": describe(), "size": args.size, "steps": args.steps, "rounds": args.rounds, "lanes": settings.slot_lanes,
        "batch_ms": ms, "images_per_s": ips, "layer_us": layers,
        "mixed_vs_same": round(ips["mixed"] / ips["same"], 3),
        "same_laned_vs_peft": round(ips["same"] / ips["peft_same"], 3),
        "mixed_vs_peft": None, "drop_speedup": None, "drop_ceiling": None, "cold_vs_warm": None,
    }
    print(f"4 items x 4 twins: {ms['mixed']} ms; 4 items x 1 twin: {ms['same']} ms (peft forward: {ms['peft_same']} ms)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
