"""Invisible watermark robustness: share of images whose 64-bit id decodes exactly after edits.

Images: synthetic photo-like images (gradients, shaded shapes, fabric stripes, blotch texture,
blur, sensor noise; deterministic from seeds) at 512 and 1024 px, plus outputs of the demo
pipeline (random-weight abstract patterns, 512 px, 4 steps). Each is marked with a random id
and then edited: none; JPEG q90, q75, q50; resize to 0.5x and back; centre crop keeping 90%
and 75% of the area (not resized back); brightness x1.2; resize to 0.75x then JPEG q75 (left
at 0.75x). Also: false positives over unmarked images (the sources plus fresh synthetic
images of assorted sizes, a third of them JPEG-compressed), PSNR of marked vs source, and
median embed / detect times per 1024x1024 image on CPU.

The baseline is `invisible-watermark`'s dwtDctSvd carrying the same 64 raw bits (no ECC, no
found/not-found decision, so no false-positive figure), measured when the package imports.

Prints one JSON line and a short table.

    python bench/watermark.py [--quick] [--images 50] [--unmarked 200] [--no-baseline]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, median  # noqa: E402
from service.provenance import watermark  # noqa: E402


def synthetic_image(seed: int, width: int, height: int) -> Image.Image:
    """A deterministic photo-like RGB image."""
    rng = np.random.default_rng(seed)
    side = max(width, height)
    yy, xx = np.mgrid[0:height, 0:width] / side
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    angle = rng.uniform(0, np.pi)
    t = np.cos(angle) * xx + np.sin(angle) * yy
    t = (t - t.min()) / (np.ptp(t) + 1e-9)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    for _ in range(int(rng.integers(3, 8))):  # shaded ellipses
        cy, cx = rng.uniform(0, 1) * height / side, rng.uniform(0, 1) * width / side
        ry, rx = rng.uniform(0.05, 0.3, 2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        shade = 0.7 + 0.3 * np.clip((yy - cy) / ry, -1, 1)[..., None]
        img = np.where(inside[..., None], rng.uniform(0, 255, 3) * shade, img)
    freq = rng.uniform(20, 120)  # a band of fabric-like stripes
    stripes = np.sin(2 * np.pi * freq * (xx * np.cos(angle + 1) + yy * np.sin(angle + 1)))
    band = np.abs(xx - rng.uniform(0.2, 0.8)) < rng.uniform(0.1, 0.3)
    img += (12 * stripes * band)[..., None]
    blotches = np.kron(rng.normal(0, 1, (height // 8 + 1, width // 8 + 1)), np.ones((8, 8)))[:height, :width]
    img += (rng.uniform(0.5, 12) * blotches)[..., None]
    image = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 2.0)))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, rng.uniform(0.5, 3.0), (height, width, 3))
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "RGB")


def demo_images(count: int, root: Path) -> list[Image.Image]:
    """`count` 512 px outputs of the demo pipeline (twin demo-ava, 4 steps, seeds 0..count-1)."""
    if count <= 0:
        return []
    from builds.demo import build_demo
    from service.config import Settings
    from service.engine import Engine
    from service.registry import open_registry
    from service.schemas import GenerateRequest

    build_demo(root)
    settings = Settings.from_env({"ATELIER_HOME": str(root), "ATELIER_WARMUP": "0"})
    engine = Engine.from_settings(settings, open_registry(settings.db_url))
    prompts = ["a red wool coat, studio light", "a linen summer dress on a beach", "a black suit, runway", "denim jacket, street"]
    images = []
    for i in range(count):
        request = GenerateRequest(twin_id="demo-ava", prompt=prompts[i % len(prompts)], width=512, height=512, steps=4, seed=i)
        data = engine.generate(request).images[0].data
        images.append(Image.open(io.BytesIO(data)).convert("RGB"))
    return images


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def centre_crop(image: Image.Image, area: float) -> Image.Image:
    w, h = image.size
    cw, ch = round(w * area**0.5), round(h * area**0.5)
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


def resize(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BICUBIC)


ATTACKS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none": lambda im: im,
    "jpeg_q90": lambda im: jpeg(im, 90),
    "jpeg_q75": lambda im: jpeg(im, 75),
    "jpeg_q50": lambda im: jpeg(im, 50),
    "resize_0.5x_back": lambda im: resize(im, 0.5).resize(im.size, Image.Resampling.BICUBIC),
    "crop_90pct": lambda im: centre_crop(im, 0.90),
    "crop_75pct": lambda im: centre_crop(im, 0.75),
    "brightness_1.2": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "resize_0.75x_jpeg_q75": lambda im: jpeg(resize(im, 0.75), 75),
}
TARGETS = {"jpeg_q75": 1.0, "resize_0.5x_back": 1.0, "jpeg_q50": 0.95, "crop_90pct": 0.95}


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


class Baseline:
    """invisible-watermark dwtDctSvd with 64 raw bits."""

    def __init__(self) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self._encoder_cls, self._decoder = WatermarkEncoder, WatermarkDecoder("bits", 64)

    @staticmethod
    def _bits(payload: int) -> list[int]:
        return [(payload >> (63 - i)) & 1 for i in range(64)]

    def embed(self, image: Image.Image, payload: int) -> Image.Image:
        encoder = self._encoder_cls()
        encoder.set_watermark("bits", self._bits(payload))
        bgr = np.ascontiguousarray(np.asarray(image)[..., ::-1])
        return Image.fromarray(np.ascontiguousarray(encoder.encode(bgr, "dwtDctSvd")[..., ::-1]), "RGB")

    def bit_accuracy(self, image: Image.Image, payload: int) -> float:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])
        try:
            bits = self._decoder.decode(bgr, "dwtDctSvd")
        except Exception:  # the package fails on some sizes; count as all bits lost
            return 0.0
        return float(np.mean(np.asarray(bits, dtype=int) == np.asarray(self._bits(payload))))


def run_ours(sources: list[Image.Image], payloads: list[int]) -> dict:
    exact = {name: 0 for name in ATTACKS}
    corrected: dict[str, list[int]] = {name: [] for name in ATTACKS}
    psnrs, embed_ms, detect_ms = [], [], []
    for image, payload in zip(sources, payloads):
        start = time.perf_counter()
        marked = watermark.embed(image, payload)
        elapsed = (time.perf_counter() - start) * 1000
        psnrs.append(psnr(image, marked))
        for name, attack in ATTACKS.items():
            edited = attack(marked)
            start = time.perf_counter()
            reading = watermark.detect(edited)
            if name == "none" and image.size == (1024, 1024):
                detect_ms.append((time.perf_counter() - start) * 1000)
            if reading.found and reading.payload != payload:
                raise AssertionError(f"wrong id decoded after {name}")
            if reading.found:
                exact[name] += 1
                corrected[name].append(reading.bit_errors_corrected)
        if image.size == (1024, 1024):
            embed_ms.append(elapsed)
    n = len(sources)
    return {
        "exact": {name: round(count / n, 4) for name, count in exact.items()},
        "max_bit_errors_corrected": {name: max(v) if v else None for name, v in corrected.items()},
        "psnr_db": {"mean": round(float(np.mean(psnrs)), 2), "min": round(float(np.min(psnrs)), 2)},
        "embed_ms_1024": round(median(embed_ms), 1) if embed_ms else None,
        "detect_ms_1024": round(median(detect_ms), 1) if detect_ms else None,
    }


def run_baseline(sources: list[Image.Image], payloads: list[int]) -> dict:
    baseline = Baseline()
    exact = {name: 0 for name in ATTACKS}
    bits: dict[str, list[float]] = {name: [] for name in ATTACKS}
    psnrs, embed_ms, detect_ms = [], [], []
    for image, payload in zip(sources, payloads):
        start = time.perf_counter()
        marked = baseline.embed(image, payload)
        if image.size == (1024, 1024):
            embed_ms.append((time.perf_counter() - start) * 1000)
        psnrs.append(psnr(image, marked))
        for name, attack in ATTACKS.items():
            edited = attack(marked)
            start = time.perf_counter()
            accuracy = baseline.bit_accuracy(edited, payload)
            if name == "none" and image.size == (1024, 1024):
                detect_ms.append((time.perf_counter() - start) * 1000)
            bits[name].append(accuracy)
            exact[name] += accuracy == 1.0
    n = len(sources)
    return {
        "exact": {name: round(count / n, 4) for name, count in exact.items()},
        "bit_accuracy": {name: round(float(np.mean(v)), 4) for name, v in bits.items()},
        "psnr_db": {"mean": round(float(np.mean(psnrs)), 2), "min": round(float(np.min(psnrs)), 2)},
        "embed_ms_1024": round(median(embed_ms), 1) if embed_ms else None,
        "detect_ms_1024": round(median(detect_ms), 1) if detect_ms else None,
    }


def unmarked_images(sources: list[Image.Image], total: int) -> list[Image.Image]:
    sizes = [(512, 512), (1024, 1024), (768, 512), (512, 768), (640, 384), (1024, 576)]
    images = list(sources[:total])
    i = 0
    while len(images) < total:
        w, h = sizes[i % len(sizes)]
        image = synthetic_image(10_000 + i, w, h)
        images.append(jpeg(image, 75) if i % 3 == 2 else image)
        i += 1
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 images, 40 unmarked")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--unmarked", type=int, default=200)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    n_images, n_unmarked = (12, 40) if args.quick else (args.images, args.unmarked)
    n_demo = round(n_images * 0.4)
    n_synth = n_images - n_demo
    started = time.perf_counter()

    sources = [synthetic_image(seed, *(2 * (512 if seed % 2 == 0 else 1024,))) for seed in range(n_synth)]
    with tempfile.TemporaryDirectory() as tmp:
        sources += demo_images(n_demo, Path(tmp) / "home")
    rng = np.random.default_rng(2024)
    payloads = [int.from_bytes(rng.bytes(8), "big") for _ in sources]

    ours = run_ours(sources, payloads)
    false_positives = 0
    fp_ms = []
    for image in unmarked_images(sources, n_unmarked):
        start = time.perf_counter()
        false_positives += watermark.detect(image).found
        if image.size == (1024, 1024):
            fp_ms.append((time.perf_counter() - start) * 1000)
    ours["false_positives"] = false_positives
    ours["unmarked_images"] = n_unmarked
    ours["detect_ms_1024_unmarked"] = round(median(fp_ms), 1) if fp_ms else None
    ours["false_positive_bound_log2_per_image"] = round(watermark.FALSE_POSITIVE_LOG2, 1)

    baseline: dict | str
    if args.no_baseline:
        baseline = "skipped (--no-baseline)"
    else:
        try:
            baseline = run_baseline(sources, payloads)
        except ImportError as exc:
            baseline = f"skipped: {exc}"

    result = {
        "bench": "watermark",
        "machine": describe(),
        "images": {"total": len(sources), "synthetic_512_1024": n_synth, "demo_512": n_demo},
        "ours": ours,
        "baseline_dwtDctSvd_64bit": baseline,
        "targets_met": all(ours["exact"][k] >= v for k, v in TARGETS.items())
        and false_positives == 0
        and ours["psnr_db"]["min"] >= 38.0,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))
    print()
    base = baseline if isinstance(baseline, dict) else None
    print(f"{'edit':<24}{'ours exact':>11}{'baseline exact':>16}{'baseline bits':>15}")
    for name in ATTACKS:
        b_exact = f"{base['exact'][name]:.0%}" if base else "-"
        b_bits = f"{base['bit_accuracy'][name]:.1%}" if base else "-"
        print(f"{name:<24}{ours['exact'][name]:>11.0%}{b_exact:>16}{b_bits:>15}")
    print(f"{'false positives':<24}{f'{false_positives}/{n_unmarked}':>11}{'n/a':>16}")
    b_psnr = f"{base['psnr_db']['mean']}/{base['psnr_db']['min']}" if base else "-"
    print(f"{'PSNR dB mean/min':<24}{ours['psnr_db']['mean']:>6}/{ours['psnr_db']['min']:<4}{b_psnr:>16}")
    b_time = f"{base['embed_ms_1024']}/{base['detect_ms_1024']}" if base else "-"
    print(f"{'embed/detect ms 1024px':<24}{ours['embed_ms_1024']:>6}/{ours['detect_ms_1024']:<4}{b_time:>16}")
    print(f"detect on unmarked 1024px: {ours['detect_ms_1024_unmarked']} ms; "
          f"false-positive bound 2^{ours['false_positive_bound_log2_per_image']} per image; {result['seconds']} s")


if __name__ == "__main__":
    main()
