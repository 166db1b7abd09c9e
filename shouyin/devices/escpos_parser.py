"""A sans-I/O ESC/POS parser: bytes in, printed blocks and status queries out.

:class:`EscPosParser` is what the virtual printer runs on every chunk it receives: ``feed(data)``
returns the events completed by that chunk, keeping partial commands and partial multi-byte
characters for the next one (TCP splits anywhere). Text is decoded with the printer's encoding
only at a control byte: every byte of a GB18030/GBK/UTF-8 character is ``>= 0x30``, so a control
byte never cuts a character in two.

Real-time status requests (``DLE EOT n``) come out as :class:`StatusQuery` events at once, so the
server can answer them before the job ends, as a real printer does. Commands the parser does not
know are skipped by their documented length, or as two bytes (``ESC x``) when unknown; nothing
in the input makes it raise, loop or hold more than its limits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from shouyin.devices.escpos_model import (
    PLAIN,
    Align,
    Cut,
    DrawerKick,
    Feed,
    PrinterEncoding,
    QrCode,
    RasterImage,
    Style,
)

__all__ = [
    "Barcode",
    "EscPosParser",
    "Event",
    "PrintedLine",
    "StatusQuery",
    "TextRun",
    "UnknownCommand",
    "parse",
]

MAX_LINE_BYTES: Final = 4096  # a longer "line" is not a receipt: print what we have
# Style changes kept in one line: past this, the rest of the line takes the last style. Each run
# costs far more memory than its bytes of input (a style toggle between every character would
# otherwise turn a 1 MB job into tens of MB of runs).
MAX_RUNS: Final = 64
MAX_IMAGE_BYTES: Final = 1 << 20  # larger raster images are skipped, not stored
_EC_LETTERS: Final = {48: "L", 49: "M", 50: "Q", 51: "H"}
# ESC commands with one parameter byte: styles, alignment, feeds, spacing, fonts, code tables.
_ESC_ONE_ARG: Final = frozenset(b"EG-!adJ3MtRUV{ cr")


@dataclass(frozen=True, slots=True)
class TextRun:
    """Text printed in one style."""

    text: str
    style: Style = PLAIN


@dataclass(frozen=True, slots=True)
class PrintedLine:
    """A line as printed: its runs and its justification."""

    runs: tuple[TextRun, ...]
    align: Align = Align.LEFT

    @property
    def text(self) -> str:
        """The line's characters, styles dropped."""
        return "".join(run.text for run in self.runs)


@dataclass(frozen=True, slots=True)
class StatusQuery:
    """``DLE EOT n``: the host asks for status ``n`` (1 printer, 2 offline, 3 error, 4 paper)."""

    n: int


@dataclass(frozen=True, slots=True)
class Barcode:
    """A 1D barcode (``GS k``): its symbology number and data."""

    kind: int
    data: str


@dataclass(frozen=True, slots=True)
class UnknownCommand:
    """A command the parser skipped (kept for diagnostics)."""

    raw: bytes


Event = (
    PrintedLine
    | QrCode
    | RasterImage
    | Barcode
    | Feed
    | Cut
    | DrawerKick
    | StatusQuery
    | UnknownCommand
)


class _NeedMore(Exception):
    """The buffer ends inside a command."""


