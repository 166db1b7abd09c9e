"""Settlement (结算): batch totals, the 0500 exchange, and the next batch.

Totals count, per payment kind and wallet, the approved sales of the open batch that were not
voided or reversed, and the approved refunds (under the kind and wallet of the payment they
refund). Before settling, the terminal sends its pending reversals: the host's totals can only
agree once they are acknowledged, so settlement is refused while any is left. The host answers
``00`` when its totals agree; otherwise (结算不平) the batch is closed all the same, as real
terminals do after uploading the details, and the answer is ``partial``. Either way the batch
number moves on (six digits, persisted) and a settlement report is printed.
"""

from __future__ import annotations

import logging

from shouyin.link.messages import ReconciliationRequest, ReconciliationResponse
from shouyin.link.values import (
    DocumentKind,
    ErrorCondition,
    PaymentKind,
    ReconciliationKind,
    Result,
    Totals,
    TransactionKind,
    TransactionState,
    Wallet,
)
from shouyin.terminal.common import print_lines
from shouyin.terminal.context import Services, Txn
from shouyin.terminal.errors import AcquirerFailure, AcquirerUnavailable
from shouyin.terminal.faults import Step
from shouyin.terminal.ports import SettleAuth
from shouyin.terminal.records import JournalEntry
from shouyin.terminal.recovery import send_reversal
from shouyin.terminal.slips import format_fen

__all__ = ["batch_totals", "reconciliation", "settlement_report"]

logger = logging.getLogger(__name__)


def batch_totals(entries: list[JournalEntry]) -> tuple[Totals, ...]:
    """Totals per (payment kind, wallet) of ``entries`` (one batch), in a stable order."""
    sums: dict[tuple[PaymentKind, Wallet | None], list[int]] = {}
    for entry in entries:
        if entry.state is not TransactionState.APPROVED:
            continue
        row = sums.setdefault((entry.payment_kind, entry.wallet), [0, 0, 0, 0])
        if entry.kind is TransactionKind.PAYMENT:
            row[0] += 1
            row[1] += entry.amount
        elif entry.kind is TransactionKind.REFUND:
            row[2] += 1
            row[3] += entry.amount
    order = list(PaymentKind)
    return tuple(
        Totals(kind=kind, wallet=wallet, count=c, amount=a, refund_count=rc, refund_amount=ra)
        for (kind, wallet), (c, a, rc, ra) in sorted(
            sums.items(), key=lambda item: (order.index(item[0][0]), item[0][1] or "")
        )
    )


def settlement_report(batch: str, totals: tuple[Totals, ...], balanced: bool) -> tuple[str, ...]:
    """The printed settlement report (结算单)."""
    lines = ["结算单 SETTLEMENT", f"批次号: {batch}", "-" * 32]
    for t in totals:
        name = t.kind.value + (f"/{t.wallet.value}" if t.wallet else "")
        lines.append(f"{name}: 消费 {t.count} 笔 {format_fen(t.amount)}")
        lines.append(f"{name}: 退货 {t.refund_count} 笔 {format_fen(t.refund_amount)}")
    lines.append("对账平" if balanced else "对账不平")
    return tuple(lines)


async def reconciliation(
    services: Services, txn: Txn, request: ReconciliationRequest
) -> ReconciliationResponse:
    """Report the open batch's totals, or settle it and open the next.

    Raises:
        PowerLoss: a fault switch cut the power at a step.
    """
    state = services.state
    batch = state.batch
    sid = request.service_id
    txn.abortable = False
    if request.kind is ReconciliationKind.TOTALS:
        totals = batch_totals(state.entries(batch))
        return ReconciliationResponse(
            service_id=sid, result=Result.SUCCESS, batch=batch, totals=totals
        )
    for reversal in state.reversals(armed=True):
        await send_reversal(services, reversal)
    if state.reversals(armed=True):
        return ReconciliationResponse(
            service_id=sid,
            result=Result.FAILURE,
            batch=batch,
            error_condition=ErrorCondition.UNREACHABLE_HOST,
            message="有未完成的冲正，暂不能结算",
        )
    totals = batch_totals(state.entries(batch))
    services.step(Step.BEFORE_SETTLEMENT)
    auth = SettleAuth(batch=batch, totals=totals, at=services.clock.now())
    try:
        reply = await services.call("settle", lambda: services.acquirer.settle(auth), txn)
    except AcquirerFailure as error:
        unreachable = isinstance(error, AcquirerUnavailable)
        return ReconciliationResponse(
            service_id=sid,
            result=Result.FAILURE,
            batch=batch,
            totals=totals,
            error_condition=(
                ErrorCondition.UNREACHABLE_HOST if unreachable else ErrorCondition.TIMEOUT
            ),
            message="结算超时，批次未关闭",
        )
    balanced = reply.code == "00"
    if not balanced and reply.code != "95":
        return ReconciliationResponse(
            service_id=sid,
            result=Result.FAILURE,
            batch=batch,
            totals=totals,
            error_condition=ErrorCondition.DECLINED,
            message=f"结算被拒绝 ({reply.code})",
        )
    new_batch = state.close_batch()
    services.step(Step.AFTER_SETTLEMENT)
    print_lines(services, DocumentKind.REPORT, settlement_report(batch, totals, balanced))
    logger.info("batch %s settled (%s), batch %s open", batch, reply.code, new_batch)
    if balanced:
        return ReconciliationResponse(
            service_id=sid,
            result=Result.SUCCESS,
            batch=batch,
            totals=totals,
            message="结算成功，对账平",
        )
    return ReconciliationResponse(
        service_id=sid,
        result=Result.PARTIAL,
        batch=batch,
        totals=totals,
        error_condition=ErrorCondition.REFUSAL,
        message="对账不平，批次已上送并关闭",
    )
