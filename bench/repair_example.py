"""The README's before / after crop of repair: scikit-image's astronaut photo (NASA, public
domain; the scratched historical portraits this was checked on are not ours to publish),
enlarged 2x as a scan at a higher resolution than the print's sharpness shows it, with
synthetic damage (restore/repair/synth.py, the seed below), through `repair_lightness` at
the default settings. Writes the crop of the face: damaged, mask in red, repaired.

    .venv/bin/python bench/repair_example.py [--weights PATH] [--out docs/images/repair-example.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.repair_look import panel  # noqa: E402
from restore.colour import rgb_to_lightness  # noqa: E402
from restore.models.damage import load_damage_segmenter  # noqa: E402
from restore.repair.repair import repair_lightness  # noqa: E402
from restore.repair.synth import synthesize_damage  # noqa: E402
from restore.settings import RepairSettings  # noqa: E402

SEED = 7
AMOUNT = 2.0  # a badly damaged print
CROP_XYWH = (240, 80, 420, 420)  # the face and helmet, in the enlarged photo's pixels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, help="a damage segmenter from train-repair (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=Path("docs/images/repair-example.png"))
    args = parser.parse_args()

    clean = cv2.resize(rgb_to_lightness(data.astronaut()), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    damaged, truth = synthesize_damage(clean, np.random.default_rng(SEED), amount=AMOUNT)
    segmenter = load_damage_segmenter("cpu", args.weights)
    repair = repair_lightness(damaged, segmenter, RepairSettings())
    x, y, w, h = CROP_XYWH
    crop = (slice(y, y + h), slice(x, x + w))
    image = panel(damaged[crop], repair.l_hw[crop], repair.mask_hw[crop])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    found = (truth & repair.mask_hw).sum() / max(int(truth.sum()), 1)
    print(f"damage {100 * truth.mean():.2f}% of pixels, repaired {100 * repair.fraction:.2f}%, damage inside the mask {100 * found:.0f}% -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
