"""Every durable write of the payment journal, one unit of work each.

Each function here is one transaction: it loads the intent (and the sale) afresh, checks, applies
one journal event, saves and commits — or raises and commits nothing. The orchestrator and the
recovery call them between terminal exchanges and never hold a unit of work open across an
``await``, so no transaction waits on the terminal.

The commit that matters for exactly-once is :func:`record_payment`: for an approved payment it
writes the intent's ``approved`` state, the sale's new tender (carrying the ``ecr_ref``) and,
when nothing is left to pay, the completed sale, its shift and its outbox message, *in one
commit*. Either all of it is on disk or none of it, so a payment is never approved in the journal
without its tender on the sale, nor the other way round. If the sale cannot take the payment any
more (its total changed, it was voided, the amount approved differs, the shift is gone), nothing
is attached and the intent goes to ``reversing`` in that same commit instead: an approved payment
that belongs to no sale is reversed, never kept.

Every function is idempotent against a settled intent: if recovery or a retry already wrote the
outcome, the call changes nothing and returns what is stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome
from shouyin.domain.carddata import scrub
from shouyin.domain.errors import DomainError
from shouyin.domain.money import Money
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import Action, Approval
from shouyin.lane.services import Context, UnknownSale, complete_paid_sale
from shouyin.link.values import Wallet
from shouyin.payments.errors import (
    AmountRefused,
    PaymentInProgress,
    SaleNotPayable,
    UnknownIntent,
    VoidRefused,
)
from shouyin.payments.journal import (
    IntentEvent,
    IntentKind,
    IntentState,
    PaymentIntent,
    PaymentUnitOfWork,
    advance,
)
from shouyin.payments.verdicts import Verdict, VerdictKind

__all__ = [
    "Recorded",
    "begin_void",
    "load",
    "mark_sent",
    "mark_unknown",
    "open_payment",
    "record_payment",
    "record_reversal",
    "record_void",
    "result_fields",
    "start_reversal",
]

logger = logging.getLogger(__name__)

_PAYABLE = (SaleState.OPEN, SaleState.TENDERING)
_E = IntentEvent
_MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a write left behind: the intent, and the sale when it was loaded."""

    intent: PaymentIntent
    sale: Sale | None = None


def _text(value: str) -> str:
    return scrub(value)[:_MAX_TEXT]


def _get(uow: PaymentUnitOfWork, ecr_ref: str) -> PaymentIntent:
    intent = uow.payments.get(ecr_ref)
    if intent is None:
        raise UnknownIntent(f"no payment intent {ecr_ref}")
    return intent


# Audit (issue 7): the outcomes worth an audit entry, written in the same commit as the outcome.
_AUDITED = {
    IntentState.APPROVED: AuditOutcome.SUCCESS,
    IntentState.DECLINED: AuditOutcome.FAILURE,
    IntentState.FAILED: AuditOutcome.FAILURE,
    IntentState.REVERSED: AuditOutcome.SUCCESS,
    IntentState.VOIDED: AuditOutcome.SUCCESS,
}


def _audit(uow: PaymentUnitOfWork, intent: PaymentIntent) -> None:
    outcome = _AUDITED.get(intent.state)
    if outcome is None:
        return
    action = {IntentState.REVERSED: AuditAction.REVERSAL, IntentState.VOIDED: AuditAction.VOID}.get(
        intent.state,
        AuditAction.REFUND if intent.kind is IntentKind.REFUND else AuditAction.PAYMENT,
    )
    details: dict[str, str | int | None] = {
        "ecr_ref": intent.ecr_ref,
        "amount_fen": intent.amount.fen,
        "tender": intent.tender_kind.value,
        "masked_pan": intent.masked_pan,
        "rrn": intent.rrn,
        "error_condition": intent.error_condition,
    }
    uow.audit.append(
        AuditEvent(
            action=action,
            outcome=outcome,
            actor=intent.operator_id or "system",
            source=f"lane:{intent.lane_id}",
            target=f"sale:{intent.sale_id}",
            at=intent.updated_at,
            details=details,
        )
    )


