"""The virtual customer display (``shouyin display sim``): a pty pair standing for the cable.

The lane opens :attr:`VirtualDisplay.path` as its display port (``SHOUYIN_DISPLAY_PORT``); the
simulator reads the other end and decodes it with
:class:`~shouyin.devices.display.DisplayDecoder` into what a customer would see. POSIX only.
"""

from __future__ import annotations

import contextlib
import os
import select
import time

from shouyin.devices.display import DisplayDecoder, Screen
from shouyin.devices.display_led import LedDecoder

__all__ = ["VirtualDisplay"]


class VirtualDisplay:
    """A pole display on a pty (a context manager closing both ends).

    Args:
        encoding: the display's text encoding (``gb18030`` or ``ascii``).
        protocol: ``vfd`` (2x20 text) or ``led`` (8 digits and lamps: the screen is
            ``(lamp label, digits)``).
    """

    def __init__(self, encoding: str = "gb18030", protocol: str = "vfd") -> None:
        import pty
        import tty

        self.decoder: DisplayDecoder | LedDecoder = (
            LedDecoder() if protocol == "led" else DisplayDecoder(encoding)
        )
        self._master, self._slave = pty.openpty()
        for fd in (self._master, self._slave):
            tty.setraw(fd)
        self.path = os.ttyname(self._slave)
        self.bytes_received = 0

    def __enter__(self) -> VirtualDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close both ends of the pty."""
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def screen(self) -> Screen:
        """What the display shows now."""
        return self.decoder.lines()

    def pump(self, timeout: float) -> bool:
        """Read what has arrived, waiting at most ``timeout`` seconds for the first byte.

        Returns:
            Whether anything was read.
        """
        got = False
        wait = timeout
        for _ in range(1000):  # bounded: each round drains up to 4 KiB
            ready, _, _ = select.select([self._master], [], [], wait)
            if not ready:
                break
            try:
                data = os.read(self._master, 4096)
            except OSError:
                break
            if not data:
                break
            self.decoder.feed(data)
            self.bytes_received += len(data)
            got, wait = True, 0.02  # then drain what follows closely
        return got

    def wait_for(self, expected: Screen, timeout: float = 3.0) -> Screen:
        """Pump until the screen shows ``expected`` (trailing blanks ignored) or time runs out.

        Returns:
            The screen last seen (equal to ``expected`` unless the time ran out).
        """
        want = (expected[0].rstrip(), expected[1].rstrip())
        deadline = time.monotonic() + timeout
        while self.screen != want and (left := deadline - time.monotonic()) > 0:
            self.pump(min(left, 0.2))
        return self.screen
