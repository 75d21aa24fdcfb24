"""Steps 4 and 5 of the pipeline (restore/pipeline.py): the working a*b* upsampled to full
resolution by a guided filter whose guide is the scan's own L*, saturated, made to hold the
hints, and recombined with that L* into sRGB at the scan's depth, strip by strip."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from hints.schema import Hint
from restore.colour import Taps, chroma_gain, guided_rows_to_rgb
from restore.hold import MIN_SPREAD_PX, SPREAD_RADII, hold_hints, sample
from restore.scanio.read import ScanPixels
from restore.threads import run_threaded

#: Rows of the full-resolution image recombined at a time: the unit the threads share out
#: and the TIFF writers write (a compressed result's strips). Small enough that a strip's
#: result (4.6 MB at 6000 px wide, 16-bit) is reused from the allocator rather than mapped and
#: faulted in afresh (with the NumPy passes before the compiled loop, recombining 24 MP took
#: 1.11 s at 128 rows and 1.16 to 1.26 s at 512).
FULL_RES_STRIP_ROWS = 128


# Guided filter: radius in working-resolution pixels (scaled to full resolution), and its
# regulariser for a guide in 0..1 (L*/100): regions whose lightness varies less than
# about sqrt(eps) * 100 = 1 L* unit are smoothed, real edges are kept. With a step in
# a*b* blurred over two working pixels, bleeding across the edge (vs. bilinear) was
# 16.4 -> 13.0, 9.7, 7.8, 6.6 for radius 1, 2, 3, 4; box filters cost the same at any radius.
GUIDE_RADIUS_WORKING_PX = 4


GUIDE_EPS = 1e-4


# The filter's coefficients are computed at this multiple of the working resolution.
GUIDE_SCALE = 2.0


def result_dtype(scan: ScanPixels) -> type[np.uint8] | type[np.uint16]:
    """The result's sample type: the scan's own depth."""
    return np.uint16 if scan.bit_depth == 16 else np.uint8


def saturate(l_hw: np.ndarray, ab_hw2: np.ndarray, saturation: float) -> np.ndarray:
    """Chroma times `saturation` in midtones, fading to unchanged at black and white
    (`colour.chroma_gain`, which the recombination applies per pixel)."""
    return ab_hw2 if saturation == 1.0 else ab_hw2 * chroma_gain(l_hw, saturation)[..., None]


def guided_coefficients(guide_hw: np.ndarray, src_hwc: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (2010) as its local linear model: H x W x 2C float32 of
    (a, b) per channel, so that `a * guide + b` is `src` smoothed with `guide`'s edges.

    Computed at a reduced scale and upsampled, it is the fast guided filter (He and Sun,
    2015): the edges still come from the full-resolution guide it is applied to.
    """
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide_hw)
    var_i = box(guide_hw * guide_hw) - mean_i * mean_i
    channels = src_hwc.shape[2]
    coefficients = np.empty(guide_hw.shape + (2 * channels,), np.float32)
    for c in range(channels):
        p = np.ascontiguousarray(src_hwc[..., c])
        mean_p = box(p)
        a = (box(guide_hw * p) - mean_i * mean_p) / (var_i + eps)
        coefficients[..., c] = box(a)
        coefficients[..., channels + c] = box(mean_p - a * mean_i)
    return coefficients


def _hint_correction(
    l_full: np.ndarray, guide: np.ndarray, coefficients: np.ndarray, saturation: float, hints: Sequence[Hint]
) -> np.ndarray:
    """The a*b* correction, on the guide grid, that puts each hint's colour at its pixel.

    What recombine would produce at each hint's full-resolution pixel is computed exactly
    as recombine computes it, so the correction is the difference to the hint."""
    height, width = l_full.shape
    guide_h, guide_w = guide.shape
    rows = np.clip(np.rint([h.y_px for h in hints]), 0, height - 1).astype(np.int64)
    cols = np.clip(np.rint([h.x_px for h in hints]), 0, width - 1).astype(np.int64)
    l_at = l_full[rows, cols].astype(np.float64)
    positions = np.stack([grid_position(rows, height, guide_h), grid_position(cols, width, guide_w)], axis=1)
    coef = sample(coefficients, positions)
    produced = saturate(l_at, coef[:, :2] * (l_at / 100.0)[:, None] + coef[:, 2:], saturation)
    targets = np.array([h.ab for h in hints], np.float64)
    spreads = np.maximum(MIN_SPREAD_PX, SPREAD_RADII * np.array([h.radius_px for h in hints]) * guide_h / height)
    return hold_hints(guide * np.float32(100), positions, l_at, spreads, targets - produced)


