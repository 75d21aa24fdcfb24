"""Spreading work over threads: every item once, errors not lost, one thread in Dask workers."""

from __future__ import annotations

import threading

import pytest

from restore.threads import compute_threads, run_threaded


def test_every_item_runs_once_on_several_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert compute_threads() == 3
    seen: list[int] = []
    names: set[str] = set()
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=10)  # passes only if three items run at once

    def work(item: int) -> None:
        if item < 3:
            barrier.wait()
        with lock:
            seen.append(item)
            names.add(threading.current_thread().name)

    run_threaded(work, range(20))
    assert sorted(seen) == list(range(20))
    assert len(names) == 3


def test_one_thread_runs_inline_and_an_error_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as in a Dask worker
    threads = set()

    def work(item: int) -> None:
        threads.add(threading.current_thread())
        if item == 4:
            raise ValueError("item 4 is bad")

    with pytest.raises(ValueError, match="item 4"):
        run_threaded(work, range(6))
    assert threads == {threading.current_thread()}
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with pytest.raises(ValueError, match="item 4"):
        run_threaded(work, range(6))
