"""Inpainting methods compared on dev photos with thin synthetic damage: PSNR of L* inside
the damage and over the whole image, against the clean photo, and the time to fill a
6000 x 4000 scan with about 2% damage.

Each dev photo (CIE L*) gets damage with a seed of its own: `--damage synth` (the default)
is `restore/repair/synth.py`'s `synthesize_damage` (every kind: scratches, dust, hairs,
cracks, folds, tears); `--damage thin` the generator below, thin defects only (1 to 8 px
strokes, curves, specks, branching cracks). Each method then fills five masks: the true
one; the true one dilated by 1 and by 2 px (the detector's mask is widened by a margin);
one that misses a tenth of the damage (recall 0.9: the missed pixels, taken from the
damage's rim, keep their damaged values and are read as surroundings); and that one
dilated by 1 px (what repair gives the fill: a detector that misses a little, and its
margin). PSNR has peak 100 (L*), averaged over photos; "inside" is over the true damage
only (missed pixels included, filled or not), "whole" over the whole photo.

The time is for one 6000 x 4000 scan (the first photo enlarged, with grain) with about 2%
thin damage drawn at full resolution, best of two, on this machine's CPU.

    .venv/bin/python bench/inpaint_methods.py [--photos N] [--damage synth|thin] [--skip-large] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from restore.colour import rgb_to_lightness  # noqa: E402
from restore.repair.inpaint import DEFAULT_METHOD, INPAINT_METHODS, inpaint_lightness  # noqa: E402

DEV = REPO.parent / "shared" / "data" / "dev"
PEAK_L = 100.0


def _crop_method(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda l_hw, mask_hw: inpaint_lightness(l_hw, mask_hw, method=name)


def _opencv(flag: int, radius: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    # On the whole image, as OpenCV is usually called: the reference for the crops' result.
    return lambda l_hw, mask_hw: cv2.inpaint(l_hw, mask_hw.view(np.uint8), radius, flag)


def methods() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    table = {name: _crop_method(name) for name in INPAINT_METHODS}
    table["telea r5 (whole image)"] = _opencv(cv2.INPAINT_TELEA, 5)
    table["ns r5 (whole image)"] = _opencv(cv2.INPAINT_NS, 5)
    return table


# --- thin damage only (`--damage thin`): 1-8 px defects, no folds or tears -----------------


def _stroke(mask: np.ndarray, damage: np.ndarray, points: np.ndarray, width: int, value: float) -> None:
    pts = np.round(points).astype(np.int32).reshape(-1, 1, 2)
    layer = np.zeros(mask.shape, np.uint8)
    cv2.polylines(layer, [pts], False, 1, thickness=max(int(width), 1), lineType=cv2.LINE_8)
    hit = layer.astype(bool)
    mask |= hit
    damage[hit] = value


def thin_damage(l_hw: np.ndarray, rng: np.random.Generator, fraction: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """(damaged L*, mask) with about `fraction` of the pixels damaged: long scratches, curves,
    dust specks and branching cracks, 1 to 8 px wide (mostly 1 to 3)."""
    h, w = l_hw.shape
    mask = np.zeros((h, w), bool)
    damage = np.zeros((h, w), np.float32)
    side = max(h, w)
    width_choices, width_p = np.array([1, 2, 3, 4, 6, 8]), np.array([0.3, 0.3, 0.2, 0.1, 0.06, 0.04])
    for _ in range(200):
        if mask.mean() >= fraction:
            break
        kind = rng.choice(["scratch", "curve", "specks", "crack"], p=[0.3, 0.25, 0.2, 0.25])
        bright = rng.random() < 0.6
        value = float(rng.uniform(85, 100) if bright else rng.uniform(2, 20))
        if kind == "scratch":  # film scratch: long, nearly straight, often vertical
            angle = rng.normal(np.pi / 2, 0.15) if rng.random() < 0.6 else rng.uniform(0, np.pi)
            c = rng.uniform([0, 0], [w, h])
            t = np.linspace(-side, side, 64)[:, None]
            wobble = rng.normal(0, 1.5, (64, 1)).cumsum(0) * 0.2
            direction = np.array([np.cos(angle), np.sin(angle)])
            normal = np.array([-direction[1], direction[0]])
            pts = c + t * direction * rng.uniform(0.15, 0.6) + wobble * normal
            _stroke(mask, damage, pts, rng.choice(width_choices, p=width_p), value)
        elif kind == "curve":  # hair, fibre
            n = 40
            c = rng.uniform([0, 0], [w, h])
            heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.25, n))
            step = side * rng.uniform(0.005, 0.02)
            pts = c + np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1) * step, 0)
            _stroke(mask, damage, pts, rng.choice(width_choices[:3]), value)
        elif kind == "specks":  # dust
            for _ in range(int(rng.integers(5, 30))):
                r = int(rng.choice([0, 1, 1, 2, 3, 4]))
                cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
                layer = np.zeros((h, w), np.uint8)
                cv2.circle(layer, (cx, cy), r, 1, -1)
                hit = layer.astype(bool)
                mask |= hit
                damage[hit] = float(rng.uniform(2, 20) if rng.random() < 0.6 else rng.uniform(85, 100))
        else:  # crack: a random walk that branches
            stack = [(rng.uniform([0, 0], [w, h]), rng.uniform(0, 2 * np.pi), 3)]
            while stack:
                start, heading, depth = stack.pop()
                n = int(rng.integers(10, 30))
                headings = heading + np.cumsum(rng.normal(0, 0.35, n))
                step = side * rng.uniform(0.005, 0.012)
                pts = start + np.cumsum(np.stack([np.cos(headings), np.sin(headings)], 1) * step, 0)
                pts = np.vstack([start, pts])
                _stroke(mask, damage, pts, int(rng.choice([1, 1, 2, 2, 3])), value)
                if depth > 0:
                    for _ in range(int(rng.integers(0, 3))):
                        j = int(rng.integers(1, len(pts)))
                        stack.append((pts[j], headings[j - 1] + rng.choice([-1, 1]) * rng.uniform(0.4, 1.2), depth - 1))
    # Damage is not flat paint: a little of the picture shows through at the rim.
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0.6)
    alpha = np.where(mask, np.maximum(alpha, 0.85), 0.0)
    damaged = np.where(mask, (1 - alpha) * l_hw + alpha * damage, l_hw).astype(np.float32)
    return damaged, mask


def damage_for(l_hw: np.ndarray, seed: int, kind: str = "synth") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "thin":
        return thin_damage(l_hw, rng)
    from restore.repair.synth import synthesize_damage

    return synthesize_damage(l_hw, rng)


# --- the masks a fill is given ---------------------------------------------------------------


def dilated(mask: np.ndarray, px: int) -> np.ndarray:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.view(np.uint8), disc).view(bool)


def missing(mask: np.ndarray, rng: np.random.Generator, recall: float = 0.9) -> np.ndarray:
    """The mask less (1 - recall) of its pixels, taken from its rim first (where a detector
    misses: the faint edge of a stroke), then anywhere."""
    rim = mask & ~cv2.erode(mask.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    drop = int(round((1 - recall) * mask.sum()))
    rim_idx, all_idx = np.flatnonzero(rim), np.flatnonzero(mask & ~rim)
    chosen = rng.choice(rim_idx, min(drop, len(rim_idx)), replace=False)
    if drop > len(chosen):
        chosen = np.concatenate([chosen, rng.choice(all_idx, drop - len(chosen), replace=False)])
    out = mask.copy()
    out.reshape(-1)[chosen] = False
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(PEAK_L**2 / mse)


def dev_lightness(n: int) -> list[tuple[str, np.ndarray]]:
    paths = sorted(DEV.iterdir())
    picked = [paths[round(i * (len(paths) - 1) / max(n - 1, 1))] for i in range(min(n, len(paths)))]
    return [(p.name, rgb_to_lightness(np.asarray(Image.open(p).convert("RGB")))) for p in picked]


CONDITIONS = ("exact", "dilated 1 px", "dilated 2 px", "recall 0.9", "recall 0.9, dilated 1 px")


def compare(photos: list[tuple[str, np.ndarray]], table: dict, damage: str = "synth") -> dict:
    """Per method and mask condition: mean PSNR inside the damage and over the image, and the
    mean seconds per photo."""
    sums: dict = {m: {c: {"inside": [], "whole": [], "s": 0.0} for c in CONDITIONS} for m in table}
    damaged_inside, damaged_whole = [], []
    for index, (name, clean) in enumerate(photos):
        damaged, truth = damage_for(clean, seed=index, kind=damage)
        missed = missing(truth, np.random.default_rng(1000 + index))
        damaged_inside.append(psnr(damaged[truth], clean[truth]))
        damaged_whole.append(psnr(damaged, clean))
        masks = {
            "exact": truth,
            "dilated 1 px": dilated(truth, 1),
            "dilated 2 px": dilated(truth, 2),
            "recall 0.9": missed,
            "recall 0.9, dilated 1 px": dilated(missed, 1),
        }
        for method, fill in table.items():
            for condition, mask in masks.items():
                start = time.perf_counter()
                filled = fill(damaged, mask)
                sums[method][condition]["s"] += time.perf_counter() - start
                assert np.array_equal(filled[~mask], damaged[~mask])
                sums[method][condition]["inside"].append(psnr(filled[truth], clean[truth]))
                sums[method][condition]["whole"].append(psnr(filled, clean))
    results = {
        m: {c: {"psnr_inside": float(np.mean(v["inside"])), "psnr_whole": float(np.mean(v["whole"])), "s_per_photo": v["s"] / len(photos)} for c, v in cs.items()}
        for m, cs in sums.items()
    }
    if "telea" in sums:  # paired: on how many photos each method beats Telea inside the damage
        for m, cs in sums.items():
            for c, v in cs.items():
                results[m][c]["photos_better_than_telea"] = int(np.sum(np.array(v["inside"]) > np.array(sums["telea"][c]["inside"])))
    results["damaged (no fill)"] = {"exact": {"psnr_inside": float(np.mean(damaged_inside)), "psnr_whole": float(np.mean(damaged_whole)), "s_per_photo": 0.0}}
    return results


def large_scan_times(photo: np.ndarray, names: list[str], repeats: int = 2) -> dict:
    """Wall and CPU seconds (best of `repeats`) to fill a 6000 x 4000 scan (a dev photo
    enlarged, with grain) with ~2% thin damage drawn at full resolution; and an all-clear
    mask. CPU seconds are this process's (all threads): the machine is shared, so wall time
    may include waiting."""
    rng = np.random.default_rng(7)
    scan = cv2.resize(photo, (6000, 4000), interpolation=cv2.INTER_CUBIC)
    scan = np.clip(scan + rng.normal(0, 1.5, scan.shape), 0, 100).astype(np.float32)
    damaged, mask = thin_damage(scan, rng, fraction=0.02)
    times: dict = {"damage_fraction": float(mask.mean())}
    inpaint_lightness(damaged[:64, :64], mask[:64, :64])  # compile the directional loop first
    for name in [*names, "empty mask"]:
        given = np.zeros(mask.shape, bool) if name == "empty mask" else mask
        best_wall = best_cpu = float("inf")
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            inpaint_lightness(damaged, given, method=DEFAULT_METHOD if name == "empty mask" else name)
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        times[name] = {"wall_s": round(best_wall, 3), "cpu_s": round(best_cpu, 3)}
    # Memory of one fill beyond its input and output: NumPy's allocations (OpenCV's results
    # are NumPy arrays too; its internal buffers within a call are not seen).
    tracemalloc.start()
    out = inpaint_lightness(damaged, mask, method=DEFAULT_METHOD)
    times[f"{DEFAULT_METHOD} peak MB (NumPy, output included)"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    times["output MB"] = round(out.nbytes / 2**20, 1)
    return times


def markdown(results: dict) -> str:
    lines = ["| method | " + " | ".join(f"{c}: inside / whole" for c in CONDITIONS) + " | s / photo (exact) |", "|---" * (len(CONDITIONS) + 2) + "|"]
    for method, cs in results.items():
        cells = [f"{cs[c]['psnr_inside']:.2f} / {cs[c]['psnr_whole']:.2f}" if c in cs else "" for c in CONDITIONS]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {cs['exact']['s_per_photo']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48, help="dev photos, evenly spaced in name order")
    parser.add_argument("--damage", choices=("synth", "thin"), default="synth", help="synthesize_damage, or thin defects only")
    parser.add_argument("--methods", default=None, help="comma-separated subset of the methods")
    parser.add_argument("--skip-large", action="store_true", help="skip the 6000 x 4000 timing")
    parser.add_argument("--only-large", action="store_true", help="only the 6000 x 4000 timing")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    photos = dev_lightness(args.photos)
    table = methods()
    if args.methods:
        table = {m: table[m] for m in args.methods.split(",")}
    report: dict = {"photos": len(photos), "damage": args.damage}
    if not args.only_large:
        report["results"] = compare(photos, table, args.damage)
        print(f"{len(photos)} dev photos, damage: {args.damage}; PSNR of L* (peak 100), mean over photos")
        print(markdown(report["results"]))
    if not args.skip_large:
        report["large_scan_s"] = large_scan_times(photos[0][1], list(INPAINT_METHODS))
        print(json.dumps(report["large_scan_s"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