def _save(uow: PaymentUnitOfWork, intent: PaymentIntent, sale: Sale | None = None) -> Recorded:
    uow.payments.save(intent)
    _audit(uow, intent)
    uow.commit()
    logger.info("intent %s %s", intent.ecr_ref, intent.state.value)
    return Recorded(intent, sale)


def load(uow: PaymentUnitOfWork, ecr_ref: str) -> Recorded:
    """Read an intent and its sale (no write).

    Raises:
        UnknownIntent: no such intent.
    """
    with uow:
        intent = _get(uow, ecr_ref)
        return Recorded(intent, uow.sales.get(intent.sale_id))


def result_fields(intent: PaymentIntent, verdict: Verdict) -> dict[str, Any]:
    """The acquirer data and explanation a verdict adds to an intent (masked card only)."""
    fields: dict[str, Any] = {"error_condition": verdict.condition, "message": verdict.message}
    data = verdict.acquirer
    if data is not None:
        fields.update(
            rrn=data.rrn or intent.rrn,
            trace=data.trace or intent.trace,
            batch=data.batch or intent.batch,
            approval_code=data.auth_code or intent.approval_code,
            masked_pan=data.masked_pan or intent.masked_pan,
            wallet=data.wallet if data.wallet not in (None, Wallet.OTHER) else intent.wallet,
        )
    return fields


# -- payments --------------------------------------------------------------------------------------
def open_payment(
    uow: PaymentUnitOfWork,
    ctx: Context,
    *,
    sale_id: str,
    tender_kind: TenderKind,
    amount: Money,
    wallet: Wallet | None = None,
    code_tail: str | None = None,
    operator_id: str | None = None,
) -> PaymentIntent:
    """Check the payment against the sale and write its intent (``pending``) durably.

    Raises:
        UnknownSale: no such sale.
        SaleNotPayable: the sale takes no payment now.
        AmountRefused: not positive, or more than the sale still owes.
        PaymentInProgress: another terminal payment or void of this sale is not settled.
    """
    with uow:
        sale = uow.sales.get(sale_id)
        if sale is None:
            raise UnknownSale(f"no sale {sale_id}")
        if sale.state not in _PAYABLE or not sale.active_lines or not sale.total_due:
            raise SaleNotPayable(f"sale {sale_id} is {sale.state.value}: it takes no payment")
        remaining = sale.remaining
        if amount.fen <= 0 or amount > remaining:
            raise AmountRefused(
                amount.fen, remaining.fen, f"{amount} refused: the sale still owes {remaining}"
            )
        busy = [
            i.ecr_ref
            for i in uow.payments.for_sale(sale_id)
            if i.is_open or i.state is IntentState.VOIDING
        ]
        if busy:
            raise PaymentInProgress(f"sale {sale_id}: {', '.join(busy)} not settled yet")
        now = ctx.clock()
        intent = PaymentIntent(
            ecr_ref=uow.payments.next_ecr_ref(ctx.lane_id, now.astimezone(ctx.tz).date()),
            kind=IntentKind.PAYMENT,
            sale_id=sale_id,
            lane_id=ctx.lane_id,
            tender_kind=tender_kind,
            amount=amount,
            state=IntentState.PENDING,
            created_at=now,
            updated_at=now,
            operator_id=operator_id,
            wallet=wallet,
            code_tail=code_tail,
        )
        uow.payments.add(intent)
        uow.commit()
        logger.info(
            "intent %s pending: %s %s on sale %s", intent.ecr_ref, tender_kind, amount, sale_id
        )
        return intent


def mark_sent(uow: PaymentUnitOfWork, ctx: Context, ecr_ref: str) -> PaymentIntent:
    """Record that the request left (observability; recovery treats pending the same)."""
    with uow:
        intent = _get(uow, ecr_ref)
        if not intent.is_open:
            return intent
        return _save(uow, advance(intent, _E.SEND, ctx.clock())).intent


