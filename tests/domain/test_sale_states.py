"""The sale state machine: the transition table, restoring from fields, and random exploration.

The ``RuleBasedStateMachine`` fires random commands (valid or not) at a sale and checks after each
that a refused command changed nothing, that an accepted one moved along the table, that the
amounts stay consistent, and that a completed sale never changes again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shouyin.domain.errors import DomainError, IllegalTransition, SaleStateError
from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.promotions import ManualDiscount, MultiBuy, Threshold
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import PaymentRef, TenderKind
from shouyin.domain.sale_states import TRANSITIONS, SaleCommand, SaleState, next_state
from shouyin.domain.users import Action
from tests.domain.test_sale import (
    COLA,
    NOW,
    WINE,
    card,
    new_sale,
    paid_sale,
    snapshot,
    supervisor,
)


# -- the transition table -----------------------------------------------------------------------
def test_final_states_accept_no_command() -> None:
    assert TRANSITIONS[SaleState.COMPLETED] == {}
    assert TRANSITIONS[SaleState.VOIDED] == {}


def test_every_state_is_in_the_table() -> None:
    assert set(TRANSITIONS) == set(SaleState)


@pytest.mark.parametrize("state", list(SaleState))
@pytest.mark.parametrize("command", list(SaleCommand))
def test_missing_table_entries_are_illegal(state: SaleState, command: SaleCommand) -> None:
    if command in TRANSITIONS[state]:
        assert next_state(state, command) is TRANSITIONS[state][command]
    else:
        with pytest.raises(IllegalTransition):
            next_state(state, command)


# -- restoring ----------------------------------------------------------------------------------
def restore(sale: Sale, **changes: object) -> Sale:
    fields = {
        "sale_id": sale.sale_id,
        "receipt_no": sale.receipt_no,
        "lane_id": sale.lane_id,
        "shift_id": sale.shift_id,
        "cashier_id": sale.cashier_id,
        "opened_at": sale.opened_at,
        "state": sale.state,
        "lines": sale.lines,
        "tenders": sale.tenders,
        "member_id": sale.member_id,
        "order_discount": sale.order_discount,
        "promotions": sale.promotions,
        "completed_at": sale.completed_at,
        "voided_at": sale.voided_at,
        "voided_by": sale.voided_by,
        "void_reason": sale.void_reason,
    }
    fields.update(changes)
    return Sale(**fields)  # type: ignore[arg-type]


def test_restore_from_fields_gives_the_same_sale_without_events() -> None:
    sale = new_sale(promotions=[Threshold("满50减5", Money(5000), Money(500))])
    sale.add_product(WINE)
    sale.add_product(COLA, 2)
    sale.set_member("M1")
    sale.add_tender(TenderKind.CARD, Money(1000), card())
    sale.add_tender(TenderKind.CASH, Money(10000))
    sale.complete(NOW)
    copy = restore(sale)
    assert copy.events == []
    assert copy.priced == sale.priced
    assert (copy.total_due, copy.change, copy.state) == (sale.total_due, sale.change, sale.state)


def test_restore_refuses_inconsistent_fields() -> None:
    sale = paid_sale()
    with pytest.raises(SaleStateError):
        restore(sale, state=SaleState.OPEN)  # live tender in an open sale
    with pytest.raises(SaleStateError):
        restore(sale, state=SaleState.COMPLETED)  # no completed_at
    with pytest.raises(SaleStateError):
        restore(sale, tenders=(replace(sale.tenders[0], tender_no=5),))


# -- the state machine, explored ----------------------------------------------------------------
PRODUCTS = [COLA, WINE, Product("6904", "纸巾", Money(1))]


class SaleMachine(RuleBasedStateMachine):
    """Random command sequences: refused commands change nothing, accepted ones follow the table."""

    def __init__(self) -> None:
        super().__init__()
        self.sale = new_sale(
            promotions=[
                MultiBuy("第二件半价", 2, 5000),
                Threshold("满100减10", Money(10000), Money(1000)),
            ]
        )
        self.refs = 0
        self.final_snapshot: tuple[object, ...] | None = None

    def attempt(self, command: Callable[[], object]) -> None:
        before_state, before = self.sale.state, snapshot(self.sale)
        events = len(self.sale.events)
        try:
            command()
        except DomainError:
            assert snapshot(self.sale) == before, "a refused command changed the sale"
            assert len(self.sale.events) == events
            return
        after = self.sale.state
        allowed = set(TRANSITIONS[before_state].values())
        assert after in allowed, f"{before_state} -> {after} is not in the table"

    @rule(product=st.sampled_from(PRODUCTS), qty=st.integers(-1, 12))
    def add(self, product: Product, qty: int) -> None:
        self.attempt(lambda: self.sale.add_product(product, qty))

    @rule(line_no=st.integers(1, 6), qty=st.integers(0, 5))
    def change_quantity(self, line_no: int, qty: int) -> None:
        self.attempt(lambda: self.sale.set_quantity(line_no, qty))

    @rule(line_no=st.integers(1, 6))
    def remove(self, line_no: int) -> None:
        self.attempt(lambda: self.sale.remove_line(line_no))

    @rule(bp=st.integers(1, 10_000))
    def order_discount(self, bp: int) -> None:
        self.attempt(lambda: self.sale.set_order_discount(ManualDiscount.percent_off(bp, "r")))

    @rule(member=st.sampled_from([None, "M1"]))
    def member(self, member: str | None) -> None:
        self.attempt(lambda: self.sale.set_member(member))

    @rule()
    def hold(self) -> None:
        self.attempt(self.sale.hold)

    @rule()
    def recall(self) -> None:
        self.attempt(self.sale.recall)

    @rule(fen=st.integers(0, 30_000))
    def pay_cash(self, fen: int) -> None:
        self.attempt(lambda: self.sale.add_tender(TenderKind.CASH, Money(fen)))

    @rule(fen=st.integers(1, 30_000), kind=st.sampled_from([TenderKind.CARD, TenderKind.QR]))
    def pay_electronic(self, fen: int, kind: TenderKind) -> None:
        self.refs += 1
        ref = card(f"E{self.refs}") if kind is TenderKind.CARD else PaymentRef(f"E{self.refs}")
        self.attempt(lambda: self.sale.add_tender(kind, Money(fen), ref))

    @rule(tender_no=st.integers(1, 5))
    def void_tender(self, tender_no: int) -> None:
        self.attempt(lambda: self.sale.void_tender(tender_no))

    @rule()
    def complete(self) -> None:
        self.attempt(lambda: self.sale.complete(NOW))

    @rule(action=st.sampled_from([Action.VOID_SALE, Action.REFUND]))
    def void(self, action: Action) -> None:
        self.attempt(lambda: self.sale.void(supervisor(action), "r", NOW))

    @invariant()
    def consistent(self) -> None:
        self.sale.check_invariants()
        sale = self.sale
        assert sale.total_due >= Money(0)
        assert sale.total_due == sale.subtotal - sale.discount_total
        electronic = sum((t.amount.fen for t in sale.live_tenders if t.kind.electronic), 0)
        assert electronic <= sale.total_due.fen
        assert sale.change.fen <= sum(
            t.amount.fen for t in sale.live_tenders if t.kind is TenderKind.CASH
        )
        if sale.state in (SaleState.PAID, SaleState.COMPLETED):
            assert sale.paid >= sale.total_due
        else:
            assert sale.change == Money(0)

    @precondition(lambda self: self.sale.state is SaleState.COMPLETED)
    @invariant()
    def completed_sales_never_change(self) -> None:
        if self.final_snapshot is None:
            self.final_snapshot = snapshot(self.sale)
        assert snapshot(self.sale) == self.final_snapshot


SaleMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_sale_state_machine = SaleMachine.TestCase
