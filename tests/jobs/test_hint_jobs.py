"""Curator hints in restore jobs: a changed hint file makes a new result and the old one
stays; an invalid hint file fails its scan alone, hostile ones (NaN, huge numbers, deep
nesting, a FIFO) included; hint files are recorded in the catalog."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from catalog.db import open_catalog
from catalog.ingest import ingest
from catalog.models import HintFileRecord
from catalog.queries import show_scan
from jobs.run import JobSettings, create_restore_job, run_job
from restore.colour import rgb_to_lab
from restore.settings import RestoreSettings
from tests.conftest import gray_u8
from tests.hints.hostile import POISONED, REASONS, in_thread, write_poisoned


def _hints(folder: Path, stem: str, colour: object, x: float = 0.5) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}.json"
    path.write_text(json.dumps({"schema": "photochrom.hints/1", "space": "normalized", "points": [{"x": x, "y": 0.5, "color": colour}]}))
    return path


def _archive(tmp_path: Path, first: str, second: str) -> Path:
    archive = tmp_path / "archive"
    archive.mkdir()
    Image.fromarray(gray_u8(120, 160)).save(archive / f"{first}.png")
    Image.fromarray(gray_u8(100, 100)).save(archive / f"{second}.png")
    return archive


def _restore(catalog, tmp_path: Path, out: str, hints: Path):  # noqa: ANN001, ANN202
    settings = JobSettings(restore=RestoreSettings(model="ramp"), out_dir=str(tmp_path / out), hints_dir=str(hints))
    job_id, current = create_restore_job(catalog, settings)
    return run_job(catalog, job_id, scheduler="synchronous"), current


def _ab_at(path: Path, x: float) -> np.ndarray:
    lab = rgb_to_lab(np.asarray(Image.open(path).convert("RGB")))
    return lab[round(0.5 * (lab.shape[0] - 1)), round(x * (lab.shape[1] - 1)), 1:]


def test_a_changed_hint_file_makes_a_new_result_and_keeps_the_old(tmp_path: Path) -> None:
    archive = _archive(tmp_path, "street", "other")
    hints = tmp_path / "hints"
    _hints(hints, "street", {"lab": [50, 20, 12]}, x=0.8)
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [archive])
        first, _ = _restore(catalog, tmp_path, "first", hints)
        assert (first.done, first.failed) == (2, [])
        assert np.hypot(*(_ab_at(tmp_path / "first" / "street.png", 0.8) - [20, 12])) <= 3.0

        again, current = _restore(catalog, tmp_path, "again", hints)
        assert (again.done, current) == (0, 2)  # same hints, same settings: nothing to do

        _hints(hints, "street", {"lab": [50, -12, -10]}, x=0.8)  # the curator changed their mind
        second, current = _restore(catalog, tmp_path, "second", hints)
        assert (second.done, current) == (1, 1)  # only the hinted scan is redone
        assert np.hypot(*(_ab_at(tmp_path / "second" / "street.png", 0.8) - [-12, -10])) <= 3.0
        assert np.hypot(*(_ab_at(tmp_path / "first" / "street.png", 0.8) - [20, 12])) <= 3.0  # old result kept

        street = next(r for r in (show_scan(catalog, "1"), show_scan(catalog, "2")) if "street" in str(r["path"]))
        assert [r["job_id"] for r in street["results"]] == [first.job_id, second.job_id]  # type: ignore[index]
        with catalog.read() as session:
            records = session.scalars(select(HintFileRecord).order_by(HintFileRecord.id)).all()
            assert [r.points for r in records] == [1, 1] and records[0].sha256 != records[1].sha256


def test_an_invalid_hint_file_fails_its_scan_alone(tmp_path: Path) -> None:
    archive = _archive(tmp_path, "a", "b")
    hints = tmp_path / "hints"
    _hints(hints, "a", "#12345z")
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [archive])
        summary, _ = _restore(catalog, tmp_path, "out", hints)
    assert summary.done == 1
    expected = str(hints / "a.json") + ': point 0: bad colour "#12345z"'
    assert summary.failed[0]["reason"].startswith(expected)


# -- poisoned hint files (issue 16): each fails its own scan, the job goes on -----------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_poisoned_hint_files_fail_their_scans_alone(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    names = [*POISONED, "fifo", "good", "plain"]
    for i, name in enumerate(names):
        Image.fromarray(gray_u8(40 + i, 50)).save(archive / f"{name}.png")  # sizes differ: no two scans alike
    hints = tmp_path / "hints"
    write_poisoned(hints)
    _hints(hints, "good", {"lab": [50, 20, 12]})

    def restore():  # noqa: ANN202
        with open_catalog(tmp_path / "archive.db") as catalog:
            ingest(catalog, [archive])
            return _restore(catalog, tmp_path, "out", hints)[0]

    summary = in_thread(restore, hints / "fifo.json")
    assert summary.done == 2 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png", "plain.png"]
    reasons = sorted(f["reason"] for f in summary.failed)
    assert len(reasons) == len(REASONS)
    for reason, expected in zip(reasons, sorted(str(hints / r) for r in REASONS.values())):
        assert reason.startswith(expected) and "\n" not in reason, (reason, expected)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_hint_file_turned_fifo_after_the_job_was_made_fails_its_task(tmp_path: Path) -> None:
    """The worker reads the hint file again: there too only a regular file is opened."""
    archive = _archive(tmp_path, "a", "b")
    hints = tmp_path / "hints"
    path = _hints(hints, "a", "#7a9cc6")
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [archive])
        settings = JobSettings(restore=RestoreSettings(model="ramp"), out_dir=str(tmp_path / "out"), hints_dir=str(hints))
        job_id, _ = create_restore_job(catalog, settings)
    path.unlink()
    os.mkfifo(path)

    def run():  # noqa: ANN202
        with open_catalog(tmp_path / "archive.db") as catalog:
            return run_job(catalog, job_id, scheduler="synchronous")

    summary = in_thread(run, path)
    assert summary.done == 1
    assert [f["reason"] for f in summary.failed] == [f"{path}: is a FIFO, not a regular file; only regular files are read"]
