"""Instance-aware colorization with a fake detector of known boxes and masks: inside a mask
the chroma is the instance pass's, outside it the full image's, with no jump between;
scans keep their size and lightness; detections are recorded; masks round-trip as RLE."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from restore.colour import rgb_to_lab
from restore.detections import decode_rle, mask_rle
from restore.instances import InstancePass, Placement, colorize_instances, feather_pad, fuse, keep_instances, model_inputs, placement
from restore.settings import InstanceSettings
from restore.models.detectors import Instance, create_detector
from restore.models.registry import create_model
from restore.scanio.write import provenance_fields
from restore.passes import colorize_working
from restore.pipeline import restore_file
from restore.settings import RestoreSettings
from restore.scanio.read import read_scan
from tests.plugins.models import ONE_FIGURE, ellipse_instances, patch_mean_colour

MODEL = create_model("test-patch-mean")  # one flat colour per patch, from its mean L*
FEATHER = 2.0
SETTINGS = InstanceSettings(detector="test-one", min_score=0.5, min_area=0.0, detection_px=200, feather_px=FEATHER)


def _figure_l(height: int, width: int, figures=ONE_FIGURE) -> np.ndarray:  # noqa: ANN001
    """L* 30 background with bright (L* 80) figures where the fake detector finds them, and
    a little texture so nothing is exactly flat."""
    l_hw = np.full((height, width), 30.0, np.float32)
    for instance in ellipse_instances(figures, height, width):
        x0, y0, x1, y1 = instance.box
        l_hw[y0:y1, x0:x1][instance.mask_hw > 0] = 80.0
    return l_hw + np.random.default_rng(0).uniform(0, 2, (height, width)).astype(np.float32)


def _working(l_full: np.ndarray, long_side: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """The working L* and the patch pass's a*b* (the 'full image') for it."""
    scale = long_side / max(l_full.shape)
    size = (round(l_full.shape[1] * scale), round(l_full.shape[0] * scale))
    l_work = cv2.resize(l_full, size, interpolation=cv2.INTER_AREA)
    return l_work, colorize_working(l_work, MODEL, np.zeros(l_work.shape + (2,), np.float32))


def test_fused_chroma_is_the_instance_pass_inside_the_mask_and_the_full_image_outside() -> None:
    l_full = _figure_l(300, 400)
    _, ab_full = _working(l_full)
    fused, detections = colorize_instances(l_full, ab_full, MODEL, SETTINGS, InstancePass(create_detector("test-one")), spacing_px=4)
    assert len(detections.instances) == 1 and detections.size_hw == (150, 200)
    place = placement(detections.instances[0], detections.size_hw, ab_full.shape[:2], FEATHER)
    l_input, _, _ = model_inputs(l_full, ab_full, place, MODEL.spec, (), 4)
    instance_ab = np.array(patch_mean_colour(float(l_input.mean())), np.float32)  # what the model gave the crop

    inside = np.zeros(ab_full.shape[:2], bool)
    inside[place.slices] = place.weight_hw >= 0.999  # the figure, more than 3 sigma inside its edge
    assert inside.sum() > 200
    np.testing.assert_allclose(fused[inside], np.broadcast_to(instance_ab, (inside.sum(), 2)), atol=0.05)
    assert np.abs(ab_full[inside] - instance_ab).max(axis=1).min() > 5.0  # the full pass coloured it otherwise

    outside = np.ones(ab_full.shape[:2], bool)
    outside[place.slices] = place.weight_hw <= 0.0
    assert outside.sum() > 1000
    np.testing.assert_array_equal(fused[outside], ab_full[outside])

    # Smooth: neighbouring pixels differ by at most the full image's own steps plus the
    # difference spread by a Gaussian edge (slope 1 / (sigma sqrt(2 pi)) per pixel) ...
    def steps(ab: np.ndarray) -> float:
        return float(max(np.abs(np.diff(ab, axis=0)).max(), np.abs(np.diff(ab, axis=1)).max()))

    difference = float(np.abs(ab_full - instance_ab).max())
    bound = steps(ab_full) + difference * 1.15 / (FEATHER * np.sqrt(2 * np.pi))
    assert steps(fused) <= bound
    # ... where replacing the colours inside the mask outright jumps by the whole difference.
    hard = ab_full.copy()
    hard[place.slices][place.weight_hw > 0.5] = instance_ab
    assert steps(hard) > 2 * bound


