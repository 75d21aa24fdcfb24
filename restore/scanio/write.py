"""Writing results: atomically, in the scan's format and bit depth, carrying the scan's EXIF,
ICC profile and IPTC where the format allows, and saying in XMP how the result was made.

Every result carries XMP with `Iptc4xmpExt:DigitalSourceType` = compositeWithTrainedAlgorithmicMedia
(IPTC's term for an edit of a real photograph by a trained model) and a `photochrom:`
provenance record: tool version, model and weights SHA-256, source and hint-file
SHA-256, settings, and the job task that wrote it; with instance-aware colorization, also
the detector, its weights' SHA-256 and each instance's label, score and box in the
result's pixels (masks go to the catalog: they would not fit a JPEG's XMP).
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import re
import stat
import struct
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np
import tifffile
from PIL import Image

from restore.scanio.read import Metadata
from restore.threads import compute_threads

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
PHOTOCHROM_XMP_NS = "https://github.com/photochrom/photochrom/ns/provenance/1.0/"
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Provenance:
    tool_version: str
    model: str
    weights_sha256: str | None
    source_sha256: str
    settings: dict[str, object] = field(default_factory=dict)
    hints_sha256: str | None = None
    task: str | None = None  # "<job id>/<task id>": lets a resumed job recognise its own output
    detections: dict[str, object] | None = None  # restore.detections.Detections.summary, if instances were on
    # With --repair: segmenter, its weights' SHA-256, the mask's file name, SHA-256 and fraction of pixels.
    repair: dict[str, object] | None = None
    # With --reference: its name and SHA-256, and what matched (planes, inliers, pairs, coverage).
    reference: dict[str, object] | None = None


def xmp_packet(provenance: Provenance) -> bytes:
    """An XMP packet with the IPTC digital source type and the photochrom provenance record."""
    fields = {
        "Tool": f"photochrom {provenance.tool_version}",
        "Model": provenance.model,
        "WeightsSHA256": provenance.weights_sha256 or "",
        "SourceSHA256": provenance.source_sha256,
        "HintsSHA256": provenance.hints_sha256 or "",
        "Settings": json.dumps(provenance.settings, sort_keys=True),
        "Task": provenance.task or "",
    }
    if provenance.detections is not None:  # only then: results without instances keep their bytes
        fields["Detector"] = str(provenance.detections["detector"])
        fields["DetectorSHA256"] = str(provenance.detections["weights_sha256"] or "")
        fields["Instances"] = json.dumps(provenance.detections["instances"], sort_keys=True)
    if provenance.repair is not None:  # likewise: results without repair keep their bytes
        fields["Repair"] = json.dumps(provenance.repair, sort_keys=True)
    if provenance.reference is not None:  # likewise
        fields["Reference"] = json.dumps(provenance.reference, sort_keys=True)
    attributes = "\n".join(f"    photochrom:{key}={quoteattr(value)}" for key, value in fields.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        f"    xmlns:photochrom={quoteattr(PHOTOCHROM_XMP_NS)}\n"
        f"    Iptc4xmpExt:DigitalSourceType={quoteattr(DIGITAL_SOURCE_TYPE)}\n"
        f"{attributes}/>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode("utf-8")


def provenance_fields(xmp: bytes | str) -> dict[str, str]:
    """The `photochrom:` attributes of an XMP packet written by `xmp_packet`, by name
    ("Model", "Settings", "Instances", ...); JSON-valued ones are left as text."""
    import xml.etree.ElementTree as ElementTree

    text = xmp.decode("utf-8") if isinstance(xmp, bytes) else xmp
    root = ElementTree.fromstring(text[text.index("<x:xmpmeta") : text.index("</x:xmpmeta>") + len("</x:xmpmeta>")])
    prefix = "{" + PHOTOCHROM_XMP_NS + "}"
    return {
        key[len(prefix) :]: value
        for element in root.iter()
        for key, value in element.attrib.items()
        if key.startswith(prefix)
    }


def task_marker(task: str) -> bytes:
    """The bytes by which a result file shows which task wrote it (inside its XMP)."""
    return f"photochrom:Task={quoteattr(task)}".encode()


#: The bytes by which any photochrom result can be recognised (its XMP namespace).
RESULT_MARKER = PHOTOCHROM_XMP_NS.encode()


def file_contains(path: Path, marker: bytes) -> bool:
    """Whether the file at `path` contains `marker` (read through a memory map)."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(marker) >= 0


