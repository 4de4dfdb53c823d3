"""builds/compile.py: ONNX exports checked with onnxruntime, the manifest, `build` without
TensorRT, the engine profile shapes, and the S3 round trip against a real S3 server.

The four components are exported once per module (TorchScript exporter: the dynamo exporter
takes ~1 min for the UNet alone on 2 cores, so it is tested on one text encoder)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import types
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[compile]'")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install -e '.[compile]'")

from builds import compile as compile_cli  # noqa: E402
from builds import onnx_export  # noqa: E402
from service.engine.artifact_sync import download_artifacts, parse_s3_url, upload_artifacts  # noqa: E402
from service.config import ConfigError  # noqa: E402
from service.engine.artifacts import MANIFEST, ArtifactError, EngineKey, read_manifest  # noqa: E402
from service.engine.loading import fingerprint_pipeline, load_pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ("text_encoder", "text_encoder_2", "unet", "vae_decoder")
# Measured on the demo (at most 2.6e-5, the VAE decoder): an absolute ceiling well under the
# CLI's relative bound, so a regression toward that bound shows here first.
DEMO_CEILING = 1e-4


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pipeline_dir(demo_home) -> Path:
    return demo_home / "demo" / "pipeline"


@pytest.fixture(scope="module")
def pipe(pipeline_dir):
    return load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32)


@pytest.fixture(scope="module")
def compiled(pipeline_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    # Smaller check shapes than the CLI's default (two, still different): the test budget is 2 cores.
    manifest, reports = compile_cli.export_command(pipeline_dir, out, exporter="torchscript",
                                                   check_shapes=((1, 128, 128), (2, 96, 160)))
    return SimpleNamespace(out=out, manifest=manifest, reports={r.component: r for r in reports})


def run_both(graph, session, batch: int, height: int, width: int, seed: int):
    """torch's and onnxruntime's outputs on the same random inputs (latent height/width)."""
    inputs = graph.inputs(batch, height, width, seed=seed)
    with torch.no_grad():
        expected = graph.module(*inputs)
    expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    got = session.run(None, {name: t.numpy() for name, t in zip(graph.input_names, inputs)})
    return expected, got


# ---------------------------------------------------------------------------------------------
# export


def test_every_component_is_exported_and_checked_within_the_bound(compiled):
    assert sorted(compiled.reports) == sorted(COMPONENTS)
    for component, report in compiled.reports.items():
        assert report.exporter == "torchscript"
        assert report.max_abs_error is not None and report.check_seconds is not None, component
        assert 0 <= report.max_abs_error <= report.bound, component
        assert report.max_abs_error < DEMO_CEILING, (component, report.max_abs_error)
        assert report.bound >= compile_cli.MAX_RELATIVE_ERROR  # bound = 1e-3 x max(1, output scale)
        assert report.files == (compiled.out / f"{component}.onnx",)


@pytest.mark.parametrize("component", COMPONENTS)
def test_onnxruntime_agrees_with_torch_at_two_shapes(compiled, pipe, component):
    """Independent of the CLI's own check: new shapes (batch 3 and 1, non-square latents)."""
    graph = onnx_export.GRAPHS[component](pipe)
    session = ort.InferenceSession(str(compiled.out / f"{component}.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(graph.input_names)
    assert [o.name for o in session.get_outputs()] == list(graph.output_names)
    shapes_seen = []
    for seed, (batch, height, width) in enumerate(((3, 16, 24), (1, 28, 12))):
        expected, got = run_both(graph, session, batch, height, width, seed=seed)
        for name, want, have in zip(graph.output_names, expected, got):
            assert have.shape == want.shape, (component, name)
            assert have.shape[0] == batch
            error = float(np.max(np.abs(have - want)))
            bound = compile_cli.MAX_RELATIVE_ERROR * max(1.0, float(np.max(np.abs(want))))
            assert error <= bound, (component, name, error, bound)
            assert error < DEMO_CEILING, (component, name, error)
        shapes_seen.append(got[0].shape)
    assert shapes_seen[0] != shapes_seen[1]
    if component in ("unet", "vae_decoder"):  # height and width are dynamic too
        scale = 8 if component == "vae_decoder" else 1
        assert shapes_seen[0][2:] == (16 * scale, 24 * scale) and shapes_seen[1][2:] == (28 * scale, 12 * scale)


def test_the_onnx_graphs_have_the_documented_inputs(compiled):
    def inputs(component):
        model = onnx.load(str(compiled.out / f"{component}.onnx"), load_external_data=False)
        return {v.name: v.type.tensor_type for v in model.graph.input}

    for component in ("text_encoder", "text_encoder_2"):
        ids = inputs(component)["input_ids"]
        assert ids.elem_type == onnx.TensorProto.INT32
        assert ids.shape.dim[0].dim_param and ids.shape.dim[1].dim_value == 77
    unet = inputs("unet")
    assert list(unet) == ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"]
    assert all(unet["sample"].shape.dim[axis].dim_param for axis in (0, 2, 3))
    assert unet["sample"].shape.dim[1].dim_value == 4
    assert [d.dim_value for d in unet["timestep"].shape.dim] == [1]
    assert unet["time_ids"].shape.dim[1].dim_value == 6
    latent = inputs("vae_decoder")["latent"]
    assert all(latent.shape.dim[axis].dim_param for axis in (0, 2, 3))
    for component in COMPONENTS:
        model = onnx.load(str(compiled.out / f"{component}.onnx"), load_external_data=False)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_the_manifest_lists_each_export_with_its_sha256(compiled, pipeline_dir):
    manifest = read_manifest(compiled.out)
    assert manifest == compiled.manifest
    assert manifest.pipeline_hash == fingerprint_pipeline(pipeline_dir)
    kinds = sorted((a.component, a.kind, a.file) for a in manifest.artifacts)
    assert kinds == sorted([(c, "onnx", f"{c}.onnx") for c in COMPONENTS] + [("unet", "refit_map", "unet.refit_map.json")])
    for artifact in manifest.artifacts:
        path = compiled.out / artifact.file
        assert artifact.sha256 == sha256(path)
        assert artifact.bytes == path.stat().st_size
        if artifact.kind == "onnx":
            assert artifact.max_abs_error == compiled.reports[artifact.component].max_abs_error
        assert artifact.key is None and artifact.refittable is None
    assert manifest.engines() == {}


def test_the_unet_refit_map_names_the_initializer_of_every_weight(compiled, pipe):
    from onnx import numpy_helper

    from service.engine.lora_fuse import load_refit_map

    mapping = load_refit_map(compiled.out / "unet.refit_map.json")
    weights = {f"{n}.weight": m.weight for n, m in pipe.unet.named_modules()
               if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
    assert sorted(mapping) == sorted(weights)
    model = onnx.load(str(compiled.out / "unet.onnx"))
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for param, target in mapping.items():
        expected = weights[param].detach().numpy()
        assert np.array_equal(initializers[target.name], expected.T if target.transposed else expected), param
    assert any(t.transposed for t in mapping.values())  # TorchScript stores Linear weights transposed


def test_the_dynamo_exporter_exports_a_text_encoder_with_a_dynamic_batch(pipe, tmp_path):
    pytest.importorskip("onnxscript", reason="torch's dynamo ONNX exporter needs onnxscript: pip install -e '.[compile]'")
    graph = onnx_export.text_encoder_2_graph(pipe)
    result = onnx_export.export_onnx(graph, tmp_path, exporter="dynamo")
    assert result.exporter == "dynamo"
    assert result.files == (tmp_path / "text_encoder_2.onnx",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text_encoder_2.onnx"]  # weights inside, temp dir gone
    check = onnx_export.check_onnx(graph, result.onnx_path, ((1, 32, 32), (3, 32, 32)))
    assert check.max_abs_error < DEMO_CEILING
    assert check.max_abs_error <= compile_cli.MAX_RELATIVE_ERROR * max(1.0, check.max_abs_reference)


def test_an_export_above_the_bound_exits_1_and_is_not_kept(pipeline_dir, tmp_path, capsys):
    code = compile_cli.main(["export", "--pipeline", str(pipeline_dir), "--out", str(tmp_path), "--quiet",
                             "--components", "text_encoder_2", "--exporter", "torchscript", "--max-error", "1e-12"])
    captured = capsys.readouterr()
    assert code == 1
    assert "text_encoder_2" in captured.err and "above the bound" in captured.err
    assert not (tmp_path / "text_encoder_2.onnx").exists()
    assert read_manifest(tmp_path).artifacts == ()


def test_check_shapes_must_be_multiples_of_the_vae_scale(pipeline_dir, tmp_path, capsys):
    code = compile_cli.main(["export", "--pipeline", str(pipeline_dir), "--out", str(tmp_path), "--quiet",
                             "--components", "text_encoder", "--check-shapes", "1x204x256"])
    assert code == 1
    assert "multiples of 8 px" in capsys.readouterr().err
    # latents 30x30, 34x26, 64x48 by default: sides that are not multiples of 4 included
    assert [(h // 8, w // 8) for _, h, w in compile_cli.parse_check_shapes(compile_cli.DEFAULT_CHECK_SHAPES)] == [
        (30, 30), (34, 26), (64, 48)]


@pytest.mark.parametrize("component", ("unet", "vae_decoder"))
def test_onnxruntime_agrees_with_torch_at_latents_that_are_not_multiples_of_4(compiled, pipe, component):
    """Any multiple of 8 px is a valid request: the UNet's graph must not be the one traced on
    diffusers' fixed-factor upsampling branch, which only runs at latent sides divisible by 4."""
    graph = onnx_export.GRAPHS[component](pipe)
    session = ort.InferenceSession(str(compiled.out / f"{component}.onnx"), providers=["CPUExecutionProvider"])
    for seed, (batch, height, width) in enumerate(((1, 30, 30), (2, 34, 26), (1, 64, 48), (1, 33, 31))):
        expected, got = run_both(graph, session, batch, height, width, seed=seed)
        for name, want, have in zip(graph.output_names, expected, got):
            assert have.shape == want.shape, (component, name, height, width)
            assert float(np.max(np.abs(have - want))) < DEMO_CEILING, (component, name, height, width)


# ---------------------------------------------------------------------------------------------
# build


def test_build_without_tensorrt_exits_0_and_says_why(compiled, pipeline_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError
    before = (compiled.out / MANIFEST).read_bytes()
    code = compile_cli.main(["build", "--pipeline", str(pipeline_dir), "--out", str(compiled.out), "--quiet"])
    output = capsys.readouterr().out
    assert code == 0
    assert "no engines built" in output and "TensorRT is not importable" in output
    assert (compiled.out / MANIFEST).read_bytes() == before
    assert not (compiled.out / compile_cli.ENGINE_DIR).exists()


def test_all_runs_export_then_skips_build_without_tensorrt(pipeline_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    code = compile_cli.main(["all", "--pipeline", str(pipeline_dir), "--out", str(tmp_path), "--quiet",
                             "--components", "text_encoder", "--exporter", "torchscript", "--skip-check"])
    output = capsys.readouterr().out
    assert code == 0
    assert output.index("text_encoder") < output.index("no engines built")
    artifacts = read_manifest(tmp_path).artifacts
    assert [a.file for a in artifacts] == ["text_encoder.onnx"]
    assert artifacts[0].max_abs_error is None  # --skip-check: nothing measured, nothing claimed


class FakeTensorRT(types.ModuleType):
    """Just enough of TensorRT 10's Python API to run build_command's plumbing (shapes, flags,
    timing cache, file names, manifest) on a machine without a GPU. It says nothing about
    TensorRT itself: that path is unverified here."""

    def __init__(self, version: str = "10.13.0.35", weak_typing: bool = True):
        super().__init__("tensorrt")
        self.__version__ = version
        self.calls: list[tuple] = []
        fake = self

        class Logger:
            WARNING = 2

            def __init__(self, level):
                pass

        flags = {"REFIT": "REFIT", **({"FP16": "FP16"} if weak_typing else {})}
        self.profiles_built: list[list[dict]] = []
        self.Logger = Logger
        self.BuilderFlag = type("BuilderFlag", (), flags)
        self.MemoryPoolType = type("MemoryPoolType", (), {"WORKSPACE": "WORKSPACE"})
        self.NetworkDefinitionCreationFlag = type("NetworkDefinitionCreationFlag", (), {"EXPLICIT_BATCH": 0})

        class Network:
            inputs: list[str] = []

            @property
            def num_inputs(self):
                return len(self.inputs)

            def get_input(self, index):
                return SimpleNamespace(name=self.inputs[index])

        class OnnxParser:
            num_errors = 0

            def __init__(self, network, logger):
                self.network = network

            def parse_from_file(self, path):
                model = onnx.load(path, load_external_data=False)
                self.network.inputs = [v.name for v in model.graph.input]
                fake.calls.append(("parse", Path(path).name))
                return True

        class Config:
            def __init__(self):
                self.flags, self.cache, self.profiles = set(), None, []

            def set_flag(self, flag):
                self.flags.add(flag)

            def set_memory_pool_limit(self, pool, size):
                fake.calls.append(("workspace", size))

            def add_optimization_profile(self, profile):
                self.profiles.append(profile)

            def create_timing_cache(self, data):
                fake.calls.append(("timing_cache_in", bytes(data)))
                return SimpleNamespace(serialize=lambda: b"timings")

            def set_timing_cache(self, cache, ignore_mismatch):
                self.cache = cache

            def get_timing_cache(self):
                return self.cache

        class Profile(dict):
            def set_shape(self, name, low, opt, high):
                self[name] = (tuple(low), tuple(opt), tuple(high))

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                fake.calls.append(("network_flags", flags))
                return Network()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                fake.calls.append(("build", sorted(config.flags), dict(config.profiles[0]), [dict(p) for p in config.profiles]))
                return ("engine " + ",".join(sorted(config.flags)) + " " + repr([sorted(p.items()) for p in config.profiles])).encode()

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, data):
                return SimpleNamespace(refittable=b"REFIT" in data)

        self.Builder, self.OnnxParser, self.Runtime = Builder, OnnxParser, Runtime


@pytest.fixture()
def fake_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU 80GB")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))


def test_build_plumbing_with_a_fake_tensorrt(compiled, pipeline_dir, tmp_path, monkeypatch, fake_gpu, capsys):
    out = tmp_path / "compiled"
    shutil.copytree(compiled.out, out)
    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    code = compile_cli.main(["build", "--pipeline", str(pipeline_dir), "--out", str(out), "--quiet",
                             "--batch", "1:2:2", "--height", "256:512:512", "--width", "256:512:768",
                             "--extra-profile", "none"])
    assert code == 0, capsys.readouterr().err
    manifest = read_manifest(out)
    engines = manifest.engines()
    assert sorted(engines) == sorted(COMPONENTS)
    assert [a for a in manifest.artifacts if a.kind != "engine"] == list(compiled.manifest.artifacts)
    for component, engine in engines.items():
        key = engine.key
        assert (key.pipeline_hash, key.component) == (compiled.manifest.pipeline_hash, component)
        assert (key.gpu_name, key.compute_capability, key.trt_version) == ("Fake GPU 80GB", "9.0", "10.13.0.35")
        assert key.profile == "b1-2_h256-512_w256-768"
        # the demo VAE says force_upcast: its decoder stays fp32, the rest is fp16
        assert key.precision == ("fp32" if component == "vae_decoder" else "fp16")
        assert engine.file == f"engines/{key.cache_name()}"
        assert engine.refittable is (component == "unet")  # REFIT on the UNet only
        assert sha256(out / engine.file) == engine.sha256
    builds = {name: call for name, call in zip(COMPONENTS, [c for c in fake.calls if c[0] == "build"])}
    assert builds["unet"][1] == ["FP16", "REFIT"] and builds["vae_decoder"][1] == []
    assert builds["text_encoder"][1] == ["FP16"]
    # CFG doubles the UNet's OPT and MAX batch, not its MIN: guidance_scale <= 1 runs one row per image
    assert builds["unet"][2]["sample"] == ((1, 4, 32, 32), (4, 4, 64, 64), (4, 4, 64, 96))
    assert all(len(call[3]) == 1 for call in builds.values())
    assert builds["text_encoder"][2] == {"input_ids": ((1, 77), (2, 77), (2, 77))}
    assert ("network_flags", 0) in fake.calls  # TensorRT 10: explicit batch without the flag
    cache_files = list((out / "engines").glob("timing-*.cache"))
    assert [p.read_bytes() for p in cache_files] == [b"timings"]
    # the first build starts from an empty timing cache, every later one from the saved one
    assert [c[1] for c in fake.calls if c[0] == "timing_cache_in"] == [b""] + [b"timings"] * 3


def test_the_default_build_has_a_catalogue_and_a_large_profile(compiled, pipeline_dir, tmp_path, monkeypatch,
                                                                fake_gpu, capsys):
    out = tmp_path / "compiled"
    shutil.copytree(compiled.out, out)
    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    code = compile_cli.main(["build", "--pipeline", str(pipeline_dir), "--out", str(out), "--quiet",
                             "--components", "unet,vae_decoder"])
    assert code == 0, capsys.readouterr().err
    engines = read_manifest(out).engines()
    assert {e.key.profile for e in engines.values()} == {"b1-4_h256-1280_w256-1280+b1-1_h256-2048_w256-2048"}
    builds = {name: call for name, call in zip(("unet", "vae_decoder"), [c for c in fake.calls if c[0] == "build"])}
    catalogue, large = (p["sample"] for p in builds["unet"][3])
    # 1024x1024 at OPT, 4:5 portrait (1024x1280) and 2048x2048 single images inside the range
    assert catalogue == ((1, 4, 32, 32), (2, 4, 128, 128), (8, 4, 160, 160))
    assert large == ((1, 4, 32, 32), (2, 4, 256, 256), (2, 4, 256, 256))
    assert [p["latent"] for p in builds["vae_decoder"][3]] == [((1, 4, 32, 32), (1, 4, 128, 128), (4, 4, 160, 160)),
                                                               ((1, 4, 32, 32), (1, 4, 256, 256), (1, 4, 256, 256))]
    code = compile_cli.main(["build", "--pipeline", str(pipeline_dir), "--out", str(out), "--quiet",
                             "--components", "unet", "--extra-profile", "2:2:2/x/1"])
    assert code == 1 and "MIN:OPT:MAX" in capsys.readouterr().err


def test_tensorrt_11_without_modelopt_fails_clearly(compiled, pipeline_dir, tmp_path, monkeypatch, fake_gpu, capsys):
    out = tmp_path / "compiled"
    shutil.copytree(compiled.out, out)
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT("11.4.0.106", weak_typing=False))
    monkeypatch.setitem(sys.modules, "modelopt", None)
    code = compile_cli.main(["build", "--pipeline", str(pipeline_dir), "--out", str(out), "--quiet",
                             "--components", "unet"])
    assert code == 1
    assert "strongly typed" in capsys.readouterr().err
    assert read_manifest(out).engines() == {}


def test_engine_profiles_cover_each_input(compiled):
    profile = compile_cli.Profile(compile_cli.Range(1, 2, 4), compile_cli.Range(512, 768, 1024),
                                  compile_cli.Range(512, 1024, 1024))
    assert profile.key() == "b1-4_h512-1024_w512-1024"

    def shapes(component, p=profile):
        inputs = compile_cli.read_onnx_inputs(compiled.out / f"{component}.onnx")
        return compile_cli.engine_shapes(component, inputs, p, latent_scale=8)

    assert shapes("text_encoder") == {"input_ids": ((1, 77), (2, 77), (4, 77))}
    unet = shapes("unet")  # classifier-free guidance doubles the UNet's OPT and MAX batch; MIN serves guidance <= 1
    assert unet["sample"] == ((1, 4, 64, 64), (4, 4, 96, 128), (8, 4, 128, 128))
    assert unet["timestep"] == ((1,), (1,), (1,))
    assert unet["encoder_hidden_states"] == ((1, 77, 64), (4, 77, 64), (8, 77, 64))
    assert unet["text_embeds"] == ((1, 32), (4, 32), (8, 32))
    assert unet["time_ids"] == ((1, 6), (4, 6), (8, 6))
    assert shapes("vae_decoder") == {"latent": ((1, 4, 64, 64), (2, 4, 96, 128), (4, 4, 128, 128))}
    no_cfg = compile_cli.Profile(profile.batch, profile.height, profile.width, cfg=False)
    assert shapes("unet", no_cfg)["sample"][2] == (4, 4, 128, 128)
    keys = {p.key() for p in (profile, no_cfg)}
    assert len(keys) == 2
    machine = dict(pipeline_hash="p", component="unet", gpu_name="NVIDIA H100", compute_capability="9.0",
                   trt_version="10.13.0", precision="fp16")
    assert len({EngineKey(profile=k, **machine).cache_name() for k in keys}) == 2
    with pytest.raises(compile_cli.CompileError, match="multiples of 8"):
        compile_cli.Profile(profile.batch, compile_cli.Range(500, 512, 512), profile.width).check(8)


def test_help_documents_the_whole_flow():
    result = subprocess.run([sys.executable, "builds/compile.py", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for word in ("export", "build", "all", "upload", "download", "onnxruntime", "sha256", "TensorRT", "--skip-check"):
        assert word in result.stdout, word


# ---------------------------------------------------------------------------------------------
# S3


@pytest.fixture()
def aws_env(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return s3_server


def keys_under(s3_server, prefix: str) -> list[str]:
    listing = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix + "/")
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_upload_then_download_round_trips_with_sha256_verified(compiled, aws_env, tmp_path, capsys):
    s3 = aws_env
    prefix = f"compiled-{uuid.uuid4().hex[:10]}"
    url = f"s3://{s3.bucket}/{prefix}"
    code = compile_cli.main(["upload", url, "--out", str(compiled.out), "--endpoint-url", s3.endpoint_url,
                             "--region", s3.region, "--quiet"])
    assert code == 0, capsys.readouterr().err
    expected = sorted([f"{prefix}/{MANIFEST}"] + [f"{prefix}/{a.file}" for a in compiled.manifest.artifacts])
    assert keys_under(s3, prefix) == expected

    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "unet.onnx").write_bytes(b"a stale, damaged copy")  # replaced, not trusted
    manifest = download_artifacts(url, dest, s3.endpoint_url, s3.region)
    assert manifest == compiled.manifest
    assert (dest / MANIFEST).read_bytes() == (compiled.out / MANIFEST).read_bytes()
    for artifact in manifest.artifacts:
        assert sha256(dest / artifact.file) == artifact.sha256 == sha256(compiled.out / artifact.file)
    assert sorted(p.name for p in dest.iterdir()) == sorted([MANIFEST] + [a.file for a in manifest.artifacts])

    again = tmp_path / "again"  # the CLI's download command
    code = compile_cli.main(["download", url, "--out", str(again), "--endpoint-url", s3.endpoint_url,
                             "--region", s3.region, "--quiet"])
    assert code == 0
    assert read_manifest(again) == compiled.manifest


def test_a_corrupted_object_is_refused_and_deleted(compiled, aws_env, tmp_path, capsys):
    s3 = aws_env
    prefix = f"compiled-{uuid.uuid4().hex[:10]}"
    url = f"s3://{s3.bucket}/{prefix}"
    upload_artifacts(compiled.out, url, s3.endpoint_url, s3.region)
    s3.client().put_object(Bucket=s3.bucket, Key=f"{prefix}/vae_decoder.onnx", Body=b"not the exported graph")

    dest = tmp_path / "dest"
    with pytest.raises(ArtifactError, match="vae_decoder.*sha256"):
        download_artifacts(url, dest, s3.endpoint_url, s3.region)
    assert not (dest / "vae_decoder.onnx").exists()
    assert not (dest / MANIFEST).exists()  # no manifest: the service cannot use a partial set

    code = compile_cli.main(["download", url, "--out", str(tmp_path / "cli"), "--endpoint-url", s3.endpoint_url,
                             "--region", s3.region, "--quiet"])
    assert code == 1
    assert "sha256" in capsys.readouterr().err


def test_missing_manifest_and_bad_urls_are_refused(aws_env, tmp_path):
    s3 = aws_env
    with pytest.raises(ArtifactError, match="no compiled-pipeline manifest"):
        download_artifacts(f"s3://{s3.bucket}/nothing-{uuid.uuid4().hex[:8]}", tmp_path, s3.endpoint_url, s3.region)
    for url in ("bucket/prefix", "s3://", "s3:///prefix"):
        with pytest.raises(ConfigError):
            parse_s3_url(url)
    assert parse_s3_url("s3://b/a/b/") == ("b", "a/b")
