"""Where tasks run: inline (`synchronous`), on a Dask LocalCluster on this machine (`local`),
or on an existing Dask distributed scheduler (`tcp://host:8786`).

A runner takes task specs and yields (spec, outcome or exception) as tasks finish, in
whatever order they finish. Resubmitting a spec (a retry) is allowed while iterating.
"""

from __future__ import annotations

import collections
import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Protocol

from jobs.worker import TaskOutcome, TaskSpec, run_task


class SchedulerError(Exception):
    """The scheduler cannot be started or reached; the message is one line for people."""


class Runner(Protocol):
    def submit(self, spec: TaskSpec) -> None: ...

    def results(self) -> Iterator[tuple[TaskSpec, TaskOutcome | BaseException]]: ...


class InlineRunner:
    """Runs each task in this process when its result is asked for (for debugging)."""

    def __init__(self) -> None:
        self._queue: collections.deque[TaskSpec] = collections.deque()

    def submit(self, spec: TaskSpec) -> None:
        self._queue.append(spec)

    def results(self) -> Iterator[tuple[TaskSpec, TaskOutcome | BaseException]]:
        while self._queue:
            spec = self._queue.popleft()
            try:
                yield spec, run_task(spec)
            except Exception as exc:  # noqa: BLE001 - the job records it and retries
                yield spec, exc


class DaskRunner:
    """Runs tasks on a Dask distributed cluster, one scan per task.

    At most one task per worker thread is submitted at a time; the rest wait here. So a
    worker that dies takes down only the scan it was running (not scans queued behind
    it), memory holds one scan per thread, and a 10,000-scan job is not 10,000 futures.
    """

    def __init__(self, client: object) -> None:
        from dask.distributed import as_completed

        self._client = client
        self._backlog: collections.deque[TaskSpec] = collections.deque()
        self._specs: dict[object, TaskSpec] = {}
        self._pending = as_completed()

    def submit(self, spec: TaskSpec) -> None:
        self._backlog.append(spec)

    def _capacity(self) -> int:
        return max(1, sum(self._client.nthreads().values()))  # type: ignore[attr-defined]

    def _fill(self) -> None:
        while self._backlog and len(self._specs) < self._capacity():
            spec = self._backlog.popleft()
            # pure=False: a retry is a new task, not the cached failure of the last one.
            future = self._client.submit(run_task, spec, pure=False, key=f"restore-{spec.key.replace('/', '-')}-{uuid.uuid4().hex[:6]}")  # type: ignore[attr-defined]
            self._specs[future] = spec
            self._pending.add(future)

    def results(self) -> Iterator[tuple[TaskSpec, TaskOutcome | BaseException]]:
        self._fill()
        while self._specs:
            future = next(self._pending)
            spec = self._specs.pop(future)
            try:
                outcome: TaskOutcome | BaseException = future.result()
            except Exception as exc:  # noqa: BLE001 - a dead worker (KilledWorker) or a crash
                outcome = exc
            yield spec, outcome  # the caller may submit() a retry here
            self._fill()


def local_worker_environ(workers: int) -> dict[str, object]:
    """The environment each of `workers` local worker processes starts with: Dask's own
    (`distributed.nanny.pre-spawn-environ`) but for two settings.

    - OMP_NUM_THREADS is the worker's share of the cores, not 1. A worker runs one scan at
      a time (one task thread) and spreads that scan's work over these threads (torch's,
      and restore.threads'), so one worker on two cores no longer leaves one idle.
    - No MALLOC_TRIM_THRESHOLD_ (Dask sets 65536, to hand freed memory back to the system
      at once). Setting it turns off glibc's adaptive mmap threshold, so every sizeable
      array a scan makes and drops was mapped and faulted in afresh: 4 MP scans took
      3.4-3.9 s each on one worker with it and 2.1-2.5 s without, kernel time 16.5 s -> 6.7 s
      for six scans (docs/benchmarks.md).

    A variable already set in this process's environment wins (Dask's rule), so a user's
    own OMP_NUM_THREADS is kept.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ["MALLOC_TRIM_THRESHOLD_"] = None  # None: not set (a variable set here wins)
    environ["OMP_NUM_THREADS"] = max(1, (os.cpu_count() or 1) // workers)
    return environ


@contextlib.contextmanager
def open_runner(address: str, workers: int) -> Iterator[Runner]:
    """A runner for `--scheduler ADDRESS` with `--workers N` (N applies to `local`)."""
    if address == "synchronous":
        yield InlineRunner()
        return
    import dask
    from dask.distributed import Client, LocalCluster

    # Our own loop retries failed scans; Dask should not re-run a task that killed a worker.
    config = {"distributed.scheduler.allowed-failures": 0, "distributed.logging.distributed": "error"}
    with dask.config.set(config):
        if address == "local":
            # Dask's nanny writes the workers' variables into this process's environment
            # before it spawns them; they are put back afterwards, so that neither this
            # process's own threads nor a later cluster's workers inherit them.
            saved = dict(os.environ)
            try:
                with dask.config.set({"distributed.nanny.pre-spawn-environ": local_worker_environ(workers)}):
                    cluster = LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
                    )
            except Exception as exc:  # noqa: BLE001
                raise SchedulerError(f"cannot start a local Dask cluster: {exc}") from exc
            finally:
                for name in set(os.environ) - set(saved):
                    del os.environ[name]
                os.environ.update(saved)  # (not clear() first: the environment is never empty)
            with cluster, Client(cluster) as client:
                yield DaskRunner(client)
            return
        try:
            client = Client(address, timeout=10)
        except Exception as exc:  # noqa: BLE001
            raise SchedulerError(f"cannot reach Dask scheduler at {address}: {exc}") from exc
        with client:
            yield DaskRunner(client)
