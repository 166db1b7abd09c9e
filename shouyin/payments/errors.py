"""Typed errors of the payment orchestration.

Every error raised by :mod:`shouyin.payments` derives from :class:`PaymentError`. They are raised
*before* anything is sent to the terminal (the cashier asked for something that cannot be done),
so none of them leaves a payment half done: an outcome that is merely bad news (declined,
reversed...) is a :class:`~shouyin.payments.orchestrator.PaymentOutcome`, never an exception.
Messages never contain a payment code (付款码) or a card number.
"""

from __future__ import annotations

__all__ = [
    "AmountRefused",
    "IllegalIntentTransition",
    "PaymentError",
    "PaymentInProgress",
    "RecoveryPending",
    "RefundRefused",
    "SaleNotPayable",
    "TerminalInTestMode",
    "UnknownIntent",
    "UnrecognisedPaymentCode",
    "VoidRefused",
]


class PaymentError(Exception):
    """Root of every error raised by :mod:`shouyin.payments`."""


class UnrecognisedPaymentCode(PaymentError, ValueError):
    """A scanned 付款码 matches no wallet rule (or is not a payment code at all).

    Attributes:
        tail: the code's last four characters, for the cashier (never the whole code).
    """

    def __init__(self, tail: str) -> None:
        super().__init__(f"unrecognised payment code (…{tail})")
        self.tail = tail


class AmountRefused(PaymentError, ValueError):
    """The amount is not positive, or more than the sale still owes; nothing was sent.

    Attributes:
        amount: asked for, in fen.
        remaining: what the sale still owes, in fen.
    """

    def __init__(self, amount: int, remaining: int, reason: str) -> None:
        super().__init__(reason)
        self.amount = amount
        self.remaining = remaining


class SaleNotPayable(PaymentError):
    """The sale takes no payment now (missing, held, completed, voided, or nothing scanned)."""


class PaymentInProgress(PaymentError):
    """The sale already has a terminal payment (or void) whose outcome is not settled yet."""


class TerminalInTestMode(PaymentError):
    """The terminal reports test mode (测试模式): its answers would move no money."""


class RecoveryPending(PaymentError):
    """The lane has not resolved its journal since start-up: run ``recover_all()`` first."""


class UnknownIntent(PaymentError, LookupError):
    """No journal entry with that ``ecr_ref`` (or not one of the kind the operation needs)."""


class VoidRefused(PaymentError):
    """The payment cannot be voided (not approved, sale already completed, wrong approval...)."""


class RefundRefused(PaymentError):
    """The refund cannot be made (sale not completed, original not a live card/QR payment...)."""


class IllegalIntentTransition(PaymentError):
    """The journal's transition table has no entry for this event in the intent's state.

    Attributes:
        state: the intent's state.
        event: what was attempted.
    """

    def __init__(self, ecr_ref: str, state: str, event: str) -> None:
        super().__init__(f"intent {ecr_ref}: cannot {event} when {state}")
        self.state = state
        self.event = event
