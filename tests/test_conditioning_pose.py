"""Poses: presets, keypoint validation, and our OpenPose renderer's limbs and colours (pixels)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from service.conditioning import PRESETS, preset, render_pose, validate_keypoints
from service.conditioning.pose import COLORS, LIMBS, NUM_KEYPOINTS
from service.errors import InvalidRequest

SIZE = 512  # the reference size: stick half-width 4, joint radius 4


def shade(color):
    return tuple(int(c * 0.6) for c in color)


def at(image: np.ndarray, x: float, y: float) -> tuple[int, ...]:
    return tuple(int(v) for v in image[int(round(y)), int(round(x))])


def test_presets_are_valid_coco18_and_distinct():
    assert set(PRESETS) >= {"front", "three-quarter", "walking", "back", "seated"}
    for name, points in PRESETS.items():
        assert validate_keypoints([list(p) if p else None for p in points]) == points, name
    assert len({points for points in PRESETS.values()}) == len(PRESETS)
    # Seen from behind, the body's right side is on the image's right and the face is hidden.
    back, front = PRESETS["back"], PRESETS["front"]
    assert back[2][0] > back[5][0] and front[2][0] < front[5][0]
    assert back[0] is None and back[14] is None and back[15] is None


@pytest.mark.parametrize("points, field", [
    ([[0.5, 0.5]] * 17, "pose.keypoints"),
    ("front", "pose.keypoints"),
    ([[0.5, 0.5]] * 17 + [[1.2, 0.5]], "pose.keypoints[17]"),
    ([[0.5, float("nan")]] + [None] * 17, "pose.keypoints[0]"),
    ([[True, 0.5]] + [[0.5, 0.5]] * 17, "pose.keypoints[0]"),
    ([[0.5, 0.5, 0.5]] + [[0.5, 0.5]] * 17, "pose.keypoints[0]"),
    ([["0.5", 0.5]] + [[0.5, 0.5]] * 17, "pose.keypoints[0]"),
    ([[0.5, 0.5]] + [None] * 17, "pose.keypoints"),  # one visible point draws nothing
])  # fmt: skip
def test_bad_keypoints_are_refused_with_the_field(points, field):
    with pytest.raises(InvalidRequest) as info:
        validate_keypoints(points)
    assert info.value.field == field and info.value.status == 422


def test_unknown_preset_is_refused():
    with pytest.raises(InvalidRequest) as info:
        preset("handstand")
    assert info.value.field == "pose.preset" and "front" in info.value.message


@pytest.mark.parametrize("index", range(len(LIMBS)))
def test_each_limb_is_drawn_between_its_joints_in_its_colour(index):
    a, b = LIMBS[index]
    points = [None] * NUM_KEYPOINTS
    points[a], points[b] = (0.30, 0.30), (0.62, 0.70)  # a long diagonal limb
    image = np.asarray(render_pose(points, SIZE, SIZE))
    (x0, y0), (x1, y1) = (0.30 * SIZE, 0.30 * SIZE), (0.62 * SIZE, 0.70 * SIZE)
    for t in (0.25, 0.5, 0.75):  # along the limb: the limb's colour at 60 %
        assert at(image, x0 + t * (x1 - x0), y0 + t * (y1 - y0)) == shade(COLORS[index])
    assert at(image, x0, y0) == COLORS[a] and at(image, x1, y1) == COLORS[b]  # joints at full colour
    # Stick half-width 4 px at 512 px: 8 px across the limb is background.
    length = math.hypot(x1 - x0, y1 - y0)
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    assert at(image, mx + 8 * nx, my + 8 * ny) == (0, 0, 0)
    assert at(image, 5, 5) == (0, 0, 0)
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert colours == {(0, 0, 0), shade(COLORS[index]), COLORS[a], COLORS[b]}


def test_a_full_pose_shows_every_limb_and_joint_colour():
    image = np.asarray(render_pose(PRESETS["front"], SIZE, SIZE))
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert {shade(c) for c in COLORS[: len(LIMBS)]} <= colours
    assert set(COLORS) <= colours
    # The neck-to-nose limb (blue) runs up the middle of the front pose ...
    assert at(image, 0.5 * SIZE, 0.18 * SIZE) == shade(COLORS[12])
    # ... and is absent from behind, where the nose is null.
    back = np.asarray(render_pose(PRESETS["back"], SIZE, SIZE))
    assert at(back, 0.5 * SIZE, 0.18 * SIZE) == (0, 0, 0)


def test_stick_width_scales_with_the_image():
    points = [None] * NUM_KEYPOINTS
    points[8], points[9] = (0.5, 0.2), (0.5, 0.8)  # right hip to right knee: vertical
    small = np.asarray(render_pose(points, 256, 256))
    large = np.asarray(render_pose(points, 1024, 1024))
    width = lambda img, n: int((img[n // 2, :, :].sum(axis=1) > 0).sum())  # noqa: E731
    assert width(small, 256) in range(2, 6) and width(large, 1024) in range(14, 20)
    assert small.shape == (256, 256, 3) and render_pose(points, 320, 256).size == (320, 256)


def test_the_torch_free_face_imports_no_torch():
    code = ("import sys, service.conditioning as c; c.validate_keypoints(c.PRESETS['front']); "
            "c.render_pose(c.PRESETS['front'], 64, 64); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
