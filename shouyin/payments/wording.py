"""What the cashier is told: live progress and outcomes, in plain Chinese with English alongside.

Two things are worded here, and only here, so that the lane screen, the web page and the logs all
say the same thing:

* :class:`ProgressEvent`: a payment's live steps ("请在POS机上刷卡", "等待用户输入密码",
  "交易处理中", and the orchestrator's own "正在查询交易结果", "正在冲正");
* :func:`explain`: one short sentence per journal outcome saying what happened to the money and
  what to do next ("支付结果未知，已冲正，未扣款：请重新支付").

Pure: no I/O. Amounts are formatted with :meth:`Money.format`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from shouyin.domain.carddata import scrub
from shouyin.domain.money import Money
from shouyin.link.values import ProgressStage
from shouyin.payments.journal import IntentKind, IntentState, PaymentIntent

__all__ = ["Explanation", "ProgressEvent", "Step", "explain", "progress", "reason"]


class Step(StrEnum):
    """Which part of the orchestration a progress event comes from."""

    SENT = "sent"  # the request left for the terminal
    TERMINAL = "terminal"  # the terminal reported a stage (card, PIN, processing...)
    QUERYING = "querying"  # no answer: asking the terminal for the outcome
    REVERSING = "reversing"  # sending a reversal
    VOIDING = "voiding"
    REFUNDING = "refunding"


@dataclass(frozen=True, slots=True)
class Explanation:
    """A sentence for the cashier, in Chinese and in English."""

    zh: str
    en: str

    def __str__(self) -> str:
        return self.zh


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A live step of a payment, for the cashier's screen.

    Attributes:
        ecr_ref: the attempt.
        step: where it comes from.
        zh, en: what to show.
        stage: the terminal's own stage, for ``Step.TERMINAL``.
        detail: the terminal's own text for it (for ``showing_qr``: the code to show on the
            customer display), scrubbed of anything like a card number.
    """

    ecr_ref: str
    step: Step
    zh: str
    en: str
    stage: ProgressStage | None = None
    detail: str | None = None


_STAGES: Final[dict[ProgressStage, tuple[str, str]]] = {
    ProgressStage.INSERT_CARD: ("请在POS机上刷卡", "Ask the customer to swipe, insert or tap"),
    ProgressStage.PRESENT_CARD: ("请在POS机上刷卡", "Ask the customer to swipe, insert or tap"),
    ProgressStage.READING_CARD: ("正在读卡", "Reading the card"),
    ProgressStage.PIN_ENTRY: ("等待用户输入密码", "Waiting for the customer's PIN"),
    ProgressStage.PROCESSING: ("交易处理中", "Processing"),
    ProgressStage.CONTACTING_ACQUIRER: ("交易处理中", "Processing"),
    ProgressStage.WAITING_FOR_CUSTOMER: (
        "等待顾客在手机上确认支付",
        "Waiting for the customer to confirm on the phone",
    ),
    ProgressStage.SHOWING_QR: (
        "请顾客扫描POS机上的二维码",
        "Ask the customer to scan the code on the terminal",
    ),
    ProgressStage.REMOVE_CARD: ("请取走银行卡", "Ask the customer to take the card"),
    ProgressStage.SIGNATURE: ("请持卡人在POS机上签名", "Ask the cardholder to sign"),
    ProgressStage.PRINTING: ("正在打印签购单", "Printing the card slip"),
}
_STEPS: Final[dict[Step, tuple[str, str]]] = {
    Step.SENT: ("已发送到POS机", "Sent to the terminal"),
    Step.QUERYING: ("未收到结果，正在向POS机查询", "No answer: asking the terminal"),
    Step.REVERSING: ("结果未知，正在冲正", "Outcome unknown: reversing"),
    Step.VOIDING: ("正在撤销", "Voiding"),
    Step.REFUNDING: ("退货处理中", "Refund in progress"),
}


def progress(
    ecr_ref: str, step: Step, stage: ProgressStage | None = None, detail: str | None = None
) -> ProgressEvent:
    """The event for an orchestration ``step`` (or, with ``Step.TERMINAL``, a terminal stage)."""
    if step is Step.TERMINAL and stage is not None:
        zh, en = _STAGES.get(stage, ("交易处理中", "Processing"))
    else:
        zh, en = _STEPS.get(step, ("交易处理中", "Processing"))
    return ProgressEvent(ecr_ref, step, zh, en, stage, scrub(detail) if detail else None)


