"""Receipt layout for thermal printers: pure text, no I/O.

Chinese thermal printers print a Hanzi (or a full-width sign such as ``￥``) in two columns and a
Latin character in one. 58 mm paper holds 32 columns, 80 mm 48. Layout therefore works in
*printed columns*, never in ``len()``; names too long for their column wrap onto the next line
instead of pushing prices out of alignment.

How many columns a character takes depends on the printer's encoding, not on Unicode's idea of
width (:func:`display_width`):

* GB18030 / GBK: a character the code page encodes in two or more bytes is printed from the
  24-dot Hanzi font, two columns wide; a one-byte character takes one column. That includes
  signs Unicode calls narrow or ambiguous but GB2312 puts in its symbol rows: ``× · … — ℃ ① “ °``
  (``可乐330ml×6`` is 12 columns, not 11). A character the code page lacks is printed as ``?``:
  one column.
* UTF-8: Chinese UTF-8 printers convert to their GB18030 font, so ASCII takes one column and
  every other character two (East-Asian wide, full-width *and* ambiguous characters alike).

Amounts are printed with the full-width ``￥`` (U+FFE5), which GB18030 printers render; ``¥``
(U+00A5) is not in GBK.

The ESC/POS encoder (bold, double size, cut, QR code) consumes these lines; the virtual printer,
the demo and the tests read them as text.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from shouyin.devices.escpos_model import PrinterEncoding
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


DEFAULT_ENCODING: Final = PrinterEncoding.GB18030


def _char_width(ch: str, codec: str) -> int:
    if codec == "utf-8":  # converted to the printer's GB18030 font: only ASCII is narrow
        return 1 if ch < "\x80" else 2
    try:
        return 2 if len(ch.encode(codec)) >= 2 else 1
    except UnicodeEncodeError:
        return 1  # not in the code page: the encoder sends "?"


def display_width(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Columns ``text`` occupies on a printer or display using ``encoding`` (see the module
    docstring: two for a character of two or more bytes in a GB code page, or any non-ASCII
    character on a UTF-8 printer; one otherwise).

    Args:
        text: the text.
        encoding: the device's text encoding (a :class:`PrinterEncoding` or a codec name such
            as ``"ascii"`` for a customer display without Hanzi).

    Returns:
        The number of columns.
    """
    codec = codecs.lookup(encoding).name
    return sum(_char_width(ch, codec) for ch in text)


def fit(text: str, width: int, encoding: str = DEFAULT_ENCODING) -> list[str]:
    """Wrap ``text`` into pieces of at most ``width`` columns, never splitting a character."""
    codec = codecs.lookup(encoding).name
    pieces, current, used = [], "", 0
    for ch in text:
        w = _char_width(ch, codec)
        if used + w > width:
            pieces.append(current)
            current, used = "", 0
        current += ch
        used += w
    pieces.append(current)
    return pieces


def pad(text: str, width: int, *, right: bool = False, encoding: str = DEFAULT_ENCODING) -> str:
    """Pad ``text`` with spaces to exactly ``width`` columns (it must already fit)."""
    spaces = " " * max(0, width - display_width(text, encoding))
    return spaces + text if right else text + spaces


def two_columns(left: str, right: str, width: int, encoding: str = DEFAULT_ENCODING) -> list[str]:
    """``left`` flush left and ``right`` flush right on one line, wrapping ``left`` if needed."""
    right_width = display_width(right, encoding)
    pieces = fit(left, max(width - right_width - 1, 1), encoding)
    lines = pieces[:-1]
    lines.append(pad(pieces[-1], width - right_width, encoding=encoding) + right)
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
    encoding: PrinterEncoding = DEFAULT_ENCODING,
) -> list[str]:
    """Lay out a sale's receipt as lines of exactly ``width`` columns or fewer.

    Args:
        sale: the sale (normally completed).
        header: store name, address, footer.
        cashier_name: the operator's display name.
        width: 32 for 58 mm paper, 48 for 80 mm.
        printed_at: time printed on the receipt (defaults to the sale's completion time).
        copy_mark: e.g. ``"重印"`` for a reprint; printed prominently when set.
        encoding: the printer's encoding, which decides how many columns a character takes.

    Returns:
        The receipt text, one string per printed line.
    """
    rule = "-" * width

    def fit_(text: str) -> list[str]:
        return fit(text, width, encoding)

    def row(left: str, right: str) -> None:
        out.extend(two_columns(left, right, width, encoding))

    out: list[str] = [pad_center(header.store_name, width, encoding)]
    if header.address:
        out.extend(fit_(header.address))
    if header.phone:
        out.append(f"电话：{header.phone}")
    if copy_mark:
        out.append(pad_center(f"*** {copy_mark} ***", width, encoding))
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
        out.extend(fit_(line.name))
        row(_line_detail(line), money(p.gross))
    if sale.applied_promotions:
        out.append(rule)
        for promo in sale.applied_promotions:
            row(f"优惠 {promo.name}", "-" + money(promo.amount))
    out.append(rule)
    row("件数", str(_item_count(sale)))
    row("合计", money(sale.subtotal))
    if sale.discount_total:
        row("优惠", "-" + money(sale.discount_total))
    row("应付", money(sale.total_due))
    for tender in sale.live_tenders:
        row(TENDER_NAMES[tender.kind], money(tender.amount))
        out.extend(_reference_lines(tender.ref))
    if sale.change:
        row("找零", money(sale.change))
    out.append(rule)
    out.extend(fit_(header.footer))
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


def pad_center(text: str, width: int, encoding: str = DEFAULT_ENCODING) -> str:
    """Centre ``text`` in ``width`` columns (truncating nothing: long text is left as is)."""
    free = max(0, width - display_width(text, encoding))
    return " " * (free // 2) + text
