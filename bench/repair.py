"""What `--repair` costs on a 24 MP 16-bit scan, on this machine's CPU.

A 6000 x 4000 16-bit gray TIFF (scikit-image's camera photo enlarged, with film grain) with
synthetic damage (restore/repair/synth.py: scratches, dust, hairs, cracks, folds, tears)
goes through `photochrom --device cpu colorize` with the default model, with and without
`--repair`, each in a new process (wall time and that process's peak RSS), alternating, three
runs each. Then, in this process, `repair_lightness` alone on the scan's L* (detection and
fill timed apart), best of three. The damaged fraction and the detected fraction are printed.

    .venv/bin/python bench/repair.py [--runs 3] [--megapixels 24]

Writes bench/out/repair.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the photochrom command does

import numpy as np  # noqa: E402
import tifffile  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before bench/, whose restore.py would shadow the package

_MEASURE = (
    "import json, resource, subprocess, sys, time; t = time.perf_counter(); "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(json.dumps([time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
)


def damaged_scan(path: Path, megapixels: float, seed: int = 0) -> float:
    """Write the damaged scan; return the fraction of its pixels the damage changed."""
    import cv2
    from skimage import data

    from restore.colour import gray_to_lightness, lightness_to_gray
    from restore.repair.synth import synthesize_damage

    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(width / 1.5))
    base = cv2.resize(data.camera().astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = np.random.default_rng(seed).normal(0.0, 0.01, (height, width)).astype(np.float32)
    gray = (np.clip(base + grain, 0, 1) * 65535).astype(np.uint16)
    damaged, mask = synthesize_damage(gray_to_lightness(gray), np.random.default_rng(seed), amount=1.0)
    tifffile.imwrite(path, lightness_to_gray(damaged, np.uint16), photometric="minisblack")
    return float(mask.mean())


def child(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of `command`, run in a new process."""
    measured = subprocess.run([sys.executable, "-c", _MEASURE, *command], cwd=REPO, check=True, capture_output=True, text=True)
    seconds, peak_kib = json.loads(measured.stdout.strip().splitlines()[-1])
    return seconds, peak_kib / 2**20


def in_process(scan: Path, runs: int) -> dict[str, float]:
    from restore.models.damage import load_damage_segmenter
    from restore.repair.inpaint import inpaint_lightness
    from restore.repair.repair import detect_damage
    from restore.scanio.read import read_scan
    from restore.settings import RepairSettings

    settings = RepairSettings()
    l_hw = read_scan(scan).l_hw
    segmenter = load_damage_segmenter("cpu")
    best = {"detect": float("inf"), "fill": float("inf")}
    for _ in range(runs):
        started = time.perf_counter()
        mask = detect_damage(l_hw, segmenter, settings.threshold, settings.margin_px)
        middle = time.perf_counter()
        inpaint_lightness(l_hw, mask, method=settings.method)
        ended = time.perf_counter()
        best = {"detect": min(best["detect"], middle - started), "fill": min(best["fill"], ended - middle)}
    return best | {"detected_fraction": float(mask.mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--megapixels", type=float, default=24.0)
    args = parser.parse_args()
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        scan = folder / "damaged_24mp.tif"
        damaged_fraction = damaged_scan(scan, args.megapixels)
        cli = [sys.executable, "-m", "cli", "--device", "cpu", "colorize", str(scan)]
        runs: dict[str, list[tuple[float, float]]] = {"colorize": [], "colorize --repair": []}
        for i in range(args.runs):
            runs["colorize"].append(child([*cli, "-o", str(folder / f"plain{i}")]))
            runs["colorize --repair"].append(child([*cli, "-o", str(folder / f"repaired{i}"), "--repair"]))
        parts = in_process(scan, args.runs)
    report = {
        "megapixels": args.megapixels,
        "damaged_fraction": round(damaged_fraction, 5),
        "runs": {k: [[round(s, 2), round(m, 2)] for s, m in v] for k, v in runs.items()},
        "median_seconds": {k: round(statistics.median(s for s, _ in v), 2) for k, v in runs.items()},
        "peak_rss_gb": {k: round(max(m for _, m in v), 2) for k, v in runs.items()},
        "repair_in_process_best": {k: round(v, 4) for k, v in parts.items()},
    }
    report["repair_adds_seconds"] = round(report["median_seconds"]["colorize --repair"] - report["median_seconds"]["colorize"], 2)
    print(json.dumps(report, indent=1))
    (out / "repair.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
