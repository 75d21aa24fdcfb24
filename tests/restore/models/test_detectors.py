"""The detector backends: torchvision's Mask R-CNN end to end with random weights saved to a
file and imported (loading, SHA-256, thresholds and fusion wiring, not accuracy), and
detectron2 where it is installed (skipped, with the reason, where it is not)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cli import app
from restore.models.detectors import detector_problem, get_detector_spec
from restore.models.installed import weights_sha256
from restore.scanio.files import file_sha256
from restore.scanio.read import read_scan
from restore.scanio.write import provenance_fields

runner = CliRunner()
HAS_DETECTRON2 = importlib.util.find_spec("detectron2") is not None
NO_DETECTRON2 = "detectron2 is not installed (optional: built from source against the installed torch, see the README)"


@pytest.fixture(scope="module")
def random_maskrcnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Mask R-CNN state dict with random weights, as torchvision's own builder makes it
    (BatchNorm2d with counters, unlike the published file): what a user's fine-tuned file holds."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    net = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path_factory.mktemp("weights") / "maskrcnn_random.pth"
    torch.save(net.state_dict(), path)
    return path


def _group_scan(path: Path) -> Path:
    y, x = np.mgrid[0:240, 0:320]
    gray = 60 + 0.3 * x
    for cx in (80, 160, 240):  # three light figures
        gray[((x - cx) / 30.0) ** 2 + ((y - 130) / 70.0) ** 2 <= 1] = 200
    Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).save(path)
    return path


def test_maskrcnn_end_to_end_with_random_weights(random_maskrcnn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(tmp_path / "models"))
    scans = tmp_path / "scans"
    scans.mkdir()
    scan = _group_scan(scans / "group.png")

    imported = runner.invoke(app, ["models", "import", "maskrcnn_resnet50_fpn", str(random_maskrcnn), "--json"])
    assert imported.exit_code == 0, imported.output
    record = json.loads(imported.stdout)
    assert record["tensors"] == 307  # the published layout: no BatchNorm counters
    assert weights_sha256(get_detector_spec("maskrcnn_resnet50_fpn")) == record["sha256"]
    listed = {m["name"]: m for m in json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)}
    assert listed["maskrcnn_resnet50_fpn"]["kind"] == "detector"
    assert listed["maskrcnn_resnet50_fpn"]["installed"] == f"imported ({record['sha256'][:12]})"

    # The scan is 320 px wide, under the 800-px detection size: detection runs at 320 x 240.
    result = runner.invoke(app, [
        "colorize", str(scan), "-o", str(tmp_path / "out"), "--model", "ramp",
        "--instances", "--instance-min-score", "0", "--max-instances", "3", "--json",
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["warnings"] == []
    found = report["written"][0]["instances"]
    assert 1 <= len(found) <= 3  # random weights find boxes everywhere; at most --max-instances kept
    assert [f["score"] for f in found] == sorted((f["score"] for f in found), reverse=True)
    labels = set(get_detector_spec("maskrcnn_resnet50_fpn").labels)
    for instance in found:
        x0, y0, x1, y1 = instance["box"]
        assert instance["label"] in labels and 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240

    out = tmp_path / "out" / "group.png"
    assert np.abs(read_scan(out).l_hw - read_scan(scan).l_hw).max() < 0.5
    fields = provenance_fields(Image.open(out).info["XML:com.adobe.xmp"])
    assert (fields["Detector"], fields["DetectorSHA256"]) == ("maskrcnn_resnet50_fpn", record["sha256"])
    assert json.loads(fields["Instances"]) == found
    assert json.loads(fields["Settings"])["instances"] == {
        "detector": "maskrcnn_resnet50_fpn", "min_score": 0.0, "min_area": 0.005, "max_instances": 3,
        "detection_px": 800, "feather_px": 2.0,
    }

    # Replaced weights fail their SHA-256: said once, and colorized without instances.
    stored = tmp_path / "models" / "maskrcnn_resnet50_fpn.pt"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    again = runner.invoke(app, ["colorize", str(scan), "-o", str(tmp_path / "again"), "--instances", "--model", "ramp", "--json"])
    assert again.exit_code == 0, again.output
    warnings = json.loads(again.stdout)["warnings"]
    assert len(warnings) == 1 and "is not the imported" in warnings[0] and warnings[0].endswith("colorizing without instances")
    assert "Detector" not in provenance_fields(Image.open(tmp_path / "again" / "group.png").info["XML:com.adobe.xmp"])


def test_missing_detector_weights_are_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(tmp_path / "models"))
    for k in range(2):
        _group_scan(tmp_path / f"group_{k}.png")
    result = runner.invoke(app, ["colorize", str(tmp_path), "-o", str(tmp_path / "out"), "--instances", "--model", "ramp"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "instances" in line]
    assert len(lines) == 1, result.stderr  # once for the run, not once per scan
    assert lines[0].startswith("warning: --instances: detector 'maskrcnn_resnet50_fpn' is not installed: download it")
    assert "photochrom models import maskrcnn_resnet50_fpn FILE" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["group_0.png", "group_1.png"]


def test_a_detector_is_not_a_model_and_an_unknown_detector_is_a_usage_error(tmp_path: Path) -> None:
    scan = _group_scan(tmp_path / "group.png")
    as_model = runner.invoke(app, ["colorize", str(scan), "-o", str(tmp_path / "out"), "--model", "maskrcnn_resnet50_fpn"])
    assert as_model.exit_code == 2 and "is a detector, not a colorization model" in as_model.stderr
    unknown = runner.invoke(app, ["colorize", str(scan), "-o", str(tmp_path / "out"), "--instances", "--detector", "yolo"])
    assert unknown.exit_code == 2 and "--detector: unknown detector 'yolo'; available:" in unknown.stderr


@pytest.mark.skipif(HAS_DETECTRON2, reason="detectron2 is installed: this checks the message shown without it")
def test_without_detectron2_its_detector_says_how_to_install_it() -> None:
    problem = detector_problem("detectron2")
    assert problem is not None and "not installed" in problem
    assert "pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'" in problem


@pytest.mark.skipif(not HAS_DETECTRON2, reason=NO_DETECTRON2)
def test_detectron2_backend_with_random_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detectron2 import model_zoo
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from restore.models.detectors import create_detector

    config = Path(model_zoo.get_config_file("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml"))
    cfg = get_cfg()
    cfg.merge_from_file(str(config))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    weights = tmp_path / "random.pth"
    torch.save({"model": build_model(cfg).state_dict()}, weights)
    monkeypatch.setenv("PHOTOCHROM_DETECTRON2_CONFIG", str(config))
    monkeypatch.setenv("PHOTOCHROM_DETECTRON2_WEIGHTS", str(weights))
    assert detector_problem("detectron2") is None
    detector = create_detector("detectron2")
    assert detector.spec.weights_sha256 == weights_sha256(get_detector_spec("detectron2")) == file_sha256(weights)
    l_hw = np.asarray(read_scan(_group_scan(tmp_path / "group.png")).l_hw, np.float32)
    for instance in detector.detect(l_hw, 0.0):
        x0, y0, x1, y1 = instance.box
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240 and instance.mask_hw.shape == (y1 - y0, x1 - x0)
