"""Error correction for the watermark's 64-bit id: a binary BCH code plus a check field.

Owns: `BCH` (a primitive narrow-sense binary BCH code over GF(2^8), n = 255, systematic
encoding, Berlekamp-Massey + Chien decoding that reports failure instead of guessing), and the
payload framing `encode_payload` / `decode_payload`: 64-bit id + 27-bit check (from SHA-256 of
the id) = 91 message bits -> BCH(255, 91, t=25) codeword. A decode is accepted only when the
BCH decoder finds an error pattern of weight <= t whose locator has exactly as many roots as
its degree AND the check field matches; anything else is `None`, never a different id.

Must never: look at images, use randomness, or return a payload whose check field failed.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import numpy as np

PAYLOAD_BITS = 64
CHECK_BITS = 27
_M = 8
_PRIMITIVE = 0x11D  # x^8 + x^4 + x^3 + x^2 + 1
_N = (1 << _M) - 1


def _gf_tables() -> tuple[list[int], list[int]]:
    exp = [0] * (2 * _N)
    log = [0] * (_N + 1)
    x = 1
    for i in range(_N):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & (1 << _M):
            x ^= _PRIMITIVE
    for i in range(_N, 2 * _N):
        exp[i] = exp[i - _N]
    return exp, log


_EXP, _LOG = _gf_tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _inv(a: int) -> int:
    return _EXP[_N - _LOG[a]]


def _poly_mul_gf2(a: int, b: int) -> int:
    """Carry-less product of two GF(2) polynomials held as ints (bit i = coefficient of x^i)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        b >>= 1
    return out


def _poly_mod_gf2(a: int, m: int) -> int:
    dm = m.bit_length() - 1
    while a and a.bit_length() - 1 >= dm:
        a ^= m << (a.bit_length() - 1 - dm)
    return a


def _minimal_poly(power: int) -> int:
    """Minimal polynomial over GF(2) of alpha^power, as a GF(2) int polynomial."""
    coset = []
    e = power % _N
    while e not in coset:
        coset.append(e)
        e = (e * 2) % _N
    poly = [1]  # coefficients in GF(2^8), lowest first
    for e in coset:
        root = _EXP[e]
        nxt = [0] * (len(poly) + 1)
        for i, c in enumerate(poly):
            nxt[i + 1] ^= c
            nxt[i] ^= _mul(c, root)
        poly = nxt
    return sum((c & 1) << i for i, c in enumerate(poly))


class BCH:
    """Binary BCH code of length n = 255 (optionally shortened) correcting up to t errors."""

    def __init__(self, t: int, k: int | None = None):
        generator, seen = 1, set()
        for j in range(1, 2 * t + 1):
            rep = min(((j << s) % _N) for s in range(_M))
            if rep not in seen:
                seen.add(rep)
                generator = _poly_mul_gf2(generator, _minimal_poly(j))
        self.t = t
        self.parity = generator.bit_length() - 1
        self.full_k = _N - self.parity
        self.k = self.full_k if k is None else k
        if not 0 < self.k <= self.full_k:
            raise ValueError(f"k={k} does not fit a BCH(255, {self.full_k}) code")
        self.n = self.k + self.parity  # shortened length
        self.generator = generator

    def encode(self, message: np.ndarray) -> np.ndarray:
        """k message bits -> n codeword bits (message first, then parity)."""
        message = np.asarray(message, dtype=np.uint8).ravel()
        if message.size != self.k:
            raise ValueError(f"expected {self.k} message bits, got {message.size}")
        m = int("".join("1" if b else "0" for b in message[::-1]), 2) if self.k else 0
        parity = _poly_mod_gf2(m << self.parity, self.generator)
        bits = np.zeros(self.n, dtype=np.uint8)
        bits[: self.parity] = [(parity >> i) & 1 for i in range(self.parity)]
        bits[self.parity :] = message
        # codeword polynomial c(x) = m(x) x^p + parity(x); bit i = coefficient of x^i.
        return np.concatenate([bits[self.parity :], bits[: self.parity]])

    def _to_poly_positions(self, word: np.ndarray) -> list[int]:
        """Exponents of x with a 1 coefficient, for the (message, parity) bit layout."""
        msg, par = word[: self.k], word[self.k :]
        return [int(i) for i in np.flatnonzero(par)] + [self.parity + int(i) for i in np.flatnonzero(msg)]

    def _layout_index(self, exponent: int) -> int:
        return exponent - self.parity if exponent >= self.parity else self.k + exponent

    def decode(self, word: np.ndarray) -> tuple[np.ndarray, int] | None:
        """n received bits -> (k message bits, errors corrected), or None when not decodable."""
        word = (np.asarray(word).ravel() != 0).astype(np.uint8)
        if word.size != self.n:
            raise ValueError(f"expected {self.n} bits, got {word.size}")
        ones = self._to_poly_positions(word)
        syndromes = []
        for j in range(1, 2 * self.t + 1):
            s = 0
            for e in ones:
                s ^= _EXP[(e * j) % _N]
            syndromes.append(s)
        if not any(syndromes):
            return word[: self.k].copy(), 0
        locator = _berlekamp_massey(syndromes)
        degree = len(locator) - 1
        if degree > self.t:
            return None
        roots = []
        for e in range(_N):  # error at exponent e <=> locator(alpha^-e) == 0
            x = _EXP[(_N - e) % _N]
            acc, power = 0, 1
            for c in locator:
                acc ^= _mul(c, power)
                power = _mul(power, x)
            if acc == 0:
                roots.append(e)
        if len(roots) != degree or any(e >= self.n for e in roots):
            return None
        fixed = word.copy()
        for e in roots:
            fixed[self._layout_index(e)] ^= 1
        return fixed[: self.k].copy(), degree


