"""Refunds (退货) to a card or QR payment: the journal writes on either side of the terminal.

A refund is checked completely before anything is sent: :func:`open_refund` builds the very
:class:`~shouyin.domain.returns.Return` it would record (supervisor approval, quantities left to
return, the original payment still live and not over-refunded) and only then writes the refund's
intent, under its own new ``ecr_ref`` (the refund number). Everything needed to record the return
later — return id, items, reason, approver, shift — is kept in the intent's ``details``, so that
a refund answered after a crash is recorded exactly as it was asked.

When the terminal approves, :func:`record_refund` writes the ``Return`` (with the refund's
references on its tender), its outbox message and the intent's ``approved`` state in one commit.
A refund without a final answer is sent again with the same number: the terminal and the
acquirer key refunds by it, so a repeat is answered from their records, never paid twice.

Card/QR refunds move no cash, so they are not entered in the shift's drawer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from shouyin.domain.carddata import scrub
from shouyin.domain.errors import DomainError
from shouyin.domain.money import total
from shouyin.domain.returns import RefundTender, Return, ReturnItem
from shouyin.domain.sale_lines import PaymentRef
from shouyin.domain.sale_view import SaleView
from shouyin.domain.users import Action, Approval, Role, User
from shouyin.lane.services import Context, UnknownSale, current_shift
from shouyin.payments.errors import RefundRefused, UnknownIntent
from shouyin.payments.journal import (
    IntentEvent,
    IntentKind,
    IntentState,
    PaymentIntent,
    PaymentUnitOfWork,
    advance,
)
from shouyin.payments.recording import Recorded, mark_unknown, result_fields
from shouyin.payments.verdicts import Verdict, VerdictKind

__all__ = ["open_refund", "record_refund"]

logger = logging.getLogger(__name__)


def _return_from(
    intent: PaymentIntent, ref: PaymentRef, sale: SaleView | None, prior: Sequence[Return]
) -> Return:
    """The Return an intent's details describe (``now`` is when it was approved and asked).

    Raises:
        UnknownSale, RefundRefused, ReturnError, PermissionDenied: the return is refused.
    """
    if sale is None:
        raise UnknownSale(f"no sale {intent.sale_id}")
    details = intent.details
    approval = Approval(
        details["approver_id"],
        Role(details["approver_role"]),
        Action.REFUND,
        datetime.fromisoformat(details["approved_at"]),
    )
    if intent.original_ecr_ref is None:  # open_refund always sets it
        raise RefundRefused(f"refund {intent.ecr_ref} names no original payment")
    return Return.create(
        return_id=details["return_id"],
        sale=sale,
        items=[ReturnItem(line_no, quantity) for line_no, quantity in details["items"]],
        tenders=[RefundTender(intent.tender_kind, intent.amount, ref, intent.original_ecr_ref)],
        approval=approval,
        lane_id=intent.lane_id,
        shift_id=details["shift_id"],
        cashier_id=details["cashier_id"],
        reason=details["reason"],
        now=intent.created_at,
        prior_returns=prior,
    )


def open_refund(
    uow: PaymentUnitOfWork,
    ctx: Context,
    *,
    sale_id: str,
    original_ecr_ref: str,
    items: Sequence[ReturnItem],
    approval: Approval,
    reason: str,
    cashier: User,
) -> PaymentIntent:
    """Check a refund of ``items`` to the payment ``original_ecr_ref`` and write its intent.

    Raises:
        UnknownSale: no such sale.
        RefundRefused: the original is not an approved card/QR payment of this sale.
        ReturnError, PermissionDenied, ShiftError: the domain refuses the return (nothing to
            return, over-refund, stale approval, no open shift...).
    """
    with uow:
        sale = uow.sales.get(sale_id)
        if sale is None:
            raise UnknownSale(f"no sale {sale_id}")
        original = uow.payments.get(original_ecr_ref)
        if (
            original is None
            or original.kind is not IntentKind.PAYMENT
            or original.sale_id != sale_id
            or original.state is not IntentState.APPROVED
        ):
            raise RefundRefused(f"{original_ecr_ref} is no approved payment of sale {sale_id}")
        shift = current_shift(uow, ctx)
        prior = uow.returns.for_sale(sale_id)
        lines = Return.refund_for(sale, items, prior)
        amount = total([line.amount for line in lines])
        now = ctx.clock()
        ecr_ref = uow.payments.next_ecr_ref(ctx.lane_id, now.astimezone(ctx.tz).date())
        details: dict[str, Any] = {
            "return_id": ctx.new_id(),
            "items": [[item.line_no, item.quantity] for item in items],
            "reason": scrub(reason),
            "approver_id": approval.approver_id,
            "approver_role": approval.approver_role.value,
            "approved_at": approval.approved_at.isoformat(),
            "cashier_id": cashier.user_id,
            "shift_id": shift.shift_id,
        }
        intent = PaymentIntent(
            ecr_ref=ecr_ref,
            kind=IntentKind.REFUND,
            sale_id=sale_id,
            lane_id=ctx.lane_id,
            tender_kind=original.tender_kind,
            amount=amount,
            state=IntentState.PENDING,
            created_at=now,
            updated_at=now,
            operator_id=cashier.user_id,
            wallet=original.wallet,
            original_ecr_ref=original_ecr_ref,
            details=details,
        )
        # Every rule of the return is checked now, before anything goes to the terminal.
        _return_from(intent, PaymentRef(ecr_ref), sale, prior)
        uow.payments.add(intent)
        uow.commit()
        logger.info("refund %s pending: %s against %s", ecr_ref, amount, original_ecr_ref)
        return intent


def record_refund(uow: PaymentUnitOfWork, ctx: Context, ecr_ref: str, verdict: Verdict) -> Recorded:
    """Write a refund's answer; when approved, record the Return in the same commit.

    Returns:
        The intent (``approved``, ``declined``, ``failed`` or ``unknown``) and the sale.
    """
    if not verdict.final:
        return Recorded(mark_unknown(uow, ctx, ecr_ref, verdict.condition, verdict.message or ""))
    with uow:
        intent = uow.payments.get(ecr_ref)
        if intent is None or intent.kind is not IntentKind.REFUND:
            raise UnknownIntent(f"no refund {ecr_ref}")
        sale = uow.sales.get(intent.sale_id)
        if not intent.is_open:
            return Recorded(intent, sale)
        now = ctx.clock()
        fields = result_fields(intent, verdict)
        if verdict.kind is not VerdictKind.APPROVED:
            event = (
                IntentEvent.DECLINE if verdict.kind is VerdictKind.DECLINED else IntentEvent.FAIL
            )
            intent = advance(intent, event, now, **fields)
        else:
            intent = advance(intent, IntentEvent.APPROVE, now, **fields)
            try:
                ret = _return_from(
                    intent, intent.payment_ref(), sale, uow.returns.for_sale(intent.sale_id)
                )
            except (DomainError, RefundRefused) as error:
                # The money went back: keep the approval, and say the return needs a look.
                logger.error("refund %s approved but its return was refused: %s", ecr_ref, error)
                message = scrub(f"退款已完成，但退货单未能入账，请管理员核对：{error}")[:200]
                intent = replace(intent, error_condition="return_refused", message=message)
            else:
                uow.returns.add(ret)
                uow.outbox.add(
                    "return.created", {"return_id": ret.return_id, "sale_id": ret.sale_id}
                )
        uow.payments.save(intent)
        uow.commit()
        logger.info("refund %s %s", ecr_ref, intent.state.value)
        return Recorded(intent, sale)
