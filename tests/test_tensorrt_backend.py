"""The tensorrt backend: engines built for another machine or corrupted are refused with typed
errors naming why, a missing TensorRT is a typed error or a clean fallback, and (on a CUDA
machine with TensorRT only) the engine runner and LoRA refit work on a real engine."""

import logging
import sys
import types
from dataclasses import replace

import pytest
import torch

from builds.demo import LORA_TARGETS
from service.engine.artifacts import (
    Artifact,
    ArtifactError,
    EngineKey,
    EngineMismatch,
    Manifest,
    sha256_file,
    write_manifest,
)
from service.engine.backends.eager import EagerBackend
from service.engine.backends.tensorrt import (
    MachineFacts,
    TensorRTBackend,
    TensorRTUnavailable,
    default_fallback,
    refit_map_of,
    verified_engines,
)
from service.engine.loading import fingerprint_pipeline, load_pipeline
from service.engine.lora_fuse import OnnxWeight, save_refit_map
from service.twins.slot import AdapterSlot

HERE = MachineFacts(gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0", trt_version="10.9.0.34")
PROFILE = "b1-4_h512-1024_w512-1024"


@pytest.fixture(scope="module")
def pipeline_dir(demo_home):
    return demo_home / "demo" / "pipeline"


@pytest.fixture(scope="module")
def pipeline_hash(pipeline_dir):
    return fingerprint_pipeline(pipeline_dir)


@pytest.fixture(scope="module")
def served(pipeline_dir):
    """The demo pipeline with the adapter slot on its UNet, as Engine.from_settings builds it."""
    pipe = load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32)
    return pipe, AdapterSlot(pipe.unet, rank=4, targets=tuple(LORA_TARGETS))


@pytest.fixture(scope="module")
def pipe(served):
    return served[0]


def built_key(pipeline_hash: str, **changes) -> EngineKey:
    key = EngineKey(pipeline_hash=pipeline_hash, component="unet", gpu_name=HERE.gpu_name,
                    compute_capability=HERE.compute_capability, trt_version=HERE.trt_version,
                    precision="fp16", profile=PROFILE)
    return replace(key, **changes)


def write_engines(directory, key: EngineKey | None, refittable=True, corrupt=False, refit_map=None):
    """A manifest with one (fake) unet engine, as builds/compile.py would write it."""
    directory.mkdir(parents=True, exist_ok=True)
    engine = directory / "unet.plan"
    engine.write_bytes(b"not really a TensorRT engine")
    artifacts = [Artifact("unet", "engine", "unet.plan", sha256_file(engine), engine.stat().st_size, key,
                          None, refittable)]
    if refit_map is not None:
        path = save_refit_map(directory / "unet.refit.json", refit_map)
        artifacts.append(Artifact("unet", "refit_map", path.name, sha256_file(path), path.stat().st_size))
    write_manifest(directory, Manifest(key.pipeline_hash if key else "x", "2025-01-01T00:00:00+00:00", tuple(artifacts)))
    if corrupt:
        engine.write_bytes(b"not really a TensorRT engine, tampered")
    return directory


@pytest.fixture()
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError


