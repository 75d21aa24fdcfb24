"""`photochrom colorize`: scan files or folders in, colorized files out, no catalog. Each scan
becomes an outcome as a job's task does (jobs/worker.py `scan_outcome`).

Results go to OUT/<stem>.<ext>. An existing file there is replaced only if it is itself
a photochrom result; anything else (an original above all) is never overwritten.
With instance settings the detector is loaded once for the run; if it cannot be used, a
one-line warning says why and the files are colorized without instances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hints.schema import find_hint_file, load_hint_file
from jobs.worker import DaskBatches, TaskOutcome, colour_model, instance_pass, repair_segmenter, scan_outcome
from restore.instances import usable_instances
from restore.pipeline import RestoreResult, output_name, restore_file
from restore.reference import ReferenceError, reference_from_file
from restore.scanio.files import Failure, SourceError, file_sha256, find_scan_files
from restore.scanio.write import RESULT_MARKER, file_contains
from restore.settings import RestoreSettings


@dataclass
class ColorizeSummary:
    written: list[dict[str, object]] = field(default_factory=list)  # source, output, sha256, hints, notes[, instances]
    skipped: list[Failure] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about the whole run (e.g. instances turned off)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "written": self.written,
            "skipped": [asdict(s) for s in self.skipped],
            "failed": [asdict(f) for f in self.failed],
            "warnings": self.warnings,
        }


def colorize_files(
    sources: Sequence[Path],
    out_dir: Path,
    settings: RestoreSettings,
    progress: Callable[[int, int, Path], None] | None = None,
    hints: Path | None = None,
    reference: Path | None = None,
) -> ColorizeSummary:
    """Colorize every scan under `sources` into `out_dir`. Raises SourceError for a missing
    source or hints path, ReferenceError for a reference that cannot be used. `hints`: one
    hint file for every input, or a folder holding <stem>.json or <sha256>.json per input.
    `reference`: a colour image whose colours are carried to every input where they match
    (restore/reference.py)."""
    if hints is not None and not hints.exists():
        raise SourceError(f"{hints}: no such hint file or folder")
    if reference is not None and not settings.colorize:
        raise ReferenceError("--reference: a reference's colours need colorization; it cannot go with --repair-only")
    guide = reference_from_file(reference) if reference is not None else None
    candidates, _non_images, walk_failures = find_scan_files(sources)
    summary = ColorizeSummary(failed=list(walk_failures))
    settings, problem = usable_instances(settings)
    if problem is not None:
        summary.warnings.append(f"--instances: {problem}; colorizing without instances")
    originals = {c.path.resolve() for c in candidates}
    used: set[Path] = set()
    for done, candidate in enumerate(candidates, 1):
        source = candidate.path
        try:
            digest = file_sha256(source)
        except OSError as exc:
            summary.failed.append(Failure(str(exc.filename or source), exc.strerror or str(exc)))
            continue
        destination = out_dir / output_name(Path(source.name), settings)
        if destination in used:  # same stem from another folder
            destination = destination.with_name(f"{destination.stem}-{digest[:8]}{destination.suffix}")
        used.add(destination)
        if destination.exists() and (destination.resolve() in originals or not file_contains(destination, RESULT_MARKER)):
            summary.failed.append(Failure(str(destination), "exists and is not a photochrom result; not overwritten"))
            continue
        hint_path = (find_hint_file(hints, source.stem, digest) if hints.is_dir() else hints) if hints else None
        batches = DaskBatches()

        def work(source: Path = source, destination: Path = destination, digest: str = digest, hint_path: Path | None = hint_path) -> RestoreResult:
            return restore_file(
                source, destination, colour_model(settings), settings, source_sha256=digest,
                hint_file=load_hint_file(hint_path) if hint_path else None, instance_pass=instance_pass(settings, batches),
                segmenter=repair_segmenter(settings), reference=guide,
                replace=destination.exists(),  # only an earlier result of ours is there (checked above)
            )

        outcome = scan_outcome(0, source, destination, settings, work, batches)
        if outcome.status == "done":
            summary.written.append(_written(source, destination, hint_path, outcome))
        else:
            (summary.skipped if outcome.status == "skipped" else summary.failed).append(_about(source, outcome.reason or ""))
        if progress is not None:
            progress(done, len(candidates), source)
    return summary


def _written(source: Path, destination: Path, hint_path: Path | None, outcome: TaskOutcome) -> dict[str, object]:
    written: dict[str, object] = {
        "source": str(source), "output": str(destination), "sha256": outcome.output_sha256,
        "hints": str(hint_path) if hint_path else None, "notes": outcome.reason or "",
    }
    if outcome.instances is not None:  # label, score and box in scan pixels; masks are left out
        written["instances"] = [
            {k: v for k, v in row.items() if k != "mask_rle"} for row in outcome.instances["instances"]  # type: ignore[attr-defined]
        ]
    if outcome.repair is not None:
        written["repair"] = outcome.repair
    if outcome.reference is not None:
        written["reference"] = outcome.reference
    return written


def _about(source: Path, reason: str) -> Failure:
    """An outcome's reason as a failure listed by file: reasons name their file first (the
    scan's, a hint file's), and the scan's need not be said twice."""
    return Failure(str(source), reason.removeprefix(f"{source}: "))
