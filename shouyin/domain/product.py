"""The product record shared by the catalogue, the cart and storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from shouyin.domain.errors import InvalidProduct
from shouyin.domain.money import Money

DEFAULT_CATEGORY = "其他"
STANDARD_VAT_BP = 1300  # 13% VAT, basis points; most food is 9% (900)


class Unit(StrEnum):
    """How a product is sold: per piece, or weighed and priced per kilogram."""

    EACH = "each"
    KG = "kg"


@dataclass(frozen=True, slots=True)
class Product:
    """One sellable item.

    Attributes:
        sku: the store's own stock-keeping unit, unique.
        name: display name in Chinese, as printed on receipts.
        price: price per piece, or per kilogram when ``unit`` is :attr:`Unit.KG`.
        unit: per piece or weighed.
        barcodes: normalised GTINs (EAN-13 / EAN-8; UPC-A stored as its EAN-13 form).
        plu: item code used inside in-store scale barcodes (the ``W`` digits), if any.
        category: category name used for reports and promotions.
        tax_rate_bp: VAT rate in basis points (1300 = 13%).
        member_price: price for loyalty members, if different.
        mnemonic: 助记码, e.g. pinyin initials ``kkkl`` for 可口可乐, for keyboard lookup.
        active: inactive products stay for history but cannot be sold.
    """

    sku: str
    name: str
    price: Money
    unit: Unit = Unit.EACH
    barcodes: tuple[str, ...] = field(default=())
    plu: str | None = None
    category: str = DEFAULT_CATEGORY
    tax_rate_bp: int = STANDARD_VAT_BP
    member_price: Money | None = None
    mnemonic: str = ""
    active: bool = True

    def __post_init__(self) -> None:
        if not self.sku or not self.sku.strip():
            raise InvalidProduct("product SKU must not be empty")
        if not self.name or not self.name.strip():
            raise InvalidProduct(f"product {self.sku}: name must not be empty")
        if self.price.fen < 0:
            raise InvalidProduct(f"product {self.sku}: price must not be negative")
        if self.member_price is not None and self.member_price.fen < 0:
            raise InvalidProduct(f"product {self.sku}: member price must not be negative")
        if not 0 <= self.tax_rate_bp <= 10_000:
            raise InvalidProduct(f"product {self.sku}: tax rate out of range: {self.tax_rate_bp}")

    @property
    def weighed(self) -> bool:
        """True when the product is sold by weight (price per kg)."""
        return self.unit is Unit.KG
