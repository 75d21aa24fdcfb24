"""Curator hints in restore jobs: a changed hint file makes a new result and the old one
stays; an invalid hint file fails its scan alone; hint files are recorded in the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select

from catalog.db import open_catalog
from catalog.ingest import ingest
from catalog.models import HintFileRecord
from catalog.queries import show_scan
from jobs.run import JobSettings, create_restore_job, run_job
from restore.colour import rgb_to_lab
from restore.pipeline import RestoreSettings
from tests.conftest import gray_u8


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
