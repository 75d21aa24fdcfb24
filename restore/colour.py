"""sRGB <-> CIE Lab (D65, 2-degree observer) for scans and results, 8- and 16-bit.

Ranges, written once here:
- `rgb_u8` / `rgb_u16`: sRGB, H x W x 3, uint8 0..255 or uint16 0..65535.
- `gray_u8` / `gray_u16`: H x W, the scan's own gray values (sRGB-encoded, R = G = B).
- `l_hw`: CIE L*, H x W float32, 0..100.
- `ab_hw2`: CIE a*, b*, H x W x 2 float32, roughly -128..127 (0, 0 is neutral).

The formulas are scikit-image's, run in float32 on strips of rows so that a
100-megapixel scan never holds more than a strip of temporaries. (OpenCV's float
conversion is faster but tabulated: 0.4 units off in a*b* and 0.3 in L* at 16 bits,
too coarse for a result whose lightness must be the scan's.)
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
from skimage.color import lab2xyz, rgb2lab, xyz2rgb
from skimage.color.colorconv import rgb_from_xyz  # the sRGB matrix xyz2rgb itself uses

#: Rows converted at a time: bounds the temporaries of a full-resolution conversion.
STRIP_ROWS = 256
# Linear RGB this far outside 0..1 is out of gamut (float32 rounding stays well inside).
_GAMUT_EPS = 1e-4
_GAMUT_BISECTION_STEPS = 10  # chroma found within 1/1024 of the largest in-gamut value
_RGB_FROM_XYZ_T = np.ascontiguousarray(rgb_from_xyz.T, dtype=np.float32)


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


def lab_to_rgb(l_hw: np.ndarray, ab_hw2: np.ndarray, dtype: type[np.uint8] | type[np.uint16]) -> np.ndarray:
    """(`l_hw`, `ab_hw2`) -> sRGB at `dtype`, keeping L* exactly where sRGB can.

    Colours outside the sRGB gamut are not clipped channel by channel (that changes their
    lightness); their chroma is reduced, hue and L* kept, to the largest that fits.
    """
    if l_hw.shape != ab_hw2.shape[:2] or ab_hw2.shape[2:] != (2,):
        raise ValueError(f"l_hw {l_hw.shape} and ab_hw2 {ab_hw2.shape} do not match")
    top_value = 2 ** _bits(np.dtype(dtype)) - 1
    out = np.empty(l_hw.shape + (3,), dtype)
    for top in range(0, l_hw.shape[0], STRIP_ROWS):
        lab = np.concatenate(
            [l_hw[top : top + STRIP_ROWS, :, None], ab_hw2[top : top + STRIP_ROWS]], axis=2
        ).astype(np.float32)
        rgb = _lab_to_rgb_in_gamut(lab)
        out[top : top + STRIP_ROWS] = np.rint(rgb * top_value).astype(dtype)
    return out


def _lab_to_rgb_in_gamut(lab: np.ndarray) -> np.ndarray:
    """Float32 Lab (h x w x 3) -> float sRGB 0..1, with chroma reduced where out of gamut."""
    xyz = _lab2xyz(lab)
    outside = _outside_gamut(xyz)
    if outside.any():
        pixels = lab[outside]  # n x 3
        low = np.zeros(len(pixels), np.float32)  # chroma scale known to fit (gray always does)
        high = np.ones(len(pixels), np.float32)  # known not to fit
        for _ in range(_GAMUT_BISECTION_STEPS):
            mid = (low + high) / 2
            trial = pixels.copy()
            trial[:, 1:] *= mid[:, None]
            fits = ~_outside_gamut(_lab2xyz(trial[None]))[0]
            low = np.where(fits, mid, low)
            high = np.where(fits, high, mid)
        pixels[:, 1:] *= low[:, None]
        xyz[outside] = _lab2xyz(pixels[None])[0]
    return xyz2rgb(xyz)


def _lab2xyz(lab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # "Z < 0" for far-out colours: handled by the gamut mapping
        warnings.simplefilter("ignore", UserWarning)
        return lab2xyz(lab)


def _outside_gamut(xyz: np.ndarray) -> np.ndarray:
    linear = xyz @ _RGB_FROM_XYZ_T
    return ((linear < -_GAMUT_EPS) | (linear > 1 + _GAMUT_EPS)).any(axis=-1)
