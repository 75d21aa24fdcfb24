"""When two runs meet: real processes racing for one output folder and one job, and the
job lease that lets a crashed job resume at once but never lets a running one run twice."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from catalog.db import open_catalog
from catalog.ingest import ingest
from catalog.models import Job, utcnow
from jobs import lease
from jobs.run import JobSettings, create_restore_job, list_jobs, run_job, show_job
from restore.scanio.write import OutputClaimed, publish, result_task, temporary_name
from restore.settings import RestoreSettings
from tests.jobs.test_jobs import PLUGINS, REPO, _archive, _task_counts

ENV = os.environ | PLUGINS | {"PYTHONPATH": str(REPO)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _rows(db: Path, query: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _catalog_with(archive: Path, db: Path) -> None:
    with open_catalog(db) as catalog:
        ingest(catalog, [archive])


def test_two_runs_into_one_output_folder_never_overwrite_each_other(tmp_path: Path) -> None:
    """Two catalogs (nothing shared but the folder), different settings, started together:
    each output is published by exactly one task, whose recorded SHA-256 is the file's;
    the other run's task says who has the path."""
    sources = _archive(tmp_path / "archive", 4)
    dbs = [tmp_path / "a.db", tmp_path / "b.db"]
    for db in dbs:
        _catalog_with(tmp_path / "archive", db)
    out = tmp_path / "out"
    runs = [
        _cli("restore", "--db", str(db), "--out", str(out), "--model", "test-slow", "--scheduler", "synchronous",
             "--saturation", saturation, "--json")
        for db, saturation in zip(dbs, ("1.0", "2.0"))
    ]
    reports = [json.loads(run.communicate(timeout=300)[0]) for run in runs]
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) == len(sources)
    publishers: dict[str, list[str]] = {str(f): [] for f in files}
    for db in dbs:
        for status, output, sha256, reason in _rows(db, "SELECT status, output_path, output_sha256, reason FROM tasks"):
            if status == "done":
                publishers[output].append(db.name)
                assert sha256 == _sha256(Path(output)), f"{db.name} recorded a SHA-256 that is not the file's"
            else:
                assert status == "skipped" and f"{output}: claimed by job 1; not overwritten" == reason
    assert all(len(names) == 1 for names in publishers.values()), publishers
    assert sum(r["done"] for r in reports) == len(sources)
    assert not [p for p in out.rglob(".*.tmp")]


def test_a_second_restore_over_the_same_catalog_leaves_a_running_jobs_scans_to_it(tmp_path: Path) -> None:
    sources = _archive(tmp_path / "archive", 4)
    db = tmp_path / "archive.db"
    _catalog_with(tmp_path / "archive", db)
    first = _cli("restore", "--db", str(db), "--model", "test-slow", "--scheduler", "synchronous", "--out", str(tmp_path / "first"))
    deadline = time.monotonic() + 120
    while not _rows(db, "SELECT id FROM jobs"):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.02)
    with open_catalog(db) as catalog:  # a second restore, here, while the first runs
        settings = JobSettings(restore=RestoreSettings(model="test-slow"), out_dir=str(tmp_path / "second"))
        job_id, current = create_restore_job(catalog, settings)
        summary = run_job(catalog, job_id, scheduler="synchronous")
    assert first.poll() is None, "the first run ended before the second began: the test proves nothing"
    assert (summary.done, current) == (0, 0)
    assert summary.warnings == [f"{len(sources)} scans are being restored with these settings by job 1, which is running; left to it"]
    assert first.wait(timeout=300) == 0
    assert not (tmp_path / "second").exists()
    assert len(list((tmp_path / "first").rglob("*.png"))) == len(sources)


def test_resuming_a_running_job_is_refused_naming_its_process(tmp_path: Path) -> None:
    _archive(tmp_path / "archive", 4)
    db = tmp_path / "archive.db"
    _catalog_with(tmp_path / "archive", db)
    running = _cli("restore", "--db", str(db), "--out", str(tmp_path / "out"), "--model", "test-slow", "--scheduler", "synchronous")
    deadline = time.monotonic() + 120
    while _task_counts(db).get("done", 0) < 1:
        assert time.monotonic() < deadline and running.poll() is None
        time.sleep(0.05)
    second = _cli("jobs", "resume", "1", "--db", str(db), "--scheduler", "synchronous")
    _, error = second.communicate(timeout=120)
    assert second.returncode == 2, error
    lines = error.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"photochrom: error: job 1 is being run by process {running.pid} on {socket.gethostname()}")
    with open_catalog(db) as catalog:
        assert list_jobs(catalog)[0]["running_in"] == f"process {running.pid} on {socket.gethostname()}"
    assert running.wait(timeout=300) == 0
    with open_catalog(db) as catalog:
        assert list_jobs(catalog)[0]["running_in"] is None
    events = _rows(db, "SELECT task_id FROM job_events WHERE kind = 'done'")
    assert sorted(events) == sorted(set(events)) and len(events) == 4  # each task done exactly once


