"""Shifts: the drawer's cash, no-sales, and closing with a count."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shouyin.domain.errors import InvalidAmount, PermissionDenied, ShiftError
from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.returns import RefundTender, Return, ReturnItem
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import PaymentRef, TenderKind
from shouyin.domain.shift import (
    CashMovement,
    MovementKind,
    Shift,
    ShiftClose,
    ShiftClosed,
    ShiftOpened,
    ShiftState,
)
from shouyin.domain.users import Action, Approval, Role

NOW = datetime(2025, 3, 3, 8, 0)
RICE = Product("6920", "东北大米 5kg", Money(4990), category="粮油")


def approval(action: Action, at: datetime = NOW) -> Approval:
    return Approval("SUP1", Role.SUPERVISOR, action, at)


def open_shift() -> Shift:
    return Shift.open(
        shift_id="SH1", lane_id="L1", cashier_id="C1", opening_float=Money(50_000), now=NOW
    )


def sale(
    sale_id: str = "S1", cash_fen: int = 5000, card_fen: int = 0, shift_id: str = "SH1"
) -> Sale:
    s = Sale.open(
        sale_id=sale_id,
        receipt_no=sale_id,
        lane_id="L1",
        shift_id=shift_id,
        cashier_id="C1",
        now=NOW,
    )
    s.add_product(RICE)
    if card_fen:
        s.add_tender(TenderKind.CARD, Money(card_fen), PaymentRef(f"E-{sale_id}"))
    if cash_fen:
        s.add_tender(TenderKind.CASH, Money(cash_fen))
    s.complete(NOW + timedelta(minutes=5))
    return s


def test_open_shift_records_float_and_event() -> None:
    shift = open_shift()
    assert shift.state is ShiftState.OPEN
    assert shift.expected_cash == Money(50_000)
    assert shift.events == [ShiftOpened("SH1", "C1", Money(50_000), NOW)]


def test_negative_float_is_refused() -> None:
    with pytest.raises(InvalidAmount):
        Shift.open(shift_id="S", lane_id="L", cashier_id="C", opening_float=Money(-1), now=NOW)


def test_cash_sale_adds_cash_net_of_change() -> None:
    shift = open_shift()
    movement = shift.record_sale(sale(cash_fen=10_000))
    assert movement == CashMovement(
        MovementKind.SALE, Money(4990), "S1", NOW + timedelta(minutes=5)
    )
    assert shift.expected_cash == Money(54_990)


def test_card_only_sale_moves_no_cash() -> None:
    shift = open_shift()
    assert shift.record_sale(sale(cash_fen=0, card_fen=4990)) is None
    assert shift.expected_cash == Money(50_000)


def test_split_sale_adds_only_its_cash_part() -> None:
    shift = open_shift()
    shift.record_sale(sale(cash_fen=1000, card_fen=3990))
    assert shift.expected_cash == Money(51_000)


def test_same_sale_cannot_be_recorded_twice() -> None:
    shift = open_shift()
    s = sale()
    shift.record_sale(s)
    with pytest.raises(ShiftError):
        shift.record_sale(s)


def test_sale_of_another_shift_is_refused() -> None:
    with pytest.raises(ShiftError):
        open_shift().record_sale(sale(shift_id="SH9"))


def test_unfinished_sale_is_refused() -> None:
    s = Sale.open(
        sale_id="S", receipt_no="1", lane_id="L1", shift_id="SH1", cashier_id="C", now=NOW
    )
    with pytest.raises(ShiftError):
        open_shift().record_sale(s)


def test_cash_refund_takes_cash_out() -> None:
    shift = open_shift()
    original = sale(shift_id="SH0")
    ret = Return.create(
        return_id="R1",
        sale=original,
        items=[ReturnItem(1)],
        tenders=[RefundTender(TenderKind.CASH, Money(4990))],
        approval=approval(Action.REFUND),
        lane_id="L1",
        shift_id="SH1",
        cashier_id="C1",
        reason="破袋",
        now=NOW,
    )
    shift.record_return(ret)
    assert shift.expected_cash == Money(45_010)
    assert shift.total_of(MovementKind.REFUND) == Money(-4990)


def test_paid_in_and_paid_out_need_approval_and_a_reason() -> None:
    shift = open_shift()
    with pytest.raises(PermissionDenied):
        shift.paid_out(Money(1000), "买水", approval(Action.NO_SALE), NOW)
    with pytest.raises(ShiftError):
        shift.paid_out(Money(1000), " ", approval(Action.PAID_IN_OUT), NOW)
    shift.paid_in(Money(2000), "补零钱", approval(Action.PAID_IN_OUT), NOW)
    shift.paid_out(Money(1000), "付快递费", approval(Action.PAID_IN_OUT), NOW)
    assert shift.expected_cash == Money(51_000)
    assert shift.movements[-1].approver_id == "SUP1"


def test_paid_out_over_the_drawer_is_refused() -> None:
    shift = open_shift()
    with pytest.raises(ShiftError):
        shift.paid_out(Money(50_001), "x", approval(Action.PAID_IN_OUT), NOW)
    assert shift.movements == ()


def test_no_sale_is_counted_with_its_approver() -> None:
    shift = open_shift()
    with pytest.raises(PermissionDenied):
        shift.no_sale(Approval("C1", Role.CASHIER, Action.NO_SALE, NOW), "换零钱", NOW)
    shift.no_sale(approval(Action.NO_SALE), "换零钱", NOW)
    assert len(shift.no_sales) == 1
    assert shift.no_sales[0].approver_id == "SUP1"


def test_close_reports_variance() -> None:
    shift = open_shift()
    shift.record_sale(sale(cash_fen=4990))
    result = shift.close(Money(54_900), NOW + timedelta(hours=8))
    assert result == ShiftClose(expected=Money(54_990), counted=Money(54_900), variance=Money(-90))
    assert shift.state is ShiftState.CLOSED
    assert shift.events[-1] == ShiftClosed("SH1", result, NOW + timedelta(hours=8))


def test_closed_shift_cannot_close_again_or_take_sales() -> None:
    shift = open_shift()
    shift.close(Money(50_000), NOW + timedelta(hours=8))
    with pytest.raises(ShiftError):
        shift.close(Money(50_000), NOW + timedelta(hours=9))
    with pytest.raises(ShiftError):
        shift.record_sale(sale())
    with pytest.raises(ShiftError):
        shift.no_sale(approval(Action.NO_SALE), "x", NOW)
    with pytest.raises(ShiftError):
        shift.ensure_open()


def test_close_refuses_negative_count() -> None:
    with pytest.raises(InvalidAmount):
        open_shift().close(Money(-1), NOW)


def test_restore_closed_shift_from_fields() -> None:
    shift = open_shift()
    shift.record_sale(sale())
    shift.close(Money(54_990), NOW + timedelta(hours=1))
    copy = Shift(
        shift_id=shift.shift_id,
        lane_id=shift.lane_id,
        cashier_id=shift.cashier_id,
        opened_at=shift.opened_at,
        opening_float=shift.opening_float,
        state=shift.state,
        movements=shift.movements,
        no_sales=shift.no_sales,
        closed_at=shift.closed_at,
        counted_cash=shift.counted_cash,
    )
    assert copy.closing == shift.closing
    assert copy.events == []


def test_restore_refuses_closed_state_without_count() -> None:
    with pytest.raises(ShiftError):
        Shift(
            shift_id="S",
            lane_id="L",
            cashier_id="C",
            opened_at=NOW,
            opening_float=Money(0),
            state=ShiftState.CLOSED,
        )
