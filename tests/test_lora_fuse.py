"""LoRA fused into base weights (the TensorRT twin switch): the same weights as diffusers' own
fuse_lora on Linear and Conv2d layers, an exact unfuse, no leaks between twins, ONNX naming."""

import hashlib

import pytest
import torch

from builds.demo import LORA_TARGETS
from service.engine.lora_fuse import (
    FusedWeights,
    LoraFuseError,
    OnnxWeight,
    base_weights,
    fused_weights,
    load_refit_map,
    match_onnx_initializers,
    onnx_initializer_name,
    save_refit_map,
    to_onnx_layout,
)
from service.twins.slot import AdapterSlot, PreparedAdapter, safetensors_metadata
from service.twins.store import parse_adapter
from tests.test_adapter_slot import lora_file

SLOT_RANK = 8
# The attention projections (Linear) plus resnet convolutions: conv1 is 3x3, conv_shortcut 1x1.
TARGETS = (*LORA_TARGETS, "conv1", "conv_shortcut")


def load_unet(pipeline_dir):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(pipeline_dir, subfolder="unet")


@pytest.fixture(scope="module")
def pipeline_dir(demo_home):
    return demo_home / "demo" / "pipeline"


@pytest.fixture(scope="module")
def original(pipeline_dir) -> dict[str, torch.Tensor]:
    """Every parameter of a plain, slot-free UNet: the reference for 'base'."""
    return {n: p.detach().clone() for n, p in load_unet(pipeline_dir).named_parameters()}


@pytest.fixture(scope="module")
def served(pipeline_dir):
    """A UNet carrying the adapter slot, as the service runs it, and its slot."""
    unet = load_unet(pipeline_dir)
    return unet, AdapterSlot(unet, rank=SLOT_RANK, targets=TARGETS)


@pytest.fixture(scope="module")
def base(served):
    """The kept base weights, read off the slot-wrapped UNet."""
    return base_weights(served[0])


def prepare(pipeline_dir, slot, rank, alpha, targets=TARGETS, seed=7) -> tuple[bytes, PreparedAdapter]:
    data = lora_file(pipeline_dir, rank, alpha, targets=targets, seed=seed)
    sha = hashlib.sha256(data).hexdigest()
    return data, slot.prepare(parse_adapter(data, sha, "t"), sha, safetensors_metadata(data))


def diffusers_fused(pipeline_dir, data: bytes, scales, tmp_path) -> dict[float, dict[str, torch.Tensor]]:
    """The UNet weights after diffusers' own load_lora_weights + fuse_lora(lora_scale=scale), per scale."""
    from diffusers import StableDiffusionXLPipeline

    (tmp_path / "twin.safetensors").write_bytes(data)
    pipe = StableDiffusionXLPipeline.from_pretrained(pipeline_dir, add_watermarker=False)
    pipe.load_lora_weights(tmp_path, weight_name="twin.safetensors", adapter_name="ref")  # reads lora_alpha
    fused = {}
    for scale in scales:
        pipe.fuse_lora(lora_scale=scale)
        fused[scale] = {n.replace(".base_layer", ""): p.detach().clone()
                        for n, p in pipe.unet.named_parameters() if ".lora_" not in n}
        pipe.unfuse_lora()
    return fused


def test_base_weights_are_the_plain_unets_parameters(base, original, served):
    # every slot layer, named as on a UNet without peft, and equal to the untouched weights
    assert len(base) == len(served[1].layers) > 0
    assert all(".base_layer" not in name and name in original for name in base)
    assert "down_blocks.2.attentions.0.transformer_blocks.0.attn1.to_q.weight" in base
    assert "down_blocks.1.resnets.0.conv1.weight" in base
    assert all(torch.equal(weight, original[name]) for name, weight in base.items())
    assert all(weight.data_ptr() != original[name].data_ptr() for name, weight in base.items())


