"""Poses: built-in presets, validation of user keypoints, and drawing them as a control image.

Owns: the OpenPose COCO-18 keypoint order, the five built-in presets (normalised [x, y] in
0..1, x to the right, y down, for a full-body portrait frame), checking keypoints a caller
sends, and our own renderer that draws keypoints the way OpenPose ControlNets were trained
to see them (limbs as ellipses at 60 % of their colour, joints as full-colour dots, on
black). No annotator model is ever downloaded or run: a pose image a caller uploads is used
as the control image as it is. Must never import torch or diffusers (the gateway validates
poses with it).
"""

from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw

from service.errors import InvalidRequest

Point = tuple[float, float] | None
Keypoints = tuple[Point, ...]

KEYPOINT_NAMES = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip
NUM_KEYPOINTS = len(KEYPOINT_NAMES)  # 18

# OpenPose's body limbs (0-based keypoint pairs) and colours, in the order of the reference
# implementation (`draw_bodypose`): limb i has colour COLORS[i]; keypoint k has COLORS[k].
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
LIMB_SHADE = 0.6  # limbs are drawn at 60 % of their colour, joints at full colour
REFERENCE_SIZE = 512  # stick width 4 and joint radius 4 at 512 px, scaled with the image

_FRONT: Keypoints = (
    (0.50, 0.140), (0.50, 0.220),
    (0.40, 0.230), (0.37, 0.370), (0.36, 0.500),
    (0.60, 0.230), (0.63, 0.370), (0.64, 0.500),
    (0.44, 0.520), (0.44, 0.700), (0.44, 0.880),
    (0.56, 0.520), (0.56, 0.700), (0.56, 0.880),
    (0.48, 0.125), (0.52, 0.125), (0.46, 0.135), (0.54, 0.135),
)  # fmt: skip


def _mirrored_sides(points: Keypoints) -> Keypoints:
    """Swap every right keypoint with its left one (the body seen from behind)."""
    pairs = {2: 5, 3: 6, 4: 7, 8: 11, 9: 12, 10: 13, 14: 15, 16: 17}
    pairs |= {v: k for k, v in pairs.items()}
    return tuple(points[pairs.get(i, i)] for i in range(NUM_KEYPOINTS))


_BACK = _mirrored_sides(_FRONT)
_BACK = (None,) + _BACK[1:14] + (None, None) + _BACK[16:]  # face hidden, ears seen

PRESETS: dict[str, Keypoints] = {
    "front": _FRONT,
    "three-quarter": (
        (0.470, 0.140), (0.50, 0.220),
        (0.43, 0.230), (0.41, 0.370), (0.42, 0.500),
        (0.58, 0.230), (0.60, 0.370), (0.59, 0.500),
        (0.46, 0.520), (0.45, 0.700), (0.45, 0.880),
        (0.55, 0.520), (0.56, 0.700), (0.57, 0.870),
        (0.455, 0.125), (0.49, 0.125), None, (0.53, 0.135),
    ),
    "walking": (
        (0.50, 0.140), (0.50, 0.220),
        (0.40, 0.230), (0.38, 0.360), (0.39, 0.480),
        (0.60, 0.230), (0.64, 0.370), (0.67, 0.480),
        (0.44, 0.520), (0.42, 0.690), (0.40, 0.870),
        (0.56, 0.520), (0.57, 0.700), (0.60, 0.890),
        (0.48, 0.125), (0.52, 0.125), (0.46, 0.135), (0.54, 0.135),
    ),
    "back": _BACK,
    "seated": (
        (0.50, 0.200), (0.50, 0.280),
        (0.40, 0.290), (0.37, 0.420), (0.42, 0.540),
        (0.60, 0.290), (0.63, 0.420), (0.58, 0.540),
        (0.44, 0.560), (0.40, 0.660), (0.41, 0.860),
        (0.56, 0.560), (0.60, 0.660), (0.59, 0.860),
        (0.48, 0.185), (0.52, 0.185), (0.46, 0.195), (0.54, 0.195),
    ),
}  # fmt: skip


def preset(name: str) -> Keypoints:
    """The keypoints of a built-in pose; an unknown name is a 422 on `pose.preset`."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidRequest(
            f"unknown pose preset {name!r}; presets: {', '.join(PRESETS)}", field="pose.preset"
        ) from None


def validate_keypoints(points: object, field: str = "pose.keypoints") -> Keypoints:
    """Check user keypoints: a list of 18 entries (OpenPose COCO-18 order), each [x, y] with
    both in 0..1, or null for a keypoint that is not visible. At least two must be visible."""
    if not isinstance(points, (list, tuple)) or len(points) != NUM_KEYPOINTS:
        raise InvalidRequest(
            f"keypoints must be a list of {NUM_KEYPOINTS} entries in OpenPose COCO-18 order "
            f"({', '.join(KEYPOINT_NAMES)}), each [x, y] in 0..1 or null", field=field
        )
    out: list[Point] = []
    for index, point in enumerate(points):
        if point is None:
            out.append(None)
            continue
        if (
            not isinstance(point, (list, tuple)) or len(point) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
        ):
            raise InvalidRequest(f"keypoint {index} ({KEYPOINT_NAMES[index]}) must be [x, y] or null", field=f"{field}[{index}]")
        x, y = float(point[0]), float(point[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):  # also refuses NaN
            raise InvalidRequest(
                f"keypoint {index} ({KEYPOINT_NAMES[index]}) is outside the image: coordinates are normalised to 0..1",
                field=f"{field}[{index}]",
            )
        out.append((x, y))
    if sum(p is not None for p in out) < 2:
        raise InvalidRequest("at least two keypoints must be visible (not null)", field=field)
    return tuple(out)


def _ellipse_polygon(p: tuple[float, float], q: tuple[float, float], half_width: float) -> list[tuple[float, float]]:
    """The outline of an ellipse with its long axis from p to q (what cv2.ellipse2Poly draws)."""
    cx, cy = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
    half_length = math.hypot(q[0] - p[0], q[1] - p[1]) / 2
    angle = math.atan2(q[1] - p[1], q[0] - p[0])
    cos, sin = math.cos(angle), math.sin(angle)
    outline = []
    for degree in range(0, 360, 6):
        t = math.radians(degree)
        ex, ey = half_length * math.cos(t), half_width * math.sin(t)
        outline.append((cx + ex * cos - ey * sin, cy + ex * sin + ey * cos))
    return outline


def render_pose(points: Sequence[Point], width: int, height: int) -> Image.Image:
    """Draw `points` (validated COCO-18 keypoints) into a black RGB control image."""
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    scale = min(width, height) / REFERENCE_SIZE
    stick = max(1.0, 4.0 * scale)
    radius = max(1.0, 4.0 * scale)
    pixel = [None if p is None else (p[0] * width, p[1] * height) for p in points]
    for (a, b), color in zip(LIMBS, COLORS):
        if pixel[a] is None or pixel[b] is None:
            continue
        shade = tuple(int(c * LIMB_SHADE) for c in color)
        draw.polygon(_ellipse_polygon(pixel[a], pixel[b], stick), fill=shade)
    for point, color in zip(pixel, COLORS):
        if point is None:
            continue
        x, y = point
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)
    return canvas
