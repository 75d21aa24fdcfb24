"""Show that a change leaves photochrom's results as they were: restore the demo archive and
colorize gray versions of photos from a folder with one version of the code, again with
another, then compare every result (pixels exactly; metadata and provenance apart from the
tool version).

    python scripts/same_outputs.py run /tmp/before            # at the old commit
    python scripts/same_outputs.py run /tmp/after             # at the new one
    python scripts/same_outputs.py compare /tmp/before /tmp/after

`run` uses the command line only (its contract does not change between versions), so the
same script serves both sides. Exit 0 when every result is the same, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO.parent / "shared" / "data" / "dev"
RESULT_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


def _photochrom(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def _gray_scans(photos: Path, count: int, out: Path) -> None:
    """The first `count` photos as gray scans, stored the ways archives store them (8-bit
    PNG, JPEG, 16-bit TIFF in turn), and a hint file for the first."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"))[:count]
    for i, photo in enumerate(chosen):
        gray = np.asarray(Image.open(photo).convert("L"))
        stem = f"{i:02d}_{photo.stem}"
        if i % 3 == 0:
            Image.fromarray(gray).save(out / f"{stem}.png")
        elif i % 3 == 1:
            Image.fromarray(gray).save(out / f"{stem}.jpg", quality=92)
        else:
            tifffile.imwrite(out / f"{stem}.tif", gray.astype(np.uint16) * 257, photometric="minisblack", compression="zlib")
    first = sorted(out.iterdir())[0]
    hints = out.parent / "hints"
    hints.mkdir(exist_ok=True)
    (hints / f"{first.stem}.json").write_text(json.dumps({
        "schema": "photochrom.hints/1", "space": "normalized",
        "points": [{"x": 0.3, "y": 0.3, "color": "#3a6ea5"}, {"x": 0.7, "y": 0.8, "color": "#8a5a2b", "radius": 6}],
    }))


def run(out: Path, photos: Path, count: int) -> None:
    demo = out / "demo"
    subprocess.run([sys.executable, str(REPO / "demo" / "make_scans.py"), str(demo / "scans")], check=True, stderr=subprocess.DEVNULL)
    db = str(demo / "archive.db")
    _photochrom("ingest", str(demo / "scans"), "--db", db)
    _photochrom("restore", "--db", db, "--out", str(demo / "restored"), "--hints", str(demo / "hints"), "--scheduler", "synchronous")
    _photochrom("restore", "--db", db, "--out", str(demo / "propagate"), "--hints", str(demo / "hints"), "--model", "propagate",
                "--scheduler", "synchronous")
    dev = out / "dev"
    _gray_scans(photos, count, dev / "scans")
    _photochrom("colorize", str(dev / "scans"), "-o", str(dev / "colorized"), "--hints", str(dev / "hints"))


def _pixels(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        return tifffile.imread(path)
    return np.asarray(Image.open(path))


def _provenance(path: Path) -> dict[str, str]:
    from restore.scanio.write import result_provenance  # noqa: PLC0415 - the side being checked is the current tree

    fields = dict(result_provenance(path) or {})
    fields.pop("Tool", None)
    return fields


def _metadata(path: Path) -> dict[str, object]:
    with Image.open(path) as image:
        return {key: image.info.get(key) for key in ("icc_profile", "dpi", "exif")}


def compare(before: Path, after: Path) -> int:
    names = sorted(p.relative_to(before) for p in before.rglob("*") if p.suffix.lower() in RESULT_SUFFIXES and "scans" not in p.parts)
    others = sorted(p.relative_to(after) for p in after.rglob("*") if p.suffix.lower() in RESULT_SUFFIXES and "scans" not in p.parts)
    problems = [f"{name}: only in {after}" for name in sorted(set(others) - set(names))]
    identical_bytes = 0
    for name in names:
        a, b = before / name, after / name
        if not b.is_file():
            problems.append(f"{name}: missing in {after}")
            continue
        pa, pb = _pixels(a), _pixels(b)
        if pa.shape != pb.shape or pa.dtype != pb.dtype or not np.array_equal(pa, pb):
            differ = int(np.count_nonzero(pa != pb)) if pa.shape == pb.shape else "all"
            problems.append(f"{name}: pixels differ ({differ} samples)")
        if _provenance(a) != _provenance(b):
            problems.append(f"{name}: provenance differs")
        if _metadata(a) != _metadata(b):
            problems.append(f"{name}: ICC, DPI or EXIF differ")
        identical_bytes += a.read_bytes() == b.read_bytes()
    for problem in problems:
        print(problem)
    print(f"{len(names)} results compared: {len(names) - len({p.split(':')[0] for p in problems})} the same "
          f"(pixels, provenance apart from the tool version, ICC/DPI/EXIF), {identical_bytes} byte for byte")
    return 1 if problems or not names else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("run", help="make every result into OUT")
    make.add_argument("out", type=Path)
    make.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="colour photos to turn gray (default: ../shared/data/dev)")
    make.add_argument("--count", type=int, default=20)
    check = commands.add_parser("compare", help="compare two runs' results")
    check.add_argument("before", type=Path)
    check.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.out, args.photos, args.count)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
