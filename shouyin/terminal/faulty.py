"""A link transport that applies the fault switches to what the terminal writes.

:class:`FaultyTransport` wraps any :class:`~shouyin.link.transport.Transport` and asks
:meth:`~shouyin.terminal.faults.Faults.on_write` about every chunk: deliver it, drop it, flip a
byte, hold it (and everything after it, in order) back for a while, or write only its first
half and then hang up (on a serial line nothing hangs up: the half frame just stops, as when a
cable is jiggled). Reads pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from shouyin.link.transport import Transport, TransportInfo
from shouyin.terminal.faults import Faults, WriteKind

__all__ = ["FaultyTransport"]

logger = logging.getLogger(__name__)

_CLOSE = b""  # queue marker: hang up here


class FaultyTransport:
    """``Transport`` with fault injection on writes.

    Args:
        inner: the real transport.
        faults: the live fault switches.
        hang_up_on_cut: close the transport after a cut-off frame (TCP/TLS; not serial).
    """

    def __init__(self, inner: Transport, faults: Faults, *, hang_up_on_cut: bool) -> None:
        self.inner = inner
        self.faults = faults
        self.hang_up_on_cut = hang_up_on_cut
        self._queue: deque[tuple[bytes, float]] = deque()
        self._flusher: asyncio.Task[None] | None = None

    @property
    def info(self) -> TransportInfo:
        """The inner transport's peer details."""
        return self.inner.info

    async def read(self) -> bytes:
        """Read from the inner transport."""
        return await self.inner.read()

    def write(self, data: bytes) -> None:
        """Write ``data`` as the fault switches decide."""
        action = self.faults.on_write(data)
        if action.kind is WriteKind.DROP:
            return
        self._enqueue(action.data, action.delay)
        if action.kind is WriteKind.CUT and self.hang_up_on_cut:
            self._enqueue(_CLOSE, 0.0)

    def _enqueue(self, data: bytes, delay: float) -> None:
        if not self._queue and delay <= 0 and data is not _CLOSE:
            self.inner.write(data)
            return
        self._queue.append((data, delay))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._queue:
            data, delay = self._queue[0]
            if delay > 0:
                await asyncio.sleep(delay)
            self._queue.popleft()
            if data is _CLOSE:
                logger.warning("fault: hanging up mid-frame")
                self.inner.close()
                return
            self.inner.write(data)

    async def drain(self) -> None:
        """Drain the inner transport."""
        await self.inner.drain()

    def close(self) -> None:
        """Close (queued writes are dropped)."""
        self._queue.clear()
        if self._flusher is not None:
            self._flusher.cancel()
        self.inner.close()

    async def wait_closed(self) -> None:
        """Wait until the inner transport is closed."""
        await self.inner.wait_closed()
