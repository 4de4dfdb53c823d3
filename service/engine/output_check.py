"""Is a decoded render an image at all? Checked before anything is marked, signed or delivered.

Owns: refusing a render whose decoded pixels are not finite (NaN or Inf: a broken adapter or
model; Pillow would turn them into a black picture) or blank (every pixel of an image the
same colour) where its input was not blank. Such a render fails as `render_failed`: the
gateway records it as a failure, delivers nothing and counts no usage. Must never look at a
request or at the marks.
"""

from __future__ import annotations

import torch

from service.errors import AtelierError

# Decoded pixels live in [-1, 1]; two 8-bit levels of range over a whole image is blank.
BLANK_SPAN = 4.0 / 255.0


class RenderFailed(AtelierError):
    status = 500
    code = "render_failed"


def check_pixels(pixels: torch.Tensor, *, input_blank: bool = False) -> None:
    """Raise RenderFailed when any image of the batch (N, C, H, W) is non-finite, or blank while
    its input (noise, or a source photo that is not blank itself) was not."""
    if not bool(torch.isfinite(pixels).all()):
        raise RenderFailed("the render produced non-finite pixels (a broken adapter or model); nothing was delivered")
    if input_blank:
        return
    flat = pixels.detach().float().flatten(1)
    span = flat.amax(dim=1) - flat.amin(dim=1)
    if bool((span < BLANK_SPAN).any()):
        raise RenderFailed("the render came out blank (one colour); nothing was delivered")
