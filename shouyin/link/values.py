"""Value types shared by the link messages: enums, constrained scalars and small records.

Conventions, all enforced by validation (a peer sending anything else gets a
:class:`~shouyin.link.errors.MessageDecodeError`):

* money is an ``int`` number of fen (分), strictly typed: ``1.0`` or ``"100"`` are refused;
* a card number only ever appears masked: first 6 digits, 1-9 ``*``, last 4 (``622848******1234``);
  a full PAN does not validate anywhere;
* identifiers (``service_id``, ``ecr_ref``, ids of devices) are 1-64 characters of
  ``[A-Za-z0-9._:-]``; free text is bounded (256 characters, a few dozen lines) so a peer cannot
  make us allocate without limit;
* binary values (nonces, PAKE messages, MACs) travel as lowercase hex.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "AcquirerData",
    "AdminAction",
    "Amount",
    "ApprovalCode",
    "AuthCode",
    "Capabilities",
    "CardEntry",
    "DocumentKind",
    "ErrorCondition",
    "FirmwarePackage",
    "Hex",
    "Hex32",
    "Ident",
    "LinkCounters",
    "MaskedPan",
    "NotificationKind",
    "PaperState",
    "PaymentKind",
    "PowerSource",
    "ProgressStage",
    "ReconciliationKind",
    "Result",
    "ReversalReason",
    "TerminalHealth",
    "Text",
    "Totals",
    "TransactionKind",
    "TransactionRecord",
    "TransactionState",
    "Wallet",
    "WireModel",
]


class WireModel(BaseModel):
    """Base of every model on the wire: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# -- constrained scalars -------------------------------------------------------------------------

Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""An identifier: service id, ecr_ref, device or operator id."""
Text = Annotated[str, Field(max_length=256)]
"""Bounded free text (a display line, an error explanation)."""
Amount = Annotated[int, Field(strict=True, gt=0, le=10**10)]
"""A positive amount in fen (at most 100 000 000.00 yuan)."""
Count = Annotated[int, Field(strict=True, ge=0, le=10**12)]
"""A non-negative count or total in fen."""
MaskedPan = Annotated[str, Field(max_length=19, pattern=r"^[0-9]{6}\*{3,9}[0-9]{4}$")]
"""A masked card number: first 6 + ``*`` + last 4, never more."""
AuthCode = Annotated[str, Field(pattern=r"^[0-9]{10,32}$")]
"""The customer's QR/barcode payment code (付款码) scanned by the cashier."""
ApprovalCode = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,6}$")]
"""The acquirer's approval code (授权码) of a card transaction."""
Hex = Annotated[str, Field(min_length=2, max_length=512, pattern=r"^(?:[0-9a-f]{2})+$")]
"""Binary data as lowercase hex."""
Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""32 bytes as lowercase hex (nonces, MACs)."""
Pem = Annotated[str, Field(max_length=8192)]
"""A PEM document (CSR or certificate), bounded."""


# -- enums ---------------------------------------------------------------------------------------


class Result(StrEnum):
    """Outcome of a request, as in nexo."""

    SUCCESS = "success"
    FAILURE = "failure"
    PARTIAL = "partial"


class ErrorCondition(StrEnum):
    """Why a request failed or is only partly done."""

    ABORTED = "aborted"
    BUSY = "busy"
    CANCELLED = "cancelled"
    DECLINED = "declined"
    DEVICE_OUT = "device_out"
    INCOMPATIBLE = "incompatible"
    IN_PROGRESS = "in_progress"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INVALID_CARD = "invalid_card"
    INVALID_CODE = "invalid_code"
    LOGGED_OUT = "logged_out"
    MESSAGE_FORMAT = "message_format"
    NOT_ALLOWED = "not_allowed"
    NOT_FOUND = "not_found"
    NOT_PAIRED = "not_paired"
    PAPER_OUT = "paper_out"
    REFUSAL = "refusal"
    TIMEOUT = "timeout"
    UNAVAILABLE_SERVICE = "unavailable_service"
    UNREACHABLE_HOST = "unreachable_host"
    WRONG_PIN = "wrong_pin"


class PaymentKind(StrEnum):
    """How the customer pays through the terminal."""

    CARD = "card"
    QR_CODE = "qr_code"  # customer shows a 付款码, the cashier scans it
    MERCHANT_QR = "merchant_qr"  # the terminal shows a code, the customer scans it


class Wallet(StrEnum):
    """QR wallets recognised by the acquirer side."""

    WECHAT = "wechat"
    ALIPAY = "alipay"
    UNIONPAY = "unionpay"
    OTHER = "other"


class CardEntry(StrEnum):
    """How the card was read."""

    CHIP = "chip"
    CONTACTLESS = "contactless"
    SWIPE = "swipe"


class ProgressStage(StrEnum):
    """What the terminal is doing during a payment (each one restarts the payment timeout)."""

    INSERT_CARD = "insert_card"
    PRESENT_CARD = "present_card"
    READING_CARD = "reading_card"
    PIN_ENTRY = "pin_entry"
    PROCESSING = "processing"
    CONTACTING_ACQUIRER = "contacting_acquirer"
    WAITING_FOR_CUSTOMER = "waiting_for_customer"  # e.g. QR USERPAYING: password on the phone
    SHOWING_QR = "showing_qr"
    REMOVE_CARD = "remove_card"
    SIGNATURE = "signature"
    PRINTING = "printing"


class NotificationKind(StrEnum):
    """Unsolicited events the terminal reports."""

    PAPER_OUT = "paper_out"
    PAPER_LOW = "paper_low"
    PAPER_OK = "paper_ok"
    LOW_BATTERY = "low_battery"
    ON_BATTERY = "on_battery"
    ON_MAINS = "on_mains"
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"
    MAINTENANCE_REQUIRED = "maintenance_required"
    REBOOTING = "rebooting"
    TAMPER = "tamper"
    FIRMWARE_INSTALLED = "firmware_installed"
    TEST_MODE_STARTED = "test_mode_started"  # answers are test transactions from now on
    TEST_MODE_ENDED = "test_mode_ended"  # by command, after its timeout, or at a restart


class PowerSource(StrEnum):
    """Where the terminal's power comes from."""

    MAINS = "mains"
    BATTERY = "battery"


