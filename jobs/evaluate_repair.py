"""Damage repair measured on clean photos with synthetic damage: detection precision, recall
and F1 against the damage drawn, the repaired lightness against the clean photo, and how much
of a clean photo would be repaired for nothing.

For each photo (CIE L* of its sRGB), `synthesize_damage` draws damage with a seed of its own
(the run's seed and the photo's name, so a photo's damage does not depend on which others
are evaluated with it); then the whole repair runs on it (`repair_lightness`, with the
settings given). Measured, over all photos:

- detection at pixel level, on the detector's mask before its margin (`detect_damage` with
  margin 0), with a tolerance of 1 px: a detected pixel is right if a damaged pixel lies
  within 1 px of it (8-neighbourhood), a damaged pixel is found if a detected one does;
  counts pooled over all photos. Precision is None where nothing was detected.
- PSNR of L* (peak 100) inside the true damage and over the whole photo, repaired against
  clean, averaged over photos (a photo without damage has no "inside"); beside it the same
  for OpenCV's Telea fill given the true mask (the reference: a perfect detector and a
  standard fill) and for the damaged photo itself (no repair).
- the largest change outside the repair's mask (must be 0: nothing else is touched);
- false repairs: the share of pixels the repair would fill on the clean photos with harmless
  scan texture added (`add_nuisance`: grain, blur, JPEG, halftone), no damage at all.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from restore.colour import rgb_to_lightness
from restore.repair.inpaint import TELEA_RADIUS_PX
from restore.repair.repair import Segmenter, detect_damage, repair_lightness
from restore.repair.synth import add_nuisance, synthesize_damage
from restore.settings import RepairSettings

PEAK_L = 100.0
#: An exact match would be an infinite PSNR; its error is floored at this (L*^2), 140 dB.
MSE_FLOOR = 1e-10
TOLERANCE_PX = 1  # detection tolerance (a 3 x 3 neighbourhood)


def evaluate_repair(photos: list[Path], segmenter: Segmenter, settings: RepairSettings, *, seed: int = 0, limit: int | None = None) -> dict:
    """The measurements above for `photos` (the first `limit` of them, if given), as a
    JSON-able dict: {"photos", "ours", "opencv_true_mask", "damaged", "settings", "segmenter",
    "seed"}; "segmenter" is the name and weights' SHA-256 of the segmenter actually run."""
    photos = list(photos)[:limit] if limit is not None else list(photos)
    counts = {"detected": 0, "detected_right": 0, "damaged": 0, "damaged_found": 0, "false_flagged": 0, "pixels": 0}
    psnr: dict[str, dict[str, list[float]]] = {k: {"inside": [], "whole": []} for k in ("ours", "opencv_true_mask", "damaged")}
    max_change_outside = 0.0
    repair_fractions: list[float] = []
    damage_fractions: list[float] = []
    for path in photos:
        clean, damaged, truth = damaged_photo(path, seed)
        damage_fractions.append(float(truth.mean()))

        repair = repair_lightness(damaged, segmenter, settings)
        repair_fractions.append(repair.fraction)
        outside = ~repair.mask_hw
        if outside.any():
            max_change_outside = max(max_change_outside, float(np.abs(repair.l_hw[outside] - damaged[outside]).max()))

        detected = detect_damage(damaged, segmenter, settings.threshold, margin_px=0)
        counts["detected"] += int(detected.sum())
        counts["detected_right"] += int((detected & _near(truth)).sum())
        counts["damaged"] += int(truth.sum())
        counts["damaged_found"] += int((truth & _near(detected)).sum())

        reference = cv2.inpaint(damaged, truth.view(np.uint8), TELEA_RADIUS_PX, cv2.INPAINT_TELEA) if truth.any() else damaged
        for name, result in (("ours", repair.l_hw), ("opencv_true_mask", reference), ("damaged", damaged)):
            psnr[name]["whole"].append(_psnr(result, clean))
            if truth.any():
                psnr[name]["inside"].append(_psnr(result[truth], clean[truth]))

        # The same photo undamaged, with scan texture: whatever is flagged is repaired for nothing.
        textured = add_nuisance(clean, np.random.default_rng([seed, _name_key(path), 1]))
        counts["false_flagged"] += int(detect_damage(textured, segmenter, settings.threshold, settings.margin_px).sum())
        counts["pixels"] += textured.size

    precision = counts["detected_right"] / counts["detected"] if counts["detected"] else None
    recall = counts["damaged_found"] / counts["damaged"] if counts["damaged"] else None
    f1 = 2 * precision * recall / (precision + recall) if precision is not None and recall is not None and precision + recall > 0 else 0.0
    return {
        "photos": len(photos),
        "ours": {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            **_means(psnr["ours"]),
            "max_change_outside_mask": max_change_outside,
            "false_repair_fraction": counts["false_flagged"] / counts["pixels"] if counts["pixels"] else 0.0,
            "repair_fraction": float(np.mean(repair_fractions)) if repair_fractions else 0.0,
        },
        "opencv_true_mask": _means(psnr["opencv_true_mask"]),
        "damaged": {**_means(psnr["damaged"]), "damage_fraction": float(np.mean(damage_fractions)) if damage_fractions else 0.0},
        "settings": asdict(settings),
        "segmenter": {"name": segmenter.spec.name, "weights_sha256": segmenter.spec.weights_sha256},
        "seed": seed,
    }


