"""The sale repository's narrow queries (a receipt of a lane, the unfinished sales of a shift,
the page's cash tender ids) on SQLite, PostgreSQL and the in-memory fake: the same answers as
filtering every sale, from index lookups that load only the matching sales."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.store.engine import make_engine
from shouyin.store.fakes import FakeUnitOfWork
from shouyin.store.repositories import Conflict
from shouyin.store.uow import SqlUnitOfWork, make_session_factory

NOW = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
CHIPS = Product("A2", "乐事薯片", Money(790), category="零食")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "fake"])
def uow(request: pytest.FixtureRequest) -> Iterator[SqlUnitOfWork | FakeUnitOfWork]:
    if request.param == "fake":
        yield FakeUnitOfWork()
        return
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    engine = make_engine(url)
    yield SqlUnitOfWork(make_session_factory(engine))
    engine.dispose()


def sale(
    sale_id: str,
    number: int,
    *,
    shift_id: str = "SH1",
    lane: str = "L01",
    minute: int = 0,
    state: SaleState = SaleState.OPEN,
) -> Sale:
    s = Sale.open(
        sale_id=sale_id,
        receipt_no=f"{lane}-{number:06d}",
        lane_id=lane,
        shift_id=shift_id,
        cashier_id="C1",
        now=NOW + timedelta(minutes=minute),
    )
    s.add_product(CHIPS)
    if state is SaleState.TENDERING:
        s.add_tender(TenderKind.CASH, Money(100))
    elif state is SaleState.HELD:
        s.hold()
    elif state is SaleState.COMPLETED:
        s.add_tender(TenderKind.CASH, Money(1000))
        s.complete(NOW)
    assert s.state is state
    return s


def store(uow: SqlUnitOfWork | FakeUnitOfWork, *sales: Sale) -> None:
    with uow:
        for s in sales:
            uow.sales.save(s)
        uow.commit()


def test_a_receipt_is_found_on_its_own_lane_only(uow: SqlUnitOfWork | FakeUnitOfWork) -> None:
    store(
        uow,
        sale("S1", 1, state=SaleState.COMPLETED),
        sale("S2", 2, state=SaleState.COMPLETED),
        sale("S3", 1, lane="L02", state=SaleState.COMPLETED),
    )
    with uow:
        found = uow.sales.by_receipt("L01", "L01-000002")
        assert found is not None and found.sale_id == "S2"
        assert found.lines and found.tenders and found.state is SaleState.COMPLETED
        assert uow.sales.by_receipt("L02", "L01-000002") is None
        assert uow.sales.by_receipt("L01", "L01-000009") is None


def test_unfinished_sales_of_a_shift_are_the_open_tendering_and_paid_ones(
    uow: SqlUnitOfWork | FakeUnitOfWork,
) -> None:
    store(
        uow,
        sale("S1", 1, minute=1, state=SaleState.COMPLETED),
        sale("S2", 2, minute=2, state=SaleState.TENDERING),
        sale("S3", 3, minute=3, state=SaleState.HELD),
        sale("S4", 4, minute=4),
        sale("S5", 5, minute=5, shift_id="SH2"),
    )
    with uow:
        assert [s.sale_id for s in uow.sales.unfinished("SH1")] == ["S2", "S4"]
        assert [s.sale_id for s in uow.sales.unfinished("SH2")] == ["S5"]
        assert uow.sales.unfinished("SH3") == []
        expected = [
            s
            for s in uow.sales.list_by_shift(["SH1"])
            if s.state in (SaleState.OPEN, SaleState.TENDERING, SaleState.PAID)
        ]
        assert [s.sale_id for s in uow.sales.unfinished("SH1")] == [s.sale_id for s in expected]


def test_a_cash_tender_id_is_recorded_once(uow: SqlUnitOfWork | FakeUnitOfWork) -> None:
    store(uow, sale("S1", 1))
    with uow:
        assert uow.sales.cash_tender("T-1") is None
        uow.sales.record_cash_tender("T-1", "S1", 1, NOW)
        uow.commit()
    with uow:
        assert uow.sales.cash_tender("T-1") == ("S1", 1)
        with pytest.raises(Conflict):
            uow.sales.record_cash_tender("T-1", "S1", 2, NOW)
    with uow:  # the conflict changed nothing
        assert uow.sales.cash_tender("T-1") == ("S1", 1)


def test_the_receipt_lookup_loads_one_sale(sqlite_url: str) -> None:
    """Not a scan of the lane's sales: the statements name the one receipt (index lookup) and
    fetch one header, whatever the number of sales."""
    engine = make_engine(sqlite_url)
    uow = SqlUnitOfWork(make_session_factory(engine))
    store(uow, *(sale(f"S{i}", i, state=SaleState.COMPLETED) for i in range(1, 51)))
    plans: list[str] = []

    def explain(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM sales" in statement:
            rows = cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.extend(str(r[3]) for r in rows)

    event.listen(engine, "before_cursor_execute", explain)
    try:
        with uow:
            found = uow.sales.by_receipt("L01", "L01-000042")
            unfinished = uow.sales.unfinished("SH1")
    finally:
        event.remove(engine, "before_cursor_execute", explain)
        engine.dispose()
    assert found is not None and found.sale_id == "S42"
    assert unfinished == []
    assert plans and not any(p.startswith("SCAN sales") for p in plans), plans
    assert any("ix_sales_unfinished" in p for p in plans), plans
