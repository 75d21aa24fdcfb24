"""`photochrom colorize`: scan files or folders in, colorized files out, no catalog.

Results go to OUT/<stem>.<ext>. An existing file there is replaced only if it is itself
a photochrom result; anything else (an original above all) is never overwritten.
With instance settings the detector is loaded once for the run; if it cannot be used, a
one-line warning says why and the files are colorized without instances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hints.schema import HintError, find_hint_file, load_hint_file
from restore.scanio.files import Failure, SourceError, file_sha256, find_scan_files
from restore.instances import InstancePass, usable_instances
from restore.models.detectors import create_detector
from restore.models.registry import create_model
from restore.scanio.write import RESULT_MARKER, OutputClaimed, file_contains
from restore.pipeline import SkipScan, output_name, restore_file
from restore.settings import RestoreSettings
from restore.scanio.probe import ScanError


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
) -> ColorizeSummary:
    """Colorize every scan under `sources` into `out_dir`. Raises SourceError for a missing
    source or hints path. `hints`: one hint file for every input, or a folder holding
    <stem>.json or <sha256>.json per input."""
    if hints is not None and not hints.exists():
        raise SourceError(f"{hints}: no such hint file or folder")
    candidates, _non_images, walk_failures = find_scan_files(sources)
    summary = ColorizeSummary(failed=list(walk_failures))
    model = create_model(settings.model)
    settings, problem = usable_instances(settings)
    if problem is not None:
        summary.warnings.append(f"--instances: {problem}; colorizing without instances")
    instance_pass = InstancePass(create_detector(settings.instances.detector)) if settings.instances else None
    originals = {c.path.resolve() for c in candidates}
    used: set[Path] = set()
    for done, candidate in enumerate(candidates, 1):
        source = candidate.path
        try:
            digest = file_sha256(source)
            destination = out_dir / output_name(Path(source.name), settings)
            if destination in used:  # same stem from another folder
                destination = destination.with_name(f"{destination.stem}-{digest[:8]}{destination.suffix}")
            used.add(destination)
            if destination.exists() and (destination.resolve() in originals or not file_contains(destination, RESULT_MARKER)):
                raise ScanError(destination, "exists and is not a photochrom result; not overwritten")
            hint_path = (find_hint_file(hints, source.stem, digest) if hints.is_dir() else hints) if hints else None
            hint_file = load_hint_file(hint_path) if hint_path else None
            result = restore_file(
                source, destination, model, settings, source_sha256=digest, hint_file=hint_file, instance_pass=instance_pass,
                replace=destination.exists(),  # only an earlier result of ours is there (checked above)
            )
            written: dict[str, object] = {
                "source": str(source), "output": str(result.output), "sha256": result.sha256,
                "hints": str(hint_path) if hint_path else None, "notes": "; ".join(result.notes),
            }
            if result.detections is not None:  # label, score and box in scan pixels; masks are left out
                written["instances"] = [
                    {k: v for k, v in row.items() if k != "mask_rle"} for row in result.detections["instances"]  # type: ignore[attr-defined]
                ]
            summary.written.append(written)
        except SkipScan as exc:
            summary.skipped.append(Failure(str(source), str(exc)))
        except ScanError as exc:
            summary.failed.append(Failure(str(exc.path), exc.reason))
        except OutputClaimed as exc:  # something was written there while this scan was colorized
            summary.failed.append(Failure(str(source), str(exc)))
        except HintError as exc:
            summary.failed.append(Failure(str(source), str(exc)))
        except OSError as exc:
            summary.failed.append(Failure(str(exc.filename or source), exc.strerror or str(exc)))
        if progress is not None:
            progress(done, len(candidates), source)
    return summary
