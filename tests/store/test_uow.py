"""The unit of work: everything in a block is kept together on commit, or not at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import sessionmaker

from shouyin.domain.catalogue import Catalogue
from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import SaleLine, TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import Role, User
from shouyin.store.catalogue_repo import SqlCatalogue
from shouyin.store.engine import make_engine
from shouyin.store.fakes import FakeUnitOfWork
from shouyin.store.repositories import Conflict
from shouyin.store.uow import AbstractUnitOfWork, SqlUnitOfWork, make_session_factory

NOW = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
COLA = Product("A1", "可口可乐 330ml", Money(350), barcodes=("6901234567892",), category="饮料")
CHIPS = Product("A2", "乐事薯片", Money(790), category="零食")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "fake"])
def uow(request: pytest.FixtureRequest) -> Iterator[AbstractUnitOfWork]:
    """A unit of work on SQLite, on PostgreSQL, or in memory."""
    if request.param == "fake":
        yield FakeUnitOfWork(Catalogue([COLA]))
        return
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    engine = make_engine(url)
    SqlCatalogue(engine).save(COLA)
    yield SqlUnitOfWork(make_session_factory(engine))
    engine.dispose()


def new_sale(uow: AbstractUnitOfWork, sale_id: str = "S1") -> Sale:
    """A sale opened with the lane's next receipt number, as a checkout does."""
    return Sale.open(
        sale_id=sale_id,
        receipt_no=uow.receipts.next("L01"),
        lane_id="L01",
        shift_id="SH1",
        cashier_id="C1",
        now=NOW,
    )


def checkout(uow: AbstractUnitOfWork, sale: Sale) -> None:
    """Complete a sale and record it with its outbox message, without committing."""
    sale.add_product(COLA, 2)
    sale.add_tender(TenderKind.CASH, sale.remaining + Money(300))
    sale.complete(NOW)
    uow.sales.save(sale)
    uow.outbox.add("sale.completed", {"sale_id": sale.sale_id}, now=NOW)


Stored = tuple[
    list[tuple[str, str, SaleState, tuple[SaleLine, ...]]], list[str], list[Mapping[str, object]]
]


def stored_state(uow: AbstractUnitOfWork) -> Stored:
    """What a new block sees: sales of SH1 (with lines), users, pending messages."""
    with uow:
        sales = uow.sales.list_by_shift(["SH1"])
        users = [u.username for u in uow.users.list()]
        messages = [m.payload for m in uow.outbox.pending()]
    return [(s.sale_id, s.receipt_no, s.state, s.lines) for s in sales], users, messages


def test_commit_keeps_the_sale_its_receipt_number_and_message_together(
    uow: AbstractUnitOfWork,
) -> None:
    with uow:
        sale = new_sale(uow)
        checkout(uow, sale)
        uow.commit()
    sales, _, messages = stored_state(uow)
    assert [(s[0], s[1]) for s in sales] == [("S1", "L01-000001")]
    assert messages == [{"sale_id": "S1"}]


def test_nothing_is_kept_without_commit(uow: AbstractUnitOfWork) -> None:
    with uow:
        checkout(uow, new_sale(uow))
        uow.users.add(User("U1", "lisi", "李四", Role.CASHIER, "hash"))
    assert stored_state(uow) == ([], [], [])
    with uow:
        assert uow.receipts.next("L01") == "L01-000001"  # the number was handed back


def test_an_exception_in_the_block_rolls_back_everything(uow: AbstractUnitOfWork) -> None:
    with pytest.raises(RuntimeError, match="printer"), uow:
        checkout(uow, new_sale(uow))
        raise RuntimeError("printer on fire")
    assert stored_state(uow) == ([], [], [])


def test_a_failed_write_leaves_earlier_data_untouched(uow: AbstractUnitOfWork) -> None:
    with uow:
        first = new_sale(uow, "S1")
        first.add_product(CHIPS)
        uow.sales.save(first)
        uow.commit()
    before = stored_state(uow)
    with pytest.raises(Conflict), uow:
        loaded = uow.sales.get("S1")
        assert loaded is not None
        checkout(uow, loaded)  # changes S1 and queues a message...
        uow.users.add(User("U1", "lisi", "李四", Role.CASHIER, "hash"))
        clash = Sale.open(
            sale_id="S2",
            receipt_no="L01-000001",  # ...then a second sale reuses S1's receipt number
            lane_id="L01",
            shift_id="SH1",
            cashier_id="C1",
            now=NOW,
        )
        uow.sales.save(clash)
        uow.commit()
    assert stored_state(uow) == before