def recombine(
    l_full: np.ndarray,
    ab_work: np.ndarray,
    saturation: float,
    dtype: type[np.uint8] | type[np.uint16],
    hints: Sequence[Hint] = (),
) -> np.ndarray:
    """Full-resolution sRGB (H x W x 3 at `dtype`) from the scan's L* and working-resolution
    a*b*, as one array (see `recombine_rows`)."""
    rgb = np.empty(l_full.shape + (3,), dtype)

    def keep(top: int, rows: np.ndarray) -> None:
        rgb[top : top + len(rows)] = rows

    recombine_rows(l_full, ab_work, saturation, dtype, keep, hints)
    return rgb


def recombine_rows(
    l_full: np.ndarray,
    ab_work: np.ndarray,
    saturation: float,
    dtype: type[np.uint8] | type[np.uint16],
    sink: Callable[[int, np.ndarray], None],
    hints: Sequence[Hint] = (),
) -> None:
    """Full-resolution sRGB from the scan's L* and working-resolution a*b*, handed to
    `sink(top, rows)` a strip of rows at a time (from several threads, in no set order).

    The guided filter's coefficients are computed at GUIDE_SCALE times the working
    resolution (never above the scan's) and applied to the full-resolution L* strip by
    strip, on several threads, by one compiled loop per strip that also saturates and
    converts to sRGB (`colour.guided_rows_to_rgb`, which releases the GIL). Hints are made
    to hold (restore/hold.py): a correction on the same grid, added after saturation.
    """
    height, width = l_full.shape
    work_h, work_w = ab_work.shape[:2]
    scale = min(GUIDE_SCALE, height / work_h, width / work_w)
    guide_h, guide_w = max(1, round(work_h * scale)), max(1, round(work_w * scale))
    guide = cv2.resize(l_full, (guide_w, guide_h), interpolation=cv2.INTER_AREA) / np.float32(100)
    ab_guide = cv2.resize(ab_work, (guide_w, guide_h), interpolation=cv2.INTER_LINEAR)
    radius = max(1, round(GUIDE_RADIUS_WORKING_PX * scale))
    coefficients = guided_coefficients(guide, ab_guide, radius, GUIDE_EPS)  # a_a, a_b, b_a, b_b
    if hints:
        correction = _hint_correction(l_full, guide, coefficients, saturation, hints)
        coefficients = np.concatenate([coefficients, correction], axis=2, dtype=np.float32)  # + delta_a, delta_b
    row_taps, col_taps = bilinear_taps(height, guide_h), bilinear_taps(width, guide_w)
    l_full = np.ascontiguousarray(l_full, dtype=np.float32)  # usually itself: the scan's L*

    def strip(top: int) -> None:
        rows = slice(top, min(height, top + FULL_RES_STRIP_ROWS))
        strip_taps = (row_taps[0][rows], row_taps[1][rows], row_taps[2][rows])
        sink(top, guided_rows_to_rgb(l_full[rows], coefficients, strip_taps, col_taps, saturation, dtype))

    run_threaded(strip, range(0, height, FULL_RES_STRIP_ROWS))


def grid_position(pixels: np.ndarray, size: int, grid_size: int) -> np.ndarray:
    """Where pixels (indices along an axis of `size`) lie on a grid of `grid_size` cells
    covering the same extent, centres aligned: in grid cells, float64, unclipped."""
    return (np.asarray(pixels, dtype=np.float64) + 0.5) * (grid_size / size) - 0.5


def bilinear_taps(size: int, grid_size: int) -> Taps:
    """Bilinear reading of a grid of `grid_size` cells at each of `size` pixels covering the
    same extent (`grid_position`; edges replicated): per pixel the two grid indices and
    the second one's weight (indices int64, weights float32)."""
    position = np.clip(grid_position(np.arange(size), size, grid_size), 0, grid_size - 1)
    low = np.floor(position).astype(np.int64)
    return low, np.minimum(low + 1, grid_size - 1), (position - low).astype(np.float32)