@pytest.fixture()
def fake_gpu(monkeypatch):
    """TensorRT importable and a CUDA GPU visible, as facts only: nothing can actually run."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = HERE.trt_version
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: HERE.gpu_name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (9, 0))


def untouched(pipe) -> bool:
    return not any(name in module.__dict__ for module, name in (
        (pipe.unet, "forward"), (pipe.vae, "decode"), (pipe.text_encoder, "forward"), (pipe.text_encoder_2, "forward")))


# ---------------------------------------------------------------------------------------------
# Manifest and key checks (CPU).


def test_an_engine_built_for_another_gpu_and_tensorrt_is_refused_naming_those_fields(tmp_path, pipeline_hash):
    built = built_key(pipeline_hash, gpu_name="NVIDIA H100 PCIe", trt_version="10.3.0")
    expected = EngineKey(pipeline_hash=pipeline_hash, component="unet", gpu_name="NVIDIA H100 80GB HBM3",
                         compute_capability="9.0", trt_version="10.9.0.34", precision="fp16", profile=PROFILE)
    assert HERE.key("unet", pipeline_hash, "fp16", PROFILE) == expected
    assert built.mismatches(expected) == ["gpu_name", "trt_version"]

    directory = write_engines(tmp_path / "engines", built)
    with pytest.raises(EngineMismatch) as refused:
        verified_engines(directory, HERE, pipeline_hash)
    message = str(refused.value)
    assert "gpu_name: built 'NVIDIA H100 PCIe', here 'NVIDIA H100 80GB HBM3'" in message
    assert "trt_version: built '10.3.0', here '10.9.0.34'" in message
    for same in ("compute_capability", "precision", "profile", "pipeline_hash"):
        assert same not in message
    assert refused.value.code == "engine_mismatch" and refused.value.status == 503


def test_a_matching_engine_is_accepted_and_other_differences_are_named(tmp_path, pipeline_hash):
    directory = write_engines(tmp_path / "engines", built_key(pipeline_hash))
    found = verified_engines(directory, HERE, pipeline_hash)
    assert set(found) == {"unet"} and found["unet"][1] == (directory / "unet.plan").resolve()
    with pytest.raises(EngineMismatch, match="precision: built 'fp16', here 'bf16'"):
        verified_engines(directory, HERE, pipeline_hash, precision="bf16")
    with pytest.raises(EngineMismatch, match="profile: built"):
        verified_engines(directory, HERE, pipeline_hash, profile="b1-1_h1024-1024_w1024-1024")
    with pytest.raises(EngineMismatch, match="pipeline_hash") as refused:
        verified_engines(directory, HERE, "0" * 64)
    assert "gpu_name" not in str(refused.value)
    older = replace(HERE, compute_capability="8.0")
    with pytest.raises(EngineMismatch, match="compute_capability: built '9.0', here '8.0'"):
        verified_engines(directory, older, pipeline_hash)


def test_a_corrupted_engine_file_is_refused(tmp_path, pipeline_hash):
    directory = write_engines(tmp_path / "engines", built_key(pipeline_hash), corrupt=True)
    with pytest.raises(ArtifactError, match="sha256") as refused:
        verified_engines(directory, HERE, pipeline_hash)
    assert not isinstance(refused.value, EngineMismatch)  # the key matched; the bytes did not
    assert refused.value.code == "artifact_unavailable"


def test_missing_manifest_engine_or_key_are_artifact_errors(tmp_path, pipeline_hash):
    with pytest.raises(ArtifactError, match="no compiled-pipeline manifest"):
        verified_engines(tmp_path / "nowhere", HERE, pipeline_hash)
    write_manifest(tmp_path, Manifest(pipeline_hash, "2025-01-01T00:00:00+00:00", ()))
    with pytest.raises(ArtifactError, match="no unet engine"):
        verified_engines(tmp_path, HERE, pipeline_hash)
    keyless = write_engines(tmp_path / "keyless", None)
    with pytest.raises(ArtifactError, match="no engine key"):
        verified_engines(keyless, HERE, pipeline_hash)


def test_the_refit_map_travels_in_the_manifest_and_is_checked(tmp_path, pipeline_hash):
    mapping = {"mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight": OnnxWeight("val_540", True)}
    directory = write_engines(tmp_path / "engines", built_key(pipeline_hash), refit_map=mapping)
    assert refit_map_of(directory) == mapping
    assert refit_map_of(write_engines(tmp_path / "plain", built_key(pipeline_hash))) is None
    (directory / "unet.refit.json").write_text("{}")
    with pytest.raises(ArtifactError, match="sha256"):
        refit_map_of(directory)


# ---------------------------------------------------------------------------------------------
# prepare(): typed errors, or the fallback (CPU).


def test_without_tensorrt_prepare_raises_a_typed_error(no_tensorrt, pipe, tmp_path, pipeline_dir):
    backend = TensorRTBackend(tmp_path / "engines", pipeline_dir)
    with pytest.raises(TensorRTUnavailable, match="pip install tensorrt") as refused:
        backend.prepare(pipe)
    assert refused.value.code == "tensorrt_unavailable" and refused.value.status == 503
    assert backend.active is None and backend.fallback_reason is None and untouched(pipe)


def test_without_cuda_prepare_raises_a_typed_error(fake_gpu, monkeypatch, pipe, tmp_path, pipeline_dir):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(TensorRTUnavailable, match="CUDA GPU"):
        TensorRTBackend(tmp_path / "engines", pipeline_dir).prepare(pipe)


def test_prepare_refuses_engines_for_another_machine_or_corrupted(fake_gpu, pipe, tmp_path, pipeline_dir, pipeline_hash):
    other = write_engines(tmp_path / "other", built_key(pipeline_hash, gpu_name="NVIDIA A10G", trt_version="10.3.0"))
    with pytest.raises(EngineMismatch) as refused:
        TensorRTBackend(other, pipeline_dir).prepare(pipe)
    assert "gpu_name" in str(refused.value) and "trt_version" in str(refused.value)
    corrupt = write_engines(tmp_path / "corrupt", built_key(pipeline_hash), corrupt=True)
    with pytest.raises(ArtifactError, match="sha256"):
        TensorRTBackend(corrupt, pipeline_dir).prepare(pipe)
    assert untouched(pipe)


def test_an_unrefittable_unet_cannot_serve_twins(fake_gpu, pipe, tmp_path, pipeline_dir, pipeline_hash):
    directory = write_engines(tmp_path / "engines", built_key(pipeline_hash), refittable=False)
    with pytest.raises(ArtifactError, match="without refit"):
        TensorRTBackend(directory, pipeline_dir).prepare(pipe)
    backend = TensorRTBackend(directory, pipeline_dir, fallback="eager")
    backend.prepare(pipe)
    assert backend.active == "eager" and "without refit" in backend.fallback_reason


def test_fallback_eager_records_why_and_prepares_the_pipeline(no_tensorrt, pipe, tmp_path, pipeline_dir, caplog):
    pipe.unet.train()
    backend = TensorRTBackend(tmp_path / "engines", pipeline_dir, fallback="eager")
    with caplog.at_level(logging.WARNING, logger="atelier.engine"):
        backend.prepare(pipe)  # does not raise
    assert backend.active == "eager" and isinstance(backend.fallback_backend, EagerBackend)
    assert backend.fallback_reason.startswith("tensorrt_unavailable: ")
    assert not backend.handles_adapters and backend.adapter_owner is None  # twins stay on the slot path
    assert not pipe.unet.training and not any(p.requires_grad for p in pipe.unet.parameters())
    assert untouched(pipe)
    assert any("fell back to eager" in record.getMessage() for record in caplog.records)


def test_fallback_on_a_mismatch_and_to_compile(fake_gpu, pipe, tmp_path, pipeline_dir, pipeline_hash):
    directory = write_engines(tmp_path / "engines", built_key(pipeline_hash, trt_version="8.6.1"))
    made = []

    class Recorder:
        name = "compile"

        def prepare(self, pipe):
            made.append(pipe)

    backend = TensorRTBackend(directory, pipeline_dir, fallback="compile", make_fallback=lambda name: Recorder())
    backend.prepare(pipe)
    assert made == [pipe] and backend.active == "compile"
    assert backend.fallback_reason.startswith("engine_mismatch: ") and "trt_version" in backend.fallback_reason
    assert untouched(pipe)


def test_fallback_names_are_checked():
    from service.engine.backends.compile import CompileBackend

    assert isinstance(default_fallback("compile"), CompileBackend)
    assert isinstance(default_fallback("eager"), EagerBackend)
    with pytest.raises(ValueError, match="fallback"):
        TensorRTBackend("e", "p", fallback="tensorrt")


# ---------------------------------------------------------------------------------------------
# Twin switches by refit, against a stand-in for TensorRT's Refitter (CPU).


class FakeEngine:
    """An engine's refittable weights in ONNX layout (float32), and groups TensorRT fused."""

    def __init__(self, weights: dict[str, torch.Tensor], groups: list[set[str]]):
        self.weights = {n: w.detach().clone().contiguous() for n, w in weights.items()}
        self.groups = groups
        self.refits: list[set[str]] = []  # the names set in each successful refit
        self.fail_next = False


