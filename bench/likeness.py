"""Likeness fingerprints: how far apart different adapters are, and how close their copies stay.

Measures `service.twins.likeness` (docs/BENCHMARKS.md records the figures):
1. Different adapters: every pair among the demo twins (builds/demo.py) and N random LoRAs
   of the same layers and shapes (seeded Gaussian A and B, as the demo's).
2. Copies of each demo twin and of the first few random LoRAs: other safetensors metadata,
   +1e-6 noise, float16 re-save, an exact re-factorisation (B·Q, Q⁻¹·A), the PEFT layout
   (adapter-named keys), SVD re-saves at lower ranks, scaled copies (alpha x0.5, x2; one
   layer x4), partial copies (one layer dropped, half the layers dropped), a negated copy.
3. Different adapters that share a common component (a stand-in for LoRAs of different
   people trained with one recipe: their updates are not independent): distance by share.
4. The sketch's own error: fingerprint distance against the exact distance of the full ΔW.
5. Cost: fingerprinting a demo adapter and an SDXL-shaped rank-32 float16 LoRA (560 attention
   layers), and comparing one fingerprint with 10,000 stored ones.

    python bench/likeness.py [--adapters DIR] [--random 50] [--json out.json]

`--adapters` is a directory with the demo's demo-*.safetensors ($ATELIER_HOME/adapters);
without it the demo is built into a temporary home first. numpy and safetensors only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from safetensors.numpy import load, save  # noqa: E402

from service.twins.likeness import THRESHOLD, distance, fingerprint_adapter  # noqa: E402
from service.twins.validate import check_adapter_file, read_header  # noqa: E402

Tensors = dict[str, np.ndarray]


def read(data: bytes) -> tuple[Tensors, dict[str, str]]:
    # sorted: safetensors yields tensors in another order in each process, and seeded draws follow this order
    return {k: v.astype(np.float32) for k, v in sorted(load(data).items())}, read_header(data)[1]


def write(tensors: Tensors, metadata: dict[str, str] | None = None) -> bytes:
    return save({k: np.ascontiguousarray(v, dtype=np.float32 if v.dtype == np.float64 else v.dtype)
                 for k, v in sorted(tensors.items())}, metadata=metadata)


def modules(tensors: Tensors) -> list[str]:
    return sorted(k[: -len(".lora_A.weight")] for k in tensors if k.endswith(".lora_A.weight"))


def delta(tensors: Tensors, scale: float = 1.0) -> np.ndarray:
    """The exact concatenated ΔW of every layer (bench only: the service never forms it)."""
    return np.concatenate([(tensors[f"{m}.lora_B.weight"].astype(np.float64) @ tensors[f"{m}.lora_A.weight"]).ravel()
                           for m in modules(tensors)]) * scale


def random_like(tensors: Tensors, seed: int, shared: Tensors | None = None, share: float = 0.0) -> Tensors:
    """A random LoRA with the same keys and shapes (N(0, 0.5²) entries, as builds/demo.py's);
    with `shared`, a fraction `share` of its update's energy is `shared`'s update."""
    rng = np.random.default_rng(seed)
    out = {k: (rng.standard_normal(v.shape) * 0.5).astype(np.float32) for k, v in tensors.items()}
    if shared is None:
        return out
    own, common = np.sqrt(1.0 - share), np.sqrt(share)
    for m in modules(out):  # B = [own·B_own, common·B_shared], A = [A_own; A_shared]: ΔW = own·ΔW_own + common·ΔW_shared
        a, b = out[f"{m}.lora_A.weight"], out[f"{m}.lora_B.weight"]
        out[f"{m}.lora_A.weight"] = np.concatenate([a, shared[f"{m}.lora_A.weight"]])
        out[f"{m}.lora_B.weight"] = np.concatenate([own * b, common * shared[f"{m}.lora_B.weight"]], axis=1)
    return out


def svd_resave(tensors: Tensors, rank: int) -> Tensors:
    out = {}
    for m in modules(tensors):
        u, s, vt = np.linalg.svd(tensors[f"{m}.lora_B.weight"].astype(np.float64) @ tensors[f"{m}.lora_A.weight"],
                                 full_matrices=False)
        root = np.sqrt(s[:rank])
        out[f"{m}.lora_B.weight"] = (u[:, :rank] * root).astype(np.float32)
        out[f"{m}.lora_A.weight"] = (root[:, None] * vt[:rank]).astype(np.float32)
    return out  # no alpha: the default alpha = rank keeps the scale at 1, as the source's


def copies(data: bytes, seed: int) -> dict[str, bytes]:
    """Each kind of copy of one adapter, as safetensors bytes."""
    tensors, metadata = read(data)
    rng = np.random.default_rng(seed)
    names = modules(tensors)
    rank = tensors[f"{names[0]}.lora_A.weight"].shape[0]
    out = {"metadata": write(tensors, {**metadata, "ss_output_name": "someone-else", "note": "re-saved"})}
    out["noise_1e-6"] = write({k: v + rng.standard_normal(v.shape).astype(np.float32) * 1e-6 for k, v in tensors.items()},
                              metadata)
    out["noise_0.3x_weights_std"] = write({k: v + rng.standard_normal(v.shape).astype(np.float32) * 0.3 * float(v.std())
                                           for k, v in tensors.items()}, metadata)
    out["float16"] = write({k: v.astype(np.float16) for k, v in tensors.items()}, metadata)
    refactored = {}
    for m in names:
        q = rng.standard_normal((rank, rank)) + 2 * np.eye(rank)
        refactored[f"{m}.lora_B.weight"] = (tensors[f"{m}.lora_B.weight"] @ q).astype(np.float32)
        refactored[f"{m}.lora_A.weight"] = (np.linalg.inv(q) @ tensors[f"{m}.lora_A.weight"]).astype(np.float32)
    out["refactor_BQ_QinvA"] = write(refactored, metadata)
    out["peft_layout"] = write({k.replace(".weight", ".default_0.weight"): v for k, v in tensors.items()}, metadata)
    for r in sorted({max(1, rank // 2), 1}, reverse=True):
        out[f"svd_rank_{r}"] = write(svd_resave(tensors, r))
    out["svd_rank_same_fp16"] = write({k: v.astype(np.float16) for k, v in svd_resave(tensors, rank).items()})
    config = json.dumps({"unet": {"r": rank, "lora_alpha": rank * 0.5}})
    out["scaled_alpha_x0.5"] = write(tensors, {**metadata, "lora_adapter_metadata": config})
    out["scaled_B_x2"] = write({k: v * 2 if ".lora_B." in k else v for k, v in tensors.items()}, metadata)
    boosted = names[int(rng.integers(len(names)))]
    out["one_layer_x4"] = write({k: v * 4 if k.startswith(boosted + ".lora_B") else v for k, v in tensors.items()},
                                metadata)
    dropped = names[int(rng.integers(len(names)))]
    out["partial_one_layer_dropped"] = write({k: v for k, v in tensors.items() if not k.startswith(dropped + ".")},
                                             metadata)
    kept = set(rng.permutation(names)[: len(names) // 2])
    out["partial_half_layers_dropped"] = write({k: v for k, v in tensors.items()
                                                if k.rsplit(".lora_", 1)[0] in kept}, metadata)
    kept = set(rng.permutation(names)[: len(names) // 4])
    out["partial_quarter_layers_kept"] = write({k: v for k, v in tensors.items()
                                                if k.rsplit(".lora_", 1)[0] in kept}, metadata)
    out["negated_B_x-1"] = write({k: -v if ".lora_B." in k else v for k, v in tensors.items()}, metadata)
    return out


def summary(values: list[float]) -> dict:
    return {"n": len(values), "min": round(min(values), 4), "median": round(statistics.median(values), 4),
            "max": round(max(values), 4)}


def sdxl_shaped(rank: int = 32, seed: int = 0) -> bytes:
    """A float16 LoRA with SDXL's 560 attention layers (to_q, to_k, to_v, to_out.0) at `rank`."""
    rng = np.random.default_rng(seed)
    tensors: Tensors = {}
    blocks = [("down_blocks.1", 2, 2, 640), ("down_blocks.2", 2, 10, 1280), ("mid_block", 1, 10, 1280),
              ("up_blocks.0", 3, 10, 1280), ("up_blocks.1", 3, 2, 640)]
    for prefix, attentions, depth, width in blocks:
        for i in range(attentions):
            for j in range(depth):
                base = f"unet.{prefix}.attentions.{i}.transformer_blocks.{j}" if prefix != "mid_block" \
                    else f"unet.mid_block.attentions.0.transformer_blocks.{j}"
                for attn, context in (("attn1", width), ("attn2", 2048)):
                    for target, n_in in (("to_q", width), ("to_k", context), ("to_v", context), ("to_out.0", width)):
                        key = f"{base}.{attn}.{target}"
                        tensors[f"{key}.lora_A.weight"] = (rng.standard_normal((rank, n_in)) * 0.01).astype(np.float16)
                        tensors[f"{key}.lora_B.weight"] = (rng.standard_normal((width, rank)) * 0.01).astype(np.float16)
    return write(tensors, {"format": "pt"})


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def demo_adapters(directory: Path | None) -> dict[str, bytes]:
    if directory is None:
        from builds.demo import build_demo

        directory = build_demo(Path(tempfile.mkdtemp(prefix="likeness-bench-"))).adapters_dir
    found = {p.stem: p.read_bytes() for p in sorted(directory.glob("demo-*.safetensors"))}
    if not found:
        raise SystemExit(f"no demo-*.safetensors under {directory}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adapters", type=Path, default=None)
    parser.add_argument("--random", type=int, default=50)
    parser.add_argument("--copied", type=int, default=10, help="random LoRAs also copied (besides the demo twins)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    demos = demo_adapters(args.adapters)
    template, _ = read(next(iter(demos.values())))
    randoms = {f"random-{i}": write(random_like(template, 10_000 + i), {"format": "pt"}) for i in range(args.random)}
    adapters = {**demos, **randoms}
    prints = {name: fingerprint_adapter(data) for name, data in adapters.items()}
    exact = {name: delta(read(data)[0]) for name, data in adapters.items()}
    names = list(adapters)

    def exact_distance(u: np.ndarray, v: np.ndarray) -> float:
        n = min(len(u), len(v))  # a partial copy's concatenation is shorter only when layers at the end went
        return 1.0 - float(u[:n] @ v[:n] / (np.linalg.norm(u) * np.linalg.norm(v)))

    different, sketch_error = [], []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            d = distance(prints[a], prints[b])
            different.append(d)
            sketch_error.append(abs(d - exact_distance(exact[a], exact[b])))

    copy_distances: dict[str, list[float]] = {}
    sources = list(demos) + list(randoms)[: args.copied]
    for n, name in enumerate(sources):
        for kind, data in copies(adapters[name], seed=n).items():
            copy_distances.setdefault(kind, []).append(distance(prints[name], fingerprint_adapter(data)))

    shared_results = {}
    rng_base = random_like(template, 99_999)
    for share in (0.1, 0.25, 0.5, 0.75):
        group = [fingerprint_adapter(write(random_like(template, 20_000 + i, rng_base, share))) for i in range(10)]
        shared_results[str(share)] = summary([distance(group[i], group[j]) for i in range(10) for j in range(i + 1, 10)])

    demo_bytes = next(iter(demos.values()))
    sdxl = sdxl_shaped()
    stored = np.random.default_rng(1).standard_normal((10_000, 1024)).astype(np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    probe = prints[names[0]].vector
    cost = {
        "demo_adapter_bytes": len(demo_bytes),
        "demo_fingerprint_ms": round(timed(lambda: fingerprint_adapter(demo_bytes), 20), 2),
        "sdxl_rank32_fp16_bytes": len(sdxl),
        "sdxl_rank32_fp16_fingerprint_ms": round(timed(lambda: fingerprint_adapter(sdxl), 3), 1),
        "sdxl_rank32_fp16_validate_ms": round(timed(lambda: check_adapter_file(
            sdxl, max_rank=32, targets=("to_q", "to_k", "to_v", "to_out.0")), 3), 1),  # what registration already pays
        "compare_with_10000_stored_ms": round(timed(lambda: 1.0 - stored @ probe, 20), 2),
    }

    detected = {kind: max(v) <= THRESHOLD for kind, v in copy_distances.items()}
    report = {
        "threshold": THRESHOLD,
        "different_adapters": summary(different),
        "different_adapters_margin": round(min(different) - THRESHOLD, 4),
        "copies": {kind: {**summary(v), "detected": detected[kind]} for kind, v in copy_distances.items()},
        "copies_margin_of_detected_kinds": round(THRESHOLD - max(max(v) for k, v in copy_distances.items() if detected[k]), 4),
        "sketch_abs_error_vs_exact_dW": summary(sketch_error),
        "different_with_shared_component": shared_results,
        "cost": cost,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
