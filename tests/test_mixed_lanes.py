"""Mixed-twin batches through the multi-lane adapter slot: an item renders the same image in a
batch of four twins (and the base model) as alone, at two sizes; the lanes follow the rows
that classifier-free guidance duplicates; more twins than lanes is refused; and under the
compile backend no mix of twins and no lane change recompiles."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from builds.demo import LORA_RANK, build_twin_adapter, sha256_file
from service.config import Settings
from service.schemas import GenerateRequest
from tests.conftest import snapshot_registry

EXTRA_TWINS = {"demo-dora": 3, "demo-eli": 4}  # beside the demo's ava, ben and cleo
FOUR = ["demo-ava", "demo-ben", "demo-cleo", "demo-dora"]


@pytest.fixture(scope="module")
def lanes_home(demo_home, tmp_path_factory):
    """A copy of the demo home with five twins (the demo's three and two more)."""
    from service.registry import open_registry

    home = tmp_path_factory.mktemp("lanes") / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("cache", "registry.db*", "audit"))
    snapshot_registry(demo_home, home / "registry.db")
    settings = Settings.from_env({"ATELIER_HOME": str(home)})
    registry = open_registry(settings.db_url)
    for twin_id, index in EXTRA_TWINS.items():
        adapter = settings.adapters_dir / f"{twin_id}.safetensors"
        build_twin_adapter(home / "demo" / "pipeline", index, adapter)
        registry.put_twin(twin_id, display_name=twin_id, adapter_key=adapter.name,
                          adapter_sha256=sha256_file(adapter), rank=LORA_RANK)
    return home


def make_engine(home, **env):
    from service.engine import Engine
    from service.registry import open_registry

    settings = Settings.from_env({"ATELIER_HOME": str(home), "ATELIER_WARMUP": "0", **env})
    return Engine.from_settings(settings, open_registry(settings.db_url))


@pytest.fixture(scope="module")
def eager(lanes_home):
    return make_engine(lanes_home)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def request(twin_id, size, seed=21, images=1, prompt="studio photo, linen dress"):
    return GenerateRequest(twin_id=twin_id, prompt=prompt, width=size, height=size, steps=2, seed=seed,
                           num_images=images, output_format="png")


@pytest.mark.parametrize("size", [256, 320])
def test_an_item_renders_the_same_image_in_a_mixed_four_twin_batch_as_alone(eager, size):
    # The same prompt and seed for every twin: a row that read another row's lane (or a CFG
    # half routed differently from its other half) would render another twin's picture.
    items = [request(t, size) for t in FOUR] + [request(None, size), request("demo-ava", size, seed=5, images=2)]
    batch = eager.generate_batch([(r, r.seed, f"g{i}") for i, r in enumerate(items)])
    assert [r.twin_id for r in batch] == [r.twin_id for r in items]
    for got, req in zip(batch, items):
        alone = eager.generate(req)
        assert got.adapter_sha256 == alone.adapter_sha256
        assert len(got.images) == len(alone.images) == req.num_images
        for mixed_image, alone_image in zip(got.images, alone.images):
            diff = np.abs(pixels(mixed_image.data) - pixels(alone_image.data)).max()
            assert diff <= 1, (req.twin_id, req.seed, mixed_image.index, diff)  # <= 1/255 after decoding
    # and the twins do differ (so the equalities above say something)
    firsts = [pixels(r.images[0].data) for r in batch[:5]]
    for i in range(5):
        for j in range(i + 1, 5):
            assert np.abs(firsts[i] - firsts[j]).mean() > 2, (i, j)


def test_more_distinct_twins_than_lanes_are_refused_and_no_guidance_keeps_rows_apart(eager):
    five = FOUR + ["demo-eli"]
    with pytest.raises(ValueError, match="at most 4 distinct twins"):
        eager.generate_batch([(request(t, 256), 1, f"g{i}") for i, t in enumerate(five)])
    # guidance 1: no CFG, the UNet batch is the image rows once
    items = [request(t, 256).model_copy(update={"guidance_scale": 1.0}) for t in ("demo-eli", "demo-ben")]
    batch = eager.generate_batch([(r, r.seed, f"n{i}") for i, r in enumerate(items)])
    for got, req in zip(batch, items):
        assert np.abs(pixels(got.images[0].data) - pixels(eager.generate(req).images[0].data)).max() <= 1


