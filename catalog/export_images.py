"""Web derivatives of scans and results for the export: 8-bit sRGB JPEGs, thumbnails, and
deep-zoom (DZI) tile pyramids, never the archive's own files."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageCms, ImageOps

from restore.scanio.write import write_atomically
from restore.scanio.read import fit_long_side, upright
from restore.scanio.probe import sniff_format

WEB_JPEG_QUALITY = 85
THUMBNAIL_PX = 256  # long side of a thumbnail
DISPLAY_PX = 2048  # long side of the image a page shows; larger scans also get deep-zoom tiles
DZI_TILE_PX = 254  # with a 1 px overlap each side, tiles are 256 px: what OpenSeadragon expects
DZI_OVERLAP_PX = 1

Image.MAX_IMAGE_PIXELS = None  # catalogued scans already passed ingest's pixel limit


@dataclass(frozen=True)
class Derived:
    """What was written for one source image (sizes in pixels, paths relative to the site)."""

    image: str
    thumbnail: str
    width: int  # of `image`
    height: int
    dzi: str | None  # deep-zoom descriptor, when the source is larger than `image`


def read_rgb_u8(path: Path) -> Image.Image:
    """The image at `path` as it is meant to be seen: upright (EXIF/TIFF orientation), 8-bit RGB,
    converted to sRGB where it carries an ICC profile. 16-bit scans are reduced to 8 bits."""
    if sniff_format(path) == "TIFF":
        return Image.fromarray(_tiff_rgb_u8(path))
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        icc = im.info.get("icc_profile")
        if im.mode.startswith("I;16") or im.mode in ("I", "F"):
            im = Image.fromarray(_u8(np.asarray(im))).convert("RGB")
        elif im.mode == "RGB" and icc:
            im = _to_srgb(im, icc)
        else:
            im = im.convert("RGBA").convert("RGB") if "A" in im.mode or im.mode in ("P", "PA") else im.convert("RGB")
        im.load()
        return im


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError):
        return im  # an unreadable profile: show the pixels as they are


def _tiff_rgb_u8(path: Path) -> np.ndarray:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        pixels = page.asarray()
        photometric = page.photometric
        orientation = int(page.tags["Orientation"].value) if "Orientation" in page.tags else 1
        colormap = np.asarray(page.colormap) if photometric == tifffile.PHOTOMETRIC.PALETTE else None
    if colormap is not None:
        rgb = (np.moveaxis(colormap[:, pixels], 0, -1) >> 8).astype(np.uint8)
    elif photometric == tifffile.PHOTOMETRIC.SEPARATED:
        cmyk = pixels[..., :4].astype(np.float32) / np.iinfo(pixels.dtype).max
        rgb = (255.0 * (1.0 - cmyk[..., :3]) * (1.0 - cmyk[..., 3:4]) + 0.5).astype(np.uint8)
    else:
        if pixels.ndim == 3 and photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE):
            pixels = pixels[..., 0]
        gray = _u8(pixels) if pixels.ndim == 2 else None
        if gray is not None and photometric == tifffile.PHOTOMETRIC.MINISWHITE:
            gray = 255 - gray
        rgb = np.repeat(gray[..., None], 3, -1) if gray is not None else _u8(pixels[..., :3])
    return np.ascontiguousarray(upright(rgb, orientation))


def _u8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return (pixels >> 8).astype(np.uint8)
    if pixels.dtype == bool:
        return pixels.astype(np.uint8) * 255
    if np.issubdtype(pixels.dtype, np.floating):
        return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    info = np.iinfo(pixels.dtype)
    return ((pixels.astype(np.float64) - info.min) / (info.max - info.min) * 255.0 + 0.5).astype(np.uint8)


def derive(source: Path, site: Path, stem: str, *, size: tuple[int, int] | None = None, zoom_over_px: int = DISPLAY_PX) -> Derived:
    """Write `<stem>.jpg` (long side at most DISPLAY_PX), `<stem>_thumb.jpg` and, for a source
    whose long side exceeds `zoom_over_px`, a DZI pyramid `<stem>.dzi` + `<stem>_files/`.

    `size` forces the display image to that width and height, so a result and its original
    line up pixel for pixel in the before/after slider.
    """
    im = read_rgb_u8(source)
    display = im.resize(size, Image.Resampling.LANCZOS) if size else _fit(im, DISPLAY_PX)
    target = site / stem
    target.parent.mkdir(parents=True, exist_ok=True)
    _save_jpeg(display, target.with_name(target.name + ".jpg"))
    _save_jpeg(_fit(im, THUMBNAIL_PX), target.with_name(target.name + "_thumb.jpg"))
    dzi = None
    if max(im.size) > zoom_over_px:
        write_dzi(im, target.with_name(target.name + ".dzi"))
        dzi = f"{stem}.dzi"
    return Derived(f"{stem}.jpg", f"{stem}_thumb.jpg", display.width, display.height, dzi)


def write_mask_overlay(mask: Path, background: Path, target: Path) -> None:
    """`target` (a JPEG): the image at `background` (an original's display JPEG) with the
    repair mask at `mask` (a 1-bit PNG at the scan's size) laid over it in red. The mask is
    reduced by area, so a one-pixel scratch on a 6000 px scan still shows at display size."""
    with Image.open(background) as opened:
        shown = opened.convert("RGB")
    with Image.open(mask) as opened:
        coverage = opened.convert("L").resize(shown.size, Image.Resampling.BOX)
    rgb = np.asarray(shown).astype(np.float32)
    where = np.asarray(coverage) > 0
    rgb[where] = 0.35 * rgb[where] + 0.65 * np.array([230.0, 20.0, 20.0])
    _save_jpeg(Image.fromarray(rgb.astype(np.uint8)), target)


def display_size(width: int, height: int) -> tuple[int, int]:
    """The display image's size (width, height) for a source of this size (what `derive`
    writes without `size`)."""
    return fit_long_side(height, width, DISPLAY_PX)[::-1]


def _fit(im: Image.Image, long_side_px: int) -> Image.Image:
    size = fit_long_side(im.height, im.width, long_side_px)[::-1]
    return im if size == im.size else im.resize(size, Image.Resampling.LANCZOS)


def _save_jpeg(im: Image.Image, path: Path) -> None:
    write_atomically(path, lambda temporary: im.save(temporary, "JPEG", quality=WEB_JPEG_QUALITY, optimize=False))


def write_dzi(im: Image.Image, path: Path) -> None:
    """A Deep Zoom pyramid: `path` (the XML descriptor) and `<stem>_files/<level>/<col>_<row>.jpg`.

    Level L holds the image scaled by 2^(L - max level); level 0 is 1 x 1 px.
    """
    tiles = path.with_name(path.stem + "_files")
    max_level = math.ceil(math.log2(max(im.size))) if max(im.size) > 1 else 0
    level_image = im
    for level in range(max_level, -1, -1):
        scale = 2 ** (max_level - level)
        size = (max(1, math.ceil(im.width / scale)), max(1, math.ceil(im.height / scale)))
        if level_image.size != size:
            level_image = level_image.resize(size, Image.Resampling.LANCZOS)
        folder = tiles / str(level)
        folder.mkdir(parents=True, exist_ok=True)
        for row in range(math.ceil(size[1] / DZI_TILE_PX)):
            for col in range(math.ceil(size[0] / DZI_TILE_PX)):
                left, top = max(0, col * DZI_TILE_PX - DZI_OVERLAP_PX), max(0, row * DZI_TILE_PX - DZI_OVERLAP_PX)
                right = min(size[0], (col + 1) * DZI_TILE_PX + DZI_OVERLAP_PX)
                bottom = min(size[1], (row + 1) * DZI_TILE_PX + DZI_OVERLAP_PX)
                level_image.crop((left, top, right, bottom)).save(folder / f"{col}_{row}.jpg", "JPEG", quality=WEB_JPEG_QUALITY)
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="jpg" Overlap="{DZI_OVERLAP_PX}" '
        f'TileSize="{DZI_TILE_PX}"><Size Width="{im.width}" Height="{im.height}"/></Image>\n'
    )
