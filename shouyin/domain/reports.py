"""X and Z reports: the figures of one or more shifts, from sales, returns and shifts.

* An **X report** (中间报表) is read mid-shift: it changes nothing and may be printed at any time;
  sales not yet finished are counted as ``suspended``.
* A **Z report** (日结报表) ends the business day. It carries its number and day, and refuses to be
  built while a shift is open or a sale is unfinished (open, held, part or fully paid but not
  completed): the day must be clean before it is closed. Persisting it and refusing further
  sales on that day is the caller's job; this module only computes.

Both are pure functions of their inputs: the same shifts, sales and returns always give the same
report, number for number, whatever order they come in (sales and returns of other shifts are
ignored). Amounts:

* ``gross`` is the list-price sum of completed sales, ``discounts`` every reduction,
  ``net_sales = gross - discounts``; ``refunds`` is the sum of returns; ``net = net_sales -
  refunds``;
* per category and per VAT rate the amounts are net of returns (lines' nets minus returned lines'
  refunds), which is why pricing allocates every order-level reduction back to lines;
  tax is computed once per rate on that net (:func:`tax_included`);
* per tender kind, cash counts net of change;
* ``cash_expected`` is the shifts' floats plus their cash movements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from shouyin.domain.errors import ReportError
from shouyin.domain.money import Money, total
from shouyin.domain.pricing import AdjustmentKind, tax_included
from shouyin.domain.returns import Return
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.sale_view import SaleView
from shouyin.domain.shift import MovementKind, Shift, ShiftState

__all__ = ["CashierTotals", "Report", "ReportKind", "TenderTotals", "x_report", "z_report"]

_UNFINISHED = frozenset({SaleState.OPEN, SaleState.HELD, SaleState.TENDERING, SaleState.PAID})


class ReportKind(StrEnum):
    """Mid-shift (X) or end of day (Z)."""

    X = "x"
    Z = "z"


@dataclass(frozen=True, slots=True)
class TenderTotals:
    """Sales and refunds of one tender kind (cash net of change)."""

    sales: Money
    refunds: Money

    @property
    def net(self) -> Money:
        """Sales minus refunds."""
        return self.sales - self.refunds


@dataclass(frozen=True, slots=True)
class CashierTotals:
    """One cashier's figures."""

    sales_count: int
    sales: Money
    returns_count: int
    refunds: Money
    voids_count: int

    @property
    def net(self) -> Money:
        """Sales minus refunds."""
        return self.sales - self.refunds


@dataclass(frozen=True, slots=True)
class Report:
    """An X or Z report. Mappings are sorted by key; every tender kind is present.

    Attributes:
        kind: X or Z.
        number: the Z number (``None`` for X).
        business_day: the day a Z report closes (``None`` for X).
        generated_at: when it was built.
        shift_ids: the shifts covered, sorted.
        sales_count, returns_count, voids_count: completed sales, returns, voided sales.
        line_voids_count: lines removed in completed or voided sales.
        no_sales_count: drawer opens without a sale.
        suspended_count: sales still unfinished (always 0 in a Z report).
        gross, discounts, net_sales, refunds, net: see the module docstring.
        discounts_by_kind: reductions per kind (member price, multi-buy, ...).
        discounts_by_name: reductions per promotion name or discount reason.
        by_tender: sales and refunds per tender kind.
        by_category: net sales after returns, per category.
        by_cashier: figures per cashier id.
        tax_by_rate: VAT contained in the net after returns, per rate (bp).
        paid_in, paid_out: cash put in / taken out outside sales (paid_out positive).
        cash_expected: floats plus cash movements.
        cash_counted: the counted cash, when every shift is closed.
    """

    kind: ReportKind
    number: int | None
    business_day: date | None
    generated_at: datetime
    shift_ids: tuple[str, ...]
    sales_count: int
    returns_count: int
    voids_count: int
    line_voids_count: int
    no_sales_count: int
    suspended_count: int
    gross: Money
    discounts: Money
    net_sales: Money
    refunds: Money
    net: Money
    discounts_by_kind: Mapping[AdjustmentKind, Money]
    discounts_by_name: Mapping[str, Money]
    by_tender: Mapping[TenderKind, TenderTotals]
    by_category: Mapping[str, Money]
    by_cashier: Mapping[str, CashierTotals]
    tax_by_rate: Mapping[int, Money]
    paid_in: Money
    paid_out: Money
    cash_expected: Money
    cash_counted: Money | None

    @property
    def cash_variance(self) -> Money | None:
        """Counted minus expected cash, when counted (negative: short)."""
        if self.cash_counted is None:
            return None
        return self.cash_counted - self.cash_expected


def x_report(
    shifts: Sequence[Shift], sales: Sequence[SaleView], returns: Sequence[Return], now: datetime
) -> Report:
    """Build a mid-shift report; reads only.

    Args:
        shifts: the shifts to report on (open or closed).
        sales: sales of those shifts (others are ignored), in any state.
        returns: returns made in those shifts (others are ignored).
        now: the report time.

    Returns:
        The report.
    """
    return _build(
        ReportKind.X,
        number=None,
        business_day=None,
        shifts=shifts,
        sales=sales,
        returns=returns,
        now=now,
    )