def write_result(
    path: Path, rgb: np.ndarray, alpha: np.ndarray | None, fmt: str, metadata: Metadata, provenance: Provenance,
    *, replace: bool = False,
) -> str:
    """Write `rgb` (H x W x 3 uint8 or uint16 sRGB, or H x W gray) to `path` atomically; return
    the file's SHA-256. A gray image with alpha is written as RGB with alpha (PNG holds no
    gray-with-alpha that OpenCV encodes).

    The file appears complete or not at all: it is written to a temporary name in the
    same folder, flushed to disk, then published (see `publish`: an existing file at
    `path` is replaced only with `replace`, else OutputClaimed is raised).
    """
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise ValueError(f"cannot write format {fmt!r}; expected one of {sorted(_WRITERS)}")
    if rgb.ndim == 2 and alpha is not None:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if fmt in ("JPEG", "BMP") and rgb.dtype == np.uint16:
        rgb = (rgb >> 8).astype(np.uint8)
        alpha = None if alpha is None else (alpha >> 8).astype(np.uint8)
    if alpha is not None and alpha.dtype != rgb.dtype:
        alpha = (alpha.astype(np.uint32) * 257).astype(np.uint16) if rgb.dtype == np.uint16 else (alpha >> 8).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        writer(temporary, rgb, alpha, metadata, xmp_packet(provenance))
        return publish(temporary, path, replace=replace)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_mask(path: Path, mask_hw: np.ndarray, provenance: Provenance) -> str:
    """Write a repair mask (H x W bool, True = repaired) as a 1-bit PNG carrying the result's
    XMP provenance, atomically; return its SHA-256. Published as results are (`publish`),
    except that a mask left by an interrupted attempt of the same task is replaced: the
    mask is published before its result, so a crash between the two leaves one."""
    from PIL.PngImagePlugin import PngInfo

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(provenance).decode("utf-8"))
    ours = provenance.task is not None and (path.exists() or path.is_symlink()) and result_task(path) == provenance.task
    try:
        Image.fromarray(np.ascontiguousarray(mask_hw, dtype=bool)).save(temporary, "PNG", pnginfo=info, optimize=False)
        return publish(temporary, path, replace=ours)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class OutputClaimed(Exception):
    """The result's path was taken by someone else while the result was being made; nothing
    was overwritten. The message names the path and, for a photochrom result, its job."""

    def __init__(self, path: Path) -> None:
        writer = result_task(path)
        by = f"job {writer.split('/')[0].removeprefix('job-')}" if writer else "another program"
        super().__init__(f"{path}: claimed by {by}; not overwritten")
        self.path, self.writer = path, writer


def publish(temporary: Path, path: Path, *, replace: bool = False) -> str:
    """Flush the finished temporary file to disk and give it the name `path`; its SHA-256.

    Unless `replace`, the name is taken only if nothing has it: a hard link, which fails
    when the name exists, where a rename would silently replace it (two runs writing one
    folder: the first to finish keeps the path, the other gets OutputClaimed). On
    filesystems without hard links the name is claimed by creating it exclusively first.
    The file is hashed (reading the page cache, CPU) while another thread waits for fsync
    (the disk): 24 MP, 16-bit, 0.1 s and 0.06-0.08 s, one after the other before."""
    with open(temporary, "rb") as f, ThreadPoolExecutor(1) as pool:
        synced = pool.submit(os.fsync, f.fileno())
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        synced.result()
    if replace:
        os.replace(temporary, path)
    else:
        _publish_new(temporary, path)
    _fsync_folder(path.parent)
    return digest


def _publish_new(temporary: Path, path: Path) -> None:
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise OutputClaimed(path) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        try:  # no hard links here: claim the name exclusively, then rename over our own claim
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            raise OutputClaimed(path) from None
        os.replace(temporary, path)
    else:
        temporary.unlink()


