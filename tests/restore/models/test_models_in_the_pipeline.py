"""Every kind of model through the same pipeline: the shipped default, and imported
published architectures (random weights laid out as the official files). Sizes, the
scan's own lightness, a curator hint's colour where it was given, the weights' SHA-256
in the provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hints.schema import load_hint_file
from restore.colour import rgb_to_lab
from restore.models.imported import import_checkpoint
from restore.models.registry import create_model
from restore.pipeline import restore_file
from restore.settings import RestoreSettings
from tests.restore.models import test_icolorit, test_zhang


def official_file(name: str, path: Path) -> Path:
    if name.startswith("icolorit"):
        torch.save(test_icolorit.training_checkpoint(name), path)
    else:
        torch.save(test_zhang.official_checkpoint(name), path)
    return path


@pytest.mark.parametrize("name", ["lite", "eccv16", "siggraph17", "icolorit-tiny"])
def test_a_model_restores_a_scan_keeping_its_lightness_and_the_hint(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(tmp_path / "models"))
    if name != "lite":
        import_checkpoint(name, official_file(name, tmp_path / "official.pth"))
    rng = np.random.default_rng(0)
    gray = np.where(np.arange(300)[None, :] < 150, 80, 180).repeat(200, axis=0) + rng.integers(-3, 4, (200, 300))
    scan = tmp_path / "scan.png"
    Image.fromarray(gray.astype(np.uint8)).save(scan)
    hint_path = tmp_path / "scan.json"
    hint_path.write_text(json.dumps({"schema": "photochrom.hints/1", "points": [{"x": 75, "y": 100, "color": {"lab": [35, 20, 25]}, "radius": 4}]}))
    model = create_model(name)
    out = tmp_path / "out.png"
    restore_file(scan, out, model, RestoreSettings(model=name), source_sha256="0" * 64, hint_file=load_hint_file(hint_path))
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == (200, 300, 3)
    lab, scan_l = rgb_to_lab(result), rgb_to_lab(np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2))[..., 0]
    assert np.abs(lab[..., 0] - scan_l).max() < 0.6  # the scan's own lightness (8-bit rounding)
    assert np.hypot(*(lab[100, 75, 1:] - (20.0, 25.0))) <= 3.0
    assert model.spec.weights_sha256 and model.spec.weights_sha256.encode() in out.read_bytes()
