"""Restore speed and memory, measured on generated gray scans.

1. A 24-megapixel 16-bit gray TIFF through the whole pipeline (`photochrom colorize`, in a
   child process so its peak memory is its own): wall time and peak RSS, beside the
   unavoidable parts measured in the same run on the same data: decode (tifffile
   reading the scan), model inference on the same patches (global pass plus every
   working-resolution patch, in the model's batches, after one untimed run of each batch
   shape), and encode (writing the same result array as a TIFF; the fsync that makes it
   durable is reported beside it). Then
   the same restore in this process once its libraries and model are loaded (warm: what
   each scan of a batch costs a worker). Each in-process figure is the best of three runs.
2. A 100-megapixel 16-bit gray TIFF: peak RSS (memory must grow no faster than pixels).
3. A batch of 20 scans (4 megapixels, 16-bit) through `photochrom restore` with 1 and 2
   Dask workers: scans per minute and CPU utilisation (CPU seconds of the whole process
   tree / wall seconds / cores).

    .venv/bin/python bench/restore.py [--model ramp] [--out bench/out] [--skip-100mp] [--skip-batch] [--workers 1,2]

The models run where `photochrom` runs them (PHOTOCHROM_DEVICE, default auto: a CUDA GPU if
torch sees one); the report names the device.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# As the photochrom command does for every command (cli.py), before numpy loads: the warm
# in-process restore below runs as `colorize` does.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import tifffile  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from restore.models.registry import create_model  # noqa: E402
from restore.passes import working_size  # noqa: E402
from restore.settings import RestoreSettings
from restore.scanio.read import read_scan  # noqa: E402

CLI = [sys.executable, "-m", "cli"]


def make_scan(path: Path, height: int, width: int, seed: int = 0) -> None:
    """A 16-bit gray scan with photographic structure (a scaled photo plus grain)."""
    import cv2
    from skimage import data

    base = cv2.resize(data.camera().astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = np.random.default_rng(seed).normal(0.0, 0.01, (height, width)).astype(np.float32)
    tifffile.imwrite(path, (np.clip(base + grain, 0, 1) * 65535).astype(np.uint16), photometric="minisblack")


# Runs a command and reports (wall s, CPU s of it and its descendants, peak RSS kB of the
# largest). A small launcher between this process and the command: Linux counts a parent's
# peak RSS into a child it forks (the address space it starts from), so measured directly,
# a child of this process (holding GBs after the in-process runs) would report this
# process's peak, not its own.
_LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss]))
"""


