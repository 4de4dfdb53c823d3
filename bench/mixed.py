"""Many twins, one pass: mixed-twin batches, a catalogue drop over many twins, and cold twins.

On the demo pipeline (CPU by default) at 256x256, 4 steps, guidance 5 (CFG), text only (the
garment, pose and edit models off), in one run:

1. **One pipeline batch of 4 items** (`Engine.generate_batch`, marking included), interleaved
   round by round, medians: `same` (4 items of one twin), `mixed` (4 items of 4 distinct
   twins, each in a lane of the slot), `peft_same` (`same` through peft's own LoRA forward,
   the single-lane path). Then, at the pipeline call (text encoding, denoising, VAE decode;
   no marking), the slot's lanes against **PEFT's mixed-adapter batching** on a second copy
   of the same pipeline: the 4 twins loaded as peft adapters, each UNet row naming its
   adapter (`adapter_names`, peft's `_mixed_batch_forward`): `lanes_pipe` and `peft_pipe`,
   and how far their latents differ, next to how far the base model's are (so the peft run
   did apply the twins). The slot's rank is the twins' (`--slot-rank`, 4), so both compute
   the same rank; a deployment's slot (ATELIER_LORA_SLOT_RANK, 32) pads a rank-4 twin with
   zeros and pays for it in every row.
   `mixed_vs_same` = images/s of `mixed` / `same` (target >= 0.9); `mixed_vs_peft` =
   images/s of `lanes_pipe` / `peft_pipe`.
2. **A catalogue drop** through gateway and renderer (`bentoml serve`, two instances on copies
   of one home: ATELIER_SLOT_LANES=4, and =1 for today's same-twin grouping): a job of 40
   items over 20 twins (2 each, interleaved), submitted over HTTP and polled until done,
   images/s from submission to completion. `mixed` (lanes 4: 10 calls of 4 items, 4 twins
   each), `by_twin` (lanes 1: 20 calls of 2 items), `one_twin` (lanes 4, the 40 items all of
   one twin: 10 calls of 4). `drop_speedup` = mixed / by_twin; `drop_ceiling` = one_twin /
   by_twin (target: drop_speedup >= 0.9 x drop_ceiling), from the medians of `--drop-rounds`
   (4) rounds, interleaved with the order rotating; the best round's ratios beside them. A
   warm-up drop on each instance first puts every twin's adapter in its device tier.
3. **A cold twin**: the first image of a twin whose adapter is only in the disk tier (evicted
   from the device and host tiers) against the same request with it in the device tier, the
   twin in no lane of the slot either way, one fresh twin per round (`--cold-rounds`, 12), the
   order alternating, medians: `cold_vs_warm` = cold ms / warm ms (target <= 1.10), with the
   cold renders' `adapter_wait` and the disk load alone (`cache.acquire` from the disk tier,
   measured apart) for scale.

Before those, one slot layer alone (`--layers`): the ways to compute the per-row LoRA at the
demo's layer sizes, single-threaded, best of 200 (microseconds). The last line printed is
one JSON object with `mixed_vs_same`, `mixed_vs_peft`, `drop_speedup`, `drop_ceiling` and
`cold_vs_warm` (and the raw figures).

    python bench/mixed.py [--rounds 5] [--drop-rounds 4] [--cold-rounds 12] [--steps 4] [--size 256]
                          [--slot-rank 4] [--layers] [--no-drop]
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

from bench.homes import home_with_twins  # noqa: E402
from bench.machine import describe, median  # noqa: E402
from service.config import Settings  # noqa: E402
from service.registry import open_registry  # noqa: E402

N_TWINS = 4  # lanes of one batch
DROP_TWINS = 20  # twins of the drop (2 items each)
PROMPT = "studio photo, linen dress"
TEXT_ONLY = {name: "off" for name in ("ATELIER_IP_ADAPTER", "ATELIER_POSE_CONTROLNET", "ATELIER_INPAINT_MODEL")}


def make_home(root: Path) -> Path:
    """The demo plus DROP_TWINS twins (`mixed-0` ..), each consented for the demo tenant."""
    from builds.demo import DEMO_TENANT, DEMO_USES
    from service.tenancy.manage import record_consent

    home = home_with_twins(root, "mixed", DROP_TWINS, 200)
    registry = open_registry(Settings.from_env({"ATELIER_HOME": str(home)}).db_url)
    for i in range(DROP_TWINS):
        record_consent(registry, f"mixed-{i}", tenants=[DEMO_TENANT], uses=DEMO_USES, recorded_by="bench/mixed.py")
    registry.engine.dispose()
    return home


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


# -- 1. one batch, and PEFT's mixed-adapter batching ------------------------------------------


def peft_pipeline(settings: Settings, twins: list[str], device: str = "cpu", dtype=None):
    """A second copy of the pipeline with the twins as peft adapters `t0`.., and a context
    that makes every LoRA layer run peft's per-row mixed forward with `names` (one per UNet row)."""
    from contextlib import contextmanager

    import torch
    from peft.tuners.lora import LoraLayer

    from service.engine.loading import load_pipeline

    pipe = load_pipeline(settings.base_model, torch.device(device), dtype or torch.float32)
    registry = open_registry(settings.db_url)
    for i, twin_id in enumerate(twins):
        info = registry.twins.get_twin(twin_id)
        pipe.load_lora_weights(str(settings.adapters_dir / info.adapter_key), adapter_name=f"t{i}")
    registry.engine.dispose()
    pipe.set_adapters([f"t{i}" for i in range(len(twins))])
    layers = [m for m in pipe.unet.modules() if isinstance(m, LoraLayer)]

    @contextmanager
    def per_row(names: list[str]):
        hooks = [layer.register_forward_pre_hook(lambda m, args, kwargs: (args, {**kwargs, "adapter_names": names}),
                                                 with_kwargs=True) for layer in layers]
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()

    return pipe, per_row


