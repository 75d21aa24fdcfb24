"""`ramp`: a deterministic, weight-free model for testing the pipeline and for demos.

It maps lightness to a fixed colour ramp (cool shadows, warm midtones and highlights)
and follows hints exactly where given. It is not a colorization method; it makes every
pipeline property (sizes, lightness kept, tiling, hints, resume) checkable without
weights. Pointwise, so a tiled result equals the whole-image result exactly.
"""

from __future__ import annotations

import numpy as np

from restore.models.base import ModelSpec, check_batch
from restore.models.registry import register

SPEC = ModelSpec(
    name="ramp",
    description="test model: lightness mapped to a fixed colour ramp; follows hints exactly",
    input_px=224,
    receptive_field_px=1,
    takes_hints=True,
    licence="MIT (part of photochrom; no weights)",
    batch_size=16,
)

# (L*, a*, b*) control points of the ramp.
_L = np.array([0.0, 30.0, 60.0, 100.0], np.float32)
_A = np.array([0.0, -4.0, 12.0, 0.0], np.float32)
_B = np.array([0.0, -18.0, 22.0, 0.0], np.float32)


def ramp_colours(l_any: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
    """The ramp's a*b* for L* of any shape (hints: that shape + (2,), and that shape)."""
    ab = np.stack([np.interp(l_any, _L, _A), np.interp(l_any, _L, _B)], axis=-1).astype(np.float32)
    mask = hint_mask[..., None]
    return ab * (1.0 - mask) + hint_ab * mask


@register(SPEC)
class Ramp:
    spec = SPEC

    def colorize(self, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray) -> np.ndarray:
        check_batch(self.spec, l_bhw, hint_ab_bhw2, hint_mask_bhw)
        return ramp_colours(l_bhw, hint_ab_bhw2, hint_mask_bhw)
