"""The lane's payment journal: one :class:`PaymentIntent` per attempt, and its state machine.

The journal is the lane's source of truth about money that went through the terminal (DESIGN.md
section 5). An intent is written *before* its request is sent, under a fresh ``ecr_ref``
(收银流水号) that the terminal uses as its idempotency key; every later state is written as
soon as it is known. Storage goes through :class:`PaymentIntentRepository`, inside the same unit
of work as the sale, so that "the payment is approved" and "the sale has the tender" commit
together.

States
------
``pending``
    Written durably; the request may not have left yet. After a crash it is treated exactly
    like ``sent`` (the terminal is asked), so nothing depends on the ``sent`` write.
``sent``
    The request was handed to the link (observability only; ``attempts`` counts sends).
``unknown``
    No answer (timeout, lost link, terminal restart) or an answer that is not final
    ("in progress"). Resolved by a status query (payments) or by sending the same refund again
    (refunds, which the terminal and acquirer key by their own number).
``approved``
    Final answer: approved. For a payment, the tender is on the sale (``tender_no``) and the sale
    completed if nothing is left to pay, all in the same commit as this state.
``declined``
    Final answer: refused by the card, wallet or acquirer. Nothing was charged.
``failed``
    Final: it did not happen (not found on the terminal, aborted, busy, never sent...).
``reversing``
    A reversal (冲正) was decided: the outcome stayed unknown past the query window, or the sale
    could not take an approved payment. Durable before the Reversal is sent; retried until the
    terminal acknowledges it. A ``reversing`` intent is never attached to a sale.
``reversed``
    The terminal acknowledged the reversal (or had nothing to reverse). Nothing stands.
``voiding``
    A supervisor approved a void (撤销) of an approved payment; durable before it is sent,
    re-sent until the terminal gives a definite answer.
``voided``
    The terminal voided it; the sale's tender is voided in the same commit.

Events and :data:`TRANSITIONS`
------------------------------
Every state change names an :class:`IntentEvent`; :func:`advance` looks the pair up in
:data:`TRANSITIONS` and refuses anything missing with :class:`IllegalIntentTransition`, before
anything is changed. There is no other way to change an intent's state. Refunds use the first
half of the table only (they are retried with their own number, never reversed or voided).

=================  ===========================================  ===============================
event              from                                         to
=================  ===========================================  ===============================
``send``           pending, sent, unknown                        sent
``lose``           pending, sent, unknown                        unknown
``approve``        pending, sent, unknown                        approved
``decline``        pending, sent, unknown                        declined
``fail``           pending, sent, unknown, reversing             failed
``reverse``        pending, sent, unknown, approved, reversing   reversing
``reversed``       pending, sent, unknown, reversing             reversed
``void``           approved, voiding                             voiding
``voided``         pending, sent, unknown, voiding               voided
``void_refused``   voiding                                       approved
=================  ===========================================  ===============================

(``reversed``/``voided`` from the open states: the status query found the terminal had already
reversed or voided the transaction by itself, e.g. after its own restart.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from shouyin.domain.money import Money
from shouyin.domain.sale_lines import PaymentRef, TenderKind, validate_masked_pan
from shouyin.link.values import Wallet
from shouyin.payments.errors import IllegalIntentTransition
from shouyin.store.uow import AbstractUnitOfWork

__all__ = [
    "OPEN_STATES",
    "RETRY_STATES",
    "SETTLED_STATES",
    "TRANSITIONS",
    "IntentEvent",
    "IntentKind",
    "IntentState",
    "PaymentIntent",
    "PaymentIntentRepository",
    "PaymentUnitOfWork",
    "advance",
    "format_ecr_ref",
]


class IntentKind(StrEnum):
    """What the attempt is."""

    PAYMENT = "payment"  # 消费
    REFUND = "refund"  # 退货 (its ecr_ref is the refund's own number)


class IntentState(StrEnum):
    """Where an attempt stands (see the module docstring)."""

    PENDING = "pending"
    SENT = "sent"
    UNKNOWN = "unknown"
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"
    REVERSING = "reversing"
    REVERSED = "reversed"
    VOIDING = "voiding"
    VOIDED = "voided"


class IntentEvent(StrEnum):
    """What happens to an intent (the table's column keys)."""

    SEND = "send"
    LOSE = "lose"
    APPROVE = "approve"
    DECLINE = "decline"
    FAIL = "fail"
    REVERSE = "reverse"
    REVERSED = "reversed"
    VOID = "void"
    VOIDED = "voided"
    VOID_REFUSED = "void_refused"


_S = IntentState
_E = IntentEvent

OPEN_STATES: Final = frozenset({_S.PENDING, _S.SENT, _S.UNKNOWN})
"""The outcome is not known yet: recovery asks the terminal."""
RETRY_STATES: Final = frozenset({_S.REVERSING, _S.VOIDING})
"""Decided, not yet acknowledged by the terminal: the request is sent again until it is."""
SETTLED_STATES: Final = frozenset(IntentState) - OPEN_STATES - RETRY_STATES
"""Nothing left to do (``approved`` may still be voided later, on request)."""

_OPEN = {_E.SEND: _S.SENT, _E.LOSE: _S.UNKNOWN, _E.APPROVE: _S.APPROVED}
_OPEN |= {_E.DECLINE: _S.DECLINED, _E.FAIL: _S.FAILED, _E.REVERSE: _S.REVERSING}
_OPEN |= {_E.REVERSED: _S.REVERSED, _E.VOIDED: _S.VOIDED}

TRANSITIONS: Final[dict[IntentState, dict[IntentEvent, IntentState]]] = {
    _S.PENDING: dict(_OPEN),
    _S.SENT: dict(_OPEN),
    _S.UNKNOWN: dict(_OPEN),
    _S.APPROVED: {_E.VOID: _S.VOIDING, _E.REVERSE: _S.REVERSING},
    _S.DECLINED: {},
    _S.FAILED: {},
    _S.REVERSING: {_E.REVERSE: _S.REVERSING, _E.REVERSED: _S.REVERSED, _E.FAIL: _S.FAILED},
    _S.REVERSED: {},
    _S.VOIDING: {_E.VOID: _S.VOIDING, _E.VOIDED: _S.VOIDED, _E.VOID_REFUSED: _S.APPROVED},
    _S.VOIDED: {},
}
"""``TRANSITIONS[state][event]`` is the next state; a missing entry is an illegal transition."""

_PAYMENT_ONLY: Final = frozenset({_S.REVERSING, _S.REVERSED, _S.VOIDING, _S.VOIDED})


def format_ecr_ref(lane_id: str, day: date, number: int) -> str:
    """The ecr_ref of the lane's ``number``-th attempt of ``day``: ``L01-20250314-000123``.

    Characters the link does not allow in an identifier are replaced by ``_``.
    """
    lane = "".join(c if c.isascii() and (c.isalnum() or c in "._:-") else "_" for c in lane_id)
    return f"{lane}-{day:%Y%m%d}-{number:06d}"


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    """One payment or refund attempt through the terminal, as the journal keeps it.

    Attributes:
        ecr_ref: the idempotency key (收银流水号), unique; a refund's own refund number.
        kind: payment or refund.
        sale_id: the sale paid (or, for a refund, the sale whose goods come back).
        lane_id: the lane.
        tender_kind: card or QR.
        amount: the amount asked for.
        state: see the module docstring.
        created_at: when the intent was written.
        updated_at: the last change.
        operator_id: the cashier who started it.
        wallet: QR: the wallet recognised from the code, then as the acquirer reported it.
        code_tail: QR: the last 4 digits of the customer's 付款码 (never the whole code).
        original_ecr_ref: refunds: the payment refunded.
        attempts: how many times the request (payment, refund, reversal or void) was sent.
        sent_at: when it was first sent.
        resolved_at: when it reached a settled state.
        tender_no: payments: the sale's tender that holds it, once approved.
        rrn, trace, batch: the acquirer's reference, trace and batch numbers.
        approval_code: the acquirer's approval code (授权码) — not the 付款码.
        masked_pan: first 6 + ``*`` + last 4, never more.
        error_condition: why it failed or stayed unknown (the link's condition, or ``timeout``,
            ``link_lost``...).
        message: the terminal's explanation, or the orchestrator's.
        details: JSON-ready context: a refund's return (items, reason, approval), a void's
            approver.

    Raises:
        CardDataError: from the constructor, for a masked PAN that is not first 6 + last 4.
        ValueError: from the constructor, for a code tail longer than 4 characters, a
            non-positive amount, or a refund in a payment-only state.
    """

    ecr_ref: str
    kind: IntentKind
    sale_id: str
    lane_id: str
    tender_kind: TenderKind
    amount: Money
    state: IntentState
    created_at: datetime
    updated_at: datetime
    operator_id: str | None = None
    wallet: Wallet | None = None
    code_tail: str | None = None
    original_ecr_ref: str | None = None
    attempts: int = 0
    sent_at: datetime | None = None
    resolved_at: datetime | None = None
    tender_no: int | None = None
    rrn: str | None = None
    trace: str | None = None
    batch: str | None = None
    approval_code: str | None = None
    masked_pan: str | None = None
    error_condition: str | None = None
    message: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.amount.fen <= 0:
            raise ValueError(f"intent {self.ecr_ref}: amount must be positive")
        if not self.tender_kind.electronic:
            raise ValueError(f"intent {self.ecr_ref}: cash never goes through the terminal")
        if self.code_tail is not None and len(self.code_tail) > 4:
            raise ValueError("keep at most the last 4 digits of a payment code")
        if self.masked_pan is not None:
            validate_masked_pan(self.masked_pan)
        if self.kind is IntentKind.REFUND and self.state in _PAYMENT_ONLY:
            raise ValueError(f"refund {self.ecr_ref} cannot be {self.state}")

    @property
    def is_open(self) -> bool:
        """The outcome is not known yet."""
        return self.state in OPEN_STATES

    @property
    def settled(self) -> bool:
        """Nothing is left to do for recovery."""
        return self.state in SETTLED_STATES

    def payment_ref(self) -> PaymentRef:
        """The sale tender's (or refund tender's) reference to this attempt.

        Raises:
            TenderError, CardDataError: if a reference is too long or malformed.
        """
        return PaymentRef(
            ecr_ref=self.ecr_ref,
            rrn=self.rrn,
            trace=self.trace,
            batch=self.batch,
            auth_code=self.approval_code,
            masked_pan=self.masked_pan,
            wallet=self.wallet.value if self.wallet is not None else None,
        )


def advance(
    intent: PaymentIntent, event: IntentEvent, now: datetime, **changes: Any
) -> PaymentIntent:
    """The intent after ``event`` at ``now``, with ``changes`` applied (the only state changer).

    ``send`` counts an attempt (and sets ``sent_at`` the first time); a reversal or void sent
    again passes ``attempts`` itself. Reaching a settled state sets ``resolved_at``.

    Raises:
        IllegalIntentTransition: if :data:`TRANSITIONS` has no such entry.
    """
    new_state = TRANSITIONS[intent.state].get(event)
    if new_state is None:
        raise IllegalIntentTransition(intent.ecr_ref, intent.state.value, event.value)
    if event is IntentEvent.SEND:
        changes.setdefault("attempts", intent.attempts + 1)
        if intent.sent_at is None:
            changes.setdefault("sent_at", now)
    if new_state in SETTLED_STATES:
        changes.setdefault("resolved_at", now)
    return replace(intent, state=new_state, updated_at=now, **changes)


class PaymentIntentRepository(Protocol):
    """The journal's storage (SQL: :mod:`shouyin.store.payment_repo`; fake in
    :mod:`shouyin.payments.fakes`). Reads return copies; writes are visible to others only when
    the unit of work commits."""

    def add(self, intent: PaymentIntent) -> None:
        """Insert a new intent.

        Raises:
            Conflict: if its ``ecr_ref`` is taken.
        """
        ...

    def save(self, intent: PaymentIntent) -> None:
        """Write back a changed intent.

        Raises:
            LookupError: if it was never added.
        """
        ...

    def get(self, ecr_ref: str) -> PaymentIntent | None:
        """The intent with this ``ecr_ref``, or None."""
        ...

    def for_sale(self, sale_id: str) -> list[PaymentIntent]:
        """Every intent of a sale (payments and refunds), oldest first."""
        ...

    def unsettled(self, lane_id: str) -> list[PaymentIntent]:
        """The lane's intents in an open or retry state, oldest first (recovery's work list)."""
        ...

    def next_ecr_ref(self, lane_id: str, day: date) -> str:
        """A fresh ecr_ref for the lane's next attempt of ``day`` (:func:`format_ecr_ref`)."""
        ...


class PaymentUnitOfWork(AbstractUnitOfWork, Protocol):
    """A lane unit of work that also holds the payment journal (in the same transaction)."""

    @property
    def payments(self) -> PaymentIntentRepository:
        """The payment journal."""
        ...
