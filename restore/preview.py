"""Whole-image colorization in memory, for the hint editor: the full pipeline's result
(`colorize`, nothing written) and a fast preview from the global pass alone."""

from __future__ import annotations

import time
from collections.abc import Sequence

import cv2
import numpy as np

from hints.schema import Hint
from restore.models.base import Colorizer
from restore.passes import Guide, chroma_pass, global_pass
from restore.reference import Reference
from restore.recombine import recombine, result_dtype
from restore.scanio.read import ScanPixels
from restore.settings import RestoreSettings


def colorize(
    scan: ScanPixels,
    model: Colorizer,
    settings: RestoreSettings,
    seconds: dict[str, float] | None = None,
    hints: Sequence[Hint] = (),
    reference: Reference | None = None,
) -> np.ndarray:
    """The colorized scan as H x W x 3 sRGB at the scan's depth; its L* is the scan's, and
    each hint's colour is at its point. (No instance pass: see `restore_file`.)"""
    seconds = {} if seconds is None else seconds
    ab_work = chroma_pass(scan, model, settings, seconds, hints, reference=reference)[0]
    started = time.perf_counter()
    rgb = recombine(scan.l_hw, ab_work, settings.saturation_for(hinted=bool(hints)), result_dtype(scan), hints)
    seconds["recombine"] = time.perf_counter() - started
    return rgb


def colorize_preview(
    scan: ScanPixels, model: Colorizer, settings: RestoreSettings, hints: Sequence[Hint] = (), guide: Guide | None = None
) -> np.ndarray:
    """A fast approximation of `colorize` for the hint editor: the global pass alone (no
    patch pass, which costs several model calls), recombined with the scan's L* and the
    hints held as `colorize` holds them. Meant for a scan already reduced to preview size;
    8-bit sRGB, H x W x 3. `guide`: a reference's match on this scan (restore/passes.py
    `reference_guide`), used as the full pipeline uses it."""
    height, width = scan.l_hw.shape
    side = model.spec.input_px
    ab_global = global_pass(scan.l_hw, model, hints, guide=guide)
    # Back to the scan's aspect ratio at the model's resolution: the guided filter then
    # takes the scan's own edges from its L*, as in the full pipeline.
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    ab_work = cv2.resize(ab_global, size, interpolation=cv2.INTER_LINEAR)
    if guide is not None:
        ab_work = guide.resized(size[1], size[0]).pull(ab_work)
    return recombine(scan.l_hw, ab_work, settings.saturation_for(hinted=bool(hints)), np.uint8, hints)
