"""How a process spreads its own number crunching over threads (OpenCV, NumPy and SciPy's
sparse solvers release the GIL while they work)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")


def compute_threads() -> int:
    """OMP_NUM_THREADS where set (each local Dask worker gets its share of the cores there:
    jobs/scheduler.py), else one per core."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(value)) if value.isdigit() else max(1, os.cpu_count() or 1)


def run_threaded(work: Callable[[Item], object], items: Iterable[Item]) -> None:
    """`work(item)` for every item, on up to compute_threads() threads (inline with one); the
    first exception any item raised is raised here."""
    items = list(items)
    threads = min(compute_threads(), len(items))
    if threads <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, items))  # list(): re-raise any item's exception here
