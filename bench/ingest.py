"""Ingest throughput beside `sha256sum` on the same files, in the same run.

Generates 1,000 one-megapixel scans (200 each of five kinds archives hold), then for each
kind and for all together measures: `sha256sum` over the files, `ingest` (header probe,
the default), and `ingest --verify` (full decode). Files are read from the page cache in
every case (they were just written, and each measurement is repeated after a warm-up read).

    .venv/bin/python bench/ingest.py [--count 1000] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from skimage import data
from skimage.transform import resize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog.db import open_catalog  # noqa: E402
from catalog.ingest import IngestSettings, ingest  # noqa: E402

SIDE = 1000  # 1 megapixel


def _writers() -> dict[str, object]:
    return {
        "tiff_gray8": lambda p, g: tifffile.imwrite(p.with_suffix(".tif"), g, photometric="minisblack"),
        "tiff_gray16": lambda p, g: tifffile.imwrite(p.with_suffix(".tif"), g.astype(np.uint16) * 257, photometric="minisblack"),
        "tiff_rgb8": lambda p, g: tifffile.imwrite(p.with_suffix(".tif"), np.dstack([g, g, g]), photometric="rgb"),
        "jpeg_rgb": lambda p, g: Image.fromarray(np.dstack([g, g, g])).save(p.with_suffix(".jpg"), quality=90),
        "png_gray8": lambda p, g: Image.fromarray(g).save(p.with_suffix(".png"), compress_level=6),
    }


def generate(root: Path, count: int) -> dict[str, list[Path]]:
    base = (resize(data.camera(), (SIDE, SIDE), order=1) * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    writers = _writers()
    per_kind = count // len(writers)
    made: dict[str, list[Path]] = {}
    for kind, write in writers.items():
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_kind):
            grain = rng.integers(-6, 7, base.shape, dtype=np.int16)  # film grain: every file unique
            write(folder / f"scan_{i:04d}", np.clip(base + grain, 0, 255).astype(np.uint8))
        made[kind] = sorted(folder.iterdir())
    return made


def time_sha256sum(files: list[Path]) -> float:
    start = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, files)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_ingest(folder: Path, db: Path, settings: IngestSettings) -> float:
    db.unlink(missing_ok=True)
    with open_catalog(db) as catalog:
        start = time.perf_counter()
        summary = ingest(catalog, [folder], settings)
        elapsed = time.perf_counter() - start
    assert not summary.failed, summary.failed[:3]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    scans = args.out / "ingest_scans"
    shutil.rmtree(scans, ignore_errors=True)
    made = generate(scans, args.count)
    groups = {**made, "all": [p for files in made.values() for p in files]}
    rows = []
    for kind, files in groups.items():
        folder = scans if kind == "all" else scans / kind
        mb = sum(p.stat().st_size for p in files) / 1e6
        time_sha256sum(files)  # warm the page cache
        sha = time_sha256sum(files)
        header = time_ingest(folder, args.out / "bench.db", IngestSettings())
        verify = time_ingest(folder, args.out / "bench.db", IngestSettings(verify=True))
        rows.append({
            "kind": kind, "files": len(files), "MB": round(mb, 1),
            "sha256sum_MBps": round(mb / sha, 1), "sha256sum_scans_per_s": round(len(files) / sha, 1),
            "ingest_MBps": round(mb / header, 1), "ingest_scans_per_s": round(len(files) / header, 1),
            "ingest_vs_sha256sum": round(sha / header, 2),
            "verify_MBps": round(mb / verify, 1), "verify_scans_per_s": round(len(files) / verify, 1),
        })
    (args.out / "ingest.json").write_text(json.dumps(rows, indent=2))
    print("| scans | files | MB | sha256sum MB/s | ingest MB/s | ingest scans/s | ingest / sha256sum | --verify MB/s | --verify scans/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['files']} | {r['MB']} | {r['sha256sum_MBps']} | {r['ingest_MBps']} | "
              f"{r['ingest_scans_per_s']} | {r['ingest_vs_sha256sum']} | {r['verify_MBps']} | {r['verify_scans_per_s']} |")


if __name__ == "__main__":
    main()
