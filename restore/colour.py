"""sRGB <-> CIE Lab (D65, 2-degree observer) for scans and results, 8- and 16-bit.

Ranges, written once here:
- `rgb_u8` / `rgb_u16`: sRGB, H x W x 3, uint8 0..255 or uint16 0..65535.
- `gray_u8` / `gray_u16`: H x W, the scan's own gray values (sRGB-encoded, R = G = B).
- `l_hw`: CIE L*, H x W float32, 0..100.
- `ab_hw2`: CIE a*, b*, H x W x 2 float32, roughly -128..127 (0, 0 is neutral).

The formulas are scikit-image's (and tested against it), run on strips of rows so that a
100-megapixel scan never holds more than a strip of temporaries. Lab -> sRGB, which runs
on every output pixel, is written out in float32 with the sRGB encoding read from a
2^20-entry table straight into the output's integer levels: scikit-image's own
conversion took 1.5 s per 10 megapixels here, dominated by float64 temporaries and
`pow`. (OpenCV's conversion is fast but tabulated coarsely: 0.4 units off in a*b* and
0.3 in L* at 16 bits, too coarse for a result whose lightness must be the scan's.)
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
from skimage.color import rgb2lab
from skimage.color.colorconv import rgb_from_xyz  # the sRGB matrix xyz2rgb itself uses

#: Rows converted at a time: bounds the temporaries of a full-resolution conversion.
STRIP_ROWS = 256
# Linear RGB this far outside 0..1 is out of gamut (float32 rounding stays well inside).
_GAMUT_EPS = 1e-4
_GAMUT_BISECTION_STEPS = 10  # chroma found within 1/1024 of the largest in-gamut value


@cache
def _lightness_lut(bits: int) -> np.ndarray:
    """L* of every gray level at this bit depth: exact, via scikit-image's rgb2lab."""
    from skimage.color import rgb2lab

    levels = np.arange(2**bits, dtype=np.float64) / (2**bits - 1)
    return rgb2lab(np.repeat(levels[:, None, None], 3, axis=2))[:, 0, 0].astype(np.float32)


def _bits(dtype: np.dtype) -> int:
    if dtype == np.uint8:
        return 8
    if dtype == np.uint16:
        return 16
    raise TypeError(f"expected uint8 or uint16 pixels, got {dtype}")


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """`gray_u8` or `gray_u16` -> `l_hw` (exact, through a lookup table)."""
    return _lightness_lut(_bits(gray.dtype))[gray]


def lightness_to_gray(l_hw: np.ndarray, dtype: type[np.uint8] | type[np.uint16]) -> np.ndarray:
    """`l_hw` -> the nearest gray level at `dtype`'s depth (the inverse of gray_to_lightness)."""
    lut = _lightness_lut(_bits(np.dtype(dtype)))
    idx = np.clip(np.searchsorted(lut, l_hw), 1, len(lut) - 1)
    nearer_low = (l_hw - lut[idx - 1]) < (lut[idx] - l_hw)
    return (idx - nearer_low).astype(dtype)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """`rgb_u8` or `rgb_u16` -> H x W x 3 float32 Lab (L* 0..100, a*, b*)."""
    scale = 1.0 / (2 ** _bits(rgb.dtype) - 1)
    out = np.empty(rgb.shape[:2] + (3,), np.float32)
    for top in range(0, rgb.shape[0], STRIP_ROWS):
        strip = rgb[top : top + STRIP_ROWS, :, :3].astype(np.float32) * scale
        out[top : top + STRIP_ROWS] = rgb2lab(strip)
    return out


def rgb_to_lightness(rgb: np.ndarray) -> np.ndarray:
    """`rgb_u8` or `rgb_u16` -> `l_hw`."""
    return rgb_to_lab(rgb)[..., 0]


# D65 white and the XYZ -> linear sRGB matrix scikit-image uses, white folded in.
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], np.float32)
_LINEAR_FROM_XYZN = np.ascontiguousarray(rgb_from_xyz * _WHITE_D65[None, :], dtype=np.float32)
_ENCODE_STEPS = 2**20  # linear-light table resolution: under one 16-bit level of error


