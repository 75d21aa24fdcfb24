"""The pipeline on generated scans: size, depth and lightness kept; metadata carried;
tiled equal to whole; no seams; colour that stops at edges; atomic writes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from restore.colour import gray_to_lightness, rgb_to_lab
from restore.models.base import ModelSpec
from restore.models.registry import create_model
from restore.scanio.write import DIGITAL_SOURCE_TYPE
from restore.models.ramp import ramp_colours
from restore.passes import CONTEXT_POINTS_PER_SIDE, context_hints, colorize_working
from restore.pipeline import SkipScan, restore_file
from restore.recombine import bilinear_taps, recombine, saturate
from restore.settings import RestoreSettings
from restore.scanio.read import read_scan
from tests.conftest import GOOD_SCANS, gray_u8, srgb_icc

RAMP = create_model("ramp")


def _restore(src: Path, tmp_path: Path, **settings: object) -> tuple[Path, object]:
    out = tmp_path / "out" / src.name
    result = restore_file(
        src, out, RAMP, RestoreSettings(**settings), source_sha256=hashlib.sha256(src.read_bytes()).hexdigest()
    )
    return out, result


def _lightness_of_file(path: Path) -> np.ndarray:
    pixels = read_scan(path)
    return pixels.l_hw


LOSSLESS = ["tiff_gray8", "tiff_gray16", "tiff_tiled_zlib", "bigtiff", "png_gray8", "png_gray16", "png_gray_alpha", "bmp_gray", "tiff_multipage"]


@pytest.mark.parametrize("name", LOSSLESS + ["jpeg_gray", "jpeg_exif_rotated", "jpeg_sepia", "png_icc", "jpeg_rgb_of_gray"])
def test_result_keeps_size_depth_and_lightness(name: str, make_scan, tmp_path: Path) -> None:
    src = make_scan(name)
    before = read_scan(src)
    out, result = _restore(src, tmp_path)
    after = read_scan(out)
    assert (result.width, result.height) == (before.width, before.height)
    assert (after.width, after.height) == (before.width, before.height)
    assert after.format == before.format
    assert after.bit_depth == before.bit_depth
    assert (after.alpha is None) == (before.alpha is None)
    difference = np.abs(after.l_hw - before.l_hw)
    if name in LOSSLESS:
        assert difference.max() < (0.05 if before.bit_depth == 16 else 0.5)
    else:  # JPEG re-encoding at quality 95
        assert difference.mean() < 1.0
    lab = rgb_to_lab(_rgb_of(out))
    assert np.hypot(lab[..., 1], lab[..., 2]).mean() > 3.0  # it has been coloured


def _rgb_of(path: Path) -> np.ndarray:
    if path.suffix == ".tif":
        data = tifffile.imread(path)
    else:
        data = np.asarray(Image.open(path).convert("RGB"))
    return data[..., :3]


def test_sixteen_bit_result_uses_sixteen_bits(make_scan, tmp_path: Path) -> None:
    out, _ = _restore(make_scan("tiff_gray16"), tmp_path)
    data = tifffile.imread(out)
    assert data.dtype == np.uint16 and data.shape[2] == 3
    assert len(np.unique(data[..., 0] & 0xFF)) > 8  # low bytes carry information


def test_rotated_jpeg_result_is_upright_with_orientation_reset(make_scan, tmp_path: Path) -> None:
    out, result = _restore(make_scan("jpeg_exif_rotated"), tmp_path)
    with Image.open(out) as im:
        assert im.size == (48, 64)
        assert im.getexif().get(0x0112, 1) == 1
    upright = np.rot90(gray_u8(), -1)  # orientation 6: rotate 90 degrees clockwise
    assert np.abs(_lightness_of_file(out) - gray_to_lightness(upright)).mean() < 1.0


def test_colour_scans_are_skipped_unless_asked(make_scan, tmp_path: Path) -> None:
    src = make_scan("jpeg_colour")
    with pytest.raises(SkipScan, match="already in colour"):
        _restore(src, tmp_path)
    out, _ = _restore(src, tmp_path, include_colour=True)
    assert out.exists()


def test_jpeg_metadata_is_carried_and_provenance_added(tmp_path: Path) -> None:
    src = tmp_path / "scan.jpg"
    exif = Image.Exif()
    exif[0x013B] = "Studio Harcourt"  # Artist
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0c\x1c\x02\x05\x00\x07Harbour"
    Image.fromarray(gray_u8()).save(src, quality=92, exif=exif, icc_profile=srgb_icc(), dpi=(400, 400), extra=b"\xff\xed" + (len(iptc) + 2).to_bytes(2, "big") + iptc)
    out, _ = _restore(src, tmp_path)
    with Image.open(out) as im:
        assert im.getexif()[0x013B] == "Studio Harcourt"
        assert im.info["icc_profile"] == srgb_icc()
        assert tuple(round(v) for v in im.info["dpi"]) == (400, 400)
        assert ("APP13", iptc) in im.applist
        xmp = im.info["xmp"]
    assert DIGITAL_SOURCE_TYPE.encode() in xmp
    assert f'photochrom:SourceSHA256="{hashlib.sha256(src.read_bytes()).hexdigest()}"'.encode() in xmp
    assert b'photochrom:Model="ramp"' in xmp


def test_tiff_metadata_is_carried(tmp_path: Path) -> None:
    src = tmp_path / "scan.tif"
    tifffile.imwrite(
        src, gray_u8().astype(np.uint16) * 257, photometric="minisblack", resolution=(1200, 1200), resolutionunit="INCH",
        extratags=[(315, "s", 0, "Lewis Hine", True), (34675, 7, len(srgb_icc()), srgb_icc(), True)],
        description="Mill girl, 1911",
    )
    out, _ = _restore(src, tmp_path)
    with tifffile.TiffFile(out) as tif:
        tags = tif.pages.first.tags
        assert tags["Artist"].value == "Lewis Hine"
        assert bytes(tags["InterColorProfile"].value) == srgb_icc()
        assert tags["ImageDescription"].value == "Mill girl, 1911"
        assert tags["XResolution"].value == (1200, 1)
        assert DIGITAL_SOURCE_TYPE.encode() in bytes(tags["XMP"].value)


def test_tifffile_s_own_shape_record_is_not_carried_as_a_description(tmp_path: Path) -> None:
    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, gray_u8())  # tifffile describes the page as {"shape": [h, w]}
    with tifffile.TiffFile(src) as tif:
        assert tif.pages.first.is_shaped
    out, _ = _restore(src, tmp_path)
    with tifffile.TiffFile(out) as tif:
        page = tif.pages.first
        assert page.shape == gray_u8().shape + (3,)
        assert "ImageDescription" not in page.tags or not page.is_shaped
        assert tif.series[0].shape == page.shape  # no "shaped series shape does not match" on reading


def test_png16_metadata_chunks_are_readable(tmp_path: Path) -> None:
    src = tmp_path / "scan.png"
    Image.fromarray(gray_u8().astype(np.uint16) * 257).save(src, icc_profile=srgb_icc(), dpi=(300, 300))
    out, _ = _restore(src, tmp_path)
    with Image.open(out) as im:
        assert im.info["icc_profile"] == srgb_icc()
        assert DIGITAL_SOURCE_TYPE in im.info["XML:com.adobe.xmp"]
        assert round(im.info["dpi"][0]) == 300
    assert read_scan(out).bit_depth == 16


def test_failed_write_leaves_nothing(make_scan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import restore.scanio.write as output

    def explode(path: Path, *args: object) -> None:
        path.write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setitem(output._WRITERS, "PNG", explode)
    with pytest.raises(OSError, match="disk full"):
        _restore(make_scan("png_gray16"), tmp_path)
    assert list((tmp_path / "out").iterdir()) == []


def test_an_uncompressed_tiff_is_written_as_its_rows_are_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import restore.scanio.rows as result_rows

    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, gray_u8(520, 300).astype(np.uint16) * 257)  # 5 strips of rows
    assert read_scan(src).metadata.tiff_compression is None
    written = []
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: memoryview, position: int) -> int:
        written.append(position)
        if len(written) == 3:
            raise OSError("disk full")
        return real_pwrite(fd, data, position)

    monkeypatch.setattr(result_rows.os, "pwrite", pwrite)
    with pytest.raises(OSError, match="disk full"):
        _restore(src, tmp_path)
    assert list((tmp_path / "out").iterdir()) == []  # no result, no temporary file

    monkeypatch.setattr(result_rows.os, "pwrite", real_pwrite)
    out, result = _restore(src, tmp_path)
    whole = recombine_of(src)
    assert np.array_equal(tifffile.imread(out), whole)  # the same pixels as the array path
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    with tifffile.TiffFile(out) as tif:
        assert tif.pages.first.compression == 1 and DIGITAL_SOURCE_TYPE.encode() in bytes(tif.pages.first.tags["XMP"].value)


@pytest.mark.parametrize("compression", ["zlib", "lzw", "packbits", "zstd"])
def test_a_compressed_tiff_is_written_as_its_rows_are_made(compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import restore.scanio.rows as result_rows

    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, gray_u8(520, 300).astype(np.uint16) * 257, compression=compression)  # 4 strips and 8 rows
    made = []
    real_writer = result_rows.CompressedTiffRows
    monkeypatch.setattr(result_rows, "CompressedTiffRows", lambda *args: made.append(real_writer(*args)) or made[-1])
    out, result = _restore(src, tmp_path)
    assert len(made) == 1  # streamed, not written whole
    assert np.array_equal(tifffile.imread(out), recombine_of(src))  # the same pixels as the array path
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    reference = tmp_path / "reference.tif"  # tifffile writing the whole array with the same strips
    tifffile.imwrite(reference, tifffile.imread(out), photometric="rgb", compression=compression, rowsperstrip=128)
    assert _strip_bytes(out) == _strip_bytes(reference)  # byte for byte (PackBits: runs within rows)
    with tifffile.TiffFile(out) as tif:
        page = tif.pages.first
        assert page.compression == result_rows._STRIP_COMPRESSION_TAGS[compression] and len(page.dataoffsets) == 5
        assert DIGITAL_SOURCE_TYPE.encode() in bytes(page.tags["XMP"].value)
    reference.unlink()
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary file left


def _strip_bytes(path: Path) -> list[bytes]:
    """The stored (compressed) bytes of each strip of a TIFF's first page."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        layout = list(zip(page.dataoffsets, page.databytecounts))
    strips = []
    with path.open("rb") as f:
        for offset, count in layout:
            f.seek(offset)
            strips.append(f.read(count))
    return strips


