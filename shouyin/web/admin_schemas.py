"""Pydantic schemas of the admin API (separate from the table models and domain objects).

Money is integer fen in every field named ``*_fen`` or ``amount``; times are ISO 8601 with an
offset. Nothing here can hold more of a card than the masked number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from shouyin.domain.users import Role
from shouyin.fleet.registry import MAX_NAME_LENGTH
from shouyin.web.admin_catalogue import MAX_PRICE_FEN

__all__ = [
    "HourOut",
    "JournalSaleOut",
    "LaneOut",
    "LogLineOut",
    "PairingOut",
    "PriceChangeIn",
    "PriceChangeOut",
    "ProductOut",
    "ReconciliationOut",
    "ReportOut",
    "RevokeOut",
    "RolloutOut",
    "RolloutTerminalOut",
    "SalesByHourOut",
    "ShiftOut",
    "TenderOut",
    "TerminalIn",
    "TerminalOut",
    "UserIn",
    "UserOut",
]


# -- lanes and terminals ---------------------------------------------------------------------------
class ShiftOut(BaseModel):
    """A shift (cash figures in fen)."""

    shift_id: str
    lane_id: str
    cashier_id: str
    cashier_name: str | None
    state: str
    opened_at: datetime
    closed_at: datetime | None
    opening_float_fen: int
    counted_cash_fen: int | None


class LaneOut(BaseModel):
    """A lane: its terminals' count, open shift and receipt printer."""

    lane_id: str
    served_here: bool = Field(description="this server runs the lane")
    terminals: int
    open_shift: ShiftOut | None
    printer: str | None = Field(
        default=None, description="ok, near_end, paper_out, cover_open, offline, unknown"
    )


class RolloutTerminalOut(BaseModel):
    """One terminal's progress in an update rollout."""

    terminal_id: str
    state: str
    firmware_version: str | None
    message: str | None
    updated_at: datetime


class RolloutOut(BaseModel):
    """A staged update rollout and its progress."""

    rollout_id: str
    version: str
    kind: str
    model: str
    percent: int
    named: list[str]
    created_at: datetime
    counts: dict[str, int]
    done: int
    total: int
    terminals: list[RolloutTerminalOut]


class TerminalOut(BaseModel):
    """A terminal: its registry record and what the running server knows of its link."""

    terminal_id: str
    lane_id: str
    display_name: str
    link: str = Field(description="'network' (TLS) or the serial URL")
    state: str = Field(description="registered, paired or revoked")
    registered_at: datetime
    paired_at: datetime | None
    revoked_at: datetime | None
    key_id: str | None
    certificate_serial: str | None
    certificate_expires_at: datetime | None
    firmware_version: str | None
    last_seen_at: datetime | None
    served: bool = Field(description="this server runs its link")
    connected: bool
    link_state: str | None
    last_down_reason: str | None
    link_errors: dict[str, int] = Field(description="framing error counters since connected")
    health: dict[str, Any] | None = Field(
        default=None,
        description="latest health report (online, paper, power, battery, temperature, link "
        "counters) and active alerts, from the terminal health monitor",
    )


class TerminalIn(BaseModel):
    """Registering a terminal."""

    terminal_id: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{8}$", description="终端号")]
    lane_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,32}$")]
    display_name: Annotated[str, Field(max_length=MAX_NAME_LENGTH)] = ""
    link_url: Annotated[str | None, Field(max_length=255, description="serial://...")] = None


class PairingOut(BaseModel):
    """A pairing opened from the page (the code only while it is waiting)."""

    terminal_id: str
    phase: str = Field(description="waiting, paired, failed or cancelled")
    code: str | None = Field(description="the 8-digit one-time code, while waiting")
    qr_text: str | None = Field(description="the pairing QR code's text, while waiting")
    qr_png: str | None = Field(description="URL of the QR code image, while waiting")
    address: str | None
    port: int | None
    where: list[str]
    expires_at: datetime
    reason: str | None
    re_paired: bool