_REASONS: Final[dict[str, tuple[str, str]]] = {
    "declined": ("发卡行拒绝", "declined by the bank"),
    "insufficient_funds": ("余额不足", "insufficient funds"),
    "invalid_card": ("卡无效或已过期", "invalid or expired card"),
    "invalid_code": ("付款码无效或已过期", "invalid or expired payment code"),
    "wrong_pin": ("密码错误", "wrong PIN"),
    "refusal": ("交易被拒绝", "refused"),
    "aborted": ("收银员已取消", "cancelled at the till"),
    "cancelled": ("顾客已取消", "cancelled by the customer"),
    "timeout": ("超时未完成", "not completed in time"),
    "unreachable_host": ("无法连接收单机构", "the acquirer could not be reached"),
    "busy": ("POS机忙", "the terminal was busy"),
    "not_found": ("POS机未收到该交易", "the terminal never received it"),
    "not_allowed": ("POS机不允许该交易", "the terminal does not allow it"),
    "link_lost": ("与POS机的连接中断", "the connection to the terminal was lost"),
    "no_answer": ("POS机未应答", "the terminal did not answer"),
    "not_sent": ("POS机未连接，未发送", "the terminal is not connected; nothing was sent"),
    "sale_refused": ("销售单无法入账", "the sale could not take the payment"),
    "amount_mismatch": ("POS机金额与收银金额不符", "the terminal's amount differs"),
}


def reason(condition: str | None, message: str | None = None) -> Explanation:
    """Why something failed, from its condition; the terminal's own Chinese message wins."""
    zh, en = _REASONS.get(condition or "", ("交易未成功", "not completed"))
    return Explanation(message or zh, en)


_PAYMENT_TEXT: Final[dict[IntentState, tuple[str, str]]] = {
    IntentState.APPROVED: (
        "支付成功 {amount}，交易完成",
        "Payment of {amount} approved; sale complete",
    ),
    IntentState.DECLINED: (
        "支付被拒绝（{why_zh}），未扣款：请换卡或换其他方式付款",
        "Payment declined ({why_en}); nothing was charged. Try another card or method",
    ),
    IntentState.FAILED: (
        "支付未完成（{why_zh}），未扣款：可重新支付",
        "Payment did not go through ({why_en}); nothing was charged. Try again",
    ),
    IntentState.REVERSING: (
        "支付结果未知（{why_zh}），正在冲正并自动重试；本笔不计收款，请顾客重新支付",
        "Outcome unknown ({why_en}): a reversal is being sent until the terminal confirms it; "
        "this payment does not count, ask the customer to pay again",
    ),
    IntentState.REVERSED: (
        "支付结果未知（{why_zh}），已冲正，未扣款：请重新支付",
        "Outcome was unknown ({why_en}); the payment was reversed and nothing was charged. "
        "Please pay again",
    ),
    IntentState.VOIDING: (
        "正在撤销 {amount}，等待POS机确认",
        "Voiding {amount}; waiting for the terminal",
    ),
    IntentState.VOIDED: (
        "已撤销 {amount}，款项退回原卡或原账户",
        "{amount} voided; the money goes back to the card or wallet",
    ),
}
_PART_PAID: Final = (
    "支付成功 {amount}，还需支付 {remaining}",
    "Payment of {amount} approved; {remaining} still due",
)
_STILL_OPEN: Final = (
    "支付结果未知（{why_zh}），正在向POS机查询",
    "Outcome unknown ({why_en}); asking the terminal",
)
_REFUND_TEXT: Final[dict[IntentState, tuple[str, str]]] = {
    IntentState.APPROVED: (
        "退货成功，{amount} 退回原支付账户",
        "Refund approved: {amount} goes back to the original payment",
    ),
    IntentState.DECLINED: (
        "退货未成功（{why_zh}），未退款",
        "Refund failed ({why_en}); nothing was refunded",
    ),
    IntentState.FAILED: (
        "退货未成功（{why_zh}），未退款",
        "Refund failed ({why_en}); nothing was refunded",
    ),
}
_REFUND_OPEN: Final = (
    "退货结果未知（{why_zh}），将用同一退货单号自动重试",
    "Refund outcome unknown ({why_en}); it is retried with the same refund number",
)


def explain(intent: PaymentIntent, remaining: Money | None = None) -> Explanation:
    """One sentence on what happened to the money and what to do next.

    Args:
        intent: the journal entry.
        remaining: what the sale still owes afterwards (payments), if known.
    """
    if intent.kind is IntentKind.REFUND:
        zh, en = _REFUND_TEXT.get(intent.state, _REFUND_OPEN)
    elif intent.state is IntentState.APPROVED and remaining:
        zh, en = _PART_PAID
    else:
        zh, en = _PAYMENT_TEXT.get(intent.state, _STILL_OPEN)
    why = reason(intent.error_condition, intent.message)
    fields = {
        "amount": intent.amount.format(),
        "remaining": remaining.format() if remaining is not None else "",
        "why_zh": why.zh,
        "why_en": why.en,
    }
    return Explanation(zh.format(**fields), en.format(**fields))
