"""Repair through the pipeline, with a stand-in segmenter whose answer is known (it flags
bright pixels, and sees a neighbourhood of declared size): the mask written beside the result,
the result's lightness equal to the scan's outside it, the scratch gone inside it, provenance
recorded, repair-only results gray at the scan's depth, and tiled detection equal to whole."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from restore.colour import gray_to_lightness
from restore.models.registry import create_model
from restore.pipeline import mask_path, restore_file
from restore.repair import repair as repair_module
from restore.repair.repair import damage_probability, detect_damage, repair_lightness
from restore.scanio.read import read_scan
from restore.scanio.write import result_provenance
from restore.settings import RepairSettings, RestoreSettings

RAMP = create_model("ramp")


@dataclass(frozen=True)
class FakeSpec:
    name: str = "bright-lines"
    weights_sha256: str | None = "f" * 64
    receptive_field_px: int = 9  # a 9 x 9 mean: probability depends on pixels 4 away
    alignment_px: int = 1  # sees every position alike


class BrightLines:
    """Probability = half for being bright (L* > 92) plus half the share of bright pixels in a
    9 x 9 window: above 0.5 on a bright line, below 0.1 off it for a thin line; the window
    makes the answer depend on neighbours, as a real network's does (tiled must still equal
    whole)."""

    spec = FakeSpec()

    def __init__(self) -> None:
        self.calls = 0

    def probability(self, l_bhw: np.ndarray) -> np.ndarray:
        self.calls += 1
        bright = (l_bhw > 92).astype(np.float32)
        return np.stack([0.5 * b + 0.5 * cv2.blur(b, (9, 9), borderType=cv2.BORDER_CONSTANT) for b in bright])


def _scratched(height: int = 96, width: int = 128, *, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A smooth gray gradient with a one-pixel bright diagonal scratch; (gray, scratch mask)."""
    top = 255 if bits == 8 else 65535
    y, x = np.mgrid[0:height, 0:width]
    gray = (0.25 + 0.35 * x / width + 0.1 * y / height) * top
    scratch = np.abs(y - (0.6 * x + 10)) < 0.7
    gray[scratch] = top
    return gray.astype(np.uint8 if bits == 8 else np.uint16), scratch


def _run(src: Path, tmp_path: Path, settings: RestoreSettings) -> tuple[Path, object]:
    out = tmp_path / "out" / src.name
    result = restore_file(
        src, out, RAMP, settings, source_sha256=hashlib.sha256(src.read_bytes()).hexdigest(), segmenter=BrightLines(), task="job-1/task-1",
    )
    return out, result


REPAIR = RepairSettings(threshold=0.3, margin_px=1)


def test_repair_fills_the_scratch_keeps_lightness_elsewhere_and_writes_the_mask(tmp_path: Path) -> None:
    gray, scratch = _scratched()
    src = tmp_path / "scan.png"
    Image.fromarray(gray).save(src)
    out, result = _run(src, tmp_path, RestoreSettings(repair=REPAIR))

    mask = np.array(Image.open(mask_path(out)))
    assert Image.open(mask_path(out)).mode == "1" and mask.shape == gray.shape
    assert mask[scratch].all()  # every scratch pixel repaired
    assert mask.mean() < 0.1  # and not much else
    l_in, l_out = gray_to_lightness(gray), read_scan(out).l_hw
    assert l_out.shape == l_in.shape
    np.testing.assert_allclose(l_out[~mask], l_in[~mask], atol=0.6)  # 8-bit sRGB rounding of Lab -> RGB
    assert np.abs(l_out[scratch] - l_in[scratch]).min() > 5  # the bright line is gone ...
    neighbours = cv2.dilate(scratch.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~mask
    assert abs(float(l_out[scratch].mean()) - float(l_in[neighbours].mean())) < 3  # ... filled like its surroundings

    fields = result_provenance(out)
    assert fields is not None
    record = json.loads(fields["Repair"])
    assert record["segmenter"] == "bright-lines" and record["weights_sha256"] == "f" * 64
    assert record["mask"] == mask_path(out).name
    assert record["mask_sha256"] == hashlib.sha256(mask_path(out).read_bytes()).hexdigest()
    assert record["fraction"] == pytest.approx(mask.mean(), abs=1e-6)
    assert json.loads(fields["Settings"])["repair"]["threshold"] == 0.3
    assert result.repair == record
    assert result_provenance(mask_path(out))["Task"] == "job-1/task-1"  # the mask says which task made it


def test_repair_only_writes_the_repaired_gray_at_the_scans_depth(tmp_path: Path) -> None:
    gray, scratch = _scratched(bits=16)
    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, gray, photometric="minisblack")
    out, result = _run(src, tmp_path, RestoreSettings(repair=REPAIR, colorize=False))

    written = tifffile.imread(out)
    assert written.dtype == np.uint16 and written.shape == gray.shape  # gray, 16-bit, same size
    mask = np.array(Image.open(mask_path(out)))
    np.testing.assert_array_equal(written[~mask], gray[~mask])  # outside the mask: the scan's own samples
    assert (written[scratch] < 60000).all()  # the white line is filled
    fields = result_provenance(out)
    assert fields["Model"] == "none" and fields["WeightsSHA256"] == ""
    assert "model" not in json.loads(fields["Settings"])
    assert result.patches == 0


