"""The parts of a sale: lines and tenders, as immutable records.

A :class:`SaleLine` snapshots what the product was when it was scanned (price, tax rate, category),
so that later catalogue changes never alter a sale. Lines are never deleted: removing one marks it
``voided`` and keeps it for the audit trail. Tenders are likewise marked ``voided``, never deleted.

Card data rule (PCI DSS 3.4): a card tender may carry the card number only masked as the first six
and last four digits with ``*`` in between (``622848******1234``). Anything else, a full PAN above
all, is refused with :class:`CardDataError`, whose message never repeats the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from shouyin.domain.errors import CardDataError, InvalidAmount, TenderError
from shouyin.domain.money import Money
from shouyin.domain.pricing import PricingLine
from shouyin.domain.product import Unit
from shouyin.domain.promotions import ManualDiscount

__all__ = [
    "MAX_GRAMS",
    "MAX_QUANTITY",
    "PaymentRef",
    "SaleLine",
    "Tender",
    "TenderKind",
    "validate_masked_pan",
]

MAX_QUANTITY: Final = 9_999  # pieces on one line; more is a keying error
MAX_GRAMS: Final = 99_999  # five weight digits in a scale barcode
MAX_REF_LENGTH: Final = 64

# First 6 + 3..9 stars + last 4: PANs are 13 to 19 digits long.
_MASKED_PAN: Final = re.compile(r"^\d{6}\*{3,9}\d{4}$")
_DIGITS_ONLY: Final = re.compile(r"^[\d\s-]+$")


def validate_masked_pan(masked_pan: str) -> str:
    """Return ``masked_pan`` if it is first 6 + ``*`` + last 4 digits.

    Raises:
        CardDataError: for a full card number or any other shape (the value is not echoed).
    """
    if _MASKED_PAN.fullmatch(masked_pan):
        return masked_pan
    if _DIGITS_ONLY.fullmatch(masked_pan):
        raise CardDataError("a full card number was offered; only first 6 + last 4 may be kept")
    raise CardDataError("masked_pan must be first 6 digits, '*' characters, last 4 digits")


class TenderKind(StrEnum):
    """How the customer pays."""

    CASH = "cash"
    CARD = "card"
    QR = "qr"

    @property
    def electronic(self) -> bool:
        """True for card and QR: paid through the terminal, never over the amount due."""
        return self is not TenderKind.CASH


@dataclass(frozen=True, slots=True)
class PaymentRef:
    """The terminal's record of a card/QR payment (or refund).

    Attributes:
        ecr_ref: the cashier system's id of the payment attempt (收银流水号), the idempotency key.
        rrn: acquirer reference number (参考号).
        trace: terminal trace number (凭证号).
        batch: terminal batch number (批次号).
        auth_code: the acquirer's approval code (授权码) — not the customer's 付款码, never kept.
        masked_pan: first 6 + ``*`` + last 4 (卡号), card payments only.
        wallet: wallet name for QR payments (``wechat``, ``alipay``, ``unionpay``...).
    """

    ecr_ref: str
    rrn: str | None = None
    trace: str | None = None
    batch: str | None = None
    auth_code: str | None = None
    masked_pan: str | None = None
    wallet: str | None = None

    def __post_init__(self) -> None:
        if not self.ecr_ref.strip():
            raise TenderError("a card/QR tender needs its ecr_ref")
        for name in ("ecr_ref", "rrn", "trace", "batch", "auth_code", "wallet"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_REF_LENGTH:
                raise TenderError(f"{name} longer than {MAX_REF_LENGTH} characters")
        if self.masked_pan is not None:
            validate_masked_pan(self.masked_pan)


@dataclass(frozen=True, slots=True)
class Tender:
    """One payment towards a sale.

    Attributes:
        tender_no: number within the sale, from 1, never reused.
        kind: cash, card or QR.
        amount: for cash, what the customer handed over (may exceed what is due); for card/QR,
            the approved amount.
        ref: the terminal's references; required for card/QR, ``None`` for cash.
        voided: the tender was cancelled (card/QR: voided on the terminal; cash: handed back).
    """

    tender_no: int
    kind: TenderKind
    amount: Money
    ref: PaymentRef | None = None
    voided: bool = False

    def __post_init__(self) -> None:
        if self.amount.fen <= 0:
            raise TenderError(f"a tender must be positive, got {self.amount}")
        if self.kind.electronic and self.ref is None:
            raise TenderError(f"a {self.kind} tender needs the terminal's payment reference")
        if not self.kind.electronic and self.ref is not None:
            raise TenderError("a cash tender has no payment reference")

    @property
    def live(self) -> bool:
        """True unless voided."""
        return not self.voided

    @property
    def ecr_ref(self) -> str | None:
        """The ecr_ref of a card/QR tender."""
        return self.ref.ecr_ref if self.ref is not None else None


@dataclass(frozen=True, slots=True)
class SaleLine:
    """One scanned item, as it was at scan time.

    Attributes:
        line_no: number within the sale, from 1, never reused.
        sku, name, category, tax_rate_bp, unit: copied from the product.
        unit_price: price per piece, or per kg for weighed goods (after any price override).
        quantity: pieces; 1 for weighed and price-embedded lines.
        grams: net weight of weighed goods, or as printed on a price-embedded label.
        fixed_amount: the amount printed in a price-embedded scale barcode.
        member_price: member price per piece/kg at scan time (cleared by a price override).
        discount: manual discount on this line.
        voided: removed from the sale (kept for audit).
        voided_by: approver's user id when the removal was approved.
        price_override_by: approver's user id when the price was overridden.
    """

    line_no: int
    sku: str
    name: str
    category: str
    tax_rate_bp: int
    unit: Unit
    unit_price: Money
    quantity: int = 1
    grams: int | None = None
    fixed_amount: Money | None = None
    member_price: Money | None = None
    discount: ManualDiscount | None = None
    voided: bool = False
    voided_by: str | None = None
    price_override_by: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.quantity <= MAX_QUANTITY:
            raise InvalidAmount(f"quantity must be 1..{MAX_QUANTITY}, got {self.quantity}")
        if self.grams is not None and not 1 <= self.grams <= MAX_GRAMS:
            raise InvalidAmount(f"weight must be 1..{MAX_GRAMS} g, got {self.grams}")
        if self.unit is Unit.KG and self.grams is None and self.fixed_amount is None:
            raise InvalidAmount(f"{self.sku}: weighed goods need a weight or a printed amount")
        if self.unit_price.fen < 0 or (self.fixed_amount is not None and self.fixed_amount.fen < 0):
            raise InvalidAmount("prices must not be negative")

    @property
    def per_piece(self) -> bool:
        """True when the quantity is a count of pieces (it can be changed, returned in part)."""
        return self.fixed_amount is None and self.unit is Unit.EACH

    def to_pricing(self) -> PricingLine:
        """Return the line as the pricing engine sees it."""
        return PricingLine(
            line_no=self.line_no,
            sku=self.sku,
            category=self.category,
            tax_rate_bp=self.tax_rate_bp,
            unit_price=self.unit_price,
            quantity=self.quantity,
            # A price-embedded line's weight is informational: the printed amount is the price.
            grams=self.grams if self.fixed_amount is None else None,
            fixed_amount=self.fixed_amount,
            member_price=self.member_price,
            discount=self.discount,
        )
