"""Probing scans: every format and mode is described correctly, every broken file is refused
with its own reason, and nothing is decoded that need not be."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restore.scanio.probe import ScanError, classify_tone, probe
from tests.conftest import BAD_SCANS, GOOD_SCANS, H, W, colour_u8, gray_u8, sepia_u8


@pytest.mark.parametrize("name", GOOD_SCANS)
def test_probe_describes_each_format_and_mode(name: str, make_scan) -> None:
    path = make_scan(name)
    info = probe(path)
    expected = {"width": W, "height": H, "has_alpha": False, "pages": 1, "exif_orientation": 1}
    expected.update(GOOD_SCANS[name][2])
    actual = {key: getattr(info, key) for key in expected}
    assert actual == expected


@pytest.mark.parametrize("verify", [False, True])
@pytest.mark.parametrize("name", BAD_SCANS)
def test_probe_refuses_each_broken_file_with_its_reason(name: str, verify: bool, make_scan) -> None:
    path = make_scan(name)
    if name == "dangling_link":  # probe needs a file; ingest reports the link as unreadable
        with pytest.raises(OSError):
            probe(path, verify=verify)
        return
    with pytest.raises(ScanError) as caught:
        probe(path, verify=verify)
    assert BAD_SCANS[name][2] in caught.value.reason
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_pixel_limit_refuses_before_decoding(make_scan) -> None:
    path = make_scan("png_gray8")
    with pytest.raises(ScanError, match=r"too large: 64x48 = 3,072 pixels exceeds the limit of 3,000"):
        probe(path, max_pixels=3000)
    assert probe(path, max_pixels=3072).pixels == 3072


def test_pixel_limit_above_pillows_own_guard(tmp_path: Path) -> None:
    # Pillow refuses images over ~179 megapixels on its own; our limit is what counts.
    # A 1-bit PNG of 15000 x 13000 (195 MP) is only a few kilobytes.
    path = tmp_path / "big.png"
    Image.new("1", (15000, 13000), 1).save(path)
    info = probe(path)
    assert (info.width, info.height, info.bit_depth) == (15000, 13000, 1)
    with pytest.raises(ScanError, match="too large"):
        probe(path, max_pixels=100_000_000)


def test_verify_decodes_whole_image_of_gray_scan(tmp_path: Path) -> None:
    # A gray PNG whose pixel data is damaged but whose end is intact: the header-only
    # probe cannot see it; --verify must.
    path = tmp_path / "damaged.png"
    noise = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 40] = b"\x00" * 40
    path.write_bytes(bytes(data))
    assert probe(path).colour_mode == "gray"
    with pytest.raises(ScanError, match="corrupt or unreadable PNG"):
        probe(path, verify=True)


def test_misnamed_file_is_probed_by_content(tmp_path: Path) -> None:
    path = tmp_path / "actually_png.tif"
    Image.fromarray(gray_u8()).save(path, format="PNG")
    assert probe(path).format == "PNG"


@pytest.mark.parametrize(
    ("rgb", "tone"),
    [
        (np.repeat(gray_u8()[..., None], 3, -1), "monochrome"),
        (sepia_u8(), "toned"),
        (colour_u8(), "colour"),
    ],
)
def test_classify_tone(rgb: np.ndarray, tone: str) -> None:
    assert classify_tone(rgb)[0] == tone


def test_toned_hue_is_reported() -> None:
    tone, hue = classify_tone(sepia_u8())
    assert tone == "toned"
    assert hue is not None and 40.0 < hue < 100.0  # sepia: orange-yellow in CIE LCh


def test_cyanotype_is_toned_blue() -> None:
    g = gray_u8().astype(np.float32) / 255.0
    cyan = np.clip(255 * np.stack([0.25 * g, 0.55 * g + 0.1, 0.9 * g + 0.1], -1), 0, 255).astype(np.uint8)
    tone, hue = classify_tone(cyan)
    assert tone == "toned"
    assert hue is not None and 200.0 < hue < 300.0
