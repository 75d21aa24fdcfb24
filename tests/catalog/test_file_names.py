"""File names as POSIX allows them: any bytes but NUL and "/". The catalog stores them
losslessly (a name that is not UTF-8 as its bytes), ingest and restore handle them like any
other scan, and every command prints them escaped (text and --json alike)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import select

from catalog.db import open_catalog
from catalog.export import ExportSettings, export
from catalog.ingest import ingest
from catalog.models import Location, Scan, utcnow
from catalog.queries import list_scans, show_scan
from jobs.run import JobSettings, create_restore_job, run_job, show_job
from restore.settings import RestoreSettings
from restore.scanio.read import read_scan
from tests.conftest import gray_u8

REPO = Path(__file__).resolve().parents[2]

LATIN1_NAME = b"caf\xe9 \xab\xe0 la plage\xbb.png"  # Latin-1 bytes from an old NAS share
LATIN1_FOLDER = b"Fr\xe9d\xe9ric"


def _name(raw: bytes) -> str:
    """The str Python gives a file name's bytes (undecodable bytes as lone surrogates)."""
    return os.fsdecode(raw)


def _latin1_archive(folder: Path) -> Path:
    """A gray scan at FOLDER/Frédéric/café «à la plage».png, both names in Latin-1 bytes."""
    path = folder / _name(LATIN1_FOLDER) / _name(LATIN1_NAME)
    path.parent.mkdir(parents=True)
    Image.fromarray(gray_u8(60, 80)).save(path, format="PNG")
    return path


