"""Which scans a series reference covers (restore --reference, --series).

`--reference REF` gives every selected scan one reference. `--series FILE` names several
series, each with its own reference, so one job colours many series:

    {
      "schema": "photochrom.series/1",
      "series": [
        {"name": "Hansen family", "reference": "refs/hansen-1952-colour.jpg",
         "folders": ["scans/hansen"]},
        {"name": "Main Street", "reference": "scan:42", "scans": ["17", "18", "9f3ab2c1"]}
      ]
    }

A reference is an image file (a path relative to the series file, or absolute) or
`scan:<id or SHA-256 prefix>`: that scan's current result, the last one restored (a curator
colours one photo carefully, with hints, then carries it to the rest). A series covers the
scans it lists (ids or SHA-256 prefixes) and the scans with a location in its folders
(paths relative to the series file, searched below); the reference's own scan is never
coloured from itself. A scan in two series is an error, as is anything that does not
resolve: nothing is recorded until every reference is readable. References are resolved
when the job is created, and each task records its reference's path and SHA-256; a
resumed job uses exactly those files (a changed one fails its tasks).

The file is untrusted input: read as hint files are (hints/untrusted.py: size, depth,
NaN and huge numbers refused) and checked against a JSON schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db import CatalogError
from catalog.models import Scan, Task, TaskStatus
from catalog.queries import find_scan
from hints.untrusted import HintError, decode_json, read_regular_file
from restore.reference import ReferenceError, reference_from_file

SCHEMA = "photochrom.series/1"
SCAN_PREFIX = "scan:"
MAX_SERIES = 10_000

JSON_SCHEMA = {
    "type": "object",
    "required": ["schema", "series"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA},
        "series": {
            "type": "array",
            "maxItems": MAX_SERIES,
            "items": {
                "type": "object",
                "required": ["reference"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "maxLength": 500},
                    "reference": {"type": "string", "minLength": 1, "maxLength": 4096},
                    "scans": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 1_000_000},
                    "folders": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 4096}, "maxItems": 10_000},
                },
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(JSON_SCHEMA)


@dataclass(frozen=True)
class ResolvedReference:
    """A reference image as a job records it: its path and the SHA-256 of its bytes; for
    `scan:<id>`, the scan whose result it is (never coloured from itself)."""

    path: Path
    sha256: str
    scan_id: int | None = None


@dataclass(frozen=True)
class Series:
    name: str
    reference: str
    scans: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()


def read_series_file(path: Path) -> list[Series]:
    """The series of a series file. Raises ReferenceError (one line, naming the file)."""
    try:
        document = decode_json(read_regular_file(path), path)
    except (HintError, OSError) as exc:
        raise ReferenceError(f"series file {exc}" if isinstance(exc, HintError) else f"series file {path}: {exc.strerror or exc}") from None
    errors = sorted(_VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "top level"
        raise ReferenceError(f"series file {path}: at {where}: {errors[0].message[:200]}")
    assert isinstance(document, dict)
    return [
        Series(str(s.get("name", f"series {i + 1}")), s["reference"], tuple(s.get("scans", ())), tuple(s.get("folders", ())))
        for i, s in enumerate(document["series"])
    ]


def scan_references(session: Session, scans: Sequence[Scan], reference: str | None, series_file: str | None) -> dict[int, ResolvedReference]:
    """scan id -> its reference, for the `scans` a job restores, as `--reference` or
    `--series` say (neither: none). Raises ReferenceError for anything unusable."""
    if reference is not None and series_file is not None:
        raise ReferenceError("--reference and --series: give one or the other")
    if reference is not None:
        resolved = resolve_reference(session, reference, Path.cwd())
        return {scan.id: resolved for scan in scans if scan.id != resolved.scan_id}
    if series_file is None:
        return {}
    path = Path(series_file)
    base = path.resolve().parent
    wanted = {scan.id for scan in scans}
    located = _locations(scans)
    covered: dict[int, tuple[str, ResolvedReference]] = {}
    for series in read_series_file(path):
        resolved = resolve_reference(session, series.reference, base)
        for scan in _members(session, series, base, located):
            if scan.id not in wanted or scan.id == resolved.scan_id:
                continue
            if scan.id in covered and covered[scan.id][0] != series.name:
                raise ReferenceError(f"series file {path}: scan {scan.id} is in two series, {covered[scan.id][0]!r} and {series.name!r}")
            covered[scan.id] = (series.name, resolved)
    return {scan_id: resolved for scan_id, (_, resolved) in covered.items()}


def resolve_reference(session: Session, reference: str, base: Path) -> ResolvedReference:
    """An image file (relative to `base`) or `scan:<id>` (that scan's current result), read
    once to check it is a usable colour image. Raises ReferenceError."""
    scan_id = None
    if reference.startswith(SCAN_PREFIX):
        scan_id, path = current_result(session, reference[len(SCAN_PREFIX) :])
    else:
        path = Path(reference) if Path(reference).is_absolute() else base / reference
    image = reference_from_file(path)  # raises ReferenceError, naming the file
    return ResolvedReference(path.resolve(), image.sha256, scan_id)


def current_result(session: Session, ident: str) -> tuple[int, Path]:
    """(the scan's id, the file of its current result: its most recent finished restoration
    still on disk)."""
    try:
        scan = find_scan(session, ident)
    except CatalogError as exc:
        raise ReferenceError(f"reference {SCAN_PREFIX}{ident}: {exc}") from None
    done = session.scalars(
        select(Task).where(Task.scan_id == scan.id, Task.status == TaskStatus.DONE).order_by(Task.finished_at.desc(), Task.id.desc())
    )
    for task in done:
        if task.output_path and Path(task.output_path).is_file():
            return scan.id, Path(task.output_path)
    raise ReferenceError(f"reference {SCAN_PREFIX}{ident}: scan {scan.id} has no restored result yet; restore it first")


def _locations(scans: Sequence[Scan]) -> list[tuple[Scan, list[Path]]]:
    """Each scan with the resolved paths of its current locations (resolved once per job)."""
    return [(scan, [Path(loc.path).resolve() for loc in scan.locations if loc.superseded_at is None]) for scan in scans]


def _members(session: Session, series: Series, base: Path, located: list[tuple[Scan, list[Path]]]) -> list[Scan]:
    members: dict[int, Scan] = {}
    for ident in series.scans:
        try:
            scan = find_scan(session, ident)
        except CatalogError as exc:
            raise ReferenceError(f"series {series.name!r}: {exc}") from None
        members[scan.id] = scan
    for folder in series.folders:
        root = (Path(folder) if Path(folder).is_absolute() else base / folder).resolve()
        for scan, paths in located:
            if any(path.is_relative_to(root) for path in paths):
                members[scan.id] = scan
    return list(members.values())
