"""Exactly-once on the terminal: idempotent repeats, status queries, reversal when the acquirer
does not answer, and restarts (power cuts) that lose nothing."""

from __future__ import annotations

from pathlib import Path

from shouyin.link import (
    ErrorCondition,
    PaymentKind,
    PaymentRequest,
    PaymentResponse,
    Result,
    ReversalReason,
    ReversalRequest,
    TransactionState,
    TransactionStatusRequest,
    TransactionStatusResponse,
)
from shouyin.terminal.cards import ReaderRule
from shouyin.terminal.faults import AcquirerFault, FaultPlan, Step
from shouyin.terminal.memory_host import MemoryAcquirer
from tests.terminal import Harness, run_virtual


def pay(h: Harness, ecr_ref: str, amount: int = 1234) -> PaymentRequest:
    return PaymentRequest(service_id=h.sid(), ecr_ref=ecr_ref, amount=amount, kind=PaymentKind.CARD)


def status(h: Harness, ecr_ref: str) -> TransactionStatusRequest:
    return TransactionStatusRequest(service_id=h.sid(), ecr_ref=ecr_ref)


def test_repeated_ecr_ref_returns_original_result_without_second_charge(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            first = await h.ask(pay(h, "R1"))
            again = await h.ask(pay(h, "R1"))
            assert isinstance(first, PaymentResponse) and isinstance(again, PaymentResponse)
            assert again.result is Result.SUCCESS
            assert again.acquirer == first.acquirer
            assert again.service_id != first.service_id
            assert h.acquirer.count("sale") == 1

    run_virtual(main)


def test_reused_ecr_ref_with_another_amount_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            await h.ask(pay(h, "R1", 1000))
            other = await h.ask(pay(h, "R1", 2000))
            assert other.error_condition is ErrorCondition.NOT_ALLOWED
            assert h.acquirer.count("sale") == 1

    run_virtual(main)


def test_status_query_finds_approved_and_declined_and_reports_not_found(tmp_path: Path) -> None:
    async def main() -> None:
        rules = (ReaderRule(card="decline", ecr_ref="D.*"),)
        async with Harness(tmp_path, rules=rules) as h:
            await h.ask(pay(h, "A1"))
            await h.ask(pay(h, "D1"))
            approved = await h.ask(status(h, "A1"))
            declined = await h.ask(status(h, "D1"))
            missing = await h.ask(status(h, "X1"))
            assert isinstance(approved, TransactionStatusResponse)
            assert approved.transaction is not None
            assert approved.transaction.state is TransactionState.APPROVED
            assert approved.transaction.acquirer is not None
            assert isinstance(declined, TransactionStatusResponse)
            assert declined.transaction is not None
            assert declined.transaction.state is TransactionState.DECLINED
            assert missing.result is Result.FAILURE
            assert missing.error_condition is ErrorCondition.NOT_FOUND

    run_virtual(main)


def test_status_query_during_a_payment_reports_in_progress(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path, rules=(ReaderRule(card="slow"),)) as h:
            request = pay(h, "R1")
            h.send(request)
            await h.settle(5)
            during = await h.ask(status(h, "R1"))
            assert isinstance(during, TransactionStatusResponse) and during.transaction
            assert during.transaction.state is TransactionState.IN_PROGRESS
            final = await h.wait_response(request.service_id)
            assert final.result is Result.SUCCESS

    run_virtual(main)


def test_no_acquirer_answer_fails_and_reverses_until_acknowledged(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path, rules=(ReaderRule(card="no_answer"),)) as h:
            response = await h.ask(pay(h, "R1"))
            assert response.result is Result.FAILURE
            assert response.error_condition is ErrorCondition.TIMEOUT
            await h.settle(2)
            assert h.acquirer.count("reverse") == 1
            assert h.app.state.reversals() == []
            entry = h.app.state.get("R1")
            assert entry is not None and entry.state is TransactionState.REVERSED
            assert [e.status for e in h.acquirer.ledger] == ["reversed"]

    run_virtual(main)


def test_unacknowledged_reversal_is_retried_after_a_restart(tmp_path: Path) -> None:
    async def main() -> None:
        acquirer = MemoryAcquirer()
        lost = FaultPlan(acquirer=AcquirerFault.LOSE_REPLY)  # the host acts, answers get lost
        async with Harness(tmp_path, acquirer=acquirer, plan=lost) as h:
            response = await h.ask(pay(h, "R1"))
            assert response.error_condition is ErrorCondition.TIMEOUT
            await h.settle(35)  # the worker's reversals get no answer either
            pending = h.app.state.reversals()
            assert len(pending) == 1 and pending[0].armed and pending[0].attempts >= 1
            await h.restart()  # power cycle with the fault switched off
            await h.settle(2)
            assert h.app.state.reversals() == []
            entry = h.app.state.get("R1")
            assert entry is not None and entry.state is TransactionState.REVERSED
            assert [e.status for e in acquirer.ledger] == ["reversed"]

    run_virtual(main)


def test_power_loss_after_approval_reverses_on_restart(tmp_path: Path) -> None:
    async def main() -> None:
        plan = FaultPlan(power_loss_at=Step.AFTER_ACQUIRER_APPROVAL)
        async with Harness(tmp_path, plan=plan) as h:
            h.send(pay(h, "R1"))
            await h.settle(5)
            assert h.power_lost == ["after_acquirer_approval"]
            await h.restart()
            await h.settle(2)
            answer = await h.ask(status(h, "R1"))
            assert isinstance(answer, TransactionStatusResponse) and answer.transaction
            assert answer.transaction.state is TransactionState.REVERSED
            assert [e.status for e in h.acquirer.ledger] == ["reversed"]
            again = await h.ask(pay(h, "R1"))  # the cashier retries: no second charge
            assert again.result is Result.FAILURE
            assert h.acquirer.count("sale") == 1

    run_virtual(main)


def test_power_loss_before_response_keeps_the_approval(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path, plan=FaultPlan(power_loss_at=Step.BEFORE_RESPONSE)) as h:
            h.send(pay(h, "R1"))
            await h.settle(5)
            assert h.power_lost == ["before_response"]
            await h.restart()
            answer = await h.ask(status(h, "R1"))
            assert isinstance(answer, TransactionStatusResponse) and answer.transaction
            assert answer.transaction.state is TransactionState.APPROVED
            again = await h.ask(pay(h, "R1"))
            assert again.result is Result.SUCCESS
            assert h.acquirer.count("sale") == 1
            assert h.acquirer.count("reverse") == 0

    run_virtual(main)


def test_power_loss_before_sending_charges_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path, plan=FaultPlan(power_loss_at=Step.CARD_READ)) as h:
            h.send(pay(h, "R1"))
            await h.settle(5)
            await h.restart()
            answer = await h.ask(status(h, "R1"))
            assert isinstance(answer, TransactionStatusResponse) and answer.transaction
            assert answer.transaction.state is TransactionState.FAILED
            assert answer.transaction.error_condition is ErrorCondition.ABORTED
            assert h.acquirer.count("sale") == 0
            assert h.app.state.reversals() == []

    run_virtual(main)


