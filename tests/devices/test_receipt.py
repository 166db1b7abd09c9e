"""Receipt layout: Chinese characters take two columns, amounts line up, nothing overflows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shouyin.devices.escpos_model import PrinterEncoding
from shouyin.devices.printer_render import printed_columns
from shouyin.devices.receipt import (
    PAPER_58MM,
    PAPER_80MM,
    ReceiptHeader,
    display_width,
    fit,
    render_sale,
    two_columns,
)
from shouyin.domain.money import Money
from shouyin.domain.product import Product, Unit
from shouyin.domain.promotions import MultiBuy
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import PaymentRef, TenderKind

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
COLA = Product(sku="C1", name="可口可乐 330ml", price=Money(250), category="饮料")
TOMATO = Product(sku="T1", name="西红柿", price=Money(680), unit=Unit.KG, plu="10001")
LONG = Product(sku="L1", name="金龙鱼 黄金比例食用植物调和油 5L 特惠装", price=Money(6990))


def completed_sale() -> Sale:
    sale = Sale.open(
        sale_id="s1",
        receipt_no="L01-000001",
        lane_id="L01",
        shift_id="sh1",
        cashier_id="u1",
        now=NOW,
        promotions=(MultiBuy("第二件半价", every=2, off_bp=5000),),
    )
    sale.add_product(COLA, 2)
    sale.add_weighed(TOMATO, 1234)
    sale.add_product(LONG)
    sale.add_tender(
        TenderKind.CARD,
        Money(5000),
        PaymentRef(ecr_ref="E1", rrn="123456789012", trace="000123", masked_pan="622848******1234"),
    )
    sale.add_tender(TenderKind.CASH, Money(5000))
    sale.complete(NOW)
    return sale


def test_hanzi_and_fullwidth_yuan_take_two_columns() -> None:
    assert display_width("可乐") == 4
    assert display_width("￥12.30") == 7
    assert display_width("cola 330ml") == 10


def test_fit_never_splits_a_wide_character_across_the_edge() -> None:
    assert fit("一二三四五", 5) == ["一二", "三四", "五"]


def test_two_columns_right_aligns_the_amount_in_display_columns() -> None:
    [line] = two_columns("合计", "￥8.00", 32)
    assert display_width(line) == 32
    assert line.endswith("￥8.00")


@pytest.mark.parametrize("width", [PAPER_58MM, PAPER_80MM])
def test_no_receipt_line_is_wider_than_the_paper(width: int) -> None:
    lines = render_sale(completed_sale(), ReceiptHeader("示范超市"), cashier_name="李", width=width)
    assert max(display_width(line) for line in lines) <= width


def test_receipt_shows_promotion_weight_totals_change_and_masked_card() -> None:
    text = "\n".join(
        render_sale(completed_sale(), ReceiptHeader("示范超市"), cashier_name="李收银")
    )
    assert "优惠 第二件半价" in text
    assert "1.234kg" in text
    assert "￥8.39" in text  # 1.234 kg x ￥6.80/kg = ￥8.3912, half up to the fen
    assert "622848******1234" in text
    assert "找零" in text


def test_reprint_carries_the_copy_mark() -> None:
    lines = render_sale(
        completed_sale(), ReceiptHeader("示范超市"), cashier_name="李", copy_mark="重印"
    )
    assert any("*** 重印 ***" in line for line in lines)


@pytest.mark.parametrize("encoding", [PrinterEncoding.GB18030, PrinterEncoding.GBK])
def test_symbols_two_bytes_in_gb_take_two_columns(encoding: PrinterEncoding) -> None:
    # Unicode calls these narrow or ambiguous; GB2312's symbol rows make them two bytes, and a
    # Chinese printer draws them from its Hanzi font, two columns wide.
    assert display_width("×·…—℃①“°", encoding) == 16
    assert display_width("  可乐330ml×6", encoding) == 14


def test_gbk_prints_a_character_it_lacks_as_one_column_question_mark() -> None:
    assert display_width("😀", PrinterEncoding.GBK) == 1
    assert display_width("😀", PrinterEncoding.GB18030) == 2  # four bytes: still two columns


def test_utf8_printers_print_every_non_ascii_character_two_columns_wide() -> None:
    assert display_width("可乐×6 ·°", PrinterEncoding.UTF8) == 12
    assert display_width("cola 330ml", PrinterEncoding.UTF8) == 10


@pytest.mark.parametrize("encoding", list(PrinterEncoding))
def test_price_after_a_name_with_a_times_sign_ends_at_the_paper_edge_on_paper(
    encoding: PrinterEncoding,
) -> None:
    [line] = two_columns("  可乐330ml×6", "￥12.00", 32, encoding)
    assert printed_columns(line, encoding) == 32  # the printer's own count, from the bytes
    assert line.endswith("￥12.00")


def test_fit_wraps_symbols_by_their_printed_width() -> None:
    assert fit("×" * 17, 32) == ["×" * 16, "×"]
