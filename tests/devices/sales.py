"""Real domain sales for the device tests (promotions, weighed goods, card + cash tenders)."""

from __future__ import annotations

from datetime import UTC, datetime

from shouyin.domain.money import Money
from shouyin.domain.product import Product, Unit
from shouyin.domain.promotions import MultiBuy
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import PaymentRef, TenderKind

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
COLA = Product(sku="C1", name="可口可乐 330ml", price=Money(250), category="饮料")
TOMATO = Product(sku="T1", name="西红柿", price=Money(680), unit=Unit.KG, plu="10001")
OIL = Product(sku="L1", name="金龙鱼 黄金比例食用植物调和油 5L 特惠装", price=Money(6990))
MASKED_PAN = "622848******1234"


def _open(receipt_no: str = "L01-000001", product_name: str | None = None) -> Sale:
    sale = Sale.open(
        sale_id="s-" + receipt_no,
        receipt_no=receipt_no,
        lane_id="L01",
        shift_id="sh1",
        cashier_id="u1",
        now=NOW,
        promotions=(MultiBuy("第二件半价", every=2, off_bp=5000),),
    )
    sale.add_product(COLA, 2)
    sale.add_weighed(TOMATO, 1234)
    if product_name is not None:
        sale.add_product(Product(sku="X1", name=product_name, price=Money(100)))
    sale.add_product(OIL)
    return sale


def card_and_cash_sale(product_name: str | None = None) -> Sale:
    """A completed sale: ￥50 by card (masked PAN, rrn, trace), the rest in cash with change."""
    sale = _open(product_name=product_name)
    sale.add_tender(
        TenderKind.CARD,
        Money(5000),
        PaymentRef(ecr_ref="E1", rrn="123456789012", trace="000123", masked_pan=MASKED_PAN),
    )
    sale.add_tender(TenderKind.CASH, Money(5000))
    sale.complete(NOW)
    return sale


def card_only_sale() -> Sale:
    """A completed sale paid entirely by card (the drawer stays shut)."""
    sale = _open("L01-000002")
    sale.add_tender(
        TenderKind.CARD,
        sale.total_due,
        PaymentRef(ecr_ref="E2", rrn="123456789013", trace="000124", masked_pan=MASKED_PAN),
    )
    sale.complete(NOW)
    return sale
