"""Restore jobs on real files: every scan restored once, current results not redone, new
settings make new results while old ones stay, a bad scan fails alone, a dying worker
fails only its scan, and a job killed with SIGKILL resumes writing each output once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog.db import open_catalog
from catalog.ingest import ingest
from catalog.queries import show_scan
from jobs.run import JobSettings, create_restore_job, list_jobs, run_job, show_job
from restore.scanio.write import task_marker
from restore.settings import RestoreSettings
from restore.scanio.read import read_scan
from tests.conftest import gray_u8
from tests.plugins import models as _test_models  # noqa: F401  registers test-slow and test-crash here

REPO = Path(__file__).resolve().parents[2]
PLUGINS = {"PHOTOCHROM_MODEL_MODULES": "tests.plugins.models"}


def _archive(folder: Path, count: int = 4) -> list[Path]:
    """Gray scans in a folder tree, each different (so each is its own scan)."""
    paths = []
    for i in range(count):
        path = folder / ("box1" if i % 2 else "box2") / f"scan_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(gray_u8(120, 160).astype(int) + 7 * i, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def catalog(tmp_path: Path):
    with open_catalog(tmp_path / "archive.db") as cat:
        yield cat


def _restore(catalog, tmp_path: Path, out: str = "out", **restore: object):  # noqa: ANN001, ANN202
    settings = JobSettings(restore=RestoreSettings(**restore), out_dir=str(tmp_path / out))
    job_id, current = create_restore_job(catalog, settings)
    return run_job(catalog, job_id, scheduler="synchronous"), current


def test_restore_writes_each_scan_under_its_relative_path(catalog, tmp_path: Path) -> None:
    sources = _archive(tmp_path / "archive")
    ingest(catalog, [tmp_path / "archive"])
    summary, current = _restore(catalog, tmp_path)
    assert (summary.done, summary.failed, current) == (4, [], 0)
    outputs = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert outputs == sorted(p.relative_to(tmp_path / "archive").as_posix() for p in sources)
    for source in sources:
        result = read_scan(tmp_path / "out" / source.relative_to(tmp_path / "archive"))
        assert np.abs(result.l_hw - read_scan(source).l_hw).max() < 0.5
    detail = show_job(catalog, summary.job_id)
    assert {t["status"] for t in detail["tasks"]} == {"done"}
    assert all(t["seconds"]["decode"] >= 0 for t in detail["tasks"])


def test_current_results_are_not_redone_and_new_settings_keep_history(catalog, tmp_path: Path) -> None:
    _archive(tmp_path / "archive", 2)
    ingest(catalog, [tmp_path / "archive"])
    first, _ = _restore(catalog, tmp_path, "first")
    again, current = _restore(catalog, tmp_path, "again")
    assert (again.done, current) == (0, 2)
    assert not (tmp_path / "again").exists()
    stronger, current = _restore(catalog, tmp_path, "stronger", saturation=2.0)
    assert (stronger.done, current) == (2, 0)
    assert len(list((tmp_path / "first").rglob("*.png"))) == 2  # the old results stay
    results = show_scan(catalog, "1")["results"]
    assert [r["job_id"] for r in results] == [first.job_id, stronger.job_id]  # type: ignore[index]
    # null: the default policy (1.15 without hints, 1 with); the XMP holds the gain applied
    assert [r["settings"]["saturation"] for r in results] == [None, 2.0]  # type: ignore[index]


def test_a_corrupt_scan_fails_alone_with_its_reason(catalog, tmp_path: Path) -> None:
    _archive(tmp_path / "archive", 3)
    damaged = tmp_path / "archive" / "damaged.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)).save(damaged)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # passes the header probe, fails decoding
    damaged.write_bytes(bytes(data))
    assert ingest(catalog, [tmp_path / "archive"]).failed == []
    summary, _ = _restore(catalog, tmp_path)
    assert summary.done == 3
    assert [f["path"] for f in summary.failed] == [str(damaged.resolve())]
    assert "corrupt or unreadable PNG" in summary.failed[0]["reason"]
    assert summary.exit_code == 1


def test_a_changed_file_is_not_restored_as_the_catalogued_scan(catalog, tmp_path: Path) -> None:
    sources = _archive(tmp_path / "archive", 2)
    ingest(catalog, [tmp_path / "archive"])
    Image.fromarray(gray_u8(10, 10)).save(sources[0])  # replaced after ingest
    summary, _ = _restore(catalog, tmp_path)
    assert summary.done == 1
    assert "changed since it was ingested" in summary.failed[0]["reason"]


def test_an_existing_file_in_the_output_folder_is_never_overwritten(catalog, tmp_path: Path) -> None:
    sources = _archive(tmp_path / "archive", 2)
    ingest(catalog, [tmp_path / "archive"])
    target = tmp_path / "out" / sources[0].relative_to(tmp_path / "archive")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"someone else's file")
    summary, _ = _restore(catalog, tmp_path)
    assert target.read_bytes() == b"someone else's file"
    assert "not written by this job; not overwritten" in summary.failed[0]["reason"]


def test_a_dying_worker_fails_only_its_scan(catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCHROM_MODEL_MODULES", PLUGINS["PHOTOCHROM_MODEL_MODULES"])
    _archive(tmp_path / "archive", 2)
    dark = tmp_path / "archive" / "night.png"
    Image.fromarray(np.full((120, 160), 8, np.uint8)).save(dark)  # L* about 2: the test model crashes on it
    ingest(catalog, [tmp_path / "archive"])
    settings = JobSettings(restore=RestoreSettings(model="test-crash"), out_dir=str(tmp_path / "out"), retries=1)
    job_id, _ = create_restore_job(catalog, settings)
    summary = run_job(catalog, job_id, scheduler="local", workers=2)
    assert summary.done == 2
    assert [f["path"] for f in summary.failed] == [str(dark.resolve())]
    assert "failed on 2 attempts" in summary.failed[0]["reason"]
    events = [e["kind"] for e in show_job(catalog, job_id)["events"]]
    assert events.count("retry") == 1 and events[-1] == "finished"


def test_a_model_that_cannot_load_fails_each_scan_with_the_reason_without_retrying(catalog, tmp_path: Path) -> None:
    _archive(tmp_path / "archive", 2)
    ingest(catalog, [tmp_path / "archive"])
    settings = JobSettings(restore=RestoreSettings(model="test-unloadable"), out_dir=str(tmp_path / "out"))
    job_id, _ = create_restore_job(catalog, settings)
    summary = run_job(catalog, job_id, scheduler="synchronous")
    assert summary.done == 0 and len(summary.failed) == 2
    assert all(f["reason"] == "--model test-unloadable: weights of model 'test-unloadable' are missing; import them again" for f in summary.failed)
    assert "retry" not in [e["kind"] for e in show_job(catalog, job_id)["events"]]


def _task_counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


def test_a_job_killed_with_sigkill_resumes_and_writes_each_output_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = _archive(tmp_path / "archive", 6)
    db = tmp_path / "archive.db"
    with open_catalog(db) as catalog:
        ingest(catalog, [tmp_path / "archive"])
    command = [sys.executable, "-m", "cli", "restore", "--db", str(db), "--out", str(tmp_path / "out"),
               "--model", "test-slow", "--scheduler", "synchronous"]
    env = os.environ | PLUGINS | {"PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _task_counts(db).get("done", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _task_counts(db)
    assert 2 <= before.get("done", 0) < 6, before
    finished_before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.png")}
    # A write the kill interrupted would leave a temporary file: resume must remove it.
    (tmp_path / "out" / "box1" / ".scan_1.png.0123456789ab.tmp").write_bytes(b"half")
    (tmp_path / "out" / ".someone-elses.tmp").write_bytes(b"not ours")  # must survive

    with open_catalog(db) as catalog:
        job_id = list_jobs(catalog)[0]["id"]
        summary = run_job(catalog, job_id, scheduler="synchronous")
        assert (summary.done, summary.failed, summary.status) == (6, [], "finished")
        detail = show_job(catalog, job_id)
    outputs = sorted((tmp_path / "out").rglob("*"))
    files = [p for p in outputs if p.is_file() and p.name != ".someone-elses.tmp"]
    assert len(files) == len(sources)  # each output exactly once, no temporary files of ours
    assert (tmp_path / "out" / ".someone-elses.tmp").read_bytes() == b"not ours"
    for path, mtime in finished_before.items():
        assert path.stat().st_mtime_ns == mtime  # finished before the kill: not rewritten
    for task in detail["tasks"]:
        assert task_marker(f"job-{job_id}/task-{task['id']}") in Path(task["output"]).read_bytes()
    assert "resumed" in [e["kind"] for e in detail["events"]]


def test_an_existing_dask_scheduler_by_address(catalog, tmp_path: Path) -> None:
    from dask.distributed import LocalCluster

    _archive(tmp_path / "archive", 3)
    ingest(catalog, [tmp_path / "archive"])
    job_id, _ = create_restore_job(catalog, JobSettings(out_dir=str(tmp_path / "out")))
    seen: list[int] = []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        summary = run_job(
            catalog, job_id, scheduler=cluster.scheduler_address,
            progress=lambda done, total, outcome: seen.append(getattr(outcome, "patches", 0)),
        )
    assert (summary.done, summary.failed) == (3, [])
    assert seen[0] == 0 and all(p >= 2 for p in seen[1:])  # each scan: global pass + its patches


@pytest.mark.parametrize("workers", [1, 2])
def test_local_workers_get_their_share_of_the_cores_and_glibcs_own_memory_settings(workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each local worker runs one scan at a time on its share of the cores, and does not
    start with Dask's MALLOC_TRIM_THRESHOLD_ (which made every large array fault in afresh)."""
    from jobs.scheduler import DaskRunner, open_runner

    def worker_environ() -> dict[str, str | None]:
        return {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")}

    for name in ("OMP_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_"):  # set here, they would win (Dask's
        monkeypatch.delenv(name, raising=False)  # rule), as after a cluster started without open_runner

    before = worker_environ()
    with open_runner("local", workers) as runner:
        assert isinstance(runner, DaskRunner)
        environs = list(runner._client.run(worker_environ).values())
        assert worker_environ() == before  # Dask's nanny wrote them here; put back
    share = str(max(1, (os.cpu_count() or 1) // workers))
    assert environs == [{"OMP_NUM_THREADS": share, "MALLOC_TRIM_THRESHOLD_": None}] * workers
