"""SQLAlchemy table models. Separate from the domain objects; repositories convert between them.

Money columns hold integer fen (``BigInteger``), never floats. Every schema change goes through an
Alembic migration in ``shouyin/store/migrations``; ``tests/store/test_migrations.py`` checks that
the migrations and these models agree.

Aggregates (sale, return, shift, Z report, user) refer to each other by id only, without foreign
keys: a lane may hold a return against a sale rung up on another lane, and the store server
receives each lane's records in whatever order the outbox delivers them. Foreign keys exist only
from a child table to its own aggregate root (``ON DELETE CASCADE``).

Child tables (lines, tenders, movements) are clustered on their primary key on SQLite
(``WITHOUT ROWID``): a sale's lines are then one B-tree insert each instead of two, and are read
back in order with one range scan. PostgreSQL ignores the option.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shouyin.store.types import UTCDateTime

# Deterministic constraint names so migrations work the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column sizes shared by several tables.
ID = 64  # user, sale, shift, return ids (UUIDs fit with room to spare)
LANE = 32
REF = 64  # terminal references (PaymentRef.MAX_REF_LENGTH)
REASON = 200
KIND = 16

_CLUSTERED = {"sqlite_with_rowid": False}
_UNFINISHED_STATES = "state IN ('open', 'tendering', 'paid')"


class Base(DeclarativeBase):
    """Declarative base with the shared metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table(model: type[Base]) -> Table:
    """The Core :class:`Table` of a model, typed as such (repositories work on tables)."""
    result = model.__table__
    if not isinstance(result, Table):  # pragma: no cover - every model here maps one table
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return result


# -- catalogue -------------------------------------------------------------------------------------
class ProductRow(Base):
    """A catalogue product. ``price`` is per piece or per kg (``unit == 'kg'``)."""

    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[str] = mapped_column(String(8), default="each")
    plu: Mapped[str | None] = mapped_column(String(16), unique=True)
    category: Mapped[str] = mapped_column(String(64), index=True)
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    member_price: Mapped[int | None] = mapped_column(BigInteger)
    mnemonic: Mapped[str] = mapped_column(String(64), default="", index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (Index("ix_products_name", "name"),)


class BarcodeRow(Base):
    """One normalised GTIN of a product; a product may have several (multipacks, old labels)."""

    __tablename__ = "product_barcodes"

    barcode: Mapped[str] = mapped_column(String(18), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku", ondelete="CASCADE"), index=True)


# -- staff -----------------------------------------------------------------------------------------
class UserRow(Base):
    """A cashier, supervisor or admin account (:class:`shouyin.domain.users.User`).

    Only the argon2 hash of the password is kept.
    """

    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(KIND))
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# -- sales -----------------------------------------------------------------------------------------
class SaleRow(Base):
    """A sale's header (:class:`shouyin.domain.sale.Sale`).

    ``promotions`` is the JSON snapshot of the promotions the sale is priced with (see
    :func:`shouyin.domain.promotions.promotion_to_dict`). ``total_due`` is derived, stored only
    so that the store server can sum sales in SQL; loading ignores it.
    """

    __tablename__ = "sales"

    sale_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    receipt_no: Mapped[str] = mapped_column(String(LANE + 16))
    lane_id: Mapped[str] = mapped_column(String(LANE))
    shift_id: Mapped[str] = mapped_column(String(ID), index=True)
    cashier_id: Mapped[str] = mapped_column(String(ID))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(KIND))
    member_id: Mapped[str | None] = mapped_column(String(64))
    order_discount_kind: Mapped[str | None] = mapped_column(String(KIND))
    order_discount_value: Mapped[int | None] = mapped_column(BigInteger)
    order_discount_reason: Mapped[str | None] = mapped_column(String(REASON))
    promotions: Mapped[str] = mapped_column(Text)
    total_due: Mapped[int] = mapped_column(BigInteger)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_by: Mapped[str | None] = mapped_column(String(ID))
    void_reason: Mapped[str | None] = mapped_column(String(REASON))

    __table_args__ = (
        # Receipt numbers carry the lane's prefix; unique per lane on the store server too.
        UniqueConstraint("lane_id", "receipt_no", name="uq_sales_lane_id_receipt_no"),
        # held(lane_id): only suspended sales are indexed, so completing a sale (the checkout's
        # hot path) writes no entry here. Queries must compare ``state`` with the literal.
        Index(
            "ix_sales_held",
            "lane_id",
            sqlite_where=text("state = 'held'"),
            postgresql_where=text("state = 'held'"),
        ),
        # unfinished(shift_id): the few sales still open, tendering or paid, not the shift's
        # thousands of completed ones (same rule: queries compare ``state`` with the literals).
        Index(
            "ix_sales_unfinished",
            "shift_id",
            sqlite_where=text(_UNFINISHED_STATES),
            postgresql_where=text(_UNFINISHED_STATES),
        ),
    )


