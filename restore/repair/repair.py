"""Damage repair of a scan's full-resolution lightness: the segmenter run tile by tile, its
mask thresholded and dilated, and only the masked pixels filled (restore/repair/inpaint.py).

Damage is thin at full resolution (1 to 10 px on a 6000 px scan), so detection runs on the
scan at its own resolution, never a reduced copy, in overlapping tiles (patches/grid.py)
whose overlap is the segmenter's receptive field: every core pixel sees all the context the
network can use. A network that sees the image on a grid (damage-lite: 8 px, from its
unshuffling and stride) answers differently for a shifted input, so each tile's halo is
widened up and left to start on that grid: the tiled mask is then the mask of the whole
image.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np

from patches.grid import Tile, tile_grid
from restore.repair.inpaint import inpaint_lightness
from restore.settings import RepairSettings

#: Tile side for detection: a batch of 1536 px tiles keeps the network's activations to a
#: few hundred MB while amortising each call's overhead over two million pixels; on a
#: 6000 x 4000 scan the tiles' halos cover 1.5x its pixels with a 104 px overlap, 2x with 344.
DETECTION_TILE_PX = 1536
DETECTION_BATCH = 2


class SegmenterSpec(Protocol):
    """What a result records of its segmenter, and the context its network uses."""

    @property
    def name(self) -> str: ...

    @property
    def weights_sha256(self) -> str | None: ...

    @property
    def receptive_field_px(self) -> int:
        """Full-resolution pixels a probability depends on, across (the tiles' overlap)."""
        ...

    @property
    def alignment_px(self) -> int:
        """The grid the network sees the image on: tiles start on multiples of it."""
        ...


class Segmenter(Protocol):
    """What repair needs of a damage segmenter (restore/models/damage.py DamageSegmenter)."""

    @property
    def spec(self) -> SegmenterSpec: ...

    def probability(self, l_bhw: np.ndarray) -> np.ndarray:
        """B x H x W float32 L* (0..100) -> B x H x W float32 damage probability in 0..1."""
        ...


@dataclass(frozen=True)
class Repair:
    """A repaired lightness and what was repaired: `mask_hw` (H x W bool) the pixels that were
    filled, every other pixel of `l_hw` being the scan's own; `fraction` the mask's share."""

    l_hw: np.ndarray
    mask_hw: np.ndarray
    fraction: float


def detect_damage(l_hw: np.ndarray, segmenter: Segmenter, threshold: float, margin_px: int) -> np.ndarray:
    """H x W bool: pixels whose damage probability exceeds `threshold`, dilated by
    `margin_px` (a disc). `l_hw` is H x W float32 CIE L* (0..100)."""
    mask_hw = np.zeros(l_hw.shape, bool)
    for slices, p_hw in _tile_probabilities(l_hw, segmenter):
        mask_hw[slices] = p_hw > threshold
    if margin_px > 0 and mask_hw.any():
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1, 2 * margin_px + 1))
        mask_hw = cv2.dilate(mask_hw.view(np.uint8), disc).view(bool)
    return mask_hw


def damage_probability(l_hw: np.ndarray, segmenter: Segmenter) -> np.ndarray:
    """H x W float32: the segmenter's damage probability at every pixel, tiled as
    `detect_damage` tiles it (to look at, or to choose a threshold)."""
    probability_hw = np.zeros(l_hw.shape, np.float32)
    for slices, p_hw in _tile_probabilities(l_hw, segmenter):
        probability_hw[slices] = p_hw
    return probability_hw


def _tile_probabilities(l_hw: np.ndarray, segmenter: Segmenter) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """(a tile core's slices, its probabilities) for every tile of `l_hw`, in batches."""
    height, width = l_hw.shape
    overlap_px = min(segmenter.spec.receptive_field_px, DETECTION_TILE_PX // 2)
    grid = tile_grid(height, width, DETECTION_TILE_PX, overlap_px)
    step = segmenter.spec.alignment_px
    tiles = [replace(t, halo=replace(t.halo, top=t.halo.top - t.halo.top % step, left=t.halo.left - t.halo.left % step)) for t in grid.tiles]
    for start in range(0, len(tiles), DETECTION_BATCH):
        batch = _same_size(tiles[start : start + DETECTION_BATCH])
        for group in batch:
            stack = np.stack([l_hw[t.halo.slices] for t in group])
            probability = segmenter.probability(stack)
            for tile, p_hw in zip(group, probability):
                core = tile.core
                yield core.slices, p_hw[core.top - tile.halo.top : core.bottom - tile.halo.top, core.left - tile.halo.left : core.right - tile.halo.left]


def repair_lightness(l_hw: np.ndarray, segmenter: Segmenter, settings: RepairSettings) -> Repair:
    """Detect the damage on `l_hw` (H x W float32 L*) and fill it; pixels outside the mask are
    returned bit-identical."""
    mask_hw = detect_damage(l_hw, segmenter, settings.threshold, settings.margin_px)
    if not mask_hw.any():
        return Repair(l_hw, mask_hw, 0.0)
    repaired = inpaint_lightness(l_hw, mask_hw, method=settings.method)
    return Repair(repaired, mask_hw, float(mask_hw.mean()))


def _same_size(tiles: list[Tile]) -> list[list[Tile]]:
    """Tiles grouped by halo size (edge tiles of a small image can differ), to stack them."""
    groups: dict[tuple[int, int], list[Tile]] = {}
    for tile in tiles:
        groups.setdefault((tile.halo.height, tile.halo.width), []).append(tile)
    return list(groups.values())
