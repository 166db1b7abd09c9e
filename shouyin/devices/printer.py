"""The receipt printer's connection: address, python-escpos transport, real-time status.

A printer is named by a URL (a lane setting, ``SHOUYIN_PRINTER_URL``):

* ``tcp://192.168.1.50:9100`` — a network printer on raw TCP (port 9100 when omitted);
* ``serial:///dev/ttyUSB0?baud=19200`` — RS232 or USB-serial (9600 baud when omitted);
* ``usb://0416:5011`` — a USB printer class device by vendor:product id (needs pyusb);
* ``dummy://`` — python-escpos's in-memory printer (its bytes are kept, nothing is sent).

python-escpos's printer classes are the transport: :class:`PrinterLink` sends the bytes encoded by
:mod:`shouyin.devices.escpos_model` through their ``_raw`` and reads status replies through their
``_read``. It composes them rather than inheriting their command set (STYLE.md), and opens the
connection explicitly instead of on first use of their ``device`` property.

Status: ``DLE EOT 1`` (online), ``2`` (offline cause: cover open, paper end), ``4`` (paper roll
sensor: near end, out). A status byte has bits 1 and 4 set and bits 0 and 7 clear; anything else
is not an answer. A printer that answers nothing within the timeout is reported ``UNKNOWN`` — many
cheap printers, and every USB one without a bulk-in endpoint, never answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from shouyin.devices.errors import PrinterError, PrinterErrorKind
from shouyin.devices.escpos_model import PrinterEncoding

__all__ = [
    "PrinterConfig",
    "PrinterLink",
    "PrinterState",
    "PrinterStatus",
    "status_from_replies",
]

logger = logging.getLogger(__name__)

DLE_EOT: Final = b"\x10\x04"
DEFAULT_TCP_PORT: Final = 9100
DEFAULT_BAUD: Final = 9600


class PrinterState(StrEnum):
    """The one thing the cashier page shows about the printer."""

    OK = "ok"
    NEAR_END = "near_end"  # prints, but the roll is nearly used up: change it soon
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"  # cannot be reached, or says it is offline
    UNKNOWN = "unknown"  # reached, but it does not answer status queries

    @property
    def can_print(self) -> bool:
        """Whether a receipt sent now would come out (an unknown printer is given the benefit)."""
        return self in (PrinterState.OK, PrinterState.NEAR_END, PrinterState.UNKNOWN)


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """Decoded real-time status.

    Attributes:
        state: the summary (worst condition first: offline, cover open, paper out, near end).
        answered: whether the printer answered at all.
        online: the printer says it is online (``None`` when it did not say).
        cover_open: the cover is open.
        paper_near_end: the near-end sensor sees the end of the roll.
        paper_out: no paper.
    """

    state: PrinterState
    answered: bool = True
    online: bool | None = None
    cover_open: bool = False
    paper_near_end: bool = False
    paper_out: bool = False


def _valid(reply: int | None) -> int | None:
    """A status byte, or None for no answer or a byte that is not a status byte."""
    return reply if reply is not None and reply & 0x93 == 0x12 else None


def status_from_replies(
    printer: int | None, offline_cause: int | None, paper: int | None
) -> PrinterStatus:
    """Decode the replies to ``DLE EOT 1``, ``2`` and ``4`` (``None``: no answer).

    Bits (Epson ESC/POS): n=1 bit 3 offline; n=2 bit 2 cover open, bit 5 stopped at paper end;
    n=4 bits 2-3 roll near end, bits 5-6 roll end.
    """
    printer, offline_cause, paper = _valid(printer), _valid(offline_cause), _valid(paper)
    if printer is None and offline_cause is None and paper is None:
        return PrinterStatus(PrinterState.UNKNOWN, answered=False)
    online = None if printer is None else not printer & 0x08
    cover_open = offline_cause is not None and bool(offline_cause & 0x04)
    paper_out = (paper is not None and bool(paper & 0x60)) or (
        offline_cause is not None and bool(offline_cause & 0x20)
    )
    near_end = paper is not None and bool(paper & 0x0C)
    if cover_open:
        state = PrinterState.COVER_OPEN
    elif paper_out:
        state = PrinterState.PAPER_OUT
    elif online is False:
        state = PrinterState.OFFLINE
    elif near_end:
        state = PrinterState.NEAR_END
    else:
        state = PrinterState.OK
    return PrinterStatus(state, True, online, cover_open, near_end, paper_out)


@dataclass(frozen=True, slots=True)
class PrinterConfig:
    """Where the printer is and how it talks.

    Attributes:
        url: ``tcp://host:port``, ``serial:///dev/ttyX?baud=N``, ``usb://VID:PID`` or
            ``dummy://`` (see the module docstring).
        encoding: the printer's text encoding setting.
        columns: characters per line: 32 for 58 mm paper, 48 for 80 mm.
        timeout: seconds to connect, send, or wait for a status answer.
    """

    url: str
    encoding: PrinterEncoding = PrinterEncoding.GB18030
    columns: int = 32
    timeout: float = 2.0

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme
        if scheme not in ("tcp", "serial", "usb", "dummy"):
            raise PrinterError(PrinterErrorKind.CONFIG, f"unsupported printer URL {self.url!r}")
        if self.columns not in (32, 42, 48):
            raise PrinterError(PrinterErrorKind.CONFIG, "columns must be 32, 42 or 48")
        if self.timeout <= 0:
            raise PrinterError(PrinterErrorKind.CONFIG, "timeout must be positive")

    def make_printer(self) -> Any:
        """A python-escpos printer object for :attr:`url` (not yet opened)."""
        from escpos import printer as escpos_printer

        parts = urlsplit(self.url)
        if parts.scheme == "tcp":
            return escpos_printer.Network(
                parts.hostname or "127.0.0.1", parts.port or DEFAULT_TCP_PORT, self.timeout
            )
        if parts.scheme == "serial":
            baud = int(parse_qs(parts.query).get("baud", [str(DEFAULT_BAUD)])[0])
            return escpos_printer.Serial(parts.path, baudrate=baud, timeout=self.timeout)
        if parts.scheme == "usb":
            vid, _, pid = parts.netloc.partition(":")
            return escpos_printer.Usb(int(vid, 16), int(pid, 16), timeout=int(self.timeout * 1000))
        return escpos_printer.Dummy()


class PrinterLink:
    """An open connection to a printer: send bytes, ask for status. Synchronous, with timeouts.

    Use as a context manager; it closes the connection (and so ends the network print job).

    Args:
        config: the printer's settings.
        printer: a python-escpos printer object to use instead of one made from ``config``
            (e.g. a ``Dummy``, or one a caller configured specially).
    """

    def __init__(self, config: PrinterConfig, printer: Any = None) -> None:
        self.config = config
        self.printer = printer if printer is not None else config.make_printer()

    def __enter__(self) -> PrinterLink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Connect (python-escpos would otherwise connect on first use, hiding the error).

        Raises:
            PrinterError: kind ``OFFLINE`` when the printer cannot be reached.
        """
        try:
            self.printer.open()
        except Exception as error:  # python-escpos raises its own and OS errors alike
            raise PrinterError(PrinterErrorKind.OFFLINE, str(error)) from error

    def close(self) -> None:
        """Close the connection; never raises."""
        try:
            self.printer.close()
        except Exception:  # closing a dead connection is not worth an error
            logger.debug("printer close failed", exc_info=True)

    def send(self, data: bytes) -> int:
        """Send ``data``; return how many bytes were sent.

        Raises:
            PrinterError: kind ``OFFLINE`` when the connection fails or times out.
        """
        try:
            self.printer._raw(data)
        except Exception as error:
            raise PrinterError(PrinterErrorKind.OFFLINE, str(error)) from error
        return len(data)

    def query(self, n: int) -> int | None:
        """Send ``DLE EOT n``; return the status byte, or None if none came within the timeout."""
        try:
            self.printer._raw(DLE_EOT + bytes([n]))
            reply: bytes = self.printer._read()
        except (TimeoutError, NotImplementedError):
            return None
        except Exception as error:
            if "timeout" in type(error).__name__.lower():  # pyusb's USBTimeoutError
                return None
            # A broken connection: the printer is offline.
            raise PrinterError(PrinterErrorKind.OFFLINE, str(error)) from error
        return reply[-1] if reply else None

    def status(self) -> PrinterStatus:
        """Ask ``DLE EOT 1``, then (if it answers) ``2`` and ``4``; decode the answers."""
        online = self.query(1)
        if online is None:  # it does not answer: do not wait out two more timeouts
            return status_from_replies(None, None, None)
        return status_from_replies(online, self.query(2), self.query(4))
