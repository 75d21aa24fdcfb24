"""Checking a hint file against its scan: the one check `hints validate`, the editor and jobs make.

A hint file is valid for a scan when it passes the schema (hints/schema.py: keys, types,
ranges, within the limits of hints/untrusted.py), names that scan or none (`image.sha256`),
and has every point inside the scan and no radius larger than it. Without a scan, only the
schema is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from hints.schema import Hint, HintFile, load_hint_file, parse_hint_document, resolve


class ScanIdentity(NamedTuple):
    """What a hint file is checked against: the scan file's SHA-256 and its upright size."""

    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class CheckedHintFile:
    file: HintFile
    scan: ScanIdentity | None  # what it was checked against; None: the schema only
    hints: list[Hint]  # its points on that scan (empty when there was no scan)


def validate_hint_file(
    path: Path,
    scan: ScanIdentity | Mapping[str, tuple[str, int, int]] | None = None,
    *,
    data: bytes | None = None,
) -> CheckedHintFile:
    """Check the hint file at `path` against a scan. Raises HintError, naming `path`.

    `scan` is the scan the file is for; or known scans by SHA-256 and by file stem (a
    catalog's), of which the file's own `image.sha256`, else the stem of its name, picks one,
    as hint folders name their files; None, or no scan picked: the schema only. `data`: the
    document's bytes when they are not on disk yet (the editor checks a save before writing
    it), else the file is read (a regular file only, within the size limit)."""
    path = Path(path)
    hint_file = load_hint_file(path) if data is None else parse_hint_document(data, path)
    if isinstance(scan, Mapping):
        found = scan.get(hint_file.image_sha256 or "") or scan.get(path.stem)
        scan = ScanIdentity(*found) if found is not None else None
    if scan is None:
        return CheckedHintFile(hint_file, None, [])
    return CheckedHintFile(hint_file, scan, resolve(hint_file, scan.width, scan.height, scan.sha256))