def damaged_photo(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clean L*, damaged L*, mask of the damage) of a photo file, as evaluate_repair makes
    them: the damage's seed is the run's and the photo's name."""
    clean = photo_lightness(path)
    damaged, truth = synthesize_damage(clean, np.random.default_rng([seed, _name_key(path)]))
    return clean, damaged, truth


def _name_key(path: Path) -> int:
    return zlib.crc32(path.name.encode())


def photo_lightness(path: Path) -> np.ndarray:
    """A colour or gray photo file -> H x W float32 CIE L* (0..100)."""
    with Image.open(path) as image:
        return rgb_to_lightness(np.asarray(image.convert("RGB")))


def _near(mask_hw: np.ndarray) -> np.ndarray:
    """Pixels within TOLERANCE_PX (8-neighbourhood) of a pixel of `mask_hw`."""
    size = 2 * TOLERANCE_PX + 1
    return cv2.dilate(mask_hw.view(np.uint8), np.ones((size, size), np.uint8)).view(bool)


def _psnr(result: np.ndarray, clean: np.ndarray) -> float:
    mse = float(np.mean((result.astype(np.float64) - clean.astype(np.float64)) ** 2))
    return float(10 * np.log10(PEAK_L**2 / max(mse, MSE_FLOOR)))


def _means(values: dict[str, list[float]]) -> dict[str, float | None]:
    return {f"psnr_{k}": float(np.mean(v)) if v else None for k, v in values.items()}


def repair_table(report: dict) -> str:
    """The report as the markdown table docs/benchmarks.md shows."""
    ours, reference, damaged = report["ours"], report["opencv_true_mask"], report["damaged"]

    def number(value: float | None, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = [
        f"{report['photos']} photos, seed {report['seed']}, segmenter {report['segmenter']['name']} "
        f"({str(report['segmenter']['weights_sha256'])[:12]}), threshold {report['settings']['threshold']}, "
        f"margin {report['settings']['margin_px']} px, fill {report['settings']['method']}",
        "",
        "| | precision | recall | F1 | PSNR inside damage (dB) | PSNR whole (dB) | change outside mask | flagged on clean photos |",
        "|---|---|---|---|---|---|---|---|",
        f"| photochrom repair | {number(ours['precision'], 3)} | {number(ours['recall'], 3)} | {number(ours['f1'], 3)} | "
        f"{number(ours['psnr_inside'])} | {number(ours['psnr_whole'])} | {ours['max_change_outside_mask']:g} | "
        f"{100 * ours['false_repair_fraction']:.3f}% |",
        f"| OpenCV Telea, true mask | | | | {number(reference['psnr_inside'])} | {number(reference['psnr_whole'])} | | |",
        f"| damaged, not repaired ({100 * damaged['damage_fraction']:.2f}% of pixels) | | | | {number(damaged['psnr_inside'])} | "
        f"{number(damaged['psnr_whole'])} | | |",
    ]
    return "\n".join(lines) + "\n"

