"""Instance-aware colorization: each detected person or object colorized with its own crop
as context, its chroma fused into the whole image through its soft mask, feathered.

Colorizing a whole photo, a model sees a figure among many things and often gives it the
colours of its surroundings; colorized on its own crop, it gives the figure its own
(InstColorization, Su et al., CVPR 2020; PatchColorization). Unlike PatchColorization's
hard replacement, the crop's result is blended in with the object's feathered mask, so
there is no outline.

At working resolution, after the patch pass (restore/pipeline.py):
1. detection on the scan's L* at `detection_px` on the long side (never above the scan's);
   instances filtered by score, mask area and count (InstanceSettings);
2. each kept instance's box, plus a margin, squared, is cut from the full-resolution L*
   (so a small figure gets the scan's own detail, not the working image's) and resized to
   the model's input. A hint-taking model gets the full image's colours as the patch
   pass's lattice of context hints, but only on the crop's surroundings, where the
   instance's weight is ~0 (hints on the object itself would make the model repeat the
   full image's colours there), and the curator's hints wherever they fall in the crop.
   A model without hints has its crop's colours shifted so that the surroundings' mean
   matches the full image's, as the patch pass does with whole patches;
3. the crops run in full model batches (`run_batches`: inline, or as Dask tasks, see
   jobs/worker.py), are resized back to their crop at working resolution, and fused:
   ab = ab_full * (1 - W) + ab_inst * W, W the largest instance weight at a pixel and
   ab_inst the weight-normalised mean of the instances covering it; an instance's weight
   is its soft mask, Gaussian-feathered by `feather_px` and brought to exactly 0 at the
   crop's borders inside the image.

Arrays: `l_full` is the scan's L* (H x W float32, 0..100); `ab_work` the full image's a*b*
at working resolution (h x w x 2 float32); boxes and crops are in the pixels of the image
named (detection or working), x1 and y1 exclusive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar
from math import ceil

import cv2
import numpy as np

from hints.raster import rasterize
from hints.schema import Hint
from restore.detections import Detections
from restore.models.base import Colorizer, ModelSpec
from restore.models.detectors import Detector, Instance, detector_problem
from restore.scanio.read import fit_long_side
from restore.settings import InstanceSettings, RestoreSettings

#: Each side of a crop adds this fraction of the box's long side as context for the model.
CROP_MARGIN = 0.2
#: A crop pixel whose instance weight is below this is "surroundings": context hints go there.
SURROUNDINGS_BELOW = 0.01
#: A model without hints is mean-aligned on the surroundings only if they are at least this
#: fraction of the crop (fewer pixels give a noisy mean); otherwise it is left as it is.
MIN_SURROUNDINGS = 0.1

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # l_bhw, hint_ab_bhw2, hint_mask_bhw (models/base.py)
BatchRunner = Callable[[Colorizer, Sequence[Batch]], list[np.ndarray]]


Settings = TypeVar("Settings", bound="RestoreSettings")


def usable_instances(settings: Settings) -> tuple[Settings, str | None]:
    """`settings` as they can run here, and why their instance pass cannot (one line), if it
    cannot: then the settings come back without it. Checked once per job or colorize run."""
    if settings.instances is None:
        return settings, None
    problem = detector_problem(settings.instances.detector)
    return (settings, None) if problem is None else (replace(settings, instances=None), problem)


def run_inline(model: Colorizer, batches: Sequence[Batch]) -> list[np.ndarray]:
    return [model.colorize(*batch) for batch in batches]


@dataclass(frozen=True)
class InstancePass:
    """What the pipeline needs for instances: a detector, and how to run model batches."""

    detector: Detector
    run_batches: BatchRunner = run_inline


@dataclass(frozen=True, eq=False)
class Placement:
    """Where an instance's colours go in the working image: its crop (top, left, bottom,
    right, working px) and its weight over the crop (float32 0..1)."""

    crop: tuple[int, int, int, int]
    weight_hw: np.ndarray

    @property
    def slices(self) -> tuple[slice, slice]:
        top, left, bottom, right = self.crop
        return slice(top, bottom), slice(left, right)


def keep_instances(instances: Sequence[Instance], image_hw: tuple[int, int], settings: InstanceSettings) -> list[Instance]:
    """Instances scoring at least min_score whose mask covers min_area of the image, best first, at most max_instances."""
    area = image_hw[0] * image_hw[1]
    kept = [i for i in instances if i.score >= settings.min_score and np.count_nonzero(i.mask_hw >= 0.5) >= settings.min_area * area]
    return sorted(kept, key=lambda i: -i.score)[: settings.max_instances]


def feather_pad(feather_px: float) -> int:
    """Pixels between a box and its crop's border in which the feathered mask falls to ~0."""
    return ceil(3 * feather_px) + 1


