"""`photochrom evaluate` on two tiny photos: the table's rows, a PSNR known in advance,
and a hint colour measured where it was given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from restore.colour import lightness_to_gray, rgb_to_lab
from jobs.evaluate import (
    EvaluateError,
    EvaluateSettings,
    colourfulness,
    evaluate,
    markdown_table,
    parse_counts,
    psnr_u8,
    report_summary,
    write_report,
)


def make_photos(folder: Path) -> Path:
    folder.mkdir()
    red = np.zeros((30, 40, 3), np.uint8)
    red[:] = (180, 40, 40)
    Image.fromarray(red).save(folder / "a_red.png")
    y, x = np.mgrid[0:36, 0:28]
    ramp = np.stack([40 + 6 * x, 60 + 4 * y, np.full_like(x, 150)], -1).astype(np.uint8)
    Image.fromarray(ramp).save(folder / "b_ramp.png")
    return folder


def test_psnr_and_colourfulness_known_cases() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # one channel of one pixel off by 255: mse = 255^2 / 48
    assert psnr_u8(a, b) == pytest.approx(10 * np.log10(48))
    assert psnr_u8(a, a) == float("inf")
    assert colourfulness(np.full((3, 3, 3), 90, np.uint8)) == 0.0
    assert colourfulness(np.full((3, 3, 3), (255, 0, 0), np.uint8)) == pytest.approx(0.3 * np.hypot(255, 127.5))


def test_evaluate_reports_gray_baseline_models_and_hint_errors(tmp_path: Path) -> None:
    data = make_photos(tmp_path / "photos")
    report = evaluate(EvaluateSettings(data=data, models=("propagate", "ramp"), counts=(0, 1), saturation=1.0))
    assert report["photos"] == 2
    rows = {(r["photo"], r["model"], r["hints"]): r for r in report["rows"]}
    assert len(rows) == 2 * (1 + 2 * 2)
    # The gray baseline's PSNR, computed independently: the photo against its own gray.
    truth = np.asarray(Image.open(data / "a_red.png"))
    gray16 = lightness_to_gray(rgb_to_lab(truth)[..., 0], np.uint16)
    gray8 = np.repeat(np.rint(gray16 / 257.0).astype(np.uint8)[..., None], 3, axis=2)
    assert rows[("a_red.png", "gray", 0)]["psnr"] == pytest.approx(psnr_u8(gray8, truth))
    # One hint on a photo of one colour: propagation gives it everywhere, so almost the photo
    # (16 dB, against the gray's 12, while patches of scans smaller than the model got their
    # hints' a*b* interpolated with zeros).
    one_hint = rows[("a_red.png", "propagate", 1)]
    assert one_hint["psnr"] > 30 and one_hint["hint_error_max"] < 1.0
    assert rows[("a_red.png", "propagate", 0)]["psnr"] == pytest.approx(rows[("a_red.png", "gray", 0)]["psnr"], abs=0.5)
    table = markdown_table(report)
    assert "| gray | 0 |" in table and "| propagate | 1 |" in table and "| ramp | 0 |" in table
    summary = {(e["model"], e["hints"]): e for e in report["summary"]}
    assert summary[("propagate", 1)]["psnr"] == pytest.approx(np.mean([rows[(p, "propagate", 1)]["psnr"] for p in ("a_red.png", "b_ramp.png")]))


def test_evaluate_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(EvaluateError, match="not a folder"):
        evaluate(EvaluateSettings(data=tmp_path / "missing"))
    with pytest.raises(EvaluateError, match="unknown model 'nope'"):
        evaluate(EvaluateSettings(data=tmp_path, models=("nope",)))


def test_evaluate_command_writes_json_and_table(tmp_path: Path) -> None:
    data = make_photos(tmp_path / "photos")
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", str(data), "--model", "ramp", "--counts", "0,10", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert [(e["model"], e["hints"]) for e in summary] == [("gray", 0), ("ramp", 0), ("ramp", 10)]
    assert (out / "evaluation.md").read_text().startswith("2 photos")
    assert len(json.loads((out / "evaluation.json").read_text())["rows"]) == 2 * 3
    bad = CliRunner().invoke(app, ["evaluate", str(data), "--counts", "1,x"])
    assert bad.exit_code == 2 and "--counts 1,x" in bad.output


def test_counts_and_the_report_files(tmp_path: Path) -> None:
    assert parse_counts("0,1,10") == (0, 1, 10)
    with pytest.raises(EvaluateError, match="^--counts 1,x: expected whole numbers separated by commas$"):
        parse_counts("1,x")
    with pytest.raises(EvaluateError, match="^--counts 0,-1: counts cannot be negative$"):
        parse_counts("0,-1")
    report = evaluate(EvaluateSettings(data=make_photos(tmp_path / "photos"), models=("ramp",), counts=(0,)))
    out = tmp_path / "new" / "eval"  # made if missing
    table = write_report(report, out)
    assert table == markdown_table(report) == (out / "evaluation.md").read_text()
    assert json.loads((out / "evaluation.json").read_text()) == json.loads(json.dumps(report))  # all of it, rows too
    assert report_summary(report) == {"settings": report["settings"], "photos": 2, "summary": report["summary"]}


def test_neutral_cast_counts_truly_neutral_pixels_the_result_made_colourful() -> None:
    from jobs.evaluate import neutral_cast

    truth = np.zeros((4, 5, 3), np.float32)
    truth[..., 0] = 70
    truth[0, :, 1] = 40  # one row of the truth is colourful: not neutral, not counted
    result = truth.copy()
    result[1, :2, 2] = 20  # two neutral pixels turned colourful (chroma 20 > 15)
    result[2, :3, 1] = 10  # three given chroma 10: coloured a little, not "colourful"
    assert neutral_cast(truth, result) == {"neutral_pixels": 15, "neutral_colourful": 2}


def test_evaluate_measures_lite_weights_a_training_made(tmp_path: Path) -> None:
    # A `train` run's lite.pt is measured through the whole pipeline instead of the shipped
    # weights, and the report names it by SHA-256; anything else is refused in one line.
    from restore.models.lite import LiteColorNet, LiteConfig, save_weights
    from restore.scanio.files import file_sha256

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    weights = tmp_path / "lite.pt"
    save_weights(LiteColorNet(LiteConfig(input_px=64, dim=32, depth=1, heads=2)), weights)
    data = make_photos(tmp_path / "photos")
    report = evaluate(EvaluateSettings(data=data, models=("lite",), counts=(0,), limit=1, weights=weights))
    assert report["settings"]["weights_sha256"] == file_sha256(weights)
    assert [r["model"] for r in report["rows"]] == ["gray", "lite"]
    assert file_sha256(weights)[:12] in markdown_table(report)
    (tmp_path / "junk.pt").write_bytes(b"not weights")
    with pytest.raises(EvaluateError, match="junk.pt: not a photochrom-lite weights file"):
        evaluate(EvaluateSettings(data=data, models=("lite",), weights=tmp_path / "junk.pt"))
    with pytest.raises(EvaluateError, match="lite is not among the models"):
        evaluate(EvaluateSettings(data=data, models=("ramp",), weights=weights))
    with pytest.raises(EvaluateError, match="not a weights file"):
        evaluate(EvaluateSettings(data=data, models=("lite",), weights=tmp_path))
