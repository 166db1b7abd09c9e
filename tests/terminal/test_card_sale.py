"""Card sales through the terminal: outcomes by test card, progress, PIN, signature, timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from shouyin.link import (
    CardEntry,
    ErrorCondition,
    NotificationKind,
    PaymentKind,
    PaymentRequest,
    PaymentResponse,
    ProgressStage,
    Result,
    TransactionState,
)
from shouyin.terminal.cards import PinBehaviour, ReaderRule
from tests.terminal import Harness, run_virtual


def pay(h: Harness, ecr_ref: str, amount: int = 1234) -> PaymentRequest:
    return PaymentRequest(service_id=h.sid(), ecr_ref=ecr_ref, amount=amount, kind=PaymentKind.CARD)


def sale(tmp_path: Path, card: str, **rule: object) -> tuple[PaymentResponse, Harness]:
    async def main() -> tuple[PaymentResponse, Harness]:
        async with Harness(tmp_path, rules=(ReaderRule(card=card, **rule),)) as h:  # type: ignore[arg-type]
            response = await h.ask(pay(h, "R1"))
            assert isinstance(response, PaymentResponse)
            return response, h

    return run_virtual(main)


def test_approved_sale_carries_acquirer_data_and_masked_card(tmp_path: Path) -> None:
    response, h = sale(tmp_path, "approve")
    assert response.result is Result.SUCCESS
    assert response.amount == 1234
    data = response.acquirer
    assert data is not None
    assert data.masked_pan == "622848*********0018"
    assert data.trace == "000001"
    assert data.batch == "000001"
    assert data.rrn is not None and len(data.rrn) == 12
    assert data.auth_code is not None
    assert data.merchant_id == "898310048160001"
    assert data.acquirer_terminal_id == "10000001"
    assert data.entry is CardEntry.CHIP
    assert h.acquirer.count("sale") == 1


def test_approved_chip_sale_reports_progress_then_card_removed(tmp_path: Path) -> None:
    _, h = sale(tmp_path, "approve")
    stages = [p.stage for p in h.progress]
    assert stages[0] is ProgressStage.PRESENT_CARD
    assert h.progress[0].message is not None and "请刷卡/插卡/挥卡" in h.progress[0].message
    assert ProgressStage.CONTACTING_ACQUIRER in stages
    assert ProgressStage.SIGNATURE in stages
    assert [n.event for n in h.notifications] == [NotificationKind.CARD_REMOVED]


@pytest.mark.parametrize(
    ("card", "condition"),
    [
        ("decline", ErrorCondition.DECLINED),
        ("insufficient", ErrorCondition.INSUFFICIENT_FUNDS),
        ("expired", ErrorCondition.INVALID_CARD),
        ("invalid", ErrorCondition.INVALID_CARD),
        ("issuer_unavailable", ErrorCondition.UNREACHABLE_HOST),
    ],
)
def test_refused_card_is_declined_with_its_condition(
    tmp_path: Path, card: str, condition: ErrorCondition
) -> None:
    response, h = sale(tmp_path, card)
    assert response.result is Result.FAILURE
    assert response.error_condition is condition
    entry = h.app.state.get("R1")
    assert entry is not None and entry.state is TransactionState.DECLINED
    assert h.app.state.reversals() == []


def test_pin_card_asks_for_the_pin_and_approves_the_right_one(tmp_path: Path) -> None:
    response, h = sale(tmp_path, "pin")
    assert response.result is Result.SUCCESS
    pin_prompts = [p for p in h.progress if p.stage is ProgressStage.PIN_ENTRY]
    assert pin_prompts and pin_prompts[0].message == "请输入密码"


def test_wrong_pin_is_refused(tmp_path: Path) -> None:
    response, _ = sale(tmp_path, "pin", pin=PinBehaviour.WRONG)
    assert response.result is Result.FAILURE
    assert response.error_condition is ErrorCondition.WRONG_PIN


def test_cancelled_pin_entry_sends_nothing_to_the_acquirer(tmp_path: Path) -> None:
    response, h = sale(tmp_path, "pin", pin=PinBehaviour.CANCEL)
    assert response.error_condition is ErrorCondition.CANCELLED
    assert h.acquirer.count("sale") == 0


def test_small_contactless_sale_needs_no_pin_and_no_signature(tmp_path: Path) -> None:
    response, h = sale(tmp_path, "debit", entry=CardEntry.CONTACTLESS)
    assert response.result is Result.SUCCESS
    stages = {p.stage for p in h.progress}
    assert ProgressStage.PIN_ENTRY not in stages
    assert ProgressStage.SIGNATURE not in stages
    slip = h.app.state.slip()
    assert slip is not None and slip.signature_ref is None


def test_no_card_presented_times_out_without_charging(tmp_path: Path) -> None:
    response, h = sale(tmp_path, "approve", present=False)
    assert response.error_condition is ErrorCondition.TIMEOUT
    assert h.acquirer.count("sale") == 0


def test_slow_acquirer_keeps_the_cashier_informed_until_approval(tmp_path: Path) -> None:
    response, h = sale(tmp_path, "slow")
    assert response.result is Result.SUCCESS
    processing = [p for p in h.progress if p.stage is ProgressStage.PROCESSING]
    assert len(processing) >= 1  # 20 s at the host, a "processing" every 10 s
    assert h.timeouts == []


def test_abort_while_waiting_for_the_card_cancels_the_payment(tmp_path: Path) -> None:
    from shouyin.link import AbortRequest, AbortResponse

    async def main() -> None:
        rules = (ReaderRule(card="approve", delay=20.0),)
        async with Harness(tmp_path, rules=rules) as h:
            request = pay(h, "R1")
            h.send(request)
            await h.settle(2)
            abort = AbortRequest(service_id=h.sid(), target_service_id=request.service_id)
            answer = await h.ask(abort)
            assert isinstance(answer, AbortResponse) and answer.result is Result.SUCCESS
            response = await h.wait_response(request.service_id)
            assert response.error_condition is ErrorCondition.ABORTED
            assert h.acquirer.count("sale") == 0

    run_virtual(main)


def test_a_luhn_valid_merchant_number_does_not_turn_an_approved_sale_into_a_failure(
    tmp_path: Path,
) -> None:
    from shouyin.terminal.records import TerminalConfig

    config = TerminalConfig(merchant_id="305310048160001")  # passes the Luhn check, by chance

    async def main() -> tuple[PaymentResponse, Harness]:
        async with Harness(tmp_path, rules=(ReaderRule(card="approve"),), config=config) as h:
            response = await h.ask(pay(h, "R1"))
            assert isinstance(response, PaymentResponse)
            return response, h

    response, h = run_virtual(main)
    assert response.result is Result.SUCCESS
    assert h.acquirer.count("sale") == 1
