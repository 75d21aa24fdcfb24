"""Hostile hint files for the tests of every reader (jobs, colorize, the CLI): one of each
kind the issue reported, the reason each must give, and a guard that turns a hang (a FIFO
read) into a failed test instead of a stuck suite."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

_POINT = '{"x": 0.5, "y": 0.5, "color": "#7a9cc6"'
_HEAD = '{"schema": "photochrom.hints/1", "space": "normalized", "points": ['
POISONED = {
    "nan": _HEAD + '{"x": 0.5, "y": 0.5, "color": {"lab": [50, NaN, 0]}}]}',
    "digits": _HEAD + '{"x": 0.5, "y": 1' + "0" * 5000 + ', "color": "#ffffff"}]}',
    "deep": "[" * 100_000,
    "radius": _HEAD + _POINT + ', "radius": 4e9}]}',
    "many": _HEAD + ", ".join([_POINT + "}"] * 1001) + "]}",
}
#: The start of each file's reason, after its folder; "fifo" is a FIFO named fifo.json.
REASONS = {
    "nan": "nan.json: point 0: color.lab[1]: NaN is not allowed: numbers must be finite",
    "digits": "digits.json: point 0: y: an integer of 5001 digits is not allowed",
    "deep": "deep.json: nested deeper than 32 levels",
    "radius": "radius.json: point 0: radius 4e+09 is larger than the image",
    "many": "many.json: 1001 points: a hint file holds at most 1000",
    "fifo": "fifo.json: is a FIFO, not a regular file; only regular files are read",
}


def write_poisoned(folder: Path) -> None:
    """Every file of REASONS into `folder`, named <name>.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in POISONED.items():
        (folder / f"{name}.json").write_text(text)
    os.mkfifo(folder / "fifo.json")


def release(fifo: Path) -> None:
    """A reader stuck on the FIFO gets end of file (a writer opens and closes it)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def in_thread(function: Callable[[], object], fifo: Path | None = None, timeout: float = 120.0) -> object:
    """function()'s result (or its exception, raised) from a thread; a hang raises
    TimeoutError after `timeout` seconds, and the FIFO is released so the thread ends."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if fifo is not None:
        release(fifo)
    if thread.is_alive():
        raise TimeoutError(f"hung for {timeout:g} s (reading a FIFO?)")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]
