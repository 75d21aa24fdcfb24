"""archive.db: pragmas, journal mode and its network-filesystem fallback, ordered migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from catalog import db as catalog_db
from catalog.db import MIGRATIONS, SCHEMA_VERSION, CatalogError, migrate_to, open_catalog
from catalog.models import Base, Event, Scan


def _schema(path: Path) -> dict[str, object]:
    """Tables -> {column: (type, notnull, pk)}, plus index and unique-constraint columns."""
    con = sqlite3.connect(path)
    try:
        schema: dict[str, object] = {}
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        for table in tables:
            columns = {
                name: (ctype.upper(), bool(notnull), bool(pk))
                for _cid, name, ctype, notnull, _default, pk in con.execute(f"PRAGMA table_info({table})")
            }
            indexes = sorted(
                tuple(r[2] for r in con.execute(f"PRAGMA index_info('{idx[1]}')")) + (bool(idx[2]),)
                for idx in con.execute(f"PRAGMA index_list({table})")
            )
            fks = sorted((r[3], r[2], r[4]) for r in con.execute(f"PRAGMA foreign_key_list({table})"))
            schema[table] = (columns, indexes, fks)
        return schema
    finally:
        con.close()


def test_migrations_build_exactly_the_schema_the_models_declare(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated.db"
    open_catalog(migrated).close()
    declared = tmp_path / "declared.db"
    engine = create_engine(f"sqlite:///{declared}")
    Base.metadata.create_all(engine)
    engine.dispose()
    assert _schema(migrated) == _schema(declared)


def test_fresh_catalog_pragmas(tmp_path: Path) -> None:
    with open_catalog(tmp_path / "archive.db") as catalog:
        assert catalog.journal_mode == "wal"
        assert catalog.schema_version() == SCHEMA_VERSION
        with catalog.read() as session:
            pragma = lambda name: session.connection().exec_driver_sql(f"PRAGMA {name}").scalar_one()  # noqa: E731
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") == catalog_db.BUSY_TIMEOUT_MS
            assert pragma("application_id") == catalog_db.APPLICATION_ID


def test_network_filesystem_falls_back_from_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog_db, "filesystem_type", lambda _path: "nfs4")
    with open_catalog(tmp_path / "archive.db") as catalog:
        assert catalog.journal_mode == "delete"
    con = sqlite3.connect(tmp_path / "archive.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()


def test_filesystem_type_of_a_real_path(tmp_path: Path) -> None:
    fs_type = catalog_db.filesystem_type(tmp_path)
    assert fs_type is not None and fs_type not in catalog_db.NETWORK_FILESYSTEMS


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    from catalog.models import Location, utcnow

    with open_catalog(tmp_path / "archive.db") as catalog:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            with catalog.write() as session:
                now = utcnow()
                session.add(Location(scan_id=999, root="/r", relpath="a.tif", first_seen=now, last_seen=now))


def test_older_catalog_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "archive.db"
    migrate_to(path, 1)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    con.execute(
        "INSERT INTO scans (sha256, size_bytes, format, width, height, ingested_at, status) "
        "VALUES (?, 10, 'TIFF', 640, 480, '2025-01-02 03:04:05.000000', 'ingested')",
        ("ab" * 32,),
    )
    con.execute(
        "INSERT INTO events (scan_id, at, kind, outcome, path, detail) "
        "VALUES (1, '2025-01-02 03:04:05.000000', 'ingested', 'ok', '/old/a.tif', 'from v1')"
    )
    con.commit()
    con.close()
    assert "ingest_runs" not in _schema(path)

    with open_catalog(path) as catalog:
        assert catalog.schema_version() == SCHEMA_VERSION
        with catalog.read() as session:
            scan = session.scalars(select(Scan)).one()
            assert (scan.sha256, scan.width, scan.height) == ("ab" * 32, 640, 480)
            event = session.scalars(select(Event)).one()
            assert (event.detail, event.run_id) == ("from v1", None)
    assert "ingest_runs" in _schema(path)


def test_newer_catalog_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "archive.db"
    open_catalog(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    con.commit()
    con.close()
    with pytest.raises(CatalogError, match=rf"schema version {SCHEMA_VERSION + 5} is newer than this photochrom supports"):
        open_catalog(path)


def test_other_sqlite_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(CatalogError, match="not a photochrom catalog"):
        open_catalog(path)


def test_non_database_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "archive.db"
    path.write_text("this is a text file, not a catalog\n" * 20)
    with pytest.raises(CatalogError, match=r"archive.db: not a usable SQLite catalog"):
        open_catalog(path)


def test_missing_catalog_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalog here"):
        open_catalog(tmp_path / "archive.db", create=False)
    assert not (tmp_path / "archive.db").exists()


def test_migration_versions_are_ordered_and_contiguous() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def _open_and_report(path: Path, barrier) -> str:  # noqa: ANN001
    barrier.wait()  # all processes open the brand-new catalog at the same moment
    with open_catalog(path) as catalog:
        return f"{catalog.journal_mode} {catalog.schema_version()}"


def test_processes_opening_a_new_catalog_at_once(tmp_path: Path) -> None:
    # Switching a new file to WAL needs an exclusive lock that SQLite's busy handler does
    # not wait for: without a retry, the second of two simultaneous ingests failed.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    with context.Manager() as manager, context.Pool(4) as pool:
        for round_ in range(12):
            barrier = manager.Barrier(4)
            path = tmp_path / f"round{round_}.db"
            results = [pool.apply_async(_open_and_report, (path, barrier)) for _ in range(4)]
            assert {r.get(timeout=60) for r in results} == {f"wal {SCHEMA_VERSION}"}
