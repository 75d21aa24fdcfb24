"""How well the damage segmenter finds synthetic damage, and how little it flags on clean photos.

Two sets, each photo at its own resolution and upscaled 2x (--scales; smooth content at
pixel scale, as a large scan shows it), together and (dev) each scale alone:
- the held-out split of the training photos (restore/models/damage_training.py
  `split_photos`, never trained on): the threshold is chosen here, as the one with the best
  F1 among those that flag at most --max-clean of the pixels of clean photos;
- the development photos (never trained on, never used to choose): the figures to report,
  at that threshold (or at --threshold).

Each photo (generator seeded by --seed and its index): half the time harmless texture
(`add_nuisance`), then `synthesize_damage` at --amount; separately, the clean photo with
texture always added, for the false flags. Precision and recall count a pixel right within
1 px (a predicted pixel near a damaged one, a damaged pixel near a predicted one), summed
over all photos.

    .venv/bin/python bench/damage_eval.py [--weights PATH] [--dev PHOTOS/dev] [--train PHOTOS/train ...]
        [--vis DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/restore.py would shadow the package

from restore.models.damage import SPEC, load_damage_segmenter  # noqa: E402
from restore.models.damage_training import f1_of, read_lightness, split_photos, tolerant_counts  # noqa: E402
from restore.repair.synth import add_nuisance, synthesize_damage  # noqa: E402
from restore.scanio.files import photo_files  # noqa: E402

THRESHOLDS = np.round(np.concatenate([np.arange(0.1, 0.96, 0.05), [0.97, 0.98, 0.99]]), 2)


def measure(segmenter, photos: list[Path], seed: int, amount: float, scales: tuple[int, ...], vis: Path | None = None) -> dict[str, np.ndarray]:
    """Per threshold: summed tolerant counts on damaged photos and flagged/total pixels on clean ones."""
    counts = np.zeros((len(THRESHOLDS), 4), np.int64)
    flagged = np.zeros(len(THRESHOLDS), np.int64)
    total = 0
    for i, path in enumerate(photos):
        l_hw = read_lightness(path)
        if l_hw is None:
            continue
        for scale in scales:
            rng = np.random.default_rng([seed, i, scale])
            base = l_hw if scale == 1 else cv2.resize(l_hw, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            textured = add_nuisance(base, rng) if rng.random() < 0.5 else base
            damaged, mask_hw = synthesize_damage(textured, rng, amount=amount)
            clean = add_nuisance(base, rng)
            p_damaged, p_clean = (segmenter.probability(x[None])[0] for x in (damaged, clean))
            for k, threshold in enumerate(THRESHOLDS):
                counts[k] += tolerant_counts(p_damaged > threshold, mask_hw)
                flagged[k] += int((p_clean > threshold).sum())
            total += clean.size
            if vis is not None and i < 12 and scale == 1:
                row = np.concatenate([damaged / 100, mask_hw.astype(np.float32), p_damaged, clean / 100, p_clean], axis=1)
                cv2.imwrite(str(vis / f"eval_{i:02d}.png"), np.clip(row * 255, 0, 255).astype(np.uint8))
    return {"counts": counts, "flagged": flagged / max(total, 1)}


def at(result: dict[str, np.ndarray], k: int) -> dict[str, float]:
    return {"threshold": float(THRESHOLDS[k]), **f1_of(result["counts"][k]), "clean_flagged": float(result["flagged"][k])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="weights file (default: the shipped damage-lite)")
    parser.add_argument("--train", type=Path, nargs="*", default=[Path("../shared/data/train"), Path("../shared/data/train-people")])
    parser.add_argument("--holdout-every", type=int, default=40, help="as the training run's")
    parser.add_argument("--dev", type=Path, default=Path("../shared/data/dev"))
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--amount", type=float, default=1.0)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 2], help="measure each photo at these upscalings (1: as it is)")
    parser.add_argument("--max-clean", type=float, default=0.0005, help="largest share of clean pixels flagged when choosing")
    parser.add_argument("--threshold", type=float, default=None, help="report dev at this threshold instead of choosing one")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vis", type=Path, default=None, help="write dev examples here as PNGs")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    segmenter = load_damage_segmenter("cpu", args.weights)
    report: dict[str, object] = {"weights_sha256": segmenter.spec.weights_sha256, "seed": args.seed, "amount": args.amount}
    if args.threshold is None:
        _, held_out = split_photos(args.train, args.holdout_every)
        validation = measure(segmenter, held_out, args.seed, args.amount, tuple(args.scales))
        allowed = [k for k in range(len(THRESHOLDS)) if validation["flagged"][k] <= args.max_clean] or [len(THRESHOLDS) - 1]
        best = max(allowed, key=lambda k: f1_of(validation["counts"][k])["f1"])
        report["validation"] = [at(validation, k) for k in range(len(THRESHOLDS))]
        report["chosen"] = at(validation, best)
        threshold = float(THRESHOLDS[best])
        print(f"validation ({len(held_out)} held-out train photos): chosen {report['chosen']}")
    else:
        threshold = args.threshold
    if args.vis is not None:
        args.vis.mkdir(parents=True, exist_ok=True)
    k = int(np.argmin(np.abs(THRESHOLDS - threshold)))
    for scales in [tuple(args.scales), *((scale,) for scale in args.scales if len(args.scales) > 1)]:
        dev = measure(segmenter, photo_files(args.dev), args.seed, args.amount, scales, args.vis)
        name = "dev" if scales == tuple(args.scales) else f"dev_x{scales[0]}"
        report[name] = at(dev, k)
        report[f"{name}_by_threshold"] = [at(dev, j) for j in range(len(THRESHOLDS))]
        print(f"{name} (upscaled {scales}) at {THRESHOLDS[k]}: {report[name]}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
