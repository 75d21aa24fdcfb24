"""Reading a scan's pixels for restoration: upright (EXIF orientation applied), its
full-resolution CIE L*, its alpha, and the metadata to carry over to the result. A scan
whose restoration would not fit in the memory available is refused before it is decoded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import tifffile
from PIL import Image, ImageOps

from restore.colour import gray_to_lightness, rgb_to_lightness
from restore.scanio.files import file_sha256
from restore.scanio.probe import (
    DECODE_COPIES, ScanError, ScanInfo, check_memory, exif_orientation, one_line, open_regular, probe, tiff_dpi,
)
from restore.threads import compute_threads

# TIFF tags copied to a TIFF result as they are (descriptive; pixel layout tags are not).
TIFF_DESCRIPTIVE_TAGS = {
    270: "ImageDescription", 271: "Make", 272: "Model", 305: "Software", 306: "DateTime",
    315: "Artist", 33432: "Copyright", 33723: "IPTC", 34675: "InterColorProfile",
}


# A TIFF result keeps its scan's compression where that is lossless; lossy or exotic
# codecs become zlib (a result is never compressed lossily behind the user's back).
_RESULT_COMPRESSION = {
    tifffile.COMPRESSION.NONE: None,
    tifffile.COMPRESSION.ADOBE_DEFLATE: "zlib",
    tifffile.COMPRESSION.DEFLATE: "zlib",
    tifffile.COMPRESSION.LZW: "lzw",
    tifffile.COMPRESSION.PACKBITS: "packbits",
    tifffile.COMPRESSION.ZSTD: "zstd",
}


@dataclass(frozen=True)
class Metadata:
    """What a result carries over from its scan, where its format allows."""

    exif: bytes | None = None  # EXIF block with orientation reset to 1 (pixels are upright)
    icc: bytes | None = None
    iptc: bytes | None = None  # JPEG APP13 payload or TIFF IPTC tag bytes
    dpi: tuple[float, float] | None = None
    tiff_tags: dict[int, object] = field(default_factory=dict)  # TIFF_DESCRIPTIVE_TAGS found
    # Codec of a TIFF result: the scan's own where lossless (None = uncompressed, as it was);
    # zlib for a result converted from another format.
    tiff_compression: str | None = "zlib"


@dataclass(frozen=True)
class ScanPixels:
    """A scan ready to colorize. `l_hw` is H x W float32 CIE L* (0..100), upright."""

    format: str
    l_hw: np.ndarray
    bit_depth: int  # of the result: 8 or 16
    alpha: np.ndarray | None  # H x W at the result's depth, or None
    tone: str  # monochrome, toned or colour (from the probe)
    metadata: Metadata

    @property
    def height(self) -> int:
        return int(self.l_hw.shape[0])

    @property
    def width(self) -> int:
        return int(self.l_hw.shape[1])


def fit_long_side(height: int, width: int, long_side_px: float) -> tuple[int, int]:
    """(height, width) scaled so that the long side is at most `long_side_px`, never enlarged,
    each side rounded and at least 1 pixel: the size of every reduced copy of a scan."""
    scale = min(1.0, long_side_px / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def restore_bytes_needed(info: ScanInfo) -> int:
    """About the most memory restoring this scan holds at once (restore/pipeline.py), per pixel:
    the decoded samples DECODE_COPIES times (the decoder's output and a converted or upright
    copy), its L* (float32; for a colour scan the whole float32 Lab it is taken from), the RGB
    result and the alpha at the scan's depth. What the model sees is at working resolution:
    a small fraction of a large scan, left out."""
    sample_bytes = 1 if info.bit_depth <= 8 else 2 if info.bit_depth <= 16 else 4
    samples = {"gray": 1, "rgb": 3, "palette": 3, "cmyk": 4}.get(info.colour_mode, 4) + int(info.has_alpha)
    result_bytes = 1 if info.bit_depth <= 8 else 2
    lightness_bytes = 4 if info.colour_mode == "gray" else 12
    per_pixel = DECODE_COPIES * samples * sample_bytes + lightness_bytes + (3 + int(info.has_alpha)) * result_bytes
    return info.width * info.height * per_pixel


def read_scan(path: Path, *, max_pixels: int | None = None) -> ScanPixels:
    """Decode the scan at `path`. Raises ScanError for anything unreadable, or too large to
    restore in the memory available; NotRegularFile (an OSError) for a FIFO, socket or device."""
    info = probe(path, **({"max_pixels": max_pixels} if max_pixels else {}))
    check_memory(path, restore_bytes_needed(info))
    (colour, alpha), metadata = _decode(path, info)
    with _decoding(path, info.format):
        l_hw = gray_to_lightness(colour) if colour.ndim == 2 else rgb_to_lightness(colour)
    bit_depth = 16 if colour.dtype == np.uint16 else 8
    return ScanPixels(info.format, l_hw, bit_depth, alpha, info.tone, metadata)


def read_colour(path: Path) -> tuple[np.ndarray, str]:
    """A colour image (a reference photo, restore/reference.py) decoded as a scan is, upright:
    (H x W x 3 uint8 or uint16 RGB, the SHA-256 of the file's bytes). A gray image comes
    back as three equal channels. Raises ScanError as read_scan does."""
    info = probe(path)
    check_memory(path, restore_bytes_needed(info))
    (colour, _), _ = _decode(path, info)
    rgb = np.repeat(colour[..., None], 3, axis=2) if colour.ndim == 2 else colour
    return rgb, file_sha256(path)


def _decode(path: Path, info: ScanInfo) -> tuple[tuple[np.ndarray, np.ndarray | None], Metadata]:
    """((colour, alpha), metadata) of a probed scan: colour H x W (gray) or H x W x 3, upright."""
    with open_regular(path) as stream, _decoding(path, info.format):
        if info.format == "TIFF":
            return _read_tiff(stream)
        if info.format == "PNG" and info.bit_depth == 16 and info.colour_mode == "rgb":
            return _read_png16_rgb(path, stream)  # Pillow would reduce it to 8 bits
        return _read_pillow(stream)


@contextmanager
def _decoding(path: Path, fmt: str) -> Iterator[None]:
    """Every decoder's failure as this scan's ScanError (decoders raise many types)."""
    try:
        yield
    except ScanError:
        raise
    except MemoryError:  # the estimate was short: this scan's failure, not the job's
        raise ScanError(path, "not enough memory to decode it") from None
    except Exception as exc:
        raise ScanError(path, f"corrupt or unreadable {fmt}: {one_line(exc)}") from exc


def _as_u8_or_u16(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype in (np.uint8, np.uint16):
        return pixels
    if pixels.dtype == bool:
        return pixels.astype(np.uint8) * 255
    if np.issubdtype(pixels.dtype, np.floating):
        return (np.clip(pixels, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    info = np.iinfo(pixels.dtype)
    scaled = (pixels.astype(np.float64) - info.min) / (info.max - info.min)
    return (scaled * 65535.0 + 0.5).astype(np.uint16)


def _split_alpha(pixels: np.ndarray, colour_channels: int) -> tuple[np.ndarray, np.ndarray | None]:
    if pixels.ndim == 2:
        return pixels, None
    colour = pixels[..., 0] if colour_channels == 1 else pixels[..., :colour_channels]
    alpha = pixels[..., colour_channels] if pixels.shape[2] > colour_channels else None
    return colour, alpha


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels (H x W or H x W x C) as they are meant to be seen (EXIF orientation 1..8)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(np.rot90(a, 2), 0, 1),  # transverse
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](pixels)) if orientation in ops else pixels


def _is_layout_record(description: object) -> bool:
    """Whether an ImageDescription is tifffile's ({"shape": [h, w]}) or ImageJ's record of the
    array's layout rather than words about the photo: carried into an RGB result it would
    contradict the result's shape."""
    if not isinstance(description, str):
        return False
    if description.startswith("ImageJ="):
        return True
    try:
        record = json.loads(description)
    except ValueError:
        return False
    return isinstance(record, dict) and "shape" in record


def _read_tiff(stream: BinaryIO) -> tuple[tuple[np.ndarray, np.ndarray | None], Metadata]:
    with tifffile.TiffFile(stream) as tif:
        page = tif.pages.first
        pixels = page.asarray(maxworkers=compute_threads())  # compressed strips decoded in parallel
        photometric = page.photometric
        tags = {code: page.tags[code].value for code in TIFF_DESCRIPTIVE_TAGS if code in page.tags}
        if _is_layout_record(tags.get(270)):
            tags.pop(270)
        orientation = int(page.tags["Orientation"].value) if "Orientation" in page.tags else 1
        colormap = page.colormap if photometric == tifffile.PHOTOMETRIC.PALETTE else None
        compression = _RESULT_COMPRESSION.get(page.compression, "zlib")
        resolution = tiff_dpi(page.tags)
    if photometric == tifffile.PHOTOMETRIC.PALETTE:
        pixels = np.moveaxis(np.asarray(colormap)[:, pixels], 0, -1)  # 16-bit RGB from the map
        pixels = (pixels >> 8).astype(np.uint8)
        colour, alpha = pixels, None
    elif photometric == tifffile.PHOTOMETRIC.SEPARATED:
        cmyk = pixels[..., :4].astype(np.float32) / np.iinfo(pixels.dtype).max
        rgb = (1.0 - cmyk[..., :3]) * (1.0 - cmyk[..., 3:4])
        colour = (rgb * np.iinfo(pixels.dtype).max + 0.5).astype(pixels.dtype)
        alpha = pixels[..., 4] if pixels.shape[-1] > 4 else None
    else:
        pixels = _as_u8_or_u16(pixels)
        colour_channels = 1 if photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE) else 3
        colour, alpha = _split_alpha(pixels, colour_channels)
        if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
            colour = np.iinfo(colour.dtype).max - colour
    colour = upright(colour, orientation)
    alpha = None if alpha is None else upright(alpha, orientation)
    icc = tags.get(34675)
    iptc = tags.get(33723)
    metadata = Metadata(
        icc=bytes(icc) if icc is not None else None,
        iptc=_iptc_bytes(iptc),
        dpi=resolution,
        tiff_tags={k: v for k, v in tags.items() if k not in (34675, 33723)},
        tiff_compression=compression,
    )
    return (colour, alpha), metadata


