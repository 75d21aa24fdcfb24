"""sRGB <-> CIE Lab (D65, 2-degree observer) for scans and results, 8- and 16-bit.

Ranges, written once here:
- `rgb_u8` / `rgb_u16`: sRGB, H x W x 3, uint8 0..255 or uint16 0..65535.
- `gray_u8` / `gray_u16`: H x W, the scan's own gray values (sRGB-encoded, R = G = B).
- `l_hw`: CIE L*, H x W float32, 0..100.
- `ab_hw2`: CIE a*, b*, H x W x 2 float32, roughly -128..127 (0, 0 is neutral).

The formulas are scikit-image's (and tested against it). sRGB -> Lab runs on strips of
rows, so that a 100-megapixel scan never holds more than a strip of temporaries. Lab ->
sRGB, which runs on every output pixel, is one loop per pixel compiled with Numba (in
float64): L*a*b* -> f(X), f(Y), f(Z) -> XYZ -> linear sRGB, the gamut step, and the sRGB
encoding read from a 2^20-entry table straight into the output's integer levels; the
recombination's loop (`guided_rows_to_rgb`) does the same after making each pixel's a*b*.
scikit-image's own conversion took 1.5 s per 10 megapixels here, dominated by float64
temporaries and `pow`; the same arithmetic as NumPy and OpenCV passes over strips took twice
the CPU time of the compiled loop. (OpenCV's conversion is fast but tabulated coarsely:
0.4 units off in a*b* and 0.3 in L* at 16 bits, too coarse for a result whose lightness
must be the scan's.)
"""

from __future__ import annotations

from functools import cache

import numba
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
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_LINEAR_FROM_XYZN = np.ascontiguousarray(rgb_from_xyz * _WHITE_D65[None, :], dtype=np.float64)
_ENCODE_STEPS = 2**20  # linear-light table resolution: under one 16-bit level of error


@cache
def _encode_lut(bits: int) -> np.ndarray:
    """Linear light (index / (_ENCODE_STEPS - 1)) -> sRGB-encoded level at this bit depth."""
    linear = np.linspace(0.0, 1.0, _ENCODE_STEPS, dtype=np.float64)
    encoded = np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)
    top = 2**bits - 1
    return np.rint(encoded * top).astype(np.uint16 if bits == 16 else np.uint8)



def encode_lut(dtype: type[np.uint8] | type[np.uint16]) -> np.ndarray:
    """The encoding table for results at `dtype`'s depth (see `_encoded`)."""
    return _encode_lut(_bits(np.dtype(dtype)))


# Lab -> sRGB runs on every output pixel, so it is written per pixel and compiled with
# Numba: one loop that reads each input once and writes each output once. The same
# arithmetic as NumPy/OpenCV passes over strips (about forty of them with the guided
# upsampling) cost twice the CPU time: each pass reads and writes a whole strip.
# nogil: strips run on several threads; cache: compiled once per installation, not per process.
_JIT = {"nogil": True, "cache": True}
_F_KNEE = 6 / 29  # below it f^-1 is linear, not a cube
_F_LINEAR_OFFSET, _F_LINEAR_SLOPE = 4 / 29, 3 * (6 / 29) ** 2


@numba.njit(**_JIT)
def _f_inverse(f: float) -> float:
    """CIE Lab's f^-1: f(X/Xn) -> X/Xn."""
    if f > _F_KNEE:
        return f * f * f
    return (f - _F_LINEAR_OFFSET) * _F_LINEAR_SLOPE


@numba.njit(**_JIT)
def _on_chroma_line(f_y: float, y: float, x_step: float, z_step: float, scale: float) -> tuple[float, float, float]:
    """Linear sRGB of the colour with f(Y/Yn) = f_y (Y/Yn = y) and `scale` times the chroma
    whose f(X/Xn) - f_y is x_step and f(Z/Zn) - f_y is z_step: in f-space the line of
    constant L* and hue is straight."""
    x = _f_inverse(f_y + scale * x_step)
    z = _f_inverse(f_y + scale * z_step)
    m = _LINEAR_FROM_XYZN
    return (
        m[0, 0] * x + m[0, 1] * y + m[0, 2] * z,
        m[1, 0] * x + m[1, 1] * y + m[1, 2] * z,
        m[2, 0] * x + m[2, 1] * y + m[2, 2] * z,
    )


@numba.njit(**_JIT)
def _fits(red: float, green: float, blue: float) -> bool:
    return min(red, green, blue) >= -_GAMUT_EPS and max(red, green, blue) <= 1 + _GAMUT_EPS


@numba.njit(**_JIT)
def linear_in_gamut(lightness: float, a: float, b: float) -> tuple[float, float, float]:
    """Linear sRGB (R, G, B, unclipped but within 0..1 give or take _GAMUT_EPS) of one CIE
    Lab colour. Outside the sRGB gamut its chroma is reduced, L* and hue kept, to the
    largest that fits, by bisection to 1/1024 of its own chroma (gray always fits)."""
    f_y = (lightness + 16.0) / 116.0
    y = _f_inverse(f_y)
    x_step, z_step = a / 500.0, b / -200.0
    red, green, blue = _on_chroma_line(f_y, y, x_step, z_step, 1.0)
    if _fits(red, green, blue):
        return red, green, blue
    low, step = 0.0, 0.5  # low fits; low + 2 * step (the colour as given) does not
    for _ in range(_GAMUT_BISECTION_STEPS):
        red, green, blue = _on_chroma_line(f_y, y, x_step, z_step, low + step)
        if _fits(red, green, blue):
            low += step
        step /= 2
    return _on_chroma_line(f_y, y, x_step, z_step, low)


