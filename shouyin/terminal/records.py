"""What the terminal remembers: journal entries, pending reversals, its configuration.

Pydantic models, so that :mod:`shouyin.terminal.state` stores them as JSON and tests compare
them as values. None of them can hold a full card number: card numbers appear only as
:data:`~shouyin.link.values.MaskedPan` inside :class:`~shouyin.link.values.AcquirerData`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shouyin.link.values import (
    AcquirerData,
    ErrorCondition,
    PaymentKind,
    TransactionKind,
    TransactionRecord,
    TransactionState,
    Wallet,
)

__all__ = [
    "FirmwareSlots",
    "JournalEntry",
    "PendingReversal",
    "Stage",
    "TerminalConfig",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stage(StrEnum):
    """How far a transaction got towards the acquirer (decides recovery after a restart)."""

    INTENT = "intent"  # recorded; nothing sent to the acquirer yet
    SENT = "sent"  # sent to the acquirer; no answer recorded: outcome unknown
    DONE = "done"  # the outcome is known and recorded


class TerminalConfig(_Model):
    """The terminal's identity and tunables, kept in its state directory.

    Attributes:
        terminal_id: the identity on the link (Login, pairing, certificate).
        merchant_name: printed on slips.
        merchant_id: the 15-character merchant number (商户编号).
        acquirer_terminal_id: the 8-character terminal number at the acquirer (终端编号).
        operator: the operator number printed on slips (操作员).
        no_cvm_limit: contactless sales up to this amount (fen) need neither PIN nor signature
            (小额免密免签).
        acquirer_timeout: seconds to wait for each acquirer answer.
        progress_interval: while waiting, report "processing" this often (keeps the cashier
            system's payment timeout from firing).
        card_timeout: seconds to wait for a card.
        qr_poll_interval: seconds between QR order queries (3-5 s per the wallets).
        qr_poll_limit: stop querying this long after the order was created (45 s).
        qr_revoke_min_age: never revoke earlier than this after creation (WeChat: 15 s).
        qr_revoke_tries: how often a revoke answered "retry" is repeated.
        journal_keep: transactions kept for status queries (at least 1,000).
        reversal_retry: seconds between reversal attempts towards the acquirer.
        printer: whether the terminal prints slips itself.
        test_mode_timeout: seconds test mode lasts unless a ``test_mode_start`` says otherwise.
    """

    terminal_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:\-]{1,64}$")] = "T0001"
    merchant_name: Annotated[str, Field(max_length=64)] = "收银示范超市"
    merchant_id: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{15}$")] = "898310048160001"
    acquirer_terminal_id: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{8}$")] = "10000001"
    operator: Annotated[str, Field(max_length=16)] = "01"
    no_cvm_limit: int = 100_000
    acquirer_timeout: float = 30.0
    progress_interval: float = 10.0
    card_timeout: float = 60.0
    qr_poll_interval: float = 4.0
    qr_poll_limit: float = 45.0
    qr_revoke_min_age: float = 15.0
    qr_revoke_tries: int = 5
    journal_keep: int = Field(default=2000, ge=1000)
    reversal_retry: float = 10.0
    printer: bool = True
    test_mode_timeout: float = Field(default=600.0, gt=0, le=3600)


class FirmwareSlots(_Model):
    """The A/B firmware slots: which one runs, what each holds, and where an update stands.

    The record is what the boot loader reads: it is saved (one SQLite commit, so atomically) at
    every step of an update, and :meth:`recovered` says what to boot after a power cut. The
    steps: :meth:`begin_install` (the inactive slot is being overwritten: not bootable),
    :meth:`installed` (the new slot is booted on trial), then :meth:`confirmed` when its
    self-test passes or :meth:`rolled_back` when it fails.

    Attributes:
        active: the slot that boots (``A`` or ``B``).
        a: the version in slot A (``None``: no bootable image).
        b: the version in slot B.
        installing: the version being written to the inactive slot.
        trial: the active slot was just installed and has not passed its self-test yet.
        digest: (on trial) the SHA-256 the installed image must have.
        failed: the last version that failed its self-test or was interrupted, if any.
    """

    active: str = "A"
    a: str | None = "SIM-1.0.0"
    b: str | None = None
    installing: str | None = None
    trial: bool = False
    digest: str | None = None
    failed: str | None = None

    @property
    def running(self) -> str:
        """The version in the active slot."""
        return (self.a if self.active == "A" else self.b) or "-"

    @property
    def inactive(self) -> str:
        """The name of the other slot."""
        return "B" if self.active == "A" else "A"

    def holding(self, slot: str, version: str | None) -> Self:
        """``slot`` (``A`` or ``B``) now holds ``version``."""
        return self.model_copy(update={slot.lower(): version})

    def install(self, version: str) -> Self:
        """``version`` written to the inactive slot."""
        return self.holding(self.inactive, version)

    def switch(self) -> Self:
        """Boot the inactive slot from now on."""
        return self.model_copy(update={"active": self.inactive})

    def begin_install(self, version: str) -> Self:
        """The inactive slot is about to be overwritten with ``version``: not bootable now."""
        return self.holding(self.inactive, None).model_copy(update={"installing": version})

    def installed(self, version: str, digest: str) -> Self:
        """``version`` is written to the inactive slot, which now boots on trial."""
        slots = self.holding(self.inactive, version).switch()
        return slots.model_copy(update={"installing": None, "trial": True, "digest": digest})

    def confirmed(self) -> Self:
        """The trial slot passed its self-test: it stays."""
        return self.model_copy(update={"trial": False, "digest": None, "failed": None})

    def rolled_back(self) -> Self:
        """The trial slot failed: boot the previous slot again and mark the new one unusable."""
        failed = self.running
        slots = self.holding(self.active, None).switch()
        return slots.model_copy(update={"trial": False, "digest": None, "failed": failed})

    def recovered(self) -> Self:
        """What to boot after a restart: an interrupted install or trial falls back."""
        if self.installing is not None:
            return self.model_copy(update={"installing": None, "failed": self.installing})
        if self.trial:
            return self.rolled_back()
        return self


class JournalEntry(_Model):
    """One cashier transaction (by ``ecr_ref``) as the terminal remembers it.

    Attributes:
        ecr_ref: the cashier system's id of the attempt: the idempotency key.
        kind: payment or refund.
        state: approved, declined, in progress, reversed, voided, failed.
        stage: how far it got towards the acquirer.
        amount: fen.
        payment_kind: card, QR or merchant QR.
        batch: the batch it belongs to.
        trace: its trace number at the acquirer, once one was taken.
        order_id: the terminal's order number (QR queries and revokes).
        wallet: the wallet of a QR payment.
        acquirer: the acquirer data (masked card only).
        error_condition: why it failed.
        message: the explanation shown to the cashier.
        original_ecr_ref: (refunds) the payment refunded.
        refunded: (payments) the amount refunded so far.
        void_trace: (voided payments) the trace of the void.
        created: when the request arrived.
        updated: last change.
    """

    ecr_ref: str
    kind: TransactionKind
    state: TransactionState
    stage: Stage
    amount: int
    payment_kind: PaymentKind
    batch: str
    trace: str | None = None
    order_id: str | None = None
    wallet: Wallet | None = None
    acquirer: AcquirerData | None = None
    error_condition: ErrorCondition | None = None
    message: str | None = None
    original_ecr_ref: str | None = None
    refunded: int = 0
    void_trace: str | None = None
    created: AwareDatetime
    updated: AwareDatetime

    def record(self) -> TransactionRecord:
        """The entry as a status query reports it."""
        return TransactionRecord(
            ecr_ref=self.ecr_ref,
            kind=self.kind,
            state=self.state,
            amount=self.amount,
            acquirer=self.acquirer,
            error_condition=self.error_condition,
            at=self.updated,
        )

    def changed(self, now: datetime, **changes: object) -> Self:
        """A copy with ``changes`` applied and ``updated`` set to ``now``."""
        return self.model_copy(update={**changes, "updated": now})


class PendingReversal(_Model):
    """A reversal (冲正) the acquirer has not acknowledged yet; retried until it is.

    Attributes:
        id: store key.
        ecr_ref: the cashier transaction concerned.
        original_trace: trace of the unanswered transaction.
        batch: its batch.
        amount: its amount (fen).
        original_kind: ``sale``, ``void`` or ``refund``.
        order_id: the QR order to revoke, if any.
        payment_kind: how the original was paid (card, QR, merchant QR).
        armed: due for sending. A reversal is stored *before* its original is sent (as real
            terminals set their reversal flag) and armed only when no answer came, or after a
            restart; a definite answer deletes it unsent.
        attempts: sent so far without an answer.
        created: when it was queued.
    """

    id: int | None = None
    ecr_ref: str
    original_trace: str
    batch: str
    amount: int
    original_kind: str
    order_id: str | None = None
    payment_kind: PaymentKind = PaymentKind.CARD
    armed: bool = False
    attempts: int = 0
    created: AwareDatetime
