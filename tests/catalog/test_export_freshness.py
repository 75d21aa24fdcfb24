"""Exporting again looks at the files themselves, not only at what the state file recorded:
a result or original deleted or replaced since the last export is reported (exit 1) as a
first export reports it; an untouched one stays "unchanged" without being hashed again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import catalog.export as export_module
from catalog.export import STATE_FILE, export
from cli import app
from tests.catalog.test_export import catalog  # noqa: F401  the fixture: three scans, each restored once

runner = CliRunner()


def _export(tmp_path: Path):  # noqa: ANN202
    result = runner.invoke(app, ["export", str(tmp_path / "site"), "--db", str(tmp_path / "archive.db"), "--json"])
    return result, json.loads(result.stdout)


def _result_file(tmp_path: Path) -> Path:
    return tmp_path / "restored" / "box1" / "street.png"


def _original_file(tmp_path: Path) -> Path:
    return tmp_path / "archive" / "box1" / "street.png"


def _replace_bytes(path: Path) -> None:
    """New bytes of the same size and a later modification time (as a tool rewriting a file)."""
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert path.stat().st_size == stat.st_size


def test_an_untouched_export_again_is_unchanged_and_hashes_nothing(catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    first, report = _export(tmp_path)
    assert first.exit_code == 0 and (report["written"], report["failed"]) == (6, [])
    hashed: list[Path] = []
    real = export_module.file_sha256
    monkeypatch.setattr(export_module, "file_sha256", lambda path: hashed.append(Path(path)) or real(path))
    again, report = _export(tmp_path)
    assert again.exit_code == 0 and (report["written"], report["unchanged"], report["failed"]) == (0, 6, [])
    assert hashed == []  # size and modification time unchanged: the recorded SHA-256 holds


def test_a_result_deleted_since_the_last_export_is_reported(catalog, tmp_path: Path) -> None:  # noqa: F811
    assert _export(tmp_path)[0].exit_code == 0
    _result_file(tmp_path).unlink()
    again, report = _export(tmp_path)
    assert again.exit_code == 1
    assert [f["path"] for f in report["failed"]] == [str(_result_file(tmp_path))]
    assert "result file missing" in report["failed"][0]["reason"]
    assert report["results"] == 2 and (report["written"], report["unchanged"]) == (0, 5)
    rows = (tmp_path / "site" / "catalog.csv").read_text()
    assert str(_result_file(tmp_path)) not in rows  # no longer listed as exported


def test_a_result_replaced_since_the_last_export_is_reported(catalog, tmp_path: Path) -> None:  # noqa: F811
    assert _export(tmp_path)[0].exit_code == 0
    _replace_bytes(_result_file(tmp_path))
    again, report = _export(tmp_path)
    assert again.exit_code == 1
    assert [(f["path"], "result file changed since restore" in f["reason"]) for f in report["failed"]] == [(str(_result_file(tmp_path)), True)]
    assert report["results"] == 2


def test_a_result_touched_but_not_changed_stays_unchanged(catalog, tmp_path: Path) -> None:  # noqa: F811
    assert _export(tmp_path)[0].exit_code == 0
    path = _result_file(tmp_path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    again, report = _export(tmp_path)
    assert again.exit_code == 0 and (report["written"], report["unchanged"], report["failed"]) == (0, 6, [])
    state = json.loads((tmp_path / "site" / STATE_FILE).read_text())
    recorded = [e for e in state["derived"].values() if e.get("source_mtime_ns") == path.stat().st_mtime_ns]
    assert len(recorded) == 1  # the new modification time is recorded: the next export does not hash it again


@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_an_original_deleted_or_replaced_since_the_last_export_is_reported(catalog, tmp_path: Path, change: str) -> None:  # noqa: F811
    assert _export(tmp_path)[0].exit_code == 0
    original = _original_file(tmp_path)
    original.unlink() if change == "deleted" else _replace_bytes(original)
    again, report = _export(tmp_path)
    assert again.exit_code == 1
    assert [f["path"] for f in report["failed"]] == [str(original.resolve())]
    assert ("original file missing" if change == "deleted" else "original file changed since ingest") in report["failed"][0]["reason"]


def test_the_library_reports_the_same(catalog, tmp_path: Path) -> None:  # noqa: F811
    site = tmp_path / "site"
    assert export(catalog, site).exit_code == 0
    _replace_bytes(_result_file(tmp_path))
    summary = export(catalog, site)
    assert summary.exit_code == 1 and [f["path"] for f in summary.failed] == [str(_result_file(tmp_path))]
