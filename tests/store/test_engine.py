"""Engines: a lane's SQLite file is durable (WAL, synchronous=FULL) on every connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from shouyin.store.engine import is_sqlite, make_engine


def test_every_sqlite_connection_is_in_wal_mode_with_full_sync(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 5000
    finally:
        engine.dispose()


def test_wal_mode_is_kept_in_the_file_itself(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as plain:  # a connection that sets no pragma of its own
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    plain.close()


def test_the_data_directory_is_created_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'lane.db'}"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    finally:
        engine.dispose()
    assert (tmp_path / "new" / "dir" / "lane.db").exists()


def test_only_sqlite_urls_are_sqlite() -> None:
    assert is_sqlite("sqlite:///lane.db")
    assert not is_sqlite("postgresql://shop@server/shouyin")


def test_a_plain_postgresql_url_uses_psycopg_3() -> None:
    engine = make_engine("postgresql://shop@127.0.0.1:1/shouyin")  # never connects
    assert engine.dialect.driver == "psycopg"
    engine.dispose()
