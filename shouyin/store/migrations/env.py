"""Alembic environment: runs migrations on the connection handed over by shouyin.store.migrate.

Used programmatically (``shouyin init`` and first start migrate automatically); the ``alembic``
command works too with ``-x url=...``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from shouyin.store.engine import make_engine
from shouyin.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run on the given connection, or connect to ``-x url=...`` / ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)


if context.is_offline_mode():
    raise RuntimeError("offline SQL generation is not supported; run against a database")
run_migrations_online()