class EscPosParser:
    """Incremental ESC/POS parser (one per printer connection).

    Args:
        encoding: how the printer decodes text bytes.
    """

    def __init__(self, encoding: PrinterEncoding = PrinterEncoding.GB18030) -> None:
        self.encoding = encoding
        self._buf = bytearray()
        self._skip = 0  # bytes of an oversize command still to discard
        self._text = bytearray()  # undecoded text of the current run
        self._runs: list[TextRun] = []
        self._line_bytes = 0  # text bytes of the current line already in _runs
        self._style = PLAIN
        self._align = Align.LEFT
        self._qr_data = b""
        self._qr_size = 3
        self._qr_ec = "L"

    # -- public ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the events it completes, in order."""
        self._buf += data
        out: list[Event] = []
        if self._skip:
            dropped = min(self._skip, len(self._buf))
            del self._buf[:dropped]
            self._skip -= dropped
        pos = 0
        while pos < len(self._buf):
            try:
                pos = self._step(pos, out)
            except _NeedMore:
                break
        del self._buf[:pos]
        return out

    def close(self) -> list[Event]:
        """End of the job: print a last unterminated line (printers do at their buffer's end)."""
        out: list[Event] = []
        self._end_line(out, force=False)
        self._buf.clear()
        return out

    # -- text and lines ----------------------------------------------------------------------

    def _flush_run(self) -> None:
        if self._text:
            text = bytes(self._text).decode(self.encoding.value, errors="replace")
            self._line_bytes += len(self._text)
            self._text.clear()
            self._runs.append(TextRun(text, self._style))

    def _set_style(self, style: Style) -> None:
        if style != self._style:
            if len(self._runs) < MAX_RUNS - 1:  # else the pending text takes the newer style
                self._flush_run()
            self._style = style

    def _end_line(self, out: list[Event], *, force: bool = True) -> None:
        self._flush_run()
        if self._runs or force:
            out.append(PrintedLine(tuple(self._runs), self._align))
        self._runs = []
        self._line_bytes = 0

    # -- the command table -------------------------------------------------------------------

    def _need(self, pos: int, count: int) -> bytes:
        if pos + count > len(self._buf):
            raise _NeedMore
        return bytes(self._buf[pos : pos + count])

    def _step(self, pos: int, out: list[Event]) -> int:  # noqa: PLR0911 - one per control
        byte = self._buf[pos]
        if byte >= 0x20:
            end = pos
            while end < len(self._buf) and self._buf[end] >= 0x20:
                end += 1
            self._text += self._buf[pos:end]
            if self._line_bytes + len(self._text) >= MAX_LINE_BYTES:  # the whole line counts
                self._end_line(out)
            return end
        if byte == 0x0A:  # LF: print and feed one line
            self._end_line(out)
            return pos + 1
        if byte == 0x09:  # HT: next tab stop (every 8 columns by default)
            self._text += b" "
            return pos + 1
        if byte == 0x18:  # CAN: cancel the line being built
            self._text.clear()
            self._runs = []
            self._line_bytes = 0
            return pos + 1
        if byte == 0x1B:
            return self._esc(pos, out)
        if byte == 0x1D:
            return self._gs(pos, out)
        if byte == 0x10:
            return self._dle(pos, out)
        if byte == 0x1C:  # FS & / FS . (Hanzi mode on/off), FS C n, FS ! n: no visible effect
            code = self._need(pos, 2)[1]
            return pos + (3 if code in b"C!-W" else 2)
        return pos + 1  # CR, FF, NUL and other controls print nothing

    def _esc(self, pos: int, out: list[Event]) -> int:  # noqa: PLR0911, PLR0912 - command table
        code = self._need(pos, 2)[1]
        if code == ord("@"):  # initialise: styles back to default
            self._set_style(PLAIN)
            self._align = Align.LEFT
            return pos + 2
        if code == ord("2"):  # default line spacing
            return pos + 2
        if code == ord("p"):
            m, t1, t2 = self._need(pos, 5)[2:5]
            out.append(DrawerKick(pin=2 if m in (0, 48) else 5, on_ms=t1 * 2, off_ms=t2 * 2))
            return pos + 5
        if code in (ord("$"), ord("\\")):  # absolute / relative print position (nL nH)
            self._need(pos, 4)
            return pos + 4
        if code == ord("*"):
            return self._esc_bit_image(pos, out)
        if code not in _ESC_ONE_ARG:
            out.append(UnknownCommand(bytes(self._buf[pos : pos + 2])))
            return pos + 2
        arg = self._need(pos, 3)[2]
        if code in (ord("E"), ord("G")):
            self._set_style(replace(self._style, bold=bool(arg & 1)))
        elif code == ord("-"):
            self._set_style(replace(self._style, underline=bool(arg & 3)))
        elif code == ord("!"):
            self._set_style(
                Style(
                    bold=bool(arg & 0x08),
                    underline=bool(arg & 0x80),
                    width=2 if arg & 0x20 else 1,
                    height=2 if arg & 0x10 else 1,
                )
            )
        elif code == ord("a"):
            if not self._runs and not self._text:  # takes effect at the start of a line only
                self._align = Align(arg % 48) if arg in (0, 1, 2, 48, 49, 50) else Align.LEFT
        elif code == ord("d"):
            if self._runs or self._text:  # the pending line is the first of the n lines
                self._end_line(out)
                arg -= 1
            if arg > 0:
                out.append(Feed(arg))
        return pos + 3

    def _esc_bit_image(self, pos: int, out: list[Event]) -> int:
        m, n_low, n_high = self._need(pos, 5)[2:5]
        size = (n_low + 256 * n_high) * (3 if m in (32, 33) else 1)
        out.append(UnknownCommand(bytes(self._buf[pos : pos + 5])))
        return self._skip_bytes(pos + 5, size)

    def _skip_bytes(self, start: int, size: int) -> int:
        available = len(self._buf) - start
        if size <= available:
            return start + size
        self._skip = size - available
        return len(self._buf)

    def _gs(self, pos: int, out: list[Event]) -> int:  # noqa: PLR0911 - one per command
        code = self._need(pos, 2)[1]
        if code == ord("!"):
            arg = self._need(pos, 3)[2]
            width, height = (arg >> 4 & 7) + 1, (arg & 7) + 1
            self._set_style(replace(self._style, width=width, height=height))
            return pos + 3
        if code == ord("V"):
            mode = self._need(pos, 3)[2]
            if mode in (65, 66, 97, 98, 103, 104):  # "feed and cut" forms carry a feed amount
                self._need(pos, 4)
                out.append(Cut(partial=mode in (66, 98, 104)))
                return pos + 4
            out.append(Cut(partial=mode in (1, 49)))
            return pos + 3
        if code == ord("(") and self._need(pos, 3)[2] in b"kL":
            return self._gs_paren(pos, out)
        if code == ord("v"):
            return self._gs_raster(pos, out)
        if code == ord("k"):
            return self._gs_barcode(pos, out)
        if code in b"BHhwfaLW":  # style/barcode settings, margins: no visible text effect
            return pos + (4 if code in b"LW" else 3)
        out.append(UnknownCommand(bytes(self._buf[pos : pos + 2])))
        return pos + 2

    def _gs_paren(self, pos: int, out: list[Event]) -> int:
        head = self._need(pos, 5)
        size = head[3] + 256 * head[4]
        if head[2] == ord("L"):  # graphics data: skipped (python-escpos uses GS v 0 by default)
            out.append(UnknownCommand(head))
            return self._skip_bytes(pos + 5, size)
        body = self._need(pos + 5, size)
        if len(body) >= 2 and body[0] == 49:  # cn 49: QR code
            fn, params = body[1], body[2:]
            if fn == 67 and params:
                self._qr_size = params[0]
            elif fn == 69 and params:
                self._qr_ec = _EC_LETTERS.get(params[0], "L")
            elif fn == 80:
                self._qr_data = params[1:]
            elif fn == 81:
                self._print_qr(out)
        else:
            out.append(UnknownCommand(bytes(head)))
        return pos + 5 + size

    def _print_qr(self, out: list[Event]) -> None:
        try:
            text = self._qr_data.decode("utf-8")
            out.append(QrCode(text, size=min(max(self._qr_size, 1), 16), ec=self._qr_ec))
        except (UnicodeDecodeError, ValueError):
            out.append(UnknownCommand(b"\x1d(k" + self._qr_data[:32]))

    def _gs_raster(self, pos: int, out: list[Event]) -> int:
        head = self._need(pos, 8)
        if head[2] != ord("0"):
            out.append(UnknownCommand(head[:3]))
            return pos + 3
        width = head[4] + 256 * head[5]
        height = head[6] + 256 * head[7]
        size = width * height
        if size > MAX_IMAGE_BYTES:
            out.append(UnknownCommand(head))
            return self._skip_bytes(pos + 8, size)
        data = self._need(pos + 8, size)
        self._end_line(out, force=False)
        out.append(RasterImage(width, height, data))
        return pos + 8 + size

    def _gs_barcode(self, pos: int, out: list[Event]) -> int:
        kind = self._need(pos, 3)[2]
        if kind <= 6:  # NUL-terminated data
            end = self._buf.find(b"\x00", pos + 3, pos + 3 + 256)
            if end < 0:
                if len(self._buf) - pos > 259:
                    return pos + 3
                raise _NeedMore
            out.append(Barcode(kind, self._buf[pos + 3 : end].decode("ascii", "replace")))
            return end + 1
        length = self._need(pos, 4)[3]
        data = self._need(pos + 4, length)
        out.append(Barcode(kind, data.decode("ascii", "replace")))
        return pos + 4 + length

    def _dle(self, pos: int, out: list[Event]) -> int:
        code = self._need(pos, 2)[1]
        if code == 0x04:  # DLE EOT n: real-time status
            out.append(StatusQuery(self._need(pos, 3)[2]))
            return pos + 3
        if code == 0x05:  # DLE ENQ n: real-time request (recover, clear buffer)
            return pos + 3
        if code == 0x14:  # DLE DC4 fn m t: with fn 1, a real-time drawer pulse
            fn, m, t = self._need(pos, 5)[2:5]
            if fn == 1:
                pulse = min(max(t, 1), 8) * 100  # t: 100 ms units, 1-8
                out.append(DrawerKick(2 if m == 0 else 5, pulse, pulse, realtime=True))
            return pos + 5
        return pos + 1


def parse(data: bytes, encoding: PrinterEncoding = PrinterEncoding.GB18030) -> list[Event]:
    """Parse a whole job at once (see :class:`EscPosParser`)."""
    parser = EscPosParser(encoding)
    return parser.feed(data) + parser.close()
