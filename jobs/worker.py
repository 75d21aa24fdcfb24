"""What runs on a Dask worker (or inline): one scan's restoration, and the batches of
instance crops a crowded scan hands to other workers.

A task carries plain data (paths, hashes, settings); the model and the detector are
looked up by name and loaded once per worker process, never shipped inside the task
graph. Nothing here touches archive.db: outcomes go back to the main process, which
records them.

Instances become Dask tasks like patches would: a scan task running on a Dask worker
whose instances fill more than one model batch submits each batch as a task
(`colorize_batch`) through `worker_client`, which secedes the scan task from its thread
while it waits, so that thread (and every other worker's) can run them and a crowded group
photo spreads over the cluster. Each batch travels inside its task (B x S x S x 4 float32:
6.4 MB for eight 224-px crops): scattered first, a batch would pin its task to the scan's
worker, since the scheduler places a task only on workers holding one of its inputs,
whereas a task without inputs goes to whichever worker has a free thread. The model is
named, not sent. Inline runs and single batches stay in the scan's own process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from hints.schema import HintError, load_hint_file
from restore.scanio.files import file_sha256
from restore.instances import Batch, InstancePass, run_inline
from restore.models.base import Colorizer, ModelError
from restore.models.detectors import shared_detector
from restore.models.installed import weights_sha256
from restore.models.registry import get_spec, shared_model
from restore.scanio.write import OutputClaimed, result_provenance
from restore.pipeline import RestoreResult, SkipScan, restore_file
from restore.reference import Reference, ReferenceError, reference_from_file
from restore.repair.repair import Segmenter
from restore.settings import RestoreSettings
from restore.scanio.probe import ScanError


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
    reference_path: str | None = None
    reference_sha256: str | None = None

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
    instances: dict[str, object] | None = None  # with instances: restore.detections record (masks included)
    instance_tasks: int = 0  # batches of instance crops this scan ran as Dask tasks of their own
    repair: dict[str, object] | None = None  # with repair: segmenter, its SHA-256, mask file, SHA-256, fraction
    reference: dict[str, object] | None = None  # with a series reference: what matched (restore/reference.py)


def colorize_batch(model_name: str, batch: Batch) -> np.ndarray:
    """A Dask task: one batch of instance crops through the worker's own copy of the model."""
    return shared_model(model_name).colorize(*batch)


def _on_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


class DaskBatches:
    """Runs instance batches as Dask tasks when on a Dask worker and there is more than one
    (see the module docstring); otherwise inline. Counts the tasks it submitted."""

    def __init__(self) -> None:
        self.submitted = 0

    def __call__(self, model: Colorizer, batches: Sequence[Batch]) -> list[np.ndarray]:
        if len(batches) <= 1 or not _on_dask_worker():
            return run_inline(model, batches)
        from distributed import worker_client

        with worker_client() as client:
            tag = uuid.uuid4().hex[:8]
            futures = [
                client.submit(colorize_batch, model.spec.name, batch, pure=False, key=f"instances-{tag}-{i}")
                for i, batch in enumerate(batches)
            ]
            self.submitted += len(futures)
            return client.gather(futures)


def _written_by(spec: TaskSpec, provenance: dict[str, str]) -> bool:
    """Whether a result's provenance is what this task writes: its task key, and the same
    source, settings, weights and hint file (a job of another catalog has the same key)."""
    expected = {
        "Task": spec.key,
        "SourceSHA256": spec.source_sha256,
        "Settings": json.dumps(spec.settings.to_dict(), sort_keys=True),
        "WeightsSHA256": (weights_sha256(get_spec(spec.settings.model)) if spec.settings.colorize else None) or "",
        "HintsSHA256": spec.hints_sha256 or "",
    }
    if _recorded_reference(provenance) != spec.reference_sha256:
        return False
    return all(provenance.get(name) == value for name, value in expected.items())


def _recorded_reference(provenance: dict[str, str]) -> str | None:
    """The SHA-256 of the reference a result's provenance names (None: none, or unreadable)."""
    try:
        recorded = json.loads(provenance.get("Reference") or "null")
    except ValueError:
        return None
    sha256 = recorded.get("sha256") if isinstance(recorded, dict) else None
    return sha256 if isinstance(sha256, str) else None


