"""After a sale: reversal (冲正) and void (撤销) asked by the cashier, and refund (退货).

A cashier's Reversal names the payment by its ``ecr_ref``:

* ``reason=void`` cancels an approved sale of the open batch (no refund made against it) with
  the acquirer. The void's own reversal flag is stored first: a void left without an answer is
  itself reversed, so that the sale stands and the cashier may try again;
* any other reason reverses an approved payment (0400, or a revoke for QR) and keeps trying
  until acknowledged: answered ``success`` once acknowledged, ``partial``/``in_progress`` while
  it is queued;
* a payment that was never approved needs nothing (``success``); one already reversed or voided
  answers ``success`` again (idempotent).

A refund carries its own unique number (its ``ecr_ref``); the acquirer keys it by that number,
so a refund left without an answer is retried with the same number, never booked twice. Refunds
are allowed up to the original amount in total, partly or at once.
"""

from __future__ import annotations

import logging

from shouyin.link.messages import RefundRequest, RefundResponse, ReversalRequest, ReversalResponse
from shouyin.link.values import (
    AcquirerData,
    ErrorCondition,
    PaymentKind,
    ProgressStage,
    Result,
    ReversalReason,
    TransactionKind,
    TransactionState,
)
from shouyin.terminal.common import (
    acquirer_data,
    arm,
    call_acquirer,
    new_entry,
    print_slip,
    reversal_flag,
    slip_for,
)
from shouyin.terminal.context import Services, Txn
from shouyin.terminal.errors import AcquirerNoAnswer, AcquirerUnavailable
from shouyin.terminal.faults import Step
from shouyin.terminal.outcomes import condition_for, refund_response
from shouyin.terminal.ports import RefundAuth, VoidAuth
from shouyin.terminal.records import JournalEntry, PendingReversal, Stage
from shouyin.terminal.recovery import send_reversal
from shouyin.terminal.slips import SlipKind

__all__ = ["refund", "reversal"]

logger = logging.getLogger(__name__)


def _answer(
    request: ReversalRequest,
    result: Result,
    condition: ErrorCondition | None = None,
    message: str | None = None,
    acquirer: AcquirerData | None = None,
) -> ReversalResponse:
    return ReversalResponse(
        service_id=request.service_id,
        ecr_ref=request.ecr_ref,
        result=result,
        error_condition=condition,
        message=message,
        acquirer=acquirer,
    )


async def reversal(  # noqa: PLR0911 - one answer per case of the original
    services: Services, txn: Txn, request: ReversalRequest
) -> ReversalResponse:
    """Answer a cashier's Reversal (void or 冲正) of the payment ``request.ecr_ref``.

    Raises:
        PowerLoss: a fault switch cut the power at a step.
    """
    state = services.state
    entry = state.get(request.ecr_ref)
    fail_ = Result.FAILURE
    if entry is None:
        return _answer(request, fail_, ErrorCondition.NOT_FOUND, "无此交易")
    if entry.kind is not TransactionKind.PAYMENT:
        return _answer(request, fail_, ErrorCondition.NOT_ALLOWED, "只能撤销或冲正消费交易")
    if request.amount is not None and request.amount != entry.amount:
        return _answer(request, fail_, ErrorCondition.NOT_ALLOWED, "金额与原交易不符")
    if entry.state in (TransactionState.REVERSED, TransactionState.VOIDED):
        return _answer(request, Result.SUCCESS, message=entry.message, acquirer=entry.acquirer)
    if entry.state is not TransactionState.APPROVED:
        if any(r.ecr_ref == entry.ecr_ref for r in state.reversals()):
            return _answer(request, Result.PARTIAL, ErrorCondition.IN_PROGRESS, "冲正处理中")
        return _answer(request, Result.SUCCESS, message="原交易未成功，未扣款，无需冲正")
    txn.abortable = False
    if request.reason is ReversalReason.VOID:
        return await _void(services, txn, request, entry)
    flag = state.add_reversal(
        PendingReversal(
            ecr_ref=entry.ecr_ref,
            original_trace=entry.trace or "",
            batch=entry.batch,
            amount=entry.amount,
            original_kind="sale",
            order_id=entry.order_id,
            payment_kind=entry.payment_kind,
            created=services.clock.now(),
        )
    )
    services.progress(txn, ProgressStage.CONTACTING_ACQUIRER, "冲正处理中")
    if await send_reversal(services, flag):
        return _answer(request, Result.SUCCESS, message="交易已冲正", acquirer=entry.acquirer)
    latest = next((r for r in state.reversals() if r.id == flag.id), flag)
    arm(services, latest)
    return _answer(request, Result.PARTIAL, ErrorCondition.IN_PROGRESS, "冲正已登记，将自动重发")


