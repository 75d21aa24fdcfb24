"""Pack a folder of photos for `photochrom train` elsewhere (a GPU machine that takes at
most 64 MiB of carried data): each photo resized and centre-cropped to the model's input,
exactly as training loads it, and saved as a JPEG. Usage:

    python scripts/pack_photos.py SRC DST [--side 224] [--quality 70] [--format webp]
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from restore.models.training import _load_one, image_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--quality", type=int, default=70)
    parser.add_argument("--format", choices=["webp", "jpg"], default="webp")
    args = parser.parse_args()
    args.dst.mkdir(parents=True, exist_ok=True)

    def pack(path: Path) -> int:
        array = _load_one(path, args.side)
        if array is None:
            return 0
        target = args.dst / f"{path.stem}.{args.format}"
        options = {"method": 6} if args.format == "webp" else {}
        Image.fromarray(array).save(target, quality=args.quality, **options)
        return target.stat().st_size

    with ThreadPoolExecutor() as pool:
        sizes = list(pool.map(pack, image_files(args.src)))
    print(f"{sum(1 for s in sizes if s)} photos, {sum(sizes) / 2**20:.1f} MiB in {args.dst}")


if __name__ == "__main__":
    main()
