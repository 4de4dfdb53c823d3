"""The demo builder: an SDXL-architecture pipeline and three twins, offline, safetensors only."""

import json
from pathlib import Path

from builds.demo import DEMO_TENANT, DEMO_TWINS, LORA_RANK, build_demo, sha256_file
from service.engine.loading import check_pipeline_dir
from service.twins.store import PICKLE_SUFFIXES
from tests.conftest import snapshot_registry


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


def test_twin_records_match_their_adapters(registry):
    for twin_id in DEMO_TWINS:
        record = registry.get_twin(twin_id)
        assert record.id == twin_id and record.rank == LORA_RANK
        assert sha256_file(registry_home(registry) / "adapters" / record.adapter_key) == record.adapter_sha256


def registry_home(registry) -> Path:
    return Path(registry.engine.url.database).parent


def test_demo_tenant_has_consent_for_every_twin_and_two_keys(demo_home, registry, demo_keys, tmp_path):
    for twin_id in DEMO_TWINS:
        record = registry.current_consent(twin_id)
        assert record.tenants == {DEMO_TENANT} and set(record.uses) >= {"ecommerce"} and record.signed_at is not None
    demo, admin = registry.authenticate(demo_keys["ATELIER_DEMO_KEY"]), registry.authenticate(demo_keys["ATELIER_ADMIN_KEY"])
    assert demo.scopes == {"generate", "verify"} and "admin" in admin.scopes
    assert demo.tenant_id == admin.tenant_id == DEMO_TENANT
    assert (demo_home / "demo.env").stat().st_mode & 0o077 == 0  # the keys are the owner's alone
    stored = snapshot_registry(demo_home, tmp_path / "copy.db").read_bytes()  # the live files stay unopened
    assert demo_keys["ATELIER_DEMO_KEY"].encode() not in stored
    assert demo_keys["ATELIER_DEMO_KEY"].split("_", 2)[2].encode() not in stored  # nor the secret alone


def test_adapters_are_diffusers_lora_format(demo_home):
    from safetensors import safe_open

    with safe_open(demo_home / "adapters" / "demo-ava.safetensors", "pt") as f:
        keys = list(f.keys())
        shapes = {f.get_slice(k).get_shape()[0] for k in keys if "lora_A" in k}
    assert keys and all(k.startswith("unet.") and ".lora_" in k for k in keys)
    assert shapes == {LORA_RANK}


def test_twins_get_different_weights(demo_home):
    digests = {sha256_file(demo_home / "adapters" / f"{t}.safetensors") for t in DEMO_TWINS}
    assert len(digests) == len(DEMO_TWINS)


def test_rebuild_is_skipped_when_complete(demo_home):
    adapter = demo_home / "adapters" / "demo-ava.safetensors"
    before = adapter.stat().st_mtime_ns
    env_before = (demo_home / "demo.env").read_text()
    build_demo(demo_home)
    assert adapter.stat().st_mtime_ns == before
    assert (demo_home / "demo.env").read_text() == env_before  # no new keys minted on a rerun


def test_demo_env_exports_its_keys_to_programs_the_shell_starts(demo_home, demo_keys):
    """The docs source demo.env and then run Python that reads os.environ: a plain NAME=value
    line sets a shell variable only, and the Python example failed with KeyError."""
    import subprocess
    import sys

    script = f'. "{demo_home / "demo.env"}" && "{sys.executable}" -c "import os; print(os.environ[\'ATELIER_DEMO_KEY\'])"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == demo_keys["ATELIER_DEMO_KEY"]