def fake_tensorrt() -> types.ModuleType:
    import ctypes

    trt = types.ModuleType("tensorrt")
    trt.__version__ = HERE.trt_version
    trt.DataType = types.SimpleNamespace(FLOAT="FLOAT")
    trt.TensorLocation = types.SimpleNamespace(HOST="host", DEVICE="device")

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    class Weights:
        def __init__(self, dtype, ptr, count):
            self.dtype, self.ptr, self.count = dtype, ptr, count

    class Refitter:
        def __init__(self, engine, logger):
            self.engine, self.pending = engine, {}

        def get_all_weights(self):
            return list(self.engine.weights)

        def get_weights_prototype(self, name):
            known = self.engine.weights.get(name)
            return types.SimpleNamespace(dtype="FLOAT", size=known.numel() if known is not None else -1)

        def set_named_weights(self, name, weights, location):
            if name not in self.engine.weights or weights.dtype != "FLOAT" or location != "host":
                return False
            raw = (ctypes.c_float * weights.count).from_address(weights.ptr)  # reads the caller's tensor
            self.pending[name] = torch.tensor(list(raw)).view(self.engine.weights[name].shape)
            return True

        def get_missing_weights(self):
            return sorted({n for g in self.engine.groups if g & self.pending.keys() for n in g} - self.pending.keys())

        def refit_cuda_engine(self):
            if self.engine.fail_next or self.get_missing_weights():
                self.engine.fail_next = False
                return False
            self.engine.weights.update(self.pending)
            self.engine.refits.append(set(self.pending))
            return True

    trt.Logger, trt.Weights, trt.Refitter = Logger, Weights, Refitter
    return trt


