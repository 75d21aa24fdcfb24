"""The restoration pipeline for one scan: global pass, patch pass, stitching, edge-aware
upsampling, recombination with the scan's own lightness, saturation, and writing.

1. Read the scan upright; keep its full-resolution CIE L* (`l_full`). With repair settings,
   damage is detected on that L* and filled (restore/repair/): everything after sees the
   repaired lightness, so no colour is painted along a scratch. The mask is written beside
   the result (`mask_path`) before it; without colorization (--repair-only) the repaired
   lightness is the result, gray at the scan's depth.
2. Global pass: the whole scan squeezed to the model's input gives image-level colours
   (curator hints, rasterized at that scale, go in with it).
3. Patch pass: the scan at a working resolution (`working_scale` times the model's input
   on the long side, or the model's own `working_px`; never above the scan's own) cut into
   overlapping model-sized patches. Hint-taking models get the global colours as a
   lattice of context hints, so neighbouring patches agree, and the curator's hints where
   they fall; other models have each patch's mean colour pulled to the global pass's.
   With instance settings, each detected person or object is then colorized on a crop of
   its own and fused into the stitched working a*b* through its feathered mask
   (restore/instances.py). With a reference (restore/reference.py), its colours where it
   matches the scan go in as hints to hint-taking models, and the working a*b* is pulled
   towards them by the match's confidence (curator hints still hold in step 5).
4. The patches' a*b* are stitched (patches/), upsampled to full resolution by a fast
   guided filter whose guide is the scan's own L* (colour stops at edges instead of
   bleeding), and recombined with that L*, strip by strip to bound memory.
5. Saturation: chroma times `saturation`, full in midtones, fading to none at black and
   white (gain = 1 + (saturation - 1) * 4x(1 - x), x = L*/100); by default 1.15, and none
   (1.0) for a scan with a hint file (RestoreSettings.applied); then the hints are made
   to hold (restore/hold.py), whatever the model did with them.
6. Written in the scan's format and depth (restore/scanio/write.py); an uncompressed TIFF strip
   by strip as step 4 makes the strips, the others once the whole image is made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace as replaced
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hints.schema import HintFile, resolve
from restore.instances import InstancePass
from restore.models.base import Colorizer, NonFiniteOutput
from restore.passes import chroma_pass, patch_count
from restore.colour import lightness_to_gray
from restore.reference import Reference
from restore.recombine import (
    FULL_RES_STRIP_ROWS,
    recombine,
    recombine_rows,
    result_dtype,
)
from restore.repair.repair import Repair, Segmenter, repair_lightness
from restore.scanio.formats import FORMAT_EXTENSIONS
from restore.scanio.probe import ScanError
from restore.scanio.read import ScanPixels, read_scan
from restore.scanio.rows import streams_rows, tiff_rows
from restore.scanio.write import Provenance, write_mask, write_result
from restore.settings import RestoreSettings


def tool_version() -> str:
    try:
        return version("photochrom")
    except PackageNotFoundError:
        return "0+unknown"


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
    repair: dict[str, object] | None = None  # with repair: Provenance.repair (mask, its SHA-256 and fraction)
    reference: dict[str, object] | None = None  # with a reference: Provenance.reference (what matched)


def output_name(source: Path, settings: RestoreSettings) -> str:
    """The result's file name: the source's stem, with the source's extension or --format's."""
    if settings.output_format is None:
        return source.name
    return source.stem + FORMAT_EXTENSIONS[settings.output_format]


def mask_path(result: Path) -> Path:
    """Where a result's repair mask is written: beside it, `<result name>.mask.png` (the
    result's whole name, so `a.tif` and `a.png` in one folder keep masks of their own)."""
    return result.with_name(result.name + ".mask.png")


