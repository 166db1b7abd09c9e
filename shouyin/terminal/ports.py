"""The terminal's edges: its clock, its card/QR reader and its acquirer host, as Protocols.

The application core (:mod:`shouyin.terminal.app`) reaches the outside world only through
these small interfaces, so that tests run it against in-memory twins and the process wrapper
(:mod:`shouyin.terminal.sim`) plugs in the real ones:

* :class:`Clock`: the wall-clock time (aware) for journal entries and slips. Delays and
  timeouts use the event loop's clock (``asyncio.sleep``), which tests replace with a
  virtual-time loop;
* :class:`CardReader`: presents a card (:class:`CardData`), takes the PIN and the signature;
* :class:`AcquirerPort`: the ISO 8583 host (0200 sale, 0400 reversal, 0500 settlement, ...),
  with requests and answers as plain dataclasses. Every method raises
  :class:`~shouyin.terminal.errors.AcquirerNoAnswer` when the host does not answer in time and
  :class:`~shouyin.terminal.errors.AcquirerUnavailable` when it cannot be reached at all.

Card data rule: a full card number lives only in a :class:`CardData` in memory, on its way from
the reader to the acquirer, and the PIN only in a :class:`PinEntry` and the :class:`SaleAuth`.
Their ``repr`` shows the masked number and no PIN; nothing stores or logs either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Protocol

from shouyin.domain.carddata import mask_pan
from shouyin.link.values import CardEntry, PaymentKind, Totals, Wallet

__all__ = [
    "CHINA_TZ",
    "AcquirerPort",
    "CardData",
    "CardPrompt",
    "CardReader",
    "Clock",
    "Cvm",
    "HostReply",
    "PinEntry",
    "QrStatus",
    "QueryAuth",
    "RefundAuth",
    "ReversalAuth",
    "SaleAuth",
    "SettleAuth",
    "Signature",
    "SystemClock",
    "VoidAuth",
    "mask_pan",
]

CHINA_TZ = timezone(timedelta(hours=8), "CST")
"""China Standard Time, in which slips show date and time."""

# -- clock -----------------------------------------------------------------------------------------


class Clock(Protocol):
    """Where the terminal gets the date and time (aware datetimes)."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


# -- card reader -----------------------------------------------------------------------------------


class Cvm(StrEnum):
    """How the card wants the cardholder verified (its CVM list, simplified)."""

    ONLINE_PIN = "online_pin"
    SIGNATURE = "signature"
    NO_CVM = "no_cvm"


@dataclass(frozen=True, slots=True, repr=False)
class CardData:
    """A card as read from the chip, stripe or contactless field. In memory only.

    Attributes:
        pan: the full card number (never stored, never logged: use :attr:`masked_pan`).
        expiry: ``YYMM``.
        entry: how it was read.
        cvm: how the cardholder is verified.
        brand: card scheme or issuer name for the slip.
        service_code: the track-2 service code.
    """

    pan: str
    expiry: str
    entry: CardEntry
    cvm: Cvm = Cvm.ONLINE_PIN
    brand: str = "UnionPay"
    service_code: str = "220"

    @property
    def masked_pan(self) -> str:
        """First 6 + ``*`` + last 4."""
        return mask_pan(self.pan)

    def track2(self) -> str:
        """The track-2 equivalent data the acquirer receives (built on demand, never kept)."""
        return f"{self.pan}={self.expiry}{self.service_code}0000000000"

    def __repr__(self) -> str:
        return f"CardData({self.masked_pan}, {self.entry.value}, {self.brand})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class CardPrompt:
    """What the reader is asked for: this amount, for this cashier transaction."""

    amount: int
    ecr_ref: str


@dataclass(frozen=True, slots=True, repr=False)
class PinEntry:
    """The outcome of PIN entry: the PIN, or ``None`` when the customer cancelled.

    The PIN stays in memory on its way to the acquirer port, which encrypts it into the PIN
    block under the PIN key of its sign-in (as a PIN pad's secure module would); it is never
    stored, logged or shown (``repr`` hides it).
    """

    pin: str | None

    def __repr__(self) -> str:
        return "PinEntry(entered)" if self.pin is not None else "PinEntry(cancelled)"


@dataclass(frozen=True, slots=True)
class Signature:
    """The cardholder's signature: pen strokes on a ``width`` x ``height`` pad."""

    strokes: tuple[tuple[tuple[int, int], ...], ...]
    width: int = 240
    height: int = 80


class CardReader(Protocol):
    """The terminal's card reader, PIN pad and signature pad (or a rules-driven twin)."""

    async def read_card(self, prompt: CardPrompt) -> CardData | None:
        """Wait for a card to be swiped, inserted or tapped; ``None`` if none comes."""
        ...

    async def enter_pin(self, card: CardData, prompt: CardPrompt) -> PinEntry:
        """Let the cardholder enter the PIN."""
        ...

    async def capture_signature(self, card: CardData, prompt: CardPrompt) -> Signature | None:
        """Let the cardholder sign on the screen; ``None`` if they refuse."""
        ...


