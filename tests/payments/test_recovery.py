"""Recovery over a durable SQLite journal and the fake terminal: lost answers, a terminal that
never answers, reversals retried until acknowledged, voids and refunds sent again, and a restart of
the cashier system at every kill point of a payment, after which the invariants hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shouyin.domain.money import Money
from shouyin.domain.returns import ReturnItem
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import Action
from shouyin.link.messages import RefundRequest, ReversalRequest, TransactionStatusRequest
from shouyin.link.values import TransactionState
from shouyin.payments import (
    Checkpoint,
    IntentState,
    KillPoint,
    PaymentOrchestrator,
    PaymentPolicy,
    RecoveryPending,
)
from shouyin.payments.fakes import FakeBehaviour, FakeTerminal
from tests.payments import COLA, RICE, Shop, sql_uow
from tests.terminal import run_virtual


class Crash(BaseException):
    """The cashier process dies here (nothing catches a BaseException on the way out)."""


def crash_at(point: KillPoint, reached: list[KillPoint]) -> Checkpoint:
    def checkpoint(at: KillPoint) -> None:
        if at is point and not reached:
            reached.append(at)
            raise Crash(at.value)

    return checkpoint


def test_lost_answer_is_found_approved_by_status_query_and_completes_the_sale_once(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        terminal.script(FakeBehaviour.LOSE_RESPONSE)
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            orchestrator = PaymentOrchestrator(uow, terminal, shop.ctx)
            await orchestrator.recover_all()
            sale_id = shop.sale((RICE, 1))
            outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
            assert outcome.approved and outcome.completed
            assert terminal.charges == 1
            assert len(terminal.requests_of(TransactionStatusRequest)) == 1
            assert len(shop.get(sale_id).tenders) == 1
            shop.check(terminal.states())

    run_virtual(main)


def test_terminal_that_never_answers_is_reversed_until_acknowledged(tmp_path: Path) -> None:
    async def main() -> None:
        terminal = FakeTerminal(status_failures=1000, reversal_failures=4, hang_for=10)
        terminal.script(FakeBehaviour.NEVER_ANSWER)  # it charges, and never says so
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            # record_sent: the payment's send is then counted in ``attempts`` (asserted below)
            policy = PaymentPolicy(record_sent=True)
            orchestrator = PaymentOrchestrator(uow, terminal, shop.ctx, policy=policy)
            await orchestrator.recover_all()
            sale_id = shop.sale((RICE, 1))
            outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
            assert outcome.state is IntentState.REVERSING  # three tries while the cashier waits
            assert "正在冲正" in outcome.explanation.zh
            assert shop.get(sale_id).state is SaleState.OPEN
            assert await orchestrator.retry_unsettled() == 1  # the fourth try: still nothing
            assert await orchestrator.retry_unsettled() == 0  # acknowledged
            (intent,) = shop.intents()
            assert intent.state is IntentState.REVERSED
            assert intent.attempts == 1 + 5  # the payment, then five reversals
            assert len(terminal.requests_of(ReversalRequest)) == 5  # four went unanswered
            assert terminal.states() == {intent.ecr_ref: TransactionState.REVERSED}
            assert shop.get(sale_id).state is SaleState.OPEN
            shop.check(terminal.states())

    run_virtual(main)


def test_restarted_lane_recovers_a_sent_payment_before_taking_new_ones(tmp_path: Path) -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        reached: list[KillPoint] = []
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            dying = PaymentOrchestrator(
                uow,
                terminal,
                shop.ctx,
                policy=PaymentPolicy(record_sent=True),
                checkpoint=crash_at(KillPoint.AFTER_SENT_WRITE, reached),
            )
            await dying.recover_all()
            sale_id = shop.sale((RICE, 1))
            with pytest.raises(Crash):
                await dying.pay(sale_id, TenderKind.CARD, Money(5990))
        assert terminal.charges == 1  # the terminal took the money; the lane never heard
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.reopen(uow, shop)
            assert [i.state for i in shop.intents()] == [IntentState.SENT]
            lane = PaymentOrchestrator(uow, terminal, shop.ctx)
            with pytest.raises(RecoveryPending):
                await lane.pay(shop.sale((COLA, 1)), TenderKind.CARD, Money(350))
            report = await lane.recover_all()
            (resolution,) = report.resolutions
            assert resolution.before is IntentState.SENT
            assert resolution.intent.state is IntentState.APPROVED
            assert resolution.explanation.zh == "支付成功 ¥59.90，交易完成"
            assert shop.get(sale_id).state is SaleState.COMPLETED
            assert (await lane.pay(shop.sale((COLA, 1)), TenderKind.CARD, Money(350))).completed
            assert terminal.charges == 2
            shop.check(terminal.states())

    run_virtual(main)


# -- a crash at every kill point -------------------------------------------------------------------

_APPROVE = (
    KillPoint.BEFORE_INTENT,
    KillPoint.AFTER_INTENT,
    KillPoint.AFTER_SEND,
    KillPoint.AFTER_SENT_WRITE,
    KillPoint.AFTER_RESPONSE,
    KillPoint.BEFORE_RESULT_WRITE,
    KillPoint.AFTER_RESULT_WRITE,
)
_LOST = (KillPoint.BEFORE_QUERY, KillPoint.AFTER_QUERY)
_REVERSE = (
    KillPoint.BEFORE_REVERSAL,
    KillPoint.DURING_REVERSAL,
    KillPoint.AFTER_REVERSAL,
    KillPoint.AFTER_REVERSAL_WRITE,
)
CASES = (
    [("approve", p) for p in _APPROVE]
    + [("lost", p) for p in (*_LOST, KillPoint.AFTER_RESULT_WRITE)]
    + [("silent", p) for p in _REVERSE]
)


@pytest.mark.parametrize(("scenario", "point"), CASES)
def test_a_crash_at_any_step_leaves_a_journal_that_recovery_settles(
    tmp_path: Path, scenario: str, point: KillPoint
) -> None:
    policy = PaymentPolicy(query_window=20, record_sent=True)  # AFTER_SENT_WRITE is a case

    async def main() -> None:
        terminal = FakeTerminal(hang_for=5)
        if scenario == "lost":
            terminal.script(FakeBehaviour.LOSE_RESPONSE)
        if scenario == "silent":
            terminal.script(FakeBehaviour.NEVER_ANSWER)
            terminal.status_failures = 1000
        reached: list[KillPoint] = []
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            dying = PaymentOrchestrator(
                uow, terminal, shop.ctx, policy=policy, checkpoint=crash_at(point, reached)
            )
            await dying.recover_all()
            sale_id = shop.sale((RICE, 1))
            with pytest.raises(Crash):
                await dying.pay(sale_id, TenderKind.CARD, Money(5990))
        assert reached == [point]
        terminal.status_failures = 0  # the terminal answers again after the restart
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.reopen(uow, shop)
            lane = PaymentOrchestrator(uow, terminal, shop.ctx, policy=policy)
            report = await lane.recover_all()
            assert report.unsettled == ()
            shop.check(terminal.states())
            charged = terminal.states().get(next(iter(terminal.states()), ""))
            completed = shop.get(sale_id).state is SaleState.COMPLETED
            assert completed == (charged is TransactionState.APPROVED)
            assert terminal.charges <= 1

    run_virtual(main)


# -- voids and refunds are sent again until the terminal answers -----------------------------------


def test_unanswered_void_is_sent_again_until_the_terminal_voids(tmp_path: Path) -> None:
    async def main() -> None:
        terminal = FakeTerminal(hang_for=5)
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            orchestrator = PaymentOrchestrator(uow, terminal, shop.ctx)
            await orchestrator.recover_all()
            sale_id = shop.sale((RICE, 1))
            paid = await orchestrator.pay(sale_id, TenderKind.CARD, Money(2000))
            terminal.reversal_failures = 3
            outcome = await orchestrator.void(paid.ecr_ref, shop.approval(Action.VOID_SALE))
            assert outcome.state is IntentState.VOIDING
            with pytest.raises(Exception, match="not settled"):
                await orchestrator.pay(sale_id, TenderKind.CARD, Money(1000))
            assert await orchestrator.retry_unsettled() == 0
            (intent,) = shop.intents()
            assert intent.state is IntentState.VOIDED
            assert [t.voided for t in shop.get(sale_id).tenders] == [True]
            shop.check(terminal.states())

    run_virtual(main)


def test_unanswered_refund_is_sent_again_with_the_same_number(tmp_path: Path) -> None:
    async def main() -> None:
        terminal = FakeTerminal(hang_for=5)
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            # record_sent: each send of the refund is then counted in ``attempts`` (asserted)
            policy = PaymentPolicy(record_sent=True)
            orchestrator = PaymentOrchestrator(uow, terminal, shop.ctx, policy=policy)
            await orchestrator.recover_all()
            sale_id = shop.sale((COLA, 4))
            paid = await orchestrator.pay(sale_id, TenderKind.CARD, Money(1400))
            terminal.silent = 1
            outcome = await orchestrator.refund(
                sale_id=sale_id,
                original_ecr_ref=paid.ecr_ref,
                items=[ReturnItem(1, 2)],
                approval=shop.approval(Action.REFUND),
                reason="过期",
                cashier=shop.cashier,
            )
            assert outcome.approved
            refunds = [r for r in terminal.requests if isinstance(r, RefundRequest)]
            assert [r.ecr_ref for r in refunds] == [outcome.ecr_ref]  # the first one timed out
            assert outcome.intent.attempts == 2
            with uow:
                (ret,) = uow.returns.for_sale(sale_id)
            assert ret.refund_total == Money(700)
            (tender,) = ret.tenders
            assert tender.ref is not None and tender.ref.ecr_ref == outcome.ecr_ref
            assert tender.original_ecr_ref == paid.ecr_ref

    run_virtual(main)


def test_background_loop_reverses_while_the_lane_goes_on(tmp_path: Path) -> None:
    async def main() -> None:
        policy = PaymentPolicy(query_window=10, inline_tries=1, reversal_retry=2)
        terminal = FakeTerminal(status_failures=1000, reversal_failures=3, hang_for=3)
        terminal.script(FakeBehaviour.NEVER_ANSWER)
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            orchestrator = PaymentOrchestrator(uow, terminal, shop.ctx, policy=policy)
            await orchestrator.recover_all()
            stop = asyncio.Event()
            loop = asyncio.create_task(orchestrator.recovery.run(stop))
            first = shop.sale((RICE, 1))
            assert (await orchestrator.pay(first, TenderKind.CARD, Money(5990))).state is (
                IntentState.REVERSING
            )
            terminal.status_failures = 0
            second = shop.sale((COLA, 1))
            assert (await orchestrator.pay(second, TenderKind.CARD, Money(350))).completed
            await asyncio.sleep(60)
            stop.set()
            await asyncio.wait_for(loop, 10)
            shop.check(terminal.states(), quiescent=False)
            states = sorted(i.state for i in shop.intents())
            assert states == [IntentState.APPROVED, IntentState.REVERSED]

    run_virtual(main)


def test_start_up_with_the_terminal_unreachable_is_bounded_and_settled_later(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        terminal.script(FakeBehaviour.LOSE_RESPONSE)
        reached: list[KillPoint] = []
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            dying = PaymentOrchestrator(
                uow, terminal, shop.ctx, checkpoint=crash_at(KillPoint.AFTER_SEND, reached)
            )
            await dying.recover_all()
            sale_id = shop.sale((RICE, 1))
            with pytest.raises(Crash):
                await dying.pay(sale_id, TenderKind.CARD, Money(5990))
        terminal.connected = False  # the terminal is off when the lane comes back
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.reopen(uow, shop)
            lane = PaymentOrchestrator(uow, terminal, shop.ctx, policy=PaymentPolicy(link_wait=5))
            started = asyncio.get_running_loop().time()
            report = await lane.recover_all()
            assert asyncio.get_running_loop().time() - started < 10
            assert not report.link_ready
            assert [r.intent.state for r in report.unsettled] == [IntentState.PENDING]
            assert "正在向POS机查询" in report.lines()[0]
            terminal.connected = True
            stop = asyncio.Event()
            background = asyncio.create_task(lane.run_background(stop))
            await asyncio.sleep(1)
            stop.set()
            await asyncio.wait_for(background, 5)
            assert shop.get(sale_id).state is SaleState.COMPLETED
            assert terminal.charges == 1
            shop.check(terminal.states())

    run_virtual(main)
