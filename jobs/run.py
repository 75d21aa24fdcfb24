"""Restore jobs: create one from the catalog, run its tasks on a scheduler, resume it.

Only this process writes archive.db: workers return outcomes and each is recorded as it
arrives, in its own transaction, so a job killed at any moment keeps every finished scan.
A task's output is written atomically by its worker and names the task in its XMP, so
a resumed job recognises outputs that were finished but not yet recorded and keeps
them instead of writing them again. Temporary files left by a killed write are removed.

With instance settings, the detector is checked once, when the job is created: if it
cannot be used (its weights not imported, detectron2 not installed), the job says so in
one line (a "warning" event, in the summary) and restores its scans without instances,
keyed and recorded as what they are.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db import Catalog, CatalogError
from catalog.models import HintFileRecord, Job, JobEvent, JobStatus, Location, OutputClaim, Scan, ScanStatus, Task, TaskStatus, utcnow
from catalog.queries import find_scan
from jobs import lease
from jobs.scheduler import open_runner
from hints.schema import HintError, HintFile, find_hint_file
from hints.validate import ScanIdentity, validate_hint_file
from jobs.series import scan_references
from jobs.worker import TaskOutcome, TaskSpec
from restore.instances import usable_instances
from restore.models.detectors import get_detector_spec
from restore.models.installed import weights_sha256
from restore.models.registry import get_spec
from restore.scanio.write import temporary_target
from restore.pipeline import mask_path, output_name
from restore.settings import DEFAULT_RETRIES, DEFAULT_SCHEDULER, DEFAULT_WORKERS, RestoreSettings


@dataclass(frozen=True)
class JobSettings:
    """A restore job's frozen settings, recorded with the job and reused on resume."""

    restore: RestoreSettings = RestoreSettings()
    out_dir: str | None = None  # None: restored/job-<id>
    retries: int = DEFAULT_RETRIES
    hints_dir: str | None = None  # curator hint files: <scan stem>.json or <sha256>.json
    # Series references (restore/reference.py), resolved when the job is created: one image
    # for every scan (`reference`), or a series file naming each series' reference and scans.
    reference: str | None = None
    series: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobSettings:
        data = json.loads(text)
        return cls(
            restore=RestoreSettings.from_dict(data["restore"]), out_dir=data["out_dir"], retries=data["retries"],
            hints_dir=data.get("hints_dir"), reference=data.get("reference"), series=data.get("series"),
        )