def run_task(spec: TaskSpec) -> TaskOutcome:
    """Restore one scan. Bad input is an outcome; anything else raises (and is retried)."""
    source, output = Path(spec.source), Path(spec.output)
    if output.exists() or output.is_symlink():
        provenance = result_provenance(output)
        if provenance is not None and _written_by(spec, provenance):  # finished before an interruption: keep it
            return TaskOutcome(spec.task_id, "done", output_sha256=file_sha256(output), adopted=True)
        if provenance is not None:  # another job's result: two runs share the folder
            return TaskOutcome(spec.task_id, "skipped", reason=str(OutputClaimed(output)))
        return TaskOutcome(spec.task_id, "failed", reason=f"{output}: exists and was not written by this job; not overwritten")

    def work() -> RestoreResult:
        if file_sha256(source) != spec.source_sha256:
            raise ScanError(source, "changed since it was ingested; ingest it again")
        hint_file = load_hint_file(Path(spec.hints_path)) if spec.hints_path else None
        if hint_file is not None and hint_file.sha256 != spec.hints_sha256:
            raise HintError(spec.hints_path or "", "changed since the job was created; run restore again")
        reference = task_reference(spec.reference_path, spec.reference_sha256) if spec.reference_path else None
        return restore_file(
            source, output, colour_model(spec.settings), spec.settings, source_sha256=spec.source_sha256, task=spec.key,
            hint_file=hint_file, instance_pass=instance_pass(spec.settings, batches), segmenter=repair_segmenter(spec.settings),
            reference=reference,
        )

    batches = DaskBatches()
    return scan_outcome(spec.task_id, source, output, spec.settings, work, batches)


@lru_cache(maxsize=4)
def task_reference(path: str, sha256: str | None) -> Reference:
    """A series reference, read once per worker process for the tasks that share it. Raises
    ReferenceError when it cannot be read or is no longer the file the job recorded."""
    reference = reference_from_file(Path(path))
    if sha256 is not None and reference.sha256 != sha256:
        raise ReferenceError(f"reference {path}: changed since the job was created; run restore again")
    return reference


def instance_pass(settings: RestoreSettings, batches: DaskBatches) -> InstancePass | None:
    """The instance pass the settings ask for, with this process's copy of the detector.
    Raises InstancesUnavailable when its weights changed or vanished after they were checked."""
    if settings.instances is None:
        return None
    try:
        return InstancePass(shared_detector(settings.instances.detector), batches)
    except ModelError as exc:
        raise InstancesUnavailable(f"--instances: {exc}") from None


def colour_model(settings: RestoreSettings) -> Colorizer | None:
    """This process's copy of the colorization model the settings name; None for a
    repair-only run, which colorizes nothing (so loads no model)."""
    return shared_model(settings.model) if settings.colorize else None


def repair_segmenter(settings: RestoreSettings) -> Segmenter | None:
    """This process's copy of the damage segmenter the repair settings name, if any."""
    if settings.repair is None:
        return None
    from restore.models.damage import shared_segmenter

    try:
        return shared_segmenter(settings.repair.segmenter)
    except ModelError as exc:
        raise RepairUnavailable(f"--repair: {exc}") from None


class RepairUnavailable(Exception):
    """The damage segmenter cannot be loaded (its shipped weights changed or vanished)."""


class InstancesUnavailable(Exception):
    """The detector the settings name cannot be loaded (its weights changed or vanished)."""


def scan_outcome(
    task_id: int, source: Path, output: Path, settings: RestoreSettings, work: Callable[[], RestoreResult], batches: DaskBatches,
) -> TaskOutcome:
    """Run `work` (one scan's restoration into `output`) and turn what it raises into the
    outcome that is recorded: the one place where a scan becomes an outcome, for jobs and
    for one-off `colorize` alike. Bad input, a model that cannot load and a path taken
    meanwhile fail or skip this scan with their reason; anything else raises (a crash, which
    a job retries)."""
    try:
        result = work()
    except OutputClaimed as exc:  # published by another run while this one worked: theirs stays
        if exc.writer is None:
            return TaskOutcome(task_id, "failed", reason=f"{output}: appeared while the scan was restored, not written by photochrom; not overwritten")
        return TaskOutcome(task_id, "skipped", reason=str(exc))
    except OSError as exc:  # the source vanished, a disk filled: retrying would not help
        return TaskOutcome(task_id, "failed", reason=f"{exc.filename or source}: {exc.strerror or exc}")
    except (ScanError, HintError, InstancesUnavailable, RepairUnavailable, ReferenceError) as exc:
        return TaskOutcome(task_id, "failed", reason=str(exc))
    except ModelError as exc:  # its weights vanished or changed after they were checked: retrying would not help
        return TaskOutcome(task_id, "failed", reason=f"--model {settings.model}: {exc}")
    except SkipScan as exc:
        return TaskOutcome(task_id, "skipped", reason=str(exc))
    return TaskOutcome(
        task_id, "done", reason="; ".join(result.notes) or None, output_sha256=result.sha256,
        seconds=result.seconds, patches=result.patches, instances=result.detections, instance_tasks=batches.submitted,
        repair=result.repair, reference=result.reference,
    )
