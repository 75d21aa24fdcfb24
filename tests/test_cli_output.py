"""What the commands print about user-controlled strings (paths that look like rich markup),
what `scans show` lists, and the usage errors that must leave files as they were."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from cli import app
from tests.conftest import gray_u8

runner = CliRunner()


def _run(*args: str):  # noqa: ANN202
    return runner.invoke(app, list(args))


def _markup_archive(folder: Path) -> dict[str, Path]:
    """Scans whose paths rich would read as markup ("/" splits a name, so `[/]` spans a folder)."""
    paths = {
        "styled": folder / "[bold red]x[" / "].png",  # ARCHIVE/[bold red]x[/].png
        "closing": folder / "[" / "].png",  # ARCHIVE/[/].png
        "bad": folder / "[" / "]bad [i].png",  # ARCHIVE/[/]bad [i].png, empty: fails
    }
    for i, (key, path) in enumerate(paths.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        if key == "bad":
            path.write_bytes(b"")
        else:
            Image.fromarray(np.clip(gray_u8(48, 64).astype(int) + 9 * i, 0, 255).astype(np.uint8)).save(path, format="PNG")
    return {k: p.resolve() for k, p in paths.items()}


def test_paths_that_look_like_markup_print_literally_everywhere(tmp_path: Path) -> None:
    paths = _markup_archive(tmp_path / "archive")
    db = str(tmp_path / "archive.db")
    ingested = _run("ingest", str(tmp_path / "archive"), "--db", db)
    assert ingested.exit_code == 1, ingested.output
    assert f"failed: {paths['bad']}: empty file (0 bytes)" in ingested.stderr

    listed = _run("scans", "list", "--db", db)
    assert listed.exit_code == 0, listed.output
    for key in ("styled", "closing"):
        assert str(paths[key]) in listed.stdout

    rows = json.loads(_run("scans", "list", "--db", db, "--json").stdout)
    ids = {row["path"]: row["id"] for row in rows}
    for key in ("styled", "closing", "bad"):
        shown = _run("scans", "show", str(ids[str(paths[key])]), "--db", db)
        assert shown.exit_code == 0, shown.output
        assert str(paths[key]) in shown.stdout

    out = tmp_path / "out [b]" / "[/]"  # the job's folder too
    restored = _run("restore", "--db", db, "--model", "ramp", "--scheduler", "synchronous", "--out", str(out))
    assert restored.exit_code == 0, restored.output
    assert str(out.resolve()) in restored.stderr
    jobs = _run("jobs", "list", "--db", db)
    assert jobs.exit_code == 0, jobs.output
    assert str(out.resolve()) in jobs.stdout
    job = _run("jobs", "show", "1", "--db", db)
    assert job.exit_code == 0, job.output
    assert f"output {out.resolve()}" in job.stdout
    assert json.dumps(str(out)) in job.stdout  # the settings, as recorded
    for key in ("styled", "closing"):
        assert f"{paths[key]}  ->  {out.resolve() / paths[key].relative_to((tmp_path / 'archive').resolve())}" in job.stdout


def test_the_progress_bar_shows_markup_names_literally(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws the bar as on a terminal
    scan = tmp_path / "[bold]harbour.png"  # the bar shows each file's name
    Image.fromarray(gray_u8(30, 40)).save(scan)
    result = _run("ingest", str(scan), "--db", str(tmp_path / "archive.db"))
    assert (result.exit_code, result.exception) == (0, None), result.output
    assert "[bold]harbour.png" in result.stderr  # not "harbour.png" in bold


def test_scans_show_lists_the_scans_results(tmp_path: Path) -> None:
    scan = tmp_path / "archive" / "harbour.png"
    scan.parent.mkdir()
    Image.fromarray(gray_u8(48, 64)).save(scan)
    db = str(tmp_path / "archive.db")
    assert _run("ingest", str(scan.parent), "--db", db).exit_code == 0
    for saturation in ("1.0", "2.0"):
        job = _run("restore", "--db", db, "--model", "ramp", "--scheduler", "synchronous", "--saturation", saturation,
                   "--out", str(tmp_path / f"out-{saturation}"))
        assert job.exit_code == 0, job.output
    detail = json.loads(_run("scans", "show", "1", "--db", db, "--json").stdout)
    assert [(r["job_id"], r["current"]) for r in detail["results"]] == [(1, False), (2, True)]
    shown = _run("scans", "show", "1", "--db", db)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    results = lines[lines.index(next(line for line in lines if line.strip() == "results")) + 1 :]
    for result in detail["results"]:
        line = next(line for line in results if f"job {result['job_id']} " in line)
        assert result["path"] in line and result["sha256"] in line and result["finished_at"] in line and "ramp" in line
        assert line.endswith("(current)") == result["current"]


def test_ingest_of_a_missing_source_creates_no_catalog(tmp_path: Path) -> None:
    db = tmp_path / "archive.db"
    result = _run("ingest", str(tmp_path / "nowhere"), "--db", str(db))
    assert result.exit_code == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"photochrom: error: {tmp_path / 'nowhere'}: no such file or folder"
    ]
    assert list(tmp_path.iterdir()) == []  # no archive.db, no -wal, no -shm


def _foreign_sqlite(path: Path) -> bytes:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE bookmarks (url TEXT, title TEXT)")
    con.execute("INSERT INTO bookmarks VALUES ('https://example.org', 'example')")
    con.commit()
    con.close()
    return path.read_bytes()


def test_another_applications_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "places.sqlite"
    before = _foreign_sqlite(path)
    scan = tmp_path / "scan.png"
    Image.fromarray(gray_u8(30, 40)).save(scan)
    for args in (["scans", "--db", str(path)], ["ingest", str(scan), "--db", str(path)], ["jobs", "list", "--db", str(path)]):
        result = _run(*args)
        assert result.exit_code == 2, args
        assert [line for line in result.stderr.splitlines() if line.strip()] == [
            f"photochrom: error: {path}: not a photochrom catalog (another application's SQLite file)"
        ]
        assert path.read_bytes() == before, args  # not even switched to WAL
        assert sorted(p.name for p in tmp_path.iterdir()) == ["places.sqlite", "scan.png"], args