def mark_unknown(
    uow: PaymentUnitOfWork, ctx: Context, ecr_ref: str, condition: str | None, message: str
) -> PaymentIntent:
    """Record that no final answer came (timeout, lost link, "in progress")."""
    with uow:
        intent = _get(uow, ecr_ref)
        if not intent.is_open:
            return intent
        changes = {"error_condition": condition, "message": _text(message)}
        return _save(uow, advance(intent, _E.LOSE, ctx.clock(), **changes)).intent


def record_payment(
    uow: PaymentUnitOfWork, ctx: Context, ecr_ref: str, verdict: Verdict
) -> Recorded:
    """Write a payment's final outcome; for an approval, attach it to the sale in the same commit.

    Args:
        uow: the lane's unit of work.
        ctx: lane, clock and ids.
        ecr_ref: the intent.
        verdict: the terminal's answer (payment or status), final or not.

    Returns:
        The intent (``approved``, ``declined``, ``failed``, ``reversed``, ``voided``,
        ``reversing`` when an approval could not be attached, or ``unknown``) and the sale.
    """
    if not verdict.final:
        return Recorded(mark_unknown(uow, ctx, ecr_ref, verdict.condition, verdict.message or ""))
    with uow:
        intent = _get(uow, ecr_ref)
        sale = uow.sales.get(intent.sale_id)
        if not intent.is_open:
            logger.info("intent %s already %s: outcome not written again", ecr_ref, intent.state)
            return Recorded(intent, sale)
        now = ctx.clock()
        fields = result_fields(intent, verdict)
        if verdict.kind is not VerdictKind.APPROVED:
            event = {
                VerdictKind.DECLINED: _E.DECLINE,
                VerdictKind.REVERSED: _E.REVERSED,
                VerdictKind.VOIDED: _E.VOIDED,
            }.get(verdict.kind, _E.FAIL)
            return _save(uow, advance(intent, event, now, **fields), sale)
        return _attach(
            uow, ctx=ctx, intent=replace(intent, **fields), sale=sale, verdict=verdict, now=now
        )


def _attach(
    uow: PaymentUnitOfWork,
    *,
    ctx: Context,
    intent: PaymentIntent,
    sale: Sale | None,
    verdict: Verdict,
    now: datetime,
) -> Recorded:
    """Put an approved payment on its sale, completing it when paid; else decide to reverse."""
    try:
        if sale is None:
            raise UnknownSale(f"no sale {intent.sale_id}")
        if verdict.amount is not None and verdict.amount != intent.amount.fen:
            raise AmountRefused(verdict.amount, intent.amount.fen, "amount_mismatch")
        tender = sale.add_tender(intent.tender_kind, intent.amount, intent.payment_ref())
        if not sale.remaining:
            complete_paid_sale(uow, ctx, sale)
    except (DomainError, AmountRefused) as error:
        condition = "amount_mismatch" if isinstance(error, AmountRefused) else "sale_refused"
        logger.error(
            "approved payment %s cannot go on sale %s (%s): reversing it",
            intent.ecr_ref,
            intent.sale_id,
            error,
        )
        uow.rollback()  # drop anything completing the sale may have written
        changes = {"error_condition": condition, "message": _text(str(error))}
        return _save(uow, advance(intent, _E.REVERSE, now, **changes), None)
    uow.sales.save(sale)
    approved = advance(intent, _E.APPROVE, now, tender_no=tender.tender_no, error_condition=None)
    return _save(uow, approved, sale)


# -- reversals (冲正) ------------------------------------------------------------------------------
def start_reversal(
    uow: PaymentUnitOfWork, ctx: Context, ecr_ref: str, condition: str | None, message: str
) -> PaymentIntent:
    """Decide durably to reverse an intent whose outcome stayed unknown.

    Returns:
        The intent, ``reversing`` (or as it was, if it is no longer open).
    """
    with uow:
        intent = _get(uow, ecr_ref)
        if not intent.is_open or intent.kind is not IntentKind.PAYMENT:
            return intent
        changes = {"error_condition": condition, "message": _text(message)}
        return _save(uow, advance(intent, _E.REVERSE, ctx.clock(), **changes)).intent


