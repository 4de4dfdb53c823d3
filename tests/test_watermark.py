"""The invisible watermark: round trips, edits it must survive, ECC, and inputs that must not raise."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from service.provenance import ecc
from service.provenance.watermark import FALSE_POSITIVE_LOG2, MIN_EMBED_SIDE, WatermarkReading, detect, embed

PAYLOAD = 0xD1CE_5EED_0BAD_F00D


def photo(seed: int, width: int, height: int) -> Image.Image:
    """A small deterministic photo-like image: gradient, shapes, blotches, blur, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    img = rng.uniform(30, 220, 3) * (1 - xx[..., None]) + rng.uniform(30, 220, 3) * xx[..., None]
    for _ in range(4):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        img = np.where((((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)[..., None], rng.uniform(0, 255, 3), img)
    img += np.kron(rng.normal(0, 6, (height // 8 + 1, width // 8 + 1)), np.ones((8, 8)))[:height, :width, None]
    image = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").filter(ImageFilter.GaussianBlur(1))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 1.5, (height, width, 3))
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "RGB")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def marked_512() -> Image.Image:
    return embed(photo(1, 512, 512), PAYLOAD)


@pytest.mark.parametrize("size", [(256, 256), (1024, 1024), (640, 384)])
def test_round_trip(size):
    source = photo(sum(size), *size)
    marked = embed(source, PAYLOAD)
    assert marked.mode == "RGB" and marked.size == source.size
    assert psnr(source, marked) >= 38.0
    reading = detect(marked)
    assert reading.found and reading.payload == PAYLOAD
    assert reading.bit_errors_corrected is not None and 0 <= reading.bit_errors_corrected <= ecc.payload_code().t
    assert reading.confidence > 0.3


def test_payload_extremes_round_trip():
    source = photo(5, 384, 256)
    for payload in (0, 2**64 - 1):
        assert detect(embed(source, payload)).payload == payload


def test_unmarked_images_are_not_found():
    images = [photo(100 + i, 512, 384) for i in range(4)]
    images.append(Image.new("RGB", (512, 512), (128, 128, 128)))
    noise = np.random.default_rng(7).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    images.append(Image.fromarray(noise, "RGB"))
    for image in images:
        reading = detect(image)
        assert reading == WatermarkReading(False, None, None, 0.0)


def test_another_payload_is_not_read_as_this_one():
    first = detect(embed(photo(9, 384, 384), 1))
    second = detect(embed(photo(9, 384, 384), 2))
    assert (first.payload, second.payload) == (1, 2)


def test_false_positive_bound_is_astronomically_small():
    assert FALSE_POSITIVE_LOG2 < -60


def test_ecc_corrects_errors_up_to_capacity():
    code = ecc.payload_code()
    assert (code.n, code.k, code.t) == (255, 91, 25)
    rng = np.random.default_rng(11)
    for k in (0, 1, 7, 18, code.t):
        payload = int.from_bytes(rng.bytes(8), "big")
        word = ecc.encode_payload(payload)
        flipped = word.copy()
        flipped[rng.choice(code.n, k, replace=False)] ^= 1
        assert np.count_nonzero(flipped != word) == k
        assert ecc.decode_payload(flipped) == (payload, k)


def test_ecc_too_many_errors_is_not_found_never_a_wrong_payload():
    rng = np.random.default_rng(12)
    word = ecc.encode_payload(PAYLOAD)
    for k in [30, 40, 60, 90, 127] * 8:
        flipped = word.copy()
        flipped[rng.choice(word.size, k, replace=False)] ^= 1
        assert ecc.decode_payload(flipped) is None
    for _ in range(40):  # random words (what an unmarked image yields)
        assert ecc.decode_payload(rng.integers(0, 2, word.size)) is None


def test_bch_rejects_word_with_valid_bch_but_wrong_check():
    code = ecc.payload_code()
    message = np.zeros(code.k, dtype=np.uint8)
    message[:64] = 1  # id 2**64-1 with an all-zero check field: a BCH codeword, not a valid frame
    word = code.encode(message)
    assert code.decode(word)[1] == 0
    assert ecc.decode_payload(word) is None


def test_survives_jpeg_q75(marked_512):
    reading = detect(jpeg(marked_512, 75))
    assert reading.found and reading.payload == PAYLOAD


def test_survives_90_percent_centre_crop(marked_512):
    w, h = marked_512.size
    cw, ch = round(w * 0.9**0.5), round(h * 0.9**0.5)
    left, top = (w - cw) // 2, (h - ch) // 2
    cropped = marked_512.crop((left, top, left + cw, top + ch))
    assert (left % 128, top % 128) != (0, 0)  # the tile grid really is shifted
    reading = detect(cropped)
    assert reading.found and reading.payload == PAYLOAD


def test_a_read_back_at_its_own_scale_does_not_search_other_scales(marked_512):
    """The renderer reads back a file it has just written at its own scale (rescaled=False);
    only a full detection searches the scales a resized copy could be at."""
    assert detect(marked_512, rescaled=False).payload == PAYLOAD
    resized = marked_512.resize((680, 680), Image.LANCZOS)
    assert detect(resized).payload == PAYLOAD
    assert not detect(resized, rescaled=False).found


def test_other_modes_of_a_marked_image(marked_512):
    assert detect(marked_512.convert("RGBA")).payload == PAYLOAD
    assert detect(marked_512.convert("L")).payload == PAYLOAD


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (1, 1)),
        Image.new("RGB", (7, 13), (255, 0, 0)),
        Image.new("RGBA", (64, 48), (1, 2, 3, 0)),
        Image.new("L", (200, 33), 255),
        Image.new("L", (129, 700)),
        Image.new("P", (300, 300)),
        Image.new("RGB", (1, 2000)),
    ],
    ids=lambda im: f"{im.mode}-{im.width}x{im.height}",
)
def test_tiny_and_odd_images_do_not_raise(image):
    reading = detect(image)
    assert reading.found is False and reading.payload is None


@pytest.mark.parametrize("payload", [-1, 2**64, 2**70, 1.0, True, "7"])
def test_payload_out_of_range_raises(payload):
    with pytest.raises(ValueError):
        embed(photo(2, 256, 256), payload)


def test_image_below_minimum_raises():
    with pytest.raises(ValueError):
        embed(photo(3, MIN_EMBED_SIDE - 8, 512), 1)
    embed(photo(3, MIN_EMBED_SIDE, MIN_EMBED_SIDE), 1)  # the minimum itself is accepted