def prepared_twin(pipeline_dir, slot, targets, seed):
    import hashlib

    from service.twins.slot import safetensors_metadata
    from service.twins.store import parse_adapter
    from tests.test_adapter_slot import lora_file

    data = lora_file(pipeline_dir, 4, 8.0, targets=targets, seed=seed)
    sha = hashlib.sha256(data).hexdigest()
    return slot.prepare(parse_adapter(data, sha, "t"), sha, safetensors_metadata(data))


def test_twin_switches_refit_fused_weights_in_onnx_layout(served, pipeline_dir, tmp_path):
    from service.engine.lora_fuse import base_weights, fused_weights

    pipe, slot = served
    base = base_weights(pipe.unet)
    # As this project's exporter leaves them: Linear weights as anonymous, transposed initializers.
    refit_map = {param: OnnxWeight(f"val_{i}", True) for i, param in enumerate(sorted(base))}
    groups = {}  # TensorRT fused q, k and v of each attention into one GEMM
    for param, target in refit_map.items():
        module, _, proj = param.removesuffix(".weight").rpartition(".")
        if proj in ("to_q", "to_k", "to_v"):
            groups.setdefault(module, set()).add(target.name)
    engine = FakeEngine({refit_map[p].name: w.t() for p, w in base.items()}, list(groups.values()))
    onnx = {p: t.name for p, t in refit_map.items()}

    backend = TensorRTBackend(tmp_path, pipeline_dir)
    backend._attach(fake_tensorrt(), {"unet": engine}, base, refit_map, pipe.unet)
    backend.active = "tensorrt"
    assert backend.handles_adapters and backend.adapter_owner is None

    wide = prepared_twin(pipeline_dir, slot, ("to_q", "to_k", "to_out.0"), seed=1)
    narrow = prepared_twin(pipeline_dir, slot, ("to_q",), seed=2)
    backend.switch_adapter(wide)
    fused = fused_weights(base, wide)
    assert backend.adapter_owner == wide.sha256
    for param in base:
        expected = fused[param] if param in fused else base[param]
        assert torch.equal(engine.weights[onnx[param]], expected.t()), param
    to_v = {onnx[p] for p in base if p.endswith("to_v.weight")}
    assert to_v and to_v <= engine.refits[-1]  # set again, unchanged: they share a GEMM with q and k

    backend.switch_adapter(narrow)
    fused = fused_weights(base, narrow)
    for param in base:
        expected = fused[param] if param in fused else base[param]
        assert torch.equal(engine.weights[onnx[param]], expected.t()), param
    refits = len(engine.refits)
    backend.switch_adapter(narrow)
    assert len(engine.refits) == refits  # already there: no refit

    engine.fail_next = True  # a failed refit leaves the engine on the base model, not half-switched
    with pytest.raises(ArtifactError, match="failed to refit"):
        backend.switch_adapter(wide)
    assert backend.adapter_owner is None
    assert all(torch.equal(engine.weights[onnx[p]], base[p].t()) for p in base)

    backend.switch_adapter(narrow)
    backend.switch_adapter(None)
    assert all(torch.equal(engine.weights[onnx[p]], base[p].t()) for p in base)


