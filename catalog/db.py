"""Opening archive.db safely: SQLite pragmas, journal mode, and ordered schema migrations.

Safety for concurrent use (two ingests at once, a restore reading while an ingest
writes) comes from three things: WAL journaling where the filesystem supports it
(WAL needs shared memory, which network filesystems do not provide, so there we
fall back to a rollback journal), a busy timeout so writers queue instead of
failing, and write transactions opened with BEGIN IMMEDIATE so a read-then-write
never deadlocks on a lock upgrade.

The schema version is SQLite's `user_version`. Migrations are frozen SQL, applied in
order inside one IMMEDIATE transaction together with the new version number, so two
processes opening an old catalog at once migrate it exactly once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

#: PRAGMA application_id of a photochrom catalog ("PHCH").
APPLICATION_ID = 0x50484348
BUSY_TIMEOUT_MS = 30_000

# Filesystems on which SQLite's WAL mode is unsafe (no shared memory across hosts).
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "9p", "afs", "ceph",
        "glusterfs", "fuse.glusterfs", "fuse.sshfs", "sshfs", "lustre", "gpfs",
        "davfs", "fuse.davfs2", "fuse.rclone", "fuse.s3fs", "ncpfs", "virtiofs",
    }
)


class CatalogError(Exception):
    """The catalog cannot be opened or used; the message is one line for people."""


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "scans, their locations, and events",
        (
            """CREATE TABLE scans (
                id INTEGER NOT NULL PRIMARY KEY,
                sha256 VARCHAR(64) NOT NULL UNIQUE,
                size_bytes INTEGER NOT NULL,
                format VARCHAR(8),
                width INTEGER,
                height INTEGER,
                bit_depth INTEGER,
                colour_mode VARCHAR(8),
                has_alpha BOOLEAN,
                tone VARCHAR(12),
                tone_hue_deg FLOAT,
                has_icc BOOLEAN,
                exif_orientation INTEGER,
                dpi_x FLOAT,
                dpi_y FLOAT,
                pages INTEGER,
                ingested_at DATETIME NOT NULL,
                status VARCHAR(16) NOT NULL
            )""",
            """CREATE TABLE locations (
                id INTEGER NOT NULL PRIMARY KEY,
                scan_id INTEGER NOT NULL REFERENCES scans (id),
                root TEXT NOT NULL,
                relpath TEXT NOT NULL,
                first_seen DATETIME NOT NULL,
                last_seen DATETIME NOT NULL,
                superseded_at DATETIME,
                UNIQUE (scan_id, root, relpath)
            )""",
            "CREATE INDEX ix_locations_path ON locations (root, relpath)",
            """CREATE TABLE events (
                id INTEGER NOT NULL PRIMARY KEY,
                scan_id INTEGER REFERENCES scans (id),
                at DATETIME NOT NULL,
                kind VARCHAR(24) NOT NULL,
                outcome VARCHAR(8) NOT NULL,
                path TEXT,
                detail TEXT NOT NULL
            )""",
            "CREATE INDEX ix_events_scan ON events (scan_id)",
        ),
    ),
    Migration(
        2,
        "ingest runs; events point to the run that made them",
        (
            """CREATE TABLE ingest_runs (
                id INTEGER NOT NULL PRIMARY KEY,
                started_at DATETIME NOT NULL,
                finished_at DATETIME,
                sources TEXT NOT NULL,
                settings TEXT NOT NULL,
                added INTEGER NOT NULL,
                known INTEGER NOT NULL,
                new_locations INTEGER NOT NULL,
                failed INTEGER NOT NULL
            )""",
            "ALTER TABLE events ADD COLUMN run_id INTEGER REFERENCES ingest_runs (id)",
        ),
    ),
    Migration(
        3,
        "restore jobs, their tasks (one per scan, with the result written) and job events",
        (
            """CREATE TABLE jobs (
                id INTEGER NOT NULL PRIMARY KEY,
                kind VARCHAR(16) NOT NULL,
                created_at DATETIME NOT NULL,
                finished_at DATETIME,
                status VARCHAR(16) NOT NULL,
                out_dir TEXT NOT NULL,
                settings TEXT NOT NULL
            )""",
            """CREATE TABLE tasks (
                id INTEGER NOT NULL PRIMARY KEY,
                job_id INTEGER NOT NULL REFERENCES jobs (id),
                scan_id INTEGER NOT NULL REFERENCES scans (id),
                source_path TEXT NOT NULL,
                output_path TEXT NOT NULL,
                result_key VARCHAR(64) NOT NULL,
                status VARCHAR(16) NOT NULL,
                attempts INTEGER NOT NULL,
                reason TEXT,
                output_sha256 VARCHAR(64),
                started_at DATETIME,
                finished_at DATETIME,
                seconds TEXT,
                UNIQUE (job_id, scan_id)
            )""",
            "CREATE INDEX ix_tasks_scan ON tasks (scan_id, result_key)",
            """CREATE TABLE job_events (
                id INTEGER NOT NULL PRIMARY KEY,
                job_id INTEGER NOT NULL REFERENCES jobs (id),
                task_id INTEGER REFERENCES tasks (id),
                at DATETIME NOT NULL,
                kind VARCHAR(24) NOT NULL,
                detail TEXT NOT NULL
            )""",
            "CREATE INDEX ix_job_events_job ON job_events (job_id)",
        ),
    ),
    Migration(
        4,
        "curator hint files, and the hint file each task used",
        (
            """CREATE TABLE hint_files (
                id INTEGER NOT NULL PRIMARY KEY,
                sha256 VARCHAR(64) NOT NULL,
                scan_id INTEGER NOT NULL REFERENCES scans (id),
                path TEXT NOT NULL,
                points INTEGER NOT NULL,
                first_used_at DATETIME NOT NULL,
                last_used_at DATETIME NOT NULL,
                UNIQUE (sha256, scan_id)
            )""",
            "ALTER TABLE tasks ADD COLUMN hints_path TEXT",
            "ALTER TABLE tasks ADD COLUMN hints_sha256 VARCHAR(64)",
        ),
    ),
    Migration(
        5,
        "the detections (boxes, scores, labels, masks) of results made with instance-aware colorization",
        ("ALTER TABLE tasks ADD COLUMN instances TEXT",),
    ),
    Migration(
        6,
        "job leases (who runs a job, until when) and output claims (one task per output path)",
        (
            "ALTER TABLE jobs ADD COLUMN lease_owner TEXT",
            "ALTER TABLE jobs ADD COLUMN lease_expires DATETIME",
            """CREATE TABLE output_claims (
                path TEXT NOT NULL PRIMARY KEY,
                task_id INTEGER NOT NULL REFERENCES tasks (id),
                claimed_at DATETIME NOT NULL
            )""",
            # Existing tasks keep the paths they hold: the earliest task of a path wins.
            """INSERT OR IGNORE INTO output_claims (path, task_id, claimed_at)
               SELECT output_path, id, COALESCE(started_at, finished_at, CURRENT_TIMESTAMP) FROM tasks
               WHERE output_path != '' AND status IN ('pending', 'running', 'done') ORDER BY id""",
        ),
    ),
    Migration(
        7,
        "damage repair: each repaired result's segmenter, its weights' SHA-256, mask file, mask SHA-256 and fraction",
        ("ALTER TABLE tasks ADD COLUMN repair TEXT",),
    ),
    Migration(
        8,
        "series references: the reference image each task's colours were carried from, its SHA-256 and what matched",
        (
            "ALTER TABLE tasks ADD COLUMN reference_path TEXT",
            "ALTER TABLE tasks ADD COLUMN reference_sha256 VARCHAR(64)",
            "ALTER TABLE tasks ADD COLUMN reference TEXT",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding `path` (Linux /proc/mounts), or None if unknown."""
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split()[:3] for line in f]
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", None
    for _device, mount_point, fs_type in mounts:
        mount_point = mount_point.replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type


