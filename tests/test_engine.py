"""The generation engine on the demo pipeline: formats, determinism, twins, refusals, timings."""

import json
import shutil

import numpy as np
import pytest

from service.engine import Engine
from service.engine.loading import check_pipeline_dir, load_pipeline, pick_device
from service.errors import AdapterUnavailable, ModelLoadError, TwinNotFound, UnsafeWeights
from service.schemas import GenerateRequest
from service.config import Settings
from service.registry import open_registry
from service.twins.adapters import TwinAdapters
from tests.conftest import SMALL, open_image


def request(**overrides) -> GenerateRequest:
    fields = {"twin_id": "demo-ava", "prompt": "studio photo, linen summer dress", "seed": 42, **SMALL}
    fields.update(overrides)
    return GenerateRequest(**fields)


def pixels(result, index=0) -> np.ndarray:
    return np.asarray(open_image(result.images[index].data), dtype=np.int16)


@pytest.mark.parametrize("fmt, pil_format", [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_output_size_and_format(engine, fmt, pil_format):
    result = engine.generate(request(width=320, height=256, output_format=fmt))
    image = open_image(result.images[0].data)
    assert image.format == pil_format
    assert image.size == (320, 256)
    assert result.images[0].format == fmt and (result.images[0].width, result.images[0].height) == (320, 256)


def test_same_seed_gives_byte_identical_png(engine):
    first, second = engine.generate(request()), engine.generate(request())
    assert first.images[0].data == second.images[0].data
    assert first.images[0].sha256 == second.images[0].sha256
    assert first.generation_id != second.generation_id


def test_different_seed_gives_different_image(engine):
    assert engine.generate(request(seed=1)).images[0].sha256 != engine.generate(request(seed=2)).images[0].sha256


def test_different_twins_give_different_images(engine):
    results = {twin: engine.generate(request(twin_id=twin)) for twin in ("demo-ava", "demo-ben", "demo-cleo")}
    assert len({r.images[0].sha256 for r in results.values()}) == 3
    # Not just different bytes: visibly different pixels.
    assert np.abs(pixels(results["demo-ava"]) - pixels(results["demo-ben"])).mean() > 2.0


def test_base_model_differs_from_twin_and_is_restored_after_it(engine):
    base_before = engine.generate(request(twin_id=None))
    twin = engine.generate(request(twin_id="demo-cleo"))
    base_after = engine.generate(request(twin_id=None))
    assert base_before.images[0].sha256 != twin.images[0].sha256
    assert base_before.images[0].data == base_after.images[0].data  # the adapter left no trace


def test_several_images_each_reproducible_from_its_own_seed(engine):
    batch = engine.generate(request(num_images=3, seed=100))
    assert [img.seed for img in batch.images] == [100, 101, 102]
    assert len({img.sha256 for img in batch.images}) == 3
    alone = engine.generate(request(num_images=1, seed=101))
    assert np.abs(pixels(alone) - pixels(batch, 1)).max() <= 1


def test_random_seed_is_reported_and_replays(engine):
    result = engine.generate(request(seed=None))
    assert isinstance(result.seed, int)
    assert engine.generate(request(seed=result.seed)).images[0].data == result.images[0].data


def test_timings_cover_every_stage(engine):
    timings = engine.generate(request()).timings_ms
    for stage in ("queue", "adapter", "encode", "denoise", "decode", "postprocess", "total"):
        assert timings[stage] >= 0.0, stage
    assert timings["denoise"] > 0 and timings["decode"] > 0 and timings["encode"] > 0
    assert timings["total"] >= timings["denoise"] + timings["decode"] + timings["encode"]


def test_unknown_twin(engine):
    with pytest.raises(TwinNotFound):
        engine.generate(request(twin_id="nobody"))


def engine_on(home, shared: Engine) -> Engine:
    """An engine over `shared`'s pipeline and slot, with registry, store and cache from `home`."""
    settings = Settings.from_env({"ATELIER_HOME": str(home)})
    twins = TwinAdapters.build(settings, open_registry(settings.db_url), shared.pipe.unet, shared.device, slot=shared.twins.slot)
    return Engine(shared.pipe, shared.device, shared.backend, twins, conditioning=shared.conditioning)  # one UNet


def set_twin(home, twin_id: str, **changes) -> None:
    """Overwrite fields of a twin's registry row in `home` (what a bad actor with DB access could do)."""
    registry = open_registry(Settings.from_env({"ATELIER_HOME": str(home)}).db_url)
    current = registry.get_twin(twin_id)
    fields = {"display_name": twin_id, "adapter_key": "", "adapter_sha256": "0" * 64, "rank": 4}
    if current is not None:
        fields.update(display_name=current.display_name, adapter_key=current.adapter_key,
                      adapter_sha256=current.adapter_sha256, rank=current.rank)
    fields.update(changes)
    registry.put_twin(twin_id, **fields)
    registry.engine.dispose()


def test_adapter_with_wrong_hash_is_refused_and_others_still_work(engine, copied_home):
    adapter = copied_home / "adapters" / "demo-ben.safetensors"
    data = bytearray(adapter.read_bytes())
    data[-1] ^= 0xFF
    adapter.write_bytes(bytes(data))
    local = engine_on(copied_home, engine)
    with pytest.raises(AdapterUnavailable, match="sha256"):
        local.generate(request(twin_id="demo-ben"))
    assert local.generate(request(twin_id="demo-ava")).images[0].data == engine.generate(request()).images[0].data


def test_missing_adapter_file(engine, copied_home):
    (copied_home / "adapters" / "demo-ben.safetensors").unlink()
    with pytest.raises(AdapterUnavailable, match="missing"):
        engine_on(copied_home, engine).generate(request(twin_id="demo-ben"))


@pytest.mark.parametrize("adapter_path", ["../../../etc/passwd.safetensors", "demo-ben.bin", "demo-ben.ckpt"])
def test_adapter_paths_outside_store_or_pickle_are_refused(engine, copied_home, adapter_path):
    set_twin(copied_home, "demo-ben", adapter_key=adapter_path)
    with pytest.raises(AdapterUnavailable):
        engine_on(copied_home, engine).generate(request(twin_id="demo-ben"))


def test_pickle_adapter_content_is_not_unpickled(engine, copied_home):
    import pickle

    adapter = copied_home / "adapters" / "demo-ben.safetensors"
    adapter.write_bytes(pickle.dumps({"unet.x.lora_A.weight": [1.0]}))
    import hashlib

    set_twin(copied_home, "demo-ben", adapter_sha256=hashlib.sha256(adapter.read_bytes()).hexdigest())
    with pytest.raises(AdapterUnavailable, match="not a valid safetensors"):
        engine_on(copied_home, engine).generate(request(twin_id="demo-ben"))


def test_pickle_weights_in_pipeline_are_refused(demo_home, tmp_path):
    pipeline = tmp_path / "pipeline"
    shutil.copytree(demo_home / "demo" / "pipeline", pipeline)
    (pipeline / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(UnsafeWeights, match="diffusion_pytorch_model.bin"):
        check_pipeline_dir(pipeline)
    with pytest.raises(UnsafeWeights):
        load_pipeline(pipeline, pick_device("cpu"), __import__("torch").float32)


def test_missing_or_foreign_model_dir(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        check_pipeline_dir(tmp_path / "nothing")
    with pytest.raises(ModelLoadError, match="model_index.json"):
        check_pipeline_dir(tmp_path)
    (tmp_path / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    with pytest.raises(ModelLoadError, match="unsupported pipeline class"):
        check_pipeline_dir(tmp_path)


def test_sd15_pipelines_load_and_generate(tmp_path):
    """The engine also serves SD1.5-architecture pipelines (one text encoder, no pooled embeds)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from builds.tokenizer import write_clip_tokenizer

    torch.manual_seed(0)
    vocab = write_clip_tokenizer(tmp_path / "tok")
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32, norm_num_groups=8,
        ),
        vae=AutoencoderKL(block_out_channels=[8, 16], down_block_types=["DownEncoderBlock2D"] * 2,
                          up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4, norm_num_groups=4),
        text_encoder=CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                                  num_hidden_layers=2, vocab_size=vocab, bos_token_id=vocab - 2,
                                                  eos_token_id=vocab - 1, pad_token_id=vocab - 1)),
        tokenizer=CLIPTokenizer.from_pretrained(tmp_path / "tok"),
        scheduler=EulerDiscreteScheduler(steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(tmp_path / "sd15", safe_serialization=True)
    loaded = load_pipeline(tmp_path / "sd15", pick_device("cpu"), torch.float32)
    sd15_settings = Settings.from_env({"ATELIER_HOME": str(tmp_path)})
    twins = TwinAdapters.build(sd15_settings, open_registry(sd15_settings.db_url), loaded.unet, pick_device("cpu"))
    sd15 = Engine(loaded, pick_device("cpu"), None, twins)
    result = sd15.generate(request(twin_id=None, width=256, height=256))
    assert open_image(result.images[0].data).size == (256, 256)
    assert sd15.generate(request(twin_id=None, width=256, height=256)).images[0].data == result.images[0].data


def test_record_pointing_at_an_adapter_the_slot_cannot_take_is_refused_at_first_load(engine, copied_home):
    """The gateway checks an adapter from its header alone; the renderer finds what does not fit
    the slot or the base model when it first loads the file: a 422 naming the twin, not a 503."""
    import hashlib

    from service.twins.validate import AdapterIncompatible
    from tests.test_adapter_slot import lora_file

    data = lora_file(copied_home / "demo" / "pipeline", 4, 4.0, targets=("proj_in",))
    (copied_home / "adapters" / "odd.safetensors").write_bytes(data)
    set_twin(copied_home, "odd", display_name="Odd", adapter_key="odd.safetensors", adapter_sha256=hashlib.sha256(data).hexdigest())
    local = engine_on(copied_home, engine)
    with pytest.raises(AdapterIncompatible, match="does not fit the base model") as refused:
        local.generate(request(twin_id="odd"))
    assert (refused.value.status, refused.value.code, refused.value.field) == (422, "adapter_incompatible", "twin_id")
    assert local.generate(request()).images[0].data == engine.generate(request()).images[0].data  # others still work