def pipe_call(pipe, size: int, steps: int, n: int, prompt: str = PROMPT):
    """One pipeline call of `n` images (prompt encoding, denoising, VAE decode), seeds 10..;
    returns (seconds, latents)."""
    import torch

    from service.engine.pipeline import decode_latents

    generators = [torch.Generator("cpu").manual_seed(10 + i) for i in range(n)]
    start = time.perf_counter()
    with torch.no_grad():
        latents = pipe(prompt=[prompt] * n, width=size, height=size, num_inference_steps=steps,
                       guidance_scale=5.0, generator=generators, output_type="latent").images
        decode_latents(pipe, latents)
        if latents.device.type == "cuda":
            torch.cuda.synchronize(latents.device)
    return time.perf_counter() - start, latents


def measure_batches(engine, settings: Settings, args) -> dict:
    from service.schemas import GenerateRequest

    slot = engine.twins.slot
    laned = {name: type(m) for name, m in slot.modules.items()}  # subclasses of peft's LoRA layers

    def batch(twins: list[str]) -> float:
        items = [(GenerateRequest(twin_id=t, prompt=PROMPT, width=args.size, height=args.size, steps=args.steps,
                                  seed=10 + i, output_format="png"), 10 + i, f"b{i}") for i, t in enumerate(twins)]
        start = time.perf_counter()
        engine.generate_batch(items)
        return time.perf_counter() - start

    def peft_forward(on: bool) -> None:
        for name, module in slot.modules.items():
            module.__class__ = laned[name].__bases__[0] if on else laned[name]

    same_twins, mixed_twins = ["mixed-0"] * N_TWINS, [f"mixed-{i}" for i in range(N_TWINS)]
    adapters = [engine.twins.cache.acquire(engine.twins.catalog.get(t))[0] for t in mixed_twins]
    peft_pipe, per_row = peft_pipeline(settings, mixed_twins)
    names = [f"t{i}" for i in range(N_TWINS)]

    def lanes_pipe() -> tuple[float, object]:
        with engine._lock:  # what generate_batch holds around a switch and a run
            engine.backend.use_adapters(slot, adapters, True)
            return pipe_call(engine.pipe, args.size, args.steps, N_TWINS)

    def peft_mixed() -> tuple[float, object]:
        with per_row(names + names):  # CFG: the UNet batch is [unconditional rows, conditional rows]
            return pipe_call(peft_pipe, args.size, args.steps, N_TWINS)

    for twins in (same_twins, mixed_twins):  # first calls, adapters into the device tier
        batch(twins)
    _, ours = lanes_pipe()
    _, theirs = peft_mixed()
    with per_row(["__base__"] * 2 * N_TWINS):  # peft's mixed forward with no adapter: the base model
        _, base = pipe_call(peft_pipe, args.size, args.steps, N_TWINS)
    latent_diff = {"peft_vs_lanes": round(float((ours - theirs).abs().max()), 6),
                   "base_vs_lanes": round(float((ours - base).abs().max()), 6)}
    samples: dict[str, list[float]] = {"same": [], "mixed": [], "peft_same": [], "lanes_pipe": [], "peft_pipe": []}
    for _ in range(args.rounds):
        samples["same"].append(batch(same_twins))
        samples["mixed"].append(batch(mixed_twins))
        peft_forward(True)
        try:
            slot.load(engine.twins.cache.acquire(engine.twins.catalog.get("mixed-0"))[0])
            samples["peft_same"].append(batch(same_twins))
        finally:
            peft_forward(False)
        samples["lanes_pipe"].append(lanes_pipe()[0])
        samples["peft_pipe"].append(peft_mixed()[0])
    ms = {k: round(median(v) * 1000, 1) for k, v in samples.items()}
    ips = {k: round(N_TWINS / (v / 1000), 3) for k, v in ms.items()}
    return {"batch_ms": ms, "images_per_s": ips, "max_abs_latent_diff": latent_diff,
            "mixed_vs_same": round(ips["mixed"] / ips["same"], 3),
            "same_laned_vs_peft": round(ips["same"] / ips["peft_same"], 3),
            "mixed_vs_peft": round(ips["lanes_pipe"] / ips["peft_pipe"], 3)}


