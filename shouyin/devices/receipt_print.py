"""A sale's receipt as an ESC/POS document: the text layout of :mod:`shouyin.devices.receipt`
with print styles, a QR code, the reprint/copy mark, the drawer kick and the cut. Pure.

Styles never change a line's width in columns (bold and double *height* only; double width would
break the 32/48-column layout), so the printed text is exactly :func:`render_sale`'s lines.

Card data: every line and the QR content pass through :func:`shouyin.domain.carddata.scrub`
before encoding. The sale itself only ever holds a masked PAN (``PaymentRef`` refuses a full one);
the scrub covers the free text around it (store header, cashier name, product names, the QR URL)
so that a card number typed in one of them still never reaches the printer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from shouyin.devices.escpos_model import (
    DRAWER_KICK_PULSE,
    Align,
    Block,
    Cut,
    Feed,
    PrinterEncoding,
    QrCode,
    Style,
    TextLine,
)
from shouyin.devices.receipt import PAPER_58MM, ReceiptHeader, fit, render_sale
from shouyin.domain.carddata import scrub
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_view import SaleView

__all__ = ["COPY_MARK", "REPRINT_MARK", "ReceiptOptions", "copy_mark", "receipt_document"]

REPRINT_MARK: Final = "重印"
COPY_MARK: Final = "副本"
_TOTAL_LABEL: Final = "应付"
_FEED_BEFORE_CUT: Final = 4  # lines between the last text and the cutter blade


@dataclass(frozen=True, slots=True)
class ReceiptOptions:
    """How a receipt is printed (besides the sale).

    Attributes:
        width: 32 columns for 58 mm paper, 48 for 80 mm.
        qr_url: printed as a QR code under the receipt (e-invoice or member sign-up), if set.
        qr_caption: the line above the QR code.
        kick_drawer: open the cash drawer with this job (cash sales).
        encoding: the printer's text encoding (it decides how many columns a character takes).
    """

    width: int = PAPER_58MM
    qr_url: str = ""
    qr_caption: str = "扫码开发票 / 注册会员"
    kick_drawer: bool = False
    encoding: PrinterEncoding = PrinterEncoding.GB18030


def copy_mark(*, reprint: bool, copy: bool) -> str:
    """The mark printed under the header: ``重印``, ``副本``, both, or nothing."""
    return " ".join(m for m, on in ((REPRINT_MARK, reprint), (COPY_MARK, copy)) if on)


def has_cash(sale: SaleView) -> bool:
    """Whether the sale took cash (the drawer opens for it)."""
    return any(t.kind is TenderKind.CASH for t in sale.live_tenders)


def receipt_document(
    sale: SaleView,
    header: ReceiptHeader,
    options: ReceiptOptions,
    *,
    cashier_name: str,
    mark: str = "",
    printed_at: datetime | None = None,
) -> list[Block]:
    """Build the print job of a sale's receipt.

    Args:
        sale: the sale (normally completed).
        header: store name, address, phone, footer.
        options: paper width, QR code, drawer kick.
        cashier_name: the operator's display name.
        mark: reprint/copy mark (see :func:`copy_mark`), printed bold and double height.
        printed_at: the time on the receipt (defaults to the sale's completion time).

    Returns:
        The blocks to encode, drawer kick first (the drawer opens while the receipt prints).
    """
    lines = render_sale(
        sale,
        header,
        cashier_name=cashier_name,
        width=options.width,
        printed_at=printed_at,
        copy_mark=mark,
        encoding=options.encoding,
    )
    blocks: list[Block] = [DRAWER_KICK_PULSE] if options.kick_drawer else []
    for index, line in enumerate(lines):
        blocks.append(TextLine(scrub(line), _style_of(index, line, mark)))
    if options.qr_url:
        blocks.extend(
            TextLine(scrub(c)) for c in fit(options.qr_caption, options.width, options.encoding)
        )
        blocks.append(QrCode(scrub(options.qr_url)))
    blocks += [Feed(_FEED_BEFORE_CUT), Cut(partial=True)]
    return blocks


def _style_of(index: int, line: str, mark: str) -> Style:
    if index == 0:  # the store name
        return Style(bold=True)
    if mark and line.strip() == f"*** {mark} ***":
        return Style(bold=True, height=2)
    if line.startswith(_TOTAL_LABEL):
        return Style(bold=True)
    return Style()


def plain_lines(blocks: list[Block]) -> list[str]:
    """The text lines of a document, for logs and previews."""
    return [b.text for b in blocks if isinstance(b, TextLine)]


def centered(text: str) -> TextLine:
    """A centred plain line (test pages and notices)."""
    return TextLine(text, Style(), Align.CENTER)