def test_a_lease_held_elsewhere_holds_until_it_expires_and_a_dead_owner_holds_nothing(tmp_path: Path) -> None:
    _archive(tmp_path / "archive", 1)
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        job_id, _ = create_restore_job(catalog, JobSettings(out_dir=str(tmp_path / "out")))
        elsewhere = lease.Owner("another-host", 4242, 1.0)
        dead_here = lease.Owner(socket.gethostname(), os.getpid(), 1.0)  # this pid, but not this process's start
        for owner, expires_in, busy in ((elsewhere, 30, True), (elsewhere, -1, False), (dead_here, 30, False)):
            with catalog.write() as session:
                job = session.get_one(Job, job_id)
                job.lease_owner, job.lease_expires = owner.to_json(), utcnow() + timedelta(seconds=expires_in)
            if busy:
                with pytest.raises(lease.JobBusy, match="job 1 is being run by process 4242 on another-host"):
                    run_job(catalog, job_id, scheduler="synchronous")
                assert _task_counts(tmp_path / "archive.db") == {"pending": 1}  # nothing was done
            else:
                assert run_job(catalog, job_id, scheduler="synchronous").status == "finished"
        with catalog.read() as session:
            assert session.get_one(Job, job_id).lease_owner is None  # released when it finished


def test_the_heartbeat_keeps_a_long_job_leased(tmp_path: Path) -> None:
    _archive(tmp_path / "archive", 1)
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        job_id, _ = create_restore_job(catalog, JobSettings(out_dir=str(tmp_path / "out")))
        with catalog.read() as session:
            first = session.get_one(Job, job_id).lease_expires
        with lease.Heartbeat(catalog, job_id, interval=0.05):
            time.sleep(0.3)
            with catalog.read() as session:
                assert session.get_one(Job, job_id).lease_expires > first
        with catalog.read() as session:
            assert session.get_one(Job, job_id).lease_owner is None


def test_a_claimed_output_path_goes_to_one_job_and_comes_back_when_its_task_fails(tmp_path: Path) -> None:
    sources = _archive(tmp_path / "archive", 2)
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        out = str(tmp_path / "out")
        first, _ = create_restore_job(catalog, JobSettings(out_dir=out))
        second, _ = create_restore_job(catalog, JobSettings(restore=RestoreSettings(saturation=2.0), out_dir=out))
        tasks = show_job(catalog, second)["tasks"]
        assert [t["status"] for t in tasks] == ["skipped", "skipped"]
        assert all(t["reason"] == f"{t['output']}: claimed by job {first}; not overwritten (choose another --out)" for t in tasks)
        sources[0].write_bytes(b"changed after ingest")  # its task in the first job fails
        summary = run_job(catalog, first, scheduler="synchronous")
        assert (summary.done, len(summary.failed)) == (1, 1)
        third, _ = create_restore_job(catalog, JobSettings(restore=RestoreSettings(saturation=2.0), out_dir=out))
        statuses = {Path(t["source"]).name: t["status"] for t in show_job(catalog, third)["tasks"]}
        assert statuses == {sources[0].name: "pending", sources[1].name: "skipped"}  # the failed task's path is free again


def test_publish_never_replaces_a_file_that_appeared_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "result.png"
    path.write_bytes(b"published first by someone else")
    temporary = temporary_name(path)
    temporary.write_bytes(b"ours")
    with pytest.raises(OutputClaimed, match="result.png: claimed by another program; not overwritten"):
        publish(temporary, path)
    assert path.read_bytes() == b"published first by someone else"
    fresh = tmp_path / "fresh.png"
    temporary.rename(temporary_name(fresh))
    assert publish(next(tmp_path.glob(".fresh.png.*.tmp")), fresh) == hashlib.sha256(b"ours").hexdigest()
    assert fresh.read_bytes() == b"ours" and not list(tmp_path.glob(".*.tmp"))
    assert result_task(fresh) is None and fresh.stat().st_nlink == 1
