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
    PermissionDenied,
    ReportError,
    ReturnError,
    ShiftError,
    UnknownProduct,
    WeakPassword,
)
from shouyin.domain.money import Money
from shouyin.domain.product import Product, Unit
from shouyin.domain.promotions import Threshold
from shouyin.domain.returns import ReturnItem
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import Action, PasswordHasher, Role, User
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


@pytest.fixture
def supervisor(uow: FakeUnitOfWork, ctx: services.Context) -> User:
    return services.create_user(
        uow,
        HASHER,
        ctx,
        username="zhang",
        display_name="张",
        role=Role.SUPERVISOR,
        password="super-secret-1",
    )


def _completed_cola_sale(uow: FakeUnitOfWork, ctx: services.Context, cashier: User) -> str:
    services.open_shift(uow, ctx, cashier, Money(10_000))
    sale = services.start_sale(uow, ctx, cashier)
    services.scan(uow, ctx, sale.sale_id, "6901234567892")
    services.set_quantity(uow, sale.sale_id, 1, 3)
    services.pay_cash(uow, ctx, sale.sale_id, Money(2000))
    return sale.sale_id


def test_a_cashier_cannot_approve_a_refund(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User
) -> None:
    with pytest.raises(PermissionDenied):
        services.supervisor_approval(
            uow, HASHER, ctx, username="li", password="472913", action=Action.REFUND
        )


def test_cash_return_refunds_the_net_and_takes_cash_from_the_drawer(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User, supervisor: User
) -> None:
    sale_id = _completed_cola_sale(uow, ctx, cashier)  # 3 x 3.50 = 10.50, 满10减1 -> 9.50
    approval = services.supervisor_approval(
        uow, HASHER, ctx, username="zhang", password="super-secret-1", action=Action.REFUND
    )
    ret = services.return_for_cash(
        uow,
        ctx,
        cashier,
        sale_id=sale_id,
        items=[ReturnItem(1, 1)],
        approval=approval,
        reason="坏了",
    )
    assert ret.refund_total == Money(316)  # a third of 9.50; units are refunded smallest first
    with uow:
        assert services.current_shift(uow, ctx).expected_cash == Money(10_000 + 950 - 316)


def test_returning_more_than_was_sold_is_refused_and_nothing_is_stored(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User, supervisor: User
) -> None:
    sale_id = _completed_cola_sale(uow, ctx, cashier)
    approval = services.supervisor_approval(
        uow, HASHER, ctx, username="zhang", password="super-secret-1", action=Action.REFUND
    )
    with pytest.raises(ReturnError):
        services.return_for_cash(
            uow,
            ctx,
            cashier,
            sale_id=sale_id,
            items=[ReturnItem(1, 4)],
            approval=approval,
            reason="x",
        )
    with uow:
        assert uow.returns.for_sale(sale_id) == []


def test_voiding_a_sale_needs_a_void_approval(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User, supervisor: User
) -> None:
    services.open_shift(uow, ctx, cashier, Money(0))
    sale = services.start_sale(uow, ctx, cashier)
    services.scan(uow, ctx, sale.sale_id, "6901234567892")
    refund_ok = services.supervisor_approval(
        uow, HASHER, ctx, username="zhang", password="super-secret-1", action=Action.REFUND
    )
    with pytest.raises(PermissionDenied):
        services.void_sale(uow, ctx, sale.sale_id, refund_ok, "顾客不要了")
    void_ok = services.supervisor_approval(
        uow, HASHER, ctx, username="zhang", password="super-secret-1", action=Action.VOID_SALE
    )
    assert services.void_sale(uow, ctx, sale.sale_id, void_ok, "顾客不要了").state is (
        SaleState.VOIDED
    )
