"""The damage segmenter's speed on a whole scan: a 6000 x 4000 L* image through
`DamageSegmenter.probability` in overlapping tiles, as restore/repair/repair.py runs it
(tile_grid, tiles of DETECTION_TILE_PX overlapping by the receptive field, batches of
DETECTION_BATCH), on the threads this process is given.

The development machine's 2 cores are shared, and other processes can slow it for seconds
at a time; so each run is timed --runs times and the fastest and the median are printed,
with a fixed workload (twenty 400 x 400 matrix products) timed before each run to show how
busy the machine was.

    .venv/bin/python bench/damage_speed.py [--weights PATH] [--threads 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

# bench/restore.py would shadow the package when run from here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patches.grid import tile_grid  # noqa: E402
from restore.models.damage import DamageSegmenter, load_damage_segmenter  # noqa: E402

TILE_PX = 1024  # as restore/repair/repair.py's DETECTION_TILE_PX
BATCH = 2  # as its DETECTION_BATCH


def calibrate() -> float:
    """Seconds for a fixed workload: how busy the machine is right now."""
    a = np.random.default_rng(0).standard_normal((400, 400))
    start = time.perf_counter()
    for _ in range(20):
        a = a @ a
        a /= np.abs(a).max()
    return time.perf_counter() - start


def scan(height: int, width: int) -> np.ndarray:
    """A smooth synthetic L* scan with grain (its content does not change the time)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    l_hw = 50 + 30 * np.sin(xx / 300) * np.cos(yy / 200)
    return (l_hw + rng.standard_normal((height, width)).astype(np.float32)).astype(np.float32)


def run(segmenter, l_hw: np.ndarray) -> np.ndarray:
    height, width = l_hw.shape
    grid = tile_grid(height, width, TILE_PX, min(segmenter.spec.receptive_field_px, TILE_PX // 2))
    probability_hw = np.empty((height, width), np.float32)
    tiles = list(grid.tiles)
    for start in range(0, len(tiles), BATCH):
        group = tiles[start : start + BATCH]
        sizes = {(t.halo.height, t.halo.width) for t in group}
        groups = [group] if len(sizes) == 1 else [[t] for t in group]
        for same in groups:
            probability = segmenter.probability(np.stack([l_hw[t.halo.slices] for t in same]))
            for tile, p_hw in zip(same, probability):
                core, halo = tile.core, tile.halo
                probability_hw[core.slices] = p_hw[core.top - halo.top : core.bottom - halo.top, core.left - halo.left : core.right - halo.left]
    return probability_hw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="a weights file (default: the shipped damage-lite)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--float32", action="store_true", help="run in float32 (as on a CPU without native bfloat16)")
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--width", type=int, default=6000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    segmenter = load_damage_segmenter("cpu", args.weights)
    if args.float32:
        segmenter = DamageSegmenter(segmenter.net.float(), segmenter.spec, segmenter.device, torch.float32)
    l_hw = scan(args.height, args.width)
    grid = tile_grid(args.height, args.width, TILE_PX, min(segmenter.spec.receptive_field_px, TILE_PX // 2))
    print(f"{args.width} x {args.height}: {len(grid.tiles)} tiles of {TILE_PX} px, overlap {grid.overlap_px} px, {args.threads} threads, {segmenter.dtype}")
    segmenter.probability(l_hw[None, :TILE_PX, :TILE_PX])  # warm up
    seconds = []
    for i in range(args.runs):
        busy = calibrate()
        start = time.perf_counter()
        run(segmenter, l_hw)
        seconds.append(time.perf_counter() - start)
        print(f"run {i + 1}: {seconds[-1]:.2f} s (calibration {busy:.3f} s)")
    print(f"fastest {min(seconds):.2f} s, median {statistics.median(seconds):.2f} s for {args.width * args.height / 1e6:.0f} MP")


if __name__ == "__main__":
    main()