def record_reversal(
    uow: PaymentUnitOfWork, ctx: Context, ecr_ref: str, verdict: Verdict
) -> PaymentIntent:
    """Write the answer to one Reversal: acknowledged, nothing to reverse, or try again.

    Returns:
        The intent: ``reversed``, ``failed`` (the terminal never had it) or still ``reversing``
        with one more attempt counted.
    """
    with uow:
        intent = _get(uow, ecr_ref)
        if intent.state is not IntentState.REVERSING:
            return intent
        now = ctx.clock()
        attempts = intent.attempts + 1
        if verdict.kind is VerdictKind.APPROVED:
            return _save(uow, advance(intent, _E.REVERSED, now, attempts=attempts)).intent
        if verdict.kind is VerdictKind.FAILED:
            changes = {"attempts": attempts, "message": verdict.message or "POS机无此交易，未扣款"}
            return _save(uow, advance(intent, _E.FAIL, now, **changes)).intent
        details = {**intent.details, "reversal_error": verdict.condition or "no_answer"}
        return _save(
            uow, advance(intent, _E.REVERSE, now, attempts=attempts, details=details)
        ).intent


# -- voids (撤销) ----------------------------------------------------------------------------------
def begin_void(
    uow: PaymentUnitOfWork, ctx: Context, ecr_ref: str, approval: Approval
) -> PaymentIntent:
    """Check a void and write the decision (``voiding``) durably before it is sent.

    Raises:
        UnknownIntent: no such payment.
        VoidRefused: not an approved payment, or its sale is no longer open for it.
        PermissionDenied: the approval is not a fresh ``VOID_SALE`` approval.
    """
    with uow:
        intent = _get(uow, ecr_ref)
        if intent.kind is not IntentKind.PAYMENT:
            raise UnknownIntent(f"{ecr_ref} is a refund, not a payment")
        if intent.state is IntentState.VOIDING:
            return intent  # resumed: the decision is already durable
        if intent.state is not IntentState.APPROVED:
            raise VoidRefused(f"payment {ecr_ref} is {intent.state.value}: nothing to void")
        now = ctx.clock()
        approval.check(Action.VOID_SALE, now)
        sale = uow.sales.get(intent.sale_id)
        if sale is None or sale.state not in (SaleState.TENDERING, SaleState.PAID):
            state = sale.state.value if sale is not None else "missing"
            raise VoidRefused(f"sale {intent.sale_id} is {state}: refund instead of voiding")
        details = {**intent.details, "void_approver_id": approval.approver_id}
        return _save(uow, advance(intent, _E.VOID, now, details=details)).intent


def record_void(uow: PaymentUnitOfWork, ctx: Context, ecr_ref: str, verdict: Verdict) -> Recorded:
    """Write a void's answer; when done, void the sale's tender in the same commit.

    Returns:
        The intent (``voided``, ``approved`` again when refused, or still ``voiding``) and sale.
    """
    with uow:
        intent = _get(uow, ecr_ref)
        sale = uow.sales.get(intent.sale_id)
        if intent.state is not IntentState.VOIDING:
            return Recorded(intent, sale)
        now = ctx.clock()
        if verdict.kind is VerdictKind.REFUSED:
            changes = {"error_condition": verdict.condition, "message": verdict.message}
            return _save(uow, advance(intent, _E.VOID_REFUSED, now, **changes), sale)
        if verdict.kind is not VerdictKind.APPROVED:
            details = {**intent.details, "void_error": verdict.condition or "no_answer"}
            again = advance(intent, _E.VOID, now, attempts=intent.attempts + 1, details=details)
            return _save(uow, again, sale)
        data = verdict.acquirer
        details = {**intent.details, "void_rrn": data.rrn if data else None}
        details["void_trace"] = data.trace if data else None
        voided = advance(intent, _E.VOIDED, now, details=details, message=verdict.message)
        if sale is not None and intent.tender_no is not None:
            try:
                sale.void_tender(intent.tender_no)
            except DomainError as error:  # the sale moved on: the money went back regardless
                logger.error(
                    "voided payment %s: tender not voided on the sale (%s)", ecr_ref, error
                )
            else:
                uow.sales.save(sale)
        return _save(uow, voided, sale)
