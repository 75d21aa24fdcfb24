"""Make a small sample archive for `make demo`: scikit-image's bundled photos turned into
black-and-white and sepia scans, saved the ways archives store them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from skimage import data
from skimage.color import rgb2gray
from skimage.transform import resize


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb2gray(rgb) if rgb.ndim == 3 else rgb.astype(np.float64) / 255.0


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "box2").mkdir(exist_ok=True)
    astronaut, coffee, chelsea, rocket = _gray(data.astronaut()), _gray(data.coffee()), _gray(data.chelsea()), _gray(data.rocket())

    # A 16-bit gray TIFF at 1.5x, as a flatbed scanner at high resolution would give.
    big = resize(astronaut, (768, 768), order=3, anti_aliasing=False)
    tifffile.imwrite(out / "astronaut_16bit.tif", (np.clip(big, 0, 1) * 65535).astype(np.uint16),
                     photometric="minisblack", resolution=(600, 600), resolutionunit="INCH", compression="zlib")
    Image.fromarray((coffee * 255).astype(np.uint8)).save(out / "coffee.jpg", quality=92, dpi=(300, 300))
    Image.fromarray((chelsea * 255).astype(np.uint8)).save(out / "box2" / "chelsea.png")
    tint = np.array([1.0, 0.84, 0.62])  # a sepia print, scanned in RGB
    sepia = np.clip(rocket[..., None] * tint * 255 + 12, 0, 255).astype(np.uint8)
    Image.fromarray(sepia).save(out / "box2" / "rocket_sepia.jpg", quality=92)
    # A curator's hint file: the coffee is brown, the saucer's rim a pale blue.
    hints = out.parent / "hints"
    hints.mkdir(exist_ok=True)
    (hints / "coffee.json").write_text(json.dumps({
        "schema": "photochrom.hints/1",
        "space": "normalized",
        "points": [
            {"x": 0.48, "y": 0.36, "color": "#6b4226", "note": "coffee"},
            {"x": 0.18, "y": 0.55, "color": "#aabbd0", "note": "saucer rim"},
        ],
    }, indent=2))
    print(f"sample scans written to {out}, a hint file to {hints}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo/out/scans"))
