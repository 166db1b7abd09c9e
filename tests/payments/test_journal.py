"""The journal: its transition table, and its storage (SQLite and the fake behave the same)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from shouyin.domain.errors import CardDataError
from shouyin.domain.money import Money
from shouyin.domain.sale_lines import TenderKind
from shouyin.link.values import Wallet
from shouyin.payments import (
    OPEN_STATES,
    SETTLED_STATES,
    TRANSITIONS,
    IllegalIntentTransition,
    IntentEvent,
    IntentKind,
    IntentState,
    PaymentIntent,
    PaymentUnitOfWork,
    advance,
    format_ecr_ref,
)
from shouyin.payments.fakes import FakePaymentUnitOfWork
from shouyin.store.engine import make_engine
from shouyin.store.payment_repo import SqlPaymentUnitOfWork
from shouyin.store.repositories import Conflict
from shouyin.store.uow import make_session_factory
from tests.payments import sql_uow

NOW = datetime(2025, 3, 14, 2, 0, tzinfo=UTC)
DAY = date(2025, 3, 14)


def intent(ecr_ref: str = "L01-20250314-000001", **changes: object) -> PaymentIntent:
    base = PaymentIntent(
        ecr_ref=ecr_ref,
        kind=IntentKind.PAYMENT,
        sale_id="S1",
        lane_id="L01",
        tender_kind=TenderKind.QR,
        amount=Money(1234),
        state=IntentState.PENDING,
        created_at=NOW,
        updated_at=NOW,
        wallet=Wallet.WECHAT,
        code_tail="6789",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# -- the state machine -----------------------------------------------------------------------------


def test_settled_states_have_no_way_out_except_void_or_reverse_of_an_approval() -> None:
    for state in SETTLED_STATES - {IntentState.APPROVED}:
        assert TRANSITIONS[state] == {}
    assert set(TRANSITIONS[IntentState.APPROVED]) == {IntentEvent.VOID, IntentEvent.REVERSE}


@pytest.mark.parametrize("state", sorted(IntentState))
@pytest.mark.parametrize("event", sorted(IntentEvent))
def test_every_pair_missing_from_the_table_is_refused(
    state: IntentState, event: IntentEvent
) -> None:
    start = intent(state=state)
    if event in TRANSITIONS[state]:
        assert advance(start, event, NOW).state is TRANSITIONS[state][event]
    else:
        with pytest.raises(IllegalIntentTransition):
            advance(start, event, NOW)


def test_a_send_counts_an_attempt_and_remembers_the_first_time() -> None:
    later = NOW + timedelta(seconds=5)
    sent = advance(intent(), IntentEvent.SEND, NOW)
    again = advance(advance(sent, IntentEvent.LOSE, later), IntentEvent.SEND, later)
    assert (sent.attempts, again.attempts) == (1, 2)
    assert again.sent_at == NOW


def test_reaching_a_settled_state_records_when() -> None:
    done = advance(intent(), IntentEvent.DECLINE, NOW + timedelta(seconds=3))
    assert done.resolved_at == NOW + timedelta(seconds=3)
    assert advance(intent(), IntentEvent.LOSE, NOW).resolved_at is None


def test_open_states_are_exactly_those_recovery_must_ask_about() -> None:
    assert {IntentState.PENDING, IntentState.SENT, IntentState.UNKNOWN} == OPEN_STATES


def test_a_refund_is_never_reversed_or_voided() -> None:
    with pytest.raises(ValueError, match="cannot be reversing"):
        intent(kind=IntentKind.REFUND, state=IntentState.REVERSING)


def test_no_more_than_four_digits_of_a_payment_code_are_kept() -> None:
    with pytest.raises(ValueError, match="last 4 digits"):
        intent(code_tail="123456")


def test_a_full_card_number_is_refused() -> None:
    with pytest.raises(CardDataError):
        intent(masked_pan="6228480000000000018")


def test_ecr_refs_name_lane_day_and_counter_with_link_safe_characters() -> None:
    assert format_ecr_ref("L01", DAY, 7) == "L01-20250314-000007"
    assert format_ecr_ref("收银 2", DAY, 1) == "___2-20250314-000001"


# -- storage: the same contract on SQLite and in memory -------------------------------------------


@pytest.fixture(params=["fake", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def uow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PaymentUnitOfWork]:
    """The fake, a SQLite file, and PostgreSQL when one answers (else skipped)."""
    if request.param == "fake":
        yield FakePaymentUnitOfWork()
        return
    if request.param == "sqlite":
        with sql_uow(tmp_path / "lane.db") as sql:
            yield sql
        return
    engine = make_engine(str(request.getfixturevalue("pg_url")))
    try:
        yield SqlPaymentUnitOfWork(make_session_factory(engine))
    finally:
        engine.dispose()


def test_an_intent_comes_back_as_stored(uow: PaymentUnitOfWork) -> None:
    stored = intent(
        details={"return_id": "R1", "items": [[1, 2]], "reason": "坏了"},
        masked_pan="622848*********0018",
        rrn="000000000001",
    )
    with uow:
        uow.payments.add(stored)
        uow.commit()
    with uow:
        assert uow.payments.get(stored.ecr_ref) == stored


def test_a_taken_ecr_ref_is_a_conflict(uow: PaymentUnitOfWork) -> None:
    with uow:
        uow.payments.add(intent())
        uow.commit()
    with uow, pytest.raises(Conflict):
        uow.payments.add(intent())


def test_saving_an_intent_never_added_fails(uow: PaymentUnitOfWork) -> None:
    with uow, pytest.raises(LookupError):
        uow.payments.save(intent())


def test_nothing_is_kept_without_commit(uow: PaymentUnitOfWork) -> None:
    with uow:
        uow.payments.add(intent())
    with uow:
        assert uow.payments.get(intent().ecr_ref) is None


def test_unsettled_lists_only_open_and_retry_states_of_the_lane_oldest_first(
    uow: PaymentUnitOfWork,
) -> None:
    rows = [
        intent("A-1", state=IntentState.UNKNOWN, created_at=NOW + timedelta(seconds=2)),
        intent("A-2", state=IntentState.PENDING, created_at=NOW),
        intent("A-3", state=IntentState.APPROVED),
        intent("A-4", state=IntentState.REVERSING, created_at=NOW + timedelta(seconds=1)),
        intent("A-5", state=IntentState.SENT, lane_id="L02"),
        intent("A-6", state=IntentState.VOIDING, created_at=NOW + timedelta(seconds=3)),
    ]
    with uow:
        for row in rows:
            uow.payments.add(row)
        uow.commit()
    with uow:
        found = [i.ecr_ref for i in uow.payments.unsettled("L01")]
    assert found == ["A-2", "A-4", "A-1", "A-6"]


def test_a_sales_intents_come_oldest_first(uow: PaymentUnitOfWork) -> None:
    with uow:
        uow.payments.add(intent("B-2", created_at=NOW + timedelta(seconds=1)))
        uow.payments.add(intent("B-1"))
        uow.payments.add(intent("B-3", sale_id="S2"))
        uow.commit()
    with uow:
        assert [i.ecr_ref for i in uow.payments.for_sale("S1")] == ["B-1", "B-2"]


def test_ecr_ref_counters_run_per_lane_and_day(uow: PaymentUnitOfWork) -> None:
    with uow:
        first = uow.payments.next_ecr_ref("L01", DAY)
        uow.payments.add(intent(first))
        uow.payments.add(intent(format_ecr_ref("L01", DAY, 41)))
        uow.payments.add(intent(format_ecr_ref("L011", DAY, 99)))
        uow.commit()
    with uow:
        assert first == "L01-20250314-000001"
        assert uow.payments.next_ecr_ref("L01", DAY) == "L01-20250314-000042"
        assert uow.payments.next_ecr_ref("L01", DAY + timedelta(days=1)) == "L01-20250315-000001"
        assert uow.payments.next_ecr_ref("L02", DAY) == "L02-20250314-000001"
