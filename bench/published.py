"""Time and peak memory of a 24 MP 16-bit scan through `photochrom colorize` with each published
model (DDColor, DeOldify). No released weights are on the development machines, so each model
is imported from a checkpoint of seeded random weights in its official layout: the arithmetic,
and so the time and memory, is the released model's; the colours are not.

    python bench/published.py [--models ddcolor,deoldify-stable] [--megapixels 24] [--restore]

Prints one line per model and writes bench/out/published.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before bench/, whose restore.py would shadow the package
DEFAULT_MODELS = ("ddcolor-tiny", "ddcolor", "deoldify-artistic", "deoldify-stable")
# Runs the command given after it as its only child: wall seconds and that child's peak RSS (KiB).
_MEASURE = (
    "import json, resource, subprocess, sys, time; t = time.perf_counter(); "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(json.dumps([time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
)


def _scan(path: Path, megapixels: float) -> None:
    """A 16-bit gray TIFF of about `megapixels`, 3:2, with gradients and edges."""
    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(width / 1.5))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    gray = 8000 + 40000 * (x / width) + 12000 * ((y // 500 + x // 700) % 2) + 3000 * np.sin(y / 37.0)
    tifffile.imwrite(path, np.clip(gray, 0, 65535).astype(np.uint16), photometric="minisblack")


def _checkpoint(name: str, path: Path) -> None:
    """Seeded random weights in the official layout, with each spectral-norm layer's u and v
    power-iterated on its weight, as training leaves them (torch's random initial vectors can
    make sigma = u . W v arbitrarily small, so the outputs would not be finite)."""
    from restore.models.registry import get_spec

    torch.manual_seed(0)
    state = get_spec(name).imported.build().state_dict()  # type: ignore[union-attr]
    for key in [k for k in state if k.endswith("weight_u")]:
        base = key[: -len("weight_u")]
        matrix = state[base + "weight_orig"].reshape(state[key].shape[0], -1)
        u = state[key]
        for _ in range(20):
            v = torch.nn.functional.normalize(matrix.t() @ u, dim=0)
            u = torch.nn.functional.normalize(matrix @ v, dim=0)
        state[key], state[base + "weight_v"] = u, v
    torch.save(state, path)


def _measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of `command` run as a child."""
    measured = subprocess.run([sys.executable, "-c", _MEASURE, *command], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    seconds, peak_kib = json.loads(measured.stdout.strip().splitlines()[-1])
    return round(seconds, 1), round(peak_kib / 2**20, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--restore", action="store_true", help="also time a restore job (synchronous scheduler) per model")
    args = parser.parse_args()
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        env = os.environ | {"PHOTOCHROM_MODELS": str(scratch_dir / "models"), "PYTHONPATH": str(REPO)}
        scan = scratch_dir / "scan_24mp.tif"
        _scan(scan, args.megapixels)
        for name in args.models.split(","):
            checkpoint = scratch_dir / f"{name}-random.pth"
            _checkpoint(name, checkpoint)
            subprocess.run([sys.executable, "-m", "cli", "models", "import", name, str(checkpoint)], cwd=REPO, env=env,
                           check=True, capture_output=True)
            cli = [sys.executable, "-m", "cli", "--device", "cpu"]
            seconds, peak = _measure([*cli, "colorize", str(scan), "-o", str(scratch_dir / name), "--model", name], env)
            result = {"model": name, "megapixels": args.megapixels, "seconds": round(seconds, 1), "peak_rss_gb": peak}
            if args.restore:
                db = scratch_dir / f"{name}.db"
                subprocess.run([*cli, "ingest", str(scan), "--db", str(db)], cwd=REPO, env=env, check=True, capture_output=True)
                job = [*cli, "restore", "--db", str(db), "--model", name, "--scheduler", "synchronous", "--out", str(scratch_dir / f"{name}-job"), "--json"]
                result["restore_seconds"], result["restore_peak_rss_gb"] = _measure(job, env)
                outputs = sorted((scratch_dir / f"{name}-job").rglob("*.tif"))
                result["restore_outputs"] = [list(tifffile.TiffFile(o).pages[0].shape) + [str(tifffile.TiffFile(o).pages[0].dtype)] for o in outputs]
            results.append(result)
            print(json.dumps(result), flush=True)
    (out / "published.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
