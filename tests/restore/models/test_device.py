"""Where the torch models run: PHOTOCHROM_DEVICE / `photochrom --device`, the CPU without a GPU,
and, on a machine with a CUDA GPU, the same results there as on the CPU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from typer.testing import CliRunner

from cli import app
from restore.models.base import ModelError
from restore.models.device import DEVICE_VARIABLE, inference_device, resolve_device
from restore.models.lite import Lite
from restore.pipeline import restore_file
from restore.settings import RestoreSettings
from tests.conftest import gray_u8

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")


def test_device_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("AUTO").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:", "cuda:x", "cpu:0"):
        with pytest.raises(ModelError, match="expected auto, cpu, cuda or cuda:N"):
            resolve_device(bad)
    with pytest.raises(ModelError, match="cuda:99"):
        resolve_device("cuda:99")  # no GPU here, or not 100 of them


def test_models_follow_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_VARIABLE, "cpu")
    model = Lite()
    assert model.device == torch.device("cpu")
    assert {p.device for p in model.net.parameters()} == {torch.device("cpu")}
    monkeypatch.setenv(DEVICE_VARIABLE, "tpu")
    with pytest.raises(ModelError, match=f"^{DEVICE_VARIABLE}: device 'tpu'"):
        inference_device()


def test_the_global_option_sets_the_variable_or_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)
    runner = CliRunner()
    refused = runner.invoke(app, ["--device", "gpu0", "models", "list"])
    assert refused.exit_code == 2 and "--device" in refused.output
    assert DEVICE_VARIABLE not in os.environ
    accepted = runner.invoke(app, ["--device", "cpu", "models", "list", "--json"])
    assert accepted.exit_code == 0, accepted.output
    assert os.environ[DEVICE_VARIABLE] == "cpu"


def test_a_bad_device_variable_is_one_line_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_VARIABLE, "tpu")
    scan = tmp_path / "scan.tif"
    tifffile.imwrite(scan, gray_u8())
    refused = CliRunner().invoke(app, ["colorize", str(scan), "-o", str(tmp_path / "out")])
    assert refused.exit_code == 2
    assert refused.output.strip().splitlines() == [f"photochrom: error: {DEVICE_VARIABLE}: device 'tpu': expected auto, cpu, cuda or cuda:N"]
    assert not (tmp_path / "out").exists()


@needs_cuda
def test_lite_on_the_gpu_gives_the_cpu_s_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    l_bhw = rng.uniform(0, 100, (3, 224, 224)).astype(np.float32)
    hint_ab = np.zeros((3, 224, 224, 2), np.float32)
    hint_mask = np.zeros((3, 224, 224), np.float32)
    hint_ab[1, 100, 120], hint_mask[1, 100, 120] = (40.0, -20.0), 1.0
    results = {}
    for name in ("cpu", "cuda"):
        monkeypatch.setenv(DEVICE_VARIABLE, name)
        model = Lite()
        assert model.device.type == name
        results[name] = model.colorize(l_bhw, hint_ab, hint_mask)
    assert np.abs(results["cuda"] - results["cpu"]).max() < 0.05  # a*b* units, of about +-100


@needs_cuda
def test_a_restore_on_the_gpu_matches_the_cpu_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scan = tmp_path / "scan.tif"
    tifffile.imwrite(scan, gray_u8(600, 900).astype(np.uint16) * 257)
    outputs = {}
    for name in ("cpu", "cuda"):
        monkeypatch.setenv(DEVICE_VARIABLE, name)
        result = restore_file(scan, tmp_path / name / "scan.tif", Lite(), RestoreSettings(), source_sha256="0" * 64)
        outputs[name] = tifffile.imread(result.output).astype(np.int32)
    assert outputs["cuda"].shape == (600, 900, 3)
    assert np.abs(outputs["cuda"] - outputs["cpu"]).max() <= 65535 // 200  # within 0.5% of the range
