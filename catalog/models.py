"""The tables of archive.db, as SQLAlchemy 2 typed models.

The schema these declare is built by the ordered migrations in `catalog.db`, never by
`create_all`; a test checks that the two agree.
"""

from __future__ import annotations

import enum
import json
import os
from datetime import datetime, timezone

from sqlalchemy import DateTime, Float, ForeignKey, Index, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes; SQLite itself stores them naive."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; use catalog.models.utcnow()")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class PathText(TypeDecorator[str]):
    """Text that holds file names, which POSIX lets be any bytes: Python gives a name that is
    not UTF-8 as a str with lone surrogates (os.fsdecode), which SQLite cannot bind as TEXT.
    Such a value is stored as its bytes (a BLOB, which SQLite keeps as it is in a TEXT
    column) and read back with os.fsdecode; valid UTF-8 stays TEXT, as in older catalogs.
    The same str always binds the same way, so equality and uniqueness still hold."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: object) -> str | bytes | None:
        if value is None:
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return os.fsencode(value)
        return value

    def process_result_value(self, value: str | bytes | None, dialect: object) -> str | None:
        return os.fsdecode(value) if isinstance(value, bytes) else value


class ScanStatus(enum.StrEnum):
    INGESTED = "ingested"  # catalogued and readable
    INVALID = "invalid"  # failed validation; its events say why


class EventKind(enum.StrEnum):
    INGESTED = "ingested"
    LOCATION_ADDED = "location_added"
    FAILED_VALIDATION = "failed_validation"
    SUPERSEDED = "superseded"  # the bytes at one of its locations changed
    NOTE = "note"


class Outcome(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    INFO = "info"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, float: Float}


class Scan(Base):
    """One scan, identified by the SHA-256 of its bytes."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int]
    format: Mapped[str | None] = mapped_column(String(8))
    width: Mapped[int | None]  # after EXIF orientation
    height: Mapped[int | None]
    bit_depth: Mapped[int | None]
    colour_mode: Mapped[str | None] = mapped_column(String(8))  # gray, rgb, palette, cmyk
    has_alpha: Mapped[bool | None]
    tone: Mapped[str | None] = mapped_column(String(12))  # monochrome, toned, colour
    tone_hue_deg: Mapped[float | None]
    has_icc: Mapped[bool | None]
    exif_orientation: Mapped[int | None]
    dpi_x: Mapped[float | None]
    dpi_y: Mapped[float | None]
    pages: Mapped[int | None]
    ingested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))

    locations: Mapped[list[Location]] = relationship(back_populates="scan", order_by="Location.id")
    events: Mapped[list[Event]] = relationship(back_populates="scan", order_by="Event.id")

    @property
    def shown_location(self) -> Location | None:
        """Where to show the scan as being: its first current location, else its last one."""
        current = [loc for loc in self.locations if loc.superseded_at is None]
        return current[0] if current else (self.locations[-1] if self.locations else None)


