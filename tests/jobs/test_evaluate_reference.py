"""`evaluate-reference`: pairs made from photos, the naive per-band baseline, and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from cli import app
from jobs.evaluate_reference import BANDS, naive_transfer, reference_pair
from tests.restore.test_reference import scene


def test_a_pair_is_two_overlapping_views_of_the_photo() -> None:
    photo = scene(3, 300, 400)
    target, reference = reference_pair(photo, np.random.default_rng(0))
    assert target.shape == reference.shape == (225, 300, 3)
    assert not np.array_equal(target, reference)
    again = reference_pair(photo, np.random.default_rng(0))
    np.testing.assert_array_equal(again[1], reference)  # deterministic given the generator


def test_the_naive_baseline_takes_the_references_statistics_per_band() -> None:
    rng = np.random.default_rng(0)
    result = np.zeros((64, 64, 3), np.float32)
    result[..., 0] = np.linspace(1, 99, 64)[None, :]
    result[..., 1:] = rng.normal(0, 3, (64, 64, 2))
    reference = result.copy()
    reference[..., 1] = np.where(reference[..., 0] < 50, 30.0, -20.0) + rng.normal(0, 2, (64, 64))
    moved = naive_transfer(result, reference)
    dark, light = result[..., 0] < 100 / BANDS, result[..., 0] > 100 - 100 / BANDS
    assert abs(moved[..., 1][dark].mean() - 30) < 1 and abs(moved[..., 1][light].mean() + 20) < 1
    np.testing.assert_array_equal(moved[..., 0], result[..., 0])  # lightness untouched


def test_evaluate_reference_reports_every_condition(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(3):
        Image.fromarray(scene(seed, 300, 400)).save(photos / f"p{seed}.png")
    result = CliRunner().invoke(app, ["evaluate-reference", str(photos), "--model", "ramp", "--out", str(tmp_path / "ev"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["gain_over_none"] > 0.5 and summary["coverage"] > 0.05  # made-up scenes; dev photos: docs/benchmarks.md
    assert abs(summary["unrelated_change"]) < 0.3
    report = json.loads((tmp_path / "ev" / "reference.json").read_text())
    assert len(report["rows"]) == 3 and {"psnr_naive", "ciede2000_reference"} <= set(report["rows"][0])
    assert "| with an unrelated reference |" in (tmp_path / "ev" / "reference.md").read_text()
    # a folder of one photo cannot make an unrelated reference: one line, exit 2
    (photos / "p1.png").unlink()
    (photos / "p2.png").unlink()
    result = CliRunner().invoke(app, ["evaluate-reference", str(photos), "--model", "ramp", "--out", str(tmp_path / "ev2")])
    assert result.exit_code == 2 and "at least two photos" in result.output