def test_refit_names_the_engine_does_not_know_are_refused_at_start(served, pipeline_dir, tmp_path):
    from service.engine.lora_fuse import base_weights

    pipe, _ = served
    base = base_weights(pipe.unet)
    engine = FakeEngine({f"val_{i}": w.t() for i, w in enumerate(base.values())}, [])
    backend = TensorRTBackend(tmp_path, pipeline_dir)
    with pytest.raises(ArtifactError, match="not refittable in the unet engine under their torch names"):
        backend._attach(fake_tensorrt(), {"unet": engine}, base, {}, pipe.unet)  # no refit map
    assert backend.fused is None and not backend.engines


def test_a_refit_that_needs_an_unknown_weight_is_refused():
    from service.engine.backends.tensorrt import refit_engine

    trt = fake_tensorrt()
    engine = FakeEngine({"val_1": torch.zeros(3, 2), "val_2": torch.zeros(2)}, [{"val_1", "val_2"}])
    mapping = {"a.weight": OnnxWeight("val_1", True)}
    with pytest.raises(ArtifactError, match="'val_2', whose torch weight is unknown"):
        refit_engine(trt, engine, None, {"a.weight": torch.ones(2, 3)}, mapping, lambda name: None)
    with pytest.raises(ArtifactError, match="holds 6 values, the new weight 4"):
        refit_engine(trt, engine, None, {"a.weight": torch.ones(2, 2)}, mapping)
    refit_engine(trt, engine, None, {"a.weight": torch.arange(6.0).view(2, 3)}, mapping,
                 lambda name: ("b.bias", torch.full((2,), 5.0), False) if name == "val_2" else None)
    assert torch.equal(engine.weights["val_1"], torch.arange(6.0).view(2, 3).t())
    assert torch.equal(engine.weights["val_2"], torch.full((2,), 5.0))