def test_cashier_reversal_of_an_approved_payment_reverses_it(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            await h.ask(pay(h, "R1"))
            request = ReversalRequest(
                service_id=h.sid(), ecr_ref="R1", reason=ReversalReason.UNKNOWN_OUTCOME
            )
            answer = await h.ask(request)
            assert answer.result is Result.SUCCESS
            again = await h.ask(request.model_copy(update={"service_id": h.sid()}))
            assert again.result is Result.SUCCESS
            assert h.acquirer.count("reverse") == 1
            assert [e.status for e in h.acquirer.ledger] == ["reversed"]
            entry = h.app.state.get("R1")
            assert entry is not None and entry.state is TransactionState.REVERSED

    run_virtual(main)


def test_cashier_reversal_while_the_acquirer_is_down_is_queued(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            await h.ask(pay(h, "R1"))
            h.acquirer.offline = True
            request = ReversalRequest(
                service_id=h.sid(), ecr_ref="R1", reason=ReversalReason.UNKNOWN_OUTCOME
            )
            answer = await h.ask(request)
            assert answer.result is Result.PARTIAL
            assert answer.error_condition is ErrorCondition.IN_PROGRESS
            h.acquirer.offline = False
            await h.settle(45)
            entry = h.app.state.get("R1")
            assert entry is not None and entry.state is TransactionState.REVERSED
            assert h.app.state.reversals() == []

    run_virtual(main)


def test_restart_mid_batch_loses_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            for n in range(3):
                await h.ask(pay(h, f"R{n}", 100 * (n + 1)))
            before = h.app.state.entries()
            trace, batch = h.app.state.last_trace, h.app.state.batch
            await h.restart()
            state = h.app.state
            assert state.entries() == before
            assert (state.last_trace, state.batch) == (trace, batch)
            assert state.slip() is not None
            after = await h.ask(pay(h, "R9"))
            assert isinstance(after, PaymentResponse) and after.acquirer
            assert after.acquirer.trace == "000004"

    run_virtual(main)


def test_journal_keeps_at_least_a_thousand_transactions(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from shouyin.link import TransactionKind
    from shouyin.terminal.records import JournalEntry, Stage
    from shouyin.terminal.state import TerminalState

    state = TerminalState(tmp_path / "t")
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(1200):
        entry = JournalEntry(
            ecr_ref=f"R{n}",
            kind=TransactionKind.PAYMENT,
            state=TransactionState.APPROVED,
            stage=Stage.DONE,
            amount=100,
            payment_kind=PaymentKind.CARD,
            batch="000001" if n < 1100 else "000002",
            created=now,
            updated=now,
        )
        state.put(entry)
    state.close_batch()  # batch 2 is open now
    for n in range(1200, 2300):
        state.put(
            JournalEntry(
                ecr_ref=f"R{n}",
                kind=TransactionKind.PAYMENT,
                state=TransactionState.APPROVED,
                stage=Stage.DONE,
                amount=100,
                payment_kind=PaymentKind.CARD,
                batch="000002",
                created=now,
                updated=now,
            )
        )
    assert len(state.entries()) >= 2000
    assert state.get("R1100") is not None  # newest of the old batch kept