async def _void(
    services: Services, txn: Txn, request: ReversalRequest, entry: JournalEntry
) -> ReversalResponse:
    state = services.state
    if entry.batch != state.batch:
        return _answer(
            request, Result.FAILURE, ErrorCondition.NOT_ALLOWED, "原交易已结算，请做退货"
        )
    if entry.refunded:
        return _answer(request, Result.FAILURE, ErrorCondition.NOT_ALLOWED, "已有退货，不能撤销")
    trace = state.next_trace()
    flag = reversal_flag(services, entry, trace, "void")
    entry = entry.changed(services.clock.now(), void_trace=trace)
    state.put(entry)
    services.step(Step.BEFORE_ACQUIRER)
    services.progress(txn, ProgressStage.CONTACTING_ACQUIRER, "撤销处理中")
    original = entry.acquirer or AcquirerData()
    at = services.clock.now()
    auth = VoidAuth(
        trace=trace,
        batch=entry.batch,
        amount=entry.amount,
        original_trace=entry.trace or "",
        original_rrn=original.rrn,
        original_auth_code=original.auth_code,
        order_id=entry.order_id,
    )
    try:
        reply = await services.call("void", lambda: services.acquirer.void(auth), txn)
    except AcquirerUnavailable:
        if flag.id is not None:
            state.remove_reversal(flag.id)
        return _answer(request, Result.FAILURE, ErrorCondition.UNREACHABLE_HOST, "无法连接收单机构")
    except AcquirerNoAnswer:
        arm(services, flag)
        message = "撤销超时，已冲正撤销，原交易有效"
        return _answer(request, Result.FAILURE, ErrorCondition.TIMEOUT, message)
    if not reply.approved:
        if flag.id is not None:
            state.remove_reversal(flag.id)
        condition, message = condition_for(reply)
        return _answer(request, Result.FAILURE, condition, message)
    services.step(Step.AFTER_ACQUIRER_APPROVAL)
    data = acquirer_data(
        services,
        entry,
        reply,
        trace,
        at,
        masked_pan=original.masked_pan,
        brand=original.card_brand,
        card_entry=original.entry,
        wallet=original.wallet,
    )
    voided = entry.changed(
        services.clock.now(), state=TransactionState.VOIDED, message="交易已撤销"
    )
    state.put(voided, drop_reversal=flag.id)
    services.step(Step.AFTER_RECORD)
    print_slip(services, txn, slip_for(services, entry, SlipKind.VOID, data))
    logger.info("payment %s voided (trace %s)", entry.ecr_ref, trace)
    return _answer(request, Result.SUCCESS, message="交易已撤销", acquirer=data)


def _check_refund(
    services: Services, request: RefundRequest
) -> tuple[JournalEntry | None, JournalEntry | None] | RefundResponse:
    """``(earlier attempt, original payment)`` when the refund may go ahead, else the answer."""
    state, sid = services.state, request.service_id
    existing = state.get(request.ecr_ref)
    if existing is not None:
        if existing.kind is not TransactionKind.REFUND or existing.amount != request.amount:
            return _refused(request, ErrorCondition.NOT_ALLOWED, "退货单号已用于其他交易")
        retry = existing.state is TransactionState.FAILED and existing.error_condition in (
            ErrorCondition.TIMEOUT,
            ErrorCondition.UNREACHABLE_HOST,
        )
        if not retry:
            return refund_response(existing, sid)
    if request.original_ecr_ref is not None:
        original = state.get(request.original_ecr_ref)
    else:
        original = state.find_by_rrn(request.original_rrn or "")
    if original is None and request.original_rrn is None:
        return _refused(request, ErrorCondition.NOT_FOUND, "找不到原交易")
    if original is not None:
        approved = original.state is TransactionState.APPROVED
        if original.kind is not TransactionKind.PAYMENT or not approved:
            return _refused(request, ErrorCondition.NOT_ALLOWED, "原交易不可退货")
        if original.refunded + request.amount > original.amount:
            return _refused(request, ErrorCondition.NOT_ALLOWED, "退货金额超过原交易可退金额")
    return existing, original


