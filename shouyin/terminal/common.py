"""Steps the payment, refund and void flows share: journal entries, trace numbers, the
reversal flag, the acquirer call and its definite failures, acquirer data, slips and printing."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from shouyin.link.values import (
    AcquirerData,
    CardEntry,
    DocumentKind,
    ErrorCondition,
    PaperState,
    PaymentKind,
    ProgressStage,
    TransactionKind,
    TransactionState,
    Wallet,
)
from shouyin.terminal.context import Services, Txn
from shouyin.terminal.errors import AcquirerNoAnswer, AcquirerUnavailable
from shouyin.terminal.outcomes import condition_for
from shouyin.terminal.ports import HostReply
from shouyin.terminal.records import JournalEntry, PendingReversal, Stage
from shouyin.terminal.slips import Slip, SlipKind

__all__ = [
    "TEST_BANNER",
    "acquirer_data",
    "arm",
    "call_acquirer",
    "fail",
    "new_entry",
    "order_id",
    "print_lines",
    "print_slip",
    "reversal_flag",
    "slip_for",
]

logger = logging.getLogger(__name__)

_RRN = re.compile(r"^[0-9A-Za-z]{12}$")
_APPROVAL = re.compile(r"^[0-9A-Za-z]{1,6}$")
TEST_BANNER = "*** 测试交易 TEST ***"
"""Printed above and below everything the terminal prints in test mode."""
_ORDER = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")


def new_entry(
    services: Services,
    ecr_ref: str,
    kind: TransactionKind,
    amount: int,
    payment_kind: PaymentKind,
    **fields: object,
) -> JournalEntry:
    """Record the intent of a new transaction durably (before anything is sent)."""
    now = services.clock.now()
    entry = JournalEntry.model_validate(
        {
            "ecr_ref": ecr_ref,
            "kind": kind,
            "state": TransactionState.IN_PROGRESS,
            "stage": Stage.INTENT,
            "amount": amount,
            "payment_kind": payment_kind,
            "batch": services.state.batch,
            "created": now,
            "updated": now,
            **fields,
        }
    )
    services.state.put(entry)
    return entry


def order_id(services: Services, batch: str, trace: str) -> str:
    """The terminal's order number: acquirer terminal number, batch and trace (20 digits)."""
    return f"{services.config.acquirer_terminal_id}{batch}{trace}"


def reversal_flag(
    services: Services, entry: JournalEntry, trace: str, original_kind: str
) -> PendingReversal:
    """Store the (unarmed) reversal of what is about to be sent, as real terminals set their
    reversal flag: a restart before the answer is recorded then reverses it."""
    return services.state.add_reversal(
        PendingReversal(
            ecr_ref=entry.ecr_ref,
            original_trace=trace,
            batch=entry.batch,
            amount=entry.amount,
            original_kind=original_kind,
            order_id=entry.order_id if original_kind == "sale" else None,
            payment_kind=entry.payment_kind,
            created=services.clock.now(),
        )
    )


def arm(services: Services, reversal: PendingReversal) -> None:
    """No answer came: the reversal is due now (the worker sends it until acknowledged)."""
    services.state.update_reversal(reversal.model_copy(update={"armed": True}))
    services.kick_reversals()


def fail(
    services: Services,
    entry: JournalEntry,
    condition: ErrorCondition,
    message: str,
    *,
    state: TransactionState = TransactionState.FAILED,
    drop_reversal: int | None = None,
) -> JournalEntry:
    """Record a definite failure."""
    done = entry.changed(
        services.clock.now(),
        state=state,
        stage=Stage.DONE,
        error_condition=condition,
        message=message,
    )
    services.state.put(done, drop_reversal=drop_reversal)
    logger.info("%s %s: %s (%s)", entry.kind.value, entry.ecr_ref, state.value, condition.value)
    return done


def _approved(reply: HostReply) -> bool:
    return reply.approved


