"""`photochrom export` on 1,000 restored scans: times a first export (every derivative made,
thumbnails included) and a second one into the same folder (nothing changed).

The catalog is built quickly: 1,000 small gray scans (640 x 480) are ingested, then one
finished restore job is recorded with a result file per scan written as the pipeline
would (a tinted copy with photochrom's XMP), instead of running a model on each.

    .venv/bin/python bench/export.py [--scans 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog.db import open_catalog  # noqa: E402
from catalog.export import export  # noqa: E402
from catalog.ingest import ingest  # noqa: E402
from catalog.models import Job, JobStatus, Scan, Task, TaskStatus, utcnow  # noqa: E402
from restore.scanio.write import Provenance, xmp_packet  # noqa: E402

H, W = 480, 640


def build(root: Path, count: int) -> Path:
    y, x = np.mgrid[0:H, 0:W]
    base = (40 + 150 * x / (W - 1) + 30 * (y > H // 2)).astype(np.int32)
    for i in range(count):
        folder = root / "archive" / f"box{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(base + (i % 50), 0, 255).astype(np.uint8) ^ (i // 50)).save(folder / f"scan_{i:04d}.png")
    db = root / "archive.db"
    with open_catalog(db) as catalog:
        ingest(catalog, [root / "archive"])
        with catalog.write() as session:
            job = Job(kind="restore", created_at=utcnow(), finished_at=utcnow(), status=JobStatus.FINISHED,
                      out_dir=str(root / "restored"), settings=json.dumps({"restore": {"model": "ramp", "saturation": 1.15}}))
            session.add(job)
            session.flush()
            for scan in session.query(Scan).all():
                loc = scan.locations[0]
                out = root / "restored" / loc.relpath
                out.parent.mkdir(parents=True, exist_ok=True)
                gray = np.asarray(Image.open(loc.path).convert("L"), dtype=np.float32)
                rgb = np.clip(gray[..., None] * np.array([1.0, 0.85, 0.65]), 0, 255).astype(np.uint8)
                xmp = xmp_packet(Provenance("bench", "ramp", None, scan.sha256, {"model": "ramp"}, task=f"job-{job.id}/bench"))
                Image.fromarray(rgb).save(out, "PNG", pnginfo=_xmp_info(xmp))
                session.add(Task(job=job, scan=scan, source_path=loc.path, output_path=str(out), result_key="bench",
                                 status=TaskStatus.DONE, attempts=1, finished_at=utcnow(),
                                 output_sha256=hashlib.sha256(out.read_bytes()).hexdigest()))
    return db


def _xmp_info(xmp: bytes):  # noqa: ANN202
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="Build in this folder and keep it (default: a temporary one).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        db = build(root, args.scans)
        built = time.perf_counter() - t0
        with open_catalog(db, create=False) as catalog:
            t0 = time.perf_counter()
            first = export(catalog, root / "site")
            first_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            second = export(catalog, root / "site")
            second_s = time.perf_counter() - t0
    report = {
        "scans": args.scans, "size_px": [W, H], "build_s": round(built, 1),
        "first_export_s": round(first_s, 1), "first_written": first.written, "failed": len(first.failed),
        "second_export_s": round(second_s, 1), "second_written": second.written,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
