"""sRGB <-> CIE Lab (D65, 2-degree observer) for scans and results, 8- and 16-bit.

Ranges, written once here:
- `rgb_u8` / `rgb_u16`: sRGB, H x W x 3, uint8 0..255 or uint16 0..65535.
- `gray_u8` / `gray_u16`: H x W, the scan's own gray values (sRGB-encoded, R = G = B).
- `l_hw`: CIE L*, H x W float32, 0..100.
- `ab_hw2`: CIE a*, b*, H x W x 2 float32, roughly -128..127 (0, 0 is neutral).

The formulas are scikit-image's (and tested against it), run on strips of rows so that a
100-megapixel scan never holds more than a strip of temporaries. Lab -> sRGB, which runs
on every output pixel, is written out in float32 on H x W x 3 Lab (`lab_hw3`): Lab to
f(X), f(Y), f(Z) and XYZ to linear sRGB are each one OpenCV matrix transform, and the sRGB
encoding is read from a 2^20-entry table straight into the output's integer levels.
scikit-image's own conversion took 1.5 s per 10 megapixels here, dominated by float64
temporaries and `pow`; the version on separate L* and a*b* planes 20% longer than this one. (OpenCV's conversion is fast but tabulated coarsely: 0.4 units off in a*b* and
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


# (L*, a*, b*, 1) -> (f(X/Xn), f(Y/Yn), f(Z/Zn)): CIE Lab's definition is affine in them.
_F_FROM_LAB = np.array(
    [[1 / 116, 1 / 500, 0, 16 / 116], [1 / 116, 0, 0, 16 / 116], [1 / 116, 0, -1 / 200, 16 / 116]], np.float32
)
_F_KNEE = np.float32(6 / 29)  # below it f^-1 is linear, not a cube
_F_LINEAR_OFFSET, _F_LINEAR_SLOPE = np.float32(4 / 29), np.float32(3 * (6 / 29) ** 2)


def _lab_to_linear(lab_hw3: np.ndarray) -> np.ndarray:
    """`lab_hw3` (H x W x 3 float32 L*, a*, b*) -> linear sRGB (H x W x 3 float32), unclipped:
    outside 0..1 means out of gamut. Three passes over the pixels (two OpenCV transforms and
    a cube), and the linear part of f^-1 for the deep shadows."""
    f = cv2.transform(lab_hw3, _F_FROM_LAB)
    return cv2.transform(_f_inverse(f), _LINEAR_FROM_XYZN)


def _f_inverse(f: np.ndarray) -> np.ndarray:
    """CIE Lab's f^-1 (f(X/Xn) -> X/Xn), any shape of float32: the cube, and where some f is
    at or below the knee (deep shadows, usually a small part of an image) the linear part,
    for those values gathered by index (boolean masks over the whole array cost more)."""
    cubed = f * f
    cubed *= f
    flat = f.reshape(-1)
    if cv2.minMaxLoc(flat)[0] <= _F_KNEE:
        below = np.flatnonzero(flat <= _F_KNEE)
        values = np.take(flat, below)
        values -= _F_LINEAR_OFFSET
        values *= _F_LINEAR_SLOPE
        cubed.reshape(-1)[below] = values
    return cubed


def lab_to_rgb(l_hw: np.ndarray, ab_hw2: np.ndarray, dtype: type[np.uint8] | type[np.uint16]) -> np.ndarray:
    """(`l_hw`, `ab_hw2`) -> sRGB at `dtype`, keeping L* exactly where sRGB can.

    Colours outside the sRGB gamut are not clipped channel by channel (that changes their
    lightness); their chroma is reduced, hue and L* kept, to the largest that fits.
    """
    if l_hw.shape != ab_hw2.shape[:2] or ab_hw2.shape[2:] != (2,):
        raise ValueError(f"l_hw {l_hw.shape} and ab_hw2 {ab_hw2.shape} do not match")
    out = np.empty(l_hw.shape + (3,), dtype)
    for top in range(0, l_hw.shape[0], STRIP_ROWS):
        rows = slice(top, top + STRIP_ROWS)
        a_hw, b_hw = cv2.split(np.ascontiguousarray(ab_hw2[rows], dtype=np.float32))
        out[rows] = lab_hw3_to_rgb(cv2.merge([np.ascontiguousarray(l_hw[rows], dtype=np.float32), a_hw, b_hw]), dtype)
    return out


def lab_hw3_to_rgb(lab_hw3: np.ndarray, dtype: type[np.uint8] | type[np.uint16]) -> np.ndarray:
    """`lab_hw3` (H x W x 3 float32 L*, a*, b*) -> sRGB at `dtype`, as `lab_to_rgb`; meant
    for a strip of rows at a time (its temporaries are a few times the input's size)."""
    linear = _in_gamut_linear(lab_hw3)
    np.clip(linear, 0.0, 1.0, out=linear)
    linear *= np.float32(_ENCODE_STEPS - 1)
    linear += np.float32(0.5)
    # Indices as intp, the type NumPy gathers with: int32 indices are converted first, an
    # extra pass over the strip (the gather took a third longer with them).
    return np.take(_encode_lut(_bits(np.dtype(dtype))), linear.astype(np.intp))


def _inside(linear: np.ndarray) -> np.ndarray:
    """Per pixel, flattened: is every channel of linear sRGB (float32, 3 channels) within 0..1
    (give or take _GAMUT_EPS)? One OpenCV pass."""
    low, high = (-_GAMUT_EPS,) * 3, (1 + _GAMUT_EPS,) * 3
    return cv2.inRange(linear, low, high).reshape(-1) != 0


def _in_gamut_linear(lab_hw3: np.ndarray) -> np.ndarray:
    """Linear sRGB of Lab, with the chroma of out-of-gamut pixels reduced until they fit.

    The pixels outside are gathered by index (boolean-mask gathers and scatters over an
    H x W x 3 strip cost twice the whole bisection) and bisected on their chroma scale."""
    linear = _lab_to_linear(lab_hw3)
    low_value, high_value, _, _ = cv2.minMaxLoc(linear.reshape(-1))
    if low_value >= -_GAMUT_EPS and high_value <= 1 + _GAMUT_EPS:
        return linear  # the common case, checked with one fast reduction
    pixels = np.flatnonzero(~_inside(linear))
    line = _ChromaLine(np.take(lab_hw3.reshape(-1, 3), pixels, axis=0))
    low = np.zeros(len(pixels), np.float32)  # chroma scale known to fit (gray always does)
    step = np.float32(0.5)  # low + 2 * step is known not to fit (the colour as given)
    for _ in range(_GAMUT_BISECTION_STEPS):
        low += step * line.fits(low + step)  # the midpoint, where it fits
        step /= 2
    linear.reshape(-1, 3)[pixels] = np.stack(line.linear(low), axis=1)
    return linear


class _ChromaLine:
    """Linear sRGB along each pixel's line of constant L* and hue, as its chroma is scaled.

    In f-space the line is straight: f(X) = f(Y) + scale * a*/500, f(Z) = f(Y) - scale *
    b*/200, with f(Y) and so Y fixed by L*. Worked on as separate contiguous planes of the
    n pixels (a per-pixel scale broadcast over an n x 3 array cost 4x more)."""

    def __init__(self, lab_n3: np.ndarray) -> None:
        lightness, a, b = (np.ascontiguousarray(lab_n3[:, c]) for c in range(3))
        self.f_y = (lightness + np.float32(16)) / np.float32(116)
        self.x_step = a / np.float32(500)
        self.z_step = b / np.float32(-200)
        y = _f_inverse(self.f_y)
        self.y_terms = [y * _LINEAR_FROM_XYZN[c, 1] for c in range(3)]

    def linear(self, scale: np.ndarray) -> list[np.ndarray]:
        """Linear R, G, B planes with the chroma times `scale` (one per pixel)."""
        x = _f_inverse(self.x_step * scale + self.f_y)
        z = _f_inverse(self.z_step * scale + self.f_y)
        planes = []
        for c in range(3):
            plane = x * _LINEAR_FROM_XYZN[c, 0]
            plane += self.y_terms[c]
            plane += z * _LINEAR_FROM_XYZN[c, 2]
            planes.append(plane)
        return planes

    def fits(self, scale: np.ndarray) -> np.ndarray:
        """Per pixel: is its colour with the chroma times `scale` within the gamut?"""
        r, g, b = self.linear(scale)
        low, high = np.minimum(r, g), np.maximum(r, g)
        np.minimum(low, b, out=low)
        np.maximum(high, b, out=high)
        return (low >= -_GAMUT_EPS) & (high <= 1 + _GAMUT_EPS)
