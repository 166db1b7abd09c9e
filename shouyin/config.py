"""Lane settings: one pydantic-settings class, read from ``SHOUYIN_*`` environment variables.

A lane keeps everything under one data directory (database, keys, logs). The defaults make a
fresh machine work with no configuration at all; a store server points ``SHOUYIN_DATABASE_URL``
at PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from shouyin.link.firewall import FirewallPolicy


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
    # The terminal link and the firewall (DESIGN.md section 4). Loopback only until the admin
    # adds the store LAN: a fresh install must not listen on the shop network by surprise.
    listen_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    link_port: int = Field(default=8583, ge=1, le=65535)
    web_port: int = Field(default=8080, ge=1, le=65535)
    allowed_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    server_names: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
        description="names and addresses terminals use to reach this server (in its certificate)",
    )
    # Lane devices (issue 8; shouyin.devices.lane.LaneDevices.from_settings). Empty = none.
    printer_url: str = Field(
        default="",
        description="receipt printer: tcp://host:9100, serial:///dev/ttyUSB0?baud=N, "
        "usb://VID:PID or dummy://",
    )
    printer_encoding: str = Field(default="gb18030", pattern="^(gb18030|gbk|utf-8)$")
    printer_columns: int = Field(default=32, description="32 for 58 mm paper, 48 for 80 mm")
    receipt_qr_url: str = Field(default="", description="QR code under receipts, if set")
    display_port: str = Field(default="", description="customer display (客显) serial port")
    display_encoding: str = Field(default="gb18030", pattern="^(gb18030|gbk|ascii)$")
    display_protocol: str = Field(default="vfd", pattern="^(vfd|led)$")
    scanner_port: str = Field(default="", description="serial barcode scanner port")
    scanner_suffix: str = Field(default="cr", pattern="^(cr|lf|crlf|tab|etx)$")

    @property
    def keys_dir(self) -> Path:
        """Where the store CA, the server certificate and paired terminals' certificates live."""
        return self.data_dir / "keys"

    def firewall_policy(self) -> FirewallPolicy:
        """The link firewall policy built from these settings."""
        from shouyin.link.firewall import FirewallPolicy

        return FirewallPolicy.model_validate(
            {
                "listen_addresses": self.listen_addresses,
                "link_port": self.link_port,
                "web_port": self.web_port,
                "allowed_networks": self.allowed_networks,
            }
        )

    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to ``sqlite:///<data_dir>/shouyin.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'shouyin.db'}"
