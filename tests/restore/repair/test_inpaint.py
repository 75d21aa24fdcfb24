"""Inpainting of damaged lightness: unmasked pixels bit-identical, thin damage filled from its
surroundings, the crops giving the whole image's fill, and the edge cases (empty mask, a mask
on the border, a mask over everything)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from restore.repair import inpaint
from restore.repair.inpaint import DEFAULT_METHOD, INPAINT_METHODS, inpaint_lightness


def gradient(height: int = 120, width: int = 160) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return (20 + 0.3 * x + 0.15 * y).astype(np.float32)


def textured(height: int = 150, width: int = 200, seed: int = 0) -> np.ndarray:
    """A gradient with edges (a bright disc, a dark bar) and grain."""
    rng = np.random.default_rng(seed)
    l_hw = gradient(height, width)
    cv2.circle(l_hw, (width // 3, height // 2), height // 4, 85.0, -1)
    l_hw[:, int(width * 0.7) : int(width * 0.75)] = 10.0
    return np.clip(l_hw + rng.normal(0, 1.5, l_hw.shape), 0, 100).astype(np.float32)


def damage_mask(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Thin strokes (1-4 px), specks and a long crack, some touching the border."""
    rng = np.random.default_rng(seed)
    height, width = shape
    canvas = np.zeros(shape, np.uint8)
    for _ in range(6):
        p, q = rng.integers(0, [width, height], 2), rng.integers(0, [width, height], 2)
        cv2.line(canvas, tuple(int(v) for v in p), tuple(int(v) for v in q), 1, int(rng.integers(1, 5)))
    for _ in range(30):
        cv2.circle(canvas, (int(rng.integers(0, width)), int(rng.integers(0, height))), int(rng.integers(0, 3)), 1, -1)
    cv2.line(canvas, (0, 0), (width - 1, height // 3), 1, 2)  # from the corner
    return canvas.astype(bool)


@pytest.mark.parametrize("method", INPAINT_METHODS)
def test_every_method_returns_unmasked_pixels_bit_identical(method: str) -> None:
    l_hw = textured()
    mask_hw = damage_mask(l_hw.shape)
    damaged = np.where(mask_hw, 97.0, l_hw).astype(np.float32)
    before = damaged.copy()
    out = inpaint_lightness(damaged, mask_hw, method=method)
    assert out.dtype == np.float32 and out.shape == l_hw.shape
    assert np.array_equal(out[~mask_hw], damaged[~mask_hw])  # bit for bit
    assert np.array_equal(damaged, before)  # the input is left alone
    # Filled from the surroundings: the 97s are gone and the fill is far closer to the
    # clean image than the damage was.
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 100
    error = np.abs(out[mask_hw] - l_hw[mask_hw]).mean()
    assert error < 0.25 * np.abs(damaged[mask_hw] - l_hw[mask_hw]).mean()


@pytest.mark.parametrize("method", INPAINT_METHODS)
def test_a_thin_bright_scratch_on_a_gradient_is_filled_with_the_gradient(method: str) -> None:
    l_hw = gradient()
    mask_hw = np.zeros(l_hw.shape, bool)
    cv2.line(mask_hw.view(np.uint8), (10, 100), (150, 20), 1, 3)  # a 3 px diagonal scratch
    mask_hw[40:43, :] = True  # and a horizontal one across the whole image
    damaged = np.where(mask_hw, 98.0, l_hw).astype(np.float32)
    out = inpaint_lightness(damaged, mask_hw, method=method)
    error = np.abs(out - l_hw)[mask_hw]
    assert error.mean() < 1.0
    # Ours and the biharmonic fill are exact on a linear ramp but for rounding and the
    # smoothing pass; OpenCV's fills average the neighbours within a radius, weighted towards
    # the nearer side of the scratch, and so lag the ramp (Telea by up to about 2 L*).
    assert error.max() < (0.25 if method in ("directional", "biharmonic") else 2.5)


def test_an_empty_mask_returns_the_input_values() -> None:
    l_hw = textured()
    out = inpaint_lightness(l_hw, np.zeros(l_hw.shape, bool))
    assert out is not l_hw and np.array_equal(out, l_hw)


@pytest.mark.parametrize("method", INPAINT_METHODS)
def test_damage_on_the_border_and_in_the_corners_is_filled(method: str) -> None:
    l_hw = gradient()
    mask_hw = np.zeros(l_hw.shape, bool)
    mask_hw[0:2, :] = True  # along the top edge
    mask_hw[:, -3:] = True  # along the right edge
    mask_hw[-4:, :4] = True  # the bottom-left corner
    damaged = np.where(mask_hw, 5.0, l_hw).astype(np.float32)
    out = inpaint_lightness(damaged, mask_hw, method=method)
    assert np.array_equal(out[~mask_hw], l_hw[~mask_hw])
    # Nothing lies beyond the edge to interpolate towards: extrapolated, so looser.
    assert np.abs(out - l_hw)[mask_hw].max() < 4.0


def test_a_mask_over_everything_returns_the_input_unchanged() -> None:
    l_hw = textured(40, 30)
    out = inpaint_lightness(l_hw, np.ones(l_hw.shape, bool))  # documented: nothing to fill from
    assert out is not l_hw and np.array_equal(out, l_hw)


def test_a_single_undamaged_pixel_fills_everything_else() -> None:
    l_hw = np.full((30, 40), 80.0, np.float32)
    mask_hw = np.ones(l_hw.shape, bool)
    mask_hw[29, 39] = False
    out = inpaint_lightness(np.where(mask_hw, 0.0, l_hw).astype(np.float32), mask_hw)
    assert np.allclose(out, 80.0, atol=0.01)


@pytest.mark.parametrize("method", ["directional", "telea", "ns"])
def test_crops_give_the_whole_image_fill(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """The fill runs on crops (here 48 px, so there are many, and the long strokes are split
    into tiles); the fills that read only within their reach give what one call on the whole
    image gives."""
    l_hw = textured(220, 300, seed=3)
    mask_hw = damage_mask(l_hw.shape, seed=4)
    damaged = np.where(mask_hw, 3.0, l_hw).astype(np.float32)
    whole = inpaint._FILLS[method](damaged, mask_hw)
    monkeypatch.setattr(inpaint, "CROP_PX", 48)
    cropped = inpaint_lightness(damaged, mask_hw, method=method)
    if method == "directional":
        assert np.array_equal(cropped, whole)
    else:
        # Fast marching orders its pixels over the whole front, so a crop that cuts a
        # stroke changes the order near the cut a little.
        assert np.abs(cropped - whole)[mask_hw].mean() < 0.5


def test_a_hole_wider_than_a_crop_is_filled_from_outside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inpaint, "CROP_PX", 32)
    l_hw = np.full((200, 200), 60.0, np.float32)
    mask_hw = np.zeros(l_hw.shape, bool)
    mask_hw[20:180, 30:170] = True  # tiles in its middle see no undamaged pixel
    out = inpaint_lightness(np.where(mask_hw, 99.0, l_hw).astype(np.float32), mask_hw)
    assert np.allclose(out, 60.0, atol=0.01)


def test_bad_arguments_are_refused() -> None:
    l_hw = gradient(10, 10)
    with pytest.raises(ValueError, match="unknown inpainting method"):
        inpaint_lightness(l_hw, np.zeros((10, 10), bool), method="magic")
    with pytest.raises(ValueError, match="float32"):
        inpaint_lightness(l_hw.astype(np.float64), np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="bool mask"):
        inpaint_lightness(l_hw, np.zeros((10, 11), bool))


def test_the_default_method_is_one_of_the_methods_and_is_used_by_default() -> None:
    assert DEFAULT_METHOD in INPAINT_METHODS and len(set(INPAINT_METHODS)) == len(INPAINT_METHODS)
    l_hw = textured()
    mask_hw = damage_mask(l_hw.shape, seed=2)
    assert np.array_equal(inpaint_lightness(l_hw, mask_hw), inpaint_lightness(l_hw, mask_hw, method=DEFAULT_METHOD))
