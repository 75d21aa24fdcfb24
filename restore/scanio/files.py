"""Finding files under the paths a user gives (scans: folders recursively, loops avoided;
colour photos for training and evaluation), and hashing them. Names are whatever bytes the
filesystem holds; only regular files are opened (see restore.scanio.probe.open_regular)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from restore.scanio.probe import SCAN_EXTENSIONS, open_regular


#: Colour photos `train` and `evaluate` read (scans have their own list, SCAN_EXTENSIONS).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (scans can be gigabytes). NotRegularFile
    (an OSError) for a FIFO, socket or device."""
    with open_regular(path) as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def photo_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The photos in `folder` (and below it when `recursive`), in name order."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())


class SourceError(Exception):
    """A source path given does not exist; nothing was done."""


@dataclass(frozen=True)
class Candidate:
    """A scan file: the folder it was found from, and its POSIX path under that folder."""

    root: Path
    relpath: str

    @property
    def path(self) -> Path:
        return self.root / self.relpath


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


def check_sources(sources: Sequence[Path]) -> None:
    """SourceError naming the first source that does not exist (a dangling link does)."""
    missing = [s for s in sources if not (s.exists() or s.is_symlink())]
    if missing:
        raise SourceError(f"{missing[0]}: no such file or folder")


def find_scan_files(sources: Sequence[Path]) -> tuple[list[Candidate], int, list[Failure]]:
    """Scan files under `sources`, the number of non-image files skipped, and folders
    that could not be read. Folders are walked recursively, following symbolic links but
    never into a folder already visited (so link loops end); hidden files are left out.
    Nothing is opened here: a FIFO or device named like a scan is a candidate, refused
    with its reason when it is examined.
    """
    check_sources(sources)
    candidates: dict[tuple[Path, str], Candidate] = {}
    skipped = 0
    failures: list[Failure] = []
    for source in sources:
        if not source.is_dir():
            root = source.parent.resolve()
            candidates.setdefault((root, source.name), Candidate(root, source.name))
            continue
        root = source.resolve()
        found, skipped_here = _walk(root, failures)
        skipped += skipped_here
        for relpath in found:
            candidates.setdefault((root, relpath), Candidate(root, relpath))
    return list(candidates.values()), skipped, failures


def _walk(root: Path, failures: list[Failure]) -> tuple[list[str], int]:
    visited = {_dir_key(root)}
    found: list[str] = []
    skipped = 0

    def on_error(exc: OSError) -> None:
        failures.append(Failure(str(exc.filename), f"unreadable folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        kept = []
        for name in sorted(dirnames):
            key = _dir_key(Path(dirpath, name))
            if name.startswith(".") or key is None or key in visited:
                continue
            visited.add(key)
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in SCAN_EXTENSIONS:
                found.append(Path(dirpath, name).relative_to(root).as_posix())
            else:
                skipped += 1
    return found, skipped


def _dir_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


