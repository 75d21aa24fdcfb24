"""Hint-following on colour photos, iColoriT's protocol, for the `propagate` model.

For each photo in DATA (default ../shared/data/dev): a 16-bit gray scan whose CIE L* is
the photo's; hints at 1, 10, 50 and 100 points sampled uniformly at random with a fixed
seed, each point's colour the mean of the photo over a window of 2 x 2 pixels at
224-pixel scale (so 2 * long side / 224 pixels here), written as a real hint file; the full
pipeline (`restore_file`: global pass, patches, hold step, saturation 1.0, writing).
Measured: PSNR on 8-bit sRGB at full resolution against the photo, and the chroma error
(CIE76 on a*, b*) of the result at every hint point. The gray scan's PSNR is the baseline.

A hint's colour is a window's mean, but it is applied at its pixel's own lightness, where
sRGB may not be able to show that chroma at all (a saturated yellow next to a white
highlight, say); no result can then be closer than the gamut's edge. So the error is
reported against the reachable colour (the hint's chroma reduced, hue and L* kept, until
sRGB can show it: restore.colour's gamut mapping) and, beside it, against the raw hint,
with the number of hints whose colour cannot exist at their pixel's lightness.

    .venv/bin/python bench/hints.py [DATA] [--counts 1 10 50 100] [--limit N] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zlib
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hints.schema import load_hint_file  # noqa: E402
from restore.colour import lab_to_rgb, lightness_to_gray, rgb_to_lab  # noqa: E402
from restore.models.registry import create_model  # noqa: E402
from restore.pipeline import RestoreSettings, restore_file  # noqa: E402

SEED = 2024


def psnr(a_u8: np.ndarray, b_u8: np.ndarray) -> float:
    mse = float(np.mean((a_u8.astype(np.float64) - b_u8.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def sample_hints(lab: np.ndarray, count: int, rng: np.random.Generator) -> list[dict[str, object]]:
    height, width = lab.shape[:2]
    window = max(1, round(2 * max(height, width) / 224))
    points = []
    for _ in range(count):
        top, left = int(rng.integers(0, height - window + 1)), int(rng.integers(0, width - window + 1))
        mean = lab[top : top + window, left : left + window].reshape(-1, 3).mean(axis=0)
        points.append({
            "x": left + (window - 1) / 2, "y": top + (window - 1) / 2,
            "color": {"lab": [round(float(v), 4) for v in mean]}, "radius": window / 2,
        })
    return points


def run_photo(args: tuple[str, tuple[int, ...], str]) -> dict[str, object]:
    photo, counts, model_name = args
    truth = np.asarray(Image.open(photo).convert("RGB"))
    lab = rgb_to_lab(truth)
    model = create_model(model_name)
    settings = RestoreSettings(model=model_name, saturation=1.0)  # measure the colours, not the curve
    row: dict[str, object] = {"photo": Path(photo).name}
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "scan.png"
        gray16 = lightness_to_gray(lab[..., 0], np.uint16)
        Image.fromarray(gray16).save(scan)
        gray8 = np.repeat((np.rint(gray16 / 257.0)).astype(np.uint8)[..., None], 3, axis=2)
        row["gray_psnr"] = psnr(gray8, truth)
        for count in counts:
            rng = np.random.default_rng([SEED, count, zlib.crc32(Path(photo).name.encode())])
            points = sample_hints(lab, count, rng)
            hint_path = Path(tmp) / f"hints_{count}.json"
            hint_path.write_text(json.dumps({"schema": "photochrom.hints/1", "points": points}))
            out = Path(tmp) / f"out_{count}.png"
            restore_file(scan, out, model, settings, source_sha256="0" * 64, hint_file=load_hint_file(hint_path))
            result16 = _read_rgb16(out)
            result8 = np.rint(result16 / 257.0).astype(np.uint8)
            result_lab = rgb_to_lab(result16)
            rows_, cols_ = [int(round(p["y"])) for p in points], [int(round(p["x"])) for p in points]  # type: ignore[arg-type]
            wanted = np.array([p["color"]["lab"][1:] for p in points], np.float32)  # type: ignore[index]
            got = result_lab[rows_, cols_, 1:]
            l_at = result_lab[rows_, cols_, 0][None]
            reachable = rgb_to_lab(lab_to_rgb(l_at, wanted[None], np.uint16))[0, :, 1:]
            errors = np.hypot(*(got - reachable).T)
            raw = np.hypot(*(got - wanted).T)
            row[f"psnr_{count}"] = psnr(result8, truth)
            row[f"hint_error_mean_{count}"] = float(errors.mean())
            row[f"hint_error_max_{count}"] = float(errors.max())
            row[f"raw_error_mean_{count}"] = float(raw.mean())
            row[f"raw_error_max_{count}"] = float(raw.max())
            row[f"unreachable_{count}"] = int((np.hypot(*(reachable - wanted).T) > 0.5).sum())
    return row


def _read_rgb16(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=REPO.parent / "shared" / "data" / "dev")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--model", default="propagate")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "hints.json")
    args = parser.parse_args()
    photos = sorted(str(p) for p in args.data.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = photos[: args.limit] if args.limit else photos
    jobs = [(p, tuple(args.counts), args.model) for p in photos]
    with get_context("fork").Pool(args.workers) as pool:
        rows = []
        for i, row in enumerate(pool.imap(run_photo, jobs), 1):
            rows.append(row)
            print(f"{i}/{len(jobs)} {row['photo']}", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(f"{args.model} on {len(rows)} photos from {args.data}")
    print("| hints | PSNR (dB) | error vs reachable colour: mean / max | photos with max > 3 | error vs raw hint: mean / max | hints out of gamut at their pixel |")
    print("|---|---|---|---|---|---|")
    print(f"| 0 (gray baseline) | {np.mean([r['gray_psnr'] for r in rows]):.2f} | | | | |")
    for count in args.counts:
        def stat(key: str, how=np.mean) -> float:  # noqa: ANN001
            return float(how([r[f"{key}_{count}"] for r in rows]))

        print(
            f"| {count} | {stat('psnr'):.2f} | {stat('hint_error_mean'):.2f} / {stat('hint_error_max', np.max):.2f} | "
            f"{sum(r[f'hint_error_max_{count}'] > 3 for r in rows)} | {stat('raw_error_mean'):.2f} / {stat('raw_error_max', np.max):.2f} | "
            f"{int(stat('unreachable', np.sum))} of {count * len(rows)} |"
        )


if __name__ == "__main__":
    main()
