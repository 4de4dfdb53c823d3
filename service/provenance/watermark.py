"""Invisible watermark carrying a 64-bit random id in an image's luminance.

Owns: `embed(image, payload)` and `detect(image) -> WatermarkReading`, and the scheme between
them. The id is framed and protected by `service.provenance.ecc` (64-bit id + 27-bit check ->
BCH(255, 91, t=25)); the 255 coded bits, each repeated 3 times, and 259 synchronisation cells
are laid out (key-fixed pseudo-random permutation) on a 32x32 grid of cells. That grid is
Fourier-interpolated into a band-limited 128x128 px tile (all energy below 1/8 cycle/px, so it
survives 2x downscaling and JPEG), and the tile is repeated over the whole image and added to
luminance (same delta on R, G and B), weighted by a mild texture mask, at a strength that
keeps PSNR near 40 dB.

Detection whitens luminance (minus a blur, divided by local contrast), folds every 128x128
tile onto one (so a crop just cyclically shifts the tile), finds the shift by FFT correlation
with the sync cells, averages the 3 repeats of each bit (soft decision), and hands hard bits
to the BCH decoder. Scale 1 is tried first; otherwise the tile period is estimated from the
residual's autocorrelation and the image is resampled to the native scale. A result is
reported only when BCH decoding succeeds AND the 27-bit check matches, so a wrong id comes
out with probability below 2^-70 per image (`FALSE_POSITIVE_LOG2`, a union bound over
`MAX_TRIALS` decode attempts, each 2^-76.4 for a random word); everything else is
found=False.

Must never: carry personal data (the payload is an opaque random id chosen by the caller),
raise from `detect` on any image of at least 1x1 px, or return an id whose check failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from service.provenance import ecc

CELL = 4  # px per cell side at native scale
GRID = 32  # cells per tile side
TILE = CELL * GRID  # 128 px tile period
REPEATS = 3
MIN_EMBED_SIDE = TILE  # embed needs one whole tile; robustness needs several (>= 256 px)
MIN_DETECT_SIDE = 32
TARGET_PSNR_DB = 40.0
_KEY = 0x61746C6965722D77  # fixes the cell layout, sync signs and scrambling ("atelier-w")
_SYNC_PEAKS = 3  # candidate shifts decoded per scale
MAX_TRIALS = 64  # upper bound on decode attempts per detect() call
FALSE_POSITIVE_LOG2 = ecc.false_decode_log2(MAX_TRIALS)


@dataclass(frozen=True)
class WatermarkReading:
    found: bool
    payload: int | None  # the 64-bit id when found
    bit_errors_corrected: int | None
    # Mean soft agreement between the received cells and the decoded codeword, in [-1, 1]
    # (1 = every cell clean, ~0 = noise). Informative only: `found` is decided by BCH + check.
    confidence: float


NOT_FOUND = WatermarkReading(False, None, None, 0.0)


@dataclass(frozen=True)
class _Layout:
    data_cells: np.ndarray  # (255, REPEATS) flat cell indices of each coded bit's copies
    sync_cells: np.ndarray  # flat indices of sync cells
    sync_signs: np.ndarray  # +-1 per sync cell
    scramble: np.ndarray  # (255, REPEATS) +-1 multiplied onto data cells
    sync_spectrum: np.ndarray  # conj FFT of the band-limited sync pattern, TILE x TILE


@lru_cache(maxsize=1)
def _layout() -> _Layout:
    rng = np.random.default_rng(_KEY)
    n = ecc.payload_code().n
    order = rng.permutation(GRID * GRID)
    data = order[: n * REPEATS].reshape(REPEATS, n).T.copy()
    sync = order[n * REPEATS :]
    signs = rng.choice(np.array([-1.0, 1.0]), size=sync.size)
    scramble = rng.choice(np.array([-1.0, 1.0]), size=(n, REPEATS))
    cells = np.zeros(GRID * GRID)
    cells[sync] = signs
    sync_tile = _upsample(cells.reshape(GRID, GRID))
    return _Layout(data, sync, signs, scramble, np.conj(np.fft.fft2(sync_tile)))


def _band_index() -> np.ndarray:
    """Indices of the TILE-point DFT that carry the GRID-point band (Nyquist dropped)."""
    half = GRID // 2
    return np.concatenate([np.arange(0, half), np.arange(TILE - half + 1, TILE)])


def _grid_index() -> np.ndarray:
    half = GRID // 2
    return np.concatenate([np.arange(0, half), np.arange(GRID - half + 1, GRID)])


def _upsample(cells: np.ndarray) -> np.ndarray:
    """GRIDxGRID cell values -> band-limited periodic TILExTILE pattern through the cell values."""
    spectrum = np.fft.fft2(cells)
    big = np.zeros((TILE, TILE), dtype=complex)
    b, g = _band_index(), _grid_index()
    big[np.ix_(b, b)] = spectrum[np.ix_(g, g)]
    return np.real(np.fft.ifft2(big)) * (TILE / GRID) ** 2


def _read_cells(folded_spectrum: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Cell values of a folded tile whose pattern starts at `shift` (px, may be fractional)."""
    b, g = _band_index(), _grid_index()
    freqs = np.fft.fftfreq(TILE)[b]
    ramp = np.exp(2j * np.pi * freqs * shift[0])[:, None] * np.exp(2j * np.pi * freqs * shift[1])[None, :]
    small = np.zeros((GRID, GRID), dtype=complex)
    small[np.ix_(g, g)] = folded_spectrum[np.ix_(b, b)] * ramp
    return np.real(np.fft.ifft2(small)).ravel()


