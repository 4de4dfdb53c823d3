"""The tensorrt backend and the service agree on shapes, memory and streams: stand-in engines on CPU.

TensorRT cannot be installed here, so each engine is a stand-in that speaks TensorRT 10's
engine / execution-context API (tensor I/O by name, `get_tensor_profile_shape`, one context
per profile, user-managed device memory, `execute_async_v3` on a stream) and computes with
the demo pipeline's own torch modules, reading and writing the runner's tensors through
their addresses. What this proves is the backend's side of that contract: warm-up at the
OPT shapes, a 422 naming the supported range before any GPU work, guidance <= 1 served from
a minimum batch of 1, a profile's context chosen per call, one shared activation block,
engine work bracketed by stream waits, the replaced torch modules moved off the device, and
the same pixels as eager through every engine. Real TensorRT remains unverified here."""

from __future__ import annotations

import ctypes
import io
import logging
import math
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from service.config import Settings
from service.engine.artifacts import Artifact, EngineKey, Manifest, sha256_file, write_manifest
from service.engine.backends import tensorrt as trt_backend
from service.engine.backends.tensorrt import OutsideEngineProfile, TensorRTBackend, offload_replaced
from service.engine.loading import fingerprint_pipeline, load_pipeline
from service.engine.lora_fuse import base_weights, onnx_initializer_name
from service.schemas import GenerateRequest
from service.twins.slot import AdapterSlot
from tests.test_tensorrt_backend import HERE, fake_tensorrt

TOKENS = 77
LOG: list[str] = []  # stream and engine events, in order


def read_tensor(ptr: int, shape, dtype: torch.dtype) -> torch.Tensor:
    count = math.prod(shape)
    raw = (ctypes.c_char * (count * torch.empty((), dtype=dtype).element_size())).from_address(ptr)
    return torch.frombuffer(raw, dtype=dtype, count=count).view(tuple(shape)).clone()


