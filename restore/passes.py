"""Steps 2 and 3 of the pipeline (restore/pipeline.py): the global pass (the whole scan at the
model's input), the patch pass at working resolution with context hints so neighbouring
patches agree, and the instance pass: the scan's a*b* at working resolution."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from hints.raster import rasterize
from hints.schema import Hint
from patches.grid import Tile, TileGrid, tile_grid
from patches.stitch import stitch
from restore.detections import Detections
from restore.instances import InstancePass, colorize_instances
from restore.models.base import Colorizer, ModelSpec, check_output
from restore.reference import Reference, match_reference
from restore.scanio.read import ScanPixels, fit_long_side
from restore.settings import RestoreSettings

# Context hints: one every input_px / CONTEXT_POINTS_PER_SIDE working pixels.
CONTEXT_POINTS_PER_SIDE = 8
# A reference's hints: a denser lattice, where the match is at least this confident.
REFERENCE_POINTS_PER_SIDE = 28
REFERENCE_HINT_CONFIDENCE = 0.5


def working_size(height: int, width: int, spec: ModelSpec, settings: RestoreSettings) -> tuple[int, int]:
    """The working resolution: the model's own `working_px`, else `working_scale` model
    inputs, on the long side; never above the scan's."""
    return fit_long_side(height, width, spec.working_px or settings.working_scale * spec.input_px)


def patch_count(height: int, width: int, spec: ModelSpec, settings: RestoreSettings) -> int:
    """How many model inputs a scan of this size takes: the global pass plus its patches."""
    work_h, work_w = working_size(height, width, spec, settings)
    return 1 + len(tile_grid(work_h, work_w, spec.input_px, spec.overlap_px).tiles)


