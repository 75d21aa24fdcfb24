"""Decompression bombs under the pixel limit: a small file whose decoded pixels would not fit
in memory fails its scan with a reason before anything is decoded (ingest --verify, restore,
colorize), and a MemoryError that gets through anyway is that scan's failure, not a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile
from typer.testing import CliRunner

import restore.scanio.read
import restore.scanio.probe
from catalog.db import open_catalog
from catalog.ingest import IngestSettings, ingest
from cli import app
from restore.scanio.probe import ScanError, probe
from tests.conftest import colour_u8, gray_u8

runner = CliRunner()
MiB = 2**20
# 15000 x 13000 1-bit PNG: 195 megapixels (under the 1-gigapixel default) in a few kilobytes.
BOMB_PX = (15000, 13000)
NEEDS = re.compile(r"needs about [\d.]+ [KMG]iB to decode, 64 MiB available$")


@pytest.fixture
def bomb(tmp_path: Path) -> Path:
    path = tmp_path / "archive" / "bomb.png"
    path.parent.mkdir(parents=True)
    Image.new("1", BOMB_PX, 1).save(path)
    assert path.stat().st_size < 100_000
    return path


@pytest.fixture
def little_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """64 MiB available, as on a busy machine: enough for small scans, not for the bomb."""
    monkeypatch.setattr(restore.scanio.probe, "available_memory", lambda: 64 * MiB)


def test_ingest_verify_fails_the_bomb_before_decoding_it(tmp_path: Path, bomb: Path, little_memory, monkeypatch) -> None:  # noqa: ANN001
    good = bomb.parent / "good.png"
    Image.fromarray(gray_u8(48, 64)).save(good)
    loads = []
    original_load = ImageFile.ImageFile.load

    def load(image: ImageFile.ImageFile):  # noqa: ANN202
        loads.append(image.size)
        return original_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    with open_catalog(tmp_path / "archive.db") as catalog:
        summary = ingest(catalog, [bomb.parent], IngestSettings(verify=True, workers=1))
    assert summary.added == 1
    [failure] = summary.failed
    assert failure.path == str(bomb.resolve())
    assert NEEDS.match(failure.reason), failure.reason
    assert (64, 48) in loads and BOMB_PX not in loads  # the good scan decoded, the bomb refused before


def test_a_colour_tiff_is_checked_before_its_whole_decode_even_without_verify(tmp_path: Path, little_memory) -> None:  # noqa: ANN001
    path = tmp_path / "colour.tif"
    tifffile.imwrite(path, np.tile(colour_u8(), (100, 100, 1)), photometric="rgb", compression="zlib")  # 4800 x 6400 RGB
    with pytest.raises(ScanError) as refused:
        probe(path)
    assert NEEDS.match(refused.value.reason), refused.value.reason


def test_restore_and_colorize_fail_the_bomb_with_the_reason(tmp_path: Path, bomb: Path, monkeypatch) -> None:  # noqa: ANN001
    db = str(tmp_path / "archive.db")
    assert runner.invoke(app, ["ingest", str(bomb.parent), "--db", db]).exit_code == 0  # header only: fine
    monkeypatch.setattr(restore.scanio.probe, "available_memory", lambda: 64 * MiB)
    restored = runner.invoke(app, ["restore", "--db", db, "--model", "ramp", "--scheduler", "synchronous", "--json",
                                   "--out", str(tmp_path / "out")])
    assert restored.exit_code == 1, restored.output
    [failure] = json.loads(restored.stdout)["failed"]
    assert failure["path"] == str(bomb.resolve())
    assert re.search(r": needs about [\d.]+ GiB to decode, 64 MiB available$", failure["reason"]), failure["reason"]
    colorized = runner.invoke(app, ["colorize", str(bomb), "-o", str(tmp_path / "one-off"), "--model", "ramp"])
    assert colorized.exit_code == 1, colorized.output
    assert re.search(rf"failed: {re.escape(str(bomb))}: needs about [\d.]+ GiB to decode, 64 MiB available", colorized.stderr)
    assert "Traceback" not in colorized.output


def test_a_memory_error_while_decoding_fails_only_that_scan(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    for name in ("a.png", "b.png"):
        Image.fromarray(gray_u8(48, 64)).save(tmp_path / name)

    def exhausted(*_args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(restore.scanio.read, "gray_to_lightness", exhausted)
    result = runner.invoke(app, ["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", "ramp"])
    assert result.exit_code == 1, result.output
    assert f"failed: {tmp_path / 'a.png'}: not enough memory to decode it" in result.stderr
    assert "Traceback" not in result.output


def test_the_estimate_covers_what_a_restore_holds(tmp_path: Path) -> None:
    from restore.scanio.read import restore_bytes_needed

    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, colour_u8().astype(np.uint16) * 257, photometric="rgb")
    info = probe(path)
    pixels = info.width * info.height
    # at least the decoded samples, the L* (float32) and the 16-bit RGB result
    assert restore_bytes_needed(info) >= pixels * (3 * 2 + 4 + 3 * 2)
    gray = tmp_path / "gray8.png"
    Image.fromarray(gray_u8()).save(gray)
    assert restore_bytes_needed(probe(gray)) < restore_bytes_needed(info)


def test_on_a_dask_worker_its_memory_limit_counts(monkeypatch) -> None:  # noqa: ANN001
    import distributed
    from types import SimpleNamespace

    system = restore.scanio.probe.available_memory()
    worker = SimpleNamespace(memory_manager=SimpleNamespace(memory_limit=2 * 2**30))
    monkeypatch.setattr(distributed, "get_worker", lambda: worker)
    assert 0 <= restore.scanio.probe.available_memory() < min(system, 2 * 2**30)  # its limit less what it holds