# -- acquirer host ---------------------------------------------------------------------------------


class QrStatus(StrEnum):
    """A wallet order's state, as the wallets name them."""

    SUCCESS = "SUCCESS"
    USERPAYING = "USERPAYING"  # the customer is entering a password on the phone
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"
    PAYERROR = "PAYERROR"
    REFUND = "REFUND"
    SYSTEMERROR = "SYSTEMERROR"  # unknown: query again


@dataclass(frozen=True, slots=True)
class HostReply:
    """The acquirer's answer.

    Attributes:
        code: the ISO 8583 response code (field 39): ``00`` approved, ``05`` declined, ``51``
            insufficient funds, ``54`` expired card, ``55`` wrong PIN, ``14`` invalid card,
            ``25`` original not found, ``96`` system error...
        rrn: retrieval reference number (field 37), 12 characters.
        auth_code: approval code (field 38).
        qr_status: the wallet order state (QR payments, queries and revokes).
        wallet: the wallet that took a QR payment.
        wallet_order_id: the wallet's own order number.
        qr_payload: the code to show for a merchant-presented QR payment.
        retry: a revoke/cancel the wallet asks to repeat.
        message: free text from the host.
    """

    code: str
    rrn: str | None = None
    auth_code: str | None = None
    qr_status: QrStatus | None = None
    wallet: Wallet | None = None
    wallet_order_id: str | None = None
    qr_payload: str | None = None
    retry: bool = False
    message: str | None = None

    @property
    def approved(self) -> bool:
        """Response code ``00``."""
        return self.code == "00"


@dataclass(frozen=True, slots=True)
class SaleAuth:
    """0200 sale: a card (with PIN block) or a scanned customer code (付款码).

    ``order_id`` is the terminal's unique order number (terminal, batch and trace), the key of
    QR queries and revokes.
    """

    trace: str
    batch: str
    amount: int
    at: datetime
    order_id: str
    kind: PaymentKind
    card: CardData | None = None
    pin: str | None = field(default=None, repr=False)
    auth_code: str | None = None
    wallet: Wallet | None = None


@dataclass(frozen=True, slots=True)
class ReversalAuth:
    """0400 reversal of an unanswered transaction, named by its trace (and order for QR).

    It carries no card number: the host finds the original by terminal, batch and trace.
    """

    original_trace: str
    batch: str
    amount: int
    original_kind: str  # "sale", "void" or "refund"
    order_id: str | None = None
    payment_kind: PaymentKind = PaymentKind.CARD


@dataclass(frozen=True, slots=True)
class VoidAuth:
    """撤销: cancel an approved sale of the open batch."""

    trace: str
    batch: str
    amount: int
    original_trace: str
    original_rrn: str | None
    original_auth_code: str | None
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class RefundAuth:
    """退货: ``refund_no`` is the refund's own number, the same on every retry."""

    trace: str
    batch: str
    amount: int
    refund_no: str
    original_rrn: str | None
    original_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueryAuth:
    """Ask for the state of a QR order."""

    trace: str
    batch: str
    order_id: str


@dataclass(frozen=True, slots=True)
class SettleAuth:
    """0500 settlement: the batch and the terminal's totals."""

    batch: str
    totals: tuple[Totals, ...]
    at: datetime


class AcquirerPort(Protocol):
    """The acquirer host as the terminal sees it. Every method raises
    :class:`~shouyin.terminal.errors.AcquirerNoAnswer` when the request may have been sent but no
    answer came, :class:`~shouyin.terminal.errors.AcquirerUnavailable` when nothing was sent."""

    async def sign_in(self) -> HostReply:
        """0800 sign-in (签到 towards the host)."""
        ...

    async def echo(self) -> HostReply:
        """0800 echo test."""
        ...

    async def sale(self, auth: SaleAuth) -> HostReply:
        """0200 sale, card or QR micropay."""
        ...

    async def precreate(self, auth: SaleAuth) -> HostReply:
        """Create a merchant-presented QR order; the reply carries ``qr_payload``."""
        ...

    async def query(self, auth: QueryAuth) -> HostReply:
        """State of a QR order."""
        ...

    async def reverse(self, auth: ReversalAuth) -> HostReply:
        """0400 reversal (and QR revoke/cancel)."""
        ...

    async def void(self, auth: VoidAuth) -> HostReply:
        """撤销 of an approved sale in the open batch."""
        ...

    async def refund(self, auth: RefundAuth) -> HostReply:
        """退货."""
        ...

    async def settle(self, auth: SettleAuth) -> HostReply:
        """0500 settlement; ``00`` when the host's totals agree."""
        ...