def write_tensor(ptr: int, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().contiguous().view(-1)
    raw = (ctypes.c_char * (tensor.numel() * tensor.element_size())).from_address(ptr)
    torch.frombuffer(raw, dtype=tensor.dtype, count=tensor.numel()).copy_(tensor)


class StandInContext:
    def __init__(self, engine, strategy):
        self.engine, self.strategy = engine, strategy
        self.profile = 0
        self.shapes, self.addresses = {}, {}
        self.memory = None

    def set_device_memory(self, ptr, size):
        self.memory = (ptr, size)

    def set_optimization_profile_async(self, index, stream):
        self.profile = index
        return True

    def set_input_shape(self, name, shape):
        low, _, high = self.engine.profiles[self.profile][name]
        if len(shape) != len(low) or not all(lo <= s <= hi for lo, s, hi in zip(low, shape, high)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr

    def get_tensor_shape(self, name):
        return self.engine.output_shapes[name](self.shapes)

    def execute_async_v3(self, stream):
        feeds = {n: read_tensor(self.addresses[n], self.shapes[n], self.engine.inputs[n]) for n in self.engine.inputs}
        with torch.no_grad():
            outputs = self.engine.compute(feeds)
        for name, tensor in outputs.items():
            write_tensor(self.addresses[name], tensor.to(self.engine.outputs[name]))
        self.engine.calls.append((self.profile, dict(self.shapes)))
        LOG.append(f"execute {self.engine.component}")
        return True


class StandInEngine:
    """A TensorRT 10 engine's introspection and context API over a torch function."""

    def __init__(self, component, inputs, outputs, profiles, compute, output_shapes, memory, weights=None):
        self.component, self.inputs, self.outputs = component, inputs, outputs
        self.profiles, self.compute, self.output_shapes = profiles, compute, output_shapes
        self.device_memory_size_v2 = memory
        self.names = [*inputs, *outputs]
        self.weights, self.groups, self.refits, self.fail_next = dict(weights or {}), [], [], False
        self.contexts, self.calls = [], []
        self.refittable = component == "unet"

    num_io_tensors = property(lambda self: len(self.names))
    num_optimization_profiles = property(lambda self: len(self.profiles))

    def get_tensor_name(self, index):
        return self.names[index]

    def get_tensor_mode(self, name):
        return "input" if name in self.inputs else "output"

    def get_tensor_dtype(self, name):
        dtype = self.inputs.get(name, self.outputs.get(name))
        return "INT32" if dtype == torch.int32 else "FLOAT"

    def get_tensor_profile_shape(self, name, index):
        return [list(s) for s in self.profiles[index][name]]

    def create_execution_context(self, strategy=None):
        context = StandInContext(self, strategy)
        self.contexts.append(context)
        return context


def latent_profile(batch, height, width):
    """(min, opt, max) of a [B, 4, h, w] input from (min, opt, max) batch, latent height and width."""
    return tuple((batch[i], 4, height[i], width[i]) for i in range(3))


def rows(profile, *names_dims):
    """The same batch range for inputs shaped [B, *dims]."""
    return {name: tuple((profile[i], *dims) for i in range(3)) for name, dims in names_dims}


# Profile 0: 256-320 px square-ish, up to 4 images with CFG (UNet batch 1..8). Profile 1: up to
# 512 px wide and 384 px high, one image (UNet batch 1..2). OPT: 256x256 and 384x320, one image, CFG.
UNET_PROFILES = [((1, 2, 8), (32, 32, 40), (32, 32, 40)), ((1, 2, 2), (32, 40, 48), (32, 48, 64))]
VAE_PROFILES = [((1, 1, 4), (32, 32, 40), (32, 32, 40)), ((1, 1, 1), (32, 40, 48), (32, 48, 64))]
MEMORY = {"text_encoder": 1024, "text_encoder_2": 2048, "unet": 8192, "vae_decoder": 4096}


def stand_in_engines(ref, slot_names: list[str]) -> dict[str, StandInEngine]:
    cross, pooled = ref.unet.config.cross_attention_dim, ref.text_encoder_2.config.projection_dim
    d1, d2 = ref.text_encoder.config.hidden_size, ref.text_encoder_2.config.hidden_size
    f32 = torch.float32

    def unet(feeds):
        added = {"text_embeds": feeds["text_embeds"], "time_ids": feeds["time_ids"]}
        noise = ref.unet(feeds["sample"], feeds["timestep"], feeds["encoder_hidden_states"], added_cond_kwargs=added).sample
        return {"noise_pred": noise}

    def vae(feeds):
        return {"image": ref.vae.decode(feeds["latent"]).sample}

    def text(encoder, pooled_name):
        def run(feeds):
            out = encoder(feeds["input_ids"].long(), output_hidden_states=True)
            return {"last_hidden_state": out.last_hidden_state, "hidden_states_penultimate": out.hidden_states[-2],
                    pooled_name: getattr(out, pooled_name)}
        return run

    unet_profiles = []
    for batch, h, w in UNET_PROFILES:
        sample = latent_profile(batch, h, w)
        unet_profiles.append({"sample": sample, "timestep": ((1,), (1,), (1,)),
                              **rows(batch, ("encoder_hidden_states", (TOKENS, cross)), ("text_embeds", (pooled,)),
                                     ("time_ids", (6,)))})
    vae_profiles = [{"latent": latent_profile(*p)} for p in VAE_PROFILES]
    text_profiles = [rows((1, 1, 4), ("input_ids", (TOKENS,)))]
    same = {"noise_pred": lambda s: s["sample"]}
    image = {"image": lambda s: (s["latent"][0], 3, s["latent"][2] * 8, s["latent"][3] * 8)}

    def text_shapes(width, pooled_name, pooled_width):
        return {"last_hidden_state": lambda s: (s["input_ids"][0], TOKENS, width),
                "hidden_states_penultimate": lambda s: (s["input_ids"][0], TOKENS, width),
                pooled_name: lambda s: (s["input_ids"][0], pooled_width)}

    ids = {"input_ids": torch.int32}
    return {
        "unet": StandInEngine("unet", {"sample": f32, "timestep": f32, "encoder_hidden_states": f32, "text_embeds": f32,
                                       "time_ids": f32}, {"noise_pred": f32}, unet_profiles, unet, same, MEMORY["unet"],
                              weights={onnx_initializer_name(n): torch.zeros(1) for n in slot_names}),
        "vae_decoder": StandInEngine("vae_decoder", {"latent": f32}, {"image": f32}, vae_profiles, vae, image,
                                     MEMORY["vae_decoder"]),
        "text_encoder": StandInEngine("text_encoder", ids, {"last_hidden_state": f32, "hidden_states_penultimate": f32,
                                                            "pooler_output": f32}, text_profiles,
                                      text(ref.text_encoder, "pooler_output"), text_shapes(d1, "pooler_output", d1),
                                      MEMORY["text_encoder"]),
        "text_encoder_2": StandInEngine("text_encoder_2", ids, {"last_hidden_state": f32, "hidden_states_penultimate": f32,
                                                                "text_embeds": f32}, text_profiles,
                                        text(ref.text_encoder_2, "text_embeds"), text_shapes(d2, "text_embeds", pooled),
                                        MEMORY["text_encoder_2"]),
    }


def stand_in_tensorrt(engines: dict[str, StandInEngine]) -> types.ModuleType:
    trt = fake_tensorrt()  # Logger, Weights, Refitter (over engine.weights), DataType.FLOAT
    trt.DataType = SimpleNamespace(FLOAT="FLOAT", INT32="INT32")
    trt.TensorIOMode = SimpleNamespace(INPUT="input", OUTPUT="output")
    trt.ExecutionContextAllocationStrategy = SimpleNamespace(USER_MANAGED="user_managed")
    by_bytes = {f"stand-in {c}".encode(): e for c, e in engines.items()}

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return by_bytes.get(bytes(data))

    trt.Runtime = Runtime
    return trt


class RecordingStream(trt_backend.EngineStream):
    def begin(self):
        LOG.append("begin")
        super().begin()

    def end(self):
        LOG.append("end")
        super().end()


def write_stand_in_manifest(directory, pipeline_hash):
    directory.mkdir(parents=True, exist_ok=True)
    artifacts = []
    for component in MEMORY:
        path = directory / f"{component}.plan"
        path.write_bytes(f"stand-in {component}".encode())
        key = EngineKey(pipeline_hash, component, HERE.gpu_name, HERE.compute_capability, HERE.trt_version,
                        "fp32" if component == "vae_decoder" else "fp16", "stand-in")
        artifacts.append(Artifact(component, "engine", path.name, sha256_file(path), path.stat().st_size, key, None,
                                  component == "unet"))
    write_manifest(directory, Manifest(pipeline_hash, "2025-01-01T00:00:00+00:00", tuple(artifacts)))


@pytest.fixture(scope="module")
def stand_in(demo_home, registry, tmp_path_factory):
    """An Engine on the tensorrt backend over stand-in engines, started (warm-up included) as
    the service starts it, with TensorRT and torch.cuda faked as present during start-up."""
    from service.engine import Engine

    pipeline_dir = demo_home / "demo" / "pipeline"
    settings = Settings.from_env({"ATELIER_HOME": str(demo_home), "ATELIER_BACKEND": "tensorrt",
                                  "ATELIER_DEVICE": "cpu", "ATELIER_WARMUP": "1",
                                  "ATELIER_ENGINES_DIR": str(tmp_path_factory.mktemp("engines"))})
    ref = load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32)
    slotted = load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32).unet
    AdapterSlot(slotted, settings.lora_slot_rank, settings.lora_targets)
    engines = stand_in_engines(ref, sorted(base_weights(slotted, device="meta")))
    write_stand_in_manifest(settings.engines_dir, fingerprint_pipeline(pipeline_dir))

    patch = pytest.MonkeyPatch()
    patch.setitem(sys.modules, "tensorrt", stand_in_tensorrt(engines))
    patch.setattr(torch.cuda, "is_available", lambda: True)
    patch.setattr(torch.cuda, "current_device", lambda: 0)
    patch.setattr(torch.cuda, "get_device_name", lambda index=None: HERE.gpu_name)
    patch.setattr(torch.cuda, "get_device_capability", lambda index=None: (9, 0))
    patch.setattr(trt_backend, "EngineStream", RecordingStream)
    LOG.clear()
    try:
        engine = Engine.from_settings(settings, registry)
    finally:
        patch.undo()  # start-up is what needs TensorRT and "CUDA"; serving only calls the engines
    return SimpleNamespace(engine=engine, backend=engine.backend, engines=engines, warmup_log=list(LOG))