@dataclass
class JobSummary:
    job_id: int
    out_dir: str
    done: int = 0
    adopted: int = 0  # outputs finished before an interruption, kept as they were
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    current: int = 0  # scans whose result with these settings already exists
    notes: list[dict[str, str]] = field(default_factory=list)  # done, with something to say
    status: str = JobStatus.RUNNING
    instances: int = 0  # people and objects colorized on their own, over the done scans
    warnings: list[str] = field(default_factory=list)  # about the whole job (e.g. instances turned off)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def result_key(settings: RestoreSettings, hints_sha256: str | None = None, reference_sha256: str | None = None) -> str:
    """SHA-256 of what decides a result's pixels: settings, model and its weights, hint file,
    the detector's and the damage segmenter's weights where they are used, and the series
    reference's SHA-256 where there is one."""
    model_sha256 = weights_sha256(get_spec(settings.model)) if settings.colorize else None
    # The saturation applied, not "the default": unhinted scans keep the keys they had under 1.15.
    applied = settings.applied(hinted=hints_sha256 is not None)
    document: dict[str, object] = {"settings": applied.to_dict(), "weights_sha256": model_sha256, "hints_sha256": hints_sha256}
    if settings.instances is not None:  # absent otherwise, so older results stay current
        document["detector_sha256"] = weights_sha256(get_detector_spec(settings.instances.detector))
    if settings.repair is not None:  # likewise
        from restore.models.damage import segmenter_sha256

        document["segmenter_sha256"] = segmenter_sha256(settings.repair.segmenter)
    if reference_sha256 is not None:  # likewise
        document["reference_sha256"] = reference_sha256
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def create_restore_job(
    catalog: Catalog, settings: JobSettings, scan_ids: Sequence[str] = (), default_root: Path = Path("restored")
) -> tuple[int, int]:
    """Record a job with a task for every selected scan lacking a current result.

    Returns (job id, number of scans whose result is already current). Raises CatalogError
    for an unknown scan in `scan_ids` or an unknown model, ReferenceError for a reference or
    series file that cannot be used (nothing is recorded then).
    """
    hints_dir = Path(settings.hints_dir) if settings.hints_dir else None
    restore_settings, problem = usable_instances(settings.restore)
    settings = replace(settings, restore=restore_settings)
    warning = f"--instances: {problem}; restoring without instances" if problem else None
    with catalog.write() as session:
        scans = _select_scans(session, scan_ids)
        references = scan_references(session, scans, settings.reference, settings.series)
        job = Job(kind="restore", created_at=utcnow(), status=JobStatus.RUNNING, out_dir="", settings=settings.to_json())
        lease.take(job)  # this process runs it next: another restore sees it as running from now on
        session.add(job)
        session.flush()
        out_dir = Path(settings.out_dir) if settings.out_dir else default_root / f"job-{job.id}"
        job.out_dir = str(out_dir.resolve())
        if warning is not None:
            _event(session, job, None, "warning", warning)
        used_outputs: set[str] = set()
        current = 0
        elsewhere: dict[int, int] = {}  # running job -> scans of this selection it is restoring with these settings
        live: dict[int, bool] = {}  # job -> whether a live process holds it, asked once per job
        for scan in scans:
            location = next((loc for loc in scan.locations if loc.superseded_at is None and Path(loc.path).exists()), None)
            hint_file, hint_error = _hint_file_for(hints_dir, scan, location)
            reference = references.get(scan.id)
            key = result_key(settings.restore, hint_file.sha256 if hint_file else None, reference.sha256 if reference else None)
            if hint_error is None and _has_current_result(session, scan, key):
                current += 1
                continue
            running = _running_elsewhere(session, scan, key, job, live)
            if hint_error is None and running is not None:
                elsewhere[running] = elsewhere.get(running, 0) + 1
                continue
            task = Task(job=job, scan=scan, result_key=key, attempts=0, status=TaskStatus.PENDING, source_path="", output_path="")
            session.add(task)
            if hint_file is not None:
                task.hints_path, task.hints_sha256 = str(hint_file.path.resolve()), hint_file.sha256
                _record_hint_file(session, scan, hint_file)
            if reference is not None:
                task.reference_path, task.reference_sha256 = str(reference.path), reference.sha256
            if hint_error is not None:
                task.status, task.reason = TaskStatus.FAILED, hint_error
                task.source_path = location.path if location else ""
            elif location is None:
                task.status, task.reason = TaskStatus.FAILED, "no readable location: every path it was ingested from is gone"
                task.source_path = scan.locations[-1].path if scan.locations else ""
            else:
                task.source_path = location.path
                task.output_path = _output_path(Path(job.out_dir), location, scan, settings.restore, used_outputs)
                if scan.tone == "colour" and not settings.restore.include_colour:
                    task.status, task.reason = TaskStatus.SKIPPED, "already in colour (restore it anyway with --include-colour)"
                else:
                    _claim_output(session, task)
        for other, count in elsewhere.items():
            _event(session, job, None, "warning", f"{count} scans are being restored with these settings by job {other}, which is running; left to it")
        _event(session, job, None, "created", f"{len(job.tasks)} tasks, {current} scans already current; output in {job.out_dir}")
        return job.id, current


def _hint_file_for(hints_dir: Path | None, scan: Scan, location: Location | None) -> tuple[HintFile | None, str | None]:
    """The scan's hint file in `hints_dir`, checked against the scan (or the reason it is unusable)."""
    if hints_dir is None:
        return None, None
    stem = Path(location.relpath).stem if location else ""
    path = find_hint_file(hints_dir, stem, scan.sha256)
    if path is None:
        return None, None
    try:
        hint_file = validate_hint_file(path, ScanIdentity(scan.sha256, scan.width or 0, scan.height or 0)).file
    except HintError as exc:
        return None, str(exc)
    return hint_file, None