def test_a_dropped_twin_leaves_every_lane(eager):
    eager.generate_batch([(request(t, 256), 1, f"d{i}") for i, t in enumerate(FOUR)])
    sha = eager.twins.catalog.get("demo-cleo").sha256
    assert sha in eager.twins.slot.lane_owners
    assert "slot" in eager.drop_adapter(sha)
    assert sha not in eager.twins.slot.lane_owners


def test_mixes_of_twins_and_lane_changes_never_recompile_under_the_compile_backend(lanes_home):
    import torch._dynamo

    torch._dynamo.reset()
    compiled = make_engine(lanes_home, ATELIER_BACKEND="compile", ATELIER_COMPILE_COMPILER="aot_eager")
    try:
        def run(twins, seed=3):
            return compiled.generate_batch([(request(t, 256, seed=seed), seed, f"c{i}") for i, t in enumerate(twins)])

        run(["demo-ava", "demo-ben", "demo-cleo", "demo-dora"])  # compiles for this shape
        mixes = [
            ["demo-dora", None, "demo-ava", "demo-ava"],
            ["demo-eli", "demo-ben", "demo-eli", None],  # eli takes a lane another twin held
            ["demo-ben", "demo-ben", "demo-ben", "demo-ben"],  # one twin: lane 0, every row
            [None, None, None, None],
            ["demo-cleo", "demo-dora", "demo-eli", "demo-ava"],
        ]
        with torch._dynamo.config.patch(error_on_recompile=True):
            outputs = [run(mix) for mix in mixes]
        assert compiled.backend.eager_calls == 0  # every UNet call ran compiled
        ava = [r for out in outputs for r in out if r.twin_id == "demo-ava"]
        assert ava[0].adapter_sha256 == compiled.twins.catalog.get("demo-ava").sha256
        # the same twin and seed renders the same picture whatever its batch-mates and lane
        assert np.abs(pixels(ava[0].images[0].data) - pixels(ava[-1].images[0].data)).max() <= 1
    finally:
        torch._dynamo.reset()


def test_a_backend_that_switches_twins_itself_refuses_a_mixed_batch(eager):
    """TensorRT refits one twin into its engine: a mixed batch is refused there, one twin is switched."""
    from tests.test_backend_adapters import Refitting

    backend, slot = Refitting(), eager.twins.slot
    ava, ben = (eager.twins.cache.acquire(eager.twins.catalog.get(t))[0] for t in ("demo-ava", "demo-ben"))
    with pytest.raises(ValueError, match="one twin per batch"):
        backend.use_adapters(slot, [ava, ben], True)
    assert backend.switches == []
    backend.use_adapters(slot, [ava, ava], True)
    assert backend.switches == [ava.sha256] and backend.adapter_in_use(slot) == ava.sha256


def test_a_base_model_render_after_a_mixed_batch_reads_no_twin_lane(eager):
    """The rows a mixed batch routed to twins' lanes never leak into the next call's rows."""
    base = request(None, 256, seed=8)
    before = pixels(eager.generate(base).images[0].data)
    eager.generate_batch([(request(t, 256, seed=8), 8, f"m{i}") for i, t in enumerate(FOUR)])
    assert np.abs(pixels(eager.generate(base).images[0].data) - before).max() <= 1
    one = request("demo-ben", 256, seed=8)
    alone = pixels(eager.generate(one).images[0].data)
    eager.generate_batch([(request(t, 256, seed=8), 8, f"k{i}") for i, t in enumerate(reversed(FOUR))])
    assert np.abs(pixels(eager.generate(one).images[0].data) - alone).max() <= 1