# -- 3. a cold twin ---------------------------------------------------------------------------


def disk_only(engine, twin_id: str) -> None:
    """The twin's adapter in the disk tier only: out of the device and host tiers and the lanes."""
    cache, sha = engine.twins.cache, engine.twins.catalog.get(twin_id).sha256
    with cache._lock:
        cache.device_tier.pop(sha)
        cache.host_tier.pop(sha)
    with engine._lock:
        engine.twins.slot.drop(sha)
    assert cache.tiers_of(sha) == ["disk"], cache.tiers_of(sha)


def out_of_slot(engine, twin_id: str) -> None:
    """The twin in no lane of the slot (its adapter stays in the cache tiers)."""
    with engine._lock:
        engine.twins.slot.drop(engine.twins.catalog.get(twin_id).sha256)


def measure_cold(engine, args) -> dict:
    """Per round a fresh twin: its first image with its adapter on disk only (`cold`), and with
    it in the device tier (`warm`); both with the twin in no lane of the slot, so both pay the
    copy into a lane. The order alternates round by round."""
    from service.schemas import GenerateRequest

    twins = [f"mixed-{i}" for i in range(N_TWINS, min(DROP_TWINS, N_TWINS + args.cold_rounds))]
    engine.prefetch(twins)  # on disk (and everywhere) first
    cold, warm, waits, loads = [], [], [], []

    def first_image(twin_id: str, where: str) -> float:
        (disk_only if where == "disk" else out_of_slot)(engine, twin_id)
        request = GenerateRequest(twin_id=twin_id, prompt=PROMPT, width=args.size, height=args.size, steps=args.steps,
                                  seed=5, output_format="png")
        start = time.perf_counter()
        result = engine.generate(request)
        elapsed = time.perf_counter() - start
        assert result.adapter_source == where, (result.adapter_source, where)
        if where == "disk":
            waits.append(result.timings_ms["adapter_wait"])
        return elapsed

    for round_, twin_id in enumerate(twins):
        if round_ % 2 == 0:
            cold.append(first_image(twin_id, "disk"))
            warm.append(first_image(twin_id, "device"))
        else:
            warm.append(first_image(twin_id, "device"))
            cold.append(first_image(twin_id, "disk"))
        disk_only(engine, twin_id)  # the load alone, for scale
        start = time.perf_counter()
        engine.twins.cache.acquire(engine.twins.catalog.get(twin_id))
        loads.append(time.perf_counter() - start)
    return {"cold_rounds": len(twins), "cold_ms": round(median(cold) * 1000, 1), "warm_ms": round(median(warm) * 1000, 1),
            "cold_adapter_wait_ms": round(median(waits), 3), "cold_waited": sum(1 for w in waits if w > 0),
            "disk_load_ms": round(median(loads) * 1000, 3),
            "cold_vs_warm": round(median(cold) / median(warm), 3)}