def _record_hint_file(session: Session, scan: Scan, hint_file: HintFile) -> None:
    now = utcnow()
    record = session.scalar(
        select(HintFileRecord).where(HintFileRecord.sha256 == hint_file.sha256, HintFileRecord.scan_id == scan.id)
    )
    if record is None:
        session.add(HintFileRecord(
            sha256=hint_file.sha256, scan_id=scan.id, path=str(hint_file.path.resolve()), points=len(hint_file.points),
            first_used_at=now, last_used_at=now,
        ))
    else:
        record.last_used_at, record.path = now, str(hint_file.path.resolve())


def _select_scans(session: Session, scan_ids: Sequence[str]) -> list[Scan]:
    if scan_ids:
        return [find_scan(session, ident) for ident in scan_ids]
    return list(session.scalars(select(Scan).where(Scan.status == ScanStatus.INGESTED).order_by(Scan.id)))


def _running_elsewhere(session: Session, scan: Scan, key: str, job: Job, live: dict[int, bool]) -> int | None:
    """The id of another job that a live process is running and that has this scan still to
    restore with the same result key, if any: a second restore leaves the scan to it.
    `live` caches, per job id, whether its lease has a live holder (a process lookup each)."""
    unfinished = session.scalars(
        select(Task).where(
            Task.scan_id == scan.id, Task.result_key == key, Task.job_id != job.id,
            Task.status.in_((TaskStatus.PENDING, TaskStatus.RUNNING)),
        )
    )
    for task in unfinished:
        if task.job_id not in live:
            live[task.job_id] = lease.holder(task.job) is not None
        if live[task.job_id]:
            return task.job_id
    return None


def _claim_output(session: Session, task: Task) -> None:
    """Claim the task's output path for it, unless another job's task holds it (then the
    task is skipped, saying which job). A claim holds while its task may still publish
    the path, or has published it and the file is there; a failed task's claim is gone."""
    session.flush()  # the task's id
    claim = session.get(OutputClaim, task.output_path)
    if claim is not None and claim.task.job_id != task.job_id and _claim_holds(claim):
        task.status = TaskStatus.SKIPPED
        task.reason = f"{task.output_path}: claimed by job {claim.task.job_id}; not overwritten (choose another --out)"
        return
    if claim is None:
        session.add(OutputClaim(path=task.output_path, task_id=task.id, claimed_at=utcnow()))
    else:
        claim.task_id, claim.claimed_at = task.id, utcnow()


def _claim_holds(claim: OutputClaim) -> bool:
    status = claim.task.status
    return status in (TaskStatus.PENDING, TaskStatus.RUNNING) or (status == TaskStatus.DONE and Path(claim.path).exists())


def _release_output(session: Session, task: Task) -> None:
    """A task that failed or was skipped gives its output path back."""
    claim = session.get(OutputClaim, task.output_path) if task.output_path else None
    if claim is not None and claim.task_id == task.id:
        session.delete(claim)


def _has_current_result(session: Session, scan: Scan, key: str) -> bool:
    done = session.scalars(
        select(Task).where(Task.scan_id == scan.id, Task.result_key == key, Task.status == TaskStatus.DONE)
    )
    return any(Path(task.output_path).exists() for task in done)


def _output_path(out_dir: Path, location: Location, scan: Scan, settings: RestoreSettings, used: set[str]) -> str:
    """OUT/<path relative to the ingest folder>, the extension following --format.

    Two scans from different ingest folders may share a relative path; the second gets its
    SHA-256 prefix added to the name rather than overwrite the first.
    """
    relative = Path(location.relpath)
    path = out_dir / relative.parent / output_name(relative, settings)
    if str(path) in used:
        path = path.with_name(f"{path.stem}-{scan.sha256[:8]}{path.suffix}")
    used.add(str(path))
    return str(path)