@cache
def _encode_lut(bits: int) -> np.ndarray:
    """Linear light (index / (_ENCODE_STEPS - 1)) -> sRGB-encoded level at this bit depth."""
    linear = np.linspace(0.0, 1.0, _ENCODE_STEPS, dtype=np.float64)
    encoded = np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)
    top = 2**bits - 1
    return np.rint(encoded * top).astype(np.uint16 if bits == 16 else np.uint8)


def _f_inverse(f: np.ndarray) -> np.ndarray:
    """CIE Lab's f^-1 (float32, in place where it can)."""
    cube = f * f * f
    linear_part = (f - np.float32(4 / 29)) * np.float32(3 * (6 / 29) ** 2)
    return np.where(f > np.float32(6 / 29), cube, linear_part)


def _lab_to_linear(l_hw: np.ndarray, ab_hw2: np.ndarray) -> np.ndarray:
    """Lab -> linear sRGB (H x W x 3 float32), unclipped: outside 0..1 means out of gamut."""
    a_hw, b_hw = cv2.split(np.ascontiguousarray(ab_hw2, dtype=np.float32))
    fy = (l_hw.astype(np.float32) + np.float32(16)) / np.float32(116)
    xyz = cv2.merge([_f_inverse(fy + a_hw / np.float32(500)), _f_inverse(fy), _f_inverse(fy - b_hw / np.float32(200))])
    return cv2.transform(xyz, _LINEAR_FROM_XYZN)


def lab_to_rgb(l_hw: np.ndarray, ab_hw2: np.ndarray, dtype: type[np.uint8] | type[np.uint16]) -> np.ndarray:
    """(`l_hw`, `ab_hw2`) -> sRGB at `dtype`, keeping L* exactly where sRGB can.

    Colours outside the sRGB gamut are not clipped channel by channel (that changes their
    lightness); their chroma is reduced, hue and L* kept, to the largest that fits.
    """
    if l_hw.shape != ab_hw2.shape[:2] or ab_hw2.shape[2:] != (2,):
        raise ValueError(f"l_hw {l_hw.shape} and ab_hw2 {ab_hw2.shape} do not match")
    lut = _encode_lut(_bits(np.dtype(dtype)))
    out = np.empty(l_hw.shape + (3,), dtype)
    for top in range(0, l_hw.shape[0], STRIP_ROWS):
        rows = slice(top, top + STRIP_ROWS)
        linear = _in_gamut_linear(l_hw[rows], ab_hw2[rows])
        index = (np.clip(linear, 0.0, 1.0) * np.float32(_ENCODE_STEPS - 1) + np.float32(0.5)).astype(np.int32)
        out[rows] = lut[index]
    return out


def _outside(linear: np.ndarray) -> np.ndarray:
    """Per pixel: is any channel of linear sRGB outside 0..1?"""
    bad = (linear < -_GAMUT_EPS) | (linear > 1 + _GAMUT_EPS)
    return bad[..., 0] | bad[..., 1] | bad[..., 2]  # faster than .any(axis=-1) over 3 channels


def _in_gamut_linear(l_hw: np.ndarray, ab_hw2: np.ndarray) -> np.ndarray:
    """Linear sRGB of Lab, with the chroma of out-of-gamut pixels reduced until they fit."""
    linear = _lab_to_linear(l_hw, ab_hw2)
    if linear.min() >= -_GAMUT_EPS and linear.max() <= 1 + _GAMUT_EPS:
        return linear  # the common case, checked with two fast reductions
    outside = _outside(linear)
    l_out, ab_out = l_hw[outside][None], ab_hw2[outside][None]  # 1 x n
    low = np.zeros(ab_out.shape[1], np.float32)  # chroma scale known to fit (gray always does)
    high = np.ones(ab_out.shape[1], np.float32)  # known not to fit
    for _ in range(_GAMUT_BISECTION_STEPS):
        mid = (low + high) / 2
        fits = ~_outside(_lab_to_linear(l_out, ab_out * mid[None, :, None]))[0]
        low = np.where(fits, mid, low)
        high = np.where(fits, high, mid)
    linear[outside] = _lab_to_linear(l_out, ab_out * low[None, :, None])[0]
    return linear
