"""Ingest: find scans under the given paths, hash and probe them, record them in the catalog.

Files are hashed and probed on a thread pool (hashing and decoding release the GIL);
all catalog writes happen on the calling thread, a batch of files per transaction,
so an interrupted ingest keeps everything committed before it and two ingests of
the same folder at once serialise on SQLite's write lock without duplicates.
Originals are only ever opened for reading.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db import Catalog
from catalog.models import Event, EventKind, IngestRun, Location, Outcome, Scan, ScanStatus, utcnow
from restore.scanio.files import Candidate, Failure, find_scan_files
from restore.settings import DEFAULT_INGEST_WORKERS
from restore.scanio.probe import DEFAULT_MAX_PIXELS, NotRegularFile, ScanError, ScanInfo, open_regular, probe

# Commit at least this often, so a crash loses little and other writers get a turn.
_BATCH_FILES = 64
_BATCH_SECONDS = 1.0


@dataclass(frozen=True)
class IngestSettings:
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images are refused (decompression bombs)
    verify: bool = False  # decode every image whole, not only its header
    workers: int = DEFAULT_INGEST_WORKERS  # threads hashing and probing; 0 = one per CPU core

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 (automatic) or more, got {self.workers}")


@dataclass(frozen=True)
class Examined:
    candidate: Candidate
    sha256: str | None = None  # None when the file could not be read at all
    size_bytes: int | None = None
    info: ScanInfo | None = None
    error: str | None = None  # one-line reason it cannot be used


@dataclass
class IngestSummary:
    run_id: int
    added: int = 0
    known: int = 0
    new_locations: int = 0
    skipped: int = 0  # files in walked folders without an image extension
    failed: list[Failure] = field(default_factory=list)
    notes: list[Failure] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "added": self.added,
            "known": self.known,
            "new_locations": self.new_locations,
            "skipped": self.skipped,
            "failed": [asdict(f) for f in self.failed],
            "notes": [{"path": n.path, "note": n.reason} for n in self.notes],
        }


def examine(candidate: Candidate, settings: IngestSettings) -> Examined:
    """Hash and probe one file. Never raises for a bad file: the reason is in `error`.

    Any name is fine (the catalog stores names that are not UTF-8 as their bytes); a FIFO,
    socket or device is refused without being read.
    """
    path = candidate.path
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except NotRegularFile as exc:
        return Examined(candidate, error=exc.strerror)
    except OSError as exc:
        return Examined(candidate, error=f"unreadable: {exc.strerror or exc}")
    try:
        info = probe(path, max_pixels=settings.max_pixels, verify=settings.verify)
    except ScanError as exc:
        return Examined(candidate, digest, size, error=exc.reason)
    except NotRegularFile as exc:  # replaced since it was hashed
        return Examined(candidate, digest, size, error=exc.strerror)
    except OSError as exc:
        return Examined(candidate, digest, size, error=f"unreadable: {exc.strerror or exc}")
    return Examined(candidate, digest, size, info)


def ingest(
    catalog: Catalog,
    sources: Sequence[Path],
    settings: IngestSettings = IngestSettings(),
    progress: Callable[[int, int, Path], None] | None = None,
) -> IngestSummary:
    """Add the scans under `sources` to `catalog`; see the module docstring.

    `progress(done, total, path)` is called after each file. Raises SourceError (before
    doing anything) if a source does not exist.
    """
    candidates, skipped, walk_failures = find_scan_files(sources)
    with catalog.write() as session:
        run = IngestRun(
            started_at=utcnow(),
            sources=json.dumps([str(s) for s in sources]),
            settings=json.dumps(asdict(settings)),
            added=0, known=0, new_locations=0, failed=0,
        )
        session.add(run)
        session.flush()
        summary = IngestSummary(run_id=run.id, skipped=skipped)
        for failure in walk_failures:
            _record_failure_without_scan(session, summary, failure.path, failure.reason)

    workers = settings.workers or os.cpu_count() or 1
    total = len(candidates)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        batch: list[Examined] = []
        last_commit = time.monotonic()
        for done, examined in enumerate(pool.map(partial(examine, settings=settings), candidates), 1):
            batch.append(examined)
            if progress is not None:
                progress(done, total, examined.candidate.path)
            if len(batch) >= _BATCH_FILES or time.monotonic() - last_commit > _BATCH_SECONDS:
                _record_batch(catalog, summary, batch)
                batch, last_commit = [], time.monotonic()
        _record_batch(catalog, summary, batch)

    with catalog.write() as session:
        run = session.get_one(IngestRun, summary.run_id)
        run.finished_at = utcnow()
        run.added, run.known = summary.added, summary.known
        run.new_locations, run.failed = summary.new_locations, len(summary.failed)
    return summary


def _record_batch(catalog: Catalog, summary: IngestSummary, batch: Iterable[Examined]) -> None:
    batch = list(batch)
    if not batch:
        return
    with catalog.write() as session:
        # Two queries per batch, not several per file: the main thread is the one writer.
        shas = {e.sha256 for e in batch if e.sha256}
        scans = {s.sha256: s for s in session.scalars(select(Scan).where(Scan.sha256.in_(shas)))}
        roots = {str(e.candidate.root) for e in batch}
        relpaths = {e.candidate.relpath for e in batch}
        at_path: dict[tuple[str, str], list[Location]] = defaultdict(list)
        for location in session.scalars(
            select(Location).where(Location.root.in_(roots), Location.relpath.in_(relpaths))
        ):
            at_path[(location.root, location.relpath)].append(location)
        for examined in batch:
            _record(session, summary, examined, scans, at_path)


def _record_failure_without_scan(session: Session, summary: IngestSummary, path: str, reason: str) -> None:
    session.add(
        Event(
            scan_id=None, run_id=summary.run_id, at=utcnow(), kind=EventKind.FAILED_VALIDATION,
            outcome=Outcome.FAILED, path=path, detail=reason,
        )
    )
    summary.failed.append(Failure(path, reason))


def _record(
    session: Session,
    summary: IngestSummary,
    examined: Examined,
    scans: dict[str, Scan],
    at_path: dict[tuple[str, str], list[Location]],
) -> None:
    """Record one examined file; `scans` and `at_path` are the batch's preloaded rows, kept current."""
    path = str(examined.candidate.path)
    if examined.sha256 is None:
        _record_failure_without_scan(session, summary, path, examined.error or "unreadable")
        return
    now = utcnow()

    def log(scan: Scan, kind: EventKind, outcome: Outcome, detail: str) -> None:
        session.add(Event(scan=scan, run_id=summary.run_id, at=now, kind=kind, outcome=outcome, path=path, detail=detail))

    scan = scans.get(examined.sha256)
    is_new = scan is None
    if scan is None:
        scan = Scan(sha256=examined.sha256, size_bytes=examined.size_bytes or 0, ingested_at=now, status="")
        session.add(scan)
        scans[examined.sha256] = scan
    # Same bytes, new verdict (first sight, or settings such as --max-pixels changed).
    became_valid = False
    if examined.error is not None:
        scan.status = ScanStatus.INVALID  # the latest validation decides
        log(scan, EventKind.FAILED_VALIDATION, Outcome.FAILED, examined.error)
        summary.failed.append(Failure(path, examined.error))
    elif scan.status != ScanStatus.INGESTED:
        assert examined.info is not None
        _describe(scan, examined.info)
        scan.status = ScanStatus.INGESTED
        became_valid = True
        log(scan, EventKind.INGESTED, Outcome.OK, _summary_line(examined.info))
        for note in examined.info.notes:
            log(scan, EventKind.NOTE, Outcome.INFO, note)
            summary.notes.append(Failure(path, note))

    key = (str(examined.candidate.root), examined.candidate.relpath)
    here = at_path[key]
    location = next((loc for loc in here if loc.scan is scan), None)
    new_location = location is None
    if location is None:
        location = Location(scan=scan, root=key[0], relpath=key[1], first_seen=now, last_seen=now)
        session.add(location)
        here.append(location)
        if not is_new:
            log(scan, EventKind.LOCATION_ADDED, Outcome.OK, "same bytes found at a new path")
    location.last_seen, location.superseded_at = now, None
    for older in here:  # different bytes now live at this path: older scans' records stay
        if older.scan is not scan and older.superseded_at is None:
            older.superseded_at = now
            log(older.scan, EventKind.SUPERSEDED, Outcome.INFO, f"the file at this path changed; it is now scan {scan.sha256[:12]}")

    if examined.error is not None:
        return
    if became_valid:
        summary.added += 1
    elif new_location:
        summary.new_locations += 1
    else:
        summary.known += 1


def _describe(scan: Scan, info: ScanInfo) -> None:
    scan.format, scan.width, scan.height = info.format, info.width, info.height
    scan.bit_depth, scan.colour_mode, scan.has_alpha = info.bit_depth, info.colour_mode, info.has_alpha
    scan.tone, scan.tone_hue_deg, scan.has_icc = info.tone, info.tone_hue_deg, info.has_icc
    scan.exif_orientation, scan.pages = info.exif_orientation, info.pages
    scan.dpi_x, scan.dpi_y = info.dpi if info.dpi else (None, None)


def _summary_line(info: ScanInfo) -> str:
    alpha = "+alpha" if info.has_alpha else ""
    return f"{info.format} {info.width}x{info.height} {info.bit_depth}-bit {info.colour_mode}{alpha}, {info.tone}"
