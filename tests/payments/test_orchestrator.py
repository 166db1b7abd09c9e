"""Paying a sale through the terminal: outcomes, checks before sending, split tender, progress,
abort — over the scriptable fake terminal and the in-memory unit of work."""

from __future__ import annotations

import asyncio

import pytest

from shouyin.domain.money import Money
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.lane import services
from shouyin.link.messages import PaymentRequest
from shouyin.link.values import PaymentKind, Wallet
from shouyin.payments import (
    AmountRefused,
    IntentState,
    PaymentError,
    PaymentInProgress,
    PaymentOrchestrator,
    ProgressEvent,
    RecoveryPending,
    UnrecognisedPaymentCode,
)
from shouyin.payments.fakes import FakeBehaviour, FakePaymentUnitOfWork, FakeTerminal
from tests.payments import COLA, OIL, RICE, WECHAT_CODE, Shop
from tests.terminal import run_virtual


async def lane(terminal: FakeTerminal) -> tuple[Shop, PaymentOrchestrator]:
    shop = Shop.open(FakePaymentUnitOfWork())
    orchestrator = PaymentOrchestrator(shop.uow, terminal, shop.ctx)
    await orchestrator.recover_all()
    return shop, orchestrator


def test_approved_card_payment_completes_the_sale_with_its_payment_ref() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((RICE, 1))
        outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
        assert outcome.approved and outcome.completed
        assert outcome.explanation.zh == "支付成功 ¥59.90，交易完成"
        sale = shop.get(sale_id)
        (tender,) = sale.tenders
        assert tender.ref is not None
        assert tender.ref.ecr_ref == outcome.ecr_ref
        assert tender.ref.masked_pan == "622848*********0018"
        assert tender.ref.rrn == outcome.intent.rrn is not None
        assert outcome.intent.tender_no == tender.tender_no
        assert terminal.charges == 1
        shop.check(terminal.states())

    run_virtual(main)


def test_declined_card_leaves_the_sale_payable_and_nothing_charged() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        terminal.script(FakeBehaviour.DECLINE)
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((RICE, 1))
        outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
        assert outcome.state is IntentState.DECLINED
        assert "未扣款" in outcome.explanation.zh
        assert shop.get(sale_id).state is SaleState.OPEN
        again = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
        assert again.completed and again.ecr_ref != outcome.ecr_ref
        shop.check(terminal.states())

    run_virtual(main)


@pytest.mark.parametrize("fen", [5991, 0, -100])
def test_an_amount_over_what_is_due_is_refused_before_anything_is_sent(fen: int) -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((RICE, 1))
        with pytest.raises(AmountRefused) as refused:
            await orchestrator.pay(sale_id, TenderKind.CARD, Money(fen))
        assert refused.value.remaining == 5990
        assert terminal.requests == []
        assert shop.intents() == []
        shop.check(terminal.states())

    run_virtual(main)


def test_an_unrecognised_payment_code_is_refused_before_anything_is_sent() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((COLA, 1))
        with pytest.raises(UnrecognisedPaymentCode, match="unrecognised payment code"):
            await orchestrator.pay(sale_id, TenderKind.QR, Money(350), "164567890123456789")
        assert terminal.requests == []
        assert shop.intents() == []

    run_virtual(main)


def test_split_tender_cash_card_and_qr_completes_on_the_last_part() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((RICE, 1), (OIL, 1), (COLA, 2))  # 59.90 + 34.50 + 7.00 = 101.40
        services.pay_cash(shop.uow, shop.ctx, sale_id, Money(2000))
        card = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5000))
        assert card.approved and not card.completed
        assert card.explanation.zh == "支付成功 ¥50.00，还需支付 ¥31.40"
        qr = await orchestrator.pay(sale_id, TenderKind.QR, Money(3140), WECHAT_CODE)
        assert qr.approved and qr.completed
        sale = shop.get(sale_id)
        kinds = [(t.kind, t.amount) for t in sale.tenders]
        assert kinds == [
            (TenderKind.CASH, Money(2000)),
            (TenderKind.CARD, Money(5000)),
            (TenderKind.QR, Money(3140)),
        ]
        assert qr.intent.wallet is Wallet.WECHAT
        shop.check(terminal.states())

    run_virtual(main)