def _iptc_bytes(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return np.asarray(value).tobytes()  # tifffile may give IPTC as an array of LONGs


def _read_png16_rgb(path: Path, stream: BinaryIO) -> tuple[tuple[np.ndarray, np.ndarray | None], Metadata]:
    # Decoded from the bytes read, not by name: OpenCV cannot open a name that is not UTF-8.
    bgr = cv2.imdecode(np.frombuffer(stream.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    if bgr is None:
        raise ScanError(path, "corrupt or unreadable PNG: OpenCV could not decode it")
    pixels = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGBA if bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    stream.seek(0)
    with Image.open(stream) as im:  # metadata only: no decode
        metadata = _pillow_metadata(im)
        orientation = exif_orientation(im.info.get("exif"))
    colour, alpha = _split_alpha(pixels, 3)
    colour = upright(colour, orientation)
    return (colour, None if alpha is None else upright(alpha, orientation)), metadata


def _pillow_metadata(im: Image.Image) -> Metadata:
    exif_bytes = im.info.get("exif")
    exif = None
    if exif_bytes:
        parsed = Image.Exif()
        parsed.load(exif_bytes)
        parsed[0x0112] = 1  # the result is written upright
        exif = parsed.tobytes()
    iptc = next((payload for marker, payload in getattr(im, "applist", []) if marker == "APP13"), None)
    dpi = im.info.get("dpi")
    return Metadata(
        exif=exif,
        icc=im.info.get("icc_profile") or None,
        iptc=iptc,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi and dpi[0] and dpi[1] else None,
    )


def _read_pillow(stream: BinaryIO) -> tuple[tuple[np.ndarray, np.ndarray | None], Metadata]:
    Image.MAX_IMAGE_PIXELS = None  # the probe in read_scan has enforced our own limits
    with Image.open(stream) as im:
        metadata = _pillow_metadata(im)
        upright = ImageOps.exif_transpose(im)
        mode = upright.mode
        if mode == "1":
            upright = upright.convert("L")
        elif mode in ("P", "PA"):
            upright = upright.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB")
        elif mode == "CMYK":
            upright = upright.convert("RGB")
        elif mode in ("I", "F"):
            pixels = _as_u8_or_u16(np.asarray(upright).astype(np.float64) / (65535.0 if mode == "I" else 1.0))
            return (pixels, None), metadata
        pixels = _as_u8_or_u16(np.asarray(upright))
    colour_channels = 1 if upright.mode in ("L", "LA", "I;16", "I;16B", "I;16L") else 3
    return _split_alpha(pixels, colour_channels), metadata