class PaperState(StrEnum):
    """The terminal printer's paper."""

    OK = "ok"
    LOW = "low"
    OUT = "out"


class ReversalReason(StrEnum):
    """Why a transaction is reversed."""

    UNKNOWN_OUTCOME = "unknown_outcome"  # 冲正: timeout / no answer
    VOID = "void"  # 撤销: cancel an approved payment in the open batch
    CUSTOMER_CANCEL = "customer_cancel"


class ReconciliationKind(StrEnum):
    """Settlement closes the batch; totals only reports it."""

    SETTLEMENT = "settlement"
    TOTALS = "totals"


class AdminAction(StrEnum):
    """Administrative requests to the terminal."""

    FIRMWARE_UPDATE = "firmware_update"
    REBOOT = "reboot"
    SELF_TEST = "self_test"
    TEST_MODE_START = "test_mode_start"  # 测试模式: financial requests go to the test host
    TEST_MODE_END = "test_mode_end"


class DocumentKind(StrEnum):
    """What a print request prints."""

    RECEIPT = "receipt"
    CARD_SLIP = "card_slip"
    REPORT = "report"
    TEST_PAGE = "test_page"


class TransactionKind(StrEnum):
    """Kinds of financial transaction a status query can report."""

    PAYMENT = "payment"
    REFUND = "refund"
    REVERSAL = "reversal"


class TransactionState(StrEnum):
    """Where a transaction stands on the terminal."""

    APPROVED = "approved"
    DECLINED = "declined"
    IN_PROGRESS = "in_progress"
    REVERSED = "reversed"
    VOIDED = "voided"
    FAILED = "failed"


# -- records -------------------------------------------------------------------------------------


class Capabilities(WireModel):
    """What a side can do, exchanged at Login."""

    payment_kinds: tuple[PaymentKind, ...] = ()
    wallets: tuple[Wallet, ...] = ()
    printer: bool = False
    display: bool = False
    max_frame_size: int = Field(strict=True, ge=256, le=1 << 20)
    firmware: Annotated[str, Field(min_length=1, max_length=64)]
    model: Annotated[str, Field(max_length=64)] | None = None


class AcquirerData(WireModel):
    """What the acquirer returned for a card or QR transaction (for the journal and the slip)."""

    rrn: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{12}$")] | None = None
    trace: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None
    batch: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None
    auth_code: ApprovalCode | None = None
    masked_pan: MaskedPan | None = None
    card_brand: Annotated[str, Field(max_length=32)] | None = None
    entry: CardEntry | None = None
    wallet: Wallet | None = None
    wallet_order_id: Annotated[str, Field(max_length=64, pattern=r"^[0-9A-Za-z_\-]+$")] | None = (
        None
    )
    merchant_id: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{15}$")] | None = None
    acquirer_terminal_id: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{8}$")] | None = None
    transaction_time: AwareDatetime | None = None


class LinkCounters(WireModel):
    """Link error counters a terminal reports in its health."""

    crc_errors: Count = 0
    retransmissions: Count = 0
    resyncs: Count = 0
    naks: Count = 0
    security_refusals: Count = 0


class TerminalHealth(WireModel):
    """Health snapshot: power, paper, temperature, firmware and link counters."""

    power: PowerSource | None = None
    battery_percent: int | None = Field(default=None, strict=True, ge=0, le=100)
    paper: PaperState | None = None
    temperature_c: int | None = Field(default=None, strict=True, ge=-60, le=150)
    firmware: Annotated[str, Field(max_length=64)] | None = None
    link: LinkCounters | None = None
    test_mode: bool | None = None  # True while in test mode; left out otherwise


class Totals(WireModel):
    """Batch totals for one payment kind (and wallet) in a reconciliation."""

    kind: PaymentKind
    wallet: Wallet | None = None
    count: Count = 0
    amount: Count = 0
    refund_count: Count = 0
    refund_amount: Count = 0


class TransactionRecord(WireModel):
    """A transaction as the terminal remembers it, returned by a status query."""

    ecr_ref: Ident
    kind: TransactionKind
    state: TransactionState
    amount: Amount
    acquirer: AcquirerData | None = None
    error_condition: ErrorCondition | None = None
    at: AwareDatetime | None = None


class FirmwarePackage(WireModel):
    """A firmware package the terminal should fetch, verify and install to its inactive slot."""

    version: Annotated[str, Field(min_length=1, max_length=64)]
    sha256: Hex32
    size: int = Field(strict=True, gt=0, le=1 << 31)
    url: Annotated[str, Field(max_length=512)] | None = None