def _event(session: Session, job: Job, task: Task | None, kind: str, detail: str = "") -> None:
    session.add(JobEvent(job=job, task_id=task.id if task else None, at=utcnow(), kind=kind, detail=detail))


def remove_partial_outputs(outputs: Sequence[Path]) -> int:
    """Delete the temporary files that a killed write of one of these outputs left beside it.

    Only those: another run may be writing into the same folder (its own outputs, claimed
    by its tasks), and --out may be a folder others use."""
    wanted: dict[Path, set[str]] = {}
    for output in outputs:
        wanted.setdefault(output.parent, set()).add(output.name)
    removed = 0
    for folder, names in wanted.items():  # each folder listed once, however many outputs it holds
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if temporary_target(entry.name) in names:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed


def run_job(
    catalog: Catalog,
    job_id: int,
    *,
    scheduler: str = DEFAULT_SCHEDULER,
    workers: int = DEFAULT_WORKERS,
    progress: Callable[[int, int, TaskOutcome | None], None] | None = None,
) -> JobSummary:
    """Run (or resume) every unfinished task of job `job_id` and record each outcome.

    The job's lease is taken first and renewed while it runs (jobs/lease.py): raises
    JobBusy, having done nothing, when another live process is running the job."""
    with catalog.write() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise CatalogError(f"no job with id {job_id}")
        lease.take(job)
        settings = JobSettings.from_json(job.settings)
        outputs = [Path(t.output_path) for t in job.tasks if t.output_path]
        removed = remove_partial_outputs(outputs + ([mask_path(o) for o in outputs] if settings.restore.repair else []))
        todo = [t for t in job.tasks if t.status in (TaskStatus.PENDING, TaskStatus.RUNNING)]
        resumed = any(t.status == TaskStatus.RUNNING or t.attempts for t in job.tasks)
        if resumed:
            _event(session, job, None, "resumed", f"{len(todo)} tasks to go; {removed} partial files removed")
        specs = []
        for task in todo:
            task.status, task.attempts, task.started_at = TaskStatus.RUNNING, task.attempts + 1, utcnow()
            specs.append(TaskSpec(
                task.id, job.id, task.source_path, task.scan.sha256, task.output_path, settings.restore,
                task.hints_path, task.hints_sha256, task.reference_path, task.reference_sha256,
            ))
    total, finished = len(specs), 0
    if progress is not None:
        progress(0, total, None)
    with lease.Heartbeat(catalog, job_id):
        _run_specs(catalog, specs, settings, scheduler, workers, progress)
        return _finish(catalog, job_id)


def _run_specs(
    catalog: Catalog, specs: list[TaskSpec], settings: JobSettings, scheduler: str, workers: int,
    progress: Callable[[int, int, TaskOutcome | None], None] | None,
) -> None:
    total, finished = len(specs), 0
    with open_runner(scheduler, workers or os.cpu_count() or 1) as runner:
        for spec in specs:
            runner.submit(spec)
        for spec, outcome in runner.results():
            if isinstance(outcome, BaseException):
                if _record_crash(catalog, spec, outcome, settings.retries):
                    runner.submit(spec)
                    continue
            else:
                _record_outcome(catalog, outcome)
            finished += 1
            if progress is not None:
                progress(finished, total, outcome if isinstance(outcome, TaskOutcome) else None)


def _record_outcome(catalog: Catalog, outcome: TaskOutcome) -> None:
    with catalog.write() as session:
        task = session.get_one(Task, outcome.task_id)
        task.status, task.reason, task.finished_at = outcome.status, outcome.reason, utcnow()
        task.output_sha256 = outcome.output_sha256
        if outcome.seconds:
            task.seconds = json.dumps({k: round(v, 4) for k, v in outcome.seconds.items()})
        if outcome.instances is not None:
            task.instances = json.dumps(outcome.instances | {"dask_tasks": outcome.instance_tasks}, separators=(",", ":"))
        if outcome.repair is not None:
            task.repair = json.dumps(outcome.repair, sort_keys=True)
        if outcome.reference is not None:
            task.reference = json.dumps(outcome.reference, sort_keys=True)
        if outcome.status != TaskStatus.DONE:
            _release_output(session, task)
        if outcome.adopted:
            _event(session, task.job, task, "kept", f"{task.output_path}: finished by an interrupted attempt; kept, not rewritten")
        else:
            _event(session, task.job, task, outcome.status, outcome.reason or task.output_path)