# -- 2. a drop through gateway and renderer ---------------------------------------------------


def drop_items(twins: list[str], args) -> list[dict]:
    return [{"twin_id": twin, "prompt": PROMPT, "width": args.size, "height": args.size, "steps": args.steps,
             "seed": 100 + i, "sku": f"{twin}-{i}"} for i, twin in enumerate(twins)]


def run_drop(server, key: str, items: list[dict]) -> float:
    """Submit one job and wait for it; seconds from submission to completion."""
    import httpx

    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        start = time.perf_counter()
        answer = http.post("/v1/jobs/submit", json={"items": items})
        answer.raise_for_status()
        job_id = answer.json()["job_id"]
        while True:
            status = http.get("/v1/jobs/status", params={"job_id": job_id}).json()
            if status["status"] in ("completed", "failed", "canceled"):
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
    if (status["status"], status["items_done"]) != ("completed", len(items)):
        raise SystemExit(f"the drop did not complete: {status}")
    return elapsed


def copy_home(home: Path, target: Path) -> Path:
    """A second home: the same pipeline, adapters, keys and consent (the registry copied through
    SQLite's backup API), its own audit log and queue."""
    import sqlite3

    shutil.copytree(home, target, ignore=shutil.ignore_patterns("registry.db*", "audit"))
    source, copy = sqlite3.connect(home / "registry.db"), sqlite3.connect(target / "registry.db")
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    return target


