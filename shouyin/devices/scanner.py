"""Serial barcode scanners: codes terminated by CR, LF or CR LF (or a configured suffix).

A scanner in serial (RS232 / USB-COM) mode sends each code followed by a suffix, by default CR.
:class:`ScanFramer` is the pure part (bytes in, codes out, partial codes kept across reads);
:func:`read_codes` reads a serial port with pyserial-asyncio-fast and yields the codes, which the
lane handles exactly like the digits + Enter a keyboard-wedge scanner types (scale and in-store
barcodes are then parsed by :mod:`shouyin.domain.barcodes`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

from shouyin.devices.errors import ScannerError

if TYPE_CHECKING:
    from shouyin.config import Settings

__all__ = ["SUFFIXES", "ScanFramer", "SerialScanner", "open_scanner", "read_codes"]

logger = logging.getLogger(__name__)

MAX_CODE_LENGTH: Final = 128  # longest GS1 DataMatrix a checkout would see is shorter
SUFFIXES: Final = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "tab": b"\t", "etx": b"\x03"}
_GS: Final = 0x1D  # GS1 group separator (FNC1) inside a code: kept


class ScanFramer:
    """Split a scanner's byte stream into codes.

    Args:
        suffix: ``"cr"`` (default; LF and CR LF are accepted too), ``"lf"``, ``"crlf"``,
            ``"tab"`` or ``"etx"``.
    """

    def __init__(self, suffix: str = "cr") -> None:
        if suffix not in SUFFIXES:
            raise ScannerError(f"unknown suffix {suffix!r}; use one of {', '.join(SUFFIXES)}")
        # CR, LF and CR LF all end a code (scanners are set to any of them); tab/ETX only when
        # configured, since they are otherwise not expected.
        self._ends = set(b"\r\n") | set(SUFFIXES[suffix])
        self._buf = bytearray()
        self.dropped = 0  # codes dropped as too long or not text

    def feed(self, data: bytes) -> list[str]:
        """Consume ``data``; return the complete codes in it (empty lines are skipped)."""
        codes: list[str] = []
        for byte in data:
            if byte in self._ends:
                code = self._take()
                if code:
                    codes.append(code)
            elif len(self._buf) <= MAX_CODE_LENGTH:
                self._buf.append(byte)
        return codes

    def _take(self) -> str | None:
        raw, self._buf = bytes(self._buf), bytearray()
        if not raw:
            return None
        if len(raw) > MAX_CODE_LENGTH or any((b < 0x20 and b != _GS) or b > 0x7E for b in raw):
            self.dropped += 1
            logger.warning("scanner sent an unreadable code (%d bytes): dropped", len(raw))
            return None
        return raw.decode("ascii")


async def read_codes(
    reader: asyncio.StreamReader, framer: ScanFramer | None = None
) -> AsyncIterator[str]:
    """Yield each code read from ``reader`` until it ends."""
    framer = framer or ScanFramer()
    while chunk := await reader.read(4096):
        for code in framer.feed(chunk):
            yield code


class SerialScanner:
    """An open serial scanner: ``async for code in scanner.codes(): ...``; then :meth:`close`.

    Open with :meth:`open` (the port is open when it returns: a code sent before that is lost,
    as pyserial clears the input on open).
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framer: ScanFramer
    ) -> None:
        self._reader, self._writer, self.framer = reader, writer, framer

    @classmethod
    async def open(cls, port: str, *, baud: int = 9600, suffix: str = "cr") -> SerialScanner:
        """Open ``port`` (8N1, as scanners ship).

        Raises:
            ScannerError: the port cannot be opened, or the suffix is unknown.
        """
        import serial
        import serial_asyncio_fast

        framer = ScanFramer(suffix)
        try:
            reader, writer = await serial_asyncio_fast.open_serial_connection(
                url=port, baudrate=baud
            )
        except (serial.SerialException, OSError) as error:
            raise ScannerError(f"{port}: {error}") from error
        return cls(reader, writer, framer)

    @classmethod
    async def from_settings(cls, settings: Settings) -> SerialScanner | None:
        """Open the lane's scanner (``SHOUYIN_SCANNER_PORT``, ``SHOUYIN_SCANNER_SUFFIX``), or
        return None when the lane has none (keyboard-wedge scanners need no setting)."""
        if not settings.scanner_port:
            return None
        return await cls.open(settings.scanner_port, suffix=settings.scanner_suffix)

    def codes(self) -> AsyncIterator[str]:
        """The codes as they are scanned, until the port closes."""
        return read_codes(self._reader, self.framer)

    def close(self) -> None:
        """Close the port."""
        self._writer.close()


async def open_scanner(port: str, *, baud: int = 9600, suffix: str = "cr") -> AsyncIterator[str]:
    """Open a serial scanner and yield its codes (see :class:`SerialScanner`).

    Raises:
        ScannerError: the port cannot be opened.
    """
    scanner = await SerialScanner.open(port, baud=baud, suffix=suffix)
    try:
        async for code in scanner.codes():
            yield code
    finally:
        scanner.close()