def test_a_compressed_tiff_failing_part_way_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import restore.scanio.rows as result_rows

    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, gray_u8(520, 300).astype(np.uint16) * 257, compression="zlib")
    real_imwrite = result_rows.tifffile.imwrite

    def disk_fills(path: Path, strips: object, **kwargs: object) -> None:  # the writer thread fails after two strips
        def two_then_full() -> object:
            for count, strip in enumerate(strips, 1):
                if count == 3:
                    raise OSError("disk full")
                yield strip

        real_imwrite(path, two_then_full(), **kwargs)

    monkeypatch.setattr(result_rows.tifffile, "imwrite", disk_fills)
    with pytest.raises(OSError, match="disk full"):
        _restore(src, tmp_path)
    assert list((tmp_path / "out").iterdir()) == []  # no result, no temporary file

    monkeypatch.setattr(result_rows.tifffile, "imwrite", real_imwrite)
    calls = []
    real_writer = result_rows.CompressedTiffRows

    def failing_codec_writer(*args: object) -> result_rows.CompressedTiffRows:  # a computing thread fails
        writer = real_writer(*args)
        real_codec = writer._codec

        def codec(data: np.ndarray, **kwargs: object) -> bytes:
            calls.append(1)
            if len(calls) == 2:
                raise MemoryError("out of memory")
            return real_codec(data, **kwargs)

        writer._codec = codec
        return writer

    monkeypatch.setattr(result_rows, "CompressedTiffRows", failing_codec_writer)
    with pytest.raises(MemoryError):
        _restore(src, tmp_path)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_compressed_result_missing_rows_is_not_published(tmp_path: Path) -> None:
    from restore.scanio.write import Provenance
    from restore.scanio.read import Metadata
    from restore.scanio.rows import CompressedTiffRows

    rows = np.zeros((128, 40, 3), np.uint16)
    with pytest.raises(RuntimeError, match="rows 128.. were never written"):
        with CompressedTiffRows(tmp_path / "r.tif", 300, 40, np.uint16, Metadata(), Provenance("0", "ramp", None, "0" * 64), 128) as writer:
            writer.write(0, rows)
            writer.write(256, rows[:44])
    with pytest.raises(ValueError, match="not one of"):
        with CompressedTiffRows(tmp_path / "r.tif", 300, 40, np.uint16, Metadata(), Provenance("0", "ramp", None, "0" * 64), 128) as writer:
            writer.write(10, rows[:50])
    assert list(tmp_path.iterdir()) == []


