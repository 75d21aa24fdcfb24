"""The command line as users and scripts meet it: exit codes, --json on stdout, one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from tests.conftest import GOOD_SCANS

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _run(*args: str):  # noqa: ANN202
    return runner.invoke(app, list(args))


def test_ingest_json_summary_and_exit_codes(tmp_path: Path, scan_folder: Path, make_scan) -> None:
    db = str(tmp_path / "archive.db")
    first = _run("ingest", str(scan_folder), "--db", db, "--json")
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["added"], report["known"], report["failed"]) == (len(GOOD_SCANS), 0, [])

    bad = make_scan("truncated_png", tmp_path / "more")
    second = _run("ingest", str(scan_folder), str(bad.parent), "--db", db, "--json")
    assert second.exit_code == 1  # some items failed, the rest done
    report = json.loads(second.stdout)
    assert report["known"] == len(GOOD_SCANS)
    assert report["failed"] == [{"path": str(bad.resolve()), "reason": "truncated PNG: no IEND chunk"}]


def test_ingest_human_summary_lists_failures_on_stderr(tmp_path: Path, make_scan) -> None:
    bad = make_scan("empty")
    result = _run("ingest", str(bad), "--db", str(tmp_path / "archive.db"))
    assert result.exit_code == 1
    assert f"failed: {bad.resolve()}: empty file (0 bytes)" in result.stderr
    assert result.stdout == ""


def test_missing_source_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("ingest", str(tmp_path / "nowhere"), "--db", str(tmp_path / "archive.db"))
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"photochrom: error: {tmp_path / 'nowhere'}: no such file or folder"]


def test_scans_list_and_show(tmp_path: Path, make_scan) -> None:
    db = str(tmp_path / "archive.db")
    path = make_scan("tiff_gray16")
    assert _run("ingest", str(path), "--db", db).exit_code == 0
    rows = json.loads(_run("scans", "list", "--db", db, "--json").stdout)
    assert [(r["id"], r["format"], r["bit_depth"], r["path"]) for r in rows] == [(1, "TIFF", 16, str(path.resolve()))]
    assert json.loads(_run("scans", "--db", db, "--json").stdout) == rows  # bare `scans` lists
    sha = rows[0]["sha256"]
    detail = json.loads(_run("scans", "show", sha[:8], "--db", db, "--json").stdout)
    assert detail["sha256"] == sha
    assert [e["kind"] for e in detail["events"]] == ["ingested"]
    human = _run("scans", "list", "--db", db)
    assert sha[:12] in human.stdout and str(path.resolve()) in human.stdout


def test_scans_errors(tmp_path: Path, make_scan) -> None:
    missing = _run("scans", "list", "--db", str(tmp_path / "none.db"))
    assert missing.exit_code == 2
    assert "no catalog here" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    db = str(tmp_path / "archive.db")
    _run("ingest", str(make_scan("png_gray8")), "--db", db)
    unknown = _run("scans", "show", "42", "--db", db)
    assert (unknown.exit_code, unknown.stderr.strip()) == (2, "photochrom: error: no scan with id 42")


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys, cli; from typer.main import get_command; get_command(cli.app); "
        "heavy = {'torch', 'sqlalchemy', 'numpy', 'PIL', 'dask', 'skimage'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_every_command_has_help() -> None:
    commands = [["ingest"], ["scans"], ["scans", "list"], ["scans", "show"], ["restore"], ["colorize"], ["jobs"], ["jobs", "list"],
                ["jobs", "show"], ["jobs", "resume"], ["hints"], ["hints", "validate"], ["hints", "template"], ["models"],
                ["models", "list"], ["models", "info"]]
    for args in [["--help"]] + [c + ["--help"] for c in commands]:
        result = _run(*args)
        assert result.exit_code == 0 and "Usage" in result.stdout, args


def test_restore_and_jobs_commands(tmp_path: Path, make_scan) -> None:
    db = str(tmp_path / "archive.db")
    make_scan("tiff_gray16", tmp_path / "scans")
    make_scan("jpeg_colour", tmp_path / "scans")
    bad = make_scan("png_gray8", tmp_path / "scans")
    assert _run("ingest", str(tmp_path / "scans"), "--db", db).exit_code == 0
    bad.write_bytes(bad.read_bytes()[:-20])  # damaged after ingest: fails alone
    out = tmp_path / "restored"
    result = _run("restore", "--db", db, "--out", str(out), "--scheduler", "synchronous", "--json")
    assert result.exit_code == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["done"] == 1
    assert [s["reason"] for s in summary["skipped"]] == ["already in colour (restore it anyway with --include-colour)"]
    assert "changed since it was ingested" in summary["failed"][0]["reason"]
    assert (out / "tiff_gray16.tif").exists()
    jobs = json.loads(_run("jobs", "list", "--db", db, "--json").stdout)
    assert [(j["id"], j["status"], j["tasks"]) for j in jobs] == [(1, "finished", {"done": 1, "skipped": 1, "failed": 1})]
    shown = json.loads(_run("jobs", "show", "1", "--db", db, "--json").stdout)
    assert shown["settings"]["restore"]["model"] == "lite"  # the default
    resumed = _run("jobs", "resume", "1", "--db", db, "--scheduler", "synchronous", "--json")
    assert json.loads(resumed.stdout)["done"] == 1  # nothing left to do, nothing redone
    assert _run("jobs", "show", "9", "--db", db).exit_code == 2
    unknown = _run("restore", "--db", db, "--model", "nope")
    assert unknown.exit_code == 2 and "unknown model 'nope'" in unknown.stderr


def test_restore_with_instances(tmp_path: Path) -> None:
    from tests.jobs.test_instance_jobs import _crowd_scans  # registers the test model and detectors too

    db = str(tmp_path / "archive.db")
    _crowd_scans(tmp_path / "scans", 2)
    assert _run("ingest", str(tmp_path / "scans"), "--db", db).exit_code == 0
    args = ["restore", "--db", db, "--scheduler", "synchronous", "--model", "test-patch-mean", "--instances",
            "--detector", "test-crowd", "--instance-min-score", "0.5"]
    result = _run(*args, "--max-instances", "4", "--out", str(tmp_path / "a"), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["instances"], summary["warnings"]) == (2, 8, [])  # 6 found, 4 kept per scan
    shown = json.loads(_run("jobs", "show", "1", "--db", db, "--json").stdout)
    assert shown["settings"]["restore"]["instances"]["max_instances"] == 4
    assert [len(t["instances"]["instances"]) for t in shown["tasks"]] == [4, 4]
    human = _run(*args, "--max-instances", "5", "--out", str(tmp_path / "b"))  # other settings: a new result
    assert human.exit_code == 0 and "10 instances colorized on their own" in human.stderr
    without = _run("restore", "--db", db, "--scheduler", "synchronous", "--detector", "test-crowd", "--out", str(tmp_path / "c"))
    assert without.exit_code == 2  # options of the instance pass without it: a usage error, nothing run
    assert without.stderr.strip().endswith("--detector, --instance-min-score and --max-instances apply only with --instances")
    assert not (tmp_path / "c").exists()


def test_colorize_writes_stem_named_results_and_never_overwrites_originals(tmp_path: Path, make_scan) -> None:
    folder = tmp_path / "in"
    make_scan("tiff_gray8", folder)
    make_scan("jpeg_gray", folder / "sub")
    result = _run("colorize", str(folder), "-o", str(tmp_path / "out"), "--format", "png", "--json")
    assert result.exit_code == 0, result.stderr
    written = sorted(Path(w["output"]).name for w in json.loads(result.stdout)["written"])
    assert written == ["jpeg_gray.png", "tiff_gray8.png"]
    again = _run("colorize", str(folder), "-o", str(tmp_path / "out"), "--format", "png", "--json")
    assert again.exit_code == 0  # its own earlier results may be replaced
    original = folder / "tiff_gray8.tif"
    before = original.read_bytes()
    into_originals = _run("colorize", str(original), "-o", str(folder), "--json")
    assert into_originals.exit_code == 1
    assert "exists and is not a photochrom result; not overwritten" in json.loads(into_originals.stdout)["failed"][0]["reason"]
    assert original.read_bytes() == before
    missing = _run("colorize", str(tmp_path / "nowhere.tif"), "-o", str(tmp_path / "out"))
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr


def test_hints_validate_and_template(tmp_path: Path, make_scan) -> None:
    scan = make_scan("tiff_gray8")
    template = _run("hints", "template", str(scan))
    assert template.exit_code == 0, template.stderr
    document = json.loads(template.stdout)
    assert document["image"]["sha256"] == hashlib.sha256(scan.read_bytes()).hexdigest()
    good = tmp_path / "good.json"
    good.write_text(template.stdout)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**document, "points": [{"x": 500, "y": 1, "color": "#ffffff"}]}))
    db = str(tmp_path / "archive.db")
    assert _run("hints", "validate", str(good), str(bad), "--db", db).exit_code == 0  # no catalog: schema only
    _run("ingest", str(scan), "--db", db)
    result = _run("hints", "validate", str(good), str(bad), "--db", db, "--json")
    assert result.exit_code == 1
    report = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert report["good.json"]["ok"] and report["good.json"]["checked_against_scan"]
    assert "point 0: (500.0, 1.0) is outside the image (64x48 pixels)" in report["bad.json"]["error"]
    assert _run("hints", "validate", str(tmp_path / "none.json")).exit_code == 2


def test_colorize_with_a_hint_file(tmp_path: Path, make_scan) -> None:
    scan = make_scan("png_gray8")
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps({"schema": "photochrom.hints/1", "points": [{"x": 40, "y": 10, "color": {"lab": [50, 15, 10]}}]}))
    result = _run("colorize", str(scan), "-o", str(tmp_path / "out"), "--hints", str(hints), "--model", "propagate", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["written"][0]["hints"] == str(hints)
    from restore.colour import rgb_to_lab

    lab = rgb_to_lab(np.asarray(Image.open(tmp_path / "out" / scan.name).convert("RGB")))
    assert np.hypot(lab[10, 40, 1] - 15, lab[10, 40, 2] - 10) <= 3.0
    no_hints = _run("colorize", str(scan), "-o", str(tmp_path / "out2"), "--model", "propagate", "--json")
    assert "result is uncoloured" in json.loads(no_hints.stdout)["written"][0]["notes"]


def test_models_list_and_info() -> None:
    names = [m["name"] for m in json.loads(_run("models", "list", "--json").stdout)]
    assert {"ramp", "propagate"} <= set(names)
    info = json.loads(_run("models", "info", "propagate", "--json").stdout)
    assert (info["needs_hints"], info["input_px"], info["overlap_px"]) == (True, 384, 96)
    missing = _run("models", "info", "nope")
    assert missing.exit_code == 2 and "unknown model 'nope'; available:" in missing.stderr


def test_models_import_from_the_command_line(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from tests.restore.models.test_zhang import official_checkpoint, save

    monkeypatch.setenv("PHOTOCHROM_MODELS", str(tmp_path / "models"))
    listed = {m["name"]: m for m in json.loads(_run("models", "list", "--json").stdout)}
    assert listed["eccv16"]["installed"].startswith("not installed: download https://")
    wrong = save(official_checkpoint("siggraph17"), tmp_path / "wrong.pth")
    refused = _run("models", "import", "eccv16", str(wrong))
    assert refused.exit_code == 2 and "wrong.pth" in refused.output and "missing" in refused.output
    assert not (tmp_path / "models" / "eccv16.pt").exists()
    right = save(official_checkpoint("eccv16"), tmp_path / "eccv16.pth")
    imported = _run("models", "import", "eccv16", str(right), "--json")
    assert imported.exit_code == 0, imported.output
    record = json.loads(imported.stdout)
    listed = {m["name"]: m for m in json.loads(_run("models", "list", "--json").stdout)}
    assert listed["eccv16"]["weights_sha256"] == record["sha256"] and listed["eccv16"]["installed"].startswith("imported")


def test_hints_edit_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    missing = _run("hints", "edit", str(tmp_path / "nope.png"), "--no-browser")
    assert missing.exit_code == 2 and "nope.png: no such file" in missing.output
    scan = tmp_path / "scan.png"
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(scan)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "photochrom.hints/1", "points": [{"x": 500, "y": 5, "color": "#ff0000"}]}))
    outside = _run("hints", "edit", str(scan), "--hints", str(bad), "--no-browser", "--model", "ramp")
    assert outside.exit_code == 2 and "bad.json" in outside.output and "point 0" in outside.output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_hints_validate_reports_hostile_files_and_never_hangs(tmp_path: Path) -> None:
    from tests.hints.hostile import REASONS, in_thread, write_poisoned

    folder = tmp_path / "hints"
    write_poisoned(folder)
    (folder / "good.json").write_text(json.dumps({"schema": "photochrom.hints/1", "points": [{"x": 1, "y": 1, "color": "#ffffff"}]}))
    (folder / "not-a-file.json").mkdir()  # a folder matching *.json is walked into, not validated
    result = in_thread(lambda: _run("hints", "validate", str(folder), "--db", str(tmp_path / "none.db"), "--json"), folder / "fifo.json")
    assert result.exit_code == 1, result.stderr  # type: ignore[union-attr]
    report = {Path(r["path"]).stem: r for r in json.loads(result.stdout)}  # type: ignore[union-attr]
    assert sorted(report) == sorted([*REASONS, "good"])
    assert report["good"]["ok"]
    for name, expected in REASONS.items():
        if name != "radius":  # a radius is checked against its scan, and this one is not catalogued
            assert not report[name]["ok"] and report[name]["error"].startswith(str(folder / expected)), report[name]


def test_train_refuses_shares_that_do_not_match_its_folders(tmp_path: Path) -> None:
    result = _run("train", "--data", str(tmp_path / "a"), "--data", str(tmp_path / "b"), "--share", "1", "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "1 --share values for 2 --data folders" in result.stderr
    assert not (tmp_path / "run").exists()


def test_train_repair_refuses_hard_negatives_without_initial_weights(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    result = _run("train-repair", str(tmp_path / "photos"), "--hard-share", "0.3", "--out", str(tmp_path / "run" / "d.pt"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "--hard-share" in result.stderr and "--init-weights" in result.stderr
    assert not (tmp_path / "run").exists()