def choose_journal_mode(db_path: Path, requested: str = "auto") -> str:
    """"wal" on local filesystems, "delete" on network ones; `requested` overrides."""
    if requested != "auto":
        return requested
    return "delete" if filesystem_type(db_path.parent) in NETWORK_FILESYSTEMS else "wal"


class Catalog:
    """An open archive.db. Use `write()` for transactions that change it, `read()` otherwise."""

    def __init__(self, path: Path, engine: Engine, journal_mode: str) -> None:
        self.path = path
        self.journal_mode = journal_mode
        self._engine = engine
        self._reader = engine.execution_options(photochrom_begin="DEFERRED")

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one IMMEDIATE transaction, committed on leaving the block."""
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self._reader, expire_on_commit=False) as session, session.begin():
            yield session

    def schema_version(self) -> int:
        with self._reader.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_catalog(path: Path | str, *, create: bool = True, journal: str = "auto") -> Catalog:
    """Open (or with `create`, make) the catalog at `path`, migrating an older schema.

    Raises CatalogError if the file is missing (and not `create`), is not a photochrom
    catalog, or has a schema newer than this version of photochrom understands.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            raise CatalogError(f"{path}: no catalog here (run `photochrom ingest` first, or pass --db)")
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        _check_header(path)
    engine = _make_engine(path)
    try:
        journal_mode = _set_journal_mode(engine, choose_journal_mode(path, journal))
        _migrate(engine, path)
    except (DatabaseError, sqlite3.DatabaseError) as exc:
        engine.dispose()
        raise CatalogError(f"{path}: not a usable SQLite catalog ({getattr(exc, 'orig', exc)})") from exc
    except CatalogError:
        engine.dispose()
        raise
    return Catalog(path, engine, journal_mode)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    """Refuse a file that is not ours from its header alone, before SQLite opens it: opening
    sets the journal mode, and switching to WAL rewrites the header of someone else's file.

    The header (https://sqlite.org/fileformat.html) holds the schema cookie at offset 40
    (0 until a table is first made), user_version at 60 and application_id at 68, big-endian.
    In WAL mode the file's header can be older than the database (its newest page 1 may still
    be in the -wal file), but never the other way round: an identity seen here is real, and
    a file that looks new is checked again in `_migrate`, under SQLite's lock.
    """
    try:
        with open(path, "rb") as stream:
            header = stream.read(100)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc.strerror or exc})") from exc
    if not header:
        return  # an empty file is an empty database: it becomes a new catalog
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise CatalogError(f"{path}: not a usable SQLite catalog (file is not a database)")
    schema_cookie = int.from_bytes(header[40:44], "big")
    version = int.from_bytes(header[60:64], "big")
    app_id = int.from_bytes(header[68:72], "big")
    if app_id != APPLICATION_ID and (app_id or version or schema_cookie):
        raise CatalogError(f"{path}: not a photochrom catalog (another application's SQLite file)")
    if app_id == APPLICATION_ID and version > SCHEMA_VERSION:
        raise CatalogError(
            f"{path}: catalog schema version {version} is newer than this photochrom "
            f"supports ({SCHEMA_VERSION}); upgrade photochrom to use it"
        )


