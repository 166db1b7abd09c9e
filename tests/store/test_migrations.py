"""Migrations: they build exactly the models' schema, and go down and up again cleanly.

The comparison is what ``alembic check`` does (autogenerate's ``compare_metadata``): any table,
column, type, index or constraint in the models but not in the migrations, or the other way
round, is a difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from shouyin.store.engine import make_engine
from shouyin.store.migrate import current_revision, downgrade, head_revision, upgrade
from shouyin.store.tables import Base


def differences(engine: Engine) -> list[Any]:
    """What autogenerate would put in a new migration (empty when models and database agree)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_an_empty_sqlite_file_is_migrated_to_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'lane.db'}")
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_migrations_match_the_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    assert differences(engine) == []


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert differences(engine) == []


def test_upgrading_an_up_to_date_database_changes_nothing(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