@dataclass(frozen=True)
class Guide:
    """A reference's match carried to the working image: its a*b* (H x W x 2) and confidence
    (H x W, 0..1) there, and what the match was (ReferenceMatch.summary)."""

    ab_hw2: np.ndarray
    confidence_hw: np.ndarray
    summary: dict[str, object]

    def hints(self, height: int, width: int, spacing_px: int) -> tuple[np.ndarray, np.ndarray]:
        """(ab, mask) at height x width: a lattice every `spacing_px` of the reference's
        colours where they matched with confidence above REFERENCE_HINT_CONFIDENCE."""
        ab, confidence = self.ab_hw2, self.confidence_hw
        if confidence.shape != (height, width):
            # Confidence-weighted averages: unmatched pixels (a*b* 0) must not dilute the colours.
            weight = cv2.resize(confidence, (width, height), interpolation=cv2.INTER_AREA)
            ab = cv2.resize(ab * confidence[..., None], (width, height), interpolation=cv2.INTER_AREA) / np.maximum(weight, 1e-6)[..., None]
            confidence = weight
        lattice = np.zeros((height, width), bool)
        lattice[spacing_px // 2 :: spacing_px, spacing_px // 2 :: spacing_px] = True
        mask = (lattice & (confidence > REFERENCE_HINT_CONFIDENCE)).astype(np.float32)
        return (ab * mask[..., None]).astype(np.float32), mask

    def resized(self, height: int, width: int) -> Guide:
        """The same match on a height x width grid."""
        if self.confidence_hw.shape == (height, width):
            return self
        ab = cv2.resize(self.ab_hw2, (width, height), interpolation=cv2.INTER_LINEAR)
        confidence = cv2.resize(self.confidence_hw, (width, height), interpolation=cv2.INTER_LINEAR)
        return Guide(ab, np.clip(confidence, 0.0, 1.0), self.summary)

    def pull(self, ab_work: np.ndarray) -> np.ndarray:
        """The working a*b* moved towards the reference's by each pixel's confidence."""
        return (ab_work + self.confidence_hw[..., None] * (self.ab_hw2 - ab_work)).astype(np.float32)


def reference_guide(l_work: np.ndarray, reference: Reference) -> Guide:
    """Match `reference` to the working image (restore/reference.py) and bring the match to
    its size."""
    match = match_reference(l_work, reference)
    matched = Guide(match.ab_hw2, match.confidence_hw, {"name": reference.name, "sha256": reference.sha256, **match.summary()})
    return matched.resized(*l_work.shape)


def chroma_pass(
    scan: ScanPixels,
    model: Colorizer,
    settings: RestoreSettings,
    seconds: dict[str, float],
    hints: Sequence[Hint] = (),
    instance_pass: InstancePass | None = None,
    reference: Reference | None = None,
) -> tuple[np.ndarray, Detections | None, dict[str, object] | None]:
    """Steps 2 and 3: the working-resolution a*b* (global pass, patch pass, and the instance
    pass when the settings ask for it and `instance_pass` is given), what the instance pass
    detected (None without it) and what the reference matched (None without one). Each
    step's seconds go into `seconds`."""
    spec = model.spec
    l_full = scan.l_hw
    height, width = l_full.shape
    started = time.perf_counter()
    work_h, work_w = working_size(height, width, spec, settings)
    l_work = cv2.resize(l_full, (work_w, work_h), interpolation=cv2.INTER_AREA) if (work_h, work_w) != (height, width) else l_full
    seconds["working"] = time.perf_counter() - started

    guide = None
    if reference is not None:
        started = time.perf_counter()
        guide = reference_guide(l_work, reference)
        seconds["reference"] = time.perf_counter() - started

    started = time.perf_counter()
    ab_global = global_pass(l_work, model, hints, (height, width), guide)
    seconds["global"] = time.perf_counter() - started

    started = time.perf_counter()
    context_ab = cv2.resize(ab_global, (work_w, work_h), interpolation=cv2.INTER_LINEAR)
    curator = rasterize(hints, work_h, work_w, work_h / height, work_w / width) if hints and spec.takes_hints else None
    ab_work = colorize_working(l_work, model, context_ab, curator, guide)
    seconds["patches"] = time.perf_counter() - started

    detections = None
    if settings.instances is not None and instance_pass is not None:
        started = time.perf_counter()
        spacing = context_spacing(spec)
        ab_work, detections = colorize_instances(l_full, ab_work, model, settings.instances, instance_pass, hints, spacing)
        check_output(spec, ab_work)  # the crops' a*b*, fused in (a non-finite one spreads over its crop)
        seconds["instances"] = time.perf_counter() - started
    if guide is None:
        return ab_work, detections, None
    # Every model, hints or not: the result pulled to the confident colours (the curator's
    # hints are held after this, in recombination, so they still win).
    return guide.pull(ab_work), detections, guide.summary


def global_pass(
    l_hw: np.ndarray, model: Colorizer, hints: Sequence[Hint] = (), scan_hw: tuple[int, int] | None = None, guide: Guide | None = None
) -> np.ndarray:
    """The whole scan squeezed to the model's square input, with the hints: S x S x 2 a*b*.

    `l_hw` is the scan's L* or a reduced copy of it (the pipeline gives the working image:
    area-averaging 24 megapixels straight down to the model's side took 70 ms, from the
    working image under 1 ms); `scan_hw` is the scan's own height and width (default:
    l_hw's), the frame the hints' pixel positions are in. A hint-taking model gets a
    reference's confident colours (`guide`) as hints too, the curator's in their place."""
    spec = model.spec
    height, width = scan_hw or l_hw.shape
    side = spec.input_px
    l_global = cv2.resize(l_hw, (side, side), interpolation=cv2.INTER_AREA)
    if spec.takes_hints:
        hint_ab, hint_mask = rasterize(hints, side, side, side / height, side / width)
        if guide is not None:
            hint_ab, hint_mask = _under(guide.hints(side, side, reference_spacing(spec)), (hint_ab, hint_mask))
    else:
        hint_ab, hint_mask = np.zeros((side, side, 2), np.float32), np.zeros((side, side), np.float32)
    return check_output(spec, model.colorize(l_global[None], hint_ab[None], hint_mask[None]))[0]


def context_spacing(spec: ModelSpec) -> int:
    """Pixels between context hints, at the model's input (CONTEXT_POINTS_PER_SIDE per side)."""
    return max(1, spec.input_px // CONTEXT_POINTS_PER_SIDE)


def reference_spacing(spec: ModelSpec) -> int:
    """Pixels between a reference's hints, at the model's input (REFERENCE_POINTS_PER_SIDE per side)."""
    return max(1, spec.input_px // REFERENCE_POINTS_PER_SIDE)


def _under(lower: tuple[np.ndarray, np.ndarray], upper: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two (ab, mask) hint layers as one: `upper`'s hints in `lower`'s place where they fall."""
    upper_ab, upper_mask = upper
    lower_ab, lower_mask = lower
    return np.where(upper_mask[..., None] > 0, upper_ab, lower_ab), np.maximum(lower_mask, upper_mask)


def context_hints(context_ab_hw2: np.ndarray, spacing_px: int) -> tuple[np.ndarray, np.ndarray]:
    """A lattice of hints over the whole working image, every `spacing_px`, from the global pass.

    One lattice for the whole image, so overlapping patches get the same hints where they overlap.
    """
    mask = np.zeros(context_ab_hw2.shape[:2], np.float32)
    offset = spacing_px // 2
    mask[offset::spacing_px, offset::spacing_px] = 1.0
    return context_ab_hw2 * mask[..., None], mask


def patch_hints(
    context_ab_hw2: np.ndarray, spec: ModelSpec, curator: tuple[np.ndarray, np.ndarray] | None = None, guide: Guide | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The hints (ab, mask) over the working image that its patches get: for a hint-taking
    model, a lattice of the global pass's colours, a denser one of a reference's confident
    colours over it, and the curator's hints (rasterized at working resolution) over both
    where they fall; none for the others."""
    if not spec.takes_hints:
        return np.zeros_like(context_ab_hw2), np.zeros(context_ab_hw2.shape[:2], np.float32)
    layers = context_hints(context_ab_hw2, context_spacing(spec))
    if guide is not None:
        height, width = context_ab_hw2.shape[:2]
        reference = guide.hints(height, width, reference_spacing(spec))
        # Where the reference speaks, the global pass's lattice gives way.
        near = cv2.dilate(reference[1], np.ones((reference_spacing(spec),) * 2, np.uint8)) > 0
        layers = _under((layers[0] * ~near[..., None], layers[1] * ~near), reference)
    if curator is not None:
        layers = _under(layers, curator)
    return layers


def patch_batches(
    grid: TileGrid, l_work: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray, spec: ModelSpec
) -> Iterator[tuple[Sequence[Tile], np.ndarray, np.ndarray, np.ndarray]]:
    """The grid's patches in full batches of the model's input: (tiles, L*, hint a*b*, hint mask)."""
    side = spec.input_px
    for batch in _batches(grid.tiles, spec.batch_size):
        l_batch = np.stack([_to_side(l_work[t.halo.slices], side) for t in batch])
        # Hints are resized like their mask (nearest): interpolating a*b* would mix a hint
        # with the zeros around it, so a scan smaller than the model got diluted hints.
        ab_batch = np.stack([_to_side(hint_ab[t.halo.slices], side, nearest=True) for t in batch])
        mask_batch = np.stack([_to_side(hint_mask[t.halo.slices], side, nearest=True) for t in batch])
        yield batch, l_batch, ab_batch, mask_batch


def colorize_working(
    l_work: np.ndarray,
    model: Colorizer,
    context_ab_hw2: np.ndarray,
    curator: tuple[np.ndarray, np.ndarray] | None = None,
    guide: Guide | None = None,
) -> np.ndarray:
    """a*b* for the whole working image, patch by patch in full batches, stitched.

    `curator`: the curator's hints rasterized at working resolution (ab, mask); they take
    the place of context hints where they fall. `guide`: a reference's match (patch_hints).
    """
    spec = model.spec
    grid = tile_grid(l_work.shape[0], l_work.shape[1], spec.input_px, spec.overlap_px)
    hint_ab, hint_mask = patch_hints(context_ab_hw2, spec, curator, guide)
    results: list[tuple[Tile, np.ndarray]] = []
    for batch, l_batch, ab_batch, mask_batch in patch_batches(grid, l_work, hint_ab, hint_mask, spec):
        predicted = check_output(spec, model.colorize(l_batch, ab_batch, mask_batch))
        for tile, ab in zip(batch, predicted):
            ab = _from_side(ab, tile.halo.height, tile.halo.width)
            if not spec.takes_hints:  # pull the patch's mean colour to the global pass's
                ab = ab + (context_ab_hw2[tile.halo.slices].mean(axis=(0, 1)) - ab.mean(axis=(0, 1)))
            results.append((tile, ab))
    return stitch(grid, results)


def _batches(tiles: Sequence[Tile], size: int) -> Iterator[Sequence[Tile]]:
    for start in range(0, len(tiles), size):
        yield tiles[start : start + size]


def _to_side(patch: np.ndarray, side: int, *, nearest: bool = False) -> np.ndarray:
    """A halo-sized patch at the model's input size (only patches of small images differ)."""
    if patch.shape[:2] == (side, side):
        return np.ascontiguousarray(patch, dtype=np.float32)
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(patch, dtype=np.float32), (side, side), interpolation=interpolation)


def _from_side(ab: np.ndarray, height: int, width: int) -> np.ndarray:
    if ab.shape[:2] == (height, width):
        return ab
    return cv2.resize(ab, (width, height), interpolation=cv2.INTER_LINEAR)
