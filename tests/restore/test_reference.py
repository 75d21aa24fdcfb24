"""Series references (restore/reference.py): a reference's colours reach a scan of the same
scene, reframed, rotated, rescaled and lit differently, and nothing changes with an
unrelated one; in the pipeline they bring the result closer to the truth, curator hints
still win, and the result records the reference."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hints.schema import load_hint_file
from restore.colour import lightness_to_gray, rgb_to_lab
from restore.models.registry import shared_model
from restore.pipeline import restore_file
from restore.reference import ReferenceError, match_reference, reference_from_array, reference_from_file
from restore.scanio.write import result_provenance
from restore.settings import RestoreSettings


def scene(seed: int, height: int = 420, width: int = 560) -> np.ndarray:
    """A colourful made-up scene: overlapping shapes of many colours over a textured ground."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 2.0)
    rgb = np.clip(np.array(rng.integers(60, 200, 3), np.float32) + 12 * noise[..., None], 0, 255).astype(np.uint8)
    for _ in range(90):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            w, h = int(rng.integers(10, 80)), int(rng.integers(10, 80))
            cv2.rectangle(rgb, (x, y), (x + w, y + h), colour, -1)
        else:
            cv2.circle(rgb, (x, y), int(rng.integers(5, 40)), colour, -1)
    return rgb


def views(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(target, reference): two framings of one scene; the reference rotated 8 degrees,
    enlarged 1.15x, shifted, and darker with more contrast."""
    height, width = rgb.shape[:2]
    target = rgb[40 : height - 60, 50 : width - 70]
    turn = cv2.getRotationMatrix2D((width / 2 + 20, height / 2 - 10), 8.0, 1.15)
    reference = cv2.warpAffine(rgb, turn, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    reference = np.clip(255 * (reference / 255.0) ** 1.2 * 0.92, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(target), reference


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_a_reference_of_the_same_scene_matches_with_its_colours() -> None:
    target, reference = views(scene(1))
    truth = rgb_to_lab(target)
    match = match_reference(truth[..., 0], reference_from_array(reference))
    assert match.planes >= 1 and match.inliers >= 50
    confident = match.confidence_hw > 0.5
    assert match.coverage > 0.5
    # the reference's a*b* where it matched confidently is the scan's own (up to the darkening)
    error = np.hypot(*(match.ab_hw2[confident] - truth[..., 1:][confident]).T)
    assert np.median(error) < 3.0


def test_an_unrelated_reference_matches_nothing() -> None:
    target, _ = views(scene(1))
    match = match_reference(rgb_to_lab(target)[..., 0], reference_from_array(scene(2)))
    assert match.planes == 0 and match.coverage == 0.0 and not match.confidence_hw.any()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pair")
    target, reference = views(scene(1))
    Image.fromarray(target).save(folder / "truth.png")
    Image.fromarray(lightness_to_gray(rgb_to_lab(target)[..., 0], np.uint16)).save(folder / "scan.png")
    Image.fromarray(reference).save(folder / "reference.jpg", quality=95)
    Image.fromarray(scene(2)).save(folder / "unrelated.png")
    return {name: folder / f"{name}.{ext}" for name, ext in (("truth", "png"), ("scan", "png"), ("reference", "jpg"), ("unrelated", "png"))}


def _restore(scan: Path, out: Path, reference: Path | None = None, hints: Path | None = None) -> np.ndarray:
    restore_file(
        scan, out, shared_model("lite"), RestoreSettings(model="lite"), source_sha256="0" * 64,
        reference=reference_from_file(reference) if reference else None, hint_file=load_hint_file(hints) if hints else None,
    )
    return np.asarray(Image.open(out).convert("RGB"))


def test_the_reference_brings_the_result_to_the_truth_and_is_recorded(pair: dict[str, Path], tmp_path: Path) -> None:
    truth = np.asarray(Image.open(pair["truth"]).convert("RGB"))
    alone = _restore(pair["scan"], tmp_path / "alone.png")
    guided = _restore(pair["scan"], tmp_path / "guided.png", pair["reference"])
    assert guided.shape == truth.shape
    assert psnr(guided, truth) > psnr(alone, truth) + 3.0
    recorded = json.loads(result_provenance(tmp_path / "guided.png")["Reference"])
    assert recorded["sha256"] == reference_from_file(pair["reference"]).sha256
    assert recorded["name"] == "reference.jpg" and recorded["planes"] >= 1 and recorded["coverage"] > 0.5
    assert "Reference" not in result_provenance(tmp_path / "alone.png")
    # the scan's own lightness stays: the reference gives colour only
    np.testing.assert_allclose(rgb_to_lab(guided)[..., 0], rgb_to_lab(alone)[..., 0], atol=0.6)


def test_an_unrelated_reference_changes_nothing(pair: dict[str, Path], tmp_path: Path) -> None:
    alone = _restore(pair["scan"], tmp_path / "alone.png")
    unrelated = _restore(pair["scan"], tmp_path / "unrelated.png", pair["unrelated"])
    np.testing.assert_array_equal(unrelated, alone)
    assert json.loads(result_provenance(tmp_path / "unrelated.png")["Reference"])["planes"] == 0


def test_curator_hints_win_over_the_reference(pair: dict[str, Path], tmp_path: Path) -> None:
    truth_lab = rgb_to_lab(np.asarray(Image.open(pair["truth"]).convert("RGB")))
    height, width = truth_lab.shape[:2]
    x, y = width // 2, height // 2
    wanted = np.array([-30.0, 40.0]) if truth_lab[y, x, 2] < 20 else np.array([40.0, -35.0])  # far from the truth there
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps({"schema": "photochrom.hints/1", "points": [{"x": x, "y": y, "color": {"lab": [float(truth_lab[y, x, 0]), *wanted]}, "radius": 3}]}))
    result = rgb_to_lab(_restore(pair["scan"], tmp_path / "hinted.png", pair["reference"], hints))
    assert np.hypot(*(result[y, x, 1:] - wanted)) < 4.0


def test_references_that_cannot_be_used_are_one_line_errors(tmp_path: Path) -> None:
    gray = tmp_path / "gray.png"
    Image.fromarray(np.tile(np.arange(200, dtype=np.uint8), (50, 1))).save(gray)
    with pytest.raises(ReferenceError, match=r"gray\.png: it has no colour"):
        reference_from_file(gray)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG" * 10)
    with pytest.raises(ReferenceError, match=r"junk\.jpg: ") as info:
        reference_from_file(junk)
    assert "\n" not in str(info.value)
    with pytest.raises(ReferenceError, match="missing"):
        reference_from_file(tmp_path / "missing.png")
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    with pytest.raises(ReferenceError, match=r"fifo\.png: .*FIFO"):
        reference_from_file(fifo)  # refused without reading: no hang