def test_an_undamaged_scan_gets_an_empty_mask_and_its_own_lightness(tmp_path: Path) -> None:
    gray, _ = _scratched()
    gray = np.minimum(gray, 200).astype(np.uint8)  # nothing bright: nothing to repair
    src = tmp_path / "clean.png"
    Image.fromarray(gray).save(src)
    out, result = _run(src, tmp_path, RestoreSettings(repair=REPAIR, colorize=False))
    assert not np.array(Image.open(mask_path(out))).any()
    np.testing.assert_array_equal(np.array(Image.open(out)), gray)
    assert result.repair["fraction"] == 0.0


def test_a_mask_left_by_an_interrupted_attempt_of_the_same_task_is_replaced_and_another_is_kept(tmp_path: Path) -> None:
    gray, _ = _scratched()
    src = tmp_path / "scan.png"
    Image.fromarray(gray).save(src)
    out, _ = _run(src, tmp_path, RestoreSettings(repair=REPAIR))
    out.unlink()  # as if killed between the mask and the result
    _run(src, tmp_path, RestoreSettings(repair=REPAIR))  # the same task again: its mask is its own
    assert out.exists()

    out.unlink()
    mask_path(out).write_bytes(b"someone else's file")
    from restore.scanio.write import OutputClaimed

    with pytest.raises(OutputClaimed):
        _run(src, tmp_path, RestoreSettings(repair=REPAIR))
    assert mask_path(out).read_bytes() == b"someone else's file" and not out.exists()


def test_tiled_detection_equals_detection_of_the_whole_image(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    l_hw = rng.uniform(0, 100, (300, 410)).astype(np.float32)
    segmenter = BrightLines()
    whole = segmenter.probability(l_hw[None])[0] > 0.2
    monkeypatch.setattr(repair_module, "DETECTION_TILE_PX", 64)  # 5 x 7 tiles, overlap = the receptive field
    tiled = detect_damage(l_hw, segmenter, 0.2, margin_px=0)
    assert segmenter.calls > 3
    np.testing.assert_array_equal(tiled, whole)
    # The probabilities themselves, tiled the same way (what bench/repair_look.py shows).
    np.testing.assert_array_equal(damage_probability(l_hw, segmenter), segmenter.probability(l_hw[None])[0])


def test_margin_widens_the_mask_by_that_many_pixels() -> None:
    l_hw = np.full((60, 60), 50, np.float32)
    l_hw[30, 10:50] = 100
    bare = detect_damage(l_hw, BrightLines(), 0.3, margin_px=0)
    wide = detect_damage(l_hw, BrightLines(), 0.3, margin_px=2)
    assert bare[30, 10:50].all() and not bare[27].any()
    assert wide[28, 12:48].all() and wide[32, 12:48].all() and not wide[27].any()


def test_repaired_lightness_is_the_scans_outside_the_mask_bit_for_bit() -> None:
    gray, _ = _scratched(200, 300)
    l_hw = gray_to_lightness(gray)
    repair = repair_lightness(l_hw, BrightLines(), REPAIR)
    assert repair.mask_hw.any()
    np.testing.assert_array_equal(repair.l_hw[~repair.mask_hw], l_hw[~repair.mask_hw])
    assert repair.fraction == pytest.approx(repair.mask_hw.mean())


def test_tiled_detection_with_the_shipped_segmenter_equals_its_detection_of_the_whole_image(monkeypatch: pytest.MonkeyPatch) -> None:
    # damage-lite sees the image on a grid (alignment_px): tiles starting off it answered differently.
    from restore.models.damage import load_damage_segmenter
    from restore.repair.synth import synthesize_damage

    segmenter = load_damage_segmenter("cpu")
    tile_px = 2 * segmenter.spec.receptive_field_px + 20  # tile starts not on the grid
    height, width = int(1.7 * tile_px), int(2.4 * tile_px)  # 2 x 3 tiles or more
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    clean = (40 + 30 * x / width + 10 * np.sin(y / 19.0)).astype(np.float32)
    damaged, _ = synthesize_damage(clean, np.random.default_rng(4), amount=2.0)
    whole = segmenter.probability(damaged[None])[0] > 0.5
    monkeypatch.setattr(repair_module, "DETECTION_TILE_PX", tile_px)
    tiled = detect_damage(damaged, segmenter, 0.5, margin_px=0)
    assert whole.sum() > 500
    assert (tiled != whole).mean() < 1e-4  # bfloat16 arithmetic may round a pixel on the threshold


def test_repair_only_needs_no_colorization_model_and_colorizing_does(tmp_path: Path) -> None:
    gray, _ = _scratched()
    src = tmp_path / "scan.png"
    Image.fromarray(gray).save(src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    result = restore_file(src, tmp_path / "gray.png", None, RestoreSettings(repair=REPAIR, colorize=False), source_sha256=digest, segmenter=BrightLines())
    assert result.output.exists()
    with pytest.raises(ValueError, match="no model"):
        restore_file(src, tmp_path / "colour.png", None, RestoreSettings(repair=REPAIR), source_sha256=digest, segmenter=BrightLines())
    assert not (tmp_path / "colour.png").exists()
