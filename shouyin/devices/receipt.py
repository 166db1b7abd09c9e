"""Receipt layout for thermal printers: pure text, no I/O.

Chinese thermal printers print a Hanzi (or a full-width sign such as ``￥``) in two columns and a
Latin character in one. 58 mm paper holds 32 columns, 80 mm 48. Layout therefore works in
*display columns* (``unicodedata.east_asian_width``), never in ``len()``; names too long for their
column wrap onto the next line instead of pushing prices out of alignment. Amounts are printed
with the full-width ``￥`` (U+FFE5), which GB18030 printers render; ``¥`` (U+00A5) is not in GBK.

The ESC/POS encoder (bold, double size, cut, QR code) consumes these lines; the virtual printer,
the demo and the tests read them as text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from shouyin.domain.money import Money
from shouyin.domain.product import Unit
from shouyin.domain.sale_lines import PaymentRef, SaleLine, TenderKind
from shouyin.domain.sale_view import SaleView

PAPER_58MM: Final = 32
PAPER_80MM: Final = 48
YUAN: Final = "￥"

TENDER_NAMES: Final = {
    TenderKind.CASH: "现金",
    TenderKind.CARD: "银行卡",
    TenderKind.QR: "扫码支付",
}


def display_width(text: str) -> int:
    """Columns ``text`` occupies on a thermal printer (wide and full-width characters take 2)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fit(text: str, width: int) -> list[str]:
    """Wrap ``text`` into pieces of at most ``width`` columns, never splitting a character."""
    pieces, current, used = [], "", 0
    for ch in text:
        w = display_width(ch)
        if used + w > width:
            pieces.append(current)
            current, used = "", 0
        current += ch
        used += w
    pieces.append(current)
    return pieces


def pad(text: str, width: int, *, right: bool = False) -> str:
    """Pad ``text`` with spaces to exactly ``width`` columns (it must already fit)."""
    spaces = " " * max(0, width - display_width(text))
    return spaces + text if right else text + spaces


def two_columns(left: str, right: str, width: int) -> list[str]:
    """``left`` flush left and ``right`` flush right on one line, wrapping ``left`` if needed."""
    room = width - display_width(right) - 1
    pieces = fit(left, max(room, 1))
    lines = pieces[:-1]
    lines.append(pad(pieces[-1], width - display_width(right)) + right)
    return lines


def money(amount: Money) -> str:
    """An amount as printed on a receipt: ``￥12.30``."""
    return amount.format(YUAN)


@dataclass(frozen=True, slots=True)
class ReceiptHeader:
    """What the store prints above every receipt."""

    store_name: str
    address: str = ""
    phone: str = ""
    footer: str = "谢谢惠顾，欢迎再次光临"


def _line_detail(line: SaleLine) -> str:
    """Unit price and quantity: ``￥2.50 x2``, ``￥6.80/kg 1.234kg``, or a scale label's price."""
    if line.unit is Unit.EACH and line.fixed_amount is None:
        return f"  {money(line.unit_price)} x{line.quantity}"
    detail = f"  {money(line.unit_price)}/kg"
    if line.grams is not None:
        kg, g = divmod(line.grams, 1000)
        detail += f" {kg}.{g:03d}kg"
    return detail + (" 称重标签" if line.fixed_amount is not None else "")


def render_sale(
    sale: SaleView,
    header: ReceiptHeader,
    *,
    cashier_name: str,
    width: int = PAPER_58MM,
    printed_at: datetime | None = None,
    copy_mark: str = "",
) -> list[str]:
    """Lay out a sale's receipt as lines of exactly ``width`` columns or fewer.

    Args:
        sale: the sale (normally completed).
        header: store name, address, footer.
        cashier_name: the operator's display name.
        width: 32 for 58 mm paper, 48 for 80 mm.
        printed_at: time printed on the receipt (defaults to the sale's completion time).
        copy_mark: e.g. ``"重印"`` for a reprint; printed prominently when set.

    Returns:
        The receipt text, one string per printed line.
    """
    rule = "-" * width
    out: list[str] = [pad_center(header.store_name, width)]
    if header.address:
        out.extend(fit(header.address, width))
    if header.phone:
        out.append(f"电话：{header.phone}")
    if copy_mark:
        out.append(pad_center(f"*** {copy_mark} ***", width))
    when = printed_at or sale.completed_at or sale.opened_at
    out.extend(
        [
            rule,
            f"单号：{sale.receipt_no}",
            f"收银员：{cashier_name}  {sale.lane_id}",
            f"时间：{when:%Y-%m-%d %H:%M:%S}",
            rule,
        ]
    )
    priced = {p.line_no: p for p in sale.priced.lines}
    for line in sale.active_lines:
        p = priced[line.line_no]
        out.extend(fit(line.name, width))
        out.extend(two_columns(_line_detail(line), money(p.gross), width))
    if sale.applied_promotions:
        out.append(rule)
        for promo in sale.applied_promotions:
            out.extend(two_columns(f"优惠 {promo.name}", "-" + money(promo.amount), width))
    out.append(rule)
    out.extend(two_columns("件数", str(_item_count(sale)), width))
    out.extend(two_columns("合计", money(sale.subtotal), width))
    if sale.discount_total:
        out.extend(two_columns("优惠", "-" + money(sale.discount_total), width))
    out.extend(two_columns("应付", money(sale.total_due), width))
    for tender in sale.live_tenders:
        out.extend(two_columns(TENDER_NAMES[tender.kind], money(tender.amount), width))
        out.extend(_reference_lines(tender.ref))
    if sale.change:
        out.extend(two_columns("找零", money(sale.change), width))
    out.append(rule)
    out.extend(fit(header.footer, width))
    return out


def _reference_lines(ref: PaymentRef | None) -> list[str]:
    """The payment references printed under a card or QR tender (never more than a masked PAN)."""
    if ref is None:
        return []
    fields = (
        ("卡号", ref.masked_pan),
        ("钱包", ref.wallet),
        ("参考号", ref.rrn),
        ("凭证号", ref.trace),
    )
    return [f"  {label}：{value}" for label, value in fields if value]


def _item_count(sale: SaleView) -> int:
    return sum(1 if line.grams is not None else line.quantity for line in sale.active_lines)


def pad_center(text: str, width: int) -> str:
    """Centre ``text`` in ``width`` columns (truncating nothing: long text is left as is)."""
    free = max(0, width - display_width(text))
    return " " * (free // 2) + text