@pytest.mark.parametrize("rank, alpha, scales", [(SLOT_RANK, 8.0, (1.0, 0.5)), (4, 16.0, (1.0, 0.7))])
def test_fused_weights_equal_diffusers_fuse_lora(pipeline_dir, served, base, original, rank, alpha, scales, tmp_path):
    data, adapter = prepare(pipeline_dir, served[1], rank, alpha)
    assert adapter.rank == rank <= SLOT_RANK
    reference = diffusers_fused(pipeline_dir, data, scales, tmp_path)
    for scale in scales:
        ours = fused_weights(base, adapter, scale)
        theirs = reference[scale]
        assert set(theirs) == set(original)
        assert set(ours) == {f"{module}.weight" for module in adapter.layers}
        assert {w.dim() for w in ours.values()} == {2, 4}  # Linear and Conv2d layers were fused
        assert any(w.shape[2:] == (3, 3) for w in ours.values())
        for name, weight in ours.items():
            assert weight.dtype == original[name].dtype
            assert not torch.equal(weight, original[name])  # the LoRA does change every touched layer
            assert torch.allclose(weight, theirs[name], rtol=1e-5, atol=1e-6), name
        untouched = [n for n in original if n.endswith(".weight") and n not in ours]
        assert untouched and all(torch.equal(theirs[n], original[n]) for n in untouched)
    # the scale is applied, not ignored
    a, b = fused_weights(base, adapter, scales[0]), fused_weights(base, adapter, scales[1])
    assert all(not torch.allclose(a[n], b[n]) for n in a)


def test_half_precision_bases_are_fused_in_float32(pipeline_dir, served, base):
    _, adapter = prepare(pipeline_dir, served[1], 4, 4.0)
    half = {n: w.to(torch.bfloat16) for n, w in base.items()}
    ours = fused_weights(half, adapter, 0.8)
    exact = fused_weights({n: w.to(torch.float32) for n, w in half.items()}, adapter, 0.8)
    for name, weight in ours.items():
        assert weight.dtype == torch.bfloat16
        # one rounding at the end: within half an ulp of bfloat16 (2^-8 relative)
        assert torch.all((weight.float() - exact[name]).abs() <= exact[name].abs() * 2**-8 + 1e-30), name
    assert all(w.dtype == torch.bfloat16 for w in half.values())  # the base is not modified


def test_switching_twins_restores_what_the_next_twin_does_not_touch(pipeline_dir, served, base, original):
    _, wide = prepare(pipeline_dir, served[1], 4, 4.0, seed=1)
    _, narrow = prepare(pipeline_dir, served[1], 2, 4.0, targets=("to_q",), seed=2)
    wide_names, narrow_names = {f"{m}.weight" for m in wide.layers}, {f"{m}.weight" for m in narrow.layers}
    assert narrow_names < wide_names

    fused = FusedWeights(base, scale=1.0)
    first = fused.switch(wide)
    assert set(first) == wide_names and fused.owner == wide.sha256
    assert fused.switch(wide) == {}  # already there: nothing to refit

    second = fused.switch(narrow)
    assert set(second) == wide_names  # narrow's layers fused, every other layer of wide restored
    for name in wide_names - narrow_names:
        assert torch.equal(second[name], original[name]), name
    expected = fused_weights(base, narrow)
    for name in narrow_names:
        assert torch.equal(second[name], expected[name]) and not torch.equal(second[name], original[name])
    assert fused.current == frozenset(narrow_names)
    # what the engine holds now, layer by layer (for weights TensorRT fused with the refitted ones)
    assert all(torch.equal(fused.weight(n), second[n]) for n in second)
    others = [n for n in base if n not in narrow_names]
    assert others and all(torch.equal(fused.weight(n), original[n]) for n in others)

    to_base = fused.switch(None)
    assert set(to_base) == narrow_names and all(torch.equal(to_base[n], original[n]) for n in narrow_names)
    assert fused.owner is None and fused.current == frozenset()


def test_unfuse_returns_the_exact_base_after_many_switches(pipeline_dir, served, base, original):
    twins = [prepare(pipeline_dir, served[1], r, 8.0, targets=t, seed=s)[1]
             for r, t, s in ((8, TARGETS, 3), (4, ("to_k", "conv1"), 4), (2, ("to_q",), 5))]
    fused = FusedWeights(base, scale=0.9)
    touched = set()
    for _ in range(3):
        for twin in twins:
            assert fused.switch(twin)
            touched |= {f"{m}.weight" for m in twin.layers}
    restored = fused.unfuse()
    assert set(restored) == touched
    for name, weight in restored.items():
        assert torch.equal(weight, original[name]), name  # bit-identical: nothing was ever subtracted
    assert all(torch.equal(w, original[n]) for n, w in base.items())  # the kept base never changed
    assert fused.owner is None and fused.switch(twins[0])  # after unfuse, the next switch refits again


