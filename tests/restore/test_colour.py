"""sRGB <-> Lab: agreement with scikit-image, exact round trips, lightness kept out of gamut."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

from restore.colour import gray_to_lightness, lab_to_rgb, lightness_to_gray, rgb_to_lab, rgb_to_lightness


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_lightness_matches_scikit_image(dtype: type) -> None:
    top = np.iinfo(dtype).max
    gray = np.random.default_rng(0).integers(0, top + 1, (40, 50)).astype(dtype)
    expected = rgb2lab(np.repeat(gray[..., None], 3, -1).astype(np.float64) / top)[..., 0]
    np.testing.assert_allclose(gray_to_lightness(gray), expected, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lightness_to_gray_inverts_exactly(dtype: type) -> None:
    levels = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
    assert np.array_equal(lightness_to_gray(gray_to_lightness(levels), dtype), levels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_rgb_to_lab_matches_scikit_image(dtype: type) -> None:
    top = np.iinfo(dtype).max
    rgb = np.random.default_rng(1).integers(0, top + 1, (300, 70, 3)).astype(dtype)  # > one strip
    np.testing.assert_allclose(rgb_to_lab(rgb), rgb2lab(rgb.astype(np.float64) / top), atol=1e-3)


@pytest.mark.parametrize(("dtype", "tolerance"), [(np.uint8, 0), (np.uint16, 1)])
def test_rgb_lab_round_trip(dtype: type, tolerance: int) -> None:
    top = np.iinfo(dtype).max
    rgb = np.random.default_rng(2).integers(0, top + 1, (300, 60, 3)).astype(dtype)
    lab = rgb_to_lab(rgb)
    back = lab_to_rgb(lab[..., 0], lab[..., 1:], dtype)
    assert np.abs(back.astype(np.int64) - rgb).max() <= tolerance


def test_out_of_gamut_colours_keep_their_lightness_and_hue() -> None:
    l_hw = np.full((4, 4), 60.0, np.float32)
    hue = np.linspace(0, 2 * np.pi, 16, endpoint=False).reshape(4, 4)
    ab = np.stack([120 * np.cos(hue), 120 * np.sin(hue)], -1).astype(np.float32)  # far outside sRGB
    lab_back = rgb_to_lab(lab_to_rgb(l_hw, ab, np.uint16))
    np.testing.assert_allclose(lab_back[..., 0], 60.0, atol=0.01)
    hue_back = np.arctan2(lab_back[..., 2], lab_back[..., 1])
    assert np.abs(np.angle(np.exp(1j * (hue_back - hue)))).max() < 0.15  # radians
    assert np.hypot(lab_back[..., 1], lab_back[..., 2]).min() > 10  # reduced, not washed out


def test_colourized_gray_keeps_its_lightness_at_8_bits() -> None:
    gray = np.random.default_rng(3).integers(0, 256, (64, 64)).astype(np.uint8)
    l_hw = gray_to_lightness(gray)
    ab = np.random.default_rng(4).uniform(-60, 60, (64, 64, 2)).astype(np.float32)
    rgb = lab_to_rgb(l_hw, ab, np.uint8)
    # 8-bit quantisation of three channels moves L* by well under one gray level.
    assert np.abs(rgb_to_lightness(rgb) - l_hw).max() < 0.5


def test_out_of_gamut_chroma_is_reduced_to_the_gamut_edge_keeping_luminance() -> None:
    """The gamut step keeps the largest chroma that fits (to its bisection's 1/1024), in
    deep shadows (where f^-1 is linear, not a cube) as in highlights, and Y exactly."""
    from skimage.color.colorconv import xyz_from_rgb

    from restore.colour import linear_in_gamut

    lightness = np.array([2.0, 5.0, 30.0, 60.0, 90.0, 98.0], np.float32)
    hue = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    l_grid, hue_grid = np.meshgrid(lightness, hue, indexing="ij")
    lab = np.stack([l_grid, 150 * np.cos(hue_grid), 150 * np.sin(hue_grid)], -1).astype(np.float32)
    linear = np.array([[linear_in_gamut(*pixel) for pixel in row] for row in lab])
    assert linear.min() >= -1e-4 and linear.max() <= 1 + 1e-4
    to_edge = np.minimum(linear.min(-1), 1 - linear.max(-1))  # 0 on the gamut's surface
    assert np.abs(to_edge).max() < 0.01
    f_y = (l_grid.astype(np.float64) + 16) / 116
    y_expected = np.where(f_y > 6 / 29, f_y**3, 3 * (6 / 29) ** 2 * (f_y - 4 / 29))
    np.testing.assert_allclose(linear @ xyz_from_rgb[1], y_expected, atol=2e-5)


def test_compiled_loops_still_compile_where_nothing_can_be_cached() -> None:
    """A read-only installation and home leave Numba nowhere to cache: it then raises at
    decoration, and `compiled` compiles per process instead (a function with no source
    file stands in for it here)."""
    import numba

    from restore.colour import compiled

    namespace: dict[str, object] = {}
    exec("def twice(x):\n    return 2 * x\n", namespace)
    with pytest.raises(RuntimeError, match="cannot cache"):
        numba.njit(cache=True)(namespace["twice"])
    assert compiled()(namespace["twice"])(21) == 42


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_chroma_that_is_not_a_number_comes_out_gray_instead_of_crashing(dtype: type) -> None:
    """A model's NaN or infinite a*b* must not reach the encoding table as an index (the
    compiled loop does not check bounds): the pixel comes out gray at its L*."""
    l_hw = np.full((1, 5), 50.0, np.float32)
    ab = np.array([[[np.nan, 0], [0, np.inf], [-np.inf, 5], [np.nan, np.nan], [20, -30]]], np.float32)
    rgb = lab_to_rgb(l_hw, ab, dtype)
    gray = lab_to_rgb(l_hw, np.zeros_like(ab), dtype)
    assert np.array_equal(rgb[:, :4], gray[:, :4]) and np.ptp(gray[0, 0].astype(int)) <= 1  # neutral
    assert not np.array_equal(rgb[:, 4], gray[:, 4])
    assert lab_to_rgb(np.array([[np.nan, np.inf, -np.inf]], np.float32), np.zeros((1, 3, 2), np.float32), dtype).shape == (1, 3, 3)