def test_overlapping_instances_blend_by_normalised_weights() -> None:
    ab_full = np.zeros((10, 10, 2), np.float32)
    ones = np.ones((6, 6), np.float32)
    first, second = Placement((0, 0, 6, 6), ones), Placement((4, 4, 10, 10), ones * 0.5)
    red, blue = np.full((6, 6, 2), 10.0, np.float32), np.full((6, 6, 2), -20.0, np.float32)
    fused = fuse(ab_full, [first, second], [red, blue])
    np.testing.assert_allclose(fused[1, 1], [10, 10])  # only the first, at full weight
    np.testing.assert_allclose(fused[8, 8], [-10, -10])  # only the second, at half weight
    # Both: colour (1 * 10 + 0.5 * -20) / 1.5 = 0, at the larger weight, 1.
    np.testing.assert_allclose(fused[5, 5], [0, 0], atol=1e-6)
    np.testing.assert_array_equal(fused[0, 9], [0, 0])


def test_instances_are_kept_by_score_mask_area_and_count() -> None:
    def instance(score: float, side: int) -> Instance:
        return Instance((0, 0, side, side), np.ones((side, side), np.float32), score, "person")

    found = [instance(0.9, 20), instance(0.95, 3), instance(0.6, 30), instance(0.8, 25), instance(0.99, 10)]
    settings = InstanceSettings(min_score=0.7, min_area=0.01, max_instances=2)  # 1% of 100 x 100 = 100 px
    kept = keep_instances(found, (100, 100), settings)
    assert [i.score for i in kept] == [0.99, 0.9]  # 0.6 scores too low, the 3 x 3 box is too small, 0.8 is third
    with pytest.raises(ValueError, match="min_score"):
        InstanceSettings(min_score=1.5)


def test_crop_is_square_with_a_margin_and_its_weight_is_zero_at_inner_borders() -> None:
    mask = np.ones((40, 30), np.float32)
    inner = placement(Instance((30, 20, 60, 60), mask, 0.9, "person"), (100, 100), (100, 100), FEATHER)
    top, left, bottom, right = inner.crop
    assert bottom - top == right - left >= 40 * 1.4 + 2 * feather_pad(FEATHER) - 1  # square, margin and pad
    assert (top + bottom) / 2 == pytest.approx(40, abs=1) and (left + right) / 2 == pytest.approx(45, abs=1)
    weight = inner.weight_hw
    assert weight[0].max() == weight[-1].max() == weight[:, 0].max() == weight[:, -1].max() == 0.0
    assert weight[40 - top, 45 - left] == pytest.approx(1.0, abs=1e-3)

    edge = placement(Instance((0, 0, 30, 40), mask, 0.9, "person"), (100, 100), (100, 100), FEATHER)
    assert edge.crop[:2] == (0, 0)  # shifted inside the image
    assert edge.weight_hw[20, 0] == pytest.approx(1.0, abs=1e-3)  # cut by the frame: its weight reaches the edge
    # Detection and working resolutions differ: the mask lands where the box says.
    half = placement(Instance((30, 20, 60, 60), mask, 0.9, "person"), (100, 100), (50, 50), FEATHER)
    assert half.weight_hw[20 - half.crop[0], 22 - half.crop[1]] == pytest.approx(1.0, abs=1e-3)
    row = half.weight_hw[20 - half.crop[0]]
    assert row[14 - half.crop[1]] < 0.5 < row[15 - half.crop[1]]  # the box's left edge, x = 30 / 2, between them
    assert row[8 - half.crop[1]] < 0.01  # more than 3 sigma outside


