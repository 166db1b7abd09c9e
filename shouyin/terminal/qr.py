"""QR payments: the customer's code scanned by the cashier (micropay), or a code the terminal
shows (merchant-presented), following the wallets' own guidance (DESIGN.md section 6).

Micropay: recognise the wallet from the code (unrecognised: refused, nothing sent); pay;
``SUCCESS`` -> approved; a definite failure (expired or invalid code, not enough balance) ->
declined; ``USERPAYING`` (the customer confirms on the phone), a system error or no answer ->
unknown: query every ``qr_poll_interval`` seconds until ``qr_poll_limit`` after the order was
created, then revoke, not earlier than ``qr_revoke_min_age`` after creation, repeating while
the wallet answers "retry". A revoke that gets no answer stays armed for the reversal worker.
The cashier may abort while the terminal waits for the customer: that revokes at once (subject
to the minimum age). Every order thus ends SUCCESS, CLOSED or REVOKED.

Merchant-presented: create the order, show its code (progress ``showing_qr`` carries the
payload), then poll and revoke the same way.
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum

from shouyin.link.messages import PaymentRequest, PaymentResponse
from shouyin.link.values import ErrorCondition, PaymentKind, ProgressStage, TransactionState
from shouyin.link.wallets import recognise_wallet
from shouyin.terminal.common import (
    acquirer_data,
    arm,
    call_acquirer,
    fail,
    order_id,
    print_slip,
    reversal_flag,
    slip_for,
)
from shouyin.terminal.context import Services, Txn
from shouyin.terminal.errors import AcquirerFailure, AcquirerNoAnswer, AcquirerUnavailable
from shouyin.terminal.faults import Step
from shouyin.terminal.outcomes import condition_for, payment_response
from shouyin.terminal.ports import HostReply, QrStatus, QueryAuth, ReversalAuth, SaleAuth
from shouyin.terminal.records import JournalEntry, PendingReversal, Stage
from shouyin.terminal.slips import SlipKind, format_fen

__all__ = ["merchant_qr_sale", "qr_sale"]

logger = logging.getLogger(__name__)

_UNKNOWN_STATES = frozenset({QrStatus.USERPAYING, QrStatus.NOTPAY, QrStatus.SYSTEMERROR})
_UNKNOWN_CODES = frozenset({"09", "91", "96", "98", "Q0"})


class _Outcome(Enum):
    SUCCESS = "success"
    FAILED = "failed"
    UNKNOWN = "unknown"


def _classify(reply: HostReply | None) -> _Outcome:
    if reply is None:
        return _Outcome.UNKNOWN
    status = reply.qr_status
    if reply.approved and status in (None, QrStatus.SUCCESS):
        return _Outcome.SUCCESS
    if status in _UNKNOWN_STATES or (status is None and reply.code in _UNKNOWN_CODES):
        return _Outcome.UNKNOWN
    return _Outcome.FAILED


async def _start(
    services: Services, entry: JournalEntry, **fields: object
) -> tuple[JournalEntry, PendingReversal]:
    trace = services.state.next_trace()
    entry = entry.changed(
        services.clock.now(),
        stage=Stage.SENT,
        trace=trace,
        order_id=order_id(services, entry.batch, trace),
        **fields,
    )
    flag = reversal_flag(services, entry, trace, "sale")
    services.state.put(entry)
    services.step(Step.BEFORE_ACQUIRER)
    return entry, flag


def _auth(services: Services, entry: JournalEntry, kind: PaymentKind, code: str | None) -> SaleAuth:
    return SaleAuth(
        trace=entry.trace or "",
        batch=entry.batch,
        amount=entry.amount,
        at=services.clock.now(),
        order_id=entry.order_id or "",
        kind=kind,
        auth_code=code,
        wallet=entry.wallet,
    )


async def qr_sale(
    services: Services, txn: Txn, request: PaymentRequest, entry: JournalEntry
) -> PaymentResponse:
    """Micropay with the customer's payment code.

    Raises:
        PowerLoss: a fault switch cut the power at a step.
    """
    code = request.auth_code or ""
    wallet = recognise_wallet(code, services.wallet_rules)
    if wallet is None:
        message = "无法识别的付款码 (unrecognised payment code)"
        done = fail(services, entry, ErrorCondition.INVALID_CODE, message)
        return payment_response(done, txn.service_id)
    entry, flag = await _start(services, entry, wallet=wallet)
    created = asyncio.get_running_loop().time()
    services.progress(txn, ProgressStage.CONTACTING_ACQUIRER, "交易处理中")
    auth = _auth(services, entry, PaymentKind.QR_CODE, code)
    try:
        reply: HostReply | None = await services.call(
            "sale", lambda: services.acquirer.sale(auth), txn
        )
    except AcquirerUnavailable:
        done = fail(
            services,
            entry,
            ErrorCondition.UNREACHABLE_HOST,
            "无法连接收单机构，未扣款",
            drop_reversal=flag.id,
        )
        return payment_response(done, txn.service_id)
    except AcquirerNoAnswer:
        reply = None
    return await _settle(services, txn, entry=entry, flag=flag, reply=reply, created=created)


async def merchant_qr_sale(
    services: Services, txn: Txn, request: PaymentRequest, entry: JournalEntry
) -> PaymentResponse:
    """Show a code for the customer to scan, then poll.

    Raises:
        PowerLoss: a fault switch cut the power at a step.
    """
    entry, flag = await _start(services, entry)
    created = asyncio.get_running_loop().time()
    auth = _auth(services, entry, PaymentKind.MERCHANT_QR, None)
    reply = await call_acquirer(
        services,
        txn,
        entry,
        "precreate",
        lambda: services.acquirer.precreate(auth),
        flag=flag,  # armed on no answer: the order may exist, close it
        unreachable="无法连接收单机构",
        no_answer=(ErrorCondition.UNREACHABLE_HOST, "无法创建订单"),
        accept=lambda reply: reply.approved and bool(reply.qr_payload),
    )
    if isinstance(reply, JournalEntry):
        return payment_response(reply, txn.service_id)
    payload = reply.qr_payload or ""  # never empty: ``accept`` refused that
    services.status.screen = ("请扫码支付", format_fen(entry.amount), payload)
    services.progress(txn, ProgressStage.SHOWING_QR, payload[:256])
    return await _settle(services, txn, entry=entry, flag=flag, reply=None, created=created)


async def _settle(
    services: Services,
    txn: Txn,
    *,
    entry: JournalEntry,
    flag: PendingReversal,
    reply: HostReply | None,
    created: float,
) -> PaymentResponse:
    """Poll while the outcome of ``reply`` (``None``: no answer yet) is unknown, then conclude."""
    outcome = _classify(reply)
    aborted = False
    if outcome is _Outcome.UNKNOWN:
        outcome, reply, aborted = await _poll(services, txn, entry, created, reply)
    return await _conclude(
        services,
        txn,
        entry=entry,
        flag=flag,
        outcome=outcome,
        reply=reply,
        created=created,
        aborted=aborted,
    )


async def _poll(
    services: Services,
    txn: Txn,
    entry: JournalEntry,
    created: float,
    last: HostReply | None,
) -> tuple[_Outcome, HostReply | None, bool]:
    """Query until a definite answer or the limit; ``(outcome, last reply, aborted)``."""
    config = services.config
    loop = asyncio.get_running_loop()
    deadline = created + config.qr_poll_limit
    query = QueryAuth(trace=entry.trace or "", batch=entry.batch, order_id=entry.order_id or "")
    while loop.time() + config.qr_poll_interval <= deadline:
        services.progress(txn, ProgressStage.WAITING_FOR_CUSTOMER, "等待顾客确认支付")
        if await services.pause(txn, config.qr_poll_interval):
            logger.info("QR payment %s aborted by the cashier", entry.ecr_ref)
            return _Outcome.UNKNOWN, last, True
        remaining = max(1.0, deadline - loop.time())
        try:
            last = await services.call(
                "query",
                lambda: services.acquirer.query(query),
                None,
                timeout=min(config.acquirer_timeout, remaining),
            )
        except AcquirerFailure:
            continue
        outcome = _classify(last)
        if outcome is not _Outcome.UNKNOWN:
            return outcome, last, False
    logger.warning("QR payment %s still unknown after %.0f s", entry.ecr_ref, config.qr_poll_limit)
    return _Outcome.UNKNOWN, last, False


async def _conclude(
    services: Services,
    txn: Txn,
    *,
    entry: JournalEntry,
    flag: PendingReversal,
    outcome: _Outcome,
    reply: HostReply | None,
    created: float,
    aborted: bool,
) -> PaymentResponse:
    txn.abortable = False
    if outcome is _Outcome.SUCCESS and reply is not None:
        services.step(Step.AFTER_ACQUIRER_APPROVAL)
        data = acquirer_data(services, entry, reply, entry.trace or "", services.clock.now())
        entry = entry.changed(
            services.clock.now(),
            state=TransactionState.APPROVED,
            stage=Stage.DONE,
            acquirer=data,
            wallet=data.wallet,
            message="支付成功",
        )
        services.state.put(entry, drop_reversal=flag.id)
        services.step(Step.AFTER_RECORD)
        print_slip(services, txn, slip_for(services, entry, SlipKind.SALE, data))
        services.status.screen = ("支付成功", format_fen(entry.amount))
        return payment_response(entry, txn.service_id)
    if outcome is _Outcome.FAILED and reply is not None:
        condition, message = condition_for(reply)
        if condition is ErrorCondition.INVALID_CARD:  # a code, not a card, was expired
            condition, message = ErrorCondition.INVALID_CODE, f"付款码无效或已过期 ({reply.code})"
        done = fail(
            services,
            entry,
            condition,
            message,
            state=TransactionState.DECLINED,
            drop_reversal=flag.id,
        )
        return payment_response(done, txn.service_id)
    condition = ErrorCondition.ABORTED if aborted else ErrorCondition.TIMEOUT
    if await _revoke(services, entry, created):
        done = fail(services, entry, condition, "顾客未完成支付，订单已撤销", drop_reversal=flag.id)
    else:
        arm(services, flag)
        done = fail(services, entry, condition, "支付结果未知，撤单将自动重试")
    return payment_response(done, txn.service_id)


async def _revoke(services: Services, entry: JournalEntry, created: float) -> bool:
    """Revoke (cancel) the order; ``True`` once the wallet confirmed it."""
    config = services.config
    loop = asyncio.get_running_loop()
    wait = created + config.qr_revoke_min_age - loop.time()
    if wait > 0:
        await asyncio.sleep(wait)  # WeChat: never earlier than 15 s after creation
    auth = ReversalAuth(
        original_trace=entry.trace or "",
        batch=entry.batch,
        amount=entry.amount,
        original_kind="sale",
        order_id=entry.order_id,
        payment_kind=entry.payment_kind,
    )
    for attempt in range(1, config.qr_revoke_tries + 1):
        services.step(Step.BEFORE_REVERSAL)
        try:
            reply = await services.call("reverse", lambda: services.acquirer.reverse(auth))
        except AcquirerFailure:
            return False
        if not reply.retry:
            logger.info("order %s revoked (%s)", entry.order_id, reply.code)
            return True
        logger.info("revoke of %s: retry asked (attempt %d)", entry.order_id, attempt)
        await asyncio.sleep(config.qr_poll_interval)
    return False
