"""Render what a printer received (parsed ESC/POS events) as text and as a PNG "paper strip".

Text: one line per printed line, aligned within the paper's columns; a QR code shows as
``[QR] <content>``, an image as ``[image WxH]``, a cut as a dashed rule, a drawer kick as
``[drawer pin 2]``. PNG: a 12x24-dot cell per column (the printers' standard font), 8 dots/mm, so
58 mm paper is 384 dots wide and 80 mm 576. QR codes are drawn as the printer would (``segno``),
raster images dot for dot.

Columns are counted as the printer counts them, from the bytes it received
(:func:`printed_columns`): a character that takes two or more bytes in the printer's code page
(GB18030, GBK or UTF-8) is drawn from the 24-dot Hanzi font in two cells, a one-byte character in
one. This deliberately does not reuse the layout's
:func:`~shouyin.devices.receipt.display_width`: the virtual printer is the check on the layout,
and a check that shares the layout's rule would agree with any mistake in it.

A CJK font is needed for the PNG to show Hanzi: :func:`find_cjk_font` looks for WenQuanYi or
Noto CJK (``apt-get install fonts-wqy-microhei``); without one, Pillow's built-in font draws
boxes for Hanzi and the text output stays exact.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw, ImageFont

from shouyin.devices.escpos_model import (
    Align,
    Cut,
    DrawerKick,
    Feed,
    PrinterEncoding,
    QrCode,
    RasterImage,
)
from shouyin.devices.escpos_parser import Barcode, Event, PrintedLine

__all__ = [
    "CELL_HEIGHT",
    "CELL_WIDTH",
    "find_cjk_font",
    "printed_columns",
    "render_png",
    "render_text",
]

logger = logging.getLogger(__name__)

CELL_WIDTH: Final = 12
CELL_HEIGHT: Final = 24
LINE_GAP: Final = 6
MARGIN: Final = 8
CJK_FONT_CANDIDATES: Final = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)


def find_cjk_font() -> Path | None:
    """The first installed CJK-capable font of a known list, or None."""
    for candidate in CJK_FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    for folder in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
        if folder.is_dir():
            for path in sorted(folder.rglob("*CJK*.tt[cf]"))[:1]:
                return path
    return None


@cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = find_cjk_font()
    if path is None:
        logger.warning("no CJK font installed: Hanzi in receipt images will show as boxes")
        return ImageFont.load_default(size=CELL_HEIGHT - 2)
    return ImageFont.truetype(str(path), CELL_HEIGHT - 2)


def printed_columns(text: str, encoding: PrinterEncoding) -> int:
    """Columns a printer set to ``encoding`` uses for ``text``: it reads the bytes, and a
    character of one byte takes one column, a character of two or more bytes two.

    GB18030/GBK: a byte below 0x80 is a character by itself; a lead byte 0x81-0xFE starts a
    two-byte character, or a four-byte one when the next byte is a digit 0x30-0x39 (GB18030).
    UTF-8: the lead byte says the length. (GBK's lone 0x80, the euro sign, is one byte.)
    """
    data = text.encode(encoding.value, errors="replace")
    if encoding is PrinterEncoding.UTF8:  # lead bytes only: continuation bytes are 10xxxxxx
        return sum(1 if byte < 0x80 else 2 for byte in data if not 0x80 <= byte <= 0xBF)
    columns, pos = 0, 0
    while pos < len(data):
        byte = data[pos]
        if 0x81 <= byte <= 0xFE and pos + 1 < len(data):
            four = 0x30 <= data[pos + 1] <= 0x39 and pos + 3 < len(data)
            pos += 4 if four else 2
            columns += 2
        else:
            pos += 1
            columns += 1
    return columns


def _aligned(text: str, align: Align, columns: int, encoding: PrinterEncoding) -> str:
    free = max(0, columns - printed_columns(text, encoding))
    if align is Align.CENTER:
        return " " * (free // 2) + text
    if align is Align.RIGHT:
        return " " * free + text
    return text


def _line_columns(line: PrintedLine) -> str:
    """The line as it takes columns: double-width runs get a space after each character."""
    parts = []
    for run in line.runs:
        parts.append(run.text if run.style.width == 1 else "".join(c + " " for c in run.text))
    return "".join(parts)


def render_text(
    events: list[Event], columns: int, encoding: PrinterEncoding = PrinterEncoding.GB18030
) -> str:
    """The job as text, one printed line per line (see the module docstring)."""
    out: list[str] = []
    for event in events:
        if isinstance(event, PrintedLine):
            line = _aligned(_line_columns(event), event.align, columns, encoding)
            out.append(line.rstrip())
        elif isinstance(event, QrCode):
            out.append(f"[QR] {event.data}")
        elif isinstance(event, Barcode):
            out.append(f"[barcode {event.kind}] {event.data}")
        elif isinstance(event, RasterImage):
            out.append(f"[image {event.width_bytes * 8}x{event.height}]")
        elif isinstance(event, Feed):
            out.extend([""] * event.lines)
        elif isinstance(event, Cut):
            out.append("~" * columns + (" (partial cut)" if event.partial else " (cut)"))
        elif isinstance(event, DrawerKick):
            kind = "real-time " if event.realtime else ""
            out.append(f"[{kind}drawer pin {event.pin} {event.on_ms}/{event.off_ms} ms]")
    return "\n".join(out) + "\n"


def _qr_image(event: QrCode) -> Image.Image:
    import segno

    code = segno.make_qr(event.data, error=event.ec.lower())
    matrix = [[bool(v) for v in row] for row in code.matrix]
    side = len(matrix) * event.size
    image = Image.new("1", (side, side), 1)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                x0, y0 = x * event.size, y * event.size
                draw.rectangle((x0, y0, x0 + event.size - 1, y0 + event.size - 1), fill=0)
    return image


def _raster_image(event: RasterImage) -> Image.Image:
    return Image.frombytes("1", (event.width_bytes * 8, event.height), event.data).point(
        lambda v: 255 - v
    )


def _glyph(ch: str, cells: int, bold: bool) -> Image.Image:
    """One character in its cells; a proportional glyph wider than its cells is squeezed in (a
    printer's font is monospaced: ``m`` must not run into its neighbour)."""
    font = _font()
    room = cells * CELL_WIDTH
    natural = max(int(font.getlength(ch)) + 2, 1)
    canvas = Image.new("L", (max(room, natural), CELL_HEIGHT), 255)
    draw = ImageDraw.Draw(canvas)
    draw.text((0, 0), ch, font=font, fill=0)
    if bold:  # emphasised: printers strike each dot twice, shifted one dot
        draw.text((1, 0), ch, font=font, fill=0)
    return canvas if canvas.width == room else canvas.resize((room, CELL_HEIGHT))


def _text_image(line: PrintedLine, columns: int, encoding: PrinterEncoding) -> Image.Image:
    height = max((run.style.height for run in line.runs), default=1) * CELL_HEIGHT
    image = Image.new("L", (columns * CELL_WIDTH, height), 255)
    used = sum(printed_columns(run.text, encoding) * run.style.width for run in line.runs)
    free = max(0, columns - used)
    col = {Align.LEFT: 0, Align.CENTER: free // 2, Align.RIGHT: free}[line.align]
    for run in line.runs:
        for ch in run.text:
            cells = printed_columns(ch, encoding)
            glyph = _glyph(ch, cells, run.style.bold)
            if run.style.underline:
                ImageDraw.Draw(glyph).line((0, CELL_HEIGHT - 2, glyph.width, CELL_HEIGHT - 2))
            w, h = glyph.width * run.style.width, CELL_HEIGHT * run.style.height
            image.paste(glyph.resize((w, h)), (col * CELL_WIDTH, height - h))
            col += cells * run.style.width
    return image


def render_png(
    events: list[Event],
    columns: int,
    path: Path,
    encoding: PrinterEncoding = PrinterEncoding.GB18030,
) -> None:
    """Draw the job as the paper would look and save it as a PNG at ``path``."""
    width = columns * CELL_WIDTH
    pieces: list[tuple[Image.Image, Align]] = []
    for event in events:
        if isinstance(event, PrintedLine):
            pieces.append((_text_image(event, columns, encoding), Align.LEFT))
        elif isinstance(event, QrCode):
            pieces.append((_qr_image(event), Align.CENTER))
        elif isinstance(event, RasterImage):
            pieces.append((_raster_image(event), Align.CENTER))
        elif isinstance(event, Feed):
            pieces.append((Image.new("L", (width, event.lines * CELL_HEIGHT), 255), Align.LEFT))
        elif isinstance(event, Cut):
            cut = Image.new("L", (width, 9), 255)
            ImageDraw.Draw(cut).line((0, 4, width, 4), fill=128, width=1)
            pieces.append((cut, Align.LEFT))
    total = sum(p.height + LINE_GAP for p, _ in pieces) + 2 * MARGIN
    paper = Image.new("L", (width + 2 * MARGIN, max(total, CELL_HEIGHT)), 255)
    y = MARGIN
    for piece, align in pieces:
        x = MARGIN + (max(0, width - piece.width) // 2 if align is Align.CENTER else 0)
        paper.paste(piece.convert("L"), (x, y))
        y += piece.height + LINE_GAP
    paper.save(path, format="PNG")