def request(**fields) -> GenerateRequest:
    return GenerateRequest(**({"twin_id": None, "prompt": "studio photo, linen dress", "width": 256, "height": 256,
                               "steps": 2, "seed": 7} | fields))


def pixels(result) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(result.images[0].data)).convert("RGB"), dtype=np.float32)


def test_profiles_are_read_from_the_engines_and_warm_up_runs_at_each_opt_shape(stand_in):
    backend, unet = stand_in.backend, stand_in.engines["unet"]
    assert backend.active == "tensorrt" and stand_in.engine.ready
    assert [p.shapes["sample"][1] for p in backend.runners["unet"].profiles] == [(2, 4, 32, 32), (2, 4, 40, 48)]
    assert [str(s) for s in backend.warmup_shapes()] == ["256x256", "384x320"]
    # Warm-up: 2 steps at profile 0's OPT (one image, CFG), then 2 at profile 1's, each on that profile's context.
    warm = [(index, shapes["sample"]) for index, shapes in unet.calls[:4]]
    assert warm == [(0, (2, 4, 32, 32))] * 2 + [(1, (2, 4, 40, 48))] * 2
    assert [c.profile for c in unet.contexts] == [0, 1]  # one context per profile


def test_every_context_shares_one_activation_block_and_engine_work_is_bracketed_by_stream_waits(stand_in):
    contexts = [c for e in stand_in.engines.values() for c in e.contexts]
    assert len(contexts) == 2 + 2 + 1 + 1
    assert {c.strategy for c in contexts} == {"user_managed"}
    assert len({c.memory for c in contexts}) == 1  # the same pointer and size for all
    assert contexts[0].memory[1] == max(MEMORY.values()) == stand_in.backend.memory.size
    assert stand_in.backend.status()["activation_bytes"] == max(MEMORY.values())
    log = stand_in.warmup_log
    assert log and len(log) % 3 == 0
    for i in range(0, len(log), 3):  # the engine stream waits for torch, runs, and torch waits for it
        assert log[i] == "begin" and log[i + 1].startswith("execute ") and log[i + 2] == "end", log[i:i + 3]
    executed = {entry.split()[1] for entry in log if entry.startswith("execute")}
    assert executed == set(MEMORY)