def _berlekamp_massey(syndromes: list[int]) -> list[int]:
    """Error-locator polynomial (lowest coefficient first, leading zeros trimmed)."""
    c, b = [1], [1]
    length, m, last = 0, 1, 1
    for n_, s in enumerate(syndromes):
        d = s
        for i in range(1, length + 1):
            if i < len(c):
                d ^= _mul(c[i], syndromes[n_ - i])
        if d == 0:
            m += 1
            continue
        coef = _mul(d, _inv(last))
        t = list(c)
        shifted = [0] * m + [_mul(coef, x) for x in b]
        if len(shifted) > len(c):
            c = c + [0] * (len(shifted) - len(c))
        for i, x in enumerate(shifted):
            c[i] ^= x
        if 2 * length <= n_:
            length, b, last, m = n_ + 1 - length, t, d, 1
        else:
            m += 1
    while len(c) > 1 and c[-1] == 0:
        c.pop()
    return c


@lru_cache(maxsize=1)
def payload_code() -> BCH:
    """The code the watermark uses: BCH(255, 91) correcting 25 errors."""
    return BCH(t=25, k=PAYLOAD_BITS + CHECK_BITS)


def _check(payload: int) -> int:
    digest = hashlib.sha256(b"atelier-watermark-v1" + payload.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - CHECK_BITS)


def _int_to_bits(value: int, width: int) -> np.ndarray:
    return np.array([(value >> (width - 1 - i)) & 1 for i in range(width)], dtype=np.uint8)


def _bits_to_int(bits: np.ndarray) -> int:
    return int("".join("1" if b else "0" for b in bits), 2)


def encode_payload(payload: int) -> np.ndarray:
    """64-bit id -> 255 codeword bits (id, check field, BCH parity)."""
    if not isinstance(payload, int) or isinstance(payload, bool) or not 0 <= payload < 1 << PAYLOAD_BITS:
        raise ValueError("payload must be an int in [0, 2**64)")
    message = np.concatenate([_int_to_bits(payload, PAYLOAD_BITS), _int_to_bits(_check(payload), CHECK_BITS)])
    return payload_code().encode(message)


def decode_payload(bits: np.ndarray) -> tuple[int, int] | None:
    """255 hard bits -> (id, bit errors corrected), or None (too many errors, or check failed)."""
    decoded = payload_code().decode(bits)
    if decoded is None:
        return None
    message, corrected = decoded
    payload = _bits_to_int(message[:PAYLOAD_BITS])
    if _bits_to_int(message[PAYLOAD_BITS:]) != _check(payload):
        return None
    return payload, corrected


def false_decode_log2(trials: int = 1) -> float:
    """log2 of an upper bound on P(a random 255-bit word decodes to an id whose check passes).

    A uniformly random word lies within distance t of some codeword with probability
    2^k * V(n, t) / 2^n; the check field then matches with probability 2^-CHECK_BITS.
    `trials` independent looks multiply the bound (union bound).
    """
    code = payload_code()
    volume = sum(math.comb(code.n, i) for i in range(code.t + 1))
    return math.log2(trials) + code.k - code.n + math.log2(volume) - CHECK_BITS