def test_adapters_that_do_not_fit_the_base_are_refused(pipeline_dir, served, base):
    _, adapter = prepare(pipeline_dir, served[1], 4, 4.0)
    some = next(iter(base))
    with pytest.raises(LoraFuseError, match="no base weight"):
        fused_weights({n: w for n, w in base.items() if n != some}, adapter)

    linear = next(m for m in adapter.layers if m.endswith("to_q"))
    conv = next(m for m in adapter.layers if m.endswith("conv1"))
    a, b = adapter.layers[linear]
    bad = PreparedAdapter("x", 4, {linear: (a, torch.zeros(b.shape[0] + 1, b.shape[1]))}, 0)
    with pytest.raises(LoraFuseError, match="does not fit"):
        fused_weights(base, bad)
    a, b = adapter.layers[conv]
    spatial_b = torch.zeros(b.shape[0], b.shape[1], 3, 3)
    with pytest.raises(LoraFuseError, match="1x1 kernel"):
        fused_weights(base, PreparedAdapter("x", 4, {conv: (a, spatial_b)}, 0))
    grouped_a = torch.zeros(a.shape[0], a.shape[1] // 2, *a.shape[2:])
    with pytest.raises(LoraFuseError, match="grouped"):
        fused_weights(base, PreparedAdapter("x", 4, {conv: (grouped_a, b)}, 0))


def test_onnx_names_identity_and_refit_map_round_trip(tmp_path):
    assert onnx_initializer_name("mid_block.resnets.0.conv1.weight") == "unet.mid_block.resnets.0.conv1.weight"
    assert onnx_initializer_name("a.to_q.base_layer.weight", prefix="") == "a.to_q.weight"
    mapping = {"a.to_q.weight": OnnxWeight("val_314", True), "b.conv1.weight": OnnxWeight("unet.b.conv1.weight")}
    assert load_refit_map(save_refit_map(tmp_path / "unet.refit.json", mapping)) == mapping
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(LoraFuseError, match="unreadable"):
        load_refit_map(tmp_path / "bad.json")


def test_onnx_matching_refuses_what_it_cannot_tell_apart():
    w = torch.arange(6.0).reshape(2, 3)
    assert match_onnx_initializers({"x.weight": w}, {"val_1": w.t().contiguous()}) == {"x.weight": OnnxWeight("val_1", True)}
    with pytest.raises(LoraFuseError, match="no initializer"):
        match_onnx_initializers({"x.weight": w}, {"val_1": w + 1})
    with pytest.raises(LoraFuseError, match="2 initializers"):
        match_onnx_initializers({"x.weight": w}, {"val_1": w.clone(), "val_2": w.t().contiguous()})


def test_refit_names_for_this_projects_onnx_export(pipeline_dir, base, tmp_path):
    """On a real export (builds/onnx_export.py, TorchScript exporter: the fast one), every slot
    layer is found: convolutions by their torch name, Linear weights (folded into anonymous
    transposed initializers by the exporter) by value. Fused weights go out in ONNX layout."""
    onnx = pytest.importorskip("onnx", reason="the onnx package is needed to read an export")
    from onnx import numpy_helper

    from builds.onnx_export import export_onnx, unet_graph
    from service.engine.loading import load_pipeline

    pipe = load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32)
    result = export_onnx(unet_graph(pipe), tmp_path, exporter="torchscript")
    model = onnx.load(str(result.onnx_path))
    initializers = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    mapping = match_onnx_initializers(base, initializers)
    assert set(mapping) == set(base)
    linear = [n for n in base if base[n].dim() == 2]
    conv = [n for n in base if base[n].dim() == 4]
    assert linear and conv
    assert all(mapping[n].transposed and mapping[n].name != onnx_initializer_name(n) for n in linear)
    assert all(not mapping[n].transposed and mapping[n].name == onnx_initializer_name(n) for n in conv)
    laid_out = to_onnx_layout(base, mapping)
    assert all(torch.equal(laid_out[mapping[n].name], initializers[mapping[n].name]) for n in base)
