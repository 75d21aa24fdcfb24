"""The restoration pipeline for one scan: global pass, patch pass, stitching, edge-aware
upsampling, recombination with the scan's own lightness, saturation, and writing.

1. Read the scan upright; keep its full-resolution CIE L* (`l_full`).
2. Global pass: the whole scan squeezed to the model's input gives image-level colours
   (curator hints, rasterized at that scale, go in with it).
3. Patch pass: the scan at a working resolution (`working_scale` times the model's input
   on the long side, or the model's own `working_px`; never above the scan's own) cut into
   overlapping model-sized patches. Hint-taking models get the global colours as a
   lattice of context hints, so neighbouring patches agree, and the curator's hints where
   they fall; other models have each patch's mean colour pulled to the global pass's.
   With instance settings, each detected person or object is then colorized on a crop of
   its own and fused into the stitched working a*b* through its feathered mask
   (restore/instances.py).
4. The patches' a*b* are stitched (patches/), upsampled to full resolution by a fast
   guided filter whose guide is the scan's own L* (colour stops at edges instead of
   bleeding), and recombined with that L*, strip by strip to bound memory.
5. Saturation: chroma times `saturation`, full in midtones, fading to none at black and
   white (gain = 1 + (saturation - 1) * 4x(1 - x), x = L*/100); then the hints are made
   to hold (restore/hold.py), whatever the model did with them.
6. Written in the scan's format and depth (restore/scanio/write.py); an uncompressed TIFF strip
   by strip as step 4 makes the strips, the others once the whole image is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import cv2
import numpy as np

from hints.raster import rasterize
from hints.schema import Hint, HintFile, resolve
from patches.grid import Tile, TileGrid, tile_grid
from patches.stitch import stitch
from restore.colour import Taps, chroma_gain, guided_rows_to_rgb
from restore.detections import Detections
from restore.hold import MIN_SPREAD_PX, SPREAD_RADII, hold_hints, sample
from restore.instances import InstancePass, InstanceSettings, colorize_instances
from restore.models.base import Colorizer, ModelSpec, NonFiniteOutput, check_output
from restore.scanio.write import FORMAT_EXTENSIONS, Provenance, write_result
from restore.scanio.read import ScanPixels, fit_long_side, read_scan
from restore.scanio.rows import streams_rows, tiff_rows
from restore.scanio.probe import ScanError
from restore.threads import run_threaded

DEFAULT_SATURATION = 1.15
#: Rows of the full-resolution image recombined at a time: the unit the threads share out
#: and the TIFF writers write (a compressed result's strips). Small enough that a strip's
#: result (4.6 MB at 6000 px wide, 16-bit) is reused from the allocator rather than mapped and
#: faulted in afresh (with the NumPy passes before the compiled loop, recombining 24 MP took
#: 1.11 s at 128 rows and 1.16 to 1.26 s at 512).
FULL_RES_STRIP_ROWS = 128
# Guided filter: radius in working-resolution pixels (scaled to full resolution), and its
# regulariser for a guide in 0..1 (L*/100): regions whose lightness varies less than
# about sqrt(eps) * 100 = 1 L* unit are smoothed, real edges are kept. With a step in
# a*b* blurred over two working pixels, bleeding across the edge (vs. bilinear) was
# 16.4 -> 13.0, 9.7, 7.8, 6.6 for radius 1, 2, 3, 4; box filters cost the same at any radius.
GUIDE_RADIUS_WORKING_PX = 4
GUIDE_EPS = 1e-4
# The filter's coefficients are computed at this multiple of the working resolution.
GUIDE_SCALE = 2.0
# Context hints: one every input_px / CONTEXT_POINTS_PER_SIDE working pixels.
CONTEXT_POINTS_PER_SIDE = 8


def tool_version() -> str:
    try:
        return version("photochrom")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class RestoreSettings:
    """Everything that decides a result's pixels (recorded with every job and result)."""

    model: str = "lite"
    saturation: float = DEFAULT_SATURATION
    working_scale: float = 3.0  # working resolution's long side, in model inputs
    output_format: str | None = None  # "TIFF", "PNG", "JPEG"; None = the scan's own
    include_colour: bool = False  # also restore scans that are already in colour
    # None: no instance pass. A dict (as read back from a job's JSON) becomes InstanceSettings.
    instances: InstanceSettings | None = None

    def __post_init__(self) -> None:
        if isinstance(self.instances, dict):
            object.__setattr__(self, "instances", InstanceSettings(**self.instances))
        if not 0.0 <= self.saturation <= 4.0:
            raise ValueError(f"saturation must be between 0 and 4, got {self.saturation}")
        if self.working_scale < 1.0:
            raise ValueError(f"working_scale must be at least 1, got {self.working_scale}")
        if self.output_format not in (None, *FORMAT_EXTENSIONS):
            raise ValueError(f"output format must be one of {sorted(FORMAT_EXTENSIONS)}, got {self.output_format}")

    def to_dict(self) -> dict[str, object]:
        """The settings as recorded with a result. Without instances the key is left out, so
        results made before instances existed are still current (jobs/run.py result_key)."""
        document = asdict(self)
        if self.instances is None:
            del document["instances"]
        return document


