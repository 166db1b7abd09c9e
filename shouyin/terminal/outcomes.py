"""From acquirer answers to journal states and cashier responses.

:func:`condition_for` maps an ISO 8583 response code to the link's error condition and the
explanation a cashier reads; :func:`payment_response` and :func:`refund_response` build the
answer to a Payment or Refund from its journal entry, so that a repeated request gets the very
same answer as the first (with its own ``service_id``).
"""

from __future__ import annotations

from shouyin.link.messages import PaymentResponse, RefundResponse
from shouyin.link.values import (
    AcquirerData,
    ErrorCondition,
    Result,
    TransactionState,
)
from shouyin.terminal.ports import HostReply
from shouyin.terminal.records import JournalEntry

__all__ = ["condition_for", "payment_response", "refund_response"]

_CODES: dict[str, tuple[ErrorCondition, str]] = {
    "51": (ErrorCondition.INSUFFICIENT_FUNDS, "余额不足"),
    "54": (ErrorCondition.INVALID_CARD, "卡已过期"),
    "14": (ErrorCondition.INVALID_CARD, "无效卡号"),
    "15": (ErrorCondition.INVALID_CARD, "无此发卡行"),
    "41": (ErrorCondition.INVALID_CARD, "挂失卡"),
    "43": (ErrorCondition.INVALID_CARD, "被窃卡"),
    "55": (ErrorCondition.WRONG_PIN, "密码错误"),
    "75": (ErrorCondition.WRONG_PIN, "密码错误次数超限"),
    "25": (ErrorCondition.NOT_FOUND, "找不到原交易"),
    "91": (ErrorCondition.UNREACHABLE_HOST, "发卡行不可用"),
    "98": (ErrorCondition.UNREACHABLE_HOST, "发卡行超时"),
    "Q1": (ErrorCondition.CANCELLED, "订单已关闭"),
    "Q2": (ErrorCondition.INVALID_CODE, "付款码无效或已过期"),
}
_STATE_MESSAGES = {
    TransactionState.REVERSED: "交易已冲正",
    TransactionState.VOIDED: "交易已撤销",
}


def condition_for(reply: HostReply) -> tuple[ErrorCondition, str]:
    """The error condition and cashier message for a refusing answer."""
    condition, message = _CODES.get(reply.code, (ErrorCondition.DECLINED, "交易拒绝"))
    return condition, f"{message} ({reply.code})"


def _result(entry: JournalEntry) -> tuple[Result, ErrorCondition | None, str | None]:
    if entry.state is TransactionState.APPROVED:
        return Result.SUCCESS, None, entry.message
    if entry.state in _STATE_MESSAGES:
        # Approved once, then reversed or voided: a repeat must not read as money taken.
        return Result.FAILURE, ErrorCondition.CANCELLED, _STATE_MESSAGES[entry.state]
    if entry.state is TransactionState.IN_PROGRESS:
        return Result.FAILURE, ErrorCondition.IN_PROGRESS, "交易处理中"
    return Result.FAILURE, entry.error_condition or ErrorCondition.DECLINED, entry.message


def payment_response(entry: JournalEntry, service_id: str) -> PaymentResponse:
    """The answer to the Payment ``entry`` records."""
    result, condition, message = _result(entry)
    approved = result is Result.SUCCESS
    return PaymentResponse(
        service_id=service_id,
        ecr_ref=entry.ecr_ref,
        result=result,
        error_condition=condition,
        message=message,
        amount=entry.amount if approved else None,
        kind=entry.payment_kind,
        acquirer=entry.acquirer or _trace_only(entry),
    )


def refund_response(entry: JournalEntry, service_id: str) -> RefundResponse:
    """The answer to the Refund ``entry`` records."""
    result, condition, message = _result(entry)
    return RefundResponse(
        service_id=service_id,
        ecr_ref=entry.ecr_ref,
        result=result,
        error_condition=condition,
        message=message,
        amount=entry.amount if result is Result.SUCCESS else None,
        acquirer=entry.acquirer or _trace_only(entry),
    )


def _trace_only(entry: JournalEntry) -> AcquirerData | None:
    if entry.trace is None:
        return None
    return AcquirerData(trace=entry.trace, batch=entry.batch, wallet=entry.wallet)
