"""The torch colour conversions agree with restore/colour.py (scikit-image's formulas)."""

from __future__ import annotations

import numpy as np
import torch

from restore import colour
from restore.models import torch_colour
from tests.conftest import colour_u8


def test_rgb_to_lab_matches_the_numpy_conversion() -> None:
    rgb = colour_u8(32, 48)
    expected = colour.rgb_to_lab(rgb)
    got = torch_colour.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_lab_round_trip_in_gamut() -> None:
    rgb = torch.from_numpy(colour_u8(16, 16)).permute(2, 0, 1)[None].float() / 255
    back = torch_colour.lab_to_rgb(torch_colour.rgb_to_lab(rgb))
    assert (back - rgb).abs().max() < 1e-4


def test_gray_from_lightness_has_that_lightness() -> None:
    lightness = torch.linspace(0, 100, 101)[None, None]
    gray = torch_colour.lightness_to_gray(lightness)
    lab = torch_colour.rgb_to_lab(gray[:, None].expand(-1, 3, -1, -1))
    assert (lab[:, 0] - lightness).abs().max() < 1e-3
    # The sRGB matrix's rows sum to the D65 white only to 5 digits: gray is 0.005 off neutral.
    assert lab[:, 1:].abs().max() < 1e-2
