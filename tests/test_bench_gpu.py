"""bench/gpu.py: its embedded configs are the real SDXL ones, and the whole script runs on CPU
(the demo pipeline) with eager and compile, reporting what the GPU run reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_embedded_sdxl_unet_config_is_the_real_one():
    """2,567,463,684 parameters and 13.5 TFLOP per CFG step at 1024 px, on the meta device
    (nothing allocated)."""
    from bench.gpu import REFERENCE_TFLOP_PER_STEP, sdxl_unet, unet_flops

    unet = sdxl_unet("meta")
    params = sum(p.numel() for p in unet.parameters())
    assert abs(params - 2.57e9) / 2.57e9 < 0.02, params
    flops = unet_flops(unet, 1024, batch=2)
    assert abs(flops / 1e12 - REFERENCE_TFLOP_PER_STEP) / REFERENCE_TFLOP_PER_STEP < 0.02, flops


def test_embedded_sdxl_text_encoders_and_vae_build():
    """The other components build from their configs (meta device) with SDXL's sizes."""
    import torch

    from bench.gpu import sdxl_components

    components = sdxl_components("meta", torch.float16)
    params = {name: sum(p.numel() for p in module.parameters()) for name, module in components.items()}
    assert abs(params["text_encoder"] - 123.06e6) / 123.06e6 < 0.02, params
    assert abs(params["text_encoder_2"] - 694.66e6) / 694.66e6 < 0.02, params
    assert abs(params["vae"] - 83.65e6) / 83.65e6 < 0.02, params
    assert components["unet"].dtype == torch.float16


def test_importing_the_engine_does_not_import_bentoml():
    """The GPU machine has no bentoml: the benchmark's imports must not need it."""
    code = ("import sys, bench.gpu, service.engine, service.registry, service.schemas, service.twins.slot; "
            "sys.exit('bentoml' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-gpu") / "r.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu.py"), "--size", "256", "--steps", "2", "--runs", "2",
         "--backends", "eager,compile,tensorrt", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    return proc, out


def test_cpu_run_reports_both_backends(cpu_run):
    proc, out = cpu_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["pipeline"] == "demo"
    assert (report["size"], report["steps"], report["dtype"]) == (256, 2, "float32")
    assert report["flops"]["flops_per_step"] > 0
    for name in ("eager", "compile"):
        row = report["backends"][name]
        assert row["status"] == "ok", row
        assert row["runs"] == 2
        assert row["s_per_image"] > 0 and row["step_ms"] > 0 and row["achieved_tflops"] > 0
        assert row["peak_memory_bytes"] is None  # no GPU
    assert report["backends"]["compile"]["compile_s"] is not None
    swap = report["backends"]["compile"]["hotswap"]
    assert swap["recompiled"] is False and swap["frames_compiled_during_swaps"] == 0
    assert swap["slot_copy_ms"] > 0 and swap["swap_generations"] == 4
    assert report["hotswap"]["backend"] == "compile" and report["hotswap"]["recompiled"] is False
    trt = report["backends"]["tensorrt"]
    assert trt["status"] == "skipped" and trt["reason"]
    assert report["peak_memory_bytes"] is None


def test_cpu_run_prints_one_json_line_then_the_table_last(cpu_run):
    proc, out = cpu_run
    lines = proc.stdout.strip().splitlines()
    json_lines = [i for i, line in enumerate(lines) if line.startswith("{")]
    assert len(json_lines) == 1
    printed = json.loads(lines[json_lines[0]])
    assert printed["backends"] == json.loads(out.read_text())["backends"]
    rest = lines[json_lines[0] + 1 :]
    assert rest[0].split()[:3] == ["backend", "s/image", "step"]
    assert [line.split()[0] for line in rest[1:4]] == ["eager", "compile", "tensorrt"]
    assert "skipped" in rest[3]
    assert rest[-1].startswith("total ")  # the table is the last thing printed


def test_device_memory_is_the_mem_get_info_drop_so_every_backend_counts_alike(monkeypatch):
    """TensorRT's engines and activation block are invisible to torch's allocator statistics:
    the bench measures the drop in free device memory instead, peak over its samples."""
    import torch

    from bench.gpu import DeviceMemory

    free = iter([10_000, 7_000, 4_000, 6_000])  # before loading, then three samples
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 1_000)  # torch's own tensors only
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (next(free), 80_000))
    memory = DeviceMemory(cuda=True)
    for label in ("loaded", "first call", "end"):
        memory.sample(label)
    report = memory.report()
    assert report["memory_samples_bytes"] == {"loaded": 3_000, "first call": 6_000, "end": 4_000}
    assert report["peak_memory_bytes"] == 6_000 > report["torch_max_allocated_bytes"]
    assert "mem_get_info" in report["memory_method"]
    assert DeviceMemory(cuda=False).report()["peak_memory_bytes"] is None