class SkipScan(Exception):
    """The scan is deliberately not restored (e.g. already in colour); the message says why."""


@dataclass
class RestoreResult:
    output: Path
    sha256: str
    width: int
    height: int
    patches: int  # model inputs: the global pass, every working-resolution patch, every instance
    seconds: dict[str, float] = field(default_factory=dict)  # per stage
    notes: list[str] = field(default_factory=list)
    detections: dict[str, object] | None = None  # with instances: Detections.record (masks included)


def working_size(height: int, width: int, spec: ModelSpec, settings: RestoreSettings) -> tuple[int, int]:
    """The working resolution: the model's own `working_px`, else `working_scale` model
    inputs, on the long side; never above the scan's."""
    return fit_long_side(height, width, spec.working_px or settings.working_scale * spec.input_px)


def patch_count(height: int, width: int, spec: ModelSpec, settings: RestoreSettings) -> int:
    """How many model inputs a scan of this size takes: the global pass plus its patches."""
    work_h, work_w = working_size(height, width, spec, settings)
    return 1 + len(tile_grid(work_h, work_w, spec.input_px, spec.overlap_px).tiles)


def output_name(source: Path, settings: RestoreSettings) -> str:
    """The result's file name: the source's stem, with the source's extension or --format's."""
    if settings.output_format is None:
        return source.name
    return source.stem + FORMAT_EXTENSIONS[settings.output_format]