def _make_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN, not the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: object) -> None:
        mode = conn.get_execution_options().get("photochrom_begin", "IMMEDIATE")  # type: ignore[attr-defined]
        conn.exec_driver_sql(f"BEGIN {mode}")  # type: ignore[attr-defined]

    return engine


def _set_journal_mode(engine: Engine, wanted: str) -> str:
    # Outside any transaction (SQLite refuses to switch journal mode inside one), so on
    # the driver connection, which runs in autocommit mode (see _make_engine). The mode is
    # stored in the file: usually it is already right and nothing is locked. Switching
    # needs an exclusive lock that SQLite's busy handler does not wait for, so when two
    # processes open a new catalog at once, the switch is retried until the busy timeout.
    with engine.connect() as conn:
        driver = conn.connection.dbapi_connection
        current = str(driver.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if current == wanted:
            return current
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                got = str(driver.execute(f"PRAGMA journal_mode = {wanted}").fetchone()[0]).lower()
                if got != wanted and wanted == "wal":  # e.g. a filesystem without shared memory
                    got = str(driver.execute("PRAGMA journal_mode = delete").fetchone()[0]).lower()
                return got
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _migrate(engine: Engine, path: Path, target: int = SCHEMA_VERSION) -> None:
    with engine.execution_options(photochrom_begin="DEFERRED").connect() as conn:
        version, app_id, _tables = _identity(conn)
    if version == target and app_id == APPLICATION_ID:
        return  # the common case: no write lock taken
    with engine.begin() as conn:  # BEGIN IMMEDIATE: one process migrates, others wait and see it done
        version, app_id, tables = _identity(conn)
        if app_id != APPLICATION_ID and (version or tables):
            raise CatalogError(f"{path}: not a photochrom catalog (another application's SQLite file)")
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{path}: catalog schema version {version} is newer than this photochrom "
                f"supports ({SCHEMA_VERSION}); upgrade photochrom to use it"
            )
        for migration in MIGRATIONS:
            if version < migration.version <= target:
                for statement in migration.statements:
                    conn.exec_driver_sql(statement)
        conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.exec_driver_sql(f"PRAGMA user_version = {max(version, target)}")


def _identity(conn: object) -> tuple[int, int, int]:
    run = conn.exec_driver_sql  # type: ignore[attr-defined]
    version = int(run("PRAGMA user_version").scalar_one())
    app_id = int(run("PRAGMA application_id").scalar_one())
    tables = int(run("SELECT count(*) FROM sqlite_master WHERE type = 'table'").scalar_one())
    return version, app_id, tables


def migrate_to(path: Path, version: int) -> None:
    """Build (or bring) the catalog at `path` to an older schema `version`. For tests of migration."""
    engine = _make_engine(path)
    try:
        _migrate(engine, path, target=version)
    finally:
        engine.dispose()