@lru_cache(maxsize=256)
def _tile_for(payload: int) -> np.ndarray:
    layout = _layout()
    bits = ecc.encode_payload(payload).astype(float) * 2.0 - 1.0  # 1 -> +1, 0 -> -1
    cells = np.zeros(GRID * GRID)
    cells[layout.sync_cells] = layout.sync_signs
    cells[layout.data_cells] = bits[:, None] * layout.scramble
    tile = _upsample(cells.reshape(GRID, GRID))
    tile /= np.sqrt(np.mean(tile**2))
    tile.setflags(write=False)
    return tile


def _box_blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges handled by replication."""
    if radius <= 0:
        return a
    size = 2 * radius + 1
    out = np.pad(a, radius + 1, mode="edge")
    for axis in (0, 1):
        c = np.cumsum(out, axis=axis)
        if axis == 0:
            out = (c[size:] - c[:-size]) / size
        else:
            out = (c[:, size:] - c[:, :-size]) / size
    return out[: a.shape[0], : a.shape[1]] if out.shape != a.shape else out


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _texture_mask(luma: np.ndarray) -> np.ndarray:
    """>= 0.5 in flat areas, up to 1.5 in texture; mean square 1."""
    hp = luma - _box_blur(luma, 2)
    activity = np.sqrt(_box_blur(hp * hp, 4))
    mask = np.clip(0.5 + activity / 8.0, 0.5, 1.5)
    return mask / np.sqrt(np.mean(mask**2))


def embed(image: Image.Image, payload: int, psnr_db: float = TARGET_PSNR_DB) -> Image.Image:
    """Return a copy of `image` (RGB) carrying `payload` at about `psnr_db`; ValueError on bad input."""
    if not isinstance(payload, int) or isinstance(payload, bool) or not 0 <= payload < 1 << 64:
        raise ValueError("payload must be an int in [0, 2**64)")
    width, height = image.size
    if min(width, height) < MIN_EMBED_SIDE:
        raise ValueError(f"image must be at least {MIN_EMBED_SIDE}x{MIN_EMBED_SIDE} px, got {width}x{height}")
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    luma = _luma(rgb)
    tile = _tile_for(payload)
    reps = (-(-height // TILE), -(-width // TILE))
    pattern = np.tile(tile, reps)[:height, :width]
    delta = _strength(psnr_db) * _texture_mask(luma) * pattern
    out = np.clip(np.rint(rgb + delta[..., None]), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "RGB")


def _strength(psnr_db: float = TARGET_PSNR_DB) -> float:
    """RMS luminance delta giving `psnr_db` (rounding noise 1/12 included)."""
    mse = 255.0**2 / 10 ** (psnr_db / 10)
    return float(np.sqrt(max(mse - 1 / 12, 0.1)))


def _whiten(luma: np.ndarray) -> np.ndarray:
    hp = luma - _box_blur(luma, 3)
    local = np.sqrt(_box_blur(hp * hp, 8))
    return hp / (local + 1.0)


def _fold(residual: np.ndarray) -> np.ndarray:
    h, w = residual.shape
    ph, pw = -(-h // TILE) * TILE, -(-w // TILE) * TILE
    padded = np.zeros((ph, pw))
    padded[:h, :w] = residual
    return padded.reshape(ph // TILE, TILE, pw // TILE, TILE).sum(axis=(0, 2))


def _decode_residual(residual: np.ndarray) -> WatermarkReading | None:
    layout = _layout()
    spectrum = np.fft.fft2(_fold(residual))
    corr = np.real(np.fft.ifft2(spectrum * layout.sync_spectrum))
    flat = np.argsort(corr.ravel())[::-1]
    tried: list[tuple[int, int]] = []
    for idx in flat:
        dy, dx = divmod(int(idx), TILE)
        if any(min(abs(dy - y) % TILE, -abs(dy - y) % TILE) < CELL and min(abs(dx - x) % TILE, -abs(dx - x) % TILE) < CELL for y, x in tried):
            continue
        tried.append((dy, dx))
        reading = _decode_cells(_read_cells(spectrum, (dy, dx)), layout)
        if reading is not None:
            return reading
        if len(tried) >= _SYNC_PEAKS:
            break
    return None


def _decode_cells(cells: np.ndarray, layout: _Layout) -> WatermarkReading | None:
    soft = (cells[layout.data_cells] * layout.scramble).sum(axis=1)
    hard = (soft > 0).astype(np.uint8)
    decoded = ecc.decode_payload(hard)
    if decoded is None:
        return None
    payload, corrected = decoded
    expected = ecc.encode_payload(payload).astype(float) * 2.0 - 1.0
    values = cells[layout.data_cells] * layout.scramble
    scale = np.sqrt(np.mean(values**2)) or 1.0
    confidence = float(np.clip(np.mean(values * expected[:, None]) / scale, -1.0, 1.0))
    return WatermarkReading(True, payload, corrected, confidence)


def detect(image: Image.Image, *, rescaled: bool = True) -> WatermarkReading:
    """Look for a watermark; found=False unless an id decodes with a valid check. With
    `rescaled=False` only at the image's own scale: the renderer's read-back of a file it has
    just written, where a search over scales could only repeat the first reading."""
    width, height = image.size
    if min(width, height) < MIN_DETECT_SIDE:
        return NOT_FOUND
    if image.mode == "L":
        luma = np.asarray(image, dtype=np.float64)
    else:
        luma = _luma(np.asarray(image.convert("RGB"), dtype=np.float64))
    luma = _centre(luma, _MAX_ANALYSIS_SIDE)
    residual = _whiten(luma)
    reading = _decode_residual(residual)
    if reading is not None or not rescaled:
        return reading or NOT_FOUND
    for period in _period_candidates(residual):
        factor = TILE / period
        reading = _decode_residual(_whiten(_rescale(_centre(luma, _MAX_ANALYSIS_SIDE / factor), factor)))
        if reading is not None:
            return reading
    return NOT_FOUND


_MAX_RESCALES = 4
_MAX_ANALYSIS_SIDE = 1152  # detection looks at most at a centre square this big (9x9 tiles)


def _centre(a: np.ndarray, side: float) -> np.ndarray:
    side = max(int(side), TILE)
    h, w = a.shape
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return a[top : top + side, left : left + side]
_MIN_PERIOD, _MAX_PERIOD = 0.45 * TILE, 2.5 * TILE


def _lag_score(ac: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Autocorrelation summed over the four lag directions a square tile grid repeats along."""
    return ac[lags, 0] + ac[0, lags] + ac[lags, lags] + ac[lags, -lags]