def restore_file(
    source: Path,
    destination: Path,
    model: Colorizer,
    settings: RestoreSettings,
    *,
    source_sha256: str,
    task: str | None = None,
    hint_file: HintFile | None = None,
    instance_pass: InstancePass | None = None,
    replace: bool = False,
) -> RestoreResult:
    """Colorize the scan at `source` into `destination` (see the module docstring).

    An existing file at `destination` is replaced only with `replace`; otherwise the
    result is not published and OutputClaimed is raised (restore.scanio.write.publish).

    `instance_pass` (the detector, and how to run model batches) is required when
    `settings.instances` is set, and unused otherwise.
    Raises ScanError for an unreadable scan or a model whose colours are not finite,
    HintError for a hint file that does not fit it, SkipScan for a scan deliberately not restored.
    """
    if settings.instances is not None and instance_pass is None:
        raise ValueError("the settings ask for instances, but no detector was given")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    scan = read_scan(source)
    seconds["decode"] = time.perf_counter() - started
    if scan.tone == "colour" and not settings.include_colour:
        raise SkipScan("already in colour (restore it anyway with --include-colour)")
    hints = resolve(hint_file, scan.width, scan.height, source_sha256) if hint_file else []
    notes = []
    if model.spec.needs_hints and not hints:
        notes.append(f"{model.spec.name} colours only from hints, and there are none: the result is uncoloured")
    try:
        ab_work, detections = chroma_pass(scan, model, settings, seconds, hints, instance_pass)
    except NonFiniteOutput as exc:  # this scan fails (before anything is written), the run goes on
        raise ScanError(source, str(exc)) from None
    scan_hw = (scan.height, scan.width)
    provenance = Provenance(
        tool_version=tool_version(),
        model=model.spec.name,
        weights_sha256=model.spec.weights_sha256,
        source_sha256=source_sha256,
        settings=settings.to_dict(),
        hints_sha256=hint_file.sha256 if hint_file else None,
        task=task,
        detections=detections.summary(scan_hw) if detections else None,
    )
    fmt = settings.output_format or scan.format
    dtype = result_dtype(scan)
    started = time.perf_counter()
    if streams_rows(fmt, scan.alpha, scan.metadata):
        # Rows go to the file as they are computed: "recombine" includes writing them, and
        # "encode" is what is left (SHA-256, fsync, rename).
        with tiff_rows(destination, scan.height, scan.width, dtype, scan.metadata, provenance, FULL_RES_STRIP_ROWS, replace=replace) as result:
            recombine_rows(scan.l_hw, ab_work, settings.saturation, dtype, result.write, hints)
            seconds["recombine"] = time.perf_counter() - started
            started = time.perf_counter()
        assert result.sha256 is not None  # set on leaving the block without an error
        digest = result.sha256
    else:
        rgb = recombine(scan.l_hw, ab_work, settings.saturation, dtype, hints)
        seconds["recombine"] = time.perf_counter() - started
        started = time.perf_counter()
        digest = write_result(destination, rgb, scan.alpha, fmt, scan.metadata, provenance, replace=replace)
    seconds["encode"] = time.perf_counter() - started
    patches = patch_count(scan.height, scan.width, model.spec, settings) + (len(detections.instances) if detections else 0)
    record = detections.record(scan_hw) if detections else None
    return RestoreResult(destination, digest, scan.width, scan.height, patches, seconds, notes, record)


def colorize(
    scan: ScanPixels,
    model: Colorizer,
    settings: RestoreSettings,
    seconds: dict[str, float] | None = None,
    hints: Sequence[Hint] = (),
) -> np.ndarray:
    """The colorized scan as H x W x 3 sRGB at the scan's depth; its L* is the scan's, and
    each hint's colour is at its point. (No instance pass: see `restore_file`.)"""
    seconds = {} if seconds is None else seconds
    ab_work = chroma_pass(scan, model, settings, seconds, hints)[0]
    started = time.perf_counter()
    rgb = recombine(scan.l_hw, ab_work, settings.saturation, result_dtype(scan), hints)
    seconds["recombine"] = time.perf_counter() - started
    return rgb


def result_dtype(scan: ScanPixels) -> type[np.uint8] | type[np.uint16]:
    """The result's sample type: the scan's own depth."""
    return np.uint16 if scan.bit_depth == 16 else np.uint8