def result_provenance(path: Path) -> dict[str, str] | None:
    """The `photochrom:` provenance fields of the result at `path` (see `provenance_fields`),
    or None when it is not a regular file holding a photochrom XMP packet."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) or f.seek(0, 2) == 0:
                return None
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                start = data.find(b"<x:xmpmeta")
                end = data.find(b"</x:xmpmeta>", start)
                packet = data[start : end + len(b"</x:xmpmeta>")] if 0 <= start < end else b""
    except OSError:
        return None
    if RESULT_MARKER not in packet:
        return None
    try:
        return provenance_fields(packet)
    except (ValueError, SyntaxError):  # ElementTree.ParseError, a damaged packet
        return None


def result_task(path: Path) -> str | None:
    """Which job task wrote the photochrom result at `path` ("job-N/task-M"), if any."""
    fields = result_provenance(path)
    return (fields or {}).get("Task") or None


#: What `write_result` names its temporary files: ".<final name>.<12 hex digits>.tmp".
TEMPORARY_PATTERN = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def temporary_target(name: str) -> str | None:
    """The final name that one of our temporary files (`temporary_name`) was for, or None."""
    found = TEMPORARY_PATTERN.match(name)
    return found.group("name") if found else None


def write_atomically(path: Path, write: Callable[[Path], None], *, durable: bool = False) -> None:
    """Write `path` through `write(temporary)` and a rename, so a reader finds the old file or
    the whole new one, never part of it. The temporary file is hidden beside `path`, named as
    TEMPORARY_PATTERN says, and removed if writing fails; `durable` flushes file and folder
    to disk, for files whose loss would cost a person's work."""
    temporary = temporary_name(path)
    try:
        write(temporary)
        if durable:
            with open(temporary, "rb") as stream:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
        if durable:
            _fsync_folder(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tiff_arguments(metadata: Metadata, xmp: bytes) -> dict[str, object]:
    """tifffile's arguments for a result's tags: XMP, the scan's ICC, IPTC, descriptive tags,
    resolution and compression."""
    extratags: list[tuple[int, int | str, int, object, bool]] = [(700, 1, len(xmp), xmp, True)]
    if metadata.icc:
        extratags.append((34675, 7, len(metadata.icc), metadata.icc, True))
    if metadata.iptc:
        extratags.append((33723, 7, len(metadata.iptc), metadata.iptc, True))
    for code, value in metadata.tiff_tags.items():
        if code != 270 and isinstance(value, str) and value:
            extratags.append((code, "s", 0, value, True))
    return {
        "compression": metadata.tiff_compression,
        "resolution": metadata.dpi,
        "resolutionunit": "INCH" if metadata.dpi else None,
        "description": metadata.tiff_tags.get(270) if isinstance(metadata.tiff_tags.get(270), str) else None,
        "metadata": None,
        "software": False,
        "extratags": extratags,
    }


def _write_tiff(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, metadata: Metadata, xmp: bytes) -> None:
    data = rgb if alpha is None else np.dstack([rgb, alpha])
    extrasamples = ("unassalpha",) if alpha is not None else None
    # A compressed result's strips are compressed on the process's compute threads: tifffile
    # left to itself used one here (24 MP, 16-bit, zlib: 2.4 s; on 2 threads 1.4 s).
    tifffile.imwrite(
        path, data, photometric="rgb" if rgb.ndim == 3 else "minisblack", extrasamples=extrasamples, maxworkers=compute_threads(), **tiff_arguments(metadata, xmp)
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, metadata: Metadata, xmp: bytes) -> None:
    # OpenCV encodes 16-bit RGB PNG (Pillow cannot); metadata chunks go in after IHDR.
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, encoded = cv2.imencode(".png", bgr if alpha is None else np.dstack([bgr, alpha]))
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    png = encoded.tobytes()
    chunks = [_png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)]
    if metadata.icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(metadata.icc)))
    if metadata.exif:
        exif = metadata.exif[6:] if metadata.exif.startswith(b"Exif\x00\x00") else metadata.exif
        chunks.append(_png_chunk(b"eXIf", exif))
    if metadata.dpi:
        per_metre = [round(d / 0.0254) for d in metadata.dpi]
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", per_metre[0], per_metre[1], 1)))
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, then IHDR: length, type, 13 bytes of data, CRC
    with open(path, "wb") as f:
        f.write(png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:])


def _write_jpeg(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, metadata: Metadata, xmp: bytes) -> None:
    options: dict[str, object] = {"quality": JPEG_QUALITY, "xmp": xmp}
    if metadata.exif:
        options["exif"] = metadata.exif
    if metadata.icc:
        options["icc_profile"] = metadata.icc
    if metadata.dpi:
        options["dpi"] = metadata.dpi
    if metadata.iptc:  # Pillow cannot write APP13 itself: pass the original segment through
        options["extra"] = b"\xff\xed" + struct.pack(">H", len(metadata.iptc) + 2) + metadata.iptc
    Image.fromarray(rgb).save(path, "JPEG", **options)


def _write_bmp(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, metadata: Metadata, xmp: bytes) -> None:
    Image.fromarray(rgb).save(path, "BMP")  # BMP holds no metadata


_WRITERS: dict[str, Callable[[Path, np.ndarray, np.ndarray | None, Metadata, bytes], None]] = {
    "TIFF": _write_tiff,
    "PNG": _write_png,
    "JPEG": _write_jpeg,
    "BMP": _write_bmp,
}