async def refund(services: Services, txn: Txn, request: RefundRequest) -> RefundResponse:
    """Answer a cashier's Refund (退货); a repeat with the same number is answered from the
    journal, or retried with the acquirer when the first attempt got no answer.

    Raises:
        PowerLoss: a fault switch cut the power at a step.
    """
    checked = _check_refund(services, request)
    if isinstance(checked, RefundResponse):
        return checked
    existing, original = checked
    state, sid = services.state, request.service_id
    source = original.acquirer if original is not None and original.acquirer else AcquirerData()
    kind = original.payment_kind if original is not None else PaymentKind.CARD
    if existing is None:
        entry = new_entry(
            services,
            request.ecr_ref,
            TransactionKind.REFUND,
            request.amount,
            kind,
            original_ecr_ref=original.ecr_ref if original else None,
            wallet=original.wallet if original else None,
        )
    else:
        entry = existing.changed(services.clock.now(), batch=state.batch)
    txn.abortable = False
    # A retry keeps its trace: the acquirer knows a refund by it (and by the refund number).
    trace = entry.trace if existing is not None and entry.trace else state.next_trace()
    entry = entry.changed(
        services.clock.now(), stage=Stage.SENT, trace=trace, state=TransactionState.IN_PROGRESS
    )
    state.put(entry)
    services.step(Step.BEFORE_ACQUIRER)
    services.progress(txn, ProgressStage.CONTACTING_ACQUIRER, "退货处理中")
    at = services.clock.now()
    auth = RefundAuth(
        trace=trace,
        batch=entry.batch,
        amount=entry.amount,
        refund_no=entry.ecr_ref,
        original_rrn=source.rrn or request.original_rrn,
        original_order_id=original.order_id if original else None,
    )
    reply = await call_acquirer(
        services,
        txn,
        entry,
        "refund",
        lambda: services.acquirer.refund(auth),
        flag=None,  # no reversal: a refund is retried under its own number
        unreachable="无法连接收单机构，请重试",
        no_answer=(ErrorCondition.TIMEOUT, "退货超时，请用同一退货单号重试"),
    )
    if isinstance(reply, JournalEntry):
        return refund_response(reply, sid)
    services.step(Step.AFTER_ACQUIRER_APPROVAL)
    data = acquirer_data(
        services,
        entry,
        reply,
        trace,
        at,
        masked_pan=source.masked_pan,
        brand=source.card_brand,
        card_entry=source.entry,
        wallet=source.wallet,
    )
    entry = entry.changed(
        services.clock.now(),
        state=TransactionState.APPROVED,
        stage=Stage.DONE,
        acquirer=data,
        message="退货成功",
    )
    if original is not None:
        original = original.changed(services.clock.now(), refunded=original.refunded + entry.amount)
        state.put(entry, original)
    else:
        state.put(entry)
    services.step(Step.AFTER_RECORD)
    print_slip(services, txn, slip_for(services, entry, SlipKind.REFUND, data))
    logger.info("refund %s approved (trace %s)", entry.ecr_ref, trace)
    return refund_response(entry, sid)


def _refused(request: RefundRequest, condition: ErrorCondition, message: str) -> RefundResponse:
    return RefundResponse(
        service_id=request.service_id,
        ecr_ref=request.ecr_ref,
        result=Result.FAILURE,
        error_condition=condition,
        message=message,
    )
