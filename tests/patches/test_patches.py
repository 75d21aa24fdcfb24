"""Tile geometry and stitching: cores partition the image, split-then-stitch is the identity
for any array and size, and disagreeing tiles meet without a seam."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patches.grid import tile_grid
from patches.stitch import blend_window, split, stitch


@st.composite
def grids(draw: st.DrawFn):  # noqa: ANN201
    tile = draw(st.integers(1, 48))
    overlap = draw(st.integers(0, tile // 2))
    height = draw(st.integers(1, 160))
    width = draw(st.integers(1, 160))
    return tile_grid(height, width, tile, overlap)


EXPLICIT = [(97, 89, 32, 8), (5, 3, 32, 8), (1, 1, 16, 4), (224, 224, 224, 56), (225, 449, 224, 56), (101, 103, 7, 3)]


def _check_geometry(grid) -> None:  # noqa: ANN001
    owner = np.zeros((grid.height, grid.width), np.int32)
    for tile in grid.tiles:
        owner[tile.core.slices] += 1
        halo, core = tile.halo, tile.core
        assert 0 <= halo.top <= core.top < core.bottom <= halo.bottom <= grid.height
        assert 0 <= halo.left <= core.left < core.right <= halo.right <= grid.width
        assert (halo.height, halo.width) == (min(grid.tile_px, grid.height), min(grid.tile_px, grid.width))
    assert (owner == 1).all()  # cores partition the image
    # Neighbours overlap by at least overlap_px.
    lefts = sorted({t.halo.left for t in grid.tiles})
    for a, b in zip(lefts, lefts[1:]):
        assert a + min(grid.tile_px, grid.width) - b >= grid.overlap_px


@settings(max_examples=150, deadline=None)
@given(grids())
def test_geometry_properties(grid) -> None:  # noqa: ANN001
    _check_geometry(grid)


@pytest.mark.parametrize(("h", "w", "tile", "overlap"), EXPLICIT)
def test_geometry_explicit_sizes(h: int, w: int, tile: int, overlap: int) -> None:
    _check_geometry(tile_grid(h, w, tile, overlap))


@settings(max_examples=150, deadline=None)
@given(grids(), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_split_then_stitch_is_identity(grid, channels: int, seed: int) -> None:  # noqa: ANN001
    shape = (grid.height, grid.width) + ((channels,) if channels else ())
    image = np.random.default_rng(seed).normal(0, 50, shape).astype(np.float32)
    stitched = stitch(grid, zip(grid.tiles, split(image, grid)))
    assert stitched.shape == image.shape
    np.testing.assert_allclose(stitched, image, rtol=1e-5, atol=1e-4)


def test_constant_field_stitches_without_any_change() -> None:
    grid = tile_grid(300, 451, 64, 16)
    patches = [np.full((t.halo.height, t.halo.width, 2), 7.25, np.float32) for t in grid.tiles]
    stitched = stitch(grid, zip(grid.tiles, patches))
    np.testing.assert_allclose(stitched, 7.25, rtol=1e-6)


def test_disagreeing_tiles_meet_without_a_seam() -> None:
    # Each tile returns its own constant (as if a model disagreed from patch to patch).
    # A hard cut would jump by the whole difference at the core boundary; blending must
    # spread it over the overlap.
    overlap = 16
    grid = tile_grid(200, 300, 64, overlap)
    rng = np.random.default_rng(0)
    values = rng.uniform(-20, 20, len(grid.tiles))
    stitched = stitch(grid, [(t, np.full((t.halo.height, t.halo.width), v, np.float32)) for t, v in zip(grid.tiles, values)])
    spread = values.max() - values.min()
    steps = max(np.abs(np.diff(stitched, axis=0)).max(), np.abs(np.diff(stitched, axis=1)).max())
    assert steps <= spread * 4.0 / overlap
    assert stitched.min() >= values.min() - 1e-4 and stitched.max() <= values.max() + 1e-4


def test_blend_window_is_positive_and_flat_at_image_borders() -> None:
    grid = tile_grid(100, 100, 64, 16)
    for tile in grid.tiles:
        window = blend_window(tile, grid.overlap_px)
        assert window.min() > 0 and window.max() <= 1
        top, left, _bottom, _right = tile.shared
        if not top:
            assert np.all(window[0, 16:-16] == 1.0)
        if not left:
            assert np.all(window[16:-16, 0] == 1.0)


def test_missing_results_are_an_error() -> None:
    grid = tile_grid(100, 100, 64, 16)
    with pytest.raises(ValueError, match="do not cover"):
        stitch(grid, [(grid.tiles[0], np.zeros((64, 64), np.float32))])
