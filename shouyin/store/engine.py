"""Database engines: SQLite for a lane (durable WAL), PostgreSQL for a store server.

A lane's SQLite file runs in WAL mode with ``synchronous=FULL``: a committed sale survives power
loss, which the exactly-once payment journal depends on. Every connection also enforces foreign
keys and waits for a busy writer instead of failing at once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


def is_sqlite(url: str) -> bool:
    """True when the SQLAlchemy URL names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def _apply_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for ``url``; SQLite files get their directory and durability pragmas.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path/shouyin.db`` or ``postgresql+psycopg://...``).
        echo: log every SQL statement (debugging only).

    Returns:
        A configured :class:`sqlalchemy.Engine`.
    """
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo)
        event.listen(engine, "connect", _apply_sqlite_pragmas)
        return engine
    url_obj = make_url(url)
    if url_obj.drivername == "postgresql":
        # psycopg 3 is the driver we ship; plain "postgresql://" would look for psycopg2.
        url_obj = url_obj.set(drivername="postgresql+psycopg")
    return create_engine(url_obj, echo=echo, pool_pre_ping=True)