def test_a_request_outside_every_profile_is_refused_with_a_422_naming_the_range(stand_in):
    backend = stand_in.backend
    calls = {name: len(e.calls) for name, e in stand_in.engines.items()}
    cases = [(dict(width=520), "width"), (dict(height=392), "height"),
             (dict(width=384, num_images=2), "num_images"), (dict(width=1024, height=1024), "width")]
    for fields, field in cases:
        with pytest.raises(OutsideEngineProfile) as refused:
            backend.check_request(request(**fields))
        error = refused.value
        assert (error.status, error.code, error.field) == (422, "invalid_field", field), fields
        assert "256-320 x 256-320 px (width x height), up to 4 images with guidance_scale > 1" in error.message
        assert "256-512 x 256-384 px (width x height), up to 1 image with guidance_scale > 1, 2 without" in error.message
        assert f"{fields.get('width', 256)}x{fields.get('height', 256)} px" in error.message
    assert {name: len(e.calls) for name, e in stand_in.engines.items()} == calls  # no engine ran
    # Inside a profile: accepted, including the batch limits of each profile.
    for fields in (dict(num_images=4), dict(width=512, height=384), dict(width=320, height=264)):
        backend.check_request(request(**fields))
    assert backend.max_images(256, 256, 5.0) == 4 and backend.max_images(384, 256, 5.0) == 1
    assert backend.max_images(256, 256, 1.0) == 4  # the VAE decoder's profile caps it, not the UNet's 8
    assert backend.max_images(2048, 2048, 5.0) == 0
    with pytest.raises(OutsideEngineProfile):
        backend.check_shape(256, 256, 5, 5.0)  # a batch of requests: its rows count
    # Conditioning the UNet engine was not built with (garments: IP-Adapter; pose: ControlNet;
    # edit: an inpainting UNet) is refused up front, naming the field.
    plain = dict(width=256, height=256, num_images=1, guidance_scale=5.0, garments=[], pose=None, mask_asset_id=None)
    for field, value in (("garments", [object()]), ("pose", object()), ("mask_asset_id", "a" * 64)):
        with pytest.raises(OutsideEngineProfile, match="prompt-only") as refused:
            backend.check_request(SimpleNamespace(**(plain | {field: value})))
        assert refused.value.field == field
    backend.check_request(SimpleNamespace(**plain))
    assert backend.status()["serving_range"] == [
        "256-320 x 256-320 px (width x height), up to 4 images with guidance_scale > 1, 8 without",
        "256-512 x 256-384 px (width x height), up to 1 image with guidance_scale > 1, 2 without"]


