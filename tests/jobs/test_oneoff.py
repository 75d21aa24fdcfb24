"""`photochrom colorize --hints DIR`: a bad hint file (hostile ones included: NaN, huge
numbers, deep nesting, a FIFO) fails its own scan with the reason; the others are written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from jobs.oneoff import colorize_files
from restore.settings import RestoreSettings
from tests.conftest import gray_u8
from tests.hints.hostile import REASONS, in_thread, write_poisoned


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_poisoned_hint_files_fail_their_scans_alone(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in [*REASONS, "good", "plain"]:
        Image.fromarray(gray_u8(40, 50)).save(scans / f"{name}.png")
    hints = tmp_path / "hints"
    write_poisoned(hints)
    (hints / "good.json").write_text(json.dumps(
        {"schema": "photochrom.hints/1", "space": "normalized", "points": [{"x": 0.5, "y": 0.5, "color": "#7a9cc6"}]}
    ))
    summary = in_thread(lambda: colorize_files([scans], tmp_path / "out", RestoreSettings(model="ramp"), hints=hints), hints / "fifo.json")
    assert sorted(Path(w["output"]).name for w in summary.written) == ["good.png", "plain.png"]  # type: ignore[union-attr]
    failed = {Path(f.path).stem: f.reason for f in summary.failed}  # type: ignore[union-attr]
    assert sorted(failed) == sorted(REASONS)
    for name, reason in failed.items():
        assert reason.startswith(str(hints / REASONS[name])) and "\n" not in reason, reason
