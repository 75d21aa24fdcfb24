"""Fixtures that make their own small scans: every format and colour mode ingest accepts,
and the broken files archives really contain."""

from __future__ import annotations

import functools
import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

H, W = 48, 64  # small, not square, so a swapped width and height shows


def gray_u8(h: int = H, w: int = W) -> np.ndarray:
    """A gray test pattern with edges and gradients."""
    y, x = np.mgrid[0:h, 0:w]
    img = 40 + 150 * (x / max(w - 1, 1)) + 40 * (y > h // 2)
    return np.clip(img, 0, 255).astype(np.uint8)


def colour_u8(h: int = H, w: int = W) -> np.ndarray:
    """An RGB image with many hues (a hue wheel), clearly true colour."""
    y, x = np.mgrid[0:h, 0:w]
    hsv = np.stack([(x * 179 // max(w - 1, 1)), np.full_like(x, 200), 90 + 120 * y // max(h - 1, 1)], -1)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def sepia_u8(h: int = H, w: int = W) -> np.ndarray:
    """A gray pattern printed in sepia: one warm hue throughout."""
    g = gray_u8(h, w).astype(np.float32) / 255.0
    tint = np.array([1.0, 0.82, 0.6], dtype=np.float32)
    return np.clip(255.0 * g[..., None] * tint + 10.0, 0, 255).astype(np.uint8)


@functools.cache
def srgb_icc() -> bytes:
    """An sRGB ICC profile; made once per run, because lcms stamps each one it makes with the
    time (a test comparing a carried profile with a second one made a second later failed)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _pil(path: Path, array: np.ndarray, **kw: object) -> None:
    Image.fromarray(array).save(path, **kw)


def _jpeg_oriented(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: stored W x H, seen H x W
    Image.fromarray(gray_u8()).save(path, quality=90, exif=exif)


def _tiff_palette(path: Path) -> None:
    cmap = np.zeros((3, 256), dtype=np.uint16)
    cmap[0] = np.arange(256) * 257
    cmap[1] = np.arange(256)[::-1] * 257
    cmap[2] = (np.arange(256) * 3 % 256) * 257
    tifffile.imwrite(path, gray_u8(), photometric="palette", colormap=cmap)


#: name -> (file name, writer, expected probe attributes)
GOOD_SCANS: dict[str, tuple[str, Callable[[Path], None], dict[str, object]]] = {
    "tiff_gray8": (
        "tiff_gray8.tif",
        lambda p: tifffile.imwrite(p, gray_u8(), photometric="minisblack", resolution=(300, 300), resolutionunit="INCH"),
        dict(format="TIFF", bit_depth=8, colour_mode="gray", tone="monochrome", dpi=(300.0, 300.0)),
    ),
    "tiff_gray16": (
        "tiff_gray16.tif",
        lambda p: tifffile.imwrite(p, gray_u8().astype(np.uint16) * 257, photometric="minisblack"),
        dict(format="TIFF", bit_depth=16, colour_mode="gray", tone="monochrome", dpi=None),
    ),
    "tiff_rgb8": (
        "tiff_rgb8.tif",
        lambda p: tifffile.imwrite(p, colour_u8(), photometric="rgb"),
        dict(format="TIFF", bit_depth=8, colour_mode="rgb", tone="colour"),
    ),
    "tiff_rgb16_gray_content": (
        "tiff_rgb16.tif",
        lambda p: tifffile.imwrite(p, np.repeat(gray_u8()[..., None], 3, -1).astype(np.uint16) * 257, photometric="rgb"),
        dict(format="TIFF", bit_depth=16, colour_mode="rgb", tone="monochrome"),
    ),
    "tiff_multipage": (
        "tiff_multipage.tif",
        lambda p: tifffile.imwrite(p, np.stack([gray_u8()] * 3), photometric="minisblack"),
        dict(format="TIFF", pages=3, colour_mode="gray"),
    ),
    "tiff_tiled_zlib": (
        "tiff_tiled.tif",
        lambda p: tifffile.imwrite(p, gray_u8(64, 96), tile=(32, 32), compression="zlib", photometric="minisblack"),
        dict(format="TIFF", width=96, height=64, bit_depth=8, colour_mode="gray"),
    ),
    "bigtiff": (
        "bigtiff.tif",
        lambda p: tifffile.imwrite(p, gray_u8(), bigtiff=True, photometric="minisblack"),
        dict(format="TIFF", bit_depth=8, colour_mode="gray"),
    ),
    "tiff_cmyk": (
        "tiff_cmyk.tif",
        lambda p: tifffile.imwrite(p, np.dstack([255 - colour_u8(), np.zeros((H, W), np.uint8)]), photometric="separated"),
        dict(format="TIFF", colour_mode="cmyk", tone="colour"),
    ),
    "tiff_palette": ("tiff_palette.tif", _tiff_palette, dict(format="TIFF", colour_mode="palette", tone="colour")),
    "jpeg_gray": ("jpeg_gray.jpg", lambda p: _pil(p, gray_u8(), quality=90), dict(format="JPEG", colour_mode="gray", bit_depth=8)),
    "jpeg_colour": (
        "jpeg_colour.jpg",
        lambda p: _pil(p, colour_u8(), quality=95, dpi=(600, 600)),
        dict(format="JPEG", colour_mode="rgb", tone="colour", dpi=(600.0, 600.0)),
    ),
    "jpeg_sepia": ("jpeg_sepia.jpg", lambda p: _pil(p, sepia_u8(), quality=95), dict(format="JPEG", tone="toned")),
    "jpeg_rgb_of_gray": (
        "jpeg_rgb_gray.jpg",
        lambda p: _pil(p, np.repeat(gray_u8()[..., None], 3, -1), quality=90),
        dict(format="JPEG", colour_mode="rgb", tone="monochrome"),
    ),
    "jpeg_exif_rotated": (
        "jpeg_rotated.jpg",
        _jpeg_oriented,
        dict(format="JPEG", width=H, height=W, exif_orientation=6),
    ),
    "jpeg_cmyk": (
        "jpeg_cmyk.jpg",
        lambda p: Image.fromarray(colour_u8()).convert("CMYK").save(p, quality=95),
        dict(format="JPEG", colour_mode="cmyk", tone="colour"),
    ),
    "png_gray8": ("png_gray8.png", lambda p: _pil(p, gray_u8()), dict(format="PNG", bit_depth=8, colour_mode="gray")),
    "png_gray16": (
        "png_gray16.png",
        lambda p: _pil(p, gray_u8().astype(np.uint16) * 257),
        dict(format="PNG", bit_depth=16, colour_mode="gray", tone="monochrome"),
    ),
    "png_rgb16": (
        "png_rgb16.png",
        lambda p: cv2.imwrite(str(p), colour_u8().astype(np.uint16) * 257),
        dict(format="PNG", bit_depth=16, colour_mode="rgb", tone="colour"),
    ),
    "png_rgba": (
        "png_rgba.png",
        lambda p: _pil(p, np.dstack([colour_u8(), np.full((H, W), 200, np.uint8)])),
        dict(format="PNG", colour_mode="rgb", has_alpha=True),
    ),
    "png_gray_alpha": (
        "png_la.png",
        lambda p: Image.fromarray(gray_u8()).convert("LA").save(p),
        dict(format="PNG", colour_mode="gray", has_alpha=True),
    ),
    "png_palette_gray": (
        "png_palette.png",
        lambda p: Image.fromarray(gray_u8()).convert("P").save(p),
        dict(format="PNG", colour_mode="palette", tone="monochrome"),
    ),
    "png_icc": (
        "png_icc.png",
        lambda p: Image.fromarray(sepia_u8()).save(p, icc_profile=srgb_icc()),
        dict(format="PNG", has_icc=True, tone="toned"),
    ),
    "bmp_gray": ("bmp_gray.bmp", lambda p: _pil(p, gray_u8()), dict(format="BMP", colour_mode="gray")),
    "bmp_rgb": ("bmp_rgb.bmp", lambda p: _pil(p, colour_u8()), dict(format="BMP", colour_mode="rgb", tone="colour")),
}


def _valid_bytes(writer: Callable[[Path], None], tmp: Path) -> bytes:
    writer(tmp)
    data = tmp.read_bytes()
    tmp.unlink()
    return data


def _truncated(name: str, fraction: float = 0.6) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        data = _valid_bytes(GOOD_SCANS[name][1], p.with_name("_full" + p.suffix))
        p.write_bytes(data[: int(len(data) * fraction)])

    return write


def _corrupt_png(p: Path) -> None:
    data = bytearray(_valid_bytes(GOOD_SCANS["png_gray8"][1], p.with_name("_full.png")))
    data[16:24] = b"\xff" * 8  # width and height in IHDR: CRC fails
    p.write_bytes(bytes(data))


#: name -> (file name, writer, words the failure reason must contain)
BAD_SCANS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "empty": ("empty.tif", lambda p: p.write_bytes(b""), "empty file"),
    "not_an_image": ("notes.jpg", lambda p: p.write_text("Box 12, folder 3: negatives\n"), "not a supported image"),
    "truncated_jpeg": ("cut.jpg", _truncated("jpeg_colour"), "truncated JPEG"),
    "truncated_png": ("cut.png", _truncated("png_gray8"), "truncated PNG"),
    "truncated_tiff": ("cut.tif", _truncated("tiff_gray16"), "truncated TIFF"),
    "truncated_bmp": ("cut.bmp", _truncated("bmp_gray"), "truncated BMP"),
    "corrupt_png": ("corrupt.png", _corrupt_png, "corrupt"),
    "dangling_link": ("gone.tif", lambda p: p.symlink_to(p.with_name("no-such-scan.tif")), "unreadable"),
}


@pytest.fixture
def make_scan(tmp_path: Path) -> Callable[..., Path]:
    """make_scan(name, folder=None) writes the named good or bad scan and returns its path."""

    def make(name: str, folder: Path | None = None) -> Path:
        folder = folder or tmp_path / "scans"
        folder.mkdir(parents=True, exist_ok=True)
        filename, writer = (GOOD_SCANS[name][:2] if name in GOOD_SCANS else BAD_SCANS[name][:2])
        path = folder / filename
        writer(path)
        return path

    return make


@pytest.fixture
def scan_folder(tmp_path: Path, make_scan: Callable[..., Path]) -> Path:
    """A folder holding every good scan kind, some in a subfolder."""
    folder = tmp_path / "archive"
    for i, name in enumerate(GOOD_SCANS):
        make_scan(name, folder / "box2" if i % 3 == 0 else folder)
    return folder


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def chromium():  # noqa: ANN201 - (playwright.sync_api module, path of the browser)
    """Debian's headless Chromium driven by Playwright (no browser is downloaded). Skips,
    saying which is missing, where the browser or Playwright is absent, before a test
    builds anything."""
    path = os.environ.get("PHOTOCHROM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.skip(f"no Chromium at {path} (apt-get install chromium, or set PHOTOCHROM_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    return sync_api, path
