"""Cutting an image into its tiles' patches and stitching patch results back seamlessly.

Stitching is a weighted average divided by the summed weights. Each tile's weight is a
raised-cosine (Hann) ramp across the overlap on every side it shares with a neighbour
and 1 elsewhere, so weights are continuous (no seam) and positive everywhere (every
pixel is defined), and a result that agrees across tiles comes back unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from patches.grid import Tile, TileGrid


def _ramp(length: int) -> np.ndarray:
    """Hann half-window rising from just above 0 to just below 1 over `length` pixels."""
    k = (np.arange(length, dtype=np.float64) + 0.5) / length
    return 0.5 - 0.5 * np.cos(np.pi * k)


def blend_window(tile: Tile, overlap_px: int) -> np.ndarray:
    """The tile's weight over its halo, halo.height x halo.width float32, values in (0, 1]."""
    h, w = tile.halo.height, tile.halo.width
    rows, cols = np.ones(h), np.ones(w)
    top, left, bottom, right = tile.shared
    ramp_h, ramp_w = min(overlap_px, h // 2), min(overlap_px, w // 2)
    if ramp_h:
        if top:
            rows[:ramp_h] = _ramp(ramp_h)
        if bottom:
            rows[h - ramp_h :] = np.minimum(rows[h - ramp_h :], _ramp(ramp_h)[::-1])
    if ramp_w:
        if left:
            cols[:ramp_w] = _ramp(ramp_w)
        if right:
            cols[w - ramp_w :] = np.minimum(cols[w - ramp_w :], _ramp(ramp_w)[::-1])
    return np.outer(rows, cols).astype(np.float32)


def split(image: np.ndarray, grid: TileGrid) -> list[np.ndarray]:
    """Each tile's patch of `image` (H x W or H x W x C), as views."""
    if image.shape[:2] != (grid.height, grid.width):
        raise ValueError(f"image {image.shape[:2]} does not match grid {grid.height}x{grid.width}")
    return [image[tile.halo.slices] for tile in grid.tiles]


def stitch(grid: TileGrid, results: Iterable[tuple[Tile, np.ndarray]]) -> np.ndarray:
    """Blend per-tile results (each halo-sized, H x W or H x W x C) into one float32 image."""
    total: np.ndarray | None = None
    weight = np.zeros((grid.height, grid.width), np.float32)
    for tile, patch in results:
        if patch.shape[:2] != (tile.halo.height, tile.halo.width):
            raise ValueError(f"tile {tile.index}: result {patch.shape[:2]} is not its halo's size")
        if total is None:
            total = np.zeros((grid.height, grid.width) + patch.shape[2:], np.float32)
        w = blend_window(tile, grid.overlap_px)
        total[tile.halo.slices] += patch * (w if patch.ndim == 2 else w[..., None])
        weight[tile.halo.slices] += w
    if total is None or not weight.all():
        raise ValueError("results do not cover the image: every tile needs a result")
    return total / (weight if total.ndim == 2 else weight[..., None])
