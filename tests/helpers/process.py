"""Child processes that report events as JSON lines (``{"event": ..., ...}``) on stdout.

:class:`JsonLinesProcess` runs ``python -m <module> ...`` with stdout on a pipe and stderr in a
log file (so the log can never fill a pipe and block the child), and follows its events with
:meth:`~JsonLinesProcess.expect`. :func:`expect_event` is that wait on its own, for children
whose output is read some other way (``tests/e2e/sim_helpers.py`` follows a file). Every wait
is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Self

__all__ = ["Event", "JsonLinesProcess", "expect_event"]

Event = dict[str, Any]
"""One JSON line a child printed."""


def _keep(line: Event) -> None:
    """Default for :func:`expect_event`: every other event is kept for a later wait."""


async def expect_event(
    seen: list[Event],
    event: str,
    next_line: Callable[[], Awaitable[str | bytes]],
    timeout: float,
    *,
    check: Callable[[Event], None] = _keep,
) -> Event:
    """The first line reporting ``event``: one kept in ``seen`` by an earlier wait, else the
    next such line read; lines of other events read meanwhile are added to ``seen``.

    Args:
        seen: lines read earlier and not yet asked for (updated).
        event: the event wanted.
        next_line: reads the next line (raises when the child exited first).
        timeout: seconds allowed for reading.
        check: called with each other line before it is kept; raises to stop waiting.

    Returns:
        The line, decoded.

    Raises:
        TimeoutError: no such line within ``timeout``.
    """
    for earlier in seen:
        if earlier["event"] == event:
            seen.remove(earlier)
            return earlier
    async with asyncio.timeout(timeout):
        while True:
            line: Event = json.loads(await next_line())
            if line["event"] == event:
                return line
            check(line)
            seen.append(line)


class JsonLinesProcess:
    """``python -m <module> <args>`` in its own process, followed through its JSON lines.

    Args:
        name: what assertion messages call it.
        args: the command line after ``python -m``.
        log: where its stderr goes (appended to).
        wait: the default bound of :meth:`expect`, in seconds.
        grace: seconds :meth:`stop` gives it after SIGTERM before SIGKILL.
        tail_chars: how much of the log's end assertion messages quote.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log: Path,
        *,
        wait: float,
        grace: float,
        tail_chars: int,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log = log
        self.wait = wait
        self.grace = grace
        self.tail_chars = tail_chars
        self.process: asyncio.subprocess.Process | None = None
        self.seen: list[Event] = []

    async def start(self) -> Self:
        """Start the process (its log goes to a file, so a full pipe can never block it)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                *self.args,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=env,
            )
        return self

    async def expect(self, event: str, timeout: float | None = None) -> Event:
        """Read JSON lines until one reports ``event`` (within ``timeout``, default ``wait``).

        Raises:
            AssertionError: the process exited first.
            TimeoutError: no such line in time.
        """
        return await expect_event(
            self.seen,
            event,
            lambda: self._next_line(event),
            self.wait if timeout is None else timeout,
        )

    async def _next_line(self, event: str) -> bytes:
        process = self.process
        assert process is not None and process.stdout is not None, "not started"
        raw = await process.stdout.readline()
        if not raw:
            raise AssertionError(f"{self.name} exited before {event!r}; log: {self.tail()}")
        return raw

    def tail(self) -> str:
        """The end of the process's log, for assertion messages."""
        return self.log.read_text(errors="replace")[-self.tail_chars :] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the process dies without closing anything itself."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within ``grace`` seconds; reaps it."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.grace)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
