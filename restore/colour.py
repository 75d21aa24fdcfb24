"""sRGB <-> CIE Lab (D65, 2-degree observer) for scans and results, 8- and 16-bit.

Ranges, written once here:
- `rgb_u8` / `rgb_u16`: sRGB, H x W x 3, uint8 0..255 or uint16 0..65535.
- `gray_u8` / `gray_u16`: H x W, the scan's own gray values (sRGB-encoded, R = G = B).
- `l_hw`: CIE L*, H x W float32, 0..100.
- `ab_hw2`: CIE a*, b*, H x W x 2 float32, roughly -128..127 (0, 0 is neutral).

The formulas are scikit-image's (and tested against it). sRGB -> Lab runs on strips of
rows, so that a 100-megapixel scan never holds more than a strip of temporaries. Lab ->
sRGB, which runs on every output pixel, is one loop per pixel compiled with Numba:
L*a*b* -> XYZ -> linear sRGB, the gamut step (chroma reduced, L* and hue kept), and the
sRGB encoding from a table straight into the output's integer levels; the recombination's
loop (`guided_rows_to_rgb`) does the same after making each pixel's a*b*. Why not
scikit-image's or OpenCV's conversion: docs/benchmarks.md ("Lab -> sRGB").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numba
import numpy as np
from skimage.color import rgb2lab
from skimage.color.colorconv import rgb_from_xyz  # the sRGB matrix xyz2rgb itself uses

#: A truly neutral pixel (truth chroma below NEUTRAL_CHROMA) "turned colourful" when a result
#: gives it a chroma above COLOURFUL_CHROMA: the confident wrong cast of a white sail or a
#: gray sea, measured by `evaluate` and by training's validation. CIE a*b* units.
NEUTRAL_CHROMA = 5.0
COLOURFUL_CHROMA = 15.0
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
    """`gray_u8` or `gray_u16` -> `l_hw` (exact, through a lookup table; a compiled loop:
    NumPy's indexing took twice as long, 0.06 s per 24 MP)."""
    l_hw = np.empty(gray.shape, np.float32)
    _looked_up(np.ascontiguousarray(gray).reshape(-1), _lightness_lut(_bits(gray.dtype)), l_hw.reshape(-1))
    return l_hw


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
_LINEAR_FROM_XYZN = (rgb_from_xyz * _WHITE_D65[None, :]).astype(np.float32)
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


# Lab -> sRGB runs on every output pixel, so it is compiled with Numba, a row at a time:
# first a loop without branches over the row (linear sRGB of every pixel as given: LLVM
# turns it into SIMD code), then one that takes the few pixels outside the gamut through
# the gamut step and encodes. The same arithmetic as NumPy/OpenCV passes over strips
# (about forty of them with the guided upsampling) cost 2.5x the CPU time, one scalar loop
# per pixel 1.8x. In float32 (constants too, so that nothing is promoted to float64).
def compiled(*, inline: str = "never") -> Callable[[Callable], Callable]:
    """numba.njit with what every loop here needs: nogil (strips run on several threads) and
    the compiled code cached on disk (next to this file, else in Numba's user cache), so it
    is compiled once per installation, not per process. Where no cache location is writable
    (a read-only installation and home), each process compiles for itself instead."""

    def decorate(function: Callable) -> Callable:
        try:
            return numba.njit(nogil=True, cache=True, inline=inline)(function)
        except RuntimeError:  # Numba: "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, inline=inline)(function)

    return decorate


#: Bilinear reading of a grid along one axis: per pixel the two grid indices and the second's weight.
Taps = tuple[np.ndarray, np.ndarray, np.ndarray]
_ONE, _HALF, _ZERO = np.float32(1), np.float32(0.5), np.float32(0)
_F_PER_L, _F_OF_L0 = np.float32(1 / 116), np.float32(16 / 116)  # f(Y/Yn) = (L* + 16) / 116
_F_PER_A, _F_PER_B = np.float32(1 / 500), np.float32(-1 / 200)  # f(X/Xn) - f(Y/Yn), f(Z/Zn) - f(Y/Yn)
_F_KNEE = np.float32(6 / 29)  # below it f^-1 is linear, not a cube
_F_LINEAR_OFFSET, _F_LINEAR_SLOPE = np.float32(4 / 29), np.float32(3 * (6 / 29) ** 2)
_GAMUT_LOW, _GAMUT_HIGH = np.float32(-_GAMUT_EPS), np.float32(1 + _GAMUT_EPS)
_PER_HUNDRED, _FOUR = np.float32(0.01), np.float32(4)


@compiled(inline="always")
def _f_inverse(f: float) -> float:
    """CIE Lab's f^-1: f(X/Xn) -> X/Xn (a select, not a branch, so that rows vectorize)."""
    return f * f * f if f > _F_KNEE else (f - _F_LINEAR_OFFSET) * _F_LINEAR_SLOPE


@compiled(inline="always")
def _chroma_line(lightness: float, a: float, b: float) -> tuple[float, float, float, float]:
    """(f(Y/Yn), Y/Yn, and the steps of f(X/Xn) and f(Z/Zn) from it) of a Lab colour."""
    f_y = lightness * _F_PER_L + _F_OF_L0
    return f_y, _f_inverse(f_y), a * _F_PER_A, b * _F_PER_B


@compiled(inline="always")
def _on_chroma_line(f_y: float, y: float, x_step: float, z_step: float, scale: float) -> tuple[float, float, float]:
    """Linear sRGB of the colour with f(Y/Yn) = f_y (Y/Yn = y) and `scale` times the chroma
    whose steps are x_step, z_step: in f-space the line of constant L* and hue is straight."""
    x = _f_inverse(f_y + scale * x_step)
    z = _f_inverse(f_y + scale * z_step)
    m = _LINEAR_FROM_XYZN  # a constant of the compiled code
    return (
        m[0, 0] * x + m[0, 1] * y + m[0, 2] * z,
        m[1, 0] * x + m[1, 1] * y + m[1, 2] * z,
        m[2, 0] * x + m[2, 1] * y + m[2, 2] * z,
    )


@compiled(inline="always")
def _fits(red: float, green: float, blue: float) -> bool:
    return min(red, green, blue) >= _GAMUT_LOW and max(red, green, blue) <= _GAMUT_HIGH


@compiled()
def linear_in_gamut(lightness: float, a: float, b: float) -> tuple[float, float, float]:
    """Linear sRGB (R, G, B, unclipped but within 0..1 give or take _GAMUT_EPS) of one CIE
    Lab colour. Outside the sRGB gamut its chroma is reduced, L* and hue kept, to the
    largest that fits, by bisection to 1/1024 of its own chroma (gray always fits). Chroma
    that is not a finite number (a model's failure) comes out as gray."""
    f_y, y, x_step, z_step = _chroma_line(np.float32(lightness), np.float32(a), np.float32(b))
    red, green, blue = _on_chroma_line(f_y, y, x_step, z_step, _ONE)
    if _fits(red, green, blue):
        return red, green, blue
    if not (math.isfinite(x_step) and math.isfinite(z_step)):
        return _on_chroma_line(f_y, y, _ZERO, _ZERO, _ZERO)
    low, step = _ZERO, _HALF  # low fits; low + 2 * step (the colour as given) does not
    for _ in range(_GAMUT_BISECTION_STEPS):
        red, green, blue = _on_chroma_line(f_y, y, x_step, z_step, low + step)
        if _fits(red, green, blue):
            low += step
        step *= _HALF
    return _on_chroma_line(f_y, y, x_step, z_step, low)


@compiled(inline="always")
def _encoded(linear: float, lut: np.ndarray) -> int:
    """The encoded level of linear light (clipped to 0..1; not a number: 0), read from `lut`."""
    if linear > _ZERO:  # false for NaN too: never an index outside the table
        return lut[int(min(linear, _ONE) * np.float32(_ENCODE_STEPS - 1) + _HALF)]
    return lut[0]


@compiled()
def _lab_row_to_rgb(l_row: np.ndarray, a_row: np.ndarray, b_row: np.ndarray, linear: np.ndarray, lut: np.ndarray, out_row: np.ndarray) -> None:
    """One row: L*, a*, b* (W float32 each) -> `out_row` (W x 3 levels from `lut`);
    `linear` (3 x W float32) is scratch."""
    for col in range(l_row.shape[0]):  # no branches: vectorized
        f_y, y, x_step, z_step = _chroma_line(l_row[col], a_row[col], b_row[col])
        red, green, blue = _on_chroma_line(f_y, y, x_step, z_step, _ONE)
        linear[0, col] = red
        linear[1, col] = green
        linear[2, col] = blue
    for col in range(l_row.shape[0]):
        red, green, blue = linear[0, col], linear[1, col], linear[2, col]
        if not _fits(red, green, blue):
            red, green, blue = linear_in_gamut(l_row[col], a_row[col], b_row[col])
        out_row[col, 0] = _encoded(red, lut)
        out_row[col, 1] = _encoded(green, lut)
        out_row[col, 2] = _encoded(blue, lut)


@compiled()
def _lab_to_rgb(l_hw: np.ndarray, a_hw: np.ndarray, b_hw: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
    linear = np.empty((3, l_hw.shape[1]), np.float32)
    for row in range(l_hw.shape[0]):
        _lab_row_to_rgb(l_hw[row], a_hw[row], b_hw[row], linear, lut, out[row])


def lab_to_rgb(l_hw: np.ndarray, ab_hw2: np.ndarray, dtype: type[np.uint8] | type[np.uint16]) -> np.ndarray:
    """(`l_hw`, `ab_hw2`) -> sRGB at `dtype`, keeping L* exactly where sRGB can.

    Colours outside the sRGB gamut are not clipped channel by channel (that changes their
    lightness); their chroma is reduced, hue and L* kept, to the largest that fits.
    """
    if l_hw.shape != ab_hw2.shape[:2] or ab_hw2.shape[2:] != (2,):
        raise ValueError(f"l_hw {l_hw.shape} and ab_hw2 {ab_hw2.shape} do not match")
    out = np.empty(l_hw.shape + (3,), dtype)
    planes = [np.ascontiguousarray(x, dtype=np.float32) for x in (l_hw, ab_hw2[..., 0], ab_hw2[..., 1])]
    _lab_to_rgb(*planes, encode_lut(dtype), out)
    return out


@compiled()
def _looked_up(levels: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """out[i] = table[levels[i]]; the levels (uint8 or uint16) always index inside the table."""
    for i in range(levels.shape[0]):
        out[i] = table[levels[i]]


@compiled(inline="always")
def chroma_gain(lightness: float | np.ndarray, saturation: float) -> float | np.ndarray:
    """The saturation step's gain on chroma at L* (a number or an array): `saturation` in
    midtones, fading to 1 at black and white: 1 + (saturation - 1) * 4x(1 - x), x = L*/100."""
    x = lightness * _PER_HUNDRED
    return _ONE + _FOUR * (saturation - _ONE) * x * (_ONE - x)


@compiled()
def _guided_rows_to_rgb(
    l_rows: np.ndarray,
    coefficients: np.ndarray,
    row_taps: Taps,
    col_taps: Taps,
    saturation: float,
    lut: np.ndarray,
    out: np.ndarray,
) -> None:
    row_low, row_high, row_weight = row_taps
    col_low, col_high, col_weight = col_taps
    channels, width = coefficients.shape[2], l_rows.shape[1]
    grid_row = np.empty((coefficients.shape[1], channels), np.float32)  # the grid read down at this row
    read = np.empty((channels, width), np.float32)  # ... and across, at each pixel
    a_row, b_row = np.empty(width, np.float32), np.empty(width, np.float32)
    linear = np.empty((3, width), np.float32)
    for row in range(l_rows.shape[0]):
        above, below, down = coefficients[row_low[row]], coefficients[row_high[row]], row_weight[row]
        for col in range(grid_row.shape[0]):
            for c in range(channels):
                grid_row[col, c] = above[col, c] + down * (below[col, c] - above[col, c])
        for c in range(channels):
            for col in range(width):
                left = grid_row[col_low[col], c]
                read[c, col] = left + col_weight[col] * (grid_row[col_high[col], c] - left)
        for col in range(width):
            lightness = l_rows[row, col]
            guide, gain = lightness * _PER_HUNDRED, chroma_gain(lightness, saturation)
            a_row[col] = (read[0, col] * guide + read[2, col]) * gain
            b_row[col] = (read[1, col] * guide + read[3, col]) * gain
        if channels == 6:  # the hints' correction, added after saturation
            for col in range(width):
                a_row[col] += read[4, col]
                b_row[col] += read[5, col]
        _lab_row_to_rgb(l_rows[row], a_row, b_row, linear, lut, out[row])


def guided_rows_to_rgb(
    l_rows: np.ndarray,
    coefficients: np.ndarray,
    row_taps: Taps,
    col_taps: Taps,
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
    _guided_rows_to_rgb(l_rows, coefficients, row_taps, col_taps, np.float32(saturation), encode_lut(dtype), out)
    return out