def test_rollback_discards_and_the_block_can_go_on(uow: AbstractUnitOfWork) -> None:
    with uow:
        sale = new_sale(uow)
        sale.add_product(CHIPS)
        uow.sales.save(sale)
        uow.rollback()
        again = Sale.open(
            sale_id="S1",
            receipt_no=uow.receipts.next("L01"),
            lane_id="L01",
            shift_id="SH1",
            cashier_id="C1",
            now=NOW,
        )
        again.add_product(CHIPS)
        uow.sales.save(again)  # the repository must not think S1 is still stored
        uow.commit()
    (stored,), _, _ = stored_state(uow)
    assert stored == ("S1", "L01-000001", again.state, again.lines)


def test_a_loaded_sale_changed_without_saving_stays_as_stored(uow: AbstractUnitOfWork) -> None:
    with uow:
        sale = new_sale(uow)
        sale.add_product(CHIPS)
        uow.sales.save(sale)
        uow.commit()
    with uow:
        loaded = uow.sales.get("S1")
        assert loaded is not None
        loaded.add_product(COLA)
        uow.commit()
    with uow:
        stored = uow.sales.get("S1")
    assert stored is not None
    assert len(stored.lines) == 1


def test_units_of_work_do_not_nest(uow: AbstractUnitOfWork) -> None:
    with uow, pytest.raises(RuntimeError, match="nest"), uow:
        pass


def test_commit_outside_a_block_is_refused(uow: AbstractUnitOfWork) -> None:
    with pytest.raises(RuntimeError, match="with"):
        uow.commit()


def test_products_are_the_catalogue(uow: AbstractUnitOfWork) -> None:
    with uow:
        found = uow.products.by_barcode("6901234567892")
    assert found is not None
    assert found.sku == "A1"


def test_the_fake_records_whether_it_was_committed() -> None:
    uow = FakeUnitOfWork()
    with uow:
        new_sale(uow)
    assert not uow.committed
    with uow:
        checkout(uow, new_sale(uow))
        uow.commit()
    assert uow.committed


def test_a_committed_sale_is_there_for_a_new_engine(db_url: str) -> None:
    engine = make_engine(db_url)
    uow = SqlUnitOfWork(make_session_factory(engine))
    with uow:
        checkout(uow, new_sale(uow))
        uow.commit()
    engine.dispose()
    restarted = make_engine(db_url)
    with SqlUnitOfWork(make_session_factory(restarted)) as again:
        sale = again.sales.get("S1")
    restarted.dispose()
    assert sale is not None
    assert sale.total_due == Money(700)


def test_the_session_factory_must_be_bound_to_an_engine(engine: Engine) -> None:
    with pytest.raises(TypeError, match="Engine"):
        SqlUnitOfWork(sessionmaker())
    assert isinstance(SqlUnitOfWork(make_session_factory(engine)).products, SqlCatalogue)


def test_a_second_lane_process_waits_for_the_receipt_number_in_use(db_url: str) -> None:
    """Two units of work on one lane: the second gets the number the first handed back."""
    engine = make_engine(db_url)
    first, second = (SqlUnitOfWork(make_session_factory(engine)) for _ in range(2))
    taken: list[str] = []

    def take_next() -> None:
        with second:
            taken.append(second.receipts.next("L01"))
            second.commit()

    try:
        with first:
            assert first.receipts.next("L01") == "L01-000001"
            waiter = threading.Thread(target=take_next)
            waiter.start()
            waiter.join(timeout=0.3)
            assert waiter.is_alive(), "the counter must stay locked until the first one ends"
        # Leaving the block rolled back: number 1 was never used, so it goes to the second.
        waiter.join(timeout=5)
        assert taken == ["L01-000001"]
    finally:
        engine.dispose()


def test_a_commit_that_fails_keeps_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    uow = SqlUnitOfWork(factory)
    with uow:
        checkout(uow, new_sale(uow, "S1"))
        uow.commit()
    before = stored_state(uow)

    def refuse(session: object) -> None:
        raise OSError("disk full")

    event.listen(factory, "before_commit", refuse)
    try:
        with pytest.raises(OSError, match="disk full"), uow:
            checkout(uow, new_sale(uow, "S2"))
            uow.commit()
    finally:
        event.remove(factory, "before_commit", refuse)
    assert stored_state(uow) == before
    with uow:
        assert uow.receipts.next("L01") == "L01-000002"
    engine.dispose()