def run_child(command: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the child and its descendants, peak RSS in GB of the largest)."""
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], cwd=REPO, check=True, stdout=subprocess.PIPE, text=True)
    wall, cpu, peak_kb = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, cpu, peak_kb / 1e6  # ru_maxrss is in kB on Linux


#: Each in-process figure is the best of this many runs (after an untimed first, for the
#: warm restore and the inference): this machine's speed varies from run to run.
BEST_OF = 3


def best_time(action: Callable[[], object]) -> float:
    """The shortest of BEST_OF timed runs of `action`, in seconds."""
    times = []
    for _ in range(BEST_OF):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def unavoidable_parts(scan: Path, model_name: str, result: Path) -> dict[str, float]:
    model = create_model(model_name)
    decode = best_time(lambda: tifffile.imread(scan))

    pixels = read_scan(scan)  # not timed: the same inputs the pipeline gives the model
    import cv2

    from patches.grid import tile_grid
    from restore.passes import patch_batches, patch_hints

    side = model.spec.input_px
    work_h, work_w = working_size(pixels.height, pixels.width, model.spec, RestoreSettings(model=model_name))
    work = cv2.resize(pixels.l_hw, (work_w, work_h), interpolation=cv2.INTER_AREA)
    grid = tile_grid(work.shape[0], work.shape[1], side, model.spec.overlap_px)
    l_global = cv2.resize(work, (side, side), interpolation=cv2.INTER_AREA)[None]  # as global_pass gets it
    none = np.zeros(l_global.shape + (2,), np.float32), np.zeros(l_global.shape, np.float32)
    # The patches get what the pipeline gives them (for `lite`, context hints that start its
    # residual solve), built by the pipeline's own functions.
    context = cv2.resize(model.colorize(l_global, *none)[0], (work_w, work_h), interpolation=cv2.INTER_LINEAR)
    hint_ab, hint_mask = patch_hints(context, model.spec)
    batches = [batch for _, *batch in patch_batches(grid, work, hint_ab, hint_mask, model.spec)]
    batches.append((l_global, *none))
    for batch in batches:  # untimed: first calls of each batch shape (cuDNN's and oneDNN's set-up)
        model.colorize(*batch)
    inference = best_time(lambda: [model.colorize(*batch) for batch in batches])

    rgb = tifffile.imread(result)
    # Each write to a new file, all kept until the end: a batch writes new files, and a file
    # written over one just removed reuses its freed page-cache pages (here 0.04 s instead
    # of 0.55 s for 144 MB), a saving a batch does not get.
    checks = iter([result.with_name(f"encode_check_{i}.tif") for i in range(BEST_OF)])
    encode = best_time(lambda: tifffile.imwrite(next(checks), rgb, photometric="rgb"))
    start = time.perf_counter()
    with result.with_name("encode_check_0.tif").open("rb+") as handle:  # what the pipeline adds to make its result durable
        os.fsync(handle.fileno())
    fsync = time.perf_counter() - start
    for check in result.parent.glob("encode_check_*.tif"):
        check.unlink()
    parts = {"decode": decode, "inference": inference, "encode": encode, "fsync": fsync, "patches": len(grid.tiles) + 1}
    return parts | warm_restore(scan, model)


def warm_restore(scan: Path, model: object, runs: int = 1 + BEST_OF) -> dict[str, object]:
    """The whole restore of the scan in this process, after a first run: what each scan of a
    batch costs once a worker has imported its libraries and loaded its model."""
    from restore.pipeline import restore_file

    measured = []  # (wall seconds, per-stage seconds) of each run
    destinations = [scan.with_name(f"warm_check_{i}.tif") for i in range(runs)]  # new files, as in a batch
    for destination in destinations:
        start = time.perf_counter()
        result = restore_file(scan, destination, model, RestoreSettings(model=model.spec.name), source_sha256="0" * 64)
        measured.append((time.perf_counter() - start, result.seconds))
    for destination in destinations:
        destination.unlink()
    wall, stages = min(measured[1:], key=lambda run: run[0])
    return {"warm_wall_s": wall, "warm_stages": {k: round(v, 3) for k, v in stages.items()}}


def single_scan(out: Path, name: str, height: int, width: int, model: str) -> dict[str, object]:
    scan = out / f"{name}.tif"
    if not scan.exists():
        make_scan(scan, height, width)
    results = out / f"{name}_result"
    shutil.rmtree(results, ignore_errors=True)
    wall, _cpu, peak_gb = run_child(CLI + ["colorize", str(scan), "-o", str(results), "--model", model])
    row: dict[str, object] = {"scan": name, "megapixels": round(height * width / 1e6, 1), "wall_s": round(wall, 2), "peak_rss_gb": round(peak_gb, 2)}
    if name.startswith("24"):
        parts = unavoidable_parts(scan, model, results / scan.name)
        floor = parts["decode"] + parts["inference"] + parts["encode"]
        row.update(
            {k: round(v, 3) if isinstance(v, float) else v for k, v in parts.items()},
            unavoidable_s=round(floor, 2), ratio=round(wall / floor, 2), warm_ratio=round(parts["warm_wall_s"] / floor, 2),
            warm_ratio_durable=round(parts["warm_wall_s"] / (floor + parts["fsync"]), 2),
        )
    return row


def batch(out: Path, model: str, workers: int) -> dict[str, object]:
    scans = out / "batch_scans"
    if not scans.exists():
        scans.mkdir(parents=True)
        for i in range(20):
            make_scan(scans / f"scan_{i:02d}.tif", 1732, 2309, seed=i)  # 4 megapixels
    db = out / "batch.db"
    for stale in out.glob("batch.db*"):
        stale.unlink()
    shutil.rmtree(out / "batch_results", ignore_errors=True)
    subprocess.run(CLI + ["ingest", str(scans), "--db", str(db)], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall, cpu, _ = run_child(
        CLI + ["restore", "--db", str(db), "--out", str(out / "batch_results"), "--model", model, "--workers", str(workers)]
    )
    cores = os.cpu_count() or 1
    return {"workers": workers, "scans": 20, "wall_s": round(wall, 1), "scans_per_min": round(20 / wall * 60, 1),
            "cpu_utilisation": round(cpu / (wall * cores), 2)}


def device_name() -> str:
    """Where the models run in this process (and, with the same environment, in its children)."""
    import torch

    from restore.models.device import inference_device

    device = inference_device()
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--skip-100mp", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--workers", default="1,2", help="Dask worker counts for the batch, comma-separated.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {"model": args.model, "cores": os.cpu_count(), "device": device_name()}
    print(json.dumps(report), flush=True)
    report["24mp"] = single_scan(args.out, "24mp_16bit", 4000, 6000, args.model)
    print(json.dumps(report["24mp"]), flush=True)
    if not args.skip_100mp:
        report["100mp"] = single_scan(args.out, "100mp_16bit", 8165, 12247, args.model)
        print(json.dumps(report["100mp"]), flush=True)
    report["batch"] = []
    for workers in [] if args.skip_batch else [int(n) for n in args.workers.split(",")]:
        report["batch"].append(batch(args.out, args.model, workers))  # type: ignore[attr-defined]
        print(json.dumps(report["batch"][-1]), flush=True)  # type: ignore[index]
    (args.out / "restore.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
