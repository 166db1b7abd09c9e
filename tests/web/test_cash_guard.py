"""Cash is refused while a card/QR payment of the same sale is open — also when the open
payment is only in the journal (e.g. after a restart, before recovery settled it), not in this
process: ``PaymentOrchestrator.pay_cash`` checks both, in the cash tender's own transaction."""

from __future__ import annotations

import pytest

from shouyin.domain.money import Money
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.payments import PaymentInProgress, PaymentOrchestrator
from shouyin.payments.fakes import FakePaymentUnitOfWork, FakeTerminal
from shouyin.payments.recording import mark_unknown, open_payment
from tests.payments import RICE, Shop
from tests.terminal import run_virtual


def test_cash_waits_for_an_unsettled_card_payment_in_the_journal() -> None:
    async def main() -> None:
        shop = Shop.open(FakePaymentUnitOfWork())
        orchestrator = PaymentOrchestrator(shop.uow, FakeTerminal(), shop.ctx)
        sale_id = shop.sale((RICE, 1))
        intent = open_payment(
            shop.uow, shop.ctx, sale_id=sale_id, tender_kind=TenderKind.CARD, amount=Money(5990)
        )
        mark_unknown(shop.uow, shop.ctx, intent.ecr_ref, "timeout", "no answer")
        with pytest.raises(PaymentInProgress):
            orchestrator.pay_cash(sale_id, Money(5990))
        assert shop.get(sale_id).tenders == ()  # nothing taken
        await orchestrator.recover_all()  # the terminal never saw it: the intent fails
        sale = orchestrator.pay_cash(sale_id, Money(6000))
        assert sale.state is SaleState.COMPLETED and sale.change == Money(10)

    run_virtual(main)


def test_cash_is_taken_when_no_terminal_payment_is_open() -> None:
    async def main() -> None:
        shop = Shop.open(FakePaymentUnitOfWork())
        orchestrator = PaymentOrchestrator(shop.uow, FakeTerminal(), shop.ctx)
        sale_id = shop.sale((RICE, 1))
        sale = orchestrator.pay_cash(sale_id, Money(2000))
        assert sale.remaining == Money(3990)

    run_virtual(main)