def _record_crash(catalog: Catalog, spec: TaskSpec, error: BaseException, retries: int) -> bool:
    """Record a task whose run raised (a dead worker, a crash); True if it is to be retried."""
    reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}".rstrip(": ")
    with catalog.write() as session:
        task = session.get_one(Task, spec.task_id)
        if task.attempts <= retries:
            task.attempts += 1
            _event(session, task.job, task, "retry", f"attempt {task.attempts - 1} failed: {reason}")
            return True
        task.status, task.finished_at = TaskStatus.FAILED, utcnow()
        task.reason = f"{spec.source}: failed on {task.attempts} attempts; last: {reason}"
        _release_output(session, task)
        _event(session, task.job, task, TaskStatus.FAILED, task.reason)
        return False


def _finish(catalog: Catalog, job_id: int) -> JobSummary:
    with catalog.write() as session:
        job = session.get_one(Job, job_id)
        summary = JobSummary(job_id=job.id, out_dir=job.out_dir)
        for task in job.tasks:
            if task.status == TaskStatus.DONE:
                summary.done += 1
                if task.instances:
                    summary.instances += len(json.loads(task.instances)["instances"])
                if task.reason:
                    summary.notes.append({"path": task.source_path, "note": task.reason})
            elif task.status == TaskStatus.FAILED:
                summary.failed.append({"path": task.source_path, "reason": task.reason or ""})
            elif task.status == TaskStatus.SKIPPED:
                summary.skipped.append({"path": task.source_path, "reason": task.reason or ""})
        summary.adopted = sum(1 for e in job.events if e.kind == "kept")
        summary.warnings = [e.detail for e in job.events if e.kind == "warning"]
        if all(t.status in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.SKIPPED) for t in job.tasks):
            if job.status != JobStatus.FINISHED:
                job.status, job.finished_at = JobStatus.FINISHED, utcnow()
                _event(session, job, None, "finished", f"{summary.done} done, {len(summary.failed)} failed, {len(summary.skipped)} skipped")
        summary.status = job.status
        return summary


def list_jobs(catalog: Catalog) -> list[dict[str, object]]:
    with catalog.read() as session:
        return [_job_row(job) for job in session.scalars(select(Job).order_by(Job.id))]


def show_job(catalog: Catalog, job_id: int) -> dict[str, object]:
    with catalog.read() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise CatalogError(f"no job with id {job_id}")
        row = _job_row(job)
        row["settings"] = json.loads(job.settings)
        row["tasks"] = [
            {
                "id": t.id, "scan_id": t.scan_id, "status": t.status, "attempts": t.attempts, "reason": t.reason,
                "source": t.source_path, "output": t.output_path, "output_sha256": t.output_sha256,
                "seconds": json.loads(t.seconds) if t.seconds else None,
                "instances": json.loads(t.instances) if t.instances else None,
                "repair": json.loads(t.repair) if t.repair else None,
                "reference": t.reference_record(),
            }
            for t in job.tasks
        ]
        row["events"] = [
            {"at": e.at.isoformat(timespec="seconds"), "kind": e.kind, "task_id": e.task_id, "detail": e.detail}
            for e in job.events
        ]
        return row


def _job_row(job: Job) -> dict[str, object]:
    counts: dict[str, int] = {}
    for task in job.tasks:
        counts[task.status] = counts.get(task.status, 0) + 1
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "created_at": job.created_at.isoformat(timespec="seconds"),
        "finished_at": job.finished_at.isoformat(timespec="seconds") if job.finished_at else None,
        "out_dir": job.out_dir, "model": json.loads(job.settings)["restore"]["model"], "tasks": counts,
        "running_in": owner.describe() if (owner := lease.holder(job)) else None,  # None: finished or interrupted
    }
