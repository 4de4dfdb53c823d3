"""The adapter slot: same images as diffusers' own LoRA loading, refusals at registration,
no recompiles under torch.compile, and no leaks between twins."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from builds.demo import LORA_TARGETS
from service.engine.loading import load_pipeline, pick_device
from service.schemas import GenerateRequest
from service.twins.slot import AdapterIncompatible, AdapterSlot, safetensors_metadata
from service.twins.store import parse_adapter
from tests.conftest import open_image

CPU = pick_device("cpu")


def lora_file(pipeline_dir: Path, rank: int, alpha: float, targets=LORA_TARGETS, seed=7) -> bytes:
    """A diffusers-format LoRA written by diffusers itself, with lora_alpha metadata."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(pipeline_dir, subfolder="unet")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), init_lora_weights=False))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    with tempfile.TemporaryDirectory() as tmp:
        StableDiffusionXLPipeline.save_lora_weights(
            tmp, unet_lora_layers=get_peft_model_state_dict(unet), weight_name="a.safetensors",
            unet_lora_adapter_metadata={"r": rank, "lora_alpha": alpha, "target_modules": list(targets)},
        )
        return (Path(tmp) / "a.safetensors").read_bytes()


def render(pipe, seed=5):
    result = pipe(prompt="studio photo", width=256, height=256, num_inference_steps=2,
                  generator=torch.Generator().manual_seed(seed), output_type="np")
    return result.images[0]


@pytest.fixture(scope="module")
def pipeline_dir(demo_home):
    return demo_home / "demo" / "pipeline"


@pytest.mark.parametrize("rank, alpha", [(4, 4.0), (8, 16.0)])
def test_slot_matches_diffusers_own_lora_loading(pipeline_dir, rank, alpha, tmp_path):
    import hashlib

    data = lora_file(pipeline_dir, rank, alpha)
    (tmp_path / "twin.safetensors").write_bytes(data)
    reference = load_pipeline(pipeline_dir, CPU, torch.float32)
    reference.load_lora_weights(tmp_path, weight_name="twin.safetensors", adapter_name="ref")  # reads lora_alpha
    expected = render(reference)

    pipe = load_pipeline(pipeline_dir, CPU, torch.float32)
    slot = AdapterSlot(pipe.unet, rank=16, targets=tuple(LORA_TARGETS))  # padded from rank to 16
    sha = hashlib.sha256(data).hexdigest()
    slot.load(slot.prepare(parse_adapter(data, sha, "t"), sha, safetensors_metadata(data)))
    got = render(pipe)
    assert np.abs(got - expected).max() < 1e-4
    base = render(load_pipeline(pipeline_dir, CPU, torch.float32))
    assert np.abs(got - base).max() > 1e-2  # the adapter does change the image
    slot.clear()
    assert np.abs(render(pipe) - base).max() == 0.0  # an empty slot adds exactly nothing


def test_refusals_name_the_problem(pipeline_dir):
    import hashlib

    pipe = load_pipeline(pipeline_dir, CPU, torch.float32)
    slot = AdapterSlot(pipe.unet, rank=4, targets=("to_q", "to_v"))
    cases = {
        "rank 8": lora_file(pipeline_dir, 8, 8.0, targets=("to_q",)),
        "outside the slot": lora_file(pipeline_dir, 4, 4.0, targets=("to_k",)),
    }
    for expected, data in cases.items():
        sha = hashlib.sha256(data).hexdigest()
        with pytest.raises(AdapterIncompatible, match=expected):
            slot.prepare(parse_adapter(data, sha, "t"), sha, safetensors_metadata(data))
    text_encoder_lora = {"text_encoder.layers.0.q_proj.lora_A.weight": torch.zeros(4, 32)}
    with pytest.raises(AdapterIncompatible, match="text-encoder"):
        slot.prepare(text_encoder_lora, "x")
    half = {"unet.down_blocks.2.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 64)}
    with pytest.raises(AdapterIncompatible, match="not both"):
        slot.prepare(half, "x")


def test_a_twin_touching_fewer_layers_leaves_nothing_of_the_previous_twin(pipeline_dir):
    import hashlib

    pipe = load_pipeline(pipeline_dir, CPU, torch.float32)
    slot = AdapterSlot(pipe.unet, rank=4, targets=tuple(LORA_TARGETS))
    wide = lora_file(pipeline_dir, 4, 4.0, seed=1)
    narrow = lora_file(pipeline_dir, 4, 4.0, targets=("to_q",), seed=2)

    def prepared(data):
        sha = hashlib.sha256(data).hexdigest()
        return slot.prepare(parse_adapter(data, sha, "t"), sha, safetensors_metadata(data))

    narrow_p = prepared(narrow)
    slot.load(narrow_p)
    narrow_alone = render(pipe)
    slot.load(prepared(wide))
    slot.load(narrow_p)
    assert np.abs(render(pipe) - narrow_alone).max() == 0.0


def test_switching_under_torch_compile_never_recompiles(engine):
    """A compiled UNet serves every twin and the base model without a single recompile."""
    import torch._dynamo

    pipe = engine.pipe
    original = pipe.unet
    torch._dynamo.reset()
    pipe.unet = torch.compile(original, backend="eager", dynamic=False)
    try:
        requests = [GenerateRequest(twin_id=t, prompt="studio photo", width=256, height=256, steps=2, seed=3)
                    for t in ("demo-ava", "demo-ben", None, "demo-cleo", "demo-ava")]
        engine.generate(requests[0])  # first call compiles
        with torch._dynamo.config.patch(error_on_recompile=True):
            outputs = [engine.generate(r).images[0].sha256 for r in requests]
        assert len(set(outputs)) == 4  # ava twice (same), ben, base, cleo all differ
        assert outputs[0] == outputs[-1]
    finally:
        pipe.unet = original
        torch._dynamo.reset()


def test_prepared_images_are_identical_to_the_slot_free_engine_output(engine):
    """A request's output does not depend on which twins ran before it."""
    request = GenerateRequest(twin_id="demo-ben", prompt="street style", width=256, height=256, steps=2, seed=11)
    first = engine.generate(request).images[0].data
    for other in ("demo-ava", None, "demo-cleo"):
        engine.generate(GenerateRequest(twin_id=other, prompt="x", width=256, height=256, steps=2, seed=1))
    assert engine.generate(request).images[0].data == first
    assert open_image(first).size == (256, 256)