class Location(Base):
    """A place a scan's bytes were found: the folder it was ingested from and a path under it."""

    __tablename__ = "locations"
    __table_args__ = (
        UniqueConstraint("scan_id", "root", "relpath"),
        Index("ix_locations_path", "root", "relpath"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"))
    root: Mapped[str] = mapped_column(PathText)  # absolute, resolved ingest folder
    relpath: Mapped[str] = mapped_column(PathText)  # POSIX path relative to root
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    # Set when different bytes were later found at this path; the record stays.
    superseded_at: Mapped[datetime | None]

    scan: Mapped[Scan] = relationship(back_populates="locations")

    @property
    def path(self) -> str:
        return f"{self.root.rstrip('/')}/{self.relpath}"


class IngestRun(Base):
    """One `photochrom ingest` invocation, with its settings and what it found."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    sources: Mapped[str] = mapped_column(PathText)  # JSON list of paths as given
    settings: Mapped[str] = mapped_column(Text)  # JSON of IngestSettings
    added: Mapped[int] = mapped_column(default=0)
    known: Mapped[int] = mapped_column(default=0)
    new_locations: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)


class Event(Base):
    """History, as rows: what happened to a scan (or to a file that never became one)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_scan", "scan_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int | None] = mapped_column(ForeignKey("scans.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(PathText)
    detail: Mapped[str] = mapped_column(PathText, default="")  # reasons name files

    scan: Mapped[Scan | None] = relationship(back_populates="events")


class JobStatus(enum.StrEnum):
    RUNNING = "running"  # or interrupted: a job whose process died stays "running" until resumed
    FINISHED = "finished"  # every task done, skipped or failed


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # deliberately not restored (already in colour)


class Job(Base):
    """One restore job: its frozen settings, where it writes, and its tasks."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    out_dir: Mapped[str] = mapped_column(PathText)
    settings: Mapped[str] = mapped_column(Text)  # JSON of the job's frozen settings
    # Who is running the job now (jobs/lease.py): JSON of host, pid and process start time,
    # and until when the lease holds without a heartbeat. NULL: nobody.
    lease_owner: Mapped[str | None] = mapped_column(Text)
    lease_expires: Mapped[datetime | None]

    tasks: Mapped[list[Task]] = relationship(back_populates="job", order_by="Task.id")
    events: Mapped[list[JobEvent]] = relationship(back_populates="job", order_by="JobEvent.id")


class Task(Base):
    """One scan in a job: its state, attempts, timings, and the result it wrote."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("job_id", "scan_id"),
        Index("ix_tasks_scan", "scan_id", "result_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"))
    source_path: Mapped[str] = mapped_column(PathText)
    output_path: Mapped[str] = mapped_column(PathText)
    # SHA-256 of everything that decides the result's pixels (settings, model, weights, hints).
    result_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(PathText)  # names files
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[str | None] = mapped_column(Text)  # JSON: seconds per pipeline stage
    hints_path: Mapped[str | None] = mapped_column(PathText)
    hints_sha256: Mapped[str | None] = mapped_column(String(64))
    # JSON, with instance-aware colorization: detector, its weights' SHA-256, detection size,
    # and each instance's label, score, box (scan px) and mask (COCO RLE): restore/detections.py.
    instances: Mapped[str | None] = mapped_column(Text)
    # JSON, with --repair: segmenter, its weights' SHA-256, the mask's file name beside the
    # result, its SHA-256 and the fraction of pixels repaired (restore/pipeline.py).
    repair: Mapped[str | None] = mapped_column(Text)
    # With a series reference (--reference, --series): the image whose colours were carried
    # to the scan, its SHA-256 (part of result_key), and (JSON) what matched: planes,
    # inliers, pairs, coverage (restore/reference.py).
    reference_path: Mapped[str | None] = mapped_column(PathText)
    reference_sha256: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(Text)

    job: Mapped[Job] = relationship(back_populates="tasks")
    scan: Mapped[Scan] = relationship()

    def reference_record(self) -> dict[str, object] | None:
        """The task's series reference as `jobs show` and the export give it: path, SHA-256
        and (once done) what matched; None without one."""
        if self.reference_sha256 is None:
            return None
        return {"path": self.reference_path, "sha256": self.reference_sha256} | (json.loads(self.reference) if self.reference else {})


class JobEvent(Base):
    """A job's history as rows: created, resumed, task attempts and outcomes, finished."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job", "job_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(PathText, default="")  # names files

    job: Mapped[Job] = relationship(back_populates="events")


class HintFileRecord(Base):
    """A curator hint file, as it was when used: its SHA-256, its scan, where and when."""

    __tablename__ = "hint_files"
    __table_args__ = (UniqueConstraint("sha256", "scan_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"))
    path: Mapped[str] = mapped_column(PathText)
    points: Mapped[int]
    first_used_at: Mapped[datetime]
    last_used_at: Mapped[datetime]


class OutputClaim(Base):
    """An output path and the one task allowed to publish it: claimed when the task is
    created, released if the task fails or is skipped, kept with its result when done."""

    __tablename__ = "output_claims"

    path: Mapped[str] = mapped_column(PathText, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    claimed_at: Mapped[datetime]

    task: Mapped[Task] = relationship()
