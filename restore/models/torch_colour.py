"""sRGB <-> CIE Lab (D65) and gray-from-L* in torch, for training and model inputs on any device.

The same formulas as restore/colour.py (scikit-image's), batched: `rgb_b3hw` is sRGB in
0..1, `lab_b3hw` is L* 0..100 and a*, b* roughly -128..127, both B x 3 x H x W float32.
"""

from __future__ import annotations

import torch

# sRGB (linear) -> XYZ and back, D65; the white point folded in as scikit-image does.
_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float32,
)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float32)
_EPSILON = 0.008856  # (6/29)^3
_KAPPA = 7.787  # (29/6)^2 / 3


def _srgb_to_linear(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v > 0.04045, ((v.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, v / 12.92)


def _linear_to_srgb(v: torch.Tensor) -> torch.Tensor:
    v = v.clamp(0.0, 1.0)
    return torch.where(v > 0.0031308, 1.055 * v.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, 12.92 * v)


def rgb_to_lab(rgb_b3hw: torch.Tensor) -> torch.Tensor:
    """sRGB 0..1 -> Lab (see the module docstring)."""
    linear = _srgb_to_linear(rgb_b3hw.float())
    matrix = (_RGB_TO_XYZ / _WHITE_D65[:, None]).to(linear.device)
    xyz = torch.einsum("ij,bjhw->bihw", matrix, linear)
    f = torch.where(xyz > _EPSILON, xyz.clamp(min=_EPSILON) ** (1 / 3), _KAPPA * xyz + 16 / 116)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    l = torch.where(xyz[:, 1] > _EPSILON, 116 * fy - 16, 903.3 * xyz[:, 1])
    return torch.stack([l, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_linear_rgb(lab_b3hw: torch.Tensor) -> torch.Tensor:
    """Lab -> linear sRGB, unclipped (outside 0..1 where the colour is out of gamut)."""
    l, a, b = lab_b3hw[:, 0], lab_b3hw[:, 1], lab_b3hw[:, 2]
    fy = (l + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=1)
    xyz = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / _KAPPA)
    xyz = xyz * _WHITE_D65.to(xyz.device)[None, :, None, None]
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_XYZ).to(xyz.device), xyz)


def lab_to_rgb(lab_b3hw: torch.Tensor) -> torch.Tensor:
    """Lab -> sRGB 0..1, clipped to the gamut per channel."""
    return _linear_to_srgb(lab_to_linear_rgb(lab_b3hw))


def lightness_to_gray(l_bhw: torch.Tensor) -> torch.Tensor:
    """L* 0..100 -> the sRGB gray level 0..1 (R = G = B) that has that lightness."""
    fy = (l_bhw.float() + 16) / 116
    y = torch.where(fy > 0.2068966, fy**3, (fy - 16 / 116) / _KAPPA)
    return _linear_to_srgb(y)