def test_mask_rle_is_coco_run_lengths_and_round_trips() -> None:
    instance = Instance((1, 0, 3, 2), np.array([[1, 0], [0.7, 0.2]], np.float32), 0.9, "person")
    rle = mask_rle(instance, (3, 4))
    # Column-major over the 3 x 4 image: column 0 empty, column 1 = [1, 1, 0], column 2 empty.
    assert rle == {"size": [3, 4], "counts": [3, 2, 7]}
    expected = np.zeros((3, 4), bool)
    expected[0:2, 1] = True
    np.testing.assert_array_equal(decode_rle(rle), expected)
    first = Instance((0, 0, 1, 1), np.ones((1, 1), np.float32), 0.9, "person")
    assert mask_rle(first, (2, 2))["counts"] == [0, 1, 3]  # starts with an empty run of zeros


def _save_png16(path: Path, l_hw: np.ndarray) -> Path:
    from restore.colour import lab_to_rgb

    gray = lab_to_rgb(l_hw, np.zeros(l_hw.shape + (2,), np.float32), np.uint16)[..., 0]
    Image.fromarray(gray).save(path)
    return path


def test_restore_with_instances_keeps_size_and_lightness_and_records_detections(tmp_path: Path) -> None:
    src = _save_png16(tmp_path / "group.png", _figure_l(240, 320))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    settings = RestoreSettings(model="test-patch-mean", saturation=1.0, instances=SETTINGS)
    out = tmp_path / "out" / "group.png"
    result = restore_file(src, out, MODEL, settings, source_sha256=digest, instance_pass=InstancePass(create_detector("test-one")))
    plain = restore_file(src, tmp_path / "plain" / "group.png", MODEL, RestoreSettings(model="test-patch-mean", saturation=1.0), source_sha256=digest)
    before, after = read_scan(src), read_scan(out)
    assert (after.width, after.height, after.bit_depth) == (before.width, before.height, 16)
    assert np.abs(after.l_hw - before.l_hw).max() < 0.05
    assert result.patches == plain.patches + 1  # one more model input: the instance

    lab, lab_plain = rgb_to_lab(np.asarray(Image.open(out))), rgb_to_lab(np.asarray(Image.open(plain.output)))
    centre = (120, int(0.45 * 320))  # the figure's centre
    assert np.abs(lab[centre][1:] - lab_plain[centre][1:]).max() > 3.0  # coloured by its own crop
    np.testing.assert_allclose(lab[:40, -40:, 1:], lab_plain[:40, -40:, 1:], atol=0.5)  # far away: unchanged

    fields = provenance_fields(Image.open(out).info["XML:com.adobe.xmp"])
    assert (fields["Detector"], fields["DetectorSHA256"]) == ("test-one", "")
    assert json.loads(fields["Settings"])["instances"]["detector"] == "test-one"
    instances = json.loads(fields["Instances"])
    assert [i["label"] for i in instances] == ["person"]
    x0, y0, x1, y1 = instances[0]["box"]  # in the scan's pixels
    assert x0 == pytest.approx((0.45 - 0.14) * 320, abs=2.5) and y1 == pytest.approx(0.8 * 240, abs=2.5)
    plain_fields = provenance_fields(Image.open(plain.output).info["XML:com.adobe.xmp"])
    assert "instances" not in json.loads(plain_fields["Settings"]) and "Detector" not in plain_fields

    record = result.detections
    assert record["size"] == [150, 200] and record["detector"] == "test-one"
    expected = ellipse_instances(ONE_FIGURE, 150, 200)[0]
    mask = decode_rle(record["instances"][0]["mask_rle"])
    x0, y0, x1, y1 = expected.box
    assert mask.sum() == (expected.mask_hw >= 0.5).sum() and mask[y0:y1, x0:x1].sum() == mask.sum()


def test_settings_ask_for_a_detector(tmp_path: Path) -> None:
    src = _save_png16(tmp_path / "group.png", _figure_l(60, 80))
    with pytest.raises(ValueError, match="no detector was given"):
        restore_file(src, tmp_path / "out.png", MODEL, RestoreSettings(model="test-patch-mean", instances=SETTINGS), source_sha256="0" * 64)
