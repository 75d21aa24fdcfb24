"""What `--reference` costs on a 24 MP 16-bit scan, on this machine's CPU.

The scan: scikit-image's astronaut photo (a colour photo) enlarged to 6000 x 4000, its
lightness written as a 16-bit gray TIFF with film grain. The reference: another view of the
same photo (jobs/evaluate_reference.py `reference_pair`: moved, turned, scaled, skewed,
relit) at 3000 x 2000, a JPEG. Each goes through `photochrom --device cpu colorize` with
the default model, with and without `--reference`, each run in a new process (wall time and
peak RSS), alternating; then, in this process, the matching stage alone
(restore/passes.py `reference_guide` on the working image) and the reference's decoding,
best of the runs.

    .venv/bin/python bench/reference.py [--runs 2] [--megapixels 24]

Writes bench/out/reference.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the photochrom command does

import numpy as np  # noqa: E402
import tifffile  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before bench/, whose restore.py would shadow the package

from bench.repair import child  # noqa: E402


def scene(folder: Path, megapixels: float) -> tuple[Path, Path]:
    """Write the gray scan and the colour reference; return their paths."""
    import cv2
    from PIL import Image
    from skimage import data

    from jobs.evaluate_reference import reference_pair
    from restore.colour import lightness_to_gray, rgb_to_lab

    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(width / 1.5))
    photo = cv2.resize(data.astronaut(), (1536, 1024), interpolation=cv2.INTER_CUBIC)
    target, reference = reference_pair(photo, np.random.default_rng(0))
    big = cv2.resize(target, (width, height), interpolation=cv2.INTER_CUBIC)
    lightness = rgb_to_lab(big)[..., 0] + np.random.default_rng(1).normal(0, 0.8, (height, width)).astype(np.float32)
    scan, ref = folder / "scan.tif", folder / "reference.jpg"
    tifffile.imwrite(scan, lightness_to_gray(np.clip(lightness, 0, 100), np.uint16), photometric="minisblack")
    Image.fromarray(cv2.resize(reference, (3000, 2000), interpolation=cv2.INTER_CUBIC)).save(ref, quality=92)
    return scan, ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--megapixels", type=float, default=24.0)
    args = parser.parse_args()

    from restore.models.registry import shared_model
    from restore.passes import reference_guide, working_size
    from restore.reference import reference_from_file
    from restore.scanio.read import read_scan
    from restore.settings import DEFAULT_MODEL, RestoreSettings

    results: dict[str, object] = {"megapixels": args.megapixels, "model": DEFAULT_MODEL}
    with tempfile.TemporaryDirectory(prefix="photochrom-bench-reference-") as tmp:
        folder = Path(tmp)
        scan, ref = scene(folder, args.megapixels)
        photochrom = [sys.executable, "-m", "cli", "--device", "cpu", "colorize", str(scan), "--model", DEFAULT_MODEL]
        runs: dict[str, list[tuple[float, float]]] = {"colorize": [], "colorize --reference": []}
        for i in range(args.runs):
            runs["colorize"].append(child([*photochrom, "-o", str(folder / f"plain{i}")]))
            runs["colorize --reference"].append(child([*photochrom, "-o", str(folder / f"ref{i}"), "--reference", str(ref)]))
        for name, measured in runs.items():
            results[name] = {"wall_s": [round(w, 2) for w, _ in measured], "peak_rss_gb": round(max(m for _, m in measured), 2)}
        plain = statistics.median(w for w, _ in runs["colorize"])
        guided = statistics.median(w for w, _ in runs["colorize --reference"])
        results["reference_adds_s"] = round(guided - plain, 2)

        model = shared_model(DEFAULT_MODEL)
        l_hw = read_scan(scan).l_hw
        import cv2

        work_h, work_w = working_size(*l_hw.shape, model.spec, RestoreSettings())
        l_work = cv2.resize(l_hw, (work_w, work_h), interpolation=cv2.INTER_AREA)
        decode, match = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            reference = reference_from_file(ref)
            decode.append(time.perf_counter() - started)
            started = time.perf_counter()
            guide = reference_guide(l_work, reference)
            match.append(time.perf_counter() - started)
        results["reference_decode_s"] = round(min(decode), 3)
        results["matching_s"] = round(min(match), 3)
        results["match"] = guide.summary
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "reference.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
