"""A short, seeded run of scripts/fuzz_hints.py: random and mutated hint files through the
parser and a live editor server, with no exception but HintError, no 5xx, no dropped
connection, no server traceback and no case slower than the script's limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_seeded_fuzz_run_finds_nothing_unexpected() -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "fuzz_hints.py"), "--iterations", "300", "--seed", "16"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["unexpected_count"] == 0, (report, run.stderr[-2000:])
    outcomes = report["outcomes"]
    assert outcomes["file valid"] > 0 and outcomes["file refused"] > 0 and outcomes["http 200"] > 0  # it reached both sides
