"""The repair evaluation on two tiny photos, with segmenters whose answers are known: one that
sees exactly the damage drawn (F1 1, nothing touched outside the damage) and one that sees
nothing (recall 0, nothing repaired)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

from jobs.evaluate_repair import damaged_photo, evaluate_repair
from restore.settings import RepairSettings

SPEC = SimpleNamespace(name="fake", weights_sha256=None, receptive_field_px=16, alignment_px=1)


def make_photos(folder: Path) -> list[Path]:
    folder.mkdir()
    y, x = np.mgrid[0:96, 0:128]
    ramp = np.stack([40 + x, 60 + y, np.full_like(x, 150)], -1).astype(np.uint8)
    cv2.circle(ramp, (40, 50), 20, (200, 180, 60), -1)
    Image.fromarray(ramp).save(folder / "a_ramp.png")
    rng = np.random.default_rng(0)
    blocks = np.kron(rng.integers(30, 220, (6, 8, 3)), np.ones((16, 16, 1))).astype(np.uint8)
    Image.fromarray(blocks).save(folder / "b_blocks.png")
    return sorted(folder.iterdir())


class OracleSegmenter:
    """Probability 1 exactly on the damage evaluate_repair draws on these photos, 0 elsewhere
    (on clean photos too): found by recognising the damaged image."""

    spec = SPEC

    def __init__(self, photos: list[Path], seed: int) -> None:
        self.known = [damaged_photo(path, seed)[1:] for path in photos]

    def probability(self, l_bhw: np.ndarray) -> np.ndarray:
        out = np.zeros(l_bhw.shape, np.float32)
        for i, l_hw in enumerate(l_bhw):
            for damaged, truth in self.known:
                if damaged.shape == l_hw.shape and np.array_equal(damaged, l_hw):
                    out[i] = truth
        return out


class BlindSegmenter:
    spec = SPEC

    def probability(self, l_bhw: np.ndarray) -> np.ndarray:
        return np.zeros(l_bhw.shape, np.float32)


def test_a_segmenter_that_sees_the_damage_scores_f1_one(tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "photos")
    assert all(damaged_photo(p, 5)[2].any() for p in photos)  # the test means something
    settings = RepairSettings(threshold=0.5, margin_px=1, method="directional")
    report = evaluate_repair(photos, OracleSegmenter(photos, 5), settings, seed=5)
    json.dumps(report)  # JSON-able
    assert report["photos"] == 2
    ours = report["ours"]
    assert ours["precision"] == 1.0 and ours["recall"] == 1.0 and ours["f1"] == 1.0
    assert ours["max_change_outside_mask"] == 0.0
    assert ours["false_repair_fraction"] == 0.0  # the oracle flags nothing on clean photos
    # Filling the damage beats leaving it, by far.
    assert ours["psnr_inside"] > report["damaged"]["psnr_inside"] + 5
    assert ours["psnr_whole"] > report["damaged"]["psnr_whole"] + 5
    assert report["opencv_true_mask"]["psnr_inside"] > report["damaged"]["psnr_inside"] + 5
    assert report["settings"]["method"] == "directional" and report["seed"] == 5
    assert report["segmenter"] == {"name": "fake", "weights_sha256": None}


def test_a_segmenter_that_sees_nothing_repairs_nothing(tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "photos")
    report = evaluate_repair(photos, BlindSegmenter(), RepairSettings(), seed=5)
    ours, damaged = report["ours"], report["damaged"]
    assert ours["recall"] == 0.0 and ours["precision"] is None and ours["f1"] == 0.0
    assert ours["repair_fraction"] == 0.0 and ours["false_repair_fraction"] == 0.0
    assert ours["psnr_inside"] == pytest.approx(damaged["psnr_inside"])
    assert ours["psnr_whole"] == pytest.approx(damaged["psnr_whole"])
    # The damage itself, independently: PSNR of the first photo's damaged L* inside its damage.
    clean, hurt, truth = damaged_photo(photos[0], 5)
    first = 10 * np.log10(100**2 / np.mean((hurt[truth].astype(np.float64) - clean[truth]) ** 2))
    assert evaluate_repair(photos[:1], BlindSegmenter(), RepairSettings(), seed=5)["damaged"]["psnr_inside"] == pytest.approx(first)


def test_limit_takes_the_first_photos_and_each_photo_keeps_its_damage(tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "photos")
    both = evaluate_repair(photos, BlindSegmenter(), RepairSettings(), seed=1)
    first = evaluate_repair(photos, BlindSegmenter(), RepairSettings(), seed=1, limit=1)
    assert first["photos"] == 1
    second_alone = evaluate_repair(photos[1:], BlindSegmenter(), RepairSettings(), seed=1)
    # A photo's damage depends on the seed and its name, not on the others evaluated.
    mean = (first["damaged"]["psnr_whole"] + second_alone["damaged"]["psnr_whole"]) / 2
    assert both["damaged"]["psnr_whole"] == pytest.approx(mean)