def crop_around(box: tuple[float, float, float, float], image_hw: tuple[int, int], pad: int) -> tuple[int, int, int, int]:
    """A square crop (top, left, bottom, right) centred on `box` (x0, y0, x1, y1): the box's long
    side plus CROP_MARGIN of it each side plus `pad`; shifted inside the image, and cut to it
    only where the image is smaller. Square, because models were trained on undistorted photos."""
    height, width = image_hw
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * CROP_MARGIN) + 2 * pad

    def span(centre: float, limit: int) -> tuple[int, int]:
        length = min(limit, ceil(side))
        start = min(max(0, round(centre - length / 2)), limit - length)
        return start, start + length

    top, bottom = span((y0 + y1) / 2, height)
    left, right = span((x0 + x1) / 2, width)
    return top, left, bottom, right


def placement(instance: Instance, detection_hw: tuple[int, int], work_hw: tuple[int, int], feather_px: float) -> Placement:
    """The instance's crop and weight at working resolution (see the module docstring)."""
    scale_y, scale_x = work_hw[0] / detection_hw[0], work_hw[1] / detection_hw[1]
    bx0, by0, bx1, by1 = instance.box
    pad = feather_pad(feather_px)
    crop = crop_around((bx0 * scale_x, by0 * scale_y, bx1 * scale_x, by1 * scale_y), work_hw, pad)
    top, left, bottom, right = crop
    # Each crop pixel centre, mapped into the mask's own grid (pixel centres to pixel centres).
    to_mask = np.array([[1 / scale_x, 0, (left + 0.5) / scale_x - 0.5 - bx0], [0, 1 / scale_y, (top + 0.5) / scale_y - 0.5 - by0]])
    weight = cv2.warpAffine(
        instance.mask_hw, to_mask, (right - left, bottom - top),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )
    if feather_px > 0:
        # Replicated borders: at the image's edge an object cut by the frame keeps its
        # weight; inside the image the mask is already ~0 `pad` pixels before the border.
        weight = cv2.GaussianBlur(weight, (0, 0), feather_px, borderType=cv2.BORDER_REPLICATE)
    weight = np.clip(weight, 0, 1) * _border_taper(crop, work_hw, pad)
    return Placement(crop, weight.astype(np.float32))


def _border_taper(crop: tuple[int, int, int, int], image_hw: tuple[int, int], pad: int) -> np.ndarray:
    """1 inside, falling linearly to exactly 0 at each crop border that lies inside the image."""
    top, left, bottom, right = crop

    def ramp(length: int, start_inside: bool, end_inside: bool) -> np.ndarray:
        values = np.ones(length, np.float32)
        steps = np.arange(min(pad, length), dtype=np.float32) / pad
        if start_inside:
            values[: len(steps)] = np.minimum(values[: len(steps)], steps)
        if end_inside:
            values[length - len(steps) :] = np.minimum(values[length - len(steps) :], steps[::-1])
        return values

    rows = ramp(bottom - top, top > 0, bottom < image_hw[0])
    cols = ramp(right - left, left > 0, right < image_hw[1])
    return np.outer(rows, cols)


