"""Build the embedded demo: a tiny random-weight SDXL-architecture pipeline and three demo twins.

Owns: `$ATELIER_HOME/demo/pipeline` (a diffusers pipeline directory saved with
`save_pretrained`), `$ATELIER_HOME/adapters/<twin>.safetensors` (rank-4 UNet LoRAs in the
diffusers LoRA format), `$ATELIER_HOME/twins/<twin>.json` (twin records with the adapter's
sha256) and, through dev_ca.py, `$ATELIER_HOME/keys/` (a development CA and the C2PA
signing key). Everything is built from configs with seeded random weights: nothing is
downloaded, ever. The images it produces are abstract noise-like patterns, not photographs.

    python builds/demo.py [--home DIR] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
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


@dataclass(frozen=True)
class DemoAssets:
    home: Path
    pipeline_dir: Path
    adapters_dir: Path
    twins_dir: Path


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
    assets = DemoAssets(home, home / "demo" / "pipeline", home / "adapters", home / "twins")
    marker = home / "demo" / DONE_MARKER
    from builds.audit_key import build_audit_key
    from builds.dev_ca import build_dev_ca

    build_dev_ca(home / "keys")  # C2PA signing material for local use; kept if present
    build_audit_key(home / "keys")  # Ed25519 key that signs audit checkpoints
    if marker.exists() and not force:
        return assets
    steps = tqdm(total=1 + len(DEMO_TWINS), desc="demo assets", unit="step", disable=not progress)
    if assets.pipeline_dir.exists():
        shutil.rmtree(assets.pipeline_dir)
    build_pipeline(assets.pipeline_dir)
    steps.update()
    assets.twins_dir.mkdir(parents=True, exist_ok=True)
    for index, (twin_id, display_name) in enumerate(DEMO_TWINS.items()):
        adapter = assets.adapters_dir / f"{twin_id}.safetensors"
        build_twin_adapter(assets.pipeline_dir, index, adapter)
        record = {
            "id": twin_id,
            "display_name": display_name,
            "adapter_path": adapter.name,
            "sha256": sha256_file(adapter),
            "rank": LORA_RANK,
        }
        (assets.twins_dir / f"{twin_id}.json").write_text(json.dumps(record, indent=2) + "\n")
        steps.update()
    steps.close()
    marker.write_text("ok\n")
    return assets


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
    for twin_id in DEMO_TWINS:
        print(f"demo twin:     {twin_id} -> {assets.twins_dir / (twin_id + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
