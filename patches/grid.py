"""Tile geometry as plain data: each tile's halo (the patch a model sees) and core (the part
of the image it is responsible for). No pixels here, so it is tested without images.

Every halo is exactly `tile_px` square when the image is at least that large (models
run on full batches of equal patches); the last halo in a row or column is shifted
back inside the image rather than cut short. Neighbouring halos overlap by at least
`overlap_px`; cores partition the image, split at the middle of each overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil


@dataclass(frozen=True)
class Box:
    """A half-open pixel rectangle: rows top..bottom-1, columns left..right-1."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def contains(self, row: float, col: float) -> bool:
        return self.top <= row < self.bottom and self.left <= col < self.right


@dataclass(frozen=True)
class Tile:
    index: int
    halo: Box  # what the model sees
    core: Box  # what this tile contributes alone; cores partition the image
    # Which sides meet a neighbouring tile (and so are blended): top, left, bottom, right.
    shared: tuple[bool, bool, bool, bool]


@dataclass(frozen=True)
class TileGrid:
    height: int
    width: int
    tile_px: int
    overlap_px: int
    tiles: tuple[Tile, ...]


def _starts(size: int, tile_px: int, overlap_px: int) -> list[int]:
    """Window starts along one axis: evenly spread, each window tile_px long, inside 0..size."""
    if size <= tile_px:
        return [0]
    stride = tile_px - overlap_px
    count = ceil((size - tile_px) / stride) + 1
    # Spread evenly so every overlap is at least overlap_px (not one thin last overlap).
    return [round(i * (size - tile_px) / (count - 1)) for i in range(count)]


def _cores(starts: list[int], size: int, tile_px: int) -> list[tuple[int, int]]:
    ends = [min(s + tile_px, size) for s in starts]
    cuts = [0] + [(ends[i] + starts[i + 1]) // 2 for i in range(len(starts) - 1)] + [size]
    return list(zip(cuts[:-1], cuts[1:]))


def tile_grid(height: int, width: int, tile_px: int, overlap_px: int) -> TileGrid:
    """The tiles covering a height x width image with tile_px halos overlapping by overlap_px."""
    if height < 1 or width < 1:
        raise ValueError(f"image must have pixels, got {height}x{width}")
    if not 0 <= overlap_px < tile_px // 2 + 1 or tile_px < 1:
        raise ValueError(f"need 0 <= overlap_px ({overlap_px}) <= tile_px/2 ({tile_px}/2)")
    rows, cols = _starts(height, tile_px, overlap_px), _starts(width, tile_px, overlap_px)
    row_cores, col_cores = _cores(rows, height, tile_px), _cores(cols, width, tile_px)
    tiles = []
    for i, (top, (core_top, core_bottom)) in enumerate(zip(rows, row_cores)):
        for j, (left, (core_left, core_right)) in enumerate(zip(cols, col_cores)):
            tiles.append(
                Tile(
                    index=len(tiles),
                    halo=Box(top, left, min(top + tile_px, height), min(left + tile_px, width)),
                    core=Box(core_top, core_left, core_bottom, core_right),
                    shared=(i > 0, j > 0, i < len(rows) - 1, j < len(cols) - 1),
                )
            )
    return TileGrid(height, width, tile_px, overlap_px, tuple(tiles))