def test_refit_base_weights_are_the_fp32_onnx_initializers_not_the_served_bf16_weights(pipeline_dir, pipeline_hash,
                                                                                      tmp_path):
    """An fp16 engine is built from the fp32 ONNX export: a twin's fused layers must start from
    those fp32 values, not from the bf16-rounded weights of the UNet being served."""
    pytest.importorskip("onnx")
    from builds import onnx_export
    from service.engine.backends.tensorrt import OnnxInitializers
    from service.engine.lora_fuse import base_weights, fused_weights

    directory = write_engines(tmp_path / "engines", built_key(pipeline_hash))
    reference = load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32)
    graph = onnx_export.unet_graph(reference)
    export = onnx_export.export_onnx(graph, directory, exporter="torchscript")
    refit_file = onnx_export.write_refit_map(graph, export.onnx_path, directory)
    manifest_artifacts = [
        Artifact("unet", "engine", "unet.plan", sha256_file(directory / "unet.plan"), 1, built_key(pipeline_hash), None, True),
        Artifact("unet", "onnx", "unet.onnx", sha256_file(export.onnx_path), export.onnx_path.stat().st_size),
        Artifact("unet", "refit_map", refit_file.name, sha256_file(refit_file), refit_file.stat().st_size)]
    write_manifest(directory, Manifest(pipeline_hash, "2025-01-01T00:00:00+00:00", tuple(manifest_artifacts)))

    served = load_pipeline(pipeline_dir, torch.device("cpu"), torch.bfloat16)
    slot = AdapterSlot(served.unet, rank=4, targets=tuple(LORA_TARGETS))
    backend = TensorRTBackend(directory, pipeline_dir)
    shapes = base_weights(served.unet, device="meta")
    refit_map = refit_map_of(directory)
    base, onnx = backend._refit_base(served.unet, shapes, refit_map, torch.device("cpu"))
    assert backend.refit_base_source == "onnx" and isinstance(onnx, OnnxInitializers)
    fp32 = base_weights(reference.unet, modules=[p.removesuffix(".weight") for p in shapes])
    bf16 = base_weights(served.unet)
    assert sorted(base) == sorted(fp32) and all(w.dtype == torch.float32 for w in base.values())
    assert all(torch.equal(base[p], fp32[p]) for p in base)
    assert any(not torch.equal(base[p], bf16[p].float()) for p in base)  # bf16 rounding is real here

    # The engine holds every initializer; TensorRT fused one slot layer with a layer outside the
    # slot (proj_in), whose value must then come from the ONNX file too.
    source = OnnxInitializers(export.onnx_path)
    q = next(p for p in base if p.endswith("attn1.to_q.weight"))
    proj_in = q.split(".transformer_blocks.")[0] + ".proj_in.weight"
    engine = FakeEngine({w.name: source.get(w.name) for w in refit_map.values()},
                        [{refit_map[q].name, refit_map[proj_in].name}])
    engine.weights[refit_map[proj_in].name] = torch.zeros_like(engine.weights[refit_map[proj_in].name])
    backend._attach(fake_tensorrt(), {"unet": engine}, base, refit_map, served.unet, onnx)
    backend.active = "tensorrt"
    twin = prepared_twin(pipeline_dir, slot, ("to_q", "to_k", "to_out.0"), seed=3)
    backend.switch_adapter(twin)
    fused = fused_weights(base, twin)
    assert q in fused
    for param, weight in fused.items():
        target = refit_map[param]
        assert torch.equal(engine.weights[target.name], weight.t() if target.transposed else weight), param
    assert not torch.equal(fused[q], fused_weights(bf16, twin)[q].float())  # what the served weights would have given
    assert torch.equal(engine.weights[refit_map[proj_in].name], source.get(refit_map[proj_in].name))


# ---------------------------------------------------------------------------------------------
# On a CUDA machine with TensorRT: a real (tiny) engine.


def _gpu_skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (torch.cuda.is_available() is False)"
    try:
        import onnx  # noqa: F401
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return f"needs TensorRT and onnx: {exc}"
    return None


def test_engine_runner_and_lora_refit_on_a_real_engine(tmp_path):
    reason = _gpu_skip_reason()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    import onnx
    import tensorrt as trt
    from onnx import numpy_helper

    from service.engine.backends.tensorrt import EngineRunner, refit_engine
    from service.engine.lora_fuse import match_onnx_initializers

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(16, 32, bias=False)).eval()
    x = torch.randn(2, 4, 16)
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(module, (x,), str(path), dynamo=False, do_constant_folding=True, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=18)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(path.read_bytes()), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.REFIT)
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 4, 16), (2, 4, 16), (4, 4, 16))
    config.add_optimization_profile(profile)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(builder.build_serialized_network(network, config))

    runner = EngineRunner(trt, engine, "unet")
    got = runner(x=x.cuda())["y"]
    torch.cuda.synchronize()
    assert torch.allclose(got.cpu(), module(x).detach(), atol=1e-2)

    initializers = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
                    for i in onnx.load(str(path)).graph.initializer}
    mapping = match_onnx_initializers({"0.weight": module[0].weight.detach()}, initializers, prefix="")
    new_weight = torch.randn(32, 16)
    refit_engine(trt, engine, logger, {"0.weight": new_weight.cuda()}, mapping)
    got = runner(x=x.cuda())["y"]
    torch.cuda.synchronize()
    assert torch.allclose(got.cpu(), x @ new_weight.t(), atol=1e-2)
    assert not torch.allclose(got.cpu(), module(x).detach(), atol=1e-2)