def test_guidance_1_runs_a_unet_batch_of_1_and_every_engine_gives_eager_s_pixels(stand_in, engine):
    backend, unet = stand_in.backend, stand_in.engines["unet"]
    one = request(guidance_scale=1.0, seed=11)
    backend.check_request(one)  # the profile's minimum batch is 1, not 2
    before = len(unet.calls)
    result = stand_in.engine.generate(one)
    assert [shapes["sample"] for _, shapes in unet.calls[before:]] == [(1, 4, 32, 32)] * 2
    assert np.abs(pixels(result) - pixels(engine.generate(one))).max() <= 1
    cfg = request(width=384, height=320, seed=12)  # profile 1, CFG
    got, want = pixels(stand_in.engine.generate(cfg)), pixels(engine.generate(cfg))
    assert unet.calls[-1][0] == 1
    assert np.abs(got - want).max() <= 1
    other = pixels(engine.generate(request(width=384, height=320, seed=13)))
    assert np.abs(got - other).mean() > 1  # another seed's picture: the tolerance separates pictures


def test_the_unet_engine_refuses_conditioning_it_was_not_built_with(stand_in):
    pipe = stand_in.engine.pipe
    sample = torch.zeros(2, 4, 32, 32)
    added = {"text_embeds": torch.zeros(2, 32), "time_ids": torch.zeros(2, 6), "image_embeds": [torch.zeros(2, 4)]}
    with pytest.raises(NotImplementedError, match="text_embeds, time_ids"):
        pipe.unet(sample, torch.tensor(10.0), torch.zeros(2, TOKENS, 64), added_cond_kwargs=added)
    with pytest.raises(NotImplementedError, match="one timestep"):
        pipe.unet(sample, torch.tensor([10.0, 20.0]), torch.zeros(2, TOKENS, 64), added_cond_kwargs={})


def test_the_modules_the_engines_replace_leave_the_device(demo_home):
    pipe = load_pipeline(demo_home / "demo" / "pipeline", torch.device("cpu"), torch.float32)
    moved = offload_replaced(pipe, {"unet": None, "text_encoder": None, "text_encoder_2": None, "vae_decoder": None},
                             device="meta")
    assert moved == ["unet", "text_encoder", "text_encoder_2", "vae.decoder", "vae.post_quant_conv"]
    for module in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2, pipe.vae.decoder, pipe.vae.post_quant_conv):
        assert {p.device.type for p in module.parameters()} == {"meta"}
    assert {p.device.type for p in pipe.vae.encoder.parameters()} == {"cpu"}  # image conditioning encodes with it
    only_unet = load_pipeline(demo_home / "demo" / "pipeline", torch.device("cpu"), torch.float32)
    assert offload_replaced(only_unet, {"unet": None}, device="meta") == ["unet"]
    assert next(only_unet.vae.decoder.parameters()).device.type == "cpu"


def test_a_start_up_fallback_is_reported_in_status_log_and_metric(no_tensorrt_module, demo_home, tmp_path, caplog):
    from prometheus_client import REGISTRY

    labels = {"backend": "tensorrt", "to": "eager", "reason": "tensorrt_unavailable"}
    before = REGISTRY.get_sample_value("atelier_backend_fallbacks_total", labels) or 0.0
    pipe = load_pipeline(demo_home / "demo" / "pipeline", torch.device("cpu"), torch.float32)
    backend = TensorRTBackend(tmp_path, demo_home / "demo" / "pipeline", fallback="eager")
    with caplog.at_level(logging.WARNING, logger="atelier.engine"):
        backend.prepare(pipe)
    assert REGISTRY.get_sample_value("atelier_backend_fallbacks_total", labels) == before + 1
    assert any(r.getMessage() == "tensorrt backend fell back to eager" for r in caplog.records)
    status = backend.status()
    assert status["active"] == "eager" and status["fallback_reason"].startswith("tensorrt_unavailable")
    assert status["serving_range"] == "every size the API accepts"
    backend.check_request(request(width=2048, height=2048))  # eager serves every size
    assert [str(s) for s in backend.warmup_shapes()] == ["256x256"]


@pytest.fixture()
def no_tensorrt_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