def measure_drop(home: Path, work: Path, args) -> dict:
    from builds.demo import ENV_FILE, read_demo_env
    from builds.serving import serve

    key = read_demo_env(home / ENV_FILE)["ATELIER_DEMO_KEY"]
    interleaved = [f"mixed-{i % DROP_TWINS}" for i in range(2 * DROP_TWINS)]  # a, b, .., a, b, ..
    drops = {"mixed": ("lanes4", drop_items(interleaved, args)),
             "by_twin": ("lanes1", drop_items(interleaved, args)),
             "one_twin": ("lanes4", drop_items(["mixed-0"] * (2 * DROP_TWINS), args))}
    homes = {"lanes4": home, "lanes1": copy_home(home, work / "home-lanes1")}
    env = {"ATELIER_REGISTRY_POLL_MS": "500", "ATELIER_JOB_POLL_MS": "50"}
    servers = {}
    try:
        for name, lanes in (("lanes4", "4"), ("lanes1", "1")):
            servers[name] = serve(homes[name], work / name, env={**env, "ATELIER_SLOT_LANES": lanes}, ready_timeout=300)
        for name, server in servers.items():  # every twin's adapter into the device tier, first calls paid
            run_drop(server, key, drop_items(interleaved, args))
        seconds: dict[str, list[float]] = {name: [] for name in drops}
        names = list(drops)
        for round_ in range(args.drop_rounds):  # interleaved, the order rotating round by round
            for name in names[round_ % 3:] + names[:round_ % 3]:
                server, items = drops[name]
                seconds[name].append(run_drop(servers[server], key, items))
    finally:
        for server in servers.values():
            server.stop()
    ips = {name: round(len(drops[name][1]) / median(values), 3) for name, values in seconds.items()}
    best = {name: round(len(drops[name][1]) / min(values), 3) for name, values in seconds.items()}
    return {"drop_items": 2 * DROP_TWINS, "drop_twins": DROP_TWINS, "drop_s": {k: [round(v, 2) for v in vs]
                                                                                for k, vs in seconds.items()},
            "drop_images_per_s": ips, "drop_speedup": round(ips["mixed"] / ips["by_twin"], 3),
            "drop_ceiling": round(ips["one_twin"] / ips["by_twin"], 3),
            # the best round of each (this shared VM's load moves single drops by up to 2x)
            "drop_images_per_s_best": best, "drop_speedup_best": round(best["mixed"] / best["by_twin"], 3),
            "drop_ceiling_best": round(best["one_twin"] / best["by_twin"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the batch measures")
    parser.add_argument("--drop-rounds", type=int, default=4, help="rounds of the three drops")
    parser.add_argument("--cold-rounds", type=int, default=12, help="twins of the cold-twin measure (at most 16)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slot-rank", type=int, default=4, help="the slot's rank (the demo twins' rank: 4)")
    parser.add_argument("--layers", action="store_true", help="also run the one-layer microbenchmark")
    parser.add_argument("--no-drop", action="store_true", help="skip the served drop (no bentoml serve)")
    args = parser.parse_args()
    started = time.perf_counter()
    layers = layer_micro() if args.layers else {}
    for shape, methods in layers.items():
        print(shape, methods)

    from service.engine import Engine

    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp))
        # Text only (no garment, pose or edit models): the engine's pipeline is then the very
        # pipeline PEFT's copy loads, so the pipeline-call comparison is like for like.
        settings = Settings.from_env({"ATELIER_HOME": str(home), "ATELIER_WARMUP": "0", **TEXT_ONLY,
                                      "ATELIER_LORA_SLOT_RANK": str(args.slot_rank)})
        engine = Engine.from_settings(settings, open_registry(settings.db_url))
        batches = measure_batches(engine, settings, args)
        print(f"batch of 4: 4 twins {batches['batch_ms']['mixed']} ms, 1 twin {batches['batch_ms']['same']} ms; "
              f"pipeline call, 4 twins: lanes {batches['batch_ms']['lanes_pipe']} ms, "
              f"peft adapter_names {batches['batch_ms']['peft_pipe']} ms", flush=True)
        cold = measure_cold(engine, args)
        print(f"first image of a twin on disk {cold['cold_ms']} ms, on the device {cold['warm_ms']} ms "
              f"(adapter_wait {cold['cold_adapter_wait_ms']} ms, the disk load alone {cold['disk_load_ms']} ms)",
              flush=True)
        del engine
        drop = {"drop_speedup": None, "drop_ceiling": None, "drop_skipped": "--no-drop"}
        if not args.no_drop:
            drop = measure_drop(home, Path(tmp), args)
            print(f"drop of {drop['drop_items']} items: images/s {drop['drop_images_per_s']}", flush=True)
    result = {
        "machine": describe(), "size": args.size, "steps": args.steps, "rounds": args.rounds,
        "drop_rounds": args.drop_rounds, "lanes": settings.slot_lanes, "slot_rank": settings.lora_slot_rank, "seconds": round(time.perf_counter() - started, 1),
        "layer_us": layers, **batches, **cold, **drop,
    }
    summary = {key: result[key] for key in ("mixed_vs_same", "mixed_vs_peft", "drop_speedup", "drop_ceiling",
                                            "cold_vs_warm")}
    print(json.dumps({**summary, **{k: v for k, v in result.items() if k not in summary}}))  # the last line


if __name__ == "__main__":
    main()