class RevokeOut(BaseModel):
    """What revoking did."""

    terminal_id: str
    certificate_revoked: bool
    key_deleted: bool
    already_revoked: bool


# -- catalogue -------------------------------------------------------------------------------------
class ProductOut(BaseModel):
    """A product (prices in fen)."""

    sku: str
    name: str
    price_fen: int
    member_price_fen: int | None
    unit: str
    barcodes: list[str]
    category: str
    active: bool


_PRICE_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_PRICE_FEN}


class PriceChangeIn(BaseModel):
    """A new price in fen (an integer from 0 to 10,000,000).

    The fields accept any JSON value so that a wrong one (a float, a string) is refused by the
    route with a message that says what is wrong, in Chinese and English.
    """

    price_fen: Annotated[Any, Field(json_schema_extra=_PRICE_SCHEMA)]
    member_price_fen: Annotated[
        Any, Field(json_schema_extra={**_PRICE_SCHEMA, "nullable": True})
    ] = None


class PriceChangeOut(BaseModel):
    """A recorded price change."""

    sku: str
    name: str
    old_price_fen: int
    new_price_fen: int
    old_member_price_fen: int | None
    new_member_price_fen: int | None
    changed_by: str
    at: datetime


# -- users -----------------------------------------------------------------------------------------
class UserOut(BaseModel):
    """An account (never its password hash)."""

    user_id: str
    username: str
    display_name: str
    role: Role
    active: bool
    locked: bool
    locked_until: datetime | None
    failed_logins: int
    last_login_at: datetime | None


class UserIn(BaseModel):
    """A new account."""

    username: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s]+$")]
    display_name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Role
    password: Annotated[str, Field(min_length=1, max_length=256)]


# -- reports, journal, sales by hour ---------------------------------------------------------------
class ReportOut(BaseModel):
    """An X or Z report: its figures (fen) and its printed lines."""

    kind: str
    number: int | None
    business_day: str | None
    generated_at: datetime
    sales_count: int
    returns_count: int
    voids_count: int
    gross_fen: int
    discounts_fen: int
    net_sales_fen: int
    refunds_fen: int
    net_fen: int
    by_tender_fen: dict[str, int]
    cash_expected_fen: int
    cash_counted_fen: int | None
    lines: list[str] = Field(description="the report as printed (58 mm)")


class TenderOut(BaseModel):
    """A tender (masked card number only)."""

    tender_no: int
    kind: str
    amount_fen: int
    voided: bool
    ecr_ref: str | None
    rrn: str | None
    masked_pan: str | None
    wallet: str | None


class JournalSaleOut(BaseModel):
    """A sale of the journal."""

    sale_id: str
    receipt_no: str
    lane_id: str
    cashier_id: str
    cashier_name: str | None
    state: str
    opened_at: datetime
    completed_at: datetime | None
    total_fen: int
    tenders: list[TenderOut]


class HourOut(BaseModel):
    """One local hour."""

    hour: int = Field(description="local hour of day, 0-23")
    start: datetime
    sales_count: int
    amount_fen: int


class SalesByHourOut(BaseModel):
    """Completed sales per local hour of a business day."""

    day: str
    lane_id: str | None
    time_zone: str
    total_fen: int
    sales_count: int
    hours: list[HourOut]


# -- reconciliation, logs --------------------------------------------------------------------------
class ReconciliationOut(BaseModel):
    """The last reconciliation (对账) result."""

    balanced: bool
    matched: int
    counts: dict[str, int] = Field(description="rows per outcome")
    totals: list[dict[str, Any]] = Field(description="per payment kind and side, fen")
    discrepancies: list[dict[str, Any]]
    lane_id: str | None
    source: dict[str, Any]
    at: datetime


class LogLineOut(BaseModel):
    """A log line (card data already masked)."""

    seq: int
    at: datetime
    level: str
    logger: str
    message: str
