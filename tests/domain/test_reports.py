"""X and Z reports over a small but complete business day."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest

from shouyin.domain.errors import ReportError
from shouyin.domain.money import Money
from shouyin.domain.pricing import AdjustmentKind
from shouyin.domain.product import Product, Unit
from shouyin.domain.promotions import MultiBuy
from shouyin.domain.reports import CashierTotals, ReportKind, TenderTotals, x_report, z_report
from shouyin.domain.returns import RefundTender, Return, ReturnItem
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import PaymentRef, TenderKind
from shouyin.domain.shift import Shift
from shouyin.domain.users import Action, Approval, Role

DAY = date(2025, 3, 4)
NOW = datetime(2025, 3, 4, 8, 0)
MILK = Product("6930", "纯牛奶", Money(600), category="乳品", tax_rate_bp=900)
SOAP = Product("6931", "洗衣液", Money(3990), category="日用")
PORK = Product("2002", "五花肉", Money(3200), unit=Unit.KG, category="肉", tax_rate_bp=900)
PROMOS = (MultiBuy("牛奶第二件半价", 2, 5000),)


def approval(action: Action) -> Approval:
    return Approval("SUP1", Role.SUPERVISOR, action, NOW)


def new_sale(sale_id: str, shift: Shift) -> Sale:
    return Sale.open(
        sale_id=sale_id,
        receipt_no=sale_id,
        lane_id=shift.lane_id,
        shift_id=shift.shift_id,
        cashier_id=shift.cashier_id,
        now=NOW,
        promotions=PROMOS,
    )


@dataclass
class Day:
    shifts: list[Shift]
    sales: list[Sale]
    returns: list[Return]


def business_day(close: bool = True) -> Day:
    """Morning shift (C1): cash sale, card sale, voided sale, no-sale, paid-out.
    Afternoon shift (C2): QR sale, a cash return of one milk from the morning, a held sale."""
    am = Shift.open(
        shift_id="AM", lane_id="L1", cashier_id="C1", opening_float=Money(20_000), now=NOW
    )
    pm = Shift.open(
        shift_id="PM", lane_id="L1", cashier_id="C2", opening_float=Money(20_000), now=NOW
    )
    s1 = new_sale("S1", am)
    s1.add_product(MILK, 2)  # 12.00 - 3.00 multi-buy = 9.00
    s1.add_weighed(PORK, 500)  # 16.00
    s1.add_product(SOAP)
    s1.remove_line(3)
    s1.add_tender(TenderKind.CASH, Money(5000))  # 25.00 due, change 25.00
    s1.complete(NOW)
    s2 = new_sale("S2", am)
    s2.add_product(SOAP)
    s2.add_tender(TenderKind.CARD, Money(3990), PaymentRef("E2", masked_pan="622848******1234"))
    s2.complete(NOW)
    s3 = new_sale("S3", am)
    s3.add_product(SOAP)
    s3.void(approval(Action.VOID_SALE), "顾客不要了", NOW)
    for s in (s1, s2):
        am.record_sale(s)
    am.no_sale(approval(Action.NO_SALE), "换零钱", NOW)
    am.paid_out(Money(500), "买胶带", approval(Action.PAID_IN_OUT), NOW)

    s4 = new_sale("S4", pm)
    s4.add_product(MILK, 3)  # 18.00 - 3.00 = 15.00
    s4.add_tender(TenderKind.QR, Money(1500), PaymentRef("E4", wallet="alipay"))
    s4.complete(NOW)
    pm.record_sale(s4)
    r1 = Return.create(
        return_id="R1",
        sale=s1,
        items=[ReturnItem(1, 1)],
        tenders=[RefundTender(TenderKind.CASH, Money(450))],
        approval=approval(Action.REFUND),
        lane_id="L1",
        shift_id="PM",
        cashier_id="C2",
        reason="过期",
        now=NOW,
    )
    pm.record_return(r1)
    s5 = new_sale("S5", pm)
    s5.add_product(MILK)
    s5.hold()
    if close:
        am.close(Money(22_000), NOW + timedelta(hours=6))
        pm.close(Money(21_000), NOW + timedelta(hours=12))
    sales = [s1, s2, s3, s4] + ([] if close else [s5])
    return Day([am, pm], sales, [r1])


def test_x_report_figures() -> None:
    day = business_day(close=False)
    report = x_report(day.shifts, day.sales, day.returns, NOW)
    assert report.kind is ReportKind.X
    assert (report.sales_count, report.returns_count, report.voids_count) == (3, 1, 1)
    assert (report.no_sales_count, report.line_voids_count, report.suspended_count) == (1, 1, 1)
    assert report.gross == Money(1200 + 1600 + 3990 + 1800)
    assert report.discounts == Money(600)
    assert report.net_sales == Money(2500 + 3990 + 1500)
    assert report.refunds == Money(450)
    assert report.net == Money(7990 - 450)
    assert report.discounts_by_kind == {AdjustmentKind.MULTI_BUY: Money(600)}
    assert report.discounts_by_name == {"牛奶第二件半价": Money(600)}
    assert report.by_tender == {
        TenderKind.CASH: TenderTotals(Money(2500), Money(450)),
        TenderKind.CARD: TenderTotals(Money(3990), Money(0)),
        TenderKind.QR: TenderTotals(Money(1500), Money(0)),
    }
    assert report.by_category == {
        "乳品": Money(900 + 1500 - 450),
        "日用": Money(3990),
        "肉": Money(1600),
    }
    assert report.by_cashier == {
        "C1": CashierTotals(2, Money(6490), 0, Money(0), 1),
        "C2": CashierTotals(1, Money(1500), 1, Money(450), 0),
    }
    assert report.paid_out == Money(500)
    assert report.cash_expected == Money(20_000 + 2500 - 500 + 20_000 - 450)
    assert report.cash_counted is None


def test_tax_by_rate_is_on_net_after_returns() -> None:
    day = business_day()
    report = x_report(day.shifts, day.sales, day.returns, NOW)
    # 9%: milk 9.00 + 15.00 - 4.50 + pork 16.00 = 35.50 -> 2.93; 13%: soap 39.90 -> 4.59
    assert report.tax_by_rate == {900: Money(293), 1300: Money(459)}


def test_z_report_is_numbered_and_counts_cash() -> None:
    day = business_day()
    report = z_report(
        number=7, business_day=DAY, shifts=day.shifts, sales=day.sales, returns=day.returns, now=NOW
    )
    assert (report.kind, report.number, report.business_day) == (ReportKind.Z, 7, DAY)
    assert report.cash_counted == Money(43_000)
    assert report.cash_variance == Money(43_000 - 41_550)


def test_z_report_twice_gives_the_same_numbers_whatever_the_order() -> None:
    day = business_day()
    first = z_report(
        number=1, business_day=DAY, shifts=day.shifts, sales=day.sales, returns=day.returns, now=NOW
    )
    rnd = random.Random(4)
    shuffled_sales, shuffled_shifts = list(day.sales), list(day.shifts)
    rnd.shuffle(shuffled_sales)
    rnd.shuffle(shuffled_shifts)
    again = z_report(
        number=1,
        business_day=DAY,
        shifts=shuffled_shifts,
        sales=shuffled_sales,
        returns=day.returns,
        now=NOW,
    )
    assert again == first
    assert list(again.by_category) == list(first.by_category)


def test_z_report_refuses_an_open_shift() -> None:
    day = business_day(close=False)
    with pytest.raises(ReportError):
        z_report(number=1, business_day=DAY, shifts=day.shifts, sales=[], returns=[], now=NOW)


def test_z_report_refuses_unfinished_sales() -> None:
    day = business_day()
    held = new_sale("S9", day.shifts[0])
    held.add_product(MILK)
    held.hold()
    with pytest.raises(ReportError):
        z_report(
            number=1,
            business_day=DAY,
            shifts=day.shifts,
            sales=[*day.sales, held],
            returns=day.returns,
            now=NOW,
        )


def test_z_report_refuses_bad_number_and_no_shift() -> None:
    day = business_day()
    with pytest.raises(ReportError):
        z_report(number=0, business_day=DAY, shifts=day.shifts, sales=[], returns=[], now=NOW)
    with pytest.raises(ReportError):
        z_report(number=1, business_day=DAY, shifts=[], sales=[], returns=[], now=NOW)


def test_sales_of_other_shifts_are_ignored() -> None:
    day = business_day()
    morning = x_report(day.shifts[:1], day.sales, day.returns, NOW)
    assert morning.shift_ids == ("AM",)
    assert morning.sales_count == 2
    assert morning.returns_count == 0


def test_duplicate_inputs_are_refused() -> None:
    day = business_day()
    with pytest.raises(ReportError):
        x_report(day.shifts, [*day.sales, day.sales[0]], day.returns, NOW)


def test_x_report_changes_nothing() -> None:
    day = business_day(close=False)
    before = [(s.expected_cash, s.state, len(s.events)) for s in day.shifts]
    x_report(day.shifts, day.sales, day.returns, NOW)
    assert [(s.expected_cash, s.state, len(s.events)) for s in day.shifts] == before
