"""Lane use cases over the in-memory unit of work: what a cashier relies on at the till."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shouyin.domain.barcodes import Nomenclature
from shouyin.domain.catalogue import Catalogue
from shouyin.domain.errors import (
    AccountLocked,
    InvalidBarcode,
    InvalidCredentials,
    ReportError,
    ShiftError,
    UnknownProduct,
    WeakPassword,
)
from shouyin.domain.money import Money
from shouyin.domain.product import Product, Unit
from shouyin.domain.promotions import Threshold
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import PasswordHasher, Role, User
from shouyin.lane import services
from shouyin.store.fakes import FakeUnitOfWork

COLA = Product(sku="C1", name="可口可乐", price=Money(350), barcodes=("6901234567892",))
APPLE = Product(sku="A1", name="苹果", price=Money(1196), unit=Unit.KG, plu="1001")
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai

    def __call__(self) -> datetime:
        return self.now


def ids() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"id{n}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(clock: Clock) -> services.Context:
    counter = ids()
    return services.Context(
        lane_id="L01",
        nomenclature=Nomenclature.default(),
        promotions=(Threshold("满10减1", threshold=Money(1000), off=Money(100)),),
        clock=clock,
        new_id=lambda: next(counter),
    )


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork(Catalogue([COLA, APPLE]))


@pytest.fixture
def cashier(uow: FakeUnitOfWork, ctx: services.Context) -> User:
    return services.create_user(
        uow, HASHER, ctx, username="li", display_name="李", role=Role.CASHIER, password="472913"
    )


def test_creating_a_taken_user_name_is_refused(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User
) -> None:
    with pytest.raises(services.UserExists):
        services.create_user(
            uow, HASHER, ctx, username="li", display_name="x", role=Role.ADMIN, password="p" * 12
        )
    with uow:
        assert [u.role for u in uow.users.list()] == [Role.CASHIER]


def test_weak_password_creates_no_account(uow: FakeUnitOfWork, ctx: services.Context) -> None:
    with pytest.raises(WeakPassword):
        services.create_user(
            uow, HASHER, ctx, username="boss", display_name="x", role=Role.ADMIN, password="short"
        )
    with uow:
        assert uow.users.list() == []


def test_failed_logins_are_counted_and_lock_the_account(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User
) -> None:
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            services.login(uow, HASHER, ctx, "li", "000000")
    with pytest.raises(AccountLocked):  # the fifth failure locks
        services.login(uow, HASHER, ctx, "li", "000000")
    with pytest.raises(AccountLocked):  # and then even the right password is refused
        services.login(uow, HASHER, ctx, "li", "472913")
    with uow:
        stored = uow.users.get_by_username("li")
    assert stored is not None
    assert stored.failed_logins == 5


def test_unknown_user_gets_the_same_error_as_a_wrong_password(
    uow: FakeUnitOfWork, ctx: services.Context
) -> None:
    with pytest.raises(InvalidCredentials, match="wrong user name or password"):
        services.login(uow, HASHER, ctx, "nobody", "472913")


def test_selling_needs_an_open_shift(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User
) -> None:
    with pytest.raises(ShiftError, match="no open shift"):
        services.start_sale(uow, ctx, cashier)


def test_a_lane_cannot_have_two_open_shifts(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User
) -> None:
    services.open_shift(uow, ctx, cashier, Money(50_000))
    with pytest.raises(ShiftError, match="already has an open shift"):
        services.open_shift(uow, ctx, cashier, Money(50_000))


def test_cash_sale_with_scale_label_completes_and_counts_into_the_shift(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User
) -> None:
    services.open_shift(uow, ctx, cashier, Money(50_000))
    sale = services.start_sale(uow, ctx, cashier)
    services.scan(uow, ctx, sale.sale_id, "6901234567892")
    label = ctx.nomenclature.formats[0].encode("1001", amount=Money(1563))
    line = services.scan(uow, ctx, sale.sale_id, label)
    assert line.fixed_amount == Money(1563)
    done = services.pay_cash(uow, ctx, sale.sale_id, Money(5000))
    assert done.state is SaleState.COMPLETED
    assert done.total_due == Money(350 + 1563 - 100)  # 满10减1 applied
    assert done.change == Money(5000 - 1813)
    with uow:
        shift = services.current_shift(uow, ctx)
        assert shift.expected_cash == Money(50_000 + 1813)
        assert [m.topic for m in uow.outbox.pending()] == ["sale.completed"]


def test_receipt_numbers_are_consecutive_per_lane(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User
) -> None:
    services.open_shift(uow, ctx, cashier, Money(0))
    first = services.start_sale(uow, ctx, cashier)
    second = services.start_sale(uow, ctx, cashier)
    assert (first.receipt_no, second.receipt_no) == ("L01-000001", "L01-000002")


@pytest.mark.parametrize(
    ("code", "error"),
    [("6901234567891", InvalidBarcode), ("6901234567885", UnknownProduct)],
)
def test_bad_scan_is_a_typed_error_and_leaves_the_sale_unchanged(
    uow: FakeUnitOfWork,
    ctx: services.Context,
    cashier: User,
    code: str,
    error: type[Exception],
) -> None:
    services.open_shift(uow, ctx, cashier, Money(0))
    sale = services.start_sale(uow, ctx, cashier)
    services.scan(uow, ctx, sale.sale_id, "6901234567892")
    with pytest.raises(error):
        services.scan(uow, ctx, sale.sale_id, code)
    with uow:
        assert len(services.get_sale(uow, sale.sale_id).lines) == 1


def test_hold_and_recall_bring_back_the_same_lines(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User
) -> None:
    services.open_shift(uow, ctx, cashier, Money(0))
    sale = services.start_sale(uow, ctx, cashier)
    services.scan(uow, ctx, sale.sale_id, "6901234567892")
    services.hold_sale(uow, sale.sale_id)
    assert [s.sale_id for s in services.held_sales(uow, ctx)] == [sale.sale_id]
    recalled = services.recall_sale(uow, sale.sale_id)
    assert recalled.state is SaleState.OPEN
    assert [ln.sku for ln in recalled.active_lines] == ["C1"]


def test_z_reports_are_numbered_and_refused_while_a_shift_is_open(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User, clock: Clock
) -> None:
    services.open_shift(uow, ctx, cashier, Money(10_000))
    sale = services.start_sale(uow, ctx, cashier)
    services.scan(uow, ctx, sale.sale_id, "6901234567892")
    services.pay_cash(uow, ctx, sale.sale_id, Money(350))
    with pytest.raises(ReportError, match="close these shifts first"):
        services.close_day(uow, ctx)
    services.close_shift(uow, ctx, Money(10_350))
    z1 = services.close_day(uow, ctx)
    assert (z1.number, z1.net, z1.cash_variance) == (1, Money(350), Money(0))
    clock.now += timedelta(days=1)
    services.open_shift(uow, ctx, cashier, Money(0))
    services.close_shift(uow, ctx, Money(0))
    assert services.close_day(uow, ctx).number == 2


def test_x_report_counts_unfinished_sales_as_suspended(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User
) -> None:
    services.open_shift(uow, ctx, cashier, Money(0))
    sale = services.start_sale(uow, ctx, cashier)
    services.scan(uow, ctx, sale.sale_id, "6901234567892")
    report = services.build_x_report(uow, ctx)
    assert (report.sales_count, report.suspended_count) == (0, 1)
