"""The API's response schemas (pydantic), separate from domain objects and table models.

Money is always an object ``{"fen": 1234, "text": "¥12.34"}``: integer fen for programs, the
formatted string for people (the page never does money arithmetic on floats). The ``of_*``
functions convert domain objects; they are the only place the API's shape is decided.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shouyin.domain.money import Money
from shouyin.domain.returns import Return
from shouyin.domain.sale_view import SaleView
from shouyin.domain.shift import Shift
from shouyin.payments.journal import PaymentIntent

__all__ = [
    "LineOut",
    "MoneyOut",
    "PaymentOut",
    "PromotionOut",
    "ReturnOut",
    "SaleOut",
    "SaleSummary",
    "ShiftOut",
    "TenderOut",
    "money",
    "of_intent",
    "of_return",
    "of_sale",
    "of_shift",
    "summary_of",
]

FEN_LIMIT = 10**12
"""Largest amount in fen the API accepts (10 billion yuan): bounds every money input."""


class MoneyOut(BaseModel):
    """An amount: integer fen and the formatted text."""

    fen: int
    text: str


def money(amount: Money) -> MoneyOut:
    """An amount for the API."""
    return MoneyOut(fen=amount.fen, text=amount.format())


class LineOut(BaseModel):
    """One line of a sale as the cashier sees it (after pricing)."""

    line_no: int
    sku: str
    name: str
    unit: str
    quantity: int
    grams: int | None
    unit_price: MoneyOut
    gross: MoneyOut
    discount: MoneyOut
    net: MoneyOut
    adjustments: list[str] = Field(description="names of the reductions on this line")
    voided: bool
    per_piece: bool


class PromotionOut(BaseModel):
    """A reduction applied to the sale."""

    kind: str
    name: str
    amount: MoneyOut
    line_nos: list[int]


class TenderOut(BaseModel):
    """A payment on the sale (voided ones included)."""

    tender_no: int
    kind: str
    amount: MoneyOut
    voided: bool
    ecr_ref: str | None
    masked_pan: str | None
    wallet: str | None


class SaleOut(BaseModel):
    """A sale with everything the cashier page shows."""

    sale_id: str
    receipt_no: str
    lane_id: str
    state: str
    opened_at: datetime
    completed_at: datetime | None
    lines: list[LineOut]
    promotions: list[PromotionOut]
    tenders: list[TenderOut]
    item_count: int
    subtotal: MoneyOut
    discount_total: MoneyOut
    total: MoneyOut
    paid: MoneyOut
    remaining: MoneyOut
    change: MoneyOut


class SaleSummary(BaseModel):
    """A sale in a list (held sales)."""

    sale_id: str
    receipt_no: str
    state: str
    opened_at: datetime
    item_count: int
    total: MoneyOut


class ShiftOut(BaseModel):
    """A shift (班次)."""

    shift_id: str
    lane_id: str
    cashier_id: str
    state: str
    opened_at: datetime
    closed_at: datetime | None
    opening_float: MoneyOut
    expected_cash: MoneyOut
    counted_cash: MoneyOut | None
    variance: MoneyOut | None


class PaymentOut(BaseModel):
    """A card/QR payment attempt (one journal entry), safe to show: masked card only."""

    ecr_ref: str
    kind: str
    tender_kind: str
    state: str
    amount: MoneyOut
    wallet: str | None
    masked_pan: str | None
    rrn: str | None
    error_condition: str | None
    message: str | None


class ReturnOut(BaseModel):
    """A recorded return (退货)."""

    return_id: str
    sale_id: str
    refund: MoneyOut
    lines: list[int]
    tenders: list[str]


def _item_count(sale: SaleView) -> int:
    return sum(1 if line.grams is not None else line.quantity for line in sale.active_lines)


def of_sale(sale: SaleView) -> SaleOut:
    """The API form of a sale."""
    priced = {p.line_no: p for p in sale.priced.lines}
    lines: list[LineOut] = []
    for line in sale.lines:
        p = priced.get(line.line_no)
        gross = p.gross if p is not None else Money(0)
        net = p.net if p is not None else Money(0)
        lines.append(
            LineOut(
                line_no=line.line_no,
                sku=line.sku,
                name=line.name,
                unit=line.unit.value,
                quantity=line.quantity,
                grams=line.grams,
                unit_price=money(line.unit_price),
                gross=money(gross),
                discount=money(gross - net),
                net=money(net),
                adjustments=[a.name for a in p.adjustments] if p is not None else [],
                voided=line.voided,
                per_piece=line.per_piece,
            )
        )
    return SaleOut(
        sale_id=sale.sale_id,
        receipt_no=sale.receipt_no,
        lane_id=sale.lane_id,
        state=sale.state.value,
        opened_at=sale.opened_at,
        completed_at=sale.completed_at,
        lines=lines,
        promotions=[
            PromotionOut(
                kind=a.kind.value, name=a.name, amount=money(a.amount), line_nos=list(a.line_nos)
            )
            for a in sale.applied_promotions
        ],
        tenders=[
            TenderOut(
                tender_no=t.tender_no,
                kind=t.kind.value,
                amount=money(t.amount),
                voided=t.voided,
                ecr_ref=t.ecr_ref,
                masked_pan=t.ref.masked_pan if t.ref else None,
                wallet=t.ref.wallet if t.ref else None,
            )
            for t in sale.tenders
        ],
        item_count=_item_count(sale),
        subtotal=money(sale.subtotal),
        discount_total=money(sale.discount_total),
        total=money(sale.total_due),
        paid=money(sale.paid),
        remaining=money(sale.remaining),
        change=money(sale.change),
    )


def summary_of(sale: SaleView) -> SaleSummary:
    """The list form of a sale."""
    return SaleSummary(
        sale_id=sale.sale_id,
        receipt_no=sale.receipt_no,
        state=sale.state.value,
        opened_at=sale.opened_at,
        item_count=_item_count(sale),
        total=money(sale.total_due),
    )


def of_shift(shift: Shift) -> ShiftOut:
    """The API form of a shift."""
    closing = shift.closing
    return ShiftOut(
        shift_id=shift.shift_id,
        lane_id=shift.lane_id,
        cashier_id=shift.cashier_id,
        state=shift.state.value,
        opened_at=shift.opened_at,
        closed_at=shift.closed_at,
        opening_float=money(shift.opening_float),
        expected_cash=money(shift.expected_cash),
        counted_cash=money(closing.counted) if closing else None,
        variance=money(closing.variance) if closing else None,
    )


def of_intent(intent: PaymentIntent) -> PaymentOut:
    """The API form of a journal entry (masked card number only)."""
    return PaymentOut(
        ecr_ref=intent.ecr_ref,
        kind=intent.kind.value,
        tender_kind=intent.tender_kind.value,
        state=intent.state.value,
        amount=money(intent.amount),
        wallet=intent.wallet.value if intent.wallet else None,
        masked_pan=intent.masked_pan,
        rrn=intent.rrn,
        error_condition=intent.error_condition,
        message=intent.message,
    )


def of_return(ret: Return) -> ReturnOut:
    """The API form of a return."""
    return ReturnOut(
        return_id=ret.return_id,
        sale_id=ret.sale_id,
        refund=money(Money(sum(t.amount.fen for t in ret.tenders))),
        lines=[line.line_no for line in ret.lines],
        tenders=[t.kind.value for t in ret.tenders],
    )
