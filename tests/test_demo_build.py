"""The demo builder: an SDXL-architecture pipeline and three twins, offline, safetensors only."""

import json

from builds.demo import DEMO_TWINS, LORA_RANK, build_demo, sha256_file
from service.engine.loading import check_pipeline_dir
from service.twins.store import PICKLE_SUFFIXES


def test_pipeline_is_sdxl_architecture(demo_home):
    pipeline = demo_home / "demo" / "pipeline"
    assert check_pipeline_dir(pipeline) == "StableDiffusionXLPipeline"
    index = json.loads((pipeline / "model_index.json").read_text())
    for component in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "vae", "scheduler"):
        assert index[component][0] is not None, component
    vae = json.loads((pipeline / "vae" / "config.json").read_text())
    assert 2 ** (len(vae["block_out_channels"]) - 1) == 8  # VAE scale factor 8, like SDXL
    tokenizer = json.loads((pipeline / "tokenizer" / "tokenizer_config.json").read_text())
    assert tokenizer["model_max_length"] == 77


def test_only_safetensors_weights(demo_home):
    files = [p for p in demo_home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    assert not [p for p in files if p.suffix in PICKLE_SUFFIXES]


def test_twin_records_match_their_adapters(demo_home):
    for twin_id in DEMO_TWINS:
        record = json.loads((demo_home / "twins" / f"{twin_id}.json").read_text())
        assert record["id"] == twin_id
        assert record["rank"] == LORA_RANK
        adapter = demo_home / "adapters" / record["adapter_path"]
        assert sha256_file(adapter) == record["sha256"]


def test_adapters_are_diffusers_lora_format(demo_home):
    from safetensors import safe_open

    with safe_open(demo_home / "adapters" / "demo-ava.safetensors", "pt") as f:
        keys = list(f.keys())
        shapes = {f.get_slice(k).get_shape()[0] for k in keys if "lora_A" in k}
    assert keys and all(k.startswith("unet.") and ".lora_" in k for k in keys)
    assert shapes == {LORA_RANK}


def test_twins_get_different_weights(demo_home):
    digests = {json.loads((demo_home / "twins" / f"{t}.json").read_text())["sha256"] for t in DEMO_TWINS}
    assert len(digests) == len(DEMO_TWINS)


def test_rebuild_is_skipped_when_complete(demo_home):
    adapter = demo_home / "adapters" / "demo-ava.safetensors"
    before = adapter.stat().st_mtime_ns
    build_demo(demo_home)
    assert adapter.stat().st_mtime_ns == before
