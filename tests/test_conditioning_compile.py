"""Under torch.compile (regional, as the compile backend does it; aot_eager on the CPU), a new
garment, strength, outfit, pose, edit or twin never recompiles once each kind was warmed up,
and compiled pictures equal eager ones."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from service.conditioning import PRESETS, Conditioning, Edit, Garment, Pose, render_pose
from tests.conditioning_support import SIZE, build_rig


@pytest.fixture(scope="module")
def rig(demo_home, tmp_path_factory):
    torch._dynamo.reset()  # graphs other modules compiled are theirs: start and leave clean
    yield build_rig(demo_home, tmp_path_factory.getbasetemp() / "conditioning-home")
    torch._dynamo.reset()


def garment(rig, name, category, strength, key):
    return Garment(key * 64, rig.asset(name), category, strength)


def pose(name):
    return Pose(render_pose(PRESETS[name], SIZE, SIZE), PRESETS[name])


def test_new_garments_poses_and_edits_do_not_recompile(rig):
    warmups = rig.models.warmup_conditionings(SIZE, SIZE)  # text, pose, edit: no garment among them
    assert [c.kind for c in warmups] == ["text", "pose", "edit"]
    shirt = Conditioning(garments=(garment(rig, "garment", "tops", 0.8, "a"),), pose=pose("front"))
    eager = [rig.latents(cond, twin=rig.twin)[0] for cond in (*warmups, shirt)]

    for unet in (rig.pipe.unet, *rig.models.extra_unets()):
        unet.compile_repeated_blocks(fullgraph=True, dynamic=False, backend="aot_eager")
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    compiled = [rig.latents(cond, twin=rig.twin)[0] for cond in warmups]  # warm-up: one call per kind
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > graphs  # the blocks really were compiled

    skirt = garment(rig, "garment_bottom", "bottoms", 0.5, "b")
    new = [
        Conditioning(garments=(skirt,)),  # the first garment ever, at a new strength
        Conditioning(garments=(garment(rig, "garment", "tops", 0.6, "a"), skirt)),  # an outfit: two regions
        Conditioning(pose=pose("seated")),  # a new pose
        Conditioning(garments=(skirt,), pose=pose("walking")),
        Conditioning(edit=Edit(Image.new("RGB", (SIZE, SIZE), (20, 90, 40)), rig.asset("person_mask"), invert=True),
                     garments=(skirt,)),  # a new edit, with a garment
        Conditioning(),
    ]
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled.append(rig.latents(shirt, twin=rig.twin)[0])
        for index, cond in enumerate(new):  # twins switch in and out too
            latents, plan = rig.latents(cond, twin=rig.twin if index % 2 else None)
            assert torch.isfinite(latents).all(), plan.kind
    for want, got in zip(eager, compiled):  # compiled pictures are eager ones
        assert torch.allclose(got, want, atol=1e-4)