def _photochrom(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """The real command, with a real (strict UTF-8) stdout: CliRunner's would hide encoding errors."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", "from cli import app; app()", *args], cwd=cwd, capture_output=True, env=env, timeout=300,
        check=False,
    )


def test_a_latin1_name_is_ingested_and_stored_as_its_bytes(tmp_path: Path) -> None:
    path = _latin1_archive(tmp_path / "archive")
    with open_catalog(tmp_path / "archive.db") as catalog:
        summary = ingest(catalog, [tmp_path / "archive"])
        assert (summary.added, summary.failed) == (1, [])
        again = ingest(catalog, [tmp_path / "archive"])
        assert (again.added, again.known, again.new_locations, again.failed) == (0, 1, 0, [])  # found again by its bytes
        [row] = list_scans(catalog)
        assert os.fsencode(row["path"]) == os.fsencode(path.resolve())
        with catalog.read() as session:
            location = session.scalars(select(Location)).one()
            assert os.fsencode(location.relpath) == LATIN1_FOLDER + b"/" + LATIN1_NAME
            assert session.scalars(select(Location).where(Location.relpath == location.relpath)).one() is location
    con = sqlite3.connect(tmp_path / "archive.db")
    try:  # in the file: the name's own bytes, not a lossy decoding of them
        [(kind, stored)] = con.execute("SELECT typeof(relpath), relpath FROM locations").fetchall()
        assert (kind, stored) == ("blob", LATIN1_FOLDER + b"/" + LATIN1_NAME)
        [(kind,)] = con.execute("SELECT typeof(root) FROM locations").fetchall()
        assert kind == "text"  # a UTF-8 name stays text, as in older catalogs
    finally:
        con.close()


def test_a_latin1_scan_restores_end_to_end(tmp_path: Path) -> None:
    source = _latin1_archive(tmp_path / "archive")
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        job_id, _ = create_restore_job(catalog, JobSettings(restore=RestoreSettings(model="ramp"), out_dir=str(tmp_path / "out")))
        summary = run_job(catalog, job_id, scheduler="synchronous")
        assert (summary.done, summary.failed) == (1, [])
        [task] = show_job(catalog, job_id)["tasks"]  # type: ignore[misc]
        [result] = show_scan(catalog, "1")["results"]  # type: ignore[misc]
    output = tmp_path / "out" / _name(LATIN1_FOLDER) / _name(LATIN1_NAME)
    assert os.fsencode(task["output"]) == os.fsencode(output)  # the same bytes under the job's folder
    assert result["path"] == task["output"]
    assert np.abs(read_scan(output).l_hw - read_scan(source).l_hw).max() < 0.5
    with open_catalog(tmp_path / "archive.db") as catalog:  # and the export names it, escaped, in valid UTF-8
        exported = export(catalog, tmp_path / "site", ExportSettings())
    assert (exported.results, exported.failed) == (1, [])
    rows = (tmp_path / "site" / "catalog.jsonl").read_bytes().decode("utf-8").splitlines()
    assert json.loads(rows[0])["result_path"].endswith("Fr\\xe9d\\xe9ric/caf\\xe9 \\xab\\xe0 la plage\\xbb.png")


def test_the_commands_print_odd_names_escaped(tmp_path: Path) -> None:
    source = _latin1_archive(tmp_path / "archive")
    shown = "caf\\xe9 \\xab\\xe0 la plage\\xbb.png"  # each byte that is not UTF-8 as \xNN
    newline = tmp_path / "archive" / "two\nlines.png"
    Image.fromarray(gray_u8(30, 40)).save(newline, format="PNG")
    bad = tmp_path / "archive" / _name(b"vide \xe9.png")
    bad.write_bytes(b"")
    db = str(tmp_path / "archive.db")

    archive = (tmp_path / "archive").resolve()
    ingested = _photochrom("ingest", str(archive), "--db", db, cwd=REPO)
    assert ingested.returncode == 1, ingested.stderr
    err = ingested.stderr.decode("utf-8")
    assert f"failed: {archive}/vide \\xe9.png: empty file (0 bytes)" in err
    assert "Traceback" not in err

    as_json = _photochrom("ingest", str(archive), "--db", db, "--json", cwd=REPO)
    report = json.loads(as_json.stdout.decode("utf-8"))  # valid UTF-8 JSON
    assert report["failed"] == [{"path": f"{archive}/vide \\xe9.png", "reason": "empty file (0 bytes)"}]

    listed = _photochrom("scans", "list", "--db", db, cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    text = listed.stdout.decode("utf-8")
    assert f"Fr\\xe9d\\xe9ric/{shown}" in text
    assert "two\\x0alines.png" in text  # one scan, one line

    rows = json.loads(_photochrom("scans", "list", "--db", db, "--json", cwd=REPO).stdout.decode("utf-8"))
    assert sorted(r["path"] for r in rows if r["status"] == "ingested") == sorted(
        [f"{archive}/Fr\\xe9d\\xe9ric/{shown}", str(newline.resolve())]
    )
    scan_id = next(str(r["id"]) for r in rows if r["path"].endswith(shown))
    show = _photochrom("scans", "show", scan_id, "--db", db, cwd=REPO)
    assert show.returncode == 0 and shown in show.stdout.decode("utf-8")
    detail = json.loads(_photochrom("scans", "show", scan_id, "--db", db, "--json", cwd=REPO).stdout.decode("utf-8"))
    assert detail["locations"][0]["relpath"] == f"Fr\\xe9d\\xe9ric/{shown}"
    assert source.is_file()


# Any bytes a POSIX file name can hold, then what an ingest of such a file must give back.
_names = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))


@pytest.fixture(scope="module")
def shared_catalog(tmp_path_factory: pytest.TempPathFactory):
    with open_catalog(tmp_path_factory.mktemp("names") / "archive.db") as catalog:
        yield catalog


@settings(max_examples=150, deadline=None)
@given(root=_names, relpath=st.lists(_names, min_size=1, max_size=3))
def test_any_file_name_is_stored_and_found_again_losslessly(shared_catalog, root: bytes, relpath: list[bytes]) -> None:
    root_text, rel_text = _name(b"/" + root), _name(b"/".join(relpath))
    where = (Location.root == root_text, Location.relpath == rel_text)
    with shared_catalog.write() as session:
        scan = session.scalar(select(Scan).where(Scan.sha256 == "0" * 64))
        if scan is None:
            scan = Scan(sha256="0" * 64, size_bytes=0, ingested_at=utcnow(), status="ingested")
            session.add(scan)
        if session.scalar(select(Location).where(*where)) is None:  # hypothesis may repeat a name
            now = utcnow()
            session.add(Location(scan=scan, root=root_text, relpath=rel_text, first_seen=now, last_seen=now))
    with shared_catalog.read() as session:
        [found] = session.scalars(select(Location).where(*where)).all()
        assert (os.fsencode(found.root), os.fsencode(found.relpath)) == (b"/" + root, b"/".join(relpath))


@settings(max_examples=30, deadline=None)
@given(raw=_names)
def test_a_scan_of_any_name_is_ingested_under_that_name(shared_catalog, tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    folder = tmp_path_factory.mktemp("scan").resolve()
    path = folder / _name(raw)
    Image.fromarray(gray_u8(8, 8)).save(path, format="PNG")  # the same bytes each time: a new location
    summary = ingest(shared_catalog, [path])  # named on the command line: tried whatever its name
    assert summary.failed == []
    with shared_catalog.read() as session:
        [location] = session.scalars(select(Location).where(Location.root == str(folder), Location.relpath == _name(raw))).all()
    assert os.fsencode(location.path) == os.fsencode(path)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=60))
def test_printable_names_are_one_line_of_valid_utf8(raw: bytes) -> None:
    from restore.scanio.names import printable, valid_unicode

    text = printable(_name(raw))
    text.encode("utf-8")  # never a lone surrogate
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
    assert "\u2028" not in text and "\u2029" not in text
    unicode = valid_unicode(_name(raw))
    unicode.encode("utf-8")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    assert unicode == decoded  # a UTF-8 name is itself
    if decoded.isprintable():
        assert text == decoded
