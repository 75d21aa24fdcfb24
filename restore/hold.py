"""Hints that hold, whatever the model: a smooth, edge-aware correction of a*b* that puts each
curator hint's colour at its point and leaves regions the hint does not reach unchanged.

The correction is a sum of kernels, one per hint: Gaussian in space (spread a few times
the hint's radius) times Gaussian in lightness (so it stays on the hint's side of an
edge), zero beyond three spreads. Their weights are solved so the field equals the
needed change at every hint point at once (hints near each other share the work instead
of adding up), then the field is checked where it will really be read and refined once.
A model that already follows the hints needs only a small correction.
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


def _kernel(rows: np.ndarray, cols: np.ndarray, l_values: np.ndarray, row: float, col: float, l_hint: float, spread: float) -> np.ndarray:
    spatial = ((rows - row) ** 2 + (cols - col) ** 2) / (2.0 * spread**2)
    tonal = (l_values - l_hint) ** 2 / (2.0 * LIGHTNESS_SPREAD**2)
    return np.exp(-(spatial + tonal)).astype(np.float32)


def correction_field(
    l_grid: np.ndarray, positions: np.ndarray, l_hints: np.ndarray, spreads: np.ndarray, change: np.ndarray
) -> np.ndarray:
    """A grid of a*b* corrections (H x W x 2 float32) equal to `change` (n x 2) at `positions`.

    `l_grid`: H x W L* of the grid; `positions`: n x 2 (row, column) in grid pixels;
    `l_hints`: the L* at each hint; `spreads`: each hint's spatial spread in grid pixels.
    """
    height, width = l_grid.shape
    n = len(positions)
    gram = np.empty((n, n), np.float64)
    for j in range(n):
        gram[:, j] = _kernel(positions[:, 0], positions[:, 1], l_hints, positions[j, 0], positions[j, 1], l_hints[j], spreads[j])
        far = np.hypot(positions[:, 0] - positions[j, 0], positions[:, 1] - positions[j, 1]) > 3 * spreads[j]
        gram[far, j] = 0.0  # the kernel is cut off at three spreads, here as on the grid
    weights = np.linalg.solve(gram + _REGULARISER * np.eye(n), change.astype(np.float64))
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
    """The correction field, refined once so that its bilinear reading at each hint is `change`."""
    field = correction_field(l_grid, positions, l_hints, spreads, change)
    residual = change - sample(field, positions)
    return field + correction_field(l_grid, positions, l_hints, spreads, residual)
