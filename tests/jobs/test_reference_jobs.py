"""Series references in restore jobs and one-off colorize: recorded per task and in the result
key (a new reference makes a new result, the old one stays), a reference changed after the
job was created fails its tasks, series files give each series its own reference, and bad
references or series files are one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from catalog.db import open_catalog
from catalog.export import export
from catalog.ingest import ingest
from catalog.models import Task
from cli import app
from jobs.run import JobSettings, create_restore_job, run_job
from restore.colour import lightness_to_gray, rgb_to_lab
from restore.reference import ReferenceError
from restore.scanio.files import file_sha256
from restore.scanio.write import result_provenance
from restore.settings import RestoreSettings
from tests.restore.test_reference import scene, views

runner = CliRunner()


def _gray(rgb: np.ndarray) -> np.ndarray:
    return lightness_to_gray(rgb_to_lab(rgb)[..., 0], np.uint8)


@pytest.fixture
def archive(tmp_path: Path) -> dict[str, Path]:
    """Two series of two scans each (folders a/ and b/), and a colour reference for each."""
    paths: dict[str, Path] = {}
    for name, seed in (("a", 1), ("b", 2)):
        target, reference = views(scene(seed, 300, 400))
        folder = tmp_path / "scans" / name
        folder.mkdir(parents=True)
        Image.fromarray(_gray(target)).save(folder / f"{name}1.png")
        Image.fromarray(_gray(np.ascontiguousarray(target[::-1]))).save(folder / f"{name}2.png")  # the scene mirrored
        Image.fromarray(reference).save(tmp_path / f"ref-{name}.png")
        paths[name], paths[f"ref-{name}"] = folder, tmp_path / f"ref-{name}.png"
    return paths


def _job(catalog, tmp_path: Path, out: str, **settings: object):  # noqa: ANN001, ANN202
    job_settings = JobSettings(restore=RestoreSettings(model="ramp"), out_dir=str(tmp_path / out), **settings)  # type: ignore[arg-type]
    job_id, current = create_restore_job(catalog, job_settings)
    return run_job(catalog, job_id, scheduler="synchronous"), current


def _tasks(catalog, job_id: int) -> dict[str, Task]:  # noqa: ANN001
    with catalog.read() as session:
        tasks = session.scalars(select(Task).where(Task.job_id == job_id)).all()
        return {Path(t.source_path).stem: t for t in tasks}


def test_a_reference_is_recorded_and_a_new_one_makes_new_results(archive: dict[str, Path], tmp_path: Path) -> None:
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [archive["a"]])
        first, _ = _job(catalog, tmp_path, "first", reference=str(archive["ref-a"]))
        assert (first.done, first.failed) == (2, [])
        tasks = _tasks(catalog, first.job_id)
        assert {t.reference_sha256 for t in tasks.values()} == {file_sha256(archive["ref-a"])}
        assert json.loads(tasks["a1"].reference)["planes"] >= 1
        written = json.loads(result_provenance(tmp_path / "first" / "a1.png")["Reference"])
        assert written["sha256"] == file_sha256(archive["ref-a"])

        shown = runner.invoke(app, ["jobs", "show", str(first.job_id), "--db", str(tmp_path / "archive.db"), "--json"])
        assert {t["reference"]["sha256"] for t in json.loads(shown.stdout)["tasks"]} == {file_sha256(archive["ref-a"])}
        shown = runner.invoke(app, ["jobs", "show", str(first.job_id), "--db", str(tmp_path / "archive.db")])
        assert shown.output.count("ref-a.png (") == 2 and "matched)" in shown.output

        export(catalog, tmp_path / "site")  # the export names the reference of each result
        with (tmp_path / "site" / "catalog.csv").open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["result_path"]]
        assert len(rows) == 2 and {r["reference_sha256"] for r in rows} == {file_sha256(archive["ref-a"])}
        assert all(r["reference_path"] == str(archive["ref-a"].resolve()) for r in rows)
        coverage = {Path(r["result_path"]).stem: float(r["reference_coverage"]) for r in rows}
        assert coverage["a1"] > 0.5 and coverage["a2"] == 0.0  # a2 is a1 mirrored: nothing matches
        pages = "".join(p.read_text() for p in (tmp_path / "site").rglob("*.html"))
        assert pages.count("Series reference") == 2

        again, current = _job(catalog, tmp_path, "again", reference=str(archive["ref-a"]))
        assert (again.done, current) == (0, 2)  # the same reference: already current
        other, current = _job(catalog, tmp_path, "other", reference=str(archive["ref-b"]))
        assert (other.done, current) == (2, 0)  # another reference: new results
        assert (tmp_path / "first" / "a1.png").is_file()  # the old ones stay
        plain, current = _job(catalog, tmp_path, "plain")
        assert (plain.done, current) == (2, 0)  # without a reference is another result again


def test_a_reference_changed_after_the_job_was_created_fails_its_tasks(archive: dict[str, Path], tmp_path: Path) -> None:
    reference = tmp_path / "ref.png"
    reference.write_bytes(archive["ref-a"].read_bytes())
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [archive["a"]])
        job_id, _ = create_restore_job(catalog, JobSettings(restore=RestoreSettings(model="ramp"), out_dir=str(tmp_path / "out"), reference=str(reference)))
        reference.write_bytes(archive["ref-b"].read_bytes())
        summary = run_job(catalog, job_id, scheduler="synchronous")
        assert summary.done == 0 and len(summary.failed) == 2
        assert all("changed since the job was created" in f["reason"] for f in summary.failed)


def _series(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_a_series_file_gives_each_series_its_own_reference(archive: dict[str, Path], tmp_path: Path) -> None:
    series = _series(tmp_path / "series.json", {"schema": "photochrom.series/1", "series": [
        {"name": "A", "reference": "ref-a.png", "folders": ["scans/a"]},
        {"name": "B", "reference": str(archive["ref-b"]), "folders": ["scans/b"]},
    ]})
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [tmp_path / "scans"])
        summary, _ = _job(catalog, tmp_path, "out", series=str(series))
        assert (summary.done, summary.failed) == (4, [])
        tasks = _tasks(catalog, summary.job_id)
        shas = {stem: t.reference_sha256 for stem, t in tasks.items()}
        assert shas == {"a1": file_sha256(archive["ref-a"]), "a2": file_sha256(archive["ref-a"]),
                        "b1": file_sha256(archive["ref-b"]), "b2": file_sha256(archive["ref-b"])}


def test_a_scans_current_result_can_be_the_reference_of_the_others(archive: dict[str, Path], tmp_path: Path) -> None:
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [archive["a"]])
        with pytest.raises(ReferenceError, match="has no restored result yet"):
            _job(catalog, tmp_path, "none", reference="scan:1")
        first, _ = _job(catalog, tmp_path, "first")
        summary, _ = _job(catalog, tmp_path, "second", reference="scan:1")
        source = next(t for t in _tasks(catalog, first.job_id).values() if t.scan_id == 1)
        (task,) = _tasks(catalog, summary.job_id).values()
        assert task.scan_id == 2  # scan 1 is not coloured from itself
        assert task.reference_path == source.output_path and task.reference_sha256 == file_sha256(Path(source.output_path))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"schema": "photochrom.series/1", "series": [{"reference": "ref-a.png", "scans": ["1"]}, {"reference": "ref-b.png", "scans": ["1"]}]}', "scan 1 is in two series"),
        ('{"schema": "photochrom.series/1", "series": [{"reference": "ref-a.png", "scans": [NaN]}]}', "NaN"),
        ('{"schema": "photochrom.series/1", "series": [{"reference": "ref-a.png", "scans": ["1"], "extra": 1}]}', "series/0"),
        ('{"schema": "photochrom.series/1", "series": [{"reference": "nowhere.png"}]}', r"nowhere\.png"),
        ("[" * 10000 + "]" * 10000, "nested deeper"),
        ('{"schema": "photochrom.series/1", "series": [{"reference": "ref-a.png", "scans": ["99"]}]}', "no scan with id 99"),
    ],
    ids=["two-series", "nan", "unknown-key", "missing-reference", "deep", "unknown-scan"],
)
def test_bad_series_files_are_one_line_errors_and_record_nothing(archive: dict[str, Path], tmp_path: Path, document: str, message: str) -> None:
    (tmp_path / "series.json").write_text(document)
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [archive["a"]])
    result = runner.invoke(app, ["restore", "--db", str(tmp_path / "archive.db"), "--model", "ramp", "--series", str(tmp_path / "series.json")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "error" in result.output and re.search(message, result.output), result.output
    with open_catalog(tmp_path / "archive.db") as catalog, catalog.read() as session:
        assert session.scalars(select(Task)).all() == []


def test_colorize_with_a_reference_and_its_errors(archive: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["colorize", str(archive["a"]), "-o", str(out), "--model", "ramp", "--reference", str(archive["ref-a"]), "--json"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["written"]
    assert len(written) == 2 and all(w["reference"]["sha256"] == file_sha256(archive["ref-a"]) for w in written)
    for args, message in (
        (["--model", "ramp", "--reference", str(tmp_path / "missing.png")], "missing.png"),
        (["--reference", str(archive["ref-a"]), "--repair-only"], "need colorization"),
    ):
        result = runner.invoke(app, ["colorize", str(archive["a"]), "-o", str(tmp_path / "o2"), *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
