"""Ingest on real files: idempotence, new locations, changed files, every bad input with its
reason, symlink loops, originals untouched, and two ingests of one folder at once."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.db import open_catalog
from catalog.ingest import IngestSettings, ingest
from restore.scanio.files import SourceError
from catalog.models import Event, EventKind, Location, Scan, ScanStatus
from catalog.queries import count_rows, list_scans, show_scan
from tests.conftest import BAD_SCANS, GOOD_SCANS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def catalog(tmp_path: Path):
    with open_catalog(tmp_path / "archive.db") as cat:
        yield cat


def _snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every file under folder: (sha256, size, mtime_ns), to prove originals are untouched."""
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_ingest_records_every_scan_with_its_location(catalog, scan_folder: Path) -> None:
    before = _snapshot(scan_folder)
    summary = ingest(catalog, [scan_folder])
    assert summary.failed == []
    assert (summary.added, summary.known, summary.new_locations) == (len(GOOD_SCANS), 0, 0)
    rows = list_scans(catalog)
    assert len(rows) == len(GOOD_SCANS)
    paths = {row["path"] for row in rows}
    expected = {str(p.resolve()) for p in scan_folder.rglob("*") if p.is_file()}
    assert paths == expected
    assert all(row["status"] == ScanStatus.INGESTED for row in rows)
    assert _snapshot(scan_folder) == before  # originals never modified
    with catalog.read() as session:
        rotated = session.scalars(select(Scan).where(Scan.exif_orientation == 6)).one()
        assert (rotated.width, rotated.height) == (48, 64)
        box = session.scalars(select(Location).where(Location.relpath.startswith("box2/"))).all()
        assert box and all(loc.root == str(scan_folder.resolve()) for loc in box)


