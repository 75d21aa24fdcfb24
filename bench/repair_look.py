"""Before / mask / after panels of repair on real scans, to look at (the issue's check on the
scratched historical portraits: are the cracks gone and the faces intact?).

For each photo: its L* (gray), the repair's mask in red over it, and the repaired L*, side by
side in one PNG, at the threshold(s) given; optionally a crop (--crop x,y,w,h in the
photo's pixels, the same for every photo) enlarged 2x, where thin damage shows.

    .venv/bin/python bench/repair_look.py PHOTO_OR_FOLDER... [--threshold 0.95 --threshold 0.5]
        [--weights PATH] [--crop X,Y,W,H] [--probability] [--out bench/out/repair-look]

Writes <out>/<photo stem>.t<threshold>.png and prints each photo's repaired share; with
--probability also <out>/<photo stem>.probability.png, the segmenter's probability at every
pixel (black 0, white 1), to see what it is unsure of (run it once per --weights, with
--out per version, to compare versions).
The panels stay out of the repository (bench/out is git-ignored): the photos are not ours.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.evaluate_repair import photo_lightness  # noqa: E402
from restore.models.damage import load_damage_segmenter  # noqa: E402
from restore.repair.repair import damage_probability, repair_lightness  # noqa: E402
from restore.scanio.files import photo_files  # noqa: E402
from restore.settings import RepairSettings  # noqa: E402


def panel(l_hw: np.ndarray, repaired_hw: np.ndarray, mask_hw: np.ndarray) -> np.ndarray:
    """H x 3W x 3 uint8 BGR: the L*, the mask in red over it, the repaired L*."""
    gray = np.clip(l_hw * 2.55 + 0.5, 0, 255).astype(np.uint8)
    after = np.clip(repaired_hw * 2.55 + 0.5, 0, 255).astype(np.uint8)
    overlay = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    overlay[mask_hw] = (0, 0, 255)
    return np.concatenate([cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), overlay, cv2.cvtColor(after, cv2.COLOR_GRAY2BGR)], axis=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--threshold", type=float, action="append", help="(repeatable; default: the segmenter's)")
    parser.add_argument("--weights", type=Path, help="a damage segmenter from train-repair (default: the shipped one)")
    parser.add_argument("--crop", help="X,Y,W,H: a region of each photo, shown enlarged 2x")
    parser.add_argument("--probability", action="store_true", help="also write the probability map of each photo")
    parser.add_argument("--out", type=Path, default=Path("bench/out/repair-look"))
    args = parser.parse_args()

    segmenter = load_damage_segmenter("cpu", args.weights)
    thresholds = args.threshold or [segmenter.spec.default_threshold]
    paths = [p for given in args.photos for p in (photo_files(given) if given.is_dir() else [given])]
    args.out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        l_hw = photo_lightness(path)
        if args.probability:
            probability = np.clip(damage_probability(l_hw, segmenter) * 255 + 0.5, 0, 255).astype(np.uint8)
            cv2.imwrite(str(args.out / f"{path.stem}.probability.png"), probability)
        for threshold in thresholds:
            repair = repair_lightness(l_hw, segmenter, RepairSettings(threshold=threshold))
            image = panel(l_hw, repair.l_hw, repair.mask_hw)
            if args.crop:
                x, y, w, h = (int(v) for v in args.crop.split(","))
                parts = [image[:, i * l_hw.shape[1] :][:, : l_hw.shape[1]][y : y + h, x : x + w] for i in range(3)]
                image = cv2.resize(np.concatenate(parts, axis=1), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
            target = args.out / f"{path.stem}.t{threshold:g}.png"
            cv2.imwrite(str(target), image)
            print(f"{path.name}: threshold {threshold:g}, repaired {100 * repair.fraction:.2f}% -> {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