def restore_file(
    source: Path,
    destination: Path,
    model: Colorizer | None,
    settings: RestoreSettings,
    *,
    source_sha256: str,
    task: str | None = None,
    hint_file: HintFile | None = None,
    instance_pass: InstancePass | None = None,
    segmenter: Segmenter | None = None,
    reference: Reference | None = None,
    replace: bool = False,
) -> RestoreResult:
    """Colorize the scan at `source` into `destination` (see the module docstring).

    An existing file at `destination` is replaced only with `replace`; otherwise the
    result is not published and OutputClaimed is raised (restore.scanio.write.publish).

    `instance_pass` (the detector, and how to run model batches) is required when
    `settings.instances` is set, and unused otherwise; `segmenter` (the damage segmenter
    the repair settings name, with its `spec`) likewise for `settings.repair`; `model` is
    required unless `settings.colorize` is off (then it is not used, and may be None).
    `reference`: a colour photo of the same scene (a series' reference) whose colours are
    carried to the scan where they match it (restore/reference.py); its match is recorded.
    Raises ScanError for an unreadable scan or a model whose colours are not finite,
    HintError for a hint file that does not fit it, SkipScan for a scan deliberately not restored.
    """
    if settings.instances is not None and instance_pass is None:
        raise ValueError("the settings ask for instances, but no detector was given")
    if settings.repair is not None and segmenter is None:
        raise ValueError("the settings ask for repair, but no damage segmenter was given")
    if settings.colorize and model is None:
        raise ValueError("the settings ask for colorization, but no model was given")
    if reference is not None and not settings.colorize:
        raise ValueError("a reference's colours need colorization")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    scan = read_scan(source)
    seconds["decode"] = time.perf_counter() - started
    if scan.tone == "colour" and not settings.include_colour:
        raise SkipScan("already in colour (restore it anyway with --include-colour)")
    repair = None
    if settings.repair is not None:
        assert segmenter is not None
        started = time.perf_counter()
        repair = repair_lightness(scan.l_hw, segmenter, settings.repair)
        scan = replaced(scan, l_hw=repair.l_hw)
        seconds["repair"] = time.perf_counter() - started
    if not settings.colorize:
        assert repair is not None and segmenter is not None  # RestoreSettings: no colour, so a repair
        return _write_repaired_gray(scan, repair, segmenter, destination, settings, source_sha256, task, seconds, replace)
    assert model is not None  # checked above
    hints = resolve(hint_file, scan.width, scan.height, source_sha256) if hint_file else []
    notes = []
    if model.spec.needs_hints and not hints:
        notes.append(f"{model.spec.name} colours only from hints, and there are none: the result is uncoloured")
    try:
        ab_work, detections, matched = chroma_pass(scan, model, settings, seconds, hints, instance_pass, reference)
    except NonFiniteOutput as exc:  # this scan fails (before anything is written), the run goes on
        raise ScanError(source, str(exc)) from None
    scan_hw = (scan.height, scan.width)
    applied = settings.applied(hinted=hint_file is not None)
    provenance = Provenance(
        tool_version=tool_version(),
        model=model.spec.name,
        weights_sha256=model.spec.weights_sha256,
        source_sha256=source_sha256,
        settings=applied.to_dict(),
        hints_sha256=hint_file.sha256 if hint_file else None,
        task=task,
        detections=detections.summary(scan_hw) if detections else None,
        reference=matched,
    )
    repaired = None
    if repair is not None:
        assert segmenter is not None
        provenance, repaired = _publish_mask(repair, segmenter, destination, provenance)
    fmt = settings.output_format or scan.format
    dtype = result_dtype(scan)
    started = time.perf_counter()
    if streams_rows(fmt, scan.alpha, scan.metadata):
        # Rows go to the file as they are computed: "recombine" includes writing them, and
        # "encode" is what is left (SHA-256, fsync, rename).
        with tiff_rows(destination, scan.height, scan.width, dtype, scan.metadata, provenance, FULL_RES_STRIP_ROWS, replace=replace) as result:
            recombine_rows(scan.l_hw, ab_work, applied.saturation, dtype, result.write, hints)
            seconds["recombine"] = time.perf_counter() - started
            started = time.perf_counter()
        assert result.sha256 is not None  # set on leaving the block without an error
        digest = result.sha256
    else:
        rgb = recombine(scan.l_hw, ab_work, applied.saturation, dtype, hints)
        seconds["recombine"] = time.perf_counter() - started
        started = time.perf_counter()
        digest = write_result(destination, rgb, scan.alpha, fmt, scan.metadata, provenance, replace=replace)
    seconds["encode"] = time.perf_counter() - started
    patches = patch_count(scan.height, scan.width, model.spec, settings) + (len(detections.instances) if detections else 0)
    record = detections.record(scan_hw) if detections else None
    return RestoreResult(destination, digest, scan.width, scan.height, patches, seconds, notes, record, repaired, matched)


def _publish_mask(repair: Repair, segmenter: Segmenter, destination: Path, provenance: Provenance) -> tuple[Provenance, dict[str, object]]:
    """Write the repair mask beside `destination`; the provenance with the repair recorded."""
    mask = mask_path(destination)
    record: dict[str, object] = {
        "segmenter": segmenter.spec.name, "weights_sha256": segmenter.spec.weights_sha256,
        "mask": mask.name, "fraction": round(repair.fraction, 6),
    }
    mask_sha256 = write_mask(mask, repair.mask_hw, replaced(provenance, repair=record))
    record = record | {"mask_sha256": mask_sha256}
    return replaced(provenance, repair=record), record


def _write_repaired_gray(
    scan: ScanPixels, repair: Repair, segmenter: Segmenter, destination: Path, settings: RestoreSettings,
    source_sha256: str, task: str | None, seconds: dict[str, float], replace: bool,
) -> RestoreResult:
    """--repair-only: the repaired lightness as gray at the scan's depth (a toned or colour
    scan's tint is not kept), with its mask and provenance (no model)."""
    provenance = Provenance(
        tool_version=tool_version(), model="none", weights_sha256=None, source_sha256=source_sha256,
        settings=settings.to_dict(), task=task,
    )
    provenance, record = _publish_mask(repair, segmenter, destination, provenance)
    started = time.perf_counter()
    gray = lightness_to_gray(scan.l_hw, result_dtype(scan))
    seconds["recombine"] = time.perf_counter() - started
    started = time.perf_counter()
    fmt = settings.output_format or scan.format
    digest = write_result(destination, gray, scan.alpha, fmt, scan.metadata, provenance, replace=replace)
    seconds["encode"] = time.perf_counter() - started
    return RestoreResult(destination, digest, scan.width, scan.height, 0, seconds, [], None, record)
