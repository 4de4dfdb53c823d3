"""Twin adapter switching: load time from each cache tier, three switching methods, throughput.

On the demo pipeline (CPU by default) at 256x256, 4 steps:
  * time to get a twin's adapter onto the device and into the slot, by source tier
    (store = cold, disk, host, device);
  * three ways to switch twins measured side by side: diffusers' hotswap
    (`enable_lora_hotswap` + `load_lora_weights(hotswap=True)`), diffusers' `set_adapters`
    over resident adapters, and Atelier's slot copy from the device tier;
  * images/s of a round-robin over 8 twins with a device budget of 2 adapters versus always
    the same twin, interleaved in blocks so machine drift hits both alike.
Prints one JSON line and a short table.

    python bench/adapters.py [--rounds 3] [--block 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, median  # noqa: E402
from bench.homes import home_with_twins  # noqa: E402
from service.config import Settings  # noqa: E402
from service.registry import open_registry  # noqa: E402

N_TWINS = 8


def make_home(root: Path) -> Path:
    return home_with_twins(root, "bench", N_TWINS, 100)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def tier_loads(engine, records, repeats: int) -> dict[str, float]:
    """ms to get an adapter into the slot when it is found first in each tier."""
    cache, slot = engine.twins.cache, engine.twins.slot
    samples: dict[str, list[float]] = {"store": [], "disk": [], "host": [], "device": []}

    def switch(record):
        adapter, _ = cache.acquire(record)
        slot.load(adapter)

    # Drop the adapter from the tiers above the one measured, so that tier serves it.
    above = {"store": (cache.device_tier, cache.host_tier, cache.disk_tier), "disk": (cache.device_tier, cache.host_tier),
             "host": (cache.device_tier,), "device": ()}
    for i in range(repeats):
        record, other = records[i % len(records)], records[(i + 1) % len(records)]
        for tier, dropped in above.items():
            for level in dropped:
                level.pop(record.sha256)
            switch(other)  # the slot holds another twin before each measured switch
            samples[tier].append(timed(lambda: switch(record)))
    return {tier: round(median(values), 3) for tier, values in samples.items()}


def diffusers_switching(pipeline_dir: Path, adapter_files: list[Path], rank: int, repeats: int) -> dict[str, float]:
    """The two switching methods diffusers offers, on a fresh copy of the pipeline."""
    import torch
    from safetensors.torch import load_file

    from service.engine.loading import load_pipeline

    state_dicts = [load_file(str(p)) for p in adapter_files]
    results = {}

    pipe = load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32)
    pipe.enable_lora_hotswap(target_rank=rank)
    pipe.load_lora_weights(dict(state_dicts[0]), adapter_name="twin")
    times = [timed(lambda i=i: pipe.load_lora_weights(dict(state_dicts[i % len(state_dicts)]), adapter_name="twin", hotswap=True))
             for i in range(1, repeats + 1)]
    results["diffusers_hotswap_ms"] = round(median(times), 3)

    pipe = load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32)
    for i, sd in enumerate(state_dicts):
        pipe.load_lora_weights(dict(sd), adapter_name=f"t{i}")
    times = [timed(lambda i=i: pipe.set_adapters([f"t{i % len(state_dicts)}"])) for i in range(repeats)]
    results["diffusers_set_adapters_ms"] = round(median(times), 3)

    pipe = load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32)

    def load_unload(i):
        pipe.load_lora_weights(dict(state_dicts[i % len(state_dicts)]), adapter_name="twin")
        pipe.unload_lora_weights()

    results["diffusers_load_unload_ms"] = round(median([timed(lambda i=i: load_unload(i)) for i in range(repeats)]), 3)
    return results


def throughput(engine, twin_ids_rr: list[str], same: str, rounds: int, block: int, size: int, steps: int) -> dict:
    from service.schemas import GenerateRequest

    def run(twin_ids):
        start = time.perf_counter()
        for i, twin_id in enumerate(twin_ids):
            engine.generate(GenerateRequest(twin_id=twin_id, prompt="studio photo", width=size, height=size, steps=steps, seed=i))
        return len(twin_ids) / (time.perf_counter() - start)

    same_rates, rr_rates, rr_sources = [], [], []
    for r in range(rounds):
        same_rates.append(run([same] * block))
        before = dict(engine.twins.cache.loads)
        rr_rates.append(run([twin_ids_rr[(r * block + i) % len(twin_ids_rr)] for i in range(block)]))
        rr_sources.append({k: engine.twins.cache.loads[k] - before[k] for k in before})
    return {
        "single_twin_images_per_s": round(median(same_rates), 3),
        "round_robin_images_per_s": round(median(rr_rates), 3),
        "ratio_round_robin_over_single": round(median(rr_rates) / median(same_rates), 4),
        "round_robin_served_from": rr_sources[-1],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args(argv)

    from service.engine import Engine
    from service.schemas import GenerateRequest

    root = Path(tempfile.mkdtemp(prefix="atelier-bench-"))
    try:
        home = make_home(root)
        settings = Settings.from_env({"ATELIER_HOME": str(home), "ATELIER_CACHE_DIR": str(root / "cache")})
        engine = Engine.from_settings(settings, open_registry(settings.db_url))
        records = [engine.twins.catalog.get(f"bench-{i}") for i in range(N_TWINS)]
        adapter_bytes = engine.twins.cache.acquire(records[0])[0].nbytes

        loads = tier_loads(engine, records, args.repeats)
        gen_ms = median([engine.generate(GenerateRequest(twin_id="bench-0", prompt="studio photo", width=args.size,
                                                         height=args.size, steps=args.steps, seed=i)).timings_ms["total"]
                         for i in range(args.repeats)])
        switching = diffusers_switching(home / "demo" / "pipeline", [home / "adapters" / f"bench-{i}.safetensors" for i in range(N_TWINS)],
                                        settings.lora_slot_rank, args.repeats)

        # Round robin with room for 2 adapters on the device.
        engine.twins.cache.device_tier.budget = 2 * adapter_bytes
        for record in records:
            engine.twins.cache.device_tier.pop(record.sha256)
        tput = throughput(engine, [r.id for r in records], "bench-0", args.rounds, args.block, args.size, args.steps)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    report = {
        "bench": "adapters",
        "request": {"size": args.size, "steps": args.steps, "twins": N_TWINS, "slot_rank": settings.lora_slot_rank,
                    "adapter_bytes": adapter_bytes},
        "generation_p50_ms": round(gen_ms, 2),
        "switch_ms_by_source": loads,
        "host_switch_share_of_generation": round(loads["host"] / gen_ms, 5),
        **switching,
        "atelier_slot_switch_ms": loads["device"],
        **tput,
        "targets": {"host_switch_share_max": 0.05, "round_robin_ratio_min": 0.9},
        "machine": describe(),
    }
    print(json.dumps(report))
    print(f"{'measure':<44}{'value':>12}")
    for tier, ms in loads.items():
        print(f"{'switch from ' + tier + ' (ms)':<44}{ms:>12.3f}")
    print(f"{'one generation p50 (ms)':<44}{gen_ms:>12.2f}")
    print(f"{'host switch / generation':<44}{report['host_switch_share_of_generation']:>12.4%}  (target <= 5%)")
    for key in ("diffusers_hotswap_ms", "diffusers_set_adapters_ms", "diffusers_load_unload_ms", "atelier_slot_switch_ms"):
        print(f"{key:<44}{report[key]:>12.3f}")
    print(f"{'single twin (images/s)':<44}{tput['single_twin_images_per_s']:>12.3f}")
    print(f"{'round robin 8 twins, device budget 2 (img/s)':<44}{tput['round_robin_images_per_s']:>12.3f}")
    print(f"{'ratio round robin / single':<44}{tput['ratio_round_robin_over_single']:>12.3f}  (target >= 0.9)")
    return report


if __name__ == "__main__":
    main()
