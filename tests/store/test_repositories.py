"""Repositories: every aggregate saved and loaded back is equal field by field.

Each test runs against SQLite, PostgreSQL (skipped when unreachable) and the in-memory fakes, so
the fakes that service tests rely on are held to the same behaviour as the real thing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shouyin.domain.errors import DomainError
from shouyin.domain.money import Money
from shouyin.domain.product import Product, Unit
from shouyin.domain.promotions import DiscountKind, ManualDiscount, MultiBuy, Scope, Threshold
from shouyin.domain.reports import Report, x_report, z_report
from shouyin.domain.returns import RefundTender, Return, ReturnItem
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import PaymentRef, TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.sale_view import SaleView
from shouyin.domain.shift import Shift
from shouyin.domain.users import Action, Approval, Role, User
from shouyin.store.engine import make_engine
from shouyin.store.fakes import FakeUnitOfWork
from shouyin.store.migrate import upgrade
from shouyin.store.repositories import Conflict
from shouyin.store.uow import AbstractUnitOfWork, SqlUnitOfWork, make_session_factory

NOW = datetime(2026, 3, 4, 9, 30, 15, 123456, tzinfo=UTC)
LANE = "L01"
COLA = Product("A1", "可口可乐 330ml", Money(350), category="饮料", member_price=Money(300))
CHIPS = Product("A2", "乐事薯片", Money(790), category="零食")
SOAP = Product("A3", "洗衣液 2kg", Money(3990), category="日用")
PORK = Product("P1", "五花肉", Money(3280), unit=Unit.KG, category="生鲜", tax_rate_bp=900)
PROMOS = (
    MultiBuy("可乐第二件半价", every=2, off_bp=5000, scope=Scope(skus=frozenset({"A1"}))),
    Threshold("满50减5", threshold=Money(5000), off=Money(500), repeat=True, max_times=3),
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "fake"])
def uow(request: pytest.FixtureRequest) -> Iterator[AbstractUnitOfWork]:
    """A unit of work on SQLite, on PostgreSQL, or in memory."""
    if request.param == "fake":
        yield FakeUnitOfWork()
        return
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    engine = make_engine(url)
    yield SqlUnitOfWork(make_session_factory(engine))
    engine.dispose()


# -- builders --------------------------------------------------------------------------------------
def approval(action: Action, at: datetime = NOW) -> Approval:
    return Approval("SUP1", Role.SUPERVISOR, action, at)


def open_sale(
    sale_id: str, number: int, shift_id: str = "SH1", at: datetime = NOW, lane: str = LANE
) -> Sale:
    return Sale.open(
        sale_id=sale_id,
        receipt_no=f"{lane}-{number:06d}",
        lane_id=lane,
        shift_id=shift_id,
        cashier_id="C1",
        now=at,
        promotions=PROMOS,
    )


def full_sale(sale_id: str = "S1", number: int = 1, at: datetime = NOW) -> Sale:
    """A completed sale with everything a sale can hold."""
    sale = open_sale(sale_id, number, at=at)
    sale.set_member("M8888")
    sale.add_product(COLA, 3)  # member price and multi-buy
    sale.add_weighed(PORK, 523)  # weighed
    sale.add_priced(PORK, Money(1688), grams=514)  # price-embedded scale label
    sale.add_product(CHIPS, 2)
    sale.set_line_discount(4, ManualDiscount.percent_off(1000, "临期"))
    sale.add_product(SOAP)
    sale.remove_line(5, approval(Action.VOID_LINE))  # voided with approver
    sale.add_product(SOAP)
    sale.override_price(6, Money(3500), approval(Action.PRICE_OVERRIDE), at)
    sale.set_order_discount(ManualDiscount.amount_off(Money(100), "老顾客"))
    card = PaymentRef(
        ecr_ref="E-0001",
        rrn="123456789012",
        trace="000123",
        batch="000001",
        auth_code="A1B2C3",
        masked_pan="622848******1234",
    )
    sale.add_tender(TenderKind.CARD, Money(2000), card)
    sale.add_tender(TenderKind.QR, Money(1000), PaymentRef(ecr_ref="E-0002", wallet="wechat"))
    sale.void_tender(2)  # a voided QR payment stays on record
    sale.add_tender(TenderKind.CASH, sale.remaining + Money(1000))  # change due
    sale.complete(at)
    return sale


def simple_sale(sale_id: str, number: int, shift_id: str = "SH1", at: datetime = NOW) -> Sale:
    sale = open_sale(sale_id, number, shift_id, at)
    sale.add_product(CHIPS)
    sale.add_tender(TenderKind.CASH, Money(1000))
    sale.complete(at)
    return sale


def persisted(sale: SaleView) -> tuple[object, ...]:
    """Every persisted field of a sale (what a round trip must keep)."""
    return (
        sale.sale_id,
        sale.receipt_no,
        sale.lane_id,
        sale.shift_id,
        sale.cashier_id,
        sale.opened_at,
        sale.state,
        sale.lines,
        sale.tenders,
        sale.member_id,
        sale.order_discount,
        sale.promotions,
        sale.completed_at,
        sale.voided_at,
        sale.voided_by,
        sale.void_reason,
    )


def shift_fields(shift: Shift) -> tuple[object, ...]:
    return (
        shift.shift_id,
        shift.lane_id,
        shift.cashier_id,
        shift.opened_at,
        shift.opening_float,
        shift.state,
        shift.movements,
        shift.no_sales,
        shift.closed_at,
        shift.counted_cash,
    )


def save_sales(uow: AbstractUnitOfWork, *sales: Sale) -> None:
    with uow:
        for sale in sales:
            uow.sales.save(sale)
        uow.commit()


def load_sale(uow: AbstractUnitOfWork, sale_id: str) -> Sale:
    with uow:
        sale = uow.sales.get(sale_id)
    assert sale is not None
    return sale


# -- users -----------------------------------------------------------------------------------------
def make_user(user_id: str = "U1", username: str = "zhangsan") -> User:
    return User(user_id, username, "张三", Role.CASHIER, "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA")


def test_user_round_trips_with_lock_and_last_login(uow: AbstractUnitOfWork) -> None:
    user = make_user()
    user.failed_logins = 5
    user.locked_until = NOW + timedelta(minutes=30)
    user.last_login_at = NOW - timedelta(days=1)
    user.active = False
    with uow:
        uow.users.add(user)
        uow.commit()
    with uow:
        assert uow.users.get("U1") == user
        assert uow.users.get_by_username("zhangsan") == user
        assert uow.users.get("nobody") is None
        assert uow.users.get_by_username("nobody") is None


def test_adding_a_taken_user_name_is_a_conflict(uow: AbstractUnitOfWork) -> None:
    with uow:
        uow.users.add(make_user("U1", "zhangsan"))
        uow.commit()
    with uow, pytest.raises(Conflict):
        uow.users.add(make_user("U2", "zhangsan"))


def test_saving_a_user_writes_back_login_state(uow: AbstractUnitOfWork) -> None:
    with uow:
        uow.users.add(make_user())
        uow.commit()
    with uow:
        user = uow.users.get("U1")
        assert user is not None
        user.failed_logins = 2
        user.role = Role.SUPERVISOR
        user.display_name = "张三丰"
        uow.users.save(user)
        uow.commit()
    with uow:
        assert uow.users.get("U1") == user


def test_saving_a_user_never_added_is_a_lookup_error(uow: AbstractUnitOfWork) -> None:
    with uow, pytest.raises(LookupError):
        uow.users.save(make_user())


def test_users_are_listed_by_user_name(uow: AbstractUnitOfWork) -> None:
    with uow:
        for user_id, name in (("U1", "wangwu"), ("U2", "lisi"), ("U3", "zhaoliu")):
            uow.users.add(make_user(user_id, name))
        uow.commit()
    with uow:
        assert [u.username for u in uow.users.list()] == ["lisi", "wangwu", "zhaoliu"]


# -- sales -----------------------------------------------------------------------------------------
def test_completed_sale_with_everything_round_trips(uow: AbstractUnitOfWork) -> None:
    sale = full_sale()
    save_sales(uow, sale)
    loaded = load_sale(uow, "S1")
    assert persisted(loaded) == persisted(sale)
    assert (loaded.total_due, loaded.change) == (sale.total_due, sale.change)
    assert loaded.applied_promotions == sale.applied_promotions
    assert loaded.events == []


def test_times_in_another_zone_come_back_as_the_same_instant(uow: AbstractUnitOfWork) -> None:
    beijing = NOW.astimezone(timezone(timedelta(hours=8)))
    save_sales(uow, simple_sale("S1", 1, at=beijing))
    loaded = load_sale(uow, "S1")
    assert loaded.opened_at == beijing


def test_a_naive_time_is_refused(uow: AbstractUnitOfWork) -> None:
    naive = simple_sale("S1", 1, at=NOW.replace(tzinfo=None))
    with uow, pytest.raises(ValueError, match="naive"):
        uow.sales.save(naive)


def test_voided_sale_round_trips(uow: AbstractUnitOfWork) -> None:
    sale = open_sale("S1", 1)
    sale.add_product(SOAP)
    sale.add_tender(TenderKind.CASH, Money(1000))
    sale.void(approval(Action.VOID_SALE), "顾客不要了", NOW)
    save_sales(uow, sale)
    loaded = load_sale(uow, "S1")
    assert persisted(loaded) == persisted(sale)
    assert loaded.tenders[0].voided


def test_held_sales_are_listed_per_lane_oldest_first(uow: AbstractUnitOfWork) -> None:
    later, earlier = open_sale("S1", 1, at=NOW + timedelta(minutes=5)), open_sale("S2", 2)
    other_lane = open_sale("S3", 1, lane="L02")
    for sale in (later, earlier, other_lane):
        sale.add_product(COLA)
        sale.hold()
    still_open = open_sale("S4", 3)
    save_sales(uow, later, earlier, other_lane, still_open)
    with uow:
        held = uow.sales.held(LANE)
    assert [s.sale_id for s in held] == ["S2", "S1"]
    assert persisted(held[1]) == persisted(later)
    assert held[0].state is SaleState.HELD


def test_saving_a_sale_again_updates_it(uow: AbstractUnitOfWork) -> None:
    sale = open_sale("S1", 1)
    sale.add_product(COLA)
    with uow:
        uow.sales.save(sale)
        sale.add_product(CHIPS, 2)  # the same unit of work sees the sale change twice
        uow.sales.save(sale)
        uow.commit()
    with uow:
        loaded = uow.sales.get("S1")
        assert loaded is not None
        loaded.set_quantity(2, 3)
        loaded.remove_line(1)
        loaded.add_tender(TenderKind.CASH, Money(5000))
        uow.sales.save(loaded)
        uow.commit()
    assert persisted(load_sale(uow, "S1")) == persisted(loaded)


def test_saving_a_sale_not_loaded_in_this_unit_of_work_replaces_it(
    uow: AbstractUnitOfWork,
) -> None:
    sale = open_sale("S1", 1)
    sale.add_product(COLA)
    sale.add_product(SOAP)
    save_sales(uow, sale)
    sale.remove_line(1)
    sale.add_tender(TenderKind.CASH, Money(5000))
    sale.complete(NOW)
    save_sales(uow, sale)  # a fresh unit of work, which never loaded the sale
    assert persisted(load_sale(uow, "S1")) == persisted(sale)


# One step of building a random sale; steps the domain refuses are simply skipped.
_ADD = st.tuples(st.just("add"), st.sampled_from([COLA, CHIPS, SOAP]), st.integers(1, 20))
_STEPS = st.one_of(
    _ADD,
    _ADD,
    _ADD,
    st.tuples(st.just("weigh"), st.just(PORK), st.integers(1, 99_999)),
    st.tuples(st.just("priced"), st.just(PORK), st.integers(1, 99_999)),
    st.tuples(st.just("void"), st.integers(1, 8), st.just(0)),
    st.tuples(st.just("discount"), st.integers(1, 8), st.integers(1, 10_000)),
    st.tuples(st.just("member"), st.sampled_from(["M1", "会员8"]), st.just(0)),
    st.tuples(st.just("order"), st.sampled_from(list(DiscountKind)), st.integers(1, 5000)),
    st.tuples(st.just("card"), st.text("0123456789ABC", min_size=1, max_size=20), st.just(0)),
    st.tuples(st.just("cash"), st.integers(1, 100_000), st.just(0)),
    st.tuples(st.just("void_tender"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("hold_recall"), st.just(0), st.just(0)),
)


def _apply(sale: Sale, step: tuple[str, object, int]) -> None:
    kind, arg, number = step
    if kind == "add" and isinstance(arg, Product):
        sale.add_product(arg, number)
    elif kind == "weigh" and isinstance(arg, Product):
        sale.add_weighed(arg, number)
    elif kind == "priced" and isinstance(arg, Product):
        sale.add_priced(arg, Money(number), grams=number % 5000 + 1)
    elif kind == "void" and isinstance(arg, int):
        sale.remove_line(arg, approval(Action.VOID_LINE) if arg % 2 else None)
    elif kind == "discount" and isinstance(arg, int):
        sale.set_line_discount(arg, ManualDiscount.percent_off(number, "折扣"))
    elif kind == "member" and isinstance(arg, str):
        sale.set_member(arg)
    elif kind == "order" and isinstance(arg, DiscountKind):
        sale.set_order_discount(ManualDiscount(arg, number, "整单优惠"))
    elif kind == "card" and isinstance(arg, str):
        ref = PaymentRef(ecr_ref=arg, rrn=arg[::-1], masked_pan="622848******1234")
        sale.add_tender(TenderKind.CARD, min(sale.remaining, Money(1000)), ref)
    elif kind == "cash" and isinstance(arg, int):
        sale.add_tender(TenderKind.CASH, Money(arg))
    elif kind == "void_tender" and isinstance(arg, int):
        sale.void_tender(arg)
    elif kind == "hold_recall":
        sale.hold()
        sale.recall()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(_STEPS, max_size=25), complete=st.booleans())
def test_any_sale_round_trips_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[str, object, int]],
    complete: bool,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'lane.db'}")
    upgrade(engine)
    sale = open_sale("S1", 1)
    for step in steps:
        with contextlib.suppress(DomainError):
            _apply(sale, step)
    if complete:  # pay what is left in cash, then finish
        with contextlib.suppress(DomainError):
            if sale.remaining.fen:
                sale.add_tender(TenderKind.CASH, sale.remaining + Money(50))
            sale.complete(NOW)
    uow = SqlUnitOfWork(make_session_factory(engine))
    save_sales(uow, sale)
    loaded = load_sale(uow, "S1")
    engine.dispose()
    assert persisted(loaded) == persisted(sale)


def test_a_receipt_number_taken_on_the_lane_is_a_conflict(uow: AbstractUnitOfWork) -> None:
    save_sales(uow, simple_sale("S1", 7))
    with uow, pytest.raises(Conflict):
        uow.sales.save(simple_sale("S2", 7))


def test_the_same_receipt_number_on_another_lane_is_fine(uow: AbstractUnitOfWork) -> None:
    other = open_sale("S2", 7, lane="L02")
    save_sales(uow, simple_sale("S1", 7), other)
    assert load_sale(uow, "S2").lane_id == "L02"


def test_an_unknown_sale_is_none(uow: AbstractUnitOfWork) -> None:
    with uow:
        assert uow.sales.get("nope") is None


def test_sales_are_listed_by_shift_in_opening_order(uow: AbstractUnitOfWork) -> None:
    save_sales(
        uow,
        simple_sale("S1", 1, "SH1", NOW + timedelta(minutes=2)),
        simple_sale("S2", 2, "SH2", NOW + timedelta(minutes=1)),
        simple_sale("S3", 3, "SH1", NOW),
        simple_sale("S4", 4, "SH3", NOW),
        full_sale("S5", 5, NOW + timedelta(minutes=3)),
    )
    with uow:
        found = uow.sales.list_by_shift(["SH1", "SH2"])
        assert uow.sales.list_by_shift([]) == []
    assert [s.sale_id for s in found] == ["S3", "S2", "S1", "S5"]
    assert persisted(found[-1]) == persisted(full_sale("S5", 5, NOW + timedelta(minutes=3)))


def test_completed_sales_are_listed_in_a_half_open_range(uow: AbstractUnitOfWork) -> None:
    start = NOW
    save_sales(
        uow,
        simple_sale("before", 1, at=start - timedelta(microseconds=1)),
        simple_sale("first", 2, at=start),
        simple_sale("last", 3, at=start + timedelta(hours=1, microseconds=-1)),
        simple_sale("after", 4, at=start + timedelta(hours=1)),
    )
    open_one = open_sale("open", 5)
    save_sales(uow, open_one)
    with uow:
        found = uow.sales.list_completed_between(start, start + timedelta(hours=1))
    assert [s.sale_id for s in found] == ["first", "last"]


# -- returns ---------------------------------------------------------------------------------------
def make_return(
    sale: Sale,
    return_id: str,
    items: list[ReturnItem],
    *,
    tenders: list[RefundTender] | None = None,
    prior: tuple[Return, ...] = (),
    shift_id: str = "SH2",
    at: datetime = NOW,
) -> Return:
    """A return of ``items``, refunded in cash unless ``tenders`` say otherwise."""
    if tenders is None:
        lines = Return.refund_for(sale, items, prior)
        tenders = [RefundTender(TenderKind.CASH, Money(sum(ln.amount.fen for ln in lines)))]
    return Return.create(
        return_id=return_id,
        sale=sale,
        items=items,
        tenders=tenders,
        approval=approval(Action.REFUND, at),
        lane_id=LANE,
        shift_id=shift_id,
        cashier_id="C2",
        reason="质量问题",
        now=at,
        prior_returns=prior,
    )


def test_a_return_with_card_and_cash_refunds_round_trips(uow: AbstractUnitOfWork) -> None:
    sale = full_sale()
    items = [ReturnItem(2), ReturnItem(1, 2)]  # the weighed line whole, two colas
    refund = Money(sum(line.amount.fen for line in Return.refund_for(sale, items)))
    card_part = Money(1500)
    card = RefundTender(
        TenderKind.CARD,
        card_part,
        PaymentRef("R-0001", rrn="999", masked_pan="622848******1234"),
        original_ecr_ref="E-0001",
    )
    ret = make_return(
        sale,
        "R1",
        items,
        tenders=[card, RefundTender(TenderKind.CASH, refund - card_part)],
    )
    with uow:
        uow.sales.save(sale)
        uow.returns.add(ret)
        uow.commit()
    with uow:
        assert uow.returns.get("R1") == ret
        assert uow.returns.get("R2") is None


def test_returns_of_a_sale_are_listed_oldest_first(uow: AbstractUnitOfWork) -> None:
    sale = full_sale()
    first = make_return(sale, "R9", [ReturnItem(1, 1)])
    second = make_return(
        sale, "R1", [ReturnItem(1, 1)], prior=(first,), at=NOW + timedelta(minutes=1)
    )
    elsewhere = make_return(full_sale("S2", 2), "R5", [ReturnItem(4)], shift_id="SH3")
    with uow:
        for ret in (second, elsewhere, first):
            uow.returns.add(ret)
        uow.commit()
    with uow:
        assert uow.returns.for_sale("S1") == [first, second]
        assert uow.returns.list_by_shift(["SH2"]) == [first, second]
        assert uow.returns.list_by_shift(["SH3", "SH9"]) == [elsewhere]
        assert uow.returns.list_by_shift([]) == []


def test_adding_a_return_twice_is_a_conflict(uow: AbstractUnitOfWork) -> None:
    ret = make_return(full_sale(), "R1", [ReturnItem(1, 1)])
    with uow:
        uow.returns.add(ret)
        uow.commit()
    with uow, pytest.raises(Conflict):
        uow.returns.add(ret)


# -- shifts ----------------------------------------------------------------------------------------
def busy_shift(shift_id: str = "SH1", at: datetime = NOW, close: bool = True) -> Shift:
    shift = Shift.open(
        shift_id=shift_id, lane_id=LANE, cashier_id="C1", opening_float=Money(50_000), now=at
    )
    shift.record_sale(simple_sale("S1", 1, shift_id, at))
    shift.paid_in(Money(2000), "补零钱", approval(Action.PAID_IN_OUT, at), at)
    shift.paid_out(Money(1500), "付送货费", approval(Action.PAID_IN_OUT, at), at)
    shift.no_sale(approval(Action.NO_SALE, at), "换零钱", at)
    shift.no_sale(approval(Action.NO_SALE, at), "顾客换整钱", at)
    if close:
        shift.close(Money(51_000), at + timedelta(hours=8))
    return shift


def test_a_shift_with_movements_and_no_sales_round_trips(uow: AbstractUnitOfWork) -> None:
    shift = busy_shift()
    with uow:
        uow.shifts.save(shift)
        uow.commit()
    with uow:
        loaded = uow.shifts.get("SH1")
        assert uow.shifts.get("nope") is None
    assert loaded is not None
    assert shift_fields(loaded) == shift_fields(shift)
    assert loaded.closing == shift.closing


def test_saving_a_shift_again_keeps_old_and_new_movements(uow: AbstractUnitOfWork) -> None:
    shift = busy_shift(close=False)
    with uow:
        uow.shifts.save(shift)
        uow.commit()
    with uow:
        loaded = uow.shifts.open_for_lane(LANE)
        assert loaded is not None
        loaded.record_sale(simple_sale("S2", 2, "SH1"))
        uow.shifts.save(loaded)
        loaded.no_sale(approval(Action.NO_SALE), "又换零钱", NOW)
        uow.shifts.save(loaded)
        uow.commit()
    shift.record_sale(simple_sale("S2", 2, "SH1"))  # the same again, saved from scratch
    shift.no_sale(approval(Action.NO_SALE), "又换零钱", NOW)
    shift.close(Money(60_000), NOW + timedelta(hours=1))
    with uow:
        uow.shifts.save(shift)
        uow.commit()
    with uow:
        again = uow.shifts.get("SH1")
    assert again is not None
    assert shift_fields(again) == shift_fields(shift)
    assert len(again.movements) == 4


def test_only_the_open_shift_of_the_lane_is_found(uow: AbstractUnitOfWork) -> None:
    with uow:
        assert uow.shifts.open_for_lane(LANE) is None
        uow.shifts.save(busy_shift("SH1"))
        uow.shifts.save(busy_shift("SH2", NOW + timedelta(hours=9), close=False))
        other = Shift.open(
            shift_id="SH3", lane_id="L02", cashier_id="C9", opening_float=Money(0), now=NOW
        )
        uow.shifts.save(other)
        uow.commit()
    with uow:
        found = uow.shifts.open_for_lane(LANE)
    assert found is not None
    assert found.shift_id == "SH2"


def test_shifts_of_a_day_are_those_opened_in_it(uow: AbstractUnitOfWork) -> None:
    day_start = datetime(2026, 3, 3, 16, tzinfo=UTC)  # midnight in Beijing
    day_end = day_start + timedelta(days=1)
    with uow:
        uow.shifts.save(busy_shift("late", day_end - timedelta(hours=1)))
        uow.shifts.save(busy_shift("early", day_start))
        uow.shifts.save(busy_shift("next", day_end))
        uow.shifts.save(busy_shift("before", day_start - timedelta(seconds=1)))
        uow.commit()
    with uow:
        found = uow.shifts.list_for_day(LANE, day_start, day_end)
    assert [s.shift_id for s in found] == ["early", "late"]


# -- Z reports -------------------------------------------------------------------------------------
def closed_day() -> Report:
    """A Z report over a morning shift with every kind of figure and an empty evening shift."""
    morning = busy_shift("SH1", close=False)
    sale = full_sale("S9", 9)
    morning.record_sale(sale)
    ret = make_return(sale, "R1", [ReturnItem(1, 1)], shift_id="SH1")
    morning.record_return(ret)
    morning.close(Money(50_000), NOW + timedelta(hours=8))
    evening = Shift.open(
        shift_id="SH2", lane_id=LANE, cashier_id="C2", opening_float=Money(10_000), now=NOW
    )
    evening.close(Money(9_990), NOW + timedelta(hours=9))
    return z_report(
        number=3,
        business_day=date(2026, 3, 4),
        shifts=[morning, evening],
        sales=[sale, simple_sale("S1", 1, "SH1")],
        returns=[ret],
        now=NOW + timedelta(hours=9),
    )


def test_a_z_report_comes_back_exactly_as_printed(uow: AbstractUnitOfWork) -> None:
    report = closed_day()
    with uow:
        assert uow.z_reports.last_number(LANE) == 0
        uow.z_reports.add(report, LANE)
        uow.commit()
    with uow:
        loaded = uow.z_reports.get(LANE, 3)
        assert uow.z_reports.get(LANE, 2) is None
        assert uow.z_reports.get("L02", 3) is None
        assert uow.z_reports.last_number(LANE) == 3
        assert uow.z_reports.last_number("L02") == 0
    assert loaded == report
    assert list(loaded.by_category) == list(report.by_category)  # printed in the same order
    assert list(loaded.tax_by_rate) == list(report.tax_by_rate)


def test_a_z_number_is_used_once_per_lane(uow: AbstractUnitOfWork) -> None:
    report = closed_day()
    with uow:
        uow.z_reports.add(report, LANE)
        uow.z_reports.add(report, "L02")
        uow.commit()
    with uow, pytest.raises(Conflict):
        uow.z_reports.add(report, LANE)


def test_an_x_report_is_not_kept(uow: AbstractUnitOfWork) -> None:
    report = x_report([busy_shift()], [], [], NOW)
    with uow, pytest.raises(ValueError, match="Z report"):
        uow.z_reports.add(report, LANE)


# -- receipt numbers and outbox --------------------------------------------------------------------
def test_receipt_numbers_count_up_per_lane(uow: AbstractUnitOfWork) -> None:
    with uow:
        first = [uow.receipts.next(LANE), uow.receipts.next(LANE), uow.receipts.next("L02")]
        uow.commit()
    with uow:
        second = uow.receipts.next(LANE)
        uow.commit()
    assert first == ["L01-000001", "L01-000002", "L02-000001"]
    assert second == "L01-000003"


def test_outbox_messages_wait_until_marked_sent(uow: AbstractUnitOfWork) -> None:
    payload = {"sale_id": "S1", "total_fen": 1234, "items": ["可乐", "薯片"], "member": None}
    with uow:
        first = uow.outbox.add("sale.completed", payload, now=NOW)
        second = uow.outbox.add("return.created", {"return_id": "R1"}, now=NOW)
        uow.commit()
    with uow:
        pending = uow.outbox.pending()
        assert [(m.id, m.topic, m.payload) for m in pending] == [
            (first, "sale.completed", payload),
            (second, "return.created", {"return_id": "R1"}),
        ]
        assert pending[0].created_at == NOW
        assert second > first
        uow.outbox.mark_sent([first], NOW + timedelta(seconds=1))
        uow.commit()
    with uow:
        assert [m.id for m in uow.outbox.pending()] == [second]
        assert uow.outbox.pending(limit=0) == []
