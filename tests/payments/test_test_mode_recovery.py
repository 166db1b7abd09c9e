"""Answers marked ``test`` (测试交易) never settle a real intent: a test-mode approval found by
recovery's status query is not booked (the sale is not completed with no money taken), a test
"not found" or decline does not release the sale, and every judge says ``unknown``. The real
simulator over a real link, virtual time; the judges also on hand-made answers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shouyin.domain.money import Money
from shouyin.domain.sale_lines import TenderKind
from shouyin.link.messages import (
    AdminRequest,
    PaymentResponse,
    RefundResponse,
    Response,
    ReversalResponse,
    TransactionStatusResponse,
)
from shouyin.link.values import (
    AdminAction,
    ErrorCondition,
    Result,
    TransactionKind,
    TransactionRecord,
    TransactionState,
)
from shouyin.payments import IntentState, PaymentOrchestrator
from shouyin.payments.verdicts import (
    TEST_MODE,
    Verdict,
    VerdictKind,
    of_payment,
    of_refund,
    of_reversal,
    of_status,
    of_void,
)
from tests.payments import RICE, Shop, TerminalRig, sql_uow
from tests.terminal import run_virtual

REF = "L01-20250314-000001"


async def end_test_mode(rig: TerminalRig) -> None:
    request = AdminRequest(
        service_id=rig.cashier.new_service_id(), action=AdminAction.TEST_MODE_END
    )
    answer = await rig.cashier.request(request, timeout=30)
    assert answer.result is Result.SUCCESS and not rig.app.test_mode.active


@pytest.mark.parametrize("lose_answers", [1, 0], ids=["answer-lost", "answer-received"])
def test_a_payment_answered_in_test_mode_is_never_booked_and_settles_after_test_mode(
    tmp_path: Path, lose_answers: int, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        rig = TerminalRig(tmp_path, lose_answers=lose_answers)
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            async with rig:
                orchestrator = PaymentOrchestrator(uow, rig.cashier, shop.ctx)
                await orchestrator.recover_all()
                sale_id = shop.sale((RICE, 1))
                rig.app.test_mode.start(600)
                orchestrator.terminal_test_mode = False  # a stale view: the payment goes out
                outcome = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
                # the test journal says approved: proves nothing, so the payment is not booked
                # (nor released as failed): it stays to be reversed once test mode is over
                assert outcome.state is IntentState.REVERSING and not outcome.completed
                assert shop.get(sale_id).tenders == ()
                assert rig.acquirer.ledger == [] and rig.app.state.entries() == []

                await end_test_mode(rig)
                assert await orchestrator.retry_unsettled() == 0
                (intent,) = shop.intents()
                assert intent.state is IntentState.FAILED  # nothing to reverse: never charged
                paid = await orchestrator.pay(sale_id, TenderKind.CARD, Money(5990))
                assert paid.approved and paid.completed
                assert [e.operation for e in rig.acquirer.ledger] == ["sale"]
                shop.check(rig.states())

    with caplog.at_level(logging.WARNING, logger="shouyin.payments.verdicts"):
        run_virtual(main)
    assert any("status answer marked test" in r.getMessage() for r in caplog.records)


# -- the judges on answers marked test -------------------------------------------------------


def _record(state: TransactionState) -> TransactionRecord:
    return TransactionRecord(ecr_ref=REF, kind=TransactionKind.PAYMENT, state=state, amount=5990)


_OK = Result.SUCCESS
_NO = Result.FAILURE
_C = ErrorCondition


def _payment_status(response: TransactionStatusResponse) -> Verdict:
    return of_status(response, TransactionKind.PAYMENT)


_CASES: list[tuple[str, Response, Callable[[Any], Verdict]]] = [
    (
        "payment approved",
        PaymentResponse(service_id="S1", ecr_ref=REF, amount=5990, result=_OK),
        of_payment,
    ),
    (
        "payment declined",
        PaymentResponse(service_id="S1", ecr_ref=REF, result=_NO, error_condition=_C.DECLINED),
        of_payment,
    ),
    (
        "payment aborted",
        PaymentResponse(service_id="S1", ecr_ref=REF, result=_NO, error_condition=_C.ABORTED),
        of_payment,
    ),
    *[
        (
            f"status {state.value}",
            TransactionStatusResponse(
                service_id="S1", ecr_ref=REF, result=_OK, transaction=_record(state)
            ),
            _payment_status,
        )
        for state in TransactionState
        if state is not TransactionState.IN_PROGRESS  # unknown anyway
    ],
    (
        "status not found",
        TransactionStatusResponse(
            service_id="S1", ecr_ref=REF, result=_NO, error_condition=_C.NOT_FOUND
        ),
        _payment_status,
    ),
    ("reversal done", ReversalResponse(service_id="S1", ecr_ref=REF, result=_OK), of_reversal),
    (
        "reversal not found",
        ReversalResponse(service_id="S1", ecr_ref=REF, result=_NO, error_condition=_C.NOT_FOUND),
        of_reversal,
    ),
    ("void done", ReversalResponse(service_id="S1", ecr_ref=REF, result=_OK), of_void),
    (
        "void refused",
        ReversalResponse(service_id="S1", ecr_ref=REF, result=_NO, error_condition=_C.DECLINED),
        of_void,
    ),
    (
        "refund approved",
        RefundResponse(service_id="S1", ecr_ref=REF, amount=700, result=_OK),
        of_refund,
    ),
    (
        "refund declined",
        RefundResponse(service_id="S1", ecr_ref=REF, result=_NO, error_condition=_C.DECLINED),
        of_refund,
    ),
]


@pytest.mark.parametrize(("response", "judge"), [c[1:] for c in _CASES], ids=[c[0] for c in _CASES])
def test_every_judge_finds_an_answer_marked_test_unknown(
    response: Response, judge: Callable[[Any], Verdict], caplog: pytest.LogCaptureFixture
) -> None:
    assert judge(response).final  # unmarked, the same answer settles something
    marked = response.model_copy(update={"test": True})
    with caplog.at_level(logging.WARNING, logger="shouyin.payments.verdicts"):
        verdict = judge(marked)
    assert verdict.kind is VerdictKind.UNKNOWN and not verdict.final
    assert verdict.condition == TEST_MODE and verdict.amount is None and verdict.acquirer is None
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "marked test" in caplog.records[0].getMessage()


def test_an_answer_not_marked_test_is_judged_as_before() -> None:
    approved = PaymentResponse(service_id="S1", ecr_ref=REF, amount=5990, result=Result.SUCCESS)
    assert of_payment(approved).kind is VerdictKind.APPROVED
    assert of_payment(approved.model_copy(update={"test": False})).kind is VerdictKind.APPROVED
    found = TransactionStatusResponse(
        service_id="S1",
        ecr_ref=REF,
        result=Result.SUCCESS,
        transaction=_record(TransactionState.APPROVED),
    )
    assert of_status(found, TransactionKind.PAYMENT).kind is VerdictKind.APPROVED