def test_a_qr_intent_keeps_the_wallet_and_last_four_digits_never_the_code() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((COLA, 1))
        outcome = await orchestrator.pay(sale_id, TenderKind.QR, Money(350), WECHAT_CODE)
        (request,) = terminal.requests_of(PaymentRequest)
        assert isinstance(request, PaymentRequest)
        assert request.auth_code == WECHAT_CODE  # only the terminal gets it, sealed on the link
        assert request.kind is PaymentKind.QR_CODE
        assert outcome.intent.code_tail == WECHAT_CODE[-4:]
        assert WECHAT_CODE not in repr(shop.intents())
        shop.check(terminal.states())

    run_virtual(main)


def test_qr_without_a_code_asks_the_terminal_to_show_a_merchant_code() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((COLA, 1))
        outcome = await orchestrator.pay(sale_id, TenderKind.QR, Money(350))
        (request,) = terminal.requests_of(PaymentRequest)
        assert isinstance(request, PaymentRequest)
        assert request.kind is PaymentKind.MERCHANT_QR and request.auth_code is None
        assert outcome.completed
        shop.check(terminal.states())

    run_virtual(main)


def test_progress_reaches_the_cashier_in_plain_chinese() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((COLA, 1))
        seen: list[ProgressEvent] = []
        await orchestrator.pay(sale_id, TenderKind.CARD, Money(350), on_progress=seen.append)
        assert [e.zh for e in seen] == [
            "已发送到POS机",
            "请在POS机上刷卡",
            "等待用户输入密码",
            "交易处理中",
        ]
        assert seen[2].en == "Waiting for the customer's PIN"

    run_virtual(main)


def test_cashier_abort_while_waiting_for_the_card_cancels_without_charging() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        terminal.script(FakeBehaviour.WAIT_FOR_CARD)
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((COLA, 1))
        paying = asyncio.create_task(orchestrator.pay(sale_id, TenderKind.CARD, Money(350)))
        await asyncio.sleep(2)
        assert await orchestrator.abort(sale_id)
        outcome = await paying
        assert outcome.state is IntentState.FAILED
        assert outcome.intent.error_condition == "aborted"
        assert terminal.charges == 0
        assert not await orchestrator.abort(sale_id)  # nothing under way any more
        shop.check(terminal.states(), quiescent=True)

    run_virtual(main)


def test_a_second_payment_on_the_same_sale_is_refused_while_the_first_runs() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        terminal.script(FakeBehaviour.WAIT_FOR_CARD)
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((RICE, 1))
        first = asyncio.create_task(orchestrator.pay(sale_id, TenderKind.CARD, Money(1000)))
        await asyncio.sleep(1)
        with pytest.raises(PaymentInProgress):
            await orchestrator.pay(sale_id, TenderKind.CARD, Money(1000))
        assert (await first).approved
        shop.check(terminal.states(), quiescent=False)  # the sale is part paid

    run_virtual(main)


def test_no_payment_is_taken_before_the_journal_is_recovered() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        shop = Shop.open(FakePaymentUnitOfWork())
        orchestrator = PaymentOrchestrator(shop.uow, terminal, shop.ctx)
        with pytest.raises(RecoveryPending):
            await orchestrator.pay(shop.sale((COLA, 1)), TenderKind.CARD, Money(350))
        assert terminal.requests == []

    run_virtual(main)


def test_a_terminal_that_is_not_connected_fails_at_once_without_charging() -> None:
    async def main() -> None:
        terminal = FakeTerminal(connected=False)
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((COLA, 1))
        outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(350))
        assert outcome.state is IntentState.FAILED
        assert outcome.intent.error_condition == "not_sent"
        assert "POS机未连接" in outcome.explanation.zh
        shop.check(terminal.states())

    run_virtual(main)


def test_an_approval_the_sale_can_no_longer_take_is_reversed() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        terminal.script(FakeBehaviour.WAIT_FOR_CARD)
        shop, orchestrator = await lane(terminal)
        sale_id = shop.sale((RICE, 1), (COLA, 1))
        paying = asyncio.create_task(orchestrator.pay(sale_id, TenderKind.CARD, Money(6340)))
        await asyncio.sleep(1)
        services.remove_line(shop.uow, sale_id, 1)  # the rice goes back while the card is read
        outcome = await paying
        assert outcome.state is IntentState.REVERSED
        assert outcome.intent.error_condition == "sale_refused"
        assert shop.get(sale_id).tenders == ()
        shop.check(terminal.states())

    run_virtual(main)


def test_cash_is_not_taken_through_the_terminal() -> None:
    async def main() -> None:
        shop, orchestrator = await lane(FakeTerminal())
        with pytest.raises(PaymentError, match="cash"):
            await orchestrator.pay(shop.sale((COLA, 1)), TenderKind.CASH, Money(350))

    run_virtual(main)
