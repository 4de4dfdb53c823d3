"""Garments, poses and edits on the tiny demo models: each changes the picture and stays
deterministic, cached garment embeddings equal diffusers' own image path, the twin and the
garment act together, and an edit keeps every pixel outside its mask."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from safetensors import safe_open

from service.conditioning import (
    PRESETS, Conditioning, ConditioningModels, ConditioningPaths, ConditioningUnavailable, Edit, Garment, Pose,
    render_pose,
)  # fmt: skip
from service.conditioning.garment import GarmentEmbeddingCache, garment_masks, region_mask
from service.errors import InvalidRequest, ModelLoadError, UnsafeWeights
from tests.conditioning_support import CPU, SIZE, build_rig, mean_diff, sha

VISIBLE = 1.0  # mean |difference| (0-255) above which two demo pictures differ visibly


@pytest.fixture(scope="module")
def rig(demo_home, tmp_path_factory):
    return build_rig(demo_home, tmp_path_factory.getbasetemp() / "conditioning-home")


def garment(rig, name="garment", category="tops", strength=1.0, key=None):
    image = rig.asset(name)
    return Garment(key or sha(rig.demo[name].read_bytes()), image, category, strength)


def pose(name):
    return Pose(render_pose(PRESETS[name], SIZE, SIZE), PRESETS[name])


# -- the demo weights -----------------------------------------------------------------------


def test_demo_weights_are_safetensors_in_the_expected_layouts(rig):
    demo = rig.demo
    files = [p for key in ("image_encoder", "pose_controlnet", "inpaint_model") for p in demo[key].rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    assert any(p.suffix == ".safetensors" for p in files)
    with safe_open(str(demo["ip_adapter"]), framework="pt") as fh:
        keys = set(fh.keys())
    assert any(k.startswith("image_proj.layers.0.0.to_kv") for k in keys) and "image_proj.latents" in keys
    ids = sorted({int(k.split(".")[1]) for k in keys if k.startswith("ip_adapter.")})
    assert ids == list(range(1, 2 * len(ids), 2))  # one pair per cross-attention: 1, 3, 5, ...
    assert all(f"ip_adapter.{i}.{w}.weight" in keys for i in ids for w in ("to_k_ip", "to_v_ip"))
    assert json.loads((demo["inpaint_model"] / "unet" / "config.json").read_text())["in_channels"] == 9
    assert json.loads((demo["pose_controlnet"] / "config.json").read_text())["_class_name"] == "ControlNetModel"
    for name in ("garment", "garment_bottom", "pose", "mask", "person_mask"):
        assert Image.open(demo[name]).size == (SIZE, SIZE), name


def test_a_second_build_keeps_the_weights(rig, demo_home):
    from builds.demo_conditioning import build_conditioning

    before = rig.demo["ip_adapter"].stat().st_mtime_ns
    again = build_conditioning(rig.demo["ip_adapter"].parents[2], demo_home / "demo" / "pipeline")
    assert again["ip_adapter"].stat().st_mtime_ns == before


# -- each kind changes the picture and is deterministic ------------------------------------


def test_garment_changes_the_image_and_is_deterministic(rig):
    plain = rig.image(None)
    first, second = rig.image(Conditioning(garments=(garment(rig),))), rig.image(Conditioning(garments=(garment(rig),)))
    assert np.array_equal(first, second)
    assert mean_diff(first, plain) > VISIBLE
    other = rig.image(Conditioning(garments=(garment(rig, "garment_bottom", "bottoms"),)))
    assert mean_diff(other, first) > VISIBLE  # another garment, another picture


def test_strength_scales_the_garment_and_zero_is_no_garment(rig):
    plain = rig.image(None)
    weak = rig.image(Conditioning(garments=(garment(rig, strength=0.3),)))
    strong = rig.image(Conditioning(garments=(garment(rig, strength=1.0),)))
    assert 0 < mean_diff(weak, plain) < mean_diff(strong, plain)
    assert np.array_equal(rig.image(Conditioning(garments=(garment(rig, strength=0.0),))), plain)


def test_pose_changes_the_image_and_is_deterministic(rig):
    plain = rig.image(None)
    front, again = rig.image(Conditioning(pose=pose("front"))), rig.image(Conditioning(pose=pose("front")))
    assert np.array_equal(front, again)
    assert mean_diff(front, plain) > VISIBLE
    assert mean_diff(rig.image(Conditioning(pose=pose("seated"))), front) > VISIBLE


def test_edit_changes_only_the_masked_area_and_is_deterministic(rig):
    source = Image.fromarray(rig.image(None, seed=3).astype(np.uint8))
    mask = rig.asset("mask")
    edit = Conditioning(edit=Edit(source, mask, blur_px=4))
    first, second = rig.image(edit), rig.image(edit)
    assert np.array_equal(first, second)
    src = np.asarray(source, dtype=np.float32)
    inside = np.asarray(mask.filter(ImageFilter.MinFilter(9))) > 0
    outside = np.asarray(mask.filter(ImageFilter.MaxFilter(2 * 4 + 1))) == 0  # farther than blur_px
    assert mean_diff(first[inside], src[inside]) > VISIBLE
    assert np.array_equal(first[outside], src[outside])  # bit for bit beyond the feather
    band = ~inside & ~outside
    assert np.abs(first[band] - src[band]).mean() < np.abs(first[inside] - src[inside]).mean()


def test_background_swap_keeps_the_person(rig):
    source = Image.fromarray(rig.image(None, seed=4).astype(np.uint8))
    person = rig.asset("person_mask")
    swapped = rig.image(Conditioning(edit=Edit(source, person, invert=True, blur_px=2)))
    src = np.asarray(source, dtype=np.float32)
    kept = np.asarray(person.filter(ImageFilter.MinFilter(5))) > 0
    background = np.asarray(person.filter(ImageFilter.MaxFilter(5))) == 0
    assert np.array_equal(swapped[kept], src[kept])
    assert mean_diff(swapped[background], src[background]) > VISIBLE


def test_garments_combine_with_pose_and_edit(rig):
    shirt = (garment(rig),)
    posed = rig.image(Conditioning(pose=pose("front")))
    assert mean_diff(rig.image(Conditioning(garments=shirt, pose=pose("front"))), posed) > VISIBLE
    source = Image.fromarray(rig.image(None, seed=3).astype(np.uint8))
    edit = Edit(source, rig.asset("mask"))
    inside = np.asarray(rig.asset("mask")) > 0  # only the repainted area can differ
    dressed, undressed = rig.image(Conditioning(garments=shirt, edit=edit)), rig.image(Conditioning(edit=edit))
    assert mean_diff(dressed[inside], undressed[inside]) > VISIBLE


# -- garment embeddings: cache and equivalence ---------------------------------------------


def test_cached_embeddings_give_the_same_image_as_the_garment_image(rig):
    cache = rig.models.garments.cache
    shirt = garment(rig, strength=0.7, key="c" * 64)
    cache.evict(shirt.sha256)
    misses = cache.misses
    encoded, _ = rig.latents(Conditioning(garments=(shirt,)))  # a miss: encoded from the image
    assert cache.misses == misses + 1 and cache.tiers_of(shirt.sha256) == ["device"]
    calls = []
    lazy = Garment(shirt.sha256, lambda: calls.append(1) or rig.asset("garment"), "tops", 0.7)
    cached, _ = rig.latents(Conditioning(garments=(lazy,)))  # a hit: the image is never loaded
    assert calls == [] and torch.equal(cached, encoded)
    # diffusers' own path: the image through `ip_adapter_image`, the strength as the scale.
    pipe = rig.pipe
    rig.slot.clear()
    pe, npe, ppe, nppe = pipe.encode_prompt(prompt="studio photo of a model", device=CPU, num_images_per_prompt=1,
                                            do_classifier_free_guidance=True)
    pipe.set_ip_adapter_scale(0.7)
    try:
        with torch.no_grad():
            reference = pipe(prompt_embeds=pe, negative_prompt_embeds=npe, pooled_prompt_embeds=ppe,
                             negative_pooled_prompt_embeds=nppe, ip_adapter_image=rig.asset("garment").convert("RGB"),
                             width=SIZE, height=SIZE, num_inference_steps=2, guidance_scale=5.0,
                             generator=[torch.Generator().manual_seed(0)], output_type="latent").images
    finally:
        pipe.set_ip_adapter_scale(1.0)
    assert torch.allclose(cached, reference, atol=1e-5)


def test_empty_slots_add_exactly_nothing(rig, demo_home):
    """With an IP-Adapter loaded, a request without garments renders what the base pipeline
    without any IP-Adapter renders."""
    from service.engine.loading import load_pipeline

    bare = load_pipeline(demo_home / "demo" / "pipeline", CPU, torch.float32)
    with torch.no_grad():
        embeds = bare.encode_prompt(prompt="studio photo of a model", device=CPU, num_images_per_prompt=1,
                                    do_classifier_free_guidance=True)
        want = bare(prompt_embeds=embeds[0], negative_prompt_embeds=embeds[1], pooled_prompt_embeds=embeds[2],
                    negative_pooled_prompt_embeds=embeds[3], width=SIZE, height=SIZE, num_inference_steps=2,
                    guidance_scale=5.0, generator=[torch.Generator().manual_seed(0)], output_type="latent").images
    got, plan = rig.latents(None)
    assert plan.components == () and torch.equal(got, want)


def test_twin_and_garment_act_together(rig):
    shirt = Conditioning(garments=(garment(rig),))
    both = rig.image(shirt, twin=rig.twin)
    garment_only = rig.image(shirt)
    twin_only = rig.image(None, twin=rig.twin)
    assert mean_diff(both, garment_only) > VISIBLE  # removing the twin changes the picture
    assert mean_diff(both, twin_only) > VISIBLE  # removing the garment changes it too


def test_an_edit_renders_the_twin_in_the_inpainting_unet(rig):
    source = Image.fromarray(rig.image(None, seed=3).astype(np.uint8))
    edit = Conditioning(edit=Edit(source, rig.asset("mask")))
    with_twin = rig.image(edit, twin=rig.twin)
    assert rig.models.inpainter.slot.owner == rig.twin.sha256
    without = rig.image(edit)
    assert rig.models.inpainter.slot.owner is None
    assert mean_diff(with_twin, without) > VISIBLE


def test_a_batch_gives_each_image_its_seed(rig):
    shirt = Conditioning(garments=(garment(rig),), pose=pose("walking"))
    batch = rig.images(shirt, seed=10, num_images=2)
    assert np.allclose(batch[1], rig.image(shirt, seed=11), atol=1.0)
    assert mean_diff(batch[0], batch[1]) > VISIBLE


# -- outfits: regional masks -------------------------------------------------------------


def test_a_top_and_a_bottom_get_their_own_regions(rig):
    top, skirt = garment(rig, strength=0.9), garment(rig, "garment_bottom", "bottoms", 0.5)
    masks = garment_masks([top, skirt], 4, SIZE, SIZE)
    assert masks.shape == (1, 4, SIZE // 8, SIZE // 8)
    rows_top, rows_bottom = masks[0, 0].amax(dim=1), masks[0, 1].amax(dim=1)
    assert rows_top[5] == pytest.approx(0.9) and rows_top[-2] == 0  # upper body only
    assert rows_bottom[-3] == pytest.approx(0.5) and rows_bottom[2] == 0  # lower body only
    assert masks[0, 2:].abs().sum() == 0  # unused slots
    # With keypoints the regions follow the body: the seated pose's knees are higher up.
    seated = garment_masks([top, skirt], 4, SIZE, SIZE, PRESETS["seated"])
    assert not torch.equal(seated, masks)
    assert np.asarray(region_mask("shoes", 64, 64, PRESETS["front"]))[:, 32].nonzero()[0].min() > 45
    outfit = rig.image(Conditioning(garments=(top, skirt)))
    assert mean_diff(outfit, rig.image(Conditioning(garments=(top,)))) > VISIBLE


# -- refusals -------------------------------------------------------------------------------


def test_conditioning_refusals(rig, demo_home):
    with pytest.raises(InvalidRequest) as info:
        Garment("d" * 64, rig.asset("garment"), "hats")  # swimwear and lingerie are categories: consent decides
    assert info.value.field == "garments.category"
    with pytest.raises(InvalidRequest):
        Garment("d" * 64, rig.asset("garment"), "tops", 1.5)
    with pytest.raises(InvalidRequest) as info:
        rig.plan(Conditioning(garments=tuple(garment(rig) for _ in range(5))))
    assert info.value.field == "garments"
    source = Image.new("RGB", (SIZE, SIZE))
    with pytest.raises(ConditioningUnavailable):
        rig.plan(Conditioning(pose=pose("front"), edit=Edit(source, rig.asset("mask"))))
    with pytest.raises(InvalidRequest) as info:  # a black mask repaints nothing
        rig.plan(Conditioning(edit=Edit(source, Image.new("L", (SIZE, SIZE)))))
    assert info.value.field == "edit.mask"
    for make, field in [(lambda: Edit(source, rig.asset("mask"), strength=0.0), "edit.strength"),
                        (lambda: Edit(source, rig.asset("mask"), blur_px=500), "edit.blur_px"),
                        (lambda: Pose(source, scale=3.0), "pose.scale")]:
        with pytest.raises(InvalidRequest) as info:
            make()
        assert info.value.field == field
    from service.conditioning.edit import Inpainter

    with pytest.raises(ConditioningUnavailable):  # a twin's edit on a UNet without a twin slot
        Inpainter(rig.models.inpainter.pipe, slot=None).follow(rig.twin)
    bare = ConditioningModels(rig.pipe)  # nothing configured
    for cond, field in [(Conditioning(garments=(garment(rig),)), "garments"), (Conditioning(pose=pose("front")), "pose"),
                        (Conditioning(edit=Edit(source, rig.asset("mask"))), "edit")]:
        with pytest.raises(ConditioningUnavailable) as info:
            bare.plan(cond, width=SIZE, height=SIZE, num_images=1, do_cfg=True)
        assert info.value.field == field and info.value.status == 422


def test_weights_that_do_not_fit_or_are_pickles_are_refused(rig, demo_home, tmp_path):
    from service.engine.loading import load_pipeline

    pipe = load_pipeline(demo_home / "demo" / "pipeline", CPU, torch.float32)
    pickle = tmp_path / "ip-adapter.bin"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(UnsafeWeights):
        ConditioningModels.load(pipe, ConditioningPaths(ip_adapter=pickle, image_encoder=rig.demo["image_encoder"]))
    with pytest.raises(ModelLoadError, match="9"):  # the base UNet has 4 input channels
        ConditioningModels.load(pipe, ConditioningPaths(inpaint_model=demo_home / "demo" / "pipeline"))
    with pytest.raises(ModelLoadError):
        ConditioningModels.load(pipe, ConditioningPaths(pose_controlnet=tmp_path))


def test_batch_keys_group_only_requests_that_can_share_a_call(rig):
    shirt, skirt = garment(rig), garment(rig, "garment_bottom", "bottoms")
    assert Conditioning().batch_key() == Conditioning().batch_key()
    assert Conditioning(garments=(shirt,)).batch_key() == Conditioning(garments=(garment(rig),)).batch_key()
    keys = {Conditioning().batch_key(), Conditioning(garments=(shirt,)).batch_key(),
            Conditioning(garments=(skirt,)).batch_key(), Conditioning(garments=(shirt, skirt)).batch_key(),
            Conditioning(garments=(garment(rig, strength=0.5),)).batch_key(), Conditioning(pose=pose("front")).batch_key(),
            Conditioning(pose=pose("seated")).batch_key(),
            Conditioning(pose=Pose(rig.asset("pose"))).batch_key()}  # an uploaded pose image: keyed by its pixels
    assert len(keys) == 8
    assert Conditioning(pose=Pose(rig.asset("pose"))).batch_key() == Conditioning(pose=Pose(rig.asset("pose"))).batch_key()
    assert Conditioning(edit=Edit(rig.asset("garment"), rig.asset("mask"))).batch_key() is None


def test_embedding_cache_is_an_lru_in_bytes_with_a_host_tier():
    cache = GarmentEmbeddingCache(CPU, device_bytes=3 * 400, host_bytes=10 * 400, host_tier=True)
    for index in range(4):
        cache.put(f"{index}", torch.full((100,), float(index)))  # 400 bytes each
    assert cache.tiers_of("0") == ["host"] and cache.tiers_of("3") == ["device", "host"]
    assert torch.equal(cache.get("0"), torch.zeros(100)) and cache.tiers_of("0") == ["device", "host"]
    assert cache.hits == {"device": 0, "host": 1}
    assert cache.get("1") is not None and cache.hits["host"] == 2  # "1" was evicted by "0"'s promotion
    assert cache.get("missing") is None and cache.misses == 1
    assert cache.evict("3") == ["device", "host"] and cache.get("3") is None
    stats = cache.stats()
    assert stats["device"]["bytes"] <= 3 * 400 and stats["host"]["entries"] == 3
    assert GarmentEmbeddingCache(CPU, 1000, 1000).stats().keys() == {"device", "hits", "misses"}  # CPU: one tier
