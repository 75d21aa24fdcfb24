"""Test-only models and detectors, loaded into workers through PHOTOCHROM_MODEL_MODULES=tests.plugins.models."""

from __future__ import annotations

import os
import time

import numpy as np

from restore.models.base import ModelError, ModelSpec
from restore.models.detectors import DetectorSpec, Instance, register_detector
from restore.models.ramp import SPEC as RAMP_SPEC
from restore.models.ramp import ramp_colours
from restore.models.registry import register

SLOW = ModelSpec(**{**RAMP_SPEC.__dict__, "name": "test-slow", "description": "ramp, 0.4 s per call"})
CRASH = ModelSpec(**{**RAMP_SPEC.__dict__, "name": "test-crash", "description": "ramp; kills its process on a dark scan"})
#: The crashing model kills its worker process for patches darker than this L* on average.
CRASH_BELOW_L = 15.0


@register(SLOW)
class Slow:
    spec = SLOW

    def colorize(self, l_bhw: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        time.sleep(0.4)
        return ramp_colours(l_bhw, hint_ab, hint_mask)


@register(CRASH)
class Crash:
    spec = CRASH

    def colorize(self, l_bhw: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        if float(l_bhw.mean()) < CRASH_BELOW_L:
            os._exit(17)  # as a segfault or the OOM killer would: no exception, the process is gone
        return ramp_colours(l_bhw, hint_ab, hint_mask)


UNLOADABLE = ModelSpec(**{**RAMP_SPEC.__dict__, "name": "test-unloadable", "description": "ramp whose weights are gone"})


@register(UNLOADABLE)
class Unloadable:
    """As a model whose weights were deleted after its job was created: loading it fails."""

    spec = UNLOADABLE

    def __init__(self) -> None:
        raise ModelError("weights of model 'test-unloadable' are missing; import them again")


PATCH_MEAN = ModelSpec(
    name="test-patch-mean", description="one flat colour per patch, from the patch's own mean L*; ignores hints",
    input_px=32, receptive_field_px=32, takes_hints=True, licence="test", batch_size=2,
)


def patch_mean_colour(mean_l: float) -> tuple[float, float]:
    """The test-patch-mean model's a*, b* for a patch of this mean L*."""
    return 0.8 * (mean_l - 50.0), 10.0


@register(PATCH_MEAN)
class PatchMean:
    """Its output depends on what the patch holds, so an instance's own crop (mostly the
    object) comes out another colour than the full image's patches around it."""

    spec = PATCH_MEAN

    def colorize(self, l_bhw: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        out = np.empty(l_bhw.shape + (2,), np.float32)
        for i, patch in enumerate(l_bhw):
            out[i] = patch_mean_colour(float(patch.mean()))
        return out


NOT_FINITE = ModelSpec(**{**RAMP_SPEC.__dict__, "name": "test-nan", "description": "ramp, with one NaN a*b* value per output (corrupt weights)"})


@register(NOT_FINITE)
class NotFinite:
    """What a network with a NaN among its weights gives: mostly sane colours, and NaN
    somewhere (one value is enough for the result to be wrong)."""

    spec = NOT_FINITE

    def colorize(self, l_bhw: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        out = ramp_colours(l_bhw, hint_ab, hint_mask)
        out[:, l_bhw.shape[1] // 2, l_bhw.shape[2] // 2, 0] = np.nan
        return out


#: Ellipses (centre x, centre y, half width, half height) as fractions of the image: the
#: test detectors find exactly these, and tests draw bright figures there.
ONE_FIGURE = ((0.45, 0.5, 0.14, 0.3),)
CROWD = tuple((0.17 + 0.33 * (i % 3), 0.27 + 0.46 * (i // 3), 0.09, 0.16) for i in range(6))


def ellipse_instances(figures: tuple[tuple[float, float, float, float], ...], height: int, width: int) -> list[Instance]:
    """Each figure's box and its mask: 1 inside the ellipse, 0 outside (hard on purpose: the
    pipeline's feathering must make the transition smooth)."""
    instances = []
    for k, (cx, cy, rx, ry) in enumerate(figures):
        x0, x1 = int((cx - rx) * width), int(np.ceil((cx + rx) * width))
        y0, y1 = int((cy - ry) * height), int(np.ceil((cy + ry) * height))
        rows, cols = np.mgrid[y0:y1, x0:x1]
        inside = ((cols + 0.5 - cx * width) / (rx * width)) ** 2 + ((rows + 0.5 - cy * height) / (ry * height)) ** 2 <= 1
        instances.append(Instance((x0, y0, x1, y1), inside.astype(np.float32), 0.99 - 0.01 * k, "person"))
    return instances


def _fixed_detector(name: str, figures: tuple[tuple[float, float, float, float], ...]) -> None:
    spec = DetectorSpec(name=name, description=f"test: finds {len(figures)} fixed ellipses", licence="test")

    @register_detector(spec)
    class Fixed:
        def __init__(self) -> None:
            self.spec = spec

        def detect(self, l_hw: np.ndarray, min_score: float) -> list[Instance]:
            return [i for i in ellipse_instances(figures, *l_hw.shape) if i.score >= min_score]


_fixed_detector("test-one", ONE_FIGURE)
_fixed_detector("test-crowd", CROWD)
