"""Customer display (客显): the Epson ESC/POS customer-display command set, 2 lines x 20 columns.

Protocol: "ESC/POS customer display commands" as on Epson DM-D pole displays and the many
VFD/LCD displays that copy them (standard mode, overwrite), the subset a checkout needs:

======================  ===========  ===============================================
command                 bytes        effect
======================  ===========  ===============================================
ESC @                   1B 40        initialise: clear, cursor home, overwrite mode
FS &                    1C 26        Chinese (GB) mode, on displays that have it
CLR                     0C           clear the screen, cursor home
CAN                     18           clear the cursor's line, cursor to its start
US $ x y                1F 24 x y    cursor to column x (1-20), row y (1-2)
HOM                     0B           cursor home
CR / LF                 0D / 0A      cursor to line start / next line
BS / HT                 08 / 09      cursor left / right
======================  ===========  ===============================================

Text is GB18030 (a character of two bytes, a Hanzi or a sign such as ``￥ ×``, takes two columns,
as on paper) or ASCII for displays without Chinese: those get English labels (``PRICE``,
``TOTAL``, ``PAID``, ``CHANGE``) and amounts without the ``￥`` sign, which they would show as
``?``.
:func:`item_screen`, :func:`total_screen` and :func:`change_screen` lay out what the customer
sees; :func:`encode_screen` turns two lines into bytes; :class:`DisplayDecoder` is the
display's side, used by the simulator (``shouyin display sim``) and tests. All pure.

For the 8-digit LED price displays common in Chinese shops, see
:mod:`shouyin.devices.display_led` (``SHOUYIN_DISPLAY_PROTOCOL=led``).
"""

from __future__ import annotations

import codecs
from typing import Final

from shouyin.devices.receipt import display_width, fit, money, pad
from shouyin.domain.money import Money

__all__ = [
    "COLUMNS",
    "ROWS",
    "DisplayDecoder",
    "Screen",
    "change_screen",
    "encode_screen",
    "init_bytes",
    "item_screen",
    "total_screen",
]

COLUMNS: Final = 20
ROWS: Final = 2
ESC_INIT: Final = b"\x1b@"
CLR: Final = b"\x0c"

DEFAULT_ENCODING: Final = "gb18030"

Screen = tuple[str, str]

# Labels by whether the display has Hanzi: price, total (line 1 of the total screen), paid, change.
_HANZI_LABELS: Final = ("单价", "总计 TOTAL", "收款", "找零")
_ASCII_LABELS: Final = ("PRICE", "TOTAL", "PAID", "CHANGE")


def _has_hanzi(encoding: str) -> bool:
    try:
        "单价￥".encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _labels(encoding: str) -> tuple[str, str, str, str]:
    return _HANZI_LABELS if _has_hanzi(encoding) else _ASCII_LABELS


def _amount(amount: Money, encoding: str) -> str:
    return money(amount) if _has_hanzi(encoding) else amount.plain()


def _two(label: str, value: str, encoding: str) -> str:
    value_width = display_width(value, encoding)
    left = fit(label, max(1, COLUMNS - value_width - 1), encoding)[0]
    return pad(left, COLUMNS - value_width, encoding=encoding) + value


def item_screen(
    name: str, price: Money, quantity: int = 1, encoding: str = DEFAULT_ENCODING
) -> Screen:
    """A scanned item: its name (cut to fit), then ``单价`` (``PRICE`` on an ASCII display) and
    the unit price (x quantity)."""
    detail = _amount(price, encoding) + (f" x{quantity}" if quantity != 1 else "")
    return fit(name, COLUMNS, encoding)[0], _two(_labels(encoding)[0], detail, encoding)


def total_screen(total: Money, encoding: str = DEFAULT_ENCODING) -> Screen:
    """The amount due."""
    label = _labels(encoding)[1]
    return _two(label, "", encoding), _two("", _amount(total, encoding), encoding)


def change_screen(paid: Money, change: Money, encoding: str = DEFAULT_ENCODING) -> Screen:
    """What the customer paid and the change."""
    _, _, paid_label, change_label = _labels(encoding)
    return (
        _two(paid_label, _amount(paid, encoding), encoding),
        _two(change_label, _amount(change, encoding), encoding),
    )


