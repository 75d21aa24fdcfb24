"""Hints that hold, whatever the model: a smooth, edge-aware correction of a*b* that puts each
curator hint's colour at its point and leaves regions the hint does not reach unchanged.

The correction is a sum of kernels, one per hint: Gaussian in space (spread a few times
the hint's radius) times Gaussian in lightness (so it stays on the hint's side of an
edge), zero beyond three spreads. The kernels live on a grid and are read back by
bilinear interpolation, so their weights are solved against exactly that reading: each
kernel evaluated at the grid nodes around every hint, with those nodes' own lightness.
The field then equals the needed change at every hint point at once, even on a sharp
edge where the nodes around a hint differ in lightness from the hint's own pixel (hints
near each other share the work instead of adding up). A model that already follows the
hints needs only a small correction.
"""

from __future__ import annotations

from math import ceil, floor

import numpy as np
from scipy.ndimage import map_coordinates

#: Spatial spread of a hint's correction, in hint radii, and its minimum in grid pixels.
SPREAD_RADII = 3.0
MIN_SPREAD_PX = 3.0
#: Lightness spread (CIE L* units): pixels this much lighter or darker get e^-1/2 of it.
LIGHTNESS_SPREAD = 8.0
_REGULARISER = 1e-4


def _kernel(rows: object, cols: object, l_values: object, row: object, col: object, l_hint: object, spread: object) -> np.ndarray:
    """A hint's kernel (centred at row, col, with its L* and spread) at grid points with L* `l_values`."""
    spatial = ((rows - row) ** 2 + (cols - col) ** 2) / (2.0 * spread**2)  # type: ignore[operator]
    tonal = (l_values - l_hint) ** 2 / (2.0 * LIGHTNESS_SPREAD**2)  # type: ignore[operator]
    return np.exp(-(spatial + tonal))


def _node_reading(l_grid: np.ndarray, positions: np.ndarray, l_hints: np.ndarray, spreads: np.ndarray) -> np.ndarray:
    """n x n: what kernel j contributes to the bilinear reading of the grid at hint i."""
    height, width = l_grid.shape
    reading = np.zeros((len(positions), len(positions)), np.float64)
    for i, (row, col) in enumerate(positions):
        r0, c0 = int(np.clip(np.floor(row), 0, height - 1)), int(np.clip(np.floor(col), 0, width - 1))
        r1, c1 = min(r0 + 1, height - 1), min(c0 + 1, width - 1)
        fr, fc = float(np.clip(row - r0, 0, 1)), float(np.clip(col - c0, 0, 1))
        for nr, nc, weight in ((r0, c0, (1 - fr) * (1 - fc)), (r0, c1, (1 - fr) * fc), (r1, c0, fr * (1 - fc)), (r1, c1, fr * fc)):
            if weight == 0.0:
                continue
            k = _kernel(np.float64(nr), np.float64(nc), np.float64(l_grid[nr, nc]), positions[:, 0], positions[:, 1], l_hints, spreads)
            k[np.hypot(nr - positions[:, 0], nc - positions[:, 1]) > 3 * spreads] = 0.0  # the same cut-off as the field's
            reading[i] += weight * k
    return reading


def correction_field(
    l_grid: np.ndarray, positions: np.ndarray, l_hints: np.ndarray, spreads: np.ndarray, change: np.ndarray
) -> np.ndarray:
    """A grid of a*b* corrections (H x W x 2 float32) whose bilinear reading at `positions` is `change` (n x 2).

    `l_grid`: H x W L* of the grid; `positions`: n x 2 (row, column) in grid pixels;
    `l_hints`: the L* at each hint; `spreads`: each hint's spatial spread in grid pixels.
    """
    height, width = l_grid.shape
    n = len(positions)
    reading = _node_reading(l_grid, positions, l_hints, spreads)
    weights = np.linalg.lstsq(reading + _REGULARISER * np.eye(n), change.astype(np.float64), rcond=None)[0]
    field = np.zeros((height, width, 2), np.float32)
    for j in range(n):
        row, col, reach = positions[j, 0], positions[j, 1], 3 * spreads[j]
        r0, r1 = max(0, floor(row - reach)), min(height, ceil(row + reach) + 1)
        c0, c1 = max(0, floor(col - reach)), min(width, ceil(col + reach) + 1)
        if r0 >= r1 or c0 >= c1:
            continue
        rows, cols = np.mgrid[r0:r1, c0:c1]
        k = _kernel(rows, cols, l_grid[r0:r1, c0:c1], row, col, l_hints[j], spreads[j])
        k[np.hypot(rows - row, cols - col) > reach] = 0.0
        field[r0:r1, c0:c1] += k[..., None] * weights[j].astype(np.float32)
    return field


def sample(grid_hwc: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Bilinear samples (n x C) of a grid at (row, column) positions."""
    return np.stack(
        [map_coordinates(grid_hwc[..., c], positions.T, order=1, mode="nearest") for c in range(grid_hwc.shape[2])], axis=-1
    )


def hold_hints(
    l_grid: np.ndarray, positions: np.ndarray, l_hints: np.ndarray, spreads: np.ndarray, change: np.ndarray
) -> np.ndarray:
    """The correction field whose bilinear reading at each hint is `change` (refined once
    for what float32 storage of the field loses)."""
    field = correction_field(l_grid, positions, l_hints, spreads, change)
    residual = change - sample(field, positions)
    return field + correction_field(l_grid, positions, l_hints, spreads, residual)
