"""ESC/POS documents: what a receipt printer is asked to print, and the pure encoder to bytes.

A document is a sequence of blocks (:class:`TextLine`, :class:`QrCode`, :class:`RasterImage`,
:class:`Feed`, :class:`Cut`, :class:`DrawerKick`). :func:`encode` turns it into the bytes a
printer receives; :mod:`shouyin.devices.escpos_parser` turns bytes back into blocks, so the
virtual printer and the tests read exactly what the lane sent.

Text is encoded here, by the printer's setting (GB18030 by default; GBK; UTF-8), rather than by
python-escpos's ``text()``: its "magic encode" guesses a code page per character from the printer
profile and may switch code pages with ``ESC t`` in mid-line, which a Chinese printer in Hanzi mode
(``FS &``) prints as garbage, and it turns every Hanzi outside its guessed table into ``?``. The
bytes produced here go to the printer through python-escpos's transport (``_raw``). The other
commands (styles, QR, cut, drawer) are encoded here too, so that a whole job is one pure byte
string: sent in one write, and checked byte for byte without a printer. They are the same
sequences python-escpos sends (its ``qr(native=True)``, ``cut()``, ``cashdraw()``), which the
parser's tests read back from python-escpos's own ``Dummy`` output.

Command references: Epson "ESC/POS Command Reference" (TM-T88 / TM-T20 series), as implemented
by the common Chinese 58/80 mm printers (Xprinter, Gprinter, HPRT, ...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Final

__all__ = [
    "DRAWER_KICK_PULSE",
    "DRAWER_KICK_REALTIME",
    "MAX_QR_BYTES",
    "Align",
    "Block",
    "Cut",
    "DrawerKick",
    "Feed",
    "PrinterEncoding",
    "QrCode",
    "RasterImage",
    "Style",
    "TextLine",
    "encode",
    "encode_block",
]

logger = logging.getLogger(__name__)

ESC: Final = b"\x1b"
GS: Final = b"\x1d"
FS: Final = b"\x1c"
DLE: Final = b"\x10"
EOT: Final = b"\x04"
LF: Final = b"\n"

# How many bytes of content a model 2 QR code (version 40) holds in byte mode, by error
# correction level: the content is sent as UTF-8 bytes, and printers encode it in byte mode
# (the 7089 of the specification is for digits only). A longer content is refused here, before
# anything is sent: the printer would silently print nothing.
MAX_QR_BYTES: Final = {"L": 2953, "M": 2331, "Q": 1663, "H": 1273}


class PrinterEncoding(StrEnum):
    """How the printer decodes text bytes (a printer setting, set on the printer itself)."""

    GB18030 = "gb18030"
    GBK = "gbk"
    UTF8 = "utf-8"

    @property
    def hanzi_mode(self) -> bool:
        """Whether the printer needs its Chinese mode on (``FS &``): the GB codes do; a UTF-8
        printer is switched to UTF-8 by its own configuration tool and takes bytes as they are."""
        return self is not PrinterEncoding.UTF8


class Align(IntEnum):
    """Line justification (``ESC a n``)."""

    LEFT = 0
    CENTER = 1
    RIGHT = 2


@dataclass(frozen=True, slots=True)
class Style:
    """Character style of a run of text.

    Attributes:
        bold: emphasised (``ESC E 1``).
        underline: underlined (``ESC - 1``).
        width: character width multiplier, 1-8 (``GS !`` high nibble + 1).
        height: character height multiplier, 1-8 (``GS !`` low nibble + 1).
    """

    bold: bool = False
    underline: bool = False
    width: int = 1
    height: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.width <= 8 and 1 <= self.height <= 8):
            raise ValueError("character size multipliers must be 1-8")


PLAIN: Final = Style()


@dataclass(frozen=True, slots=True)
class TextLine:
    """One printed line of text in one style (the encoder's unit; the parser yields
    :class:`~shouyin.devices.escpos_parser.PrintedLine` with runs of mixed style)."""

    text: str
    style: Style = PLAIN
    align: Align = Align.LEFT


@dataclass(frozen=True, slots=True)
class QrCode:
    """A QR code printed by the printer itself (``GS ( k``, model 2).

    Attributes:
        data: the content (e.g. an e-invoice or member sign-up URL), UTF-8 encoded.
        size: module size in dots, 1-16.
        ec: error correction level, one of ``L M Q H``.
    """

    data: str
    size: int = 6
    ec: str = "M"

    def __post_init__(self) -> None:
        if not 1 <= self.size <= 16:
            raise ValueError("QR module size must be 1-16 dots")
        if self.ec not in ("L", "M", "Q", "H"):
            raise ValueError("QR error correction must be L, M, Q or H")
        size = len(self.data.encode())
        if not 1 <= size <= MAX_QR_BYTES[self.ec]:
            raise ValueError(
                f"QR content is {size} bytes; a QR code at error correction {self.ec} holds"
                f" 1 to {MAX_QR_BYTES[self.ec]} bytes"
            )


@dataclass(frozen=True, slots=True)
class RasterImage:
    """A monochrome raster image (``GS v 0``): ``rows`` of ``width_bytes`` bytes, MSB = left dot."""

    width_bytes: int
    height: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Feed:
    """Feed ``lines`` blank lines (``ESC d n``)."""

    lines: int


@dataclass(frozen=True, slots=True)
class Cut:
    """Cut the paper (``GS V``); ``partial`` leaves a hinge, as most receipt printers do."""

    partial: bool = True


@dataclass(frozen=True, slots=True)
class DrawerKick:
    """Pulse a cash drawer connector: ``ESC p m t1 t2``, or in real time ``DLE DC4 1 m t``.

    A printer stopped by paper end or an open cover ignores ``ESC p`` (it is queued behind the
    unprinted receipt) but still executes the real-time form: the lane uses that to open the
    drawer for a cash sale whose receipt cannot print.

    Attributes:
        pin: drawer connector pin, 2 (first drawer) or 5 (second drawer).
        on_ms: pulse on time in milliseconds (``ESC p``: 2 ms units, at most 510; real time:
            100 ms units, 100-800, and the off time equals the on time).
        off_ms: pulse off time in milliseconds.
        realtime: sent as ``DLE DC4`` (executed at once, even when the printer is stopped).
    """

    pin: int = 2
    on_ms: int = 100
    off_ms: int = 500
    realtime: bool = False

    def __post_init__(self) -> None:
        if self.pin not in (2, 5):
            raise ValueError("drawer pin must be 2 or 5")
        limit = 800 if self.realtime else 510
        if not (0 <= self.on_ms <= limit and 0 <= self.off_ms <= limit):
            raise ValueError(f"drawer pulse times must be 0-{limit} ms")


DRAWER_KICK_PULSE: Final = DrawerKick(pin=2, on_ms=100, off_ms=500)
"""The pulse most drawers open with (100 ms on, 500 ms off on pin 2)."""

DRAWER_KICK_REALTIME: Final = DrawerKick(pin=2, on_ms=200, off_ms=200, realtime=True)
"""The real-time pulse (``DLE DC4 1 0 2``), for a printer stopped by paper end or cover open."""

Block = TextLine | QrCode | RasterImage | Feed | Cut | DrawerKick

_QR_EC: Final = {"L": 48, "M": 49, "Q": 50, "H": 51}


def _style_bytes(style: Style, align: Align) -> bytes:
    size = ((style.width - 1) << 4) | (style.height - 1)
    return (
        ESC
        + b"a"
        + bytes([align])
        + ESC
        + b"E"
        + bytes([style.bold])
        + ESC
        + b"-"
        + bytes([style.underline])
        + GS
        + b"!"
        + bytes([size])
    )


def _text_bytes(text: str, encoding: PrinterEncoding) -> bytes:
    if "\n" in text or "\r" in text:
        raise ValueError("a text line must not contain line breaks")
    # Control characters in text would be read as printer commands: print them as spaces.
    clean = "".join(ch if ch >= " " or ch == "\t" else " " for ch in text)
    try:
        return clean.encode(encoding.value)
    except UnicodeEncodeError:
        # GBK lacks a few characters (e.g. the euro sign, rare Hanzi): print "?" for them and
        # say so, rather than refuse the whole receipt.
        logger.warning("text has characters outside %s; printed as '?'", encoding.value)
        return clean.encode(encoding.value, errors="replace")


def _qr_function(fn: int, payload: bytes) -> bytes:
    size = len(payload) + 2
    return GS + b"(k" + bytes([size & 0xFF, size >> 8, 49, fn]) + payload


def encode_block(block: Block, encoding: PrinterEncoding) -> bytes:  # noqa: PLR0911 - one per kind
    """Encode one block; styles are set fully before each text line and reset after it."""
    if isinstance(block, TextLine):
        styled = block.style != PLAIN or block.align is not Align.LEFT
        body = _text_bytes(block.text, encoding) + LF
        if not styled:
            return body
        return _style_bytes(block.style, block.align) + body + _style_bytes(PLAIN, Align.LEFT)
    if isinstance(block, QrCode):
        data = block.data.encode()
        return (
            ESC
            + b"a\x01"
            + _qr_function(65, bytes([50, 0]))  # model 2
            + _qr_function(67, bytes([block.size]))
            + _qr_function(69, bytes([_QR_EC[block.ec]]))
            + _qr_function(80, b"0" + data)
            + _qr_function(81, b"0")
            + ESC
            + b"a\x00"
        )
    if isinstance(block, RasterImage):
        w, h = block.width_bytes, block.height
        return GS + b"v0\x00" + bytes([w & 0xFF, w >> 8, h & 0xFF, h >> 8]) + block.data
    if isinstance(block, Feed):
        return ESC + b"d" + bytes([min(block.lines, 255)])
    if isinstance(block, Cut):
        return GS + b"V" + (b"\x01" if block.partial else b"\x00")
    m = 0 if block.pin == 2 else 1
    if block.realtime:
        return DLE + b"\x14\x01" + bytes([m, max(1, min(8, block.on_ms // 100))])
    return ESC + b"p" + bytes([m, block.on_ms // 2, block.off_ms // 2])


def encode(blocks: list[Block], encoding: PrinterEncoding = PrinterEncoding.GB18030) -> bytes:
    """Encode a whole job: initialise the printer, select Hanzi mode if needed, then each block.

    Args:
        blocks: what to print, in order.
        encoding: the printer's text encoding setting.

    Returns:
        The job's bytes, ready for the transport.
    """
    head = ESC + b"@" + (FS + b"&" if encoding.hanzi_mode else FS + b".")
    return head + b"".join(encode_block(block, encoding) for block in blocks)
