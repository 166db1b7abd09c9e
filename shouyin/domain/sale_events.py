"""Domain events a :class:`~shouyin.domain.sale.Sale` records in ``sale.events``.

Events are facts in the past tense, immutable, carrying ids and amounts (never card data beyond
the ecr_ref). The service layer reads them after committing a sale, for the audit log, the
customer display and the outbox; the aggregate itself never reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shouyin.domain.money import Money
from shouyin.domain.promotions import ManualDiscount
from shouyin.domain.sale_lines import TenderKind

__all__ = [
    "DiscountSet",
    "LineAdded",
    "LineQuantityChanged",
    "LineVoided",
    "MemberSet",
    "PriceOverridden",
    "SaleCompleted",
    "SaleEvent",
    "SaleHeld",
    "SaleOpened",
    "SalePaid",
    "SaleRecalled",
    "SaleVoided",
    "TenderAdded",
    "TenderVoided",
]


@dataclass(frozen=True, slots=True)
class SaleEvent:
    """Base of every sale event: which sale it concerns."""

    sale_id: str


@dataclass(frozen=True, slots=True)
class SaleOpened(SaleEvent):
    """A new sale was started on a lane."""

    receipt_no: str
    lane_id: str
    shift_id: str
    cashier_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LineAdded(SaleEvent):
    """An item was scanned, weighed or keyed in."""

    line_no: int
    sku: str
    quantity: int
    grams: int | None
    amount: Money  # the line at list price


@dataclass(frozen=True, slots=True)
class LineQuantityChanged(SaleEvent):
    """A line's quantity was changed."""

    line_no: int
    old_quantity: int
    new_quantity: int


@dataclass(frozen=True, slots=True)
class LineVoided(SaleEvent):
    """A line was removed (kept as a voided line)."""

    line_no: int
    approver_id: str | None


@dataclass(frozen=True, slots=True)
class PriceOverridden(SaleEvent):
    """A supervisor changed a line's unit price."""

    line_no: int
    old_price: Money
    new_price: Money
    approver_id: str


@dataclass(frozen=True, slots=True)
class DiscountSet(SaleEvent):
    """A manual discount was set or cleared; ``line_no`` is ``None`` for the order discount."""

    line_no: int | None
    discount: ManualDiscount | None


@dataclass(frozen=True, slots=True)
class MemberSet(SaleEvent):
    """A loyalty member was attached to (or detached from) the sale."""

    member_id: str | None


@dataclass(frozen=True, slots=True)
class SaleHeld(SaleEvent):
    """The sale was suspended (挂单)."""


@dataclass(frozen=True, slots=True)
class SaleRecalled(SaleEvent):
    """A held sale was recalled (取单)."""


@dataclass(frozen=True, slots=True)
class TenderAdded(SaleEvent):
    """A payment was taken."""

    tender_no: int
    kind: TenderKind
    amount: Money
    ecr_ref: str | None


@dataclass(frozen=True, slots=True)
class TenderVoided(SaleEvent):
    """A payment was cancelled (card/QR voided on the terminal, or cash handed back)."""

    tender_no: int
    kind: TenderKind
    amount: Money
    ecr_ref: str | None


@dataclass(frozen=True, slots=True)
class SalePaid(SaleEvent):
    """Live tenders now cover the total."""

    total: Money
    paid: Money
    change: Money


@dataclass(frozen=True, slots=True)
class SaleCompleted(SaleEvent):
    """The sale is final (receipt printed, drawer may open)."""

    receipt_no: str
    total: Money
    change: Money
    at: datetime


@dataclass(frozen=True, slots=True)
class SaleVoided(SaleEvent):
    """The sale was cancelled with a supervisor's approval."""

    approver_id: str
    reason: str
    at: datetime
