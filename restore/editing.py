"""The hint editor's renderer (hints/editor/renderer.py's protocol): one scan file and a model, as JPEG.

The editor's server checks every request; this module reads the scan, encodes its
lightness, and colorizes it with the hints it is given (restore/preview.py).
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from hints.editor.renderer import OVERVIEW_LONG_SIDE, PREVIEW_LONG_SIDE
from hints.schema import Hint, colour_to_ab, default_radius
from restore.colour import lab_to_rgb, lightness_to_gray
from restore.passes import reference_guide
from restore.models.registry import create_model
from restore.preview import colorize, colorize_preview
from restore.reference import Reference, ReferenceError, reference_from_file
from restore.scanio.files import file_sha256
from restore.scanio.read import ScanPixels, fit_long_side, read_scan
from restore.settings import RestoreSettings


def _scaled(l_hw: np.ndarray, long_side: int) -> np.ndarray:
    height, width = fit_long_side(*l_hw.shape, long_side)
    if (height, width) == l_hw.shape:
        return l_hw
    return cv2.resize(l_hw, (width, height), interpolation=cv2.INTER_AREA)


def _gray_jpeg(l_hw: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(lightness_to_gray(l_hw, np.uint8), "L").save(out, "JPEG", quality=90)
    return out.getvalue()


def _rgb_jpeg(rgb_u8: np.ndarray) -> bytes:
    out = io.BytesIO()
    # 4:4:4: the default 4:2:0 would halve the resolution of the very thing shown, the colour.
    Image.fromarray(rgb_u8).save(out, "JPEG", quality=92, subsampling=0)
    return out.getvalue()


class ScanRenderer:
    """A scan file and a registered model, for the hint editor. Thread-safe.

    With a reference (restore/reference.py), previews and renders carry its colours as
    `restore --reference` does, and `reference_jpeg` shows where it matched.

    Raises ScanError (an unreadable scan), ModelError (a model that cannot load) or
    ReferenceError (a reference that cannot be used)."""

    def __init__(self, scan_path: Path, model: str = "lite", reference: Path | None = None) -> None:
        scan_path = Path(scan_path)
        self.name = scan_path.name
        self.sha256 = file_sha256(scan_path)
        self.scan: ScanPixels = read_scan(scan_path)
        self.width, self.height = self.scan.width, self.scan.height
        self.settings = RestoreSettings(model=model)
        self.colorizer = create_model(model)
        self.model = self.colorizer.spec.name
        # The preview's L* is made once: a change then costs only the model's global pass.
        l_preview = _scaled(self.scan.l_hw, PREVIEW_LONG_SIDE)
        self.preview_scan = dataclasses.replace(self.scan, l_hw=np.ascontiguousarray(l_preview), alpha=None, bit_depth=8)
        self.preview_size = (self.preview_scan.width, self.preview_scan.height)
        self._model_lock = threading.Lock()  # one model, one colorization at a time
        self._set_reference(reference_from_file(reference) if reference is not None else None)
        self.overview_size = fit_long_side(self.height, self.width, OVERVIEW_LONG_SIDE)[::-1]
        # Warm the model (first calls allocate and load kernels) so the first change is as
        # fast as the rest.
        centre = Hint(self.width // 2, self.height // 2, colour_to_ab("#808080"), default_radius(self.width, self.height))
        self.preview_jpeg([centre])

    def overview_jpeg(self) -> bytes:
        return _gray_jpeg(_scaled(self.scan.l_hw, OVERVIEW_LONG_SIDE))

    def region_jpeg(self, x: int, y: int, w: int, h: int, long_side: int) -> bytes:
        return _gray_jpeg(_scaled(self.scan.l_hw[y : y + h, x : x + w], long_side))

    def lightness(self, x: int, y: int) -> float:
        return float(self.scan.l_hw[y, x])

    def preview_hints(self, hints: Sequence[Hint]) -> list[Hint]:
        """Hints in scan pixels -> the same hints on the preview's pixel grid (centres to centres)."""
        sy, sx = self.preview_scan.height / self.height, self.preview_scan.width / self.width
        return [
            Hint((h.x_px + 0.5) * sx - 0.5, (h.y_px + 0.5) * sy - 0.5, h.ab, max(0.5, h.radius_px * min(sx, sy)), h.note)
            for h in hints
        ]

    def preview_jpeg(self, hints: Sequence[Hint]) -> bytes:
        scaled = self.preview_hints(hints)
        with self._model_lock:
            rgb = colorize_preview(self.preview_scan, self.colorizer, self.settings, scaled, self.preview_guide)
        return _rgb_jpeg(rgb)

    def _set_reference(self, image: Reference | None) -> None:
        # The match is made once, on the preview's L*: each preview then costs no matching.
        guide = reference_guide(self.preview_scan.l_hw, image) if image is not None else None
        with self._model_lock:
            self.reference_image, self.preview_guide = image, guide
            self.reference = guide.summary if guide is not None else None

    def use_reference(self, data: bytes | None, name: str) -> dict[str, object] | None:
        if data is None:
            self._set_reference(None)
            return None
        with tempfile.TemporaryDirectory(prefix="photochrom-reference-") as folder:
            path = Path(folder) / "reference"
            path.write_bytes(data)
            try:
                image = reference_from_file(path)
            except ReferenceError as exc:
                raise ValueError(str(exc).replace(str(path), name)) from None
        self._set_reference(dataclasses.replace(image, name=name))
        return self.reference

    def reference_jpeg(self) -> bytes:
        """Where the reference matched, at preview size: the scan's gray, with the reference's
        colours over it as strongly as the match is confident (gray where nothing matched)."""
        guide = self.preview_guide  # one reading: another thread may pick a new reference
        if guide is None:
            raise ValueError("no reference was given")
        l_hw = self.preview_scan.l_hw
        ab = guide.ab_hw2 * guide.confidence_hw[..., None]
        return _rgb_jpeg(lab_to_rgb(l_hw, np.ascontiguousarray(ab, np.float32), np.uint8))

    def render_jpeg(self, hints: Sequence[Hint]) -> bytes:
        with self._model_lock:
            rgb = colorize(self.scan, self.colorizer, self.settings, hints=hints, reference=self.reference_image)
        if rgb.dtype != np.uint8:  # 16-bit scans: rounded to 8 bits without a full-size float copy
            rgb = cv2.convertScaleAbs(rgb, alpha=255.0 / 65535.0)
        return _rgb_jpeg(rgb)
