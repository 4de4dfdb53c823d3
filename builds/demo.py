"""Build the embedded demo: a tiny random-weight SDXL-architecture pipeline and three demo twins.

Owns: `$ATELIER_HOME/demo/pipeline` (a diffusers pipeline directory saved with
`save_pretrained`), `$ATELIER_HOME/adapters/<twin>.safetensors` (rank-4 UNet LoRAs in the
diffusers LoRA format), the demo's rows in the registry (`$ATELIER_HOME/registry.db`: the
three twins with their adapters' sha256, a `demo` tenant with signed consent for all three,
a generate+verify key and an admin key), `$ATELIER_HOME/demo.env` (those two keys, mode
0600) and, through dev_ca.py, `$ATELIER_HOME/keys/` (a development CA and the C2PA signing
key). Everything is built from configs with seeded random weights: nothing is
downloaded, ever. The images it produces are abstract noise-like patterns, not photographs.

    python builds/demo.py [--home DIR] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builds.tokenizer import write_clip_tokenizer  # noqa: E402

DEMO_TWINS = {
    "demo-ava": "Ava (demo twin)",
    "demo-ben": "Ben (demo twin)",
    "demo-cleo": "Cleo (demo twin)",
}
LORA_RANK = 4
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
DONE_MARKER = ".atelier-demo-complete"
DEMO_TENANT = "demo"
DEMO_USES = ["ecommerce", "lookbook", "social_ads"]
ENV_FILE = "demo.env"


@dataclass(frozen=True)
class DemoAssets:
    home: Path
    pipeline_dir: Path
    adapters_dir: Path
    env_file: Path


def _components(vocab_size: int):
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    text_config = dict(
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        hidden_size=32,
        intermediate_size=64,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=3,
        vocab_size=vocab_size,
        max_position_embeddings=77,
        hidden_act="gelu",
        projection_dim=32,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text_config))
    # SDXL layout: two text encoders (32 + 32 -> cross-attention 64), text_time conditioning
    # (6 time ids x 8 + pooled 32 = 80), linear projections, three UNet levels with attention
    # only at the lowest resolution so 1024 px stays usable on a CPU.
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1, 1),
        projection_class_embeddings_input_dim=80,
        cross_attention_dim=64,
        norm_num_groups=8,
    )
    # Four blocks: scale factor 8, like SDXL's VAE, with narrow channels so 256 px stays fast.
    vae = AutoencoderKL(
        block_out_channels=[8, 8, 16, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=256,
        scaling_factor=0.13025,
        force_upcast=True,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
    )
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, scheduler=scheduler)


def build_pipeline(pipeline_dir: Path) -> None:
    """Save a tiny random SDXL-architecture pipeline into `pipeline_dir`."""
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        vocab_size = write_clip_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
    pipe = StableDiffusionXLPipeline(
        **_components(vocab_size),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipe.save_pretrained(pipeline_dir, safe_serialization=True)


def build_twin_adapter(pipeline_dir: Path, twin_index: int, out_file: Path) -> None:
    """Write a rank-4 UNet LoRA with seeded random weights in the diffusers LoRA format."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(pipeline_dir, subfolder="unet")
    unet.add_adapter(LoraConfig(r=LORA_RANK, lora_alpha=LORA_RANK, target_modules=LORA_TARGETS, init_lora_weights=False))
    generator = torch.Generator().manual_seed(1000 + twin_index)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    layers = get_peft_model_state_dict(unet)
    with tempfile.TemporaryDirectory() as tmp:
        StableDiffusionXLPipeline.save_lora_weights(tmp, unet_lora_layers=layers, weight_name="adapter.safetensors")
        out_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / "adapter.safetensors"), out_file)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_demo(home: Path, force: bool = False, progress: bool = False) -> DemoAssets:
    """Build every demo asset under `home` (skipped when already complete, unless `force`)."""
    from tqdm import tqdm

    home = home.resolve()
    assets = DemoAssets(home, home / "demo" / "pipeline", home / "adapters", home / ENV_FILE)
    marker = home / "demo" / DONE_MARKER
    from builds.audit_key import build_audit_key
    from builds.demo_conditioning import build_conditioning
    from builds.dev_ca import build_dev_ca

    build_dev_ca(home / "keys")  # C2PA signing material for local use; kept if present
    build_audit_key(home / "keys")  # Ed25519 key that signs audit checkpoints
    if marker.exists() and not force:
        build_conditioning(home, assets.pipeline_dir)  # kept if built; added to an older demo home
        setup_demo_registry(assets)
        return assets
    steps = tqdm(total=2 + len(DEMO_TWINS), desc="demo assets", unit="step", disable=not progress)
    if assets.pipeline_dir.exists():
        shutil.rmtree(assets.pipeline_dir)
    build_pipeline(assets.pipeline_dir)
    steps.update()
    for index, twin_id in enumerate(DEMO_TWINS):
        build_twin_adapter(assets.pipeline_dir, index, assets.adapters_dir / f"{twin_id}.safetensors")
        steps.update()
    # Garment (IP-Adapter + image encoder), pose (ControlNet) and edit (inpainting UNet) models,
    # random too, and demo assets under demo/assets: a garment, a pose, masks.
    build_conditioning(home, assets.pipeline_dir, force=True)
    steps.update()
    steps.close()
    marker.write_text("ok\n")
    assets.env_file.unlink(missing_ok=True)  # new adapters: register them again
    setup_demo_registry(assets)
    return assets