def chroma_pass(
    scan: ScanPixels,
    model: Colorizer,
    settings: RestoreSettings,
    seconds: dict[str, float],
    hints: Sequence[Hint] = (),
    instance_pass: InstancePass | None = None,
) -> tuple[np.ndarray, Detections | None]:
    """Steps 2 and 3: the working-resolution a*b* (global pass, patch pass, and the instance
    pass when the settings ask for it and `instance_pass` is given), and what the instance
    pass detected (None without it). Each step's seconds go into `seconds`."""
    spec = model.spec
    l_full = scan.l_hw
    height, width = l_full.shape
    started = time.perf_counter()
    work_h, work_w = working_size(height, width, spec, settings)
    l_work = cv2.resize(l_full, (work_w, work_h), interpolation=cv2.INTER_AREA) if (work_h, work_w) != (height, width) else l_full
    seconds["working"] = time.perf_counter() - started

    started = time.perf_counter()
    ab_global = global_pass(l_work, model, hints, (height, width))
    seconds["global"] = time.perf_counter() - started

    started = time.perf_counter()
    context_ab = cv2.resize(ab_global, (work_w, work_h), interpolation=cv2.INTER_LINEAR)
    curator = rasterize(hints, work_h, work_w, work_h / height, work_w / width) if hints and spec.takes_hints else None
    ab_work = colorize_working(l_work, model, context_ab, curator)
    seconds["patches"] = time.perf_counter() - started

    detections = None
    if settings.instances is not None and instance_pass is not None:
        started = time.perf_counter()
        spacing = context_spacing(spec)
        ab_work, detections = colorize_instances(l_full, ab_work, model, settings.instances, instance_pass, hints, spacing)
        check_output(spec, ab_work)  # the crops' a*b*, fused in (a non-finite one spreads over its crop)
        seconds["instances"] = time.perf_counter() - started
    return ab_work, detections


def global_pass(
    l_hw: np.ndarray, model: Colorizer, hints: Sequence[Hint] = (), scan_hw: tuple[int, int] | None = None
) -> np.ndarray:
    """The whole scan squeezed to the model's square input, with the hints: S x S x 2 a*b*.

    `l_hw` is the scan's L* or a reduced copy of it (the pipeline gives the working image:
    area-averaging 24 megapixels straight down to the model's side took 70 ms, from the
    working image under 1 ms); `scan_hw` is the scan's own height and width (default:
    l_hw's), the frame the hints' pixel positions are in."""
    spec = model.spec
    height, width = scan_hw or l_hw.shape
    side = spec.input_px
    l_global = cv2.resize(l_hw, (side, side), interpolation=cv2.INTER_AREA)
    if spec.takes_hints:
        hint_ab, hint_mask = rasterize(hints, side, side, side / height, side / width)
    else:
        hint_ab, hint_mask = np.zeros((side, side, 2), np.float32), np.zeros((side, side), np.float32)
    return check_output(spec, model.colorize(l_global[None], hint_ab[None], hint_mask[None]))[0]


def colorize_preview(scan: ScanPixels, model: Colorizer, settings: RestoreSettings, hints: Sequence[Hint] = ()) -> np.ndarray:
    """A fast approximation of `colorize` for the hint editor: the global pass alone (no
    patch pass, which costs several model calls), recombined with the scan's L* and the
    hints held as `colorize` holds them. Meant for a scan already reduced to preview size;
    8-bit sRGB, H x W x 3."""
    height, width = scan.l_hw.shape
    side = model.spec.input_px
    ab_global = global_pass(scan.l_hw, model, hints)
    # Back to the scan's aspect ratio at the model's resolution: the guided filter then
    # takes the scan's own edges from its L*, as in the full pipeline.
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    ab_work = cv2.resize(ab_global, size, interpolation=cv2.INTER_LINEAR)
    return recombine(scan.l_hw, ab_work, settings.saturation, np.uint8, hints)


