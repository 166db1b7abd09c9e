"""Lane settings: one pydantic-settings class, read from ``SHOUYIN_*`` environment variables.

A lane keeps everything under one data directory (database, keys, logs). The defaults make a
fresh machine work with no configuration at all; a store server points ``SHOUYIN_DATABASE_URL``
at PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Where a lane keeps its data when ``SHOUYIN_DATA_DIR`` is not set (XDG data home)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "shouyin"


class Settings(BaseSettings):
    """Configuration of one shouyin installation (a lane, or a store server)."""

    model_config = SettingsConfigDict(env_prefix="SHOUYIN_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data directory"
    )
    store_name: str = "shouyin 示范超市"
    lane_id: str = "L01"
    scale_nomenclature: str = Field(
        default="", description="scale barcode formats, e.g. '20-29:FFWWWWWEEEEEC'; empty = default"
    )
    language: str = Field(default="zh", pattern="^(zh|en)$")

    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to ``sqlite:///<data_dir>/shouyin.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'shouyin.db'}"