def _full_res_box(crop: tuple[int, int, int, int], work_hw: tuple[int, int], full_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    top, left, bottom, right = crop
    sy, sx = full_hw[0] / work_hw[0], full_hw[1] / work_hw[1]
    r0, c0 = round(top * sy), round(left * sx)
    return r0, c0, max(r0 + 1, round(bottom * sy)), max(c0 + 1, round(right * sx))


def _resize(image: np.ndarray, side_w: int, side_h: int, nearest: bool = False) -> np.ndarray:
    image = np.ascontiguousarray(image, dtype=np.float32)
    if image.shape[:2] == (side_h, side_w):
        return image
    shrinking = image.shape[0] >= side_h and image.shape[1] >= side_w
    interpolation = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return cv2.resize(image, (side_w, side_h), interpolation=interpolation)


def model_inputs(
    l_full: np.ndarray, ab_work: np.ndarray, place: Placement, spec: ModelSpec, hints: Sequence[Hint], spacing_px: int
) -> Batch:
    """One instance's model input: L* (S x S), hint a*b* (S x S x 2) and hint mask (S x S)."""
    side = spec.input_px
    r0, c0, r1, c1 = _full_res_box(place.crop, ab_work.shape[:2], l_full.shape)
    l_side = _resize(l_full[r0:r1, c0:c1], side, side)
    hint_ab, hint_mask = np.zeros((side, side, 2), np.float32), np.zeros((side, side), np.float32)
    if spec.takes_hints:
        context = _resize(ab_work[place.slices], side, side)
        surroundings = _resize(place.weight_hw, side, side) < SURROUNDINGS_BELOW
        hint_mask[spacing_px // 2 :: spacing_px, spacing_px // 2 :: spacing_px] = 1.0
        hint_mask *= surroundings
        hint_ab = context * hint_mask[..., None]
        if hints:
            scale_y, scale_x = side / (r1 - r0), side / (c1 - c0)
            curator_ab, curator_mask = rasterize(hints, side, side, scale_y, scale_x, r0 * scale_y, c0 * scale_x)
            hint_ab = np.where(curator_mask[..., None] > 0, curator_ab, hint_ab)
            hint_mask = np.maximum(hint_mask, curator_mask)
    return l_side, hint_ab, hint_mask


def crop_result(ab_side: np.ndarray, ab_work: np.ndarray, place: Placement, spec: ModelSpec) -> np.ndarray:
    """The model's a*b* for an instance, back at its crop's working-resolution size."""
    top, left, bottom, right = place.crop
    ab = _resize(ab_side, right - left, bottom - top)
    if not spec.takes_hints:
        surroundings = place.weight_hw < SURROUNDINGS_BELOW
        if surroundings.mean() >= MIN_SURROUNDINGS:
            ab = ab + (ab_work[place.slices][surroundings].mean(axis=0) - ab[surroundings].mean(axis=0))
    return ab.astype(np.float32)


def fuse(ab_full: np.ndarray, placements: Sequence[Placement], ab_crops: Sequence[np.ndarray]) -> np.ndarray:
    """ab_full * (1 - W) + ab_inst * W (module docstring): equal to an instance's colours where
    its weight is 1 and no other instance's is, to ab_full where no weight reaches."""
    height, width = ab_full.shape[:2]
    weighted = np.zeros((height, width, 2), np.float32)
    total = np.zeros((height, width), np.float32)
    strongest = np.zeros((height, width), np.float32)
    for place, ab in zip(placements, ab_crops, strict=True):
        rows, cols = place.slices
        weighted[rows, cols] += place.weight_hw[..., None] * ab
        total[rows, cols] += place.weight_hw
        strongest[rows, cols] = np.maximum(strongest[rows, cols], place.weight_hw)
    instance_ab = weighted / np.maximum(total, np.float32(1e-12))[..., None]
    return (ab_full * (1 - strongest)[..., None] + instance_ab * strongest[..., None]).astype(np.float32)


def colorize_instances(
    l_full: np.ndarray,
    ab_work: np.ndarray,
    model: Colorizer,
    settings: InstanceSettings,
    instance_pass: InstancePass,
    hints: Sequence[Hint] = (),
    spacing_px: int = 1,
) -> tuple[np.ndarray, Detections]:
    """`ab_work` with every kept instance's colours fused in, and what was detected.

    `spacing_px`: the context hints' lattice spacing at the model's input (the patch pass's).
    """
    height, width = l_full.shape
    detection_hw = fit_long_side(height, width, settings.detection_px)
    l_detect = l_full if detection_hw == (height, width) else cv2.resize(l_full, detection_hw[::-1], interpolation=cv2.INTER_AREA)
    found = instance_pass.detector.detect(np.ascontiguousarray(l_detect, dtype=np.float32), settings.min_score)
    kept = keep_instances(found, detection_hw, settings)
    detections = Detections(instance_pass.detector.spec.name, instance_pass.detector.spec.weights_sha256, detection_hw, tuple(kept))
    if not kept:
        return ab_work, detections
    spec = model.spec
    placements = [placement(i, detection_hw, ab_work.shape[:2], settings.feather_px) for i in kept]
    inputs = [model_inputs(l_full, ab_work, p, spec, hints if spec.takes_hints else (), spacing_px) for p in placements]
    batches = [
        tuple(np.stack(part) for part in zip(*inputs[start : start + spec.batch_size]))
        for start in range(0, len(inputs), spec.batch_size)
    ]
    predicted = np.concatenate(instance_pass.run_batches(model, batches))  # type: ignore[arg-type]
    ab_crops = [crop_result(ab, ab_work, p, spec) for ab, p in zip(predicted, placements)]
    return fuse(ab_work, placements, ab_crops), detections
