"""Hints land in the right place in every view: global squeeze, working scale, patch crops."""

from __future__ import annotations

import numpy as np

from hints.raster import rasterize
from hints.schema import Hint


def test_hint_lands_on_its_pixel_at_full_scale() -> None:
    ab, mask = rasterize([Hint(30, 10, (20.0, -15.0), 2.0)], 40, 50, 1.0, 1.0)
    assert mask[10, 30] == 1 and tuple(ab[10, 30]) == (20.0, -15.0)
    assert mask.sum() == 13  # a disc of radius 2: 13 pixels
    assert mask[10, 33] == 0 and mask[13, 30] == 0


def test_scaled_and_cropped_views_agree() -> None:
    hint = Hint(600, 300, (10.0, 40.0), 8.0)
    full_ab, full_mask = rasterize([hint], 1000, 1200, 0.25, 0.25)  # working resolution
    patch_ab, patch_mask = rasterize([hint], 64, 64, 0.25, 0.25, top=50, left=120)  # a patch of it
    np.testing.assert_array_equal(patch_mask, full_mask[50:114, 120:184])
    np.testing.assert_array_equal(patch_ab, full_ab[50:114, 120:184])
    assert patch_mask.sum() > 0


def test_tiny_radius_still_marks_a_pixel_and_far_hints_are_left_out() -> None:
    ab, mask = rasterize([Hint(500, 500, (5.0, 5.0), 1.0), Hint(5000, 5000, (9.0, 9.0), 3.0)], 16, 16, 0.01, 0.01)
    assert mask.sum() == 1 and mask[5, 5] == 1  # (500 + 0.5) * 0.01 - 0.5 = 4.505 -> row 5
