"""The compile backend's shapes: warm-up at the configured sizes means no compiles under the
pipeline lock at those sizes, and a call the compiler cannot take is served eagerly and
reported (log line, Prometheus counter, status for the ready line).

The compiler here is aot_eager (dynamo's graphs and guards without inductor's code
generation): recompiles and fallbacks are decided by dynamo, so this is what they depend on,
in seconds instead of minutes."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from service.config import Settings
from service.engine.backends.compile import CompileBackend
from service.engine.loading import load_pipeline
from service.schemas import GenerateRequest


def request(width, height, twin_id="demo-ava", **fields):
    return GenerateRequest(twin_id=twin_id, prompt="studio photo, linen dress", width=width, height=height, steps=2,
                           seed=5, **fields)


def started(demo_home, registry, dynamic: bool):
    from service.engine import Engine

    # Conditioning models off: the shapes of the plain pipeline are this file's subject
    # (tests/test_conditioning_compile.py covers garments, poses and edits under compile).
    off = {name: "off" for name in ("ATELIER_IP_ADAPTER", "ATELIER_POSE_CONTROLNET", "ATELIER_INPAINT_MODEL")}
    settings = Settings.from_env({"ATELIER_HOME": str(demo_home), "ATELIER_BACKEND": "compile",
                                  "ATELIER_COMPILE_COMPILER": "aot_eager", "ATELIER_COMPILE_DYNAMIC": str(int(dynamic)),
                                  "ATELIER_WARMUP": "1", "ATELIER_WARMUP_SIZES": "256x256,320x256", **off})
    return Engine.from_settings(settings, registry)


def test_size_buckets_warm_up_at_two_sizes_and_never_compile_there_again(demo_home, registry):
    engine = started(demo_home, registry, dynamic=False)
    assert [str(s) for s in engine.backend.warmup_shapes()] == ["256x256", "320x256"]
    with torch._dynamo.config.patch(error_on_recompile=True):
        for width, height in ((256, 256), (320, 256)):
            for twin_id in ("demo-ava", None, "demo-ben"):
                assert engine.generate(request(width, height, twin_id)).images[0].width == width
        with pytest.raises(torch._dynamo.exc.RecompileError):  # a size never warmed compiles: the check can fail
            engine.generate(request(384, 384))
    assert engine.backend.status()["eager_fallback_calls"] == 0  # a RecompileError is never served eagerly


def test_dynamic_shapes_warm_up_once_and_serve_other_sizes_and_guidance_1_without_compiling(demo_home, registry):
    engine = started(demo_home, registry, dynamic=True)
    assert [str(s) for s in engine.backend.warmup_shapes()] == ["256x256", "320x256", "256x256 (no cfg)", "256x256x2"]
    with torch._dynamo.config.patch(error_on_recompile=True):
        for width, height in ((256, 256), (320, 256), (384, 384)):  # the last never warmed
            assert engine.generate(request(width, height)).images[0].height == height
        engine.generate(request(256, 256, guidance_scale=1.0))  # UNet batch 1: warmed by the no-CFG shape
        # Sizes and batches never warmed, odd latents and other aspects among them.
        for width, height, images in ((264, 336, 1), (400, 272, 1), (320, 448, 1), (256, 256, 2), (384, 256, 3)):
            assert len(engine.generate(request(width, height, num_images=images)).images) == images
    status = engine.backend.status()
    assert status["dynamic"] is True and status["active"] == "compile" and status["eager_fallback_calls"] == 0


def unet_inputs(batch, latent_h, latent_w):
    g = torch.Generator().manual_seed(latent_h * 100 + latent_w)
    return (torch.randn(batch, 4, latent_h, latent_w, generator=g), torch.tensor(300.0),
            torch.randn(batch, 77, 64, generator=g)), {
        "added_cond_kwargs": {"text_embeds": torch.randn(batch, 32, generator=g),
                              "time_ids": torch.tensor([[256.0, 256.0, 0, 0, 256.0, 256.0]] * batch)}}


def prepared(demo_home, backend: CompileBackend):
    pipe = load_pipeline(demo_home / "demo" / "pipeline", torch.device("cpu"), torch.float32)
    backend.prepare(SimpleNamespace(unet=pipe.unet, components={"unet": pipe.unet}))
    return pipe.unet


def run(unet, batch, h, w, eager=False):
    args, kwargs = unet_inputs(batch, h, w)
    with torch.no_grad():
        if eager:
            with torch.compiler.set_stance("force_eager"):
                return unet(*args, **kwargs).sample
        return unet(*args, **kwargs).sample


def fallbacks(reason: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("atelier_backend_fallbacks_total",
                                     {"backend": "compile", "to": "eager", "reason": reason}) or 0.0


def test_a_call_past_the_recompile_limit_is_served_eagerly_and_reported(demo_home, caplog):
    backend = CompileBackend("regional", dynamic=False, compiler="aot_eager")
    unet = prepared(demo_home, backend)
    run(unet, 2, 32, 32)  # compiled for this shape
    before = fallbacks("recompile_limit")
    with torch._dynamo.config.patch(recompile_limit=1), caplog.at_level(logging.WARNING, logger="atelier.engine"):
        got = run(unet, 2, 32, 40)  # fullgraph=True: dynamo raises FailOnRecompileLimitHit instead of running
        again = run(unet, 2, 32, 40)
        run(unet, 2, 32, 32)  # the compiled shape still runs compiled
    assert torch.equal(got, again) and torch.allclose(got, run(unet, 2, 32, 40, eager=True), atol=1e-5)
    status = backend.status()
    assert (status["active"], status["eager_fallback_calls"], status["fallback_reason"]) == ("compile", 2, "recompile_limit")
    assert fallbacks("recompile_limit") == before + 2  # every eager call counts
    lines = [r for r in caplog.records if r.getMessage() == "compile backend fell back to eager"]
    assert len(lines) == 1  # one log line per reason and shape
    fields = lines[0].fields
    assert fields["reason"] == "recompile_limit" and fields["sample_shape"] == [2, 4, 32, 40]
    assert "FailOnRecompileLimitHit" in fields["detail"]


def test_a_compiler_failure_turns_the_backend_eager_for_good_and_is_reported(demo_home, mode="regional"):
    # (`full` installs the same guard around torch.compile(unet.forward); tracing the whole
    # UNet only to fail costs ~10 s of CPU, so it is not repeated here.)
    attempts = []

    def broken_compiler(graph_module, example_inputs):
        attempts.append(graph_module)
        raise RuntimeError("the compiler crashed")

    backend = CompileBackend(mode, dynamic=True, compiler=broken_compiler)
    unet = prepared(demo_home, backend)
    before = fallbacks("compile_failed")
    first = run(unet, 2, 32, 32)
    tried = len(attempts)
    second = run(unet, 1, 40, 32)
    assert tried >= 1 and len(attempts) == tried  # not retried on every call
    status = backend.status()
    assert (status["active"], status["fallback_reason"], status["eager_fallback_calls"]) == ("eager", "compile_failed", 2)
    assert fallbacks("compile_failed") == before + 2
    assert torch.allclose(first, run(unet, 2, 32, 32, eager=True), atol=1e-5) and second.shape == (1, 4, 40, 32)


def test_warmup_sizes_are_parsed_and_checked():
    from service.config import ConfigError
    from service.engine.backends import create_backend, parse_warmup_sizes

    assert Settings.from_env({}).warmup_sizes == ("256x256",)  # cheap on a CPU; production sets its sizes
    assert parse_warmup_sizes(("1024x1024", " 1024X1280 ", "1024x1024")) == ((1024, 1024), (1024, 1280))
    for bad in ("1024", "1024x1000x8", "248x256", "1028x1024", "4096x1024", "wide x tall"):
        with pytest.raises(ConfigError, match="ATELIER_WARMUP_SIZES"):
            parse_warmup_sizes((bad,))
    with pytest.raises(ConfigError, match="ATELIER_WARMUP_SIZES"):  # checked when the backend is made, at start-up
        create_backend(Settings.from_env({"ATELIER_BACKEND": "compile", "ATELIER_WARMUP_SIZES": "1024x1020"}))
    eager = create_backend(Settings.from_env({"ATELIER_WARMUP_SIZES": "1024x1280,1024x1024"}))
    assert [str(s) for s in eager.warmup_shapes()] == ["1024x1280"]  # eager: first-call costs only, at one size
