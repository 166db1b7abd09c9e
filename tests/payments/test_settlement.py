"""Settlement (结算) against the real simulator: the terminal's batch totals per payment kind
equal the lane journal's after sales, a void and a refund; the record lands on the outbox; and
the same day reconciles three ways (lane journal, terminal batch, acquirer)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from shouyin.domain.money import Money
from shouyin.domain.returns import ReturnItem
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.users import Action
from shouyin.link.values import ReconciliationKind, Result
from shouyin.payments import PaymentOrchestrator
from shouyin.payments.reconcile import Outcome, Record, SideTotals, reconcile
from shouyin.payments.reconcile_io import record_from_intent, record_from_terminal
from shouyin.payments.settlement import SETTLEMENT_TOPIC, Settlement, settle
from shouyin.store.payment_repo import SqlPaymentUnitOfWork
from tests.payments import COLA, OIL, RICE, WECHAT_CODE, Shop, TerminalRig, sql_uow
from tests.terminal import LoopClock, run_virtual


@asynccontextmanager
async def lane(
    tmp_path: Path, rig: TerminalRig
) -> AsyncIterator[tuple[Shop, PaymentOrchestrator, SqlPaymentUnitOfWork]]:
    with sql_uow(tmp_path / "lane.db") as uow:
        shop = Shop.open(uow)
        async with rig:
            orchestrator = PaymentOrchestrator(uow, rig.cashier, shop.ctx)
            await orchestrator.recover_all()
            yield shop, orchestrator, uow


async def a_day_of_trade(shop: Shop, orchestrator: PaymentOrchestrator) -> None:
    """Card 59.90, card 48.50 with 34.50 refunded, card 30.00 voided, WeChat 3.50."""
    rice = await orchestrator.pay(shop.sale((RICE, 1)), TenderKind.CARD, Money(5990))
    assert rice.approved
    refund_sale = shop.sale((COLA, 4), (OIL, 1))
    paid = await orchestrator.pay(refund_sale, TenderKind.CARD, Money(4850))
    refunded = await orchestrator.refund(
        sale_id=refund_sale,
        original_ecr_ref=paid.ecr_ref,
        items=[ReturnItem(2)],
        approval=shop.approval(Action.REFUND),
        reason="漏油",
        cashier=shop.cashier,
    )
    assert refunded.approved
    voided = await orchestrator.pay(shop.sale((RICE, 1)), TenderKind.CARD, Money(3000))
    assert (await orchestrator.void(voided.ecr_ref, shop.approval(Action.VOID_SALE))).state
    qr = await orchestrator.pay(shop.sale((COLA, 1)), TenderKind.QR, Money(350), WECHAT_CODE)
    assert qr.approved


def test_settlement_totals_agree_with_the_journal_after_sales_a_void_and_a_refund(
    tmp_path: Path,
) -> None:
    async def main() -> Settlement:
        async with lane(tmp_path, TerminalRig(tmp_path)) as (shop, orchestrator, uow):
            await a_day_of_trade(shop, orchestrator)
            return await settle(orchestrator.channel.port, uow, "T0001", LoopClock().now())

    settlement = run_virtual(main)
    assert settlement.result is Result.SUCCESS and settlement.balanced
    assert [(k.kind, k.journal) for k in settlement.kinds] == [
        ("card", SideTotals(2, 5990 + 4850, 1, 3450)),
        ("wechat", SideTotals(1, 350, 0, 0)),
    ]
    assert all(k.terminal == k.journal for k in settlement.kinds)


def test_settlement_is_stored_on_the_outbox_as_json(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path, TerminalRig(tmp_path)) as (shop, orchestrator, uow):
            await a_day_of_trade(shop, orchestrator)
            done = await settle(orchestrator.channel.port, uow, "T0001", LoopClock().now())
            with uow:
                (message,) = [m for m in uow.outbox.pending() if m.topic == SETTLEMENT_TOPIC]
            assert message.id == done.outbox_id
            payload = json.loads(json.dumps(message.payload))
            assert payload["balanced"] is True and payload["batch"] == done.batch
            assert payload["kinds"][0]["terminal"] == {
                "count": 2,
                "amount": 10840,
                "refund_count": 1,
                "refund_amount": 3450,
            }

    run_virtual(main)


def test_totals_only_reports_without_closing_the_batch(tmp_path: Path) -> None:
    async def main() -> tuple[Settlement, Settlement]:
        async with lane(tmp_path, TerminalRig(tmp_path)) as (shop, orchestrator, uow):
            await a_day_of_trade(shop, orchestrator)
            port = orchestrator.channel.port
            now = LoopClock().now()
            report = await settle(port, uow, "T0001", now, kind=ReconciliationKind.TOTALS)
            closed = await settle(port, uow, "T0001", now)
            return report, closed

    report, closed = run_virtual(main)
    assert report.balanced and report.batch == closed.batch
    assert report.kinds == closed.kinds


def test_the_day_reconciles_three_ways_after_settlement(tmp_path: Path) -> None:
    async def main() -> tuple[list[Record], list[Record], list[Record]]:
        rig = TerminalRig(tmp_path)
        async with lane(tmp_path, rig) as (shop, orchestrator, uow):
            await a_day_of_trade(shop, orchestrator)
            with uow:
                lane_records = [record_from_intent(i) for i in uow.payments.journal("L01")]
            terminal_records = [record_from_terminal(e) for e in rig.app.state.entries()]
            # The in-memory acquirer books by batch + trace; its sale rows carry the result.
            acquirer_records = [
                Record(
                    None,
                    e.batch,
                    e.trace,
                    e.rrn,
                    e.amount,
                    "card" if e.kind is None or e.kind.value == "card" else "wechat",
                    e.status,
                    "refund" if e.operation == "refund" else "sale",
                )
                for e in rig.acquirer.ledger
                if e.operation in {"sale", "refund"}
            ]
            return lane_records, terminal_records, acquirer_records

    lane_records, terminal_records, acquirer_records = run_virtual(main)
    report = reconcile(lane_records, terminal_records, acquirer_records)
    assert report.matched == 5  # four payments (one of them voided everywhere) and a refund
    assert [r.outcome for r in report.discrepancies] == [], report.discrepancies
    assert report.count(Outcome.MATCHED) == len(lane_records)
