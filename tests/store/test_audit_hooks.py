"""The money and admin actions write their audit entries in their own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from shouyin.config import Settings
from shouyin.domain.audit import AuditOutcome
from shouyin.domain.money import Money
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.users import Action
from shouyin.fleet.pairing import revoke
from shouyin.fleet.registry import register_terminal
from shouyin.lane import services
from shouyin.payments import PaymentOrchestrator
from shouyin.payments.fakes import FakeBehaviour, FakePaymentUnitOfWork, FakeTerminal
from shouyin.store.audit_repo import CheckpointStore, SqlAuditLog, verify_audit_log
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import make_session_factory
from tests.payments import RICE, Shop
from tests.terminal import run_virtual


def actions(shop: Shop) -> list[tuple[str, str, str]]:
    return [
        (e.event.action, e.event.outcome.value, e.event.target) for e in shop.uow.audit.entries()
    ]


def test_card_payments_declines_and_voids_are_audited_with_the_sale() -> None:
    async def main() -> None:
        terminal = FakeTerminal()
        shop = Shop.open(FakePaymentUnitOfWork())
        orchestrator = PaymentOrchestrator(shop.uow, terminal, shop.ctx)
        await orchestrator.recover_all()
        declined_sale = shop.sale((RICE, 1))
        terminal.script(FakeBehaviour.DECLINE)
        await orchestrator.pay(declined_sale, TenderKind.CARD, Money(5990))
        paid = await orchestrator.pay(declined_sale, TenderKind.CARD, Money(5000))
        voided = await orchestrator.void(paid.ecr_ref, shop.approval(Action.VOID_SALE))
        assert voided.state.value == "voided"
        found = actions(shop)
        target = f"sale:{declined_sale}"
        assert found[:3] == [
            ("user.created", "success", "user:li"),
            ("user.created", "success", "user:wang"),
            ("shift.opened", "success", found[2][2]),
        ]
        assert found[3:] == [
            ("payment.recorded", "failure", target),
            ("payment.recorded", "success", target),
            ("payment.void", "success", target),
        ]
        approved = list(shop.uow.audit.entries())[4].event
        assert approved.details["ecr_ref"] == paid.ecr_ref
        assert approved.details["amount_fen"] == 5000
        assert str(approved.details["masked_pan"]).count("*") >= 3

    run_virtual(main)


def test_a_cash_sale_is_audited_when_it_completes() -> None:
    async def main() -> None:
        shop = Shop.open(FakePaymentUnitOfWork())
        sale_id = shop.sale((RICE, 1))
        services.pay_cash(shop.uow, shop.ctx, sale_id, Money(6000))
        last = list(shop.uow.audit.entries())[-1].event
        assert (last.action, last.target, last.details) == (
            "sale.completed",
            f"sale:{sale_id}",
            {"total_fen": 5990},
        )
        assert last.actor == shop.cashier.user_id and last.source == "lane:L01"

    run_virtual(main)


def test_revoking_a_terminal_is_audited_and_checkpointed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, lane_id="L01")
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    try:
        registry = SqlTerminalUnitOfWork(make_session_factory(engine))
        checkpoints = CheckpointStore(settings.keys_dir)
        registry.checkpoints = checkpoints
        register_terminal(registry, "10000001", lane_id="L01", now=datetime.now(UTC))
        revoke(settings, "10000001", registry=registry, reason="stolen")
        with Session(engine) as session:
            [entry] = list(SqlAuditLog(session).entries())
            report = verify_audit_log(session, checkpoints)
        assert (entry.event.action, entry.event.target) == ("terminal.revoked", "terminal:10000001")
        assert entry.event.outcome is AuditOutcome.SUCCESS
        assert entry.event.details["note"] == "stolen"
        assert report.ok and report.checkpoint is not None and report.checkpoint.seq == 1
    finally:
        engine.dispose()