def recombine_of(src: Path) -> np.ndarray:
    """The pipeline's pixels for `src` as one array (`colorize`), for comparison."""
    from restore.preview import colorize

    return colorize(read_scan(src), RAMP, RestoreSettings())


class PointwiseRamp:
    """The ramp model at a small input size, so a working image needs many tiles."""

    spec = ModelSpec(name="ramp32", description="test", input_px=32, receptive_field_px=1, takes_hints=True, licence="test", batch_size=5)

    def colorize(self, l_bhw: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        return ramp_colours(l_bhw, hint_ab, hint_mask)


def test_tiled_result_equals_whole_image_result() -> None:
    rng = np.random.default_rng(0)
    l_work = rng.uniform(0, 100, (101, 157)).astype(np.float32)  # 4 x 5 tiles of 32, prime sizes
    context = rng.uniform(-30, 30, (101, 157, 2)).astype(np.float32)
    tiled = colorize_working(l_work, PointwiseRamp(), context)
    hint_ab, hint_mask = context_hints(context, 32 // CONTEXT_POINTS_PER_SIDE)
    whole = ramp_colours(l_work, hint_ab, hint_mask)  # the model on the whole image at once
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


class Disagreeing:
    """A model whose every patch comes out a different flat colour (no hints taken)."""

    spec = ModelSpec(name="disagree", description="test", input_px=32, receptive_field_px=16, takes_hints=False, licence="test")

    def colorize(self, l_bhw: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(int(l_bhw.sum()) % 2**32)
        offsets = rng.uniform(-25, 25, (len(l_bhw), 1, 1, 2)).astype(np.float32)
        return np.broadcast_to(offsets, l_bhw.shape + (2,)).copy()


def test_patches_that_disagree_leave_no_seam() -> None:
    l_work = np.full((120, 200), 50.0, np.float32) + np.random.default_rng(1).uniform(0, 1, (120, 200)).astype(np.float32)
    context = np.zeros((120, 200, 2), np.float32)
    ab = colorize_working(l_work, Disagreeing(), context)
    overlap = Disagreeing.spec.overlap_px
    # Mean-alignment to the global pass pulls every patch to the context's (zero) mean...
    assert np.abs(ab).max() < 1e-3
    # ...and without it, blending spreads any difference over the overlap: no jumps.
    steps = max(np.abs(np.diff(ab, axis=0)).max(), np.abs(np.diff(ab, axis=1)).max())
    assert steps <= 50 * 4.0 / overlap


def test_colour_stops_at_edges_instead_of_bleeding() -> None:
    import cv2

    # Full resolution: dark left half, bright right half, edge at column 200.
    l_full = np.where(np.arange(400)[None, :] < 200, 30.0, 80.0).astype(np.float32).repeat(64, axis=0)
    # Working resolution (1/8): red left, blue right, the step at the edge but blurred over
    # two working pixels, as a model's output is.
    step = np.clip((np.arange(50) + 0.5 - 25) / 2 + 0.5, 0, 1)[None, :, None]
    red, blue = np.array([40.0, 20.0], np.float32), np.array([-10.0, -25.0], np.float32)
    ab_work = (red * (1 - step) + blue * step).astype(np.float32).repeat(8, axis=0)
    lab = rgb_to_lab(recombine(l_full, ab_work, 1.0, np.uint16))
    bilinear = cv2.resize(ab_work, (400, 64), interpolation=cv2.INTER_LINEAR)
    for cols, colour in ((slice(190, 200), red), (slice(200, 210), blue)):
        bleed_guided = np.linalg.norm(lab[:, cols, 1:].mean(axis=(0, 1)) - colour)
        bleed_bilinear = np.linalg.norm(bilinear[:, cols].mean(axis=(0, 1)) - colour)
        assert bleed_guided < 0.5 * bleed_bilinear
    np.testing.assert_allclose(lab[:, 100, 1:], np.broadcast_to(red, (64, 2)), atol=0.5)  # far from the edge: unchanged
    np.testing.assert_allclose(lab[..., 0], l_full, atol=0.05)  # lightness is the scan's


def test_saturation_is_full_in_midtones_and_none_at_the_extremes() -> None:
    l_hw = np.array([[0.0, 50.0, 100.0]], np.float32)
    ab = np.full((1, 3, 2), 10.0, np.float32)
    out = saturate(l_hw, ab, 2.0)
    np.testing.assert_allclose(out[0, :, 0], [10.0, 20.0, 10.0])
    assert saturate(l_hw, ab, 1.0) is ab


def test_bilinear_taps_read_a_grid_as_opencv_resizes_it() -> None:
    import cv2

    grid = np.random.default_rng(5).normal(size=(7, 11)).astype(np.float32)
    rows, cols = bilinear_taps(45, 7), bilinear_taps(60, 11)

    def read(taps, values, axis):
        low, high, weight = taps
        shape = [-1 if a == axis else 1 for a in range(values.ndim)]
        return np.take(values, low, axis) * (1 - weight.reshape(shape)) + np.take(values, high, axis) * weight.reshape(shape)

    np.testing.assert_allclose(read(cols, read(rows, grid, 0), 1), cv2.resize(grid, (60, 45), interpolation=cv2.INTER_LINEAR), atol=1e-5)
    low, high, weight = bilinear_taps(9, 9)  # same size: each pixel is its own cell
    assert np.array_equal(low, np.arange(9)) and not weight.any()
    low, high, weight = bilinear_taps(5, 1)  # one cell: replicated
    assert not low.any() and not high.any()


@pytest.mark.parametrize(("dtype", "saturation", "channels"), [(np.uint16, 1.3, 4), (np.uint8, 1.0, 6)])
def test_the_fused_recombination_loop_matches_its_steps_done_one_by_one(dtype: type, saturation: float, channels: int) -> None:
    """guided_rows_to_rgb (one compiled loop) against the same steps as separate array
    operations: bilinear reading of the coefficients by OpenCV, a*b* from the linear model,
    the saturation gain, the hints' correction, then lab_to_rgb."""
    import cv2

    from restore.colour import guided_rows_to_rgb, lab_to_rgb

    rng = np.random.default_rng(6)
    height, width, grid_h, grid_w = 40, 70, 9, 13
    l_rows = rng.uniform(0, 100, (height, width)).astype(np.float32)
    coefficients = np.concatenate(
        [rng.normal(0, 30, (grid_h, grid_w, 2)), rng.normal(0, 20, (grid_h, grid_w, channels - 2))], axis=2
    ).astype(np.float32)
    taps = bilinear_taps(height, grid_h), bilinear_taps(width, grid_w)
    rgb = guided_rows_to_rgb(l_rows, coefficients, *taps, saturation, dtype)

    read = cv2.resize(coefficients.astype(np.float64), (width, height), interpolation=cv2.INTER_LINEAR)
    ab = read[..., :2] * (l_rows[..., None] / 100.0) + read[..., 2:4]
    ab = saturate(l_rows, ab, saturation)
    if channels == 6:
        ab += read[..., 4:]
    expected = lab_to_rgb(l_rows, ab, dtype)
    assert rgb.shape == (height, width, 3) and rgb.dtype == dtype
    assert np.abs(rgb.astype(np.int64) - expected).max() <= (1 if dtype == np.uint8 else 64)
    assert np.abs(rgb.astype(np.int64) - expected).mean() < 0.05


@pytest.mark.parametrize("name", ["empty", "truncated_png", "not_an_image"])
def test_broken_scans_raise_scan_errors(name: str, make_scan, tmp_path: Path) -> None:
    from restore.scanio.probe import ScanError

    with pytest.raises(ScanError):
        _restore(make_scan(name), tmp_path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_every_good_scan_kind_restores(make_scan, tmp_path: Path) -> None:
    for name in GOOD_SCANS:
        src = make_scan(name, tmp_path / name)
        out, result = _restore(src, tmp_path / name, include_colour=True)
        assert out.exists() and (result.width, result.height) == (read_scan(src).width, read_scan(src).height), name