@numba.njit(**_JIT)
def _encoded(linear: float, lut: np.ndarray) -> int:
    """The encoded level of linear light (clipped to 0..1), read from `lut`."""
    return lut[int(min(max(linear, 0.0), 1.0) * (_ENCODE_STEPS - 1) + 0.5)]


@numba.njit(**_JIT)
def _store(out: np.ndarray, row: int, col: int, linear: tuple[float, float, float], lut: np.ndarray) -> None:
    """out[row, col] = the encoded levels of linear sRGB."""
    red, green, blue = linear
    out[row, col, 0] = _encoded(red, lut)
    out[row, col, 1] = _encoded(green, lut)
    out[row, col, 2] = _encoded(blue, lut)


@numba.njit(**_JIT)
def _lab_to_rgb(l_hw: np.ndarray, ab_hw2: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
    for row in range(l_hw.shape[0]):
        for col in range(l_hw.shape[1]):
            _store(out, row, col, linear_in_gamut(l_hw[row, col], ab_hw2[row, col, 0], ab_hw2[row, col, 1]), lut)


def lab_to_rgb(l_hw: np.ndarray, ab_hw2: np.ndarray, dtype: type[np.uint8] | type[np.uint16]) -> np.ndarray:
    """(`l_hw`, `ab_hw2`) -> sRGB at `dtype`, keeping L* exactly where sRGB can.

    Colours outside the sRGB gamut are not clipped channel by channel (that changes their
    lightness); their chroma is reduced, hue and L* kept, to the largest that fits.
    """
    if l_hw.shape != ab_hw2.shape[:2] or ab_hw2.shape[2:] != (2,):
        raise ValueError(f"l_hw {l_hw.shape} and ab_hw2 {ab_hw2.shape} do not match")
    out = np.empty(l_hw.shape + (3,), dtype)
    as_f32 = [np.ascontiguousarray(x, dtype=np.float32) for x in (l_hw, ab_hw2)]
    _lab_to_rgb(*as_f32, encode_lut(dtype), out)
    return out


@numba.njit(**_JIT)
def chroma_gain(lightness: float | np.ndarray, saturation: float) -> float | np.ndarray:
    """The saturation step's gain on chroma at L* (a number or an array): `saturation` in
    midtones, fading to 1 at black and white: 1 + (saturation - 1) * 4x(1 - x), x = L*/100."""
    x = lightness / 100.0
    return 1.0 + 4.0 * (saturation - 1.0) * x * (1.0 - x)


@numba.njit(**_JIT)
def _lerp(grid_row: np.ndarray, left: int, right: int, across: float, channel: int) -> float:
    return grid_row[left, channel] + across * (grid_row[right, channel] - grid_row[left, channel])


@numba.njit(**_JIT)
def _guided_rows_to_rgb(
    l_rows: np.ndarray,
    coefficients: np.ndarray,
    row_taps: tuple[np.ndarray, np.ndarray, np.ndarray],
    col_taps: tuple[np.ndarray, np.ndarray, np.ndarray],
    saturation: float,
    lut: np.ndarray,
    out: np.ndarray,
) -> None:
    row_low, row_high, row_weight = row_taps
    col_low, col_high, col_weight = col_taps
    channels = coefficients.shape[2]
    grid_row = np.empty((coefficients.shape[1], channels), np.float32)  # the row's coefficients, read down
    for row in range(l_rows.shape[0]):
        above, below, down = coefficients[row_low[row]], coefficients[row_high[row]], row_weight[row]
        for col in range(grid_row.shape[0]):
            for c in range(channels):
                grid_row[col, c] = above[col, c] + down * (below[col, c] - above[col, c])
        for col in range(l_rows.shape[1]):
            left, right, across = col_low[col], col_high[col], col_weight[col]
            lightness = l_rows[row, col]
            guide, gain = lightness / 100.0, chroma_gain(lightness, saturation)
            a = _lerp(grid_row, left, right, across, 0) * guide + _lerp(grid_row, left, right, across, 2)
            b = _lerp(grid_row, left, right, across, 1) * guide + _lerp(grid_row, left, right, across, 3)
            a, b = a * gain, b * gain
            if channels == 6:  # the hints' correction, added after saturation
                a += _lerp(grid_row, left, right, across, 4)
                b += _lerp(grid_row, left, right, across, 5)
            _store(out, row, col, linear_in_gamut(lightness, a, b), lut)


def guided_rows_to_rgb(
    l_rows: np.ndarray,
    coefficients: np.ndarray,
    row_taps: tuple[np.ndarray, np.ndarray, np.ndarray],
    col_taps: tuple[np.ndarray, np.ndarray, np.ndarray],
    saturation: float,
    dtype: type[np.uint8] | type[np.uint16],
) -> np.ndarray:
    """A strip of the result (rows x W x 3 sRGB at `dtype`) from its L* rows (`l_rows`,
    rows x W float32) and a guided filter's coefficients on a coarser grid, in one pass:

    - `coefficients`: grid H' x W' x C float32, per channel (a_a, a_b, b_a, b_b) and, with
      hints, (delta_a, delta_b); read bilinearly at each pixel through `row_taps` (per
      strip row) and `col_taps` (per column): the two grid indices and the second's weight;
    - a* = a_a * L*/100 + b_a (b* likewise) times `chroma_gain`, plus the hints' delta;
    - then Lab -> sRGB as `lab_to_rgb`.
    """
    out = np.empty(l_rows.shape + (3,), dtype)
    _guided_rows_to_rgb(l_rows, coefficients, row_taps, col_taps, float(saturation), encode_lut(dtype), out)
    return out
