"""What runs on a Dask worker (or inline): one scan's restoration.

A task carries plain data (paths, hashes, settings); the model is looked up by name
and loaded once per worker process, never shipped inside the task graph. Nothing
here touches archive.db: outcomes go back to the main process, which records them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hints.schema import HintError, load_hint_file
from restore.files import file_sha256
from restore.models.registry import shared_model
from restore.output import file_contains, task_marker
from restore.pipeline import RestoreSettings, SkipScan, restore_file
from restore.scans import ScanError



@dataclass(frozen=True)
class TaskSpec:
    task_id: int
    job_id: int
    source: str
    source_sha256: str
    output: str
    settings: RestoreSettings
    hints_path: str | None = None
    hints_sha256: str | None = None

    @property
    def key(self) -> str:
        """How the result names the task that wrote it (in its XMP)."""
        return f"job-{self.job_id}/task-{self.task_id}"


@dataclass(frozen=True)
class TaskOutcome:
    task_id: int
    status: str  # "done", "failed" or "skipped" (catalog.models.TaskStatus values)
    reason: str | None = None
    output_sha256: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    patches: int = 0  # model inputs this scan took
    adopted: bool = False  # the output was already complete from an interrupted attempt


def run_task(spec: TaskSpec) -> TaskOutcome:
    """Restore one scan. Bad input is an outcome; anything else raises (and is retried)."""
    source, output = Path(spec.source), Path(spec.output)
    if output.exists():
        if file_contains(output, task_marker(spec.key)):  # finished before an interruption: keep it, do not rewrite
            return TaskOutcome(spec.task_id, "done", output_sha256=file_sha256(output), adopted=True)
        return TaskOutcome(spec.task_id, "failed", reason=f"{output}: exists and was not written by this job; not overwritten")
    try:
        if file_sha256(source) != spec.source_sha256:
            return TaskOutcome(spec.task_id, "failed", reason=f"{source}: changed since it was ingested; ingest it again")
        hint_file = load_hint_file(Path(spec.hints_path)) if spec.hints_path else None
        if hint_file is not None and hint_file.sha256 != spec.hints_sha256:
            return TaskOutcome(spec.task_id, "failed", reason=f"{spec.hints_path}: changed since the job was created; run restore again")
        result = restore_file(
            source, output, shared_model(spec.settings.model), spec.settings, source_sha256=spec.source_sha256, task=spec.key,
            hint_file=hint_file,
        )
    except OSError as exc:  # the source vanished, a disk filled: retrying would not help
        return TaskOutcome(spec.task_id, "failed", reason=f"{exc.filename or source}: {exc.strerror or exc}")
    except (ScanError, HintError) as exc:
        return TaskOutcome(spec.task_id, "failed", reason=str(exc))
    except SkipScan as exc:
        return TaskOutcome(spec.task_id, "skipped", reason=str(exc))
    return TaskOutcome(
        spec.task_id, "done", reason="; ".join(result.notes) or None, output_sha256=result.sha256,
        seconds=result.seconds, patches=result.patches,
    )