def context_spacing(spec: ModelSpec) -> int:
    """Pixels between context hints, at the model's input (CONTEXT_POINTS_PER_SIDE per side)."""
    return max(1, spec.input_px // CONTEXT_POINTS_PER_SIDE)


def context_hints(context_ab_hw2: np.ndarray, spacing_px: int) -> tuple[np.ndarray, np.ndarray]:
    """A lattice of hints over the whole working image, every `spacing_px`, from the global pass.

    One lattice for the whole image, so overlapping patches get the same hints where they overlap.
    """
    mask = np.zeros(context_ab_hw2.shape[:2], np.float32)
    offset = spacing_px // 2
    mask[offset::spacing_px, offset::spacing_px] = 1.0
    return context_ab_hw2 * mask[..., None], mask


def patch_hints(
    context_ab_hw2: np.ndarray, spec: ModelSpec, curator: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The hints (ab, mask) over the working image that its patches get: for a hint-taking
    model, a lattice of the global pass's colours, with the curator's (rasterized at working
    resolution) in their place where they fall; none for the others."""
    if not spec.takes_hints:
        return np.zeros_like(context_ab_hw2), np.zeros(context_ab_hw2.shape[:2], np.float32)
    hint_ab, hint_mask = context_hints(context_ab_hw2, context_spacing(spec))
    if curator is not None:
        curator_ab, curator_mask = curator
        hint_ab = np.where(curator_mask[..., None] > 0, curator_ab, hint_ab)
        hint_mask = np.maximum(hint_mask, curator_mask)
    return hint_ab, hint_mask


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
) -> np.ndarray:
    """a*b* for the whole working image, patch by patch in full batches, stitched.

    `curator`: the curator's hints rasterized at working resolution (ab, mask); they take
    the place of context hints where they fall.
    """
    spec = model.spec
    grid = tile_grid(l_work.shape[0], l_work.shape[1], spec.input_px, spec.overlap_px)
    hint_ab, hint_mask = patch_hints(context_ab_hw2, spec, curator)
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


def saturate(l_hw: np.ndarray, ab_hw2: np.ndarray, saturation: float) -> np.ndarray:
    """Chroma times `saturation` in midtones, fading to unchanged at black and white
    (`colour.chroma_gain`, which the recombination applies per pixel)."""
    return ab_hw2 if saturation == 1.0 else ab_hw2 * chroma_gain(l_hw, saturation)[..., None]


def guided_coefficients(guide_hw: np.ndarray, src_hwc: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (2010) as its local linear model: H x W x 2C float32 of
    (a, b) per channel, so that `a * guide + b` is `src` smoothed with `guide`'s edges.

    Computed at a reduced scale and upsampled, it is the fast guided filter (He and Sun,
    2015): the edges still come from the full-resolution guide it is applied to.
    """
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide_hw)
    var_i = box(guide_hw * guide_hw) - mean_i * mean_i
    channels = src_hwc.shape[2]
    coefficients = np.empty(guide_hw.shape + (2 * channels,), np.float32)
    for c in range(channels):
        p = np.ascontiguousarray(src_hwc[..., c])
        mean_p = box(p)
        a = (box(guide_hw * p) - mean_i * mean_p) / (var_i + eps)
        coefficients[..., c] = box(a)
        coefficients[..., channels + c] = box(mean_p - a * mean_i)
    return coefficients


def _hint_correction(
    l_full: np.ndarray, guide: np.ndarray, coefficients: np.ndarray, saturation: float, hints: Sequence[Hint]
) -> np.ndarray:
    """The a*b* correction, on the guide grid, that puts each hint's colour at its pixel.

    What recombine would produce at each hint's full-resolution pixel is computed exactly
    as recombine computes it, so the correction is the difference to the hint."""
    height, width = l_full.shape
    guide_h, guide_w = guide.shape
    rows = np.clip(np.rint([h.y_px for h in hints]), 0, height - 1).astype(np.int64)
    cols = np.clip(np.rint([h.x_px for h in hints]), 0, width - 1).astype(np.int64)
    l_at = l_full[rows, cols].astype(np.float64)
    positions = np.stack([grid_position(rows, height, guide_h), grid_position(cols, width, guide_w)], axis=1)
    coef = sample(coefficients, positions)
    produced = saturate(l_at, coef[:, :2] * (l_at / 100.0)[:, None] + coef[:, 2:], saturation)
    targets = np.array([h.ab for h in hints], np.float64)
    spreads = np.maximum(MIN_SPREAD_PX, SPREAD_RADII * np.array([h.radius_px for h in hints]) * guide_h / height)
    return hold_hints(guide * np.float32(100), positions, l_at, spreads, targets - produced)


def recombine(
    l_full: np.ndarray,
    ab_work: np.ndarray,
    saturation: float,
    dtype: type[np.uint8] | type[np.uint16],
    hints: Sequence[Hint] = (),
) -> np.ndarray:
    """Full-resolution sRGB (H x W x 3 at `dtype`) from the scan's L* and working-resolution
    a*b*, as one array (see `recombine_rows`)."""
    rgb = np.empty(l_full.shape + (3,), dtype)

    def keep(top: int, rows: np.ndarray) -> None:
        rgb[top : top + len(rows)] = rows

    recombine_rows(l_full, ab_work, saturation, dtype, keep, hints)
    return rgb


def recombine_rows(
    l_full: np.ndarray,
    ab_work: np.ndarray,
    saturation: float,
    dtype: type[np.uint8] | type[np.uint16],
    sink: Callable[[int, np.ndarray], None],
    hints: Sequence[Hint] = (),
) -> None:
    """Full-resolution sRGB from the scan's L* and working-resolution a*b*, handed to
    `sink(top, rows)` a strip of rows at a time (from several threads, in no set order).

    The guided filter's coefficients are computed at GUIDE_SCALE times the working
    resolution (never above the scan's) and applied to the full-resolution L* strip by
    strip, on several threads, by one compiled loop per strip that also saturates and
    converts to sRGB (`colour.guided_rows_to_rgb`, which releases the GIL). Hints are made
    to hold (restore/hold.py): a correction on the same grid, added after saturation.
    """
    height, width = l_full.shape
    work_h, work_w = ab_work.shape[:2]
    scale = min(GUIDE_SCALE, height / work_h, width / work_w)
    guide_h, guide_w = max(1, round(work_h * scale)), max(1, round(work_w * scale))
    guide = cv2.resize(l_full, (guide_w, guide_h), interpolation=cv2.INTER_AREA) / np.float32(100)
    ab_guide = cv2.resize(ab_work, (guide_w, guide_h), interpolation=cv2.INTER_LINEAR)
    radius = max(1, round(GUIDE_RADIUS_WORKING_PX * scale))
    coefficients = guided_coefficients(guide, ab_guide, radius, GUIDE_EPS)  # a_a, a_b, b_a, b_b
    if hints:
        correction = _hint_correction(l_full, guide, coefficients, saturation, hints)
        coefficients = np.concatenate([coefficients, correction], axis=2, dtype=np.float32)  # + delta_a, delta_b
    row_taps, col_taps = bilinear_taps(height, guide_h), bilinear_taps(width, guide_w)
    l_full = np.ascontiguousarray(l_full, dtype=np.float32)  # usually itself: the scan's L*

    def strip(top: int) -> None:
        rows = slice(top, min(height, top + FULL_RES_STRIP_ROWS))
        strip_taps = (row_taps[0][rows], row_taps[1][rows], row_taps[2][rows])
        sink(top, guided_rows_to_rgb(l_full[rows], coefficients, strip_taps, col_taps, saturation, dtype))

    run_threaded(strip, range(0, height, FULL_RES_STRIP_ROWS))


def grid_position(pixels: np.ndarray, size: int, grid_size: int) -> np.ndarray:
    """Where pixels (indices along an axis of `size`) lie on a grid of `grid_size` cells
    covering the same extent, centres aligned: in grid cells, float64, unclipped."""
    return (np.asarray(pixels, dtype=np.float64) + 0.5) * (grid_size / size) - 0.5


def bilinear_taps(size: int, grid_size: int) -> Taps:
    """Bilinear reading of a grid of `grid_size` cells at each of `size` pixels covering the
    same extent (`grid_position`; edges replicated): per pixel the two grid indices and
    the second one's weight (indices int64, weights float32)."""
    position = np.clip(grid_position(np.arange(size), size, grid_size), 0, grid_size - 1)
    low = np.floor(position).astype(np.int64)
    return low, np.minimum(low + 1, grid_size - 1), (position - low).astype(np.float32)
