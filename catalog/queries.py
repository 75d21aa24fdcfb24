"""Reading the catalog for people and scripts: scans, their locations and their history.

Results are plain JSON-ready dicts: `photochrom scans --json` prints them as they are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from catalog.db import Catalog, CatalogError
from catalog.models import Event, Location, Scan, Task, TaskStatus

_SHA_PREFIX = re.compile(r"^[0-9a-f]{6,64}$")


def list_scans(catalog: Catalog) -> list[dict[str, object]]:
    """Every scan, oldest first, with its current path and number of locations."""
    with catalog.read() as session:
        scans = session.scalars(select(Scan).options(selectinload(Scan.locations)).order_by(Scan.id))
        return [_scan_row(scan) for scan in scans]


def scan_sizes(catalog: Catalog) -> dict[str, tuple[str, int, int]]:
    """SHA-256 and file stem -> (sha256, width, height) of every catalogued scan with a size:
    what `hints validate` checks hint files against (by `image.sha256`, else by file stem).
    A stem shared by several scans names the oldest."""
    sizes: dict[str, tuple[str, int, int]] = {}
    for row in list_scans(catalog):
        if row["width"]:
            entry = (str(row["sha256"]), int(row["width"]), int(row["height"]))  # type: ignore[arg-type]
            sizes[str(row["sha256"])] = entry
            if row["path"]:
                sizes.setdefault(Path(str(row["path"])).stem, entry)
    return sizes


def show_scan(catalog: Catalog, ident: str) -> dict[str, object]:
    """One scan by id or SHA-256 prefix (at least 6 hex digits): all it records, with history."""
    with catalog.read() as session:
        scan = find_scan(session, ident)
        row = _scan_row(scan)
        row.update(
            size_bytes=scan.size_bytes,
            has_alpha=scan.has_alpha,
            tone_hue_deg=scan.tone_hue_deg,
            has_icc=scan.has_icc,
            exif_orientation=scan.exif_orientation,
            dpi=[scan.dpi_x, scan.dpi_y] if scan.dpi_x is not None else None,
            pages=scan.pages,
            ingested_at=_iso(scan.ingested_at),
            locations=[
                {
                    "path": loc.path,
                    "root": loc.root,
                    "relpath": loc.relpath,
                    "first_seen": _iso(loc.first_seen),
                    "last_seen": _iso(loc.last_seen),
                    "superseded_at": _iso(loc.superseded_at),
                }
                for loc in scan.locations
            ],
            events=[_event_row(e) for e in scan.events],
            results=_results(session, scan),
        )
        return row


def _results(session: Session, scan: Scan) -> list[dict[str, object]]:
    """Every result restored from this scan, oldest first: the history curators re-run into.
    The newest is `current` (the one an export shows)."""
    tasks = session.scalars(
        select(Task).where(Task.scan_id == scan.id, Task.status == TaskStatus.DONE).order_by(Task.id)
    ).all()
    return [
        {
            "job_id": task.job_id,
            "task_id": task.id,
            "model": json.loads(task.job.settings)["restore"]["model"],
            "path": task.output_path,
            "sha256": task.output_sha256,
            "finished_at": _iso(task.finished_at),
            "current": task is tasks[-1],
            "settings": json.loads(task.job.settings)["restore"],
            "instances": len(json.loads(task.instances)["instances"]) if task.instances else None,
        }
        for task in tasks
    ]


def find_scan(session: Session, ident: str) -> Scan:
    ident = ident.strip().lower()
    if ident.isdigit():
        scan = session.get(Scan, int(ident))
        if scan is None:
            raise CatalogError(f"no scan with id {ident}")
        return scan
    if not _SHA_PREFIX.match(ident):
        raise CatalogError(f"{ident!r} is neither a scan id nor a SHA-256 prefix of 6 or more hex digits")
    matches = session.scalars(select(Scan).where(Scan.sha256.startswith(ident)).limit(2)).all()
    if not matches:
        raise CatalogError(f"no scan whose SHA-256 starts with {ident}")
    if len(matches) > 1:
        raise CatalogError(f"SHA-256 prefix {ident} matches several scans; give more digits")
    return matches[0]


def count_rows(catalog: Catalog) -> dict[str, int]:
    """Row counts of the main tables (for summaries and tests)."""
    with catalog.read() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Scan, Location, Event)
        }


def _scan_row(scan: Scan) -> dict[str, object]:
    shown = scan.shown_location
    return {
        "id": scan.id,
        "sha256": scan.sha256,
        "status": scan.status,
        "format": scan.format,
        "width": scan.width,
        "height": scan.height,
        "bit_depth": scan.bit_depth,
        "colour_mode": scan.colour_mode,
        "tone": scan.tone,
        "path": shown.path if shown else None,
        "locations": len(scan.locations),
    }


def _event_row(event: Event) -> dict[str, object]:
    return {
        "at": _iso(event.at),
        "kind": event.kind,
        "outcome": event.outcome,
        "path": event.path,
        "detail": event.detail,
        "ingest_run": event.run_id,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")



def record_hint_file(catalog: Catalog, scan_sha256: str, file_sha256: str, path: Path | str, points: int) -> bool:
    """Record a hint file against its scan (as a restore job does); False if the scan is not catalogued."""
    from catalog.models import HintFileRecord, utcnow

    with catalog.write() as session:
        scan = session.scalar(select(Scan).where(Scan.sha256 == scan_sha256.lower()))
        if scan is None:
            return False
        now, resolved = utcnow(), str(Path(path).resolve())
        record = session.scalar(
            select(HintFileRecord).where(HintFileRecord.sha256 == file_sha256, HintFileRecord.scan_id == scan.id)
        )
        if record is None:
            session.add(HintFileRecord(
                sha256=file_sha256, scan_id=scan.id, path=resolved, points=points, first_used_at=now, last_used_at=now
            ))
        else:
            record.last_used_at, record.path = now, resolved
    return True