def z_report(
    *,
    number: int,
    business_day: date,
    shifts: Sequence[Shift],
    sales: Sequence[SaleView],
    returns: Sequence[Return],
    now: datetime,
) -> Report:
    """Build the end-of-day report that closes ``business_day``.

    Args:
        number: the Z number, from 1, consecutive per lane (kept by the caller).
        business_day: the day being closed.
        shifts: every shift of the day, all closed.
        sales: the day's sales.
        returns: the day's returns.
        now: the report time.

    Returns:
        The report.

    Raises:
        ReportError: for a number below 1, no shift, an open shift or an unfinished sale.
    """
    if number < 1:
        raise ReportError(f"Z numbers start at 1, got {number}")
    if not shifts:
        raise ReportError("a Z report needs the day's shifts")
    still_open = sorted(s.shift_id for s in shifts if s.state is not ShiftState.CLOSED)
    if still_open:
        raise ReportError(f"close these shifts first: {', '.join(still_open)}")
    shift_ids = {s.shift_id for s in shifts}
    unfinished = sorted(
        s.sale_id for s in sales if s.shift_id in shift_ids and s.state in _UNFINISHED
    )
    if unfinished:
        raise ReportError(f"complete or void these sales first: {', '.join(unfinished)}")
    return _build(
        ReportKind.Z,
        number=number,
        business_day=business_day,
        shifts=shifts,
        sales=sales,
        returns=returns,
        now=now,
    )


@dataclass(slots=True)
class _Tally:
    """A cashier's running figures while a report is built."""

    sales_count: int = 0
    sales: Money = field(default_factory=Money.zero)
    returns_count: int = 0
    refunds: Money = field(default_factory=Money.zero)
    voids_count: int = 0

    def freeze(self) -> CashierTotals:
        return CashierTotals(
            self.sales_count, self.sales, self.returns_count, self.refunds, self.voids_count
        )


def _build(
    kind: ReportKind,
    *,
    number: int | None,
    business_day: date | None,
    shifts: Sequence[Shift],
    sales: Sequence[SaleView],
    returns: Sequence[Return],
    now: datetime,
) -> Report:
    shift_ids = {s.shift_id for s in shifts}
    if len(shift_ids) != len(shifts):
        raise ReportError("a shift is listed twice")
    sales = [s for s in sales if s.shift_id in shift_ids]
    returns = [r for r in returns if r.shift_id in shift_ids]
    if len({s.sale_id for s in sales}) != len(sales):
        raise ReportError("a sale is listed twice")
    if len({r.return_id for r in returns}) != len(returns):
        raise ReportError("a return is listed twice")
    completed = [s for s in sales if s.state is SaleState.COMPLETED]

    by_category: dict[str, Money] = defaultdict(Money.zero)
    net_by_rate: dict[int, Money] = defaultdict(Money.zero)
    by_kind: dict[AdjustmentKind, Money] = defaultdict(Money.zero)
    by_name: dict[str, Money] = defaultdict(Money.zero)
    tender_sales = {k: Money.zero() for k in TenderKind}
    tender_refunds = {k: Money.zero() for k in TenderKind}
    cashiers: dict[str, _Tally] = defaultdict(_Tally)

    for sale in completed:
        for line in sale.priced.lines:
            by_category[line.category] += line.net
            net_by_rate[line.tax_rate_bp] += line.net
            for adjustment in line.adjustments:
                by_kind[adjustment.kind] += adjustment.amount
                by_name[adjustment.name] += adjustment.amount
        for tender_kind, amount in sale.amount_by_kind().items():
            tender_sales[tender_kind] += amount
        tally = cashiers[sale.cashier_id]
        tally.sales_count += 1
        tally.sales += sale.total_due
    for ret in returns:
        for returned in ret.lines:
            by_category[returned.category] -= returned.amount
            net_by_rate[returned.tax_rate_bp] -= returned.amount
        for tender_kind, amount in ret.refunded_by_kind().items():
            tender_refunds[tender_kind] += amount
        tally = cashiers[ret.cashier_id]
        tally.returns_count += 1
        tally.refunds += ret.refund_total
    for sale in sales:
        if sale.state is SaleState.VOIDED:
            cashiers[sale.cashier_id].voids_count += 1

    gross = total([s.subtotal for s in completed])
    net_sales = total([s.total_due for s in completed])
    refunds = total([r.refund_total for r in returns])
    all_closed = all(s.state is ShiftState.CLOSED for s in shifts)
    return Report(
        kind=kind,
        number=number,
        business_day=business_day,
        generated_at=now,
        shift_ids=tuple(sorted(shift_ids)),
        sales_count=len(completed),
        returns_count=len(returns),
        voids_count=sum(1 for s in sales if s.state is SaleState.VOIDED),
        line_voids_count=sum(
            1
            for s in sales
            if s.state in (SaleState.COMPLETED, SaleState.VOIDED)
            for line in s.lines
            if line.voided
        ),
        no_sales_count=sum(len(s.no_sales) for s in shifts),
        suspended_count=sum(1 for s in sales if s.state in _UNFINISHED),
        gross=gross,
        discounts=gross - net_sales,
        net_sales=net_sales,
        refunds=refunds,
        net=net_sales - refunds,
        discounts_by_kind={k: by_kind[k] for k in AdjustmentKind if k in by_kind},
        discounts_by_name={k: by_name[k] for k in sorted(by_name)},
        by_tender={k: TenderTotals(tender_sales[k], tender_refunds[k]) for k in TenderKind},
        by_category={k: by_category[k] for k in sorted(by_category)},
        by_cashier={cid: tally.freeze() for cid, tally in sorted(cashiers.items())},
        tax_by_rate={rate: tax_included(net_by_rate[rate], rate) for rate in sorted(net_by_rate)},
        paid_in=total([s.total_of(MovementKind.PAID_IN) for s in shifts]),
        paid_out=-total([s.total_of(MovementKind.PAID_OUT) for s in shifts]),
        cash_expected=total([s.expected_cash for s in shifts]),
        cash_counted=(
            total([s.counted_cash or Money.zero() for s in shifts]) if all_closed else None
        ),
    )
