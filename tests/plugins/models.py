"""Test-only models, loaded into workers through PHOTOCHROM_MODEL_MODULES=tests.plugins.models."""

from __future__ import annotations

import os
import time

import numpy as np

from restore.models.base import ModelSpec
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