def setup_demo_registry(assets: DemoAssets, db_url: str | None = None) -> None:
    """Twins, the demo tenant, its consent and its two keys, written once: skipped while
    demo.env exists and its tenant is in the registry (keys are shown once, so a rerun
    would otherwise mint new ones each time)."""
    from service.config import Settings
    from service.registry import open_registry
    from service.tenancy.manage import record_consent

    db_url = db_url or Settings.from_env({"ATELIER_HOME": str(assets.home)}).db_url
    registry = open_registry(db_url)
    if assets.env_file.exists() and registry.get_tenant(DEMO_TENANT) is not None:
        write_demo_env(assets.env_file, read_demo_env(assets.env_file))  # an older demo.env gains `export`
        return
    for twin_id, display_name in DEMO_TWINS.items():
        adapter = assets.adapters_dir / f"{twin_id}.safetensors"
        registry.put_twin(twin_id, display_name=display_name, adapter_key=adapter.name,
                          adapter_sha256=sha256_file(adapter), rank=LORA_RANK)
    if registry.get_tenant(DEMO_TENANT) is None:
        registry.create_tenant(DEMO_TENANT, "Demo brand")
    for twin_id in DEMO_TWINS:
        record_consent(registry, twin_id, tenants=[DEMO_TENANT], uses=DEMO_USES,
                       recorded_by="builds/demo.py", pay_rate_ref="demo-rate-card")
    # Generous limits: the demo and the test suite send bursts from one key (a key may send
    # 1 + 10% of its rate per minute at once: bursts of 601).
    limits = {"requests_per_minute": 6000, "max_concurrent_jobs": 8}
    _, demo_key = registry.create_api_key(DEMO_TENANT, ["generate", "verify"], name="demo key", **limits)
    _, admin_key = registry.create_api_key(DEMO_TENANT, ["admin", "generate", "verify"], name="demo admin key", **limits)
    registry.engine.dispose()
    write_demo_env(assets.env_file, {"ATELIER_DEMO_KEY": demo_key, "ATELIER_ADMIN_KEY": admin_key})


def write_demo_env(env_file: Path, keys: dict[str, str]) -> None:
    """demo.env as shell `export` lines (owner-only): `. var/demo.env` puts the keys in the
    environment of every program the shell starts, so the docs' Python examples read them too."""
    body = "".join(f"export {name}={value}\n" for name, value in keys.items())
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(body)


def read_demo_env(env_file: Path) -> dict[str, str]:
    """The keys in demo.env as a dict (with or without `export`)."""
    lines = (line.strip().removeprefix("export ") for line in env_file.read_text().splitlines())
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="state directory (default: $ATELIER_HOME or ./var)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the assets exist")
    args = parser.parse_args(argv)
    if args.home is None:
        from service.config import Settings

        args.home = Settings.from_env().home
    assets = build_demo(args.home, force=args.force, progress=True)
    print(f"demo pipeline: {assets.pipeline_dir}")
    print(f"demo twins:    {', '.join(DEMO_TWINS)} (tenant {DEMO_TENANT!r}, uses {', '.join(DEMO_USES)})")
    print(f"demo keys:     {assets.env_file} (source it: . {assets.env_file})")
    for name, value in read_demo_env(assets.env_file).items():
        print(f"  {name}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