_PEAK_WIDTH = 6  # px: the band-limited tile gives peaks this narrow; stripes give broad ones
# |spectrum|^1 rather than ^2: a half-whitened autocorrelation, so a few strong spectral lines
# (a striped fabric) cannot outweigh the thousands of weak lines of the tiled pattern.
_SPECTRAL_POWER = 1.0


def _period_candidates(residual: np.ndarray) -> list[float]:
    """Tile periods (px, fractional) suggested by sharp peaks of the residual's autocorrelation."""
    h, w = residual.shape
    limit = min(h, w) // 2
    if limit <= _MIN_PERIOD + _PEAK_WIDTH + 2:
        return []
    ac = np.fft.irfft2(np.abs(np.fft.rfft2(residual)) ** _SPECTRAL_POWER, s=(h, w))
    if not ac[0, 0] > 0:
        return []
    ac /= ac[0, 0]
    lags = np.arange(2, limit)
    score = np.zeros(limit)
    score[lags] = _lag_score(ac, lags)
    sharp = np.zeros(limit)
    inner = np.arange(_PEAK_WIDTH + 2, limit - _PEAK_WIDTH)
    sharp[inner] = score[inner] - 0.5 * (score[inner - _PEAK_WIDTH] + score[inner + _PEAK_WIDTH])
    lo, hi = int(np.ceil(_MIN_PERIOD)), min(int(_MAX_PERIOD), limit - _PEAK_WIDTH - 1)
    peaks = [p for p in range(lo, hi + 1) if sharp[p] >= sharp[p - 1] and sharp[p] > sharp[p + 1] and sharp[p] > 0]
    peaks.sort(key=lambda p: -sharp[p])
    periods: list[float] = []
    for p in peaks:
        # a strong peak may be a harmonic of the tile period: offer the fundamental first
        options = []
        for k in (4, 3, 2):
            q = int(round(p / k))
            if q >= lo and max(sharp[q - 1 : q + 2]) >= 0.5 * sharp[p]:
                options.append(q - 1 + int(np.argmax(sharp[q - 1 : q + 2])))
        for q in options + [p]:
            period = _refine_period(score, q, limit)
            if abs(period / TILE - 1) > 0.01 and all(abs(period / x - 1) > 0.01 for x in periods):
                periods.append(period)
        if len(periods) >= _MAX_RESCALES:
            break
    return periods[:_MAX_RESCALES]


def _refine_period(score: np.ndarray, p: int, limit: int) -> float:
    """Sub-pixel period from parabolic fits at the peak and its harmonics."""
    total, weight = 0.0, 0
    for k in range(1, 8):
        centre = int(round(k * p))
        if centre + 3 >= limit:
            break
        window = np.arange(centre - 2, centre + 3)
        i = int(window[np.argmax(score[window])])
        a, b, c = score[i - 1], score[i], score[i + 1]
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom < 0 else 0.0
        total += i + float(np.clip(offset, -0.5, 0.5))
        weight += k
    return total / weight if weight else float(p)


def _rescale(luma: np.ndarray, factor: float) -> np.ndarray:
    """Resample by exactly `factor` on both axes (bicubic), cropping the partial last pixel."""
    h, w = luma.shape
    size = (max(1, int(w * factor)), max(1, int(h * factor)))
    image = Image.fromarray(luma.astype(np.float32), "F")
    inv = 1.0 / factor
    out = image.transform(size, Image.Transform.AFFINE, (inv, 0, 0.5 * inv - 0.5, 0, inv, 0.5 * inv - 0.5), Image.Resampling.BICUBIC)
    return np.asarray(out, dtype=np.float64)
