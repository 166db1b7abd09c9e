"""The cashier side and test mode: the orchestrator refuses real payments while its terminal
reports test mode (admin answer, notification or heartbeat), takes them again afterwards, and
never books a test answer as a payment. The real simulator over a real link, virtual time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from shouyin.domain.money import Money
from shouyin.domain.sale_lines import TenderKind
from shouyin.link.messages import AdminRequest, HeartbeatRequest
from shouyin.link.values import AdminAction, Result
from shouyin.payments import IntentState, PaymentOrchestrator
from shouyin.payments.errors import TerminalInTestMode
from tests.payments import RICE, WECHAT_CODE, Shop, TerminalRig, sql_uow
from tests.terminal import run_virtual


@asynccontextmanager
async def lane(tmp_path: Path) -> AsyncIterator[tuple[Shop, PaymentOrchestrator, TerminalRig]]:
    rig = TerminalRig(tmp_path)
    with sql_uow(tmp_path / "lane.db") as uow:
        shop = Shop.open(uow)
        async with rig:
            orchestrator = PaymentOrchestrator(uow, rig.cashier, shop.ctx)
            await orchestrator.recover_all()
            yield shop, orchestrator, rig


def reported(orchestrator: PaymentOrchestrator) -> bool:
    """Test mode as the orchestrator last heard it (a call, so each read is a fresh value)."""
    return orchestrator.terminal_test_mode


async def admin(rig: TerminalRig, action: AdminAction) -> None:
    request = AdminRequest(service_id=rig.cashier.new_service_id(), action=action)
    answer = await rig.cashier.request(request, timeout=30)
    assert answer.result is Result.SUCCESS


def test_a_real_payment_is_refused_in_test_mode_and_taken_after(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path) as (shop, orchestrator, rig):
            sale_id = shop.sale((RICE, 1))
            await admin(rig, AdminAction.TEST_MODE_START)
            assert reported(orchestrator)
            with pytest.raises(TerminalInTestMode, match="测试模式"):
                await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
            with pytest.raises(TerminalInTestMode):
                await orchestrator.pay(sale_id, TenderKind.QR, Money(5990), WECHAT_CODE)
            assert shop.intents() == []  # refused before any intent: nothing was sent
            assert rig.app.state.entries() == [] and rig.acquirer.ledger == []

            await admin(rig, AdminAction.TEST_MODE_END)
            assert not reported(orchestrator)
            outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
            assert outcome.approved and outcome.completed
            assert [e.operation for e in rig.acquirer.ledger] == ["sale"]
            shop.check(rig.states())

    run_virtual(main)


def test_the_heartbeat_reports_test_mode_to_the_cashier_side(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path) as (_, orchestrator, rig):
            rig.app.test_mode.start(600)
            orchestrator.terminal_test_mode = False  # as if the notification had been missed
            rig.terminal.connection.health = rig.app.status.health()  # as the simulator does
            await rig.cashier.request(HeartbeatRequest(service_id=rig.cashier.new_service_id()))
            assert reported(orchestrator)
            rig.app.test_mode.end("command")
            orchestrator.terminal_test_mode = True
            rig.terminal.connection.health = rig.app.status.health()
            await rig.cashier.request(HeartbeatRequest(service_id=rig.cashier.new_service_id()))
            assert not reported(orchestrator)

    run_virtual(main)


def test_an_answer_marked_test_is_never_booked_as_a_payment(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path) as (shop, orchestrator, rig):
            sale_id = shop.sale((RICE, 1))
            rig.app.test_mode.start(600)
            orchestrator.terminal_test_mode = False  # a stale view: the payment goes out
            outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
            # Never booked and never released: the intent waits (reversing) until test mode ends.
            assert outcome.state is IntentState.REVERSING and not outcome.completed
            assert shop.get(sale_id).tenders == ()
            assert rig.acquirer.ledger == []  # the test host answered; no money moved

    run_virtual(main)
