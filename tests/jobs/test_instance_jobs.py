"""Restore jobs with instances: results made without them stay current, a missing detector
is reported once per job and the scans are restored without it, detections are recorded,
and a crowded scan's instances run as Dask tasks on several workers, with the inline result."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog.db import open_catalog
from catalog.ingest import ingest
from catalog.queries import show_scan
from jobs.run import JobSettings, create_restore_job, result_key, run_job, show_job
from restore.colour import lab_to_rgb
from restore.detections import decode_rle
from restore.settings import InstanceSettings
from restore.models.registry import get_spec
from restore.settings import RestoreSettings
from tests.plugins.models import CROWD, ellipse_instances

PLUGINS = "tests.plugins.models"


def _crowd_scans(folder: Path, count: int = 2) -> list[Path]:
    """Gray group photos: six bright figures where the test-crowd detector finds them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        l_hw = np.full((150, 200), 25.0 + 5 * k, np.float32)
        for instance in ellipse_instances(CROWD, 150, 200):
            x0, y0, x1, y1 = instance.box
            l_hw[y0:y1, x0:x1][instance.mask_hw > 0] = 75.0
        gray = lab_to_rgb(l_hw, np.zeros(l_hw.shape + (2,), np.float32), np.uint8)[..., 0]
        Image.fromarray(gray).save(folder / f"group_{k}.png")
        paths.append(folder / f"group_{k}.png")
    return paths


def test_result_key_without_instances_is_what_it_was_before_instances_existed() -> None:
    settings = RestoreSettings()
    before = {  # result_key's document as it was written before instance settings existed
        "settings": {"model": "lite", "saturation": 1.15, "working_scale": 3.0, "output_format": None, "include_colour": False},
        "weights_sha256": get_spec("lite").weights_sha256,
        "hints_sha256": None,
    }
    assert result_key(settings) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    with_instances = RestoreSettings(instances=InstanceSettings(detector="test-one"))
    assert result_key(with_instances) != result_key(settings)
    assert result_key(RestoreSettings(instances=InstanceSettings(detector="test-one", min_score=0.5))) != result_key(with_instances)


def test_the_default_saturation_keys_results_by_the_gain_it_applies() -> None:
    # Unhinted scans keep the keys they had under the old constant 1.15 (no needless re-runs);
    # a hinted scan's default result is the one an explicit --saturation 1 makes.
    assert result_key(RestoreSettings()) == result_key(RestoreSettings(saturation=1.15))
    hinted = "ab" * 32
    assert result_key(RestoreSettings(), hinted) == result_key(RestoreSettings(saturation=1.0), hinted)
    assert result_key(RestoreSettings(), hinted) != result_key(RestoreSettings(saturation=1.15), hinted)


def test_job_settings_with_instances_round_trip_through_json() -> None:
    settings = JobSettings(restore=RestoreSettings(instances=InstanceSettings(detector="test-crowd", max_instances=3)), out_dir="x")
    assert JobSettings.from_json(settings.to_json()) == settings
    assert JobSettings.from_json(JobSettings().to_json()).restore.instances is None


def test_missing_detector_weights_are_reported_once_and_scans_restored_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(tmp_path / "no-models"))
    _crowd_scans(tmp_path / "archive", 3)
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        wanted = RestoreSettings(model="ramp", instances=InstanceSettings())  # maskrcnn_resnet50_fpn, not imported
        job_id, _ = create_restore_job(catalog, JobSettings(restore=wanted, out_dir=str(tmp_path / "out")))
        summary = run_job(catalog, job_id, scheduler="synchronous")
        assert (summary.done, summary.failed, summary.instances) == (3, [], 0)
        assert len(summary.warnings) == 1
        assert summary.warnings[0].startswith("--instances: detector 'maskrcnn_resnet50_fpn' is not installed: download it (https://")
        assert summary.warnings[0].endswith("and run `photochrom models import maskrcnn_resnet50_fpn FILE`; restoring without instances")
        detail = show_job(catalog, job_id)
        assert [e["kind"] for e in detail["events"]].count("warning") == 1
        assert detail["settings"]["restore"]["instances"] is None  # the job records what it ran
        assert all(t["instances"] is None for t in detail["tasks"])
        # Recorded as what they are: plain results, current for a plain restore.
        _, current = create_restore_job(catalog, JobSettings(restore=RestoreSettings(model="ramp"), out_dir=str(tmp_path / "again")))
        assert current == 3


def _outcomes(progress: list[object]):  # noqa: ANN202
    return lambda done, total, outcome: progress.append(outcome) if outcome is not None else None


def test_a_crowded_scan_spreads_its_instances_over_dask_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dask.distributed import Client, LocalCluster, get_task_stream

    monkeypatch.setenv("PHOTOCHROM_MODEL_MODULES", PLUGINS)  # workers import the test model and detector
    sources = _crowd_scans(tmp_path / "archive", 1)
    instances = InstanceSettings(detector="test-crowd", min_score=0.5, min_area=0.0)
    settings = RestoreSettings(model="test-patch-mean", instances=instances)  # 6 instances, batches of 2
    distributed: list[object] = []
    with open_catalog(tmp_path / "dask.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        job_id, _ = create_restore_job(catalog, JobSettings(restore=settings, out_dir=str(tmp_path / "dask")))
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client, get_task_stream(client) as stream:  # sees every client's tasks
                summary = run_job(catalog, job_id, scheduler=cluster.scheduler_address, progress=_outcomes(distributed))
        assert (summary.done, summary.failed, summary.instances) == (1, [], 6)
        detail = show_job(catalog, job_id)
        scan = show_scan(catalog, "1")
    assert [o.instance_tasks for o in distributed] == [3]  # the scan's 3 batches ran as tasks
    instance_tasks = [t for t in stream.data if str(t["key"]).startswith("instances-")]
    assert len(instance_tasks) == 3
    assert len({t["worker"] for t in instance_tasks}) == 2  # not only the scan's own worker
    record = detail["tasks"][0]["instances"]
    assert (record["detector"], record["dask_tasks"], len(record["instances"])) == ("test-crowd", 3, 6)
    assert decode_rle(record["instances"][0]["mask_rle"]).shape == tuple(record["size"])
    assert scan["results"][0]["instances"] == 6

    inline: list[object] = []
    with open_catalog(tmp_path / "inline.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        job_id, _ = create_restore_job(catalog, JobSettings(restore=settings, out_dir=str(tmp_path / "inline")))
        assert run_job(catalog, job_id, scheduler="synchronous", progress=_outcomes(inline)).done == 1
    assert [o.instance_tasks for o in inline] == [0]  # no Dask worker: computed in the scan's process
    for source in sources:
        spread, alone = (np.asarray(Image.open(tmp_path / out / source.name)) for out in ("dask", "inline"))
        np.testing.assert_array_equal(spread, alone)