def encode_screen(screen: Screen, encoding: str = DEFAULT_ENCODING) -> bytes:
    """Bytes that show ``screen`` (clear, line 1, cursor to row 2, line 2).

    Characters the display's encoding lacks are sent as ``?``.
    """
    first, second = (fit(line, COLUMNS, encoding)[0] for line in screen)
    return (
        CLR
        + first.encode(encoding, errors="replace")
        + b"\x1f$\x01\x02"
        + second.encode(encoding, errors="replace")
    )


def init_bytes(encoding: str = "gb18030") -> bytes:
    """Initialise the display (and its Chinese mode for a GB encoding)."""
    return ESC_INIT + (b"\x1c&" if encoding.lower().startswith("gb") else b"")


class DisplayDecoder:
    """The display's side: bytes in, what a customer sees out (:meth:`lines`).

    A wide character takes two cells; writing past the last column moves to the next row (and
    stays on the last cell of row 2, overwriting, as displays in overwrite mode do).
    """

    def __init__(self, encoding: str = DEFAULT_ENCODING) -> None:
        self.encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._cells = [[" "] * COLUMNS for _ in range(ROWS)]
        self._row = self._col = 0
        self._pending = bytearray()  # an incomplete command

    def lines(self) -> Screen:
        """The two rows as text, trailing blanks dropped (a wide character counts once)."""
        first, second = ("".join(row).rstrip() for row in self._cells)
        return first, second

    def feed(self, data: bytes) -> None:
        """Consume bytes from the serial line."""
        buf = bytes(self._pending) + data
        self._pending.clear()
        pos = 0
        while pos < len(buf):
            byte = buf[pos]
            if byte >= 0x20:
                end = pos
                while end < len(buf) and buf[end] >= 0x20:
                    end += 1
                for ch in self._decoder.decode(buf[pos:end]):
                    self._put(ch)
                pos = end
                continue
            size = {0x1B: 2, 0x1C: 2, 0x1F: 2}.get(byte, 1)
            if byte == 0x1F and len(buf) > pos + 1 and buf[pos + 1] == ord("$"):
                size = 4
            if byte == 0x1B and len(buf) > pos + 1 and buf[pos + 1] in b"tR=":
                size = 3
            if pos + size > len(buf):
                self._pending += buf[pos:]
                break
            self._control(buf[pos : pos + size])
            pos += size

    def _control(self, command: bytes) -> None:
        code = command[0]
        if command == ESC_INIT or code == 0x0C:
            self._cells = [[" "] * COLUMNS for _ in range(ROWS)]
            self._row = self._col = 0
        elif code == 0x18:
            self._cells[self._row] = [" "] * COLUMNS
            self._col = 0
        elif command[:2] == b"\x1f$":
            self._col = min(max(command[2], 1), COLUMNS) - 1
            self._row = min(max(command[3], 1), ROWS) - 1
        elif code == 0x0B:
            self._row = self._col = 0
        elif code == 0x0D:
            self._col = 0
        elif code == 0x0A:
            self._row = min(self._row + 1, ROWS - 1)
        elif code == 0x08:
            self._col = max(self._col - 1, 0)
        elif code == 0x09:
            self._col = min(self._col + 1, COLUMNS - 1)

    def _put(self, ch: str) -> None:
        # The display's own rule, from its bytes (not the layout's display_width): a character
        # it received as two or more bytes is drawn from its Hanzi font, two cells wide.
        width = 2 if len(ch.encode(self.encoding, errors="replace")) >= 2 else 1
        if self._col + width > COLUMNS:
            if self._row == ROWS - 1:
                return  # no room left on the display: the character is lost, as on the device
            self._row, self._col = self._row + 1, 0
        row = self._cells[self._row]
        start, end = self._col, self._col + width
        # Overwriting half of a wide character blanks its other half, as the display does.
        if row[start] == "" and start > 0:
            row[start - 1] = " "
        if end < COLUMNS and row[end] == "":
            row[end] = " "
        row[start] = ch
        if width == 2:
            row[start + 1] = ""
        self._col = end