class SaleLineRow(Base):
    """One line of a sale (:class:`shouyin.domain.sale_lines.SaleLine`), voided ones included."""

    __tablename__ = "sale_lines"

    sale_id: Mapped[str] = mapped_column(
        ForeignKey("sales.sale_id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(8))
    unit_price: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    grams: Mapped[int | None] = mapped_column(Integer)
    fixed_amount: Mapped[int | None] = mapped_column(BigInteger)
    member_price: Mapped[int | None] = mapped_column(BigInteger)
    discount_kind: Mapped[str | None] = mapped_column(String(KIND))
    discount_value: Mapped[int | None] = mapped_column(BigInteger)
    discount_reason: Mapped[str | None] = mapped_column(String(REASON))
    voided: Mapped[bool] = mapped_column(Boolean)
    voided_by: Mapped[str | None] = mapped_column(String(ID))
    price_override_by: Mapped[str | None] = mapped_column(String(ID))

    __table_args__ = (_CLUSTERED,)


class SaleTenderRow(Base):
    """One tender of a sale (:class:`shouyin.domain.sale_lines.Tender`) with its PaymentRef."""

    __tablename__ = "sale_tenders"

    sale_id: Mapped[str] = mapped_column(
        ForeignKey("sales.sale_id", ondelete="CASCADE"), primary_key=True
    )
    tender_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(KIND))
    amount: Mapped[int] = mapped_column(BigInteger)
    voided: Mapped[bool] = mapped_column(Boolean)
    ecr_ref: Mapped[str | None] = mapped_column(String(REF))
    rrn: Mapped[str | None] = mapped_column(String(REF))
    trace: Mapped[str | None] = mapped_column(String(REF))
    batch: Mapped[str | None] = mapped_column(String(REF))
    auth_code: Mapped[str | None] = mapped_column(String(REF))
    masked_pan: Mapped[str | None] = mapped_column(String(32))
    wallet: Mapped[str | None] = mapped_column(String(REF))

    __table_args__ = (_CLUSTERED,)


class CashTenderIdRow(Base):
    """The page's id of a cash tender, so that a repeated request (double Enter, a retry) takes
    the cash once: ``tender_no`` is the tender it added (0: it completed a sale with nothing
    due). Written in the same transaction as the tender."""

    __tablename__ = "cash_tender_ids"

    tender_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    sale_id: Mapped[str] = mapped_column(
        ForeignKey("sales.sale_id", ondelete="CASCADE"), index=True
    )
    tender_no: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- returns ---------------------------------------------------------------------------------------
class ReturnRow(Base):
    """A return against an earlier sale (:class:`shouyin.domain.returns.Return`)."""

    __tablename__ = "returns"

    return_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    sale_id: Mapped[str] = mapped_column(String(ID), index=True)
    lane_id: Mapped[str] = mapped_column(String(LANE))
    shift_id: Mapped[str] = mapped_column(String(ID), index=True)
    cashier_id: Mapped[str] = mapped_column(String(ID))
    approver_id: Mapped[str] = mapped_column(String(ID))
    reason: Mapped[str] = mapped_column(String(REASON))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReturnLineRow(Base):
    """One returned line. ``position`` keeps the return's own order; ``line_no`` is the sale's."""

    __tablename__ = "return_lines"

    return_id: Mapped[str] = mapped_column(
        ForeignKey("returns.return_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    grams: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (_CLUSTERED,)


class ReturnTenderRow(Base):
    """How part of a refund was paid back (:class:`shouyin.domain.returns.RefundTender`)."""

    __tablename__ = "return_tenders"

    return_id: Mapped[str] = mapped_column(
        ForeignKey("returns.return_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(KIND))
    amount: Mapped[int] = mapped_column(BigInteger)
    original_ecr_ref: Mapped[str | None] = mapped_column(String(REF))
    ecr_ref: Mapped[str | None] = mapped_column(String(REF))
    rrn: Mapped[str | None] = mapped_column(String(REF))
    trace: Mapped[str | None] = mapped_column(String(REF))
    batch: Mapped[str | None] = mapped_column(String(REF))
    auth_code: Mapped[str | None] = mapped_column(String(REF))
    masked_pan: Mapped[str | None] = mapped_column(String(32))
    wallet: Mapped[str | None] = mapped_column(String(REF))

    __table_args__ = (_CLUSTERED,)


# -- shifts ----------------------------------------------------------------------------------------
class ShiftRow(Base):
    """A cashier's shift on a lane (:class:`shouyin.domain.shift.Shift`)."""

    __tablename__ = "shifts"

    shift_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    lane_id: Mapped[str] = mapped_column(String(LANE))
    cashier_id: Mapped[str] = mapped_column(String(ID))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opening_float: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(KIND))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counted_cash: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_shifts_lane_id_state", "lane_id", "state"),  # open_for_lane
        Index("ix_shifts_lane_id_opened_at", "lane_id", "opened_at"),  # list_for_day
    )


class ShiftMovementRow(Base):
    """One cash movement of a shift, in order (``seq`` from 1)."""

    __tablename__ = "shift_movements"

    shift_id: Mapped[str] = mapped_column(
        ForeignKey("shifts.shift_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(KIND))
    amount: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(REASON))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    approver_id: Mapped[str | None] = mapped_column(String(ID))

    __table_args__ = (_CLUSTERED,)


class ShiftNoSaleRow(Base):
    """One no-sale drawer open of a shift, in order (``seq`` from 1)."""

    __tablename__ = "shift_no_sales"

    shift_id: Mapped[str] = mapped_column(
        ForeignKey("shifts.shift_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    approver_id: Mapped[str] = mapped_column(String(ID))
    reason: Mapped[str] = mapped_column(String(REASON))

    __table_args__ = (_CLUSTERED,)


# -- end of day ------------------------------------------------------------------------------------
class ZReportRow(Base):
    """A Z report as printed: its totals are JSON (money in fen) so it can be reprinted exactly."""

    __tablename__ = "z_reports"

    lane_id: Mapped[str] = mapped_column(String(LANE), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    business_day: Mapped[date] = mapped_column(Date)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    totals: Mapped[str] = mapped_column(Text)


class ReceiptCounterRow(Base):
    """The next receipt number of a lane; bumped inside each sale's transaction, so gapless."""

    __tablename__ = "receipt_counters"

    lane_id: Mapped[str] = mapped_column(String(LANE), primary_key=True)
    next_no: Mapped[int] = mapped_column(BigInteger)


class OutboxRow(Base):
    """A message waiting to be sent to the store server; ``sent_at`` is set once acknowledged.

    The id is the idempotency key: the server ignores a (lane, id) it has already applied.
    """

    __tablename__ = "outbox"

    # SQLite makes only an INTEGER PRIMARY KEY an auto-incrementing rowid alias.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


# -- payment terminals -----------------------------------------------------------------------------
class TerminalRow(Base):
    """A registered payment terminal (:class:`shouyin.fleet.registry.Terminal`).

    No key material is kept here: the long-term link key is encrypted in the key store directory
    (:mod:`shouyin.fleet.keys`) and the certificate lives in the key store; this row records only
    which certificate (serial, expiry) and which key (its public ``key_id``) are current.
    """

    __tablename__ = "terminals"

    terminal_id: Mapped[str] = mapped_column(String(8), primary_key=True)  # the 终端号
    lane_id: Mapped[str] = mapped_column(String(LANE), index=True)
    display_name: Mapped[str] = mapped_column(String(100))
    link_url: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(KIND))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    key_id: Mapped[str | None] = mapped_column(String(16))
    certificate_serial: Mapped[str | None] = mapped_column(String(40))
    certificate_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    firmware_version: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# -- payment journal -------------------------------------------------------------------------------
UNSETTLED_INTENT = "state IN ('pending', 'sent', 'unknown', 'reversing', 'voiding')"
"""The partial index's predicate; queries that should use it repeat exactly this text."""


class PaymentIntentRow(Base):
    """One payment or refund attempt through the terminal
    (:class:`shouyin.payments.journal.PaymentIntent`): the lane's exactly-once journal.

    ``ecr_ref`` is the idempotency key the terminal keys its transactions by. Only the masked card
    number and the last 4 digits of a QR payment code (``code_tail``) are kept: a 付款码 is a
    one-time bearer credential and is never stored. ``details`` is JSON (a refund's return, a
    void's approver). Recovery reads the unsettled intents through a partial index, so that the
    hot path (intents that reach a final state) writes no entry there.
    """

    __tablename__ = "payment_intents"

    ecr_ref: Mapped[str] = mapped_column(String(REF), primary_key=True)
    kind: Mapped[str] = mapped_column(String(KIND))
    sale_id: Mapped[str] = mapped_column(String(ID), index=True)
    lane_id: Mapped[str] = mapped_column(String(LANE))
    tender_kind: Mapped[str] = mapped_column(String(KIND))
    amount: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(KIND))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    operator_id: Mapped[str | None] = mapped_column(String(ID))
    wallet: Mapped[str | None] = mapped_column(String(KIND))
    code_tail: Mapped[str | None] = mapped_column(String(4))
    original_ecr_ref: Mapped[str | None] = mapped_column(String(REF))
    attempts: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tender_no: Mapped[int | None] = mapped_column(Integer)
    rrn: Mapped[str | None] = mapped_column(String(REF))
    trace: Mapped[str | None] = mapped_column(String(REF))
    batch: Mapped[str | None] = mapped_column(String(REF))
    approval_code: Mapped[str | None] = mapped_column(String(REF))
    masked_pan: Mapped[str | None] = mapped_column(String(32))
    error_condition: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(String(REASON))
    details: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        # unsettled(lane_id): queries must compare ``state`` with exactly this literal list.
        Index(
            "ix_payment_intents_unsettled",
            "lane_id",
            "created_at",
            sqlite_where=text(UNSETTLED_INTENT),
            postgresql_where=text(UNSETTLED_INTENT),
        ),
    )


# --- Operations (issue 7): audit log, terminal health and alerts, diagnostics (migration 0004) ---


class AuditEntryRow(Base):
    """One entry of the append-only, hash-chained audit log (:mod:`shouyin.domain.audit`).

    ``seq`` is assigned by the repository from :class:`AuditHeadRow` under a row lock, so that
    concurrent writers queue up instead of forking the chain. ``details`` is canonical JSON.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    action: Mapped[str] = mapped_column(String(48), index=True)
    outcome: Mapped[str] = mapped_column(String(KIND))
    actor: Mapped[str] = mapped_column(String(REASON))
    source: Mapped[str] = mapped_column(String(REASON))
    target: Mapped[str] = mapped_column(String(REASON))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The audit log's head (one row, ``head_id`` 1): the last entry's number and hash.

    Appending locks this row first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises
    writers), which is what keeps two writers from both chaining onto the same entry.
    """

    __tablename__ = "audit_head"

    head_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))


class TerminalHealthRow(Base):
    """A terminal's latest health as last reported (one row per terminal), and when."""

    __tablename__ = "terminal_health"

    terminal_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    snapshot: Mapped[str] = mapped_column(Text)  # HealthSample as JSON


class HealthSampleRow(Base):
    """A health sample kept for trends (bounded retention: old samples are pruned)."""

    __tablename__ = "health_samples"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    terminal_id: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    snapshot: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_health_samples_terminal_at", "terminal_id", "at"),)


class TerminalAlertRow(Base):
    """An alert raised for a terminal; ``cleared_at`` is set when its condition ends."""

    __tablename__ = "terminal_alerts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    terminal_id: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(KIND))
    message: Mapped[str] = mapped_column(String(REASON))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_terminal_alerts_terminal_raised", "terminal_id", "raised_at"),
        # "Raised once": at most one active alert of a kind per terminal, even if two monitors
        # evaluate the same terminal at once (the second insert fails and is logged).
        Index(
            "uq_terminal_alerts_active",
            "terminal_id",
            "kind",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )


# --- Updates (issue 7): update packages and staged rollouts (migration 0005) ---


class UpdateRolloutRow(Base):
    """One staged rollout of a signed package (:mod:`shouyin.fleet.updates.rollout`).

    The package itself lives in the store's TUF repository; the row keeps what the terminals
    are told (target, digest, length, URL) and whom the rollout is for: ``percent`` of the
    terminals (by a stable hash of their id) and/or the ``named`` ones (JSON list).
    """

    __tablename__ = "update_rollouts"

    rollout_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(KIND))
    model: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(160))
    sha256: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    url: Mapped[str] = mapped_column(String(512))
    percent: Mapped[int] = mapped_column(Integer)
    named: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UpdateRolloutTerminalRow(Base):
    """One terminal's progress in a rollout: pending, downloading, installed, current, failed
    or rolled back, with the firmware it reported and the terminal's message."""

    __tablename__ = "update_rollout_terminals"

    rollout_id: Mapped[str] = mapped_column(
        ForeignKey("update_rollouts.rollout_id", ondelete="CASCADE"), primary_key=True
    )
    terminal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(KIND))
    firmware_version: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(String(REASON))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (_CLUSTERED,)


# --- Web (issue 6): sessions (migration 0006) ---


class WebSessionRow(Base):
    """One signed-in browser or API client of the web app (:mod:`shouyin.web.auth`).

    Only the SHA-256 of the session token is stored, so a copy of the database does not let
    anyone sign in. The CSRF token is not a credential on its own (it is useless without the
    session cookie) and is kept as is, to be handed back to the page by ``GET /api/session``.
    """

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID), index=True)
    lane_id: Mapped[str] = mapped_column(String(LANE))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
