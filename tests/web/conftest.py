"""Fixtures of the web tests: a migrated SQLite lane database, copied from one template per
session (migrating every test's database would cost more than the test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade


@pytest.fixture(scope="session")
def lane_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file for the session."""
    path = tmp_path_factory.mktemp("lane-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def lane_url(lane_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite lane database for one test."""
    target = tmp_path / "lane.db"
    shutil.copyfile(lane_template, target)
    return f"sqlite:///{target}"
