"""Rasterizing hints into model inputs at any resolution the pipeline uses.

A view is the scan scaled by (scale_y, scale_x) and cropped at (top, left): the global
pass squeezes the whole scan to the model's input; a patch is a box of the working
resolution. A hint becomes a disc of its radius scaled to the view (at least the one
pixel it falls on), carrying its a*b* and a mask of 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil, floor

import numpy as np

from hints.schema import Hint


def to_view(x_px: float, y_px: float, scale_y: float, scale_x: float, top: float = 0.0, left: float = 0.0) -> tuple[float, float]:
    """A scan pixel's (row, column) in a view (pixel centres map to pixel centres)."""
    return (y_px + 0.5) * scale_y - 0.5 - top, (x_px + 0.5) * scale_x - 0.5 - left


def rasterize(
    hints: Sequence[Hint], height: int, width: int, scale_y: float, scale_x: float, top: float = 0.0, left: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(hint_ab_hw2, hint_mask_hw) float32 for the view; later hints win where discs overlap."""
    ab = np.zeros((height, width, 2), np.float32)
    mask = np.zeros((height, width), np.float32)
    for hint in hints:
        row, col = to_view(hint.x_px, hint.y_px, scale_y, scale_x, top, left)
        radius = hint.radius_px * min(scale_y, scale_x)
        r0, r1 = max(0, floor(row - radius)), min(height, ceil(row + radius) + 1)
        c0, c1 = max(0, floor(col - radius)), min(width, ceil(col + radius) + 1)
        if r0 >= r1 or c0 >= c1:
            continue  # the disc is outside this view
        rows, cols = np.mgrid[r0:r1, c0:c1]
        inside = (rows - row) ** 2 + (cols - col) ** 2 <= radius**2
        nearest = (int(round(row)), int(round(col)))
        if r0 <= nearest[0] < r1 and c0 <= nearest[1] < c1:
            inside[nearest[0] - r0, nearest[1] - c0] = True  # a tiny disc still marks its pixel
        ab[r0:r1, c0:c1][inside] = hint.ab
        mask[r0:r1, c0:c1][inside] = 1.0
    return ab, mask
