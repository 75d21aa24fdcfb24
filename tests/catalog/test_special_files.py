"""FIFOs, sockets and devices named like scans: never opened for reading (a FIFO would block
forever), each recorded as failed with what it is, and the rest of the batch done. Every run
here has a timeout, so a regression fails instead of hanging the suite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from catalog.db import open_catalog
from catalog.ingest import IngestSettings, ingest
from tests.conftest import gray_u8

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO named like a scan. Afterwards a reader stuck on it (a regression) is woken and
    the FIFO removed, so that it cannot block again and hang the test session."""
    path = tmp_path / "archive" / "scan_fifo.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    yield path
    writer = os.open(path, os.O_RDWR | os.O_NONBLOCK)  # O_RDWR never waits; its presence wakes a waiting open
    path.unlink()
    os.close(writer)  # a reader now sees the end of the file


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "archive" / "s.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cwd = os.getcwd()
    os.chdir(path.parent)  # a relative bind: AF_UNIX paths are limited to about 100 bytes
    try:
        server.bind(path.name)
    finally:
        os.chdir(cwd)
    yield path
    server.close()


def _within_timeout(call: Callable[[], object]) -> object:
    """call() on a thread; fails the test (instead of hanging it) if it has not returned in time."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT_S)
    assert not thread.is_alive(), f"still running after {TIMEOUT_S} s: a special file was opened and blocked"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


def _good_scan(folder: Path) -> Path:
    path = folder / "good.png"
    Image.fromarray(gray_u8(30, 40)).save(path)
    return path


def test_special_files_in_a_folder_fail_with_what_they_are(tmp_path: Path, fifo: Path, unix_socket: Path) -> None:
    _good_scan(fifo.parent)
    (fifo.parent / "null.jpg").symlink_to(os.devnull)
    with open_catalog(tmp_path / "archive.db") as catalog:
        summary = _within_timeout(lambda: ingest(catalog, [fifo.parent], IngestSettings(workers=2)))
    assert summary.added == 1  # type: ignore[attr-defined]
    reasons = {Path(f.path).name: f.reason for f in summary.failed}  # type: ignore[attr-defined]
    assert reasons == {
        "scan_fifo.tif": "not a regular file (FIFO)",
        "s.png": "not a regular file (socket)",
        "null.jpg": "not a regular file (character device)",
    }


def test_a_fifo_named_on_the_command_line_fails_alone(tmp_path: Path, fifo: Path) -> None:
    good = _good_scan(tmp_path)
    db = tmp_path / "archive.db"
    result = subprocess.run(
        [sys.executable, "-c", "from cli import app; app()", "ingest", str(fifo), str(good), "--db", str(db)],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"failed: {fifo.resolve()}: not a regular file (FIFO)" in result.stderr
    assert "1 added" in result.stderr


def test_colorize_skips_a_fifo_with_its_reason(tmp_path: Path, fifo: Path) -> None:
    from jobs.oneoff import colorize_files
    from restore.settings import RestoreSettings

    _good_scan(fifo.parent)
    summary = _within_timeout(lambda: colorize_files([fifo.parent], tmp_path / "out", RestoreSettings(model="ramp")))
    assert [w["source"] for w in summary.written] == [str(fifo.parent.resolve() / "good.png")]  # type: ignore[attr-defined]
    assert [(Path(f.path).name, f.reason) for f in summary.failed] == [("scan_fifo.tif", "not a regular file (FIFO)")]  # type: ignore[attr-defined]


def test_open_regular_refuses_what_the_descriptor_is_not(tmp_path: Path, fifo: Path) -> None:
    from restore.scanio.probe import NotRegularFile, open_regular

    with pytest.raises(NotRegularFile) as refused:
        _within_timeout(lambda: open_regular(fifo))
    assert (refused.value.strerror, refused.value.filename) == ("not a regular file (FIFO)", str(fifo))
    assert isinstance(refused.value, OSError)
    good = _good_scan(tmp_path)
    with open_regular(good) as stream:
        assert stream.read(8) == b"\x89PNG\r\n\x1a\n"

