"""A model whose a*b* are not finite (NaN or infinity: corrupt weights) fails the scan with
that reason, in the global pass and in the patch pass alike, through `colorize` and through
a restore job; no result is written (not a gray image)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from catalog.db import open_catalog
from catalog.ingest import ingest
from cli import app
from jobs.run import JobSettings, create_restore_job, run_job
from restore.instances import InstancePass
from restore.settings import InstanceSettings
from restore.models.base import ModelError, ModelSpec
from restore.models.detectors import create_detector
from restore.models.ramp import ramp_colours
from restore.passes import chroma_pass, colorize_working, global_pass
from restore.pipeline import restore_file
from restore.settings import RestoreSettings
from restore.scanio.read import read_scan
from restore.scanio.probe import ScanError
from tests.conftest import gray_u8
from tests.plugins import models as _test_models  # noqa: F401  registers test-nan here

REASON = "model {} produced non-finite colours (NaN/inf); its weights may be corrupt"
SIDE = 32
SPEC = ModelSpec(name="stub", description="test", input_px=SIDE, receptive_field_px=8, takes_hints=True, licence="test", batch_size=2)


class Planted:
    """Ramp colours, except for one value of the `call`-th call's output (0: the global pass)."""

    spec = SPEC

    def __init__(self, call: int, index: tuple[int, int, int, int], value: float) -> None:
        self.call, self.index, self.value, self.calls = call, index, value, 0

    def colorize(self, l_bhw: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        out = ramp_colours(l_bhw, hint_ab, hint_mask)
        if self.calls == self.call:
            b, y, x, c = self.index
            out[b % len(out), y, x, c] = self.value
        self.calls += 1
        return out


def _l_work(h: int = 70, w: int = 90) -> np.ndarray:
    return (gray_u8(h, w).astype(np.float32) / 2.55).astype(np.float32)


@settings(max_examples=30, deadline=None)
@given(
    index=st.tuples(st.integers(0, 1), st.integers(0, SIDE - 1), st.integers(0, SIDE - 1), st.integers(0, 1)),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_a_non_finite_value_anywhere_in_the_global_pass_is_refused(index: tuple[int, int, int, int], value: float) -> None:
    with pytest.raises(ModelError, match=r"model stub produced non-finite colours \(NaN/inf\)"):
        global_pass(_l_work(), Planted(0, index, value))


@settings(max_examples=30, deadline=None)
@given(
    call=st.integers(0, 5),
    index=st.tuples(st.integers(0, 1), st.integers(0, SIDE - 1), st.integers(0, SIDE - 1), st.integers(0, 1)),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_a_non_finite_value_in_any_patch_batch_is_refused(call: int, index: tuple[int, int, int, int], value: float) -> None:
    l_work = _l_work()
    context = ramp_colours(l_work, np.zeros(l_work.shape + (2,), np.float32), np.zeros(l_work.shape, np.float32))
    model = Planted(call, index, value)
    with pytest.raises(ModelError, match="produced non-finite colours"):
        colorize_working(l_work, model, context)
    assert model.calls > call  # it was that batch that failed, not a later one


def test_finite_colours_pass() -> None:
    l_work = _l_work()
    ab = global_pass(l_work, Planted(-1, (0, 0, 0, 0), 0.0))
    assert ab.shape == (SIDE, SIDE, 2) and np.isfinite(ab).all()


def test_a_non_finite_value_from_an_instance_crop_is_refused(tmp_path: Path) -> None:
    scan = read_scan(_scan(tmp_path, "figure.png"))
    settings = RestoreSettings(model="stub", instances=InstanceSettings(detector="test-one", min_area=0.0))
    instances = InstancePass(create_detector("test-one"))
    counting = Planted(-1, (0, 0, 0, 0), 0.0)
    chroma_pass(scan, counting, RestoreSettings(model="stub"), {})
    calls_without_instances = counting.calls
    ab, detections, matched = chroma_pass(scan, Planted(-1, (0, 0, 0, 0), 0.0), settings, {}, instance_pass=instances)
    assert detections is not None and len(detections.instances) == 1 and np.isfinite(ab).all() and matched is None
    with pytest.raises(ModelError, match="produced non-finite colours"):  # only the crop's call gives NaN
        chroma_pass(scan, Planted(calls_without_instances, (0, 5, 7, 1), np.nan), settings, {}, instance_pass=instances)


def _scan(folder: Path, name: str = "street.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.fromarray(gray_u8(60, 80)).save(path)
    return path


def test_restore_file_fails_the_scan_and_writes_nothing(tmp_path: Path) -> None:
    source = _scan(tmp_path / "scans")
    out = tmp_path / "out.png"
    with pytest.raises(ScanError) as raised:
        restore_file(source, out, _test_models.NotFinite(), RestoreSettings(model="test-nan"), source_sha256="0" * 64)
    assert str(raised.value) == f"{source}: {REASON.format('test-nan')}"
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "scans"]


def test_colorize_reports_the_scan_failed_and_exits_1(tmp_path: Path) -> None:
    source = _scan(tmp_path / "scans")
    good = _scan(tmp_path / "scans", "second.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["colorize", str(source), str(good), "-o", str(out), "--model", "test-nan", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["written"] == []
    assert sorted((f["path"], f["reason"]) for f in report["failed"]) == sorted(
        (str(p), REASON.format("test-nan")) for p in (source, good)
    )
    assert not any(out.rglob("*.png")) if out.exists() else True
    human = CliRunner().invoke(app, ["colorize", str(source), "-o", str(out), "--model", "test-nan"])
    assert human.exit_code == 1 and f"failed: {source}: {REASON.format('test-nan')}" in human.stderr
    assert "Traceback" not in human.output


def test_a_restore_job_fails_the_scan_with_the_reason(tmp_path: Path) -> None:
    source = _scan(tmp_path / "archive")
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        job_id, _ = create_restore_job(catalog, JobSettings(restore=RestoreSettings(model="test-nan"), out_dir=str(tmp_path / "out")))
        summary = run_job(catalog, job_id, scheduler="synchronous")
    assert summary.done == 0
    assert [(f["path"], f["reason"]) for f in summary.failed] == [(str(source.resolve()), f"{source.resolve()}: {REASON.format('test-nan')}")]
    assert not any((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


def test_restore_command_exits_1(tmp_path: Path) -> None:
    source = _scan(tmp_path / "archive")
    db = str(tmp_path / "archive.db")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(tmp_path / "archive"), "--db", db]).exit_code == 0
    result = runner.invoke(
        app, ["restore", "--db", db, "--model", "test-nan", "--scheduler", "synchronous", "--out", str(tmp_path / "out"), "--json"]
    )
    assert result.exit_code == 1, result.output
    assert REASON.format("test-nan") in result.output and "Traceback" not in result.output
    assert not any((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True
    assert source.is_file()
