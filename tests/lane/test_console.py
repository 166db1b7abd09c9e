"""The lane console, driven line by line as a scanner and a cashier would type."""

from __future__ import annotations

from rich.console import Console

from shouyin.devices.receipt import ReceiptHeader
from shouyin.domain.catalogue import Catalogue
from shouyin.domain.money import Money
from shouyin.domain.users import Role
from shouyin.lane import services
from shouyin.lane.console import LaneConsole
from shouyin.store.fakes import FakeUnitOfWork
from tests.lane.test_services import COLA, HASHER, Clock, ids


def run(lines: list[str]) -> tuple[str, FakeUnitOfWork]:
    counter = ids()
    ctx = services.Context(lane_id="L01", clock=Clock(), new_id=lambda: next(counter))
    uow = FakeUnitOfWork(Catalogue([COLA]))
    cashier = services.create_user(
        uow, HASHER, ctx, username="li", display_name="李", role=Role.CASHIER, password="472913"
    )
    services.open_shift(uow, ctx, cashier, Money(10_000))
    out = Console(record=True, width=100)
    LaneConsole(lambda: uow, ctx, cashier, ReceiptHeader("示范超市"), out).run(iter(lines))
    return out.export_text(), uow


def test_scan_quantity_and_cash_print_a_receipt_with_change() -> None:
    text, uow = run(["6901234567892", "*3", "pay 20", "quit"])
    assert "￥10.50" in text  # 3 x 3.50 on the receipt
    assert "找零 ¥9.50" in text
    with uow:
        assert uow.shifts.open_for_lane("L01") is not None
        [sale] = uow.sales.list_by_shift(
            [s.shift_id for s in [uow.shifts.open_for_lane("L01")] if s]
        )
    assert sale.change == Money(950)


def test_a_bad_barcode_is_shown_as_an_error_and_the_console_goes_on() -> None:
    text, _ = run(["6901234567891", "6901234567892", "pay 5", "quit"])
    assert "check digit" in text
    assert "找零 ¥1.50" in text


def test_paying_with_nothing_scanned_is_a_clear_message() -> None:
    text, _ = run(["pay 5", "quit"])
    assert "没有进行中的交易" in text
