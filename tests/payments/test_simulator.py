"""End to end: the orchestrator drives the real terminal simulator over a real link (framing, AEAD
envelope, session) with the in-memory acquirer, on a durable SQLite journal. After each test the
exactly-once invariants are checked against the terminal's own journal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from shouyin.domain.money import Money
from shouyin.domain.returns import ReturnItem
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import Action
from shouyin.lane import services
from shouyin.link.values import TransactionState, Wallet
from shouyin.payments import (
    IntentState,
    KillPoint,
    PaymentOrchestrator,
    PaymentPolicy,
    ProgressEvent,
)
from shouyin.terminal.cards import ReaderRule
from tests.payments import (
    ALIPAY_CODE,
    COLA,
    OIL,
    RICE,
    WECHAT_USERPAYING,
    Shop,
    TerminalRig,
    sql_uow,
)
from tests.terminal import run_virtual


@asynccontextmanager
async def lane(
    tmp_path: Path, rig: TerminalRig, policy: PaymentPolicy | None = None
) -> AsyncIterator[tuple[Shop, PaymentOrchestrator]]:
    with sql_uow(tmp_path / "lane.db") as uow:
        shop = Shop.open(uow)
        async with rig:
            orchestrator = PaymentOrchestrator(uow, rig.cashier, shop.ctx, policy=policy)
            await orchestrator.recover_all()
            yield shop, orchestrator


def test_approved_card_payment_completes_the_sale_with_the_acquirers_references(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path)
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((RICE, 1), (COLA, 2))
            outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(6690))
            assert outcome.approved and outcome.completed
            (tender,) = shop.get(sale_id).tenders
            ref = tender.ref
            assert ref is not None
            assert ref.ecr_ref == outcome.ecr_ref
            assert ref.masked_pan == "622848*********0018"
            assert ref.rrn is not None and len(ref.rrn) == 12
            assert (ref.trace, ref.batch) == ("000001", "000001")
            assert ref.auth_code is not None
            assert rig.acquirer.count("sale") == 1
            shop.check(rig.states())

    run_virtual(main)


def test_declined_card_leaves_the_sale_payable(tmp_path: Path) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path, rules=(ReaderRule(card="insufficient", ecr_ref=".*-000001"),))
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((RICE, 1))
            declined = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
            assert declined.state is IntentState.DECLINED
            assert declined.intent.error_condition == "insufficient_funds"
            assert "余额不足" in declined.explanation.zh
            assert shop.get(sale_id).state is SaleState.OPEN
            assert (await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))).completed
            shop.check(rig.states())

    run_virtual(main)


def test_split_tender_cash_card_and_qr(tmp_path: Path) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path)
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((RICE, 1), (OIL, 1))  # 94.40
            services.pay_cash(shop.uow, shop.ctx, sale_id, Money(1000))
            card = await orchestrator.pay(sale_id, TenderKind.CARD, Money(4000))
            qr = await orchestrator.pay(sale_id, TenderKind.QR, Money(4440), ALIPAY_CODE)
            assert card.approved and not card.completed
            assert qr.completed and qr.intent.wallet is Wallet.ALIPAY
            assert shop.get(sale_id).paid == Money(9440)
            assert rig.acquirer.count("sale") == 2
            shop.check(rig.states())

    run_virtual(main)


def test_lost_answer_is_found_by_status_query_and_charged_once(tmp_path: Path) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path, lose_answers=1)
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((RICE, 1))
            seen: list[ProgressEvent] = []
            outcome = await orchestrator.pay(
                sale_id, TenderKind.CARD, Money(5990), on_progress=seen.append
            )
            assert outcome.approved and outcome.completed
            assert "未收到结果，正在向POS机查询" in [e.zh for e in seen]
            assert rig.acquirer.count("sale") == 1
            assert len(shop.get(sale_id).tenders) == 1
            shop.check(rig.states())

    run_virtual(main)


def test_qr_userpaying_ends_in_success(tmp_path: Path) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path)
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((COLA, 3))
            seen: list[ProgressEvent] = []
            outcome = await orchestrator.pay(
                sale_id, TenderKind.QR, Money(1050), WECHAT_USERPAYING, on_progress=seen.append
            )
            assert outcome.completed and outcome.intent.wallet is Wallet.WECHAT
            assert "等待顾客在手机上确认支付" in [e.zh for e in seen]
            assert outcome.intent.code_tail == "6791"
            shop.check(rig.states())

    run_virtual(main)


def test_merchant_qr_shows_the_code_to_the_customer_and_succeeds(tmp_path: Path) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path)
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((COLA, 2))
            seen: list[ProgressEvent] = []
            outcome = await orchestrator.pay(
                sale_id, TenderKind.QR, Money(700), on_progress=seen.append
            )
            assert outcome.completed
            (shown,) = [e for e in seen if e.zh == "请顾客扫描POS机上的二维码"]
            assert shown.detail is not None and shown.detail.startswith("https://qr.sim/")
            shop.check(rig.states())

    run_virtual(main)


def test_qr_with_insufficient_balance_is_declined(tmp_path: Path) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path)
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((COLA, 1))
            outcome = await orchestrator.pay(
                sale_id, TenderKind.QR, Money(350), "134567890123456794"
            )
            assert outcome.state is IntentState.DECLINED
            assert shop.get(sale_id).state is SaleState.OPEN
            shop.check(rig.states())

    run_virtual(main)


def test_void_with_supervisor_approval_voids_the_payment_and_its_tender(tmp_path: Path) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path)
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((RICE, 1))
            paid = await orchestrator.pay(sale_id, TenderKind.CARD, Money(3000))
            outcome = await orchestrator.void(paid.ecr_ref, shop.approval(Action.VOID_SALE))
            assert outcome.state is IntentState.VOIDED
            assert outcome.intent.details["void_approver_id"] == shop.supervisor.user_id
            assert "已撤销 ¥30.00" in outcome.explanation.zh
            sale = shop.get(sale_id)
            assert sale.state is SaleState.OPEN and [t.voided for t in sale.tenders] == [True]
            assert rig.states() == {paid.ecr_ref: TransactionState.VOIDED}
            assert [e.status for e in rig.acquirer.ledger] == ["voided", "approved"]
            shop.check(rig.states())
            services.void_sale(
                shop.uow, shop.ctx, sale_id, shop.approval(Action.VOID_SALE), "顾客不要了"
            )

    run_virtual(main)


def test_refund_with_supervisor_approval_records_the_return(tmp_path: Path) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path)
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((COLA, 4), (OIL, 1))  # 14.00 + 34.50
            paid = await orchestrator.pay(sale_id, TenderKind.CARD, Money(4850))
            outcome = await orchestrator.refund(
                sale_id=sale_id,
                original_ecr_ref=paid.ecr_ref,
                items=[ReturnItem(2)],
                approval=shop.approval(Action.REFUND),
                reason="漏油",
                cashier=shop.cashier,
            )
            assert outcome.approved
            assert outcome.explanation.zh == "退货成功，¥34.50 退回原支付账户"
            with shop.uow:
                (ret,) = shop.uow.returns.for_sale(sale_id)
            assert ret.refund_total == Money(3450)
            assert ret.approver_id == shop.supervisor.user_id
            (refunded,) = [e for e in rig.acquirer.ledger if e.operation == "refund"]
            assert refunded.amount == 3450
            shop.check(rig.states())

    run_virtual(main)


def test_terminal_restart_mid_payment_leaves_nothing_charged(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path, rules=(ReaderRule(card="slow"),))  # 20 s at the acquirer
        async with lane(tmp_path, rig) as (shop, orchestrator):
            sale_id = shop.sale((RICE, 1))
            paying = asyncio.create_task(orchestrator.pay(sale_id, TenderKind.CARD, Money(5990)))
            await asyncio.sleep(5)
            await rig.restart_terminal()
            outcome = await paying
            # The restarted terminal closed it as failed and reversed it towards the acquirer;
            # depending on who is first, the status query reads one or the other.
            assert outcome.state in (IntentState.FAILED, IntentState.REVERSED)
            assert "未扣款" in outcome.explanation.zh
            await asyncio.sleep(30)  # the terminal's own reversal worker reaches the acquirer
            assert all(entry.status != "approved" for entry in rig.acquirer.ledger)
            assert rig.app.state.reversals() == []  # its reversal was acknowledged
            assert shop.get(sale_id).state is SaleState.OPEN
            shop.check(rig.states())

    run_virtual(main)


def test_cashier_restart_mid_payment_recovers_it_before_new_sales(tmp_path: Path) -> None:
    async def main() -> None:
        class Crash(BaseException):
            pass

        def die_after_sending(point: KillPoint) -> None:
            if point is KillPoint.AFTER_SENT_WRITE:
                raise Crash

        rig = TerminalRig(tmp_path)
        async with rig:
            with sql_uow(tmp_path / "lane.db") as uow:
                shop = Shop.open(uow)
                dying = PaymentOrchestrator(
                    uow,
                    rig.cashier,
                    shop.ctx,
                    policy=PaymentPolicy(record_sent=True),
                    checkpoint=die_after_sending,
                )
                await dying.recover_all()
                sale_id = shop.sale((RICE, 1))
                with suppress(Crash):
                    await dying.pay(sale_id, TenderKind.CARD, Money(5990))
            await asyncio.sleep(2)
            cashier = await rig.restart_cashier()
            with sql_uow(tmp_path / "lane.db") as uow:
                shop = Shop.reopen(uow, shop)
                lane = PaymentOrchestrator(uow, cashier, shop.ctx)
                report = await lane.recover_all()
                assert [r.intent.state for r in report.resolutions] == [IntentState.APPROVED]
                assert shop.get(sale_id).state is SaleState.COMPLETED
                assert rig.acquirer.count("sale") == 1
                assert (await lane.pay(shop.sale((COLA, 1)), TenderKind.CARD, Money(350))).completed
                shop.check(rig.states())

    run_virtual(main)


def test_unreachable_terminal_is_reversed_once_it_is_back(tmp_path: Path) -> None:
    async def main() -> None:
        policy = PaymentPolicy(query_window=30, inline_tries=2)
        rig = TerminalRig(tmp_path, lose_answers=1, reconnect_after=120)
        async with lane(tmp_path, rig, policy) as (shop, orchestrator):
            sale_id = shop.sale((RICE, 1))
            outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
            assert outcome.state is IntentState.REVERSING
            assert shop.get(sale_id).state is SaleState.OPEN
            await rig.cashier.wait_ready(200)
            assert await orchestrator.retry_unsettled() == 0
            (intent,) = shop.intents()
            assert intent.state is IntentState.REVERSED
            assert rig.states() == {intent.ecr_ref: TransactionState.REVERSED}
            assert [e.status for e in rig.acquirer.ledger] == ["reversed"]
            shop.check(rig.states())

    run_virtual(main)
