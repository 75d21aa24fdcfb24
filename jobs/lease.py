"""Job leases: which process is running a job, so that no job ever runs twice at once.

A process that runs a job holds its lease: the owner (host, pid, and the process's start
time, so a recycled pid is not mistaken for it) and an expiry that a heartbeat thread
pushes forward while the job runs. Another process may take the lease only when it is
free, when the owner is a process of this host that no longer exists (a crash: resumed at
once, no manual step), or when the owner is on another host and the lease has expired
(its heartbeat stopped). Taking and renewing happen in the catalog's IMMEDIATE write
transactions, so two processes can never both believe they hold it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache

import psutil

from catalog.db import Catalog
from catalog.models import Job, utcnow

#: How long a lease holds without a heartbeat (a process on another host is presumed dead after it).
LEASE_SECONDS = 60.0
#: How often a running job renews its lease: several heartbeats fit in one lease.
HEARTBEAT_SECONDS = 10.0


class JobBusy(Exception):
    """The job is being run by another live process; the message names it, on one line."""


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: float  # the process's start time (seconds since the epoch, as psutil gives it)

    @staticmethod
    @cache
    def this_process() -> Owner:
        return Owner(socket.gethostname(), os.getpid(), round(psutil.Process().create_time(), 2))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Owner | None:
        try:
            data = json.loads(text)
            return Owner(str(data["host"]), int(data["pid"]), float(data["started"]))
        except (ValueError, TypeError, KeyError):
            return None  # unreadable: treated as no owner

    def alive(self) -> bool | None:
        """Whether the owner still runs: known on this host, None (unknown) elsewhere."""
        if self.host != socket.gethostname():
            return None
        try:
            return round(psutil.Process(self.pid).create_time(), 2) == self.started
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"


def holder(job: Job, now: datetime | None = None) -> Owner | None:
    """The live owner of the job's lease, or None when the job is free to run."""
    owner = Owner.from_json(job.lease_owner) if job.lease_owner else None
    if owner is None:
        return None
    alive = owner.alive()
    if alive is None:  # another host: trust its heartbeat until the lease expires
        expires = job.lease_expires
        alive = expires is not None and expires > (now or utcnow())
    return owner if alive else None


def take(job: Job, owner: Owner | None = None) -> None:
    """Give `owner` (this process) the job's lease, inside the caller's write transaction.
    Raises JobBusy when another live process holds it."""
    owner = owner or Owner.this_process()
    current = holder(job)
    if current is not None and current != owner:
        since = f", lease renewed until {job.lease_expires:%Y-%m-%d %H:%M:%S} UTC" if job.lease_expires else ""
        raise JobBusy(f"job {job.id} is being run by {current.describe()}{since}; wait for it, or stop that process first")
    job.lease_owner, job.lease_expires = owner.to_json(), utcnow() + timedelta(seconds=LEASE_SECONDS)


def release(catalog: Catalog, job_id: int, owner: Owner | None = None) -> None:
    """Give up the lease if `owner` (this process) still holds it."""
    owner = owner or Owner.this_process()
    with catalog.write() as session:
        job = session.get(Job, job_id)
        if job is not None and job.lease_owner and Owner.from_json(job.lease_owner) == owner:
            job.lease_owner, job.lease_expires = None, None


class Heartbeat:
    """Renews this process's lease on a job every HEARTBEAT_SECONDS while the block runs
    (a thread of the main process: only it writes the catalog), then releases it."""

    def __init__(self, catalog: Catalog, job_id: int, interval: float = HEARTBEAT_SECONDS) -> None:
        self.catalog, self.job_id, self.interval = catalog, job_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"job-{job_id}-lease", daemon=True)

    def _beat(self) -> None:
        owner = Owner.this_process()
        while not self._stop.wait(self.interval):
            try:
                with self.catalog.write() as session:
                    job = session.get_one(Job, self.job_id)
                    if job.lease_owner and Owner.from_json(job.lease_owner) == owner:
                        job.lease_expires = utcnow() + timedelta(seconds=LEASE_SECONDS)
            except Exception:  # noqa: BLE001 - a busy catalog: the next beat tries again, well inside the lease
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        release(self.catalog, self.job_id)
