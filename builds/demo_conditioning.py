"""Build the demo's conditioning models and assets: tiny random weights, offline, safetensors only.

Owns, under `$ATELIER_HOME/demo/`:
- `ip_adapter/ip-adapter-plus.safetensors`: an IP-Adapter in the Plus layout (`image_proj.*`
  resampler and `ip_adapter.{k}.to_k_ip/to_v_ip` for every cross-attention of the demo
  UNet);
- `ip_adapter/image_encoder/`: its tiny CLIPVisionModelWithProjection;
- `pose_controlnet/`: `ControlNetModel.from_unet` of the demo UNet. Its zero-initialised
  output convolutions get seeded random weights and its conditioning embedding a gain, so
  that a pose, and a different pose, visibly steer the demo;
- `inpaint/unet/`: a 9-channel inpainting UNet, the demo UNet's weights with `conv_in`
  widened by five seeded random channels (as SDXL inpainting was initialised);
- `assets/`: a T-shirt and a skirt drawn with PIL, the front pose drawn by our renderer, a
  torso mask and a person mask.

Nothing is downloaded. Paths are returned by name; `build_conditioning` skips what is
complete unless `force`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

DONE_MARKER = ".atelier-conditioning-complete"
IMAGE_SIZE = 256
ENCODER = dict(
    image_size=32, patch_size=8, hidden_size=32, projection_dim=32, intermediate_size=37,
    num_attention_heads=4, num_hidden_layers=2, hidden_act="gelu", layer_norm_eps=1e-05,
)  # fmt: skip
RESAMPLER_QUERIES = 4  # image tokens per garment (16 in IP-Adapter Plus SDXL)
RESAMPLER_WIDTH = 64  # diffusers derives heads = width // 64
POSE_EMBEDDING_GAIN = 40.0


def _plus_original_keys(state: dict) -> dict:
    """diffusers' IPAdapterPlusImageProjection names -> the original IP-Adapter Plus file layout
    (the inverse of diffusers' `_convert_ip_adapter_image_proj_to_diffusers`)."""
    import torch

    out = {}
    for name, tensor in state.items():
        parts = name.split(".")
        if parts[0] != "layers":
            out[name] = tensor
            continue
        i, rest = parts[1], ".".join(parts[2:])
        if rest.startswith("ln0."):
            out[f"layers.{i}.0.norm1.{rest[4:]}"] = tensor
        elif rest.startswith("ln1."):
            out[f"layers.{i}.0.norm2.{rest[4:]}"] = tensor
        elif rest == "attn.to_q.weight":
            out[f"layers.{i}.0.to_q.weight"] = tensor
        elif rest == "attn.to_out.0.weight":
            out[f"layers.{i}.0.to_out.weight"] = tensor
        elif rest in ("attn.to_k.weight", "attn.to_v.weight"):
            continue  # joined below as to_kv
        elif rest.startswith("ff.0."):
            out[f"layers.{i}.1.0.{rest[5:]}"] = tensor
        elif rest == "ff.1.net.0.proj.weight":
            out[f"layers.{i}.1.1.weight"] = tensor
        elif rest == "ff.1.net.2.weight":
            out[f"layers.{i}.1.3.weight"] = tensor
        else:
            raise ValueError(f"unexpected resampler weight {name}")
    for name in state:
        if name.endswith("attn.to_k.weight"):
            i = name.split(".")[1]
            out[f"layers.{i}.0.to_kv.weight"] = torch.cat([state[name], state[name.replace("to_k", "to_v")]])
    return out


def build_ip_adapter(pipeline_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """An IP-Adapter Plus for the demo UNet and its image encoder; returns (file, encoder dir)."""
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.models.embeddings import IPAdapterPlusImageProjection
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(20)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**ENCODER))
    encoder_dir = out_dir / "image_encoder"
    encoder.save_pretrained(encoder_dir, safe_serialization=True)

    unet = UNet2DConditionModel.from_pretrained(pipeline_dir, subfolder="unet")
    cross_dim = unet.config.cross_attention_dim
    resampler = IPAdapterPlusImageProjection(
        embed_dims=ENCODER["hidden_size"], output_dims=cross_dim, hidden_dims=RESAMPLER_WIDTH,
        heads=RESAMPLER_WIDTH // 64, num_queries=RESAMPLER_QUERIES,
    )
    state = {f"image_proj.{k}": v for k, v in _plus_original_keys(resampler.state_dict()).items()}
    # One to_k_ip / to_v_ip pair per cross-attention, numbered 1, 3, 5, ... in the order of
    # `unet.attn_processors` (self-attentions take the even numbers in the original layout).
    generator = torch.Generator().manual_seed(21)
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = unet.config.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(unet.config.block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = unet.config.block_out_channels[int(name[len("down_blocks.")])]
        for which in ("to_k_ip", "to_v_ip"):
            state[f"ip_adapter.{key_id}.{which}.weight"] = torch.randn(hidden, cross_dim, generator=generator) / cross_dim**0.5
        key_id += 2
    adapter_file = out_dir / "ip-adapter-plus.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(adapter_file))
    return adapter_file, encoder_dir


def build_pose_controlnet(pipeline_dir: Path, out_dir: Path) -> Path:
    """`ControlNetModel.from_unet` of the demo UNet, with its zero convolutions randomised."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(pipeline_dir, subfolder="unet")  # no peft wrappers: a fresh load
    controlnet = ControlNetModel.from_unet(unet)
    generator = torch.Generator().manual_seed(30)
    # A drawn pose is mostly black: through the conditioning embedding's eight convolutions
    # its signal shrinks to ~1 % of the latents'. He-normal weights, and a gain on the last
    # convolution, bring it to the latents' scale so that different poses differ visibly.
    embedding = [m for m in controlnet.controlnet_cond_embedding.modules() if isinstance(m, torch.nn.Conv2d)]
    zeroed = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    with torch.no_grad():
        for module in embedding:
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            module.bias.zero_()
        embedding[-1].weight.mul_(POSE_EMBEDDING_GAIN)
        for module in zeroed:
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.2)
            module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.05)
    controlnet.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def build_inpaint_unet(pipeline_dir: Path, out_dir: Path) -> Path:
    """A 9-channel UNet: the demo UNet's weights, `conv_in` widened with seeded random
    channels for the mask and the masked image's latents. Returns the `inpaint` directory
    (the UNet is in its `unet/`, like an inpainting pipeline's)."""
    import torch
    from diffusers import UNet2DConditionModel

    base = UNet2DConditionModel.from_pretrained(pipeline_dir, subfolder="unet")
    config = dict(base.config) | {"in_channels": 9}
    unet = UNet2DConditionModel.from_config(config)
    state = base.state_dict()
    weight = state["conv_in.weight"]
    generator = torch.Generator().manual_seed(40)
    extra = torch.randn((weight.shape[0], 5, *weight.shape[2:]), generator=generator) * weight.std()
    state["conv_in.weight"] = torch.cat([weight, extra], dim=1)
    unet.load_state_dict(state, strict=True)
    unet.save_pretrained(out_dir / "unet", safe_serialization=True)
    return out_dir


def draw_garment(kind: str, size: int = IMAGE_SIZE):
    """A flat-lay packshot on white: a coloured T-shirt (`top`) or an A-line skirt (`skirt`)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    s = size / 256
    if kind == "top":
        body = [(88, 40), (112, 30), (144, 30), (168, 40), (216, 78), (196, 110), (176, 96),
                (176, 226), (80, 226), (80, 96), (60, 110), (40, 78)]
        draw.polygon([(x * s, y * s) for x, y in body], fill=(200, 40, 60), outline=(120, 20, 40))
        draw.arc((108 * s, 18 * s, 148 * s, 50 * s), 0, 180, fill=(120, 20, 40), width=max(1, round(3 * s)))
        for y in range(60, 220, 24):  # stripes
            draw.line([(82 * s, y * s), (174 * s, y * s)], fill=(245, 235, 220), width=max(1, round(6 * s)))
    elif kind == "skirt":
        draw.polygon([(96 * s, 40 * s), (160 * s, 40 * s), (210 * s, 220 * s), (46 * s, 220 * s)],
                     fill=(30, 70, 160), outline=(10, 30, 90))
        draw.rectangle((96 * s, 34 * s, 160 * s, 48 * s), fill=(10, 30, 90))
    else:
        raise ValueError(f"unknown garment drawing {kind!r}")
    return image


def build_assets(out_dir: Path, force: bool = False) -> dict[str, Path]:
    from PIL import Image, ImageDraw

    from service.conditioning.pose import PRESETS, render_pose

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "garment": out_dir / "garment-tshirt.png",
        "garment_bottom": out_dir / "garment-skirt.png",
        "pose": out_dir / "pose-front.png",
        "mask": out_dir / "mask-torso.png",
        "person_mask": out_dir / "mask-person.png",
    }
    if not force and all(path.is_file() for path in paths.values()):
        return paths
    draw_garment("top").save(paths["garment"])
    draw_garment("skirt").save(paths["garment_bottom"])
    render_pose(PRESETS["front"], IMAGE_SIZE, IMAGE_SIZE).save(paths["pose"])
    size = IMAGE_SIZE
    torso = Image.new("L", (size, size), 0)
    ImageDraw.Draw(torso).rectangle((round(0.34 * size), round(0.20 * size), round(0.66 * size), round(0.56 * size)), fill=255)
    torso.save(paths["mask"])
    person = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(person)
    draw.ellipse((round(0.42 * size), round(0.06 * size), round(0.58 * size), round(0.20 * size)), fill=255)  # head
    draw.rounded_rectangle((round(0.33 * size), round(0.19 * size), round(0.67 * size), round(0.93 * size)),
                           radius=round(0.08 * size), fill=255)  # body
    person.save(paths["person_mask"])
    return paths


def build_conditioning(home: Path, pipeline_dir: Path, force: bool = False) -> dict[str, Path]:
    """Write the demo conditioning models and assets under `home/demo/`; returns their paths:
    ip_adapter (file), image_encoder, pose_controlnet, inpaint_model (dirs) and the assets
    garment, garment_bottom, pose, mask, person_mask (PNG files)."""
    demo = Path(home).resolve() / "demo"
    paths = {
        "ip_adapter": demo / "ip_adapter" / "ip-adapter-plus.safetensors",
        "image_encoder": demo / "ip_adapter" / "image_encoder",
        "pose_controlnet": demo / "pose_controlnet",
        "inpaint_model": demo / "inpaint",
    }
    marker = demo / DONE_MARKER
    if marker.exists() and not force:
        return paths | build_assets(demo / "assets")
    for name in ("ip_adapter", "pose_controlnet", "inpaint"):
        shutil.rmtree(demo / name, ignore_errors=True)
    build_ip_adapter(Path(pipeline_dir), demo / "ip_adapter")
    build_pose_controlnet(Path(pipeline_dir), paths["pose_controlnet"])
    build_inpaint_unet(Path(pipeline_dir), paths["inpaint_model"])
    assets = build_assets(demo / "assets", force=True)
    marker.write_text("ok\n")
    return paths | assets