async def call_acquirer(
    services: Services,
    txn: Txn,
    entry: JournalEntry,
    operation: str,
    request: Callable[[], Awaitable[HostReply]],
    *,
    flag: PendingReversal | None,
    unreachable: str,
    no_answer: tuple[ErrorCondition, str],
    accept: Callable[[HostReply], bool] = _approved,
) -> HostReply | JournalEntry:
    """Call the acquirer for ``entry`` and record a definite failure unless it accepts.

    Nothing was sent when the acquirer is unreachable, and a refusal is final: both drop the
    reversal flag in the same commit as the failure. No answer leaves the outcome unknown, so
    the flag is armed (the worker reverses until acknowledged) before the failure is recorded.

    Args:
        services: the terminal's services.
        txn: the transaction to report progress for.
        entry: the journal entry, already marked *sent*.
        operation: the request's name, for logs and fault switches.
        request: makes the call.
        flag: the reversal flag stored before sending; ``None`` when the operation has none
            (a refund is retried under its own number instead).
        unreachable: the message when the acquirer could not be reached.
        no_answer: the condition and message when no answer came.
        accept: whether a reply counts as approved (default: ``reply.approved``); any other
            reply is recorded as declined with the condition its response code maps to.

    Returns:
        The accepted reply, or the journal entry as recorded failed or declined.
    """
    drop = flag.id if flag is not None else None
    try:
        reply = await services.call(operation, request, txn)
    except AcquirerUnavailable:
        condition = ErrorCondition.UNREACHABLE_HOST
        return fail(services, entry, condition, unreachable, drop_reversal=drop)
    except AcquirerNoAnswer:
        if flag is not None:
            arm(services, flag)
        return fail(services, entry, *no_answer)
    if not accept(reply):
        condition, message = condition_for(reply)
        declined = TransactionState.DECLINED
        return fail(services, entry, condition, message, state=declined, drop_reversal=drop)
    return reply


def acquirer_data(
    services: Services,
    entry: JournalEntry,
    reply: HostReply,
    trace: str,
    at: datetime,
    *,
    masked_pan: str | None = None,
    brand: str | None = None,
    card_entry: CardEntry | None = None,
    wallet: Wallet | None = None,
) -> AcquirerData:
    """What goes into the journal, the response and the slip (masked card only)."""
    config = services.config
    order = reply.wallet_order_id
    return AcquirerData(
        rrn=reply.rrn if reply.rrn and _RRN.match(reply.rrn) else None,
        trace=trace,
        batch=entry.batch,
        auth_code=reply.auth_code if reply.auth_code and _APPROVAL.match(reply.auth_code) else None,
        masked_pan=masked_pan,
        card_brand=brand,
        entry=card_entry,
        wallet=wallet or reply.wallet,
        wallet_order_id=order if order and _ORDER.match(order) else None,
        merchant_id=config.merchant_id,
        acquirer_terminal_id=config.acquirer_terminal_id,
        transaction_time=at,
    )


def slip_for(
    services: Services,
    entry: JournalEntry,
    kind: SlipKind,
    data: AcquirerData,
    *,
    signature_ref: str | None = None,
) -> Slip:
    """The slip of a transaction."""
    config = services.config
    return Slip(
        kind=kind,
        ecr_ref=entry.ecr_ref,
        merchant_name=config.merchant_name,
        merchant_id=config.merchant_id,
        terminal_no=config.acquirer_terminal_id,
        operator=config.operator,
        masked_pan=data.masked_pan,
        card_type=data.card_brand,
        entry=data.entry,
        wallet=data.wallet,
        wallet_order_id=data.wallet_order_id,
        batch=data.batch or entry.batch,
        trace=data.trace or "000000",
        auth_code=data.auth_code,
        rrn=data.rrn,
        at=data.transaction_time or services.clock.now(),
        amount=entry.amount,
        signature_ref=signature_ref,
    )


def print_lines(services: Services, document: DocumentKind, lines: tuple[str, ...]) -> bool:
    """Print on the terminal's printer; ``False`` when there is no paper (or no printer)."""
    if not services.config.printer or services.status.paper is PaperState.OUT:
        logger.warning("cannot print %s: paper %s", document.value, services.status.paper.value)
        return False
    if services.test_mode:  # a test slip or report must never pass for a real one
        lines = (TEST_BANNER, *lines, TEST_BANNER)
    services.state.add_printout(document.value, lines)
    return True


def print_slip(
    services: Services, txn: Txn | None, slip: Slip, signature_png: bytes | None = None
) -> None:
    """Keep the slip (and signature) and print it if there is paper."""
    services.state.save_slip(slip, signature_png)
    if txn is not None:
        services.progress(txn, ProgressStage.PRINTING, "正在打印签购单")
    print_lines(services, DocumentKind.CARD_SLIP, slip.lines())