def test_ingest_records_the_files_metadata(catalog, make_scan, tmp_path: Path) -> None:
    path = make_scan("jpeg_colour")
    ingest(catalog, [path])
    detail = show_scan(catalog, "1")
    assert detail["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert detail["size_bytes"] == path.stat().st_size
    assert (detail["format"], detail["width"], detail["height"], detail["bit_depth"]) == ("JPEG", 64, 48, 8)
    assert (detail["colour_mode"], detail["tone"], detail["dpi"]) == ("rgb", "colour", [600.0, 600.0])
    assert detail["events"][0]["kind"] == EventKind.INGESTED
    assert detail["locations"][0]["relpath"] == "jpeg_colour.jpg"


def test_reingest_adds_nothing(catalog, scan_folder: Path) -> None:
    ingest(catalog, [scan_folder])
    counts = count_rows(catalog)
    summary = ingest(catalog, [scan_folder])
    assert (summary.added, summary.known, summary.new_locations) == (0, len(GOOD_SCANS), 0)
    assert count_rows(catalog) == counts


def test_same_bytes_at_new_path_add_a_location_not_a_scan(catalog, make_scan, tmp_path: Path) -> None:
    original = make_scan("tiff_gray16")
    ingest(catalog, [original.parent])
    copy_dir = tmp_path / "second_copy"
    copy_dir.mkdir()
    shutil.copy2(original, copy_dir / "same.tif")
    summary = ingest(catalog, [copy_dir])
    assert (summary.added, summary.known, summary.new_locations) == (0, 0, 1)
    detail = show_scan(catalog, "1")
    assert detail["locations"] and len(detail["locations"]) == 2  # type: ignore[arg-type]
    assert [e["kind"] for e in detail["events"]] == [EventKind.INGESTED, EventKind.LOCATION_ADDED]  # type: ignore[index]
    assert count_rows(catalog)["scans"] == 1


def test_changed_bytes_at_known_path_make_a_new_scan_and_keep_the_old(catalog, make_scan) -> None:
    path = make_scan("png_gray8")
    ingest(catalog, [path.parent])
    old_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    make_scan("png_gray16").replace(path)  # a rescan replaced the file
    summary = ingest(catalog, [path.parent])
    assert (summary.added, summary.known) == (1, 0)
    with catalog.read() as session:
        old = session.scalars(select(Scan).where(Scan.sha256 == old_sha)).one()
        new = session.scalars(select(Scan).where(Scan.sha256 != old_sha)).one()
        assert old.locations[0].superseded_at is not None
        assert new.locations[0].superseded_at is None
        assert old.locations[0].relpath == new.locations[0].relpath == path.name
        assert old.events[-1].kind == EventKind.SUPERSEDED
        assert new.sha256[:12] in old.events[-1].detail
        assert (old.bit_depth, new.bit_depth) == (8, 16)
    # Listing shows the old scan at its last path, marked by its superseded location.
    assert len(list_scans(catalog)) == 2


def test_bad_files_fail_alone_with_their_reasons(catalog, make_scan, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    for name in BAD_SCANS:
        make_scan(name, folder)
    good = make_scan("tiff_gray8", folder)
    summary = ingest(catalog, [folder])
    assert summary.added == 1
    assert summary.exit_code == 1
    reasons = {Path(f.path).name: f.reason for f in summary.failed}
    assert set(reasons) == {filename for filename, _w, _r in BAD_SCANS.values()}
    for filename, _writer, words in BAD_SCANS.values():
        assert words in reasons[filename], (filename, reasons[filename])
    with catalog.read() as session:
        failed = session.scalars(select(Event).where(Event.kind == EventKind.FAILED_VALIDATION)).all()
        assert {Path(e.path).name for e in failed} == set(reasons)
        invalid = session.scalars(select(Scan).where(Scan.status == ScanStatus.INVALID)).all()
        # Every failure that could be read has a scan row (the dangling link could not).
        assert len(invalid) == len(BAD_SCANS) - 1
        valid = session.scalars(select(Scan).where(Scan.status == ScanStatus.INGESTED)).one()
        assert valid.locations[0].relpath == good.name


def test_bad_files_are_reported_again_on_reingest(catalog, make_scan) -> None:
    path = make_scan("truncated_jpeg")
    assert len(ingest(catalog, [path]).failed) == 1
    again = ingest(catalog, [path])
    assert [f.reason for f in again.failed] == ["truncated JPEG: no end-of-image marker"]


def test_pixel_limit_is_a_setting(catalog, make_scan) -> None:
    path = make_scan("tiff_gray8")  # 64 x 48 = 3072 pixels
    refused = ingest(catalog, [path], IngestSettings(max_pixels=3000))
    assert "exceeds the limit of 3,000" in refused.failed[0].reason
    accepted = ingest(catalog, [path], IngestSettings(max_pixels=5000))
    assert (accepted.added, accepted.failed) == (1, [])  # same bytes, now valid
    assert list_scans(catalog)[0]["status"] == ScanStatus.INGESTED


def test_verify_decodes_every_image(catalog, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "scans"
    folder.mkdir()
    path = folder / "damaged.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (128, 128), dtype=np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    assert ingest(catalog, [folder]).failed == []
    verified = ingest(catalog, [folder], IngestSettings(verify=True))
    assert "corrupt or unreadable PNG" in verified.failed[0].reason
    assert list_scans(catalog)[0]["status"] == ScanStatus.INVALID


def test_multipage_tiff_note_is_kept(catalog, make_scan) -> None:
    path = make_scan("tiff_multipage")
    summary = ingest(catalog, [path])
    assert summary.notes[0].reason == "multi-page TIFF with 3 pages: the first page is the scan"
    kinds = [e["kind"] for e in show_scan(catalog, "1")["events"]]  # type: ignore[index]
    assert kinds == [EventKind.INGESTED, EventKind.NOTE]


def test_symlink_loops_end(catalog, make_scan, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    make_scan("png_gray8", folder / "a")
    (folder / "a" / "loop").symlink_to(folder)  # a/loop -> scans: a cycle
    (folder / "self").symlink_to(".", target_is_directory=True)
    summary = ingest(catalog, [folder])
    assert (summary.added, summary.failed) == (1, [])
    assert count_rows(catalog)["locations"] == 1


def test_non_image_and_hidden_files_in_folders_are_skipped(catalog, make_scan, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    make_scan("png_gray8", folder)
    (folder / "README.txt").write_text("box list")
    (folder / "._png_gray8.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / ".thumbs").mkdir()
    make_scan("jpeg_gray", folder / ".thumbs")
    summary = ingest(catalog, [folder])
    assert (summary.added, summary.skipped, summary.failed) == (1, 1, [])


def test_missing_source_stops_before_anything_is_done(catalog, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="nope: no such file or folder"):
        ingest(catalog, [tmp_path / "nope"])
    assert count_rows(catalog)["events"] == 0


def test_progress_reports_every_file(catalog, scan_folder: Path) -> None:
    seen: list[tuple[int, int]] = []
    ingest(catalog, [scan_folder], progress=lambda done, total, _path: seen.append((done, total)))
    assert seen == [(i, len(GOOD_SCANS)) for i in range(1, len(GOOD_SCANS) + 1)]


def test_two_ingests_of_one_folder_at_once(tmp_path: Path, scan_folder: Path) -> None:
    db = tmp_path / "archive.db"
    command = [sys.executable, "-m", "cli", "ingest", str(scan_folder), "--db", str(db), "--json"]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    runs = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (_out, err) in zip(runs, outputs):
        assert run.returncode == 0, err.decode()
    with open_catalog(db) as catalog:
        counts = count_rows(catalog)
        assert counts["scans"] == len(GOOD_SCANS)
        assert counts["locations"] == len(GOOD_SCANS)
        with catalog.read() as session:
            added = session.scalars(select(Event).where(Event.kind == EventKind.INGESTED)).all()
            assert len(added) == len(GOOD_SCANS)  # each scan added by exactly one of the two
