"""The demo's child processes: each ``shouyin ...`` command runs as its own process, its output
in a log file, followed line by line, stopped in order.

Every child starts in its own session (``start_new_session``): a Ctrl-C at the keyboard reaches
the demo only, never the children at once, so that the demo can stop them one after the other
(the server first, the acquirer last) and none is left behind. Every wait here is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["Child", "ChildDied", "Supervisor", "free_port"]

logger = logging.getLogger(__name__)

_POLL: Final = 0.05  # seconds between looks at a child's log
_GRACE: Final = 8.0  # seconds a child has to exit after SIGTERM before SIGKILL


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ChildDied(Exception):
    """A child exited while it was needed.

    Attributes:
        name: the child's name.
        status: its exit status (negative: killed by that signal).
        log: its log file.
    """

    def __init__(self, name: str, status: int, log: Path) -> None:
        super().__init__(f"{name} exited with status {status}; log: {log}")
        self.name = name
        self.status = status
        self.log = log


class Child:
    """``python -m shouyin.cli <args>`` with stdout and stderr in one log file.

    Args:
        name: a short name for the log file (``<name>.log``) and messages.
        args: the command line after ``shouyin``.
        logs: the directory of the log file.
        env: extra environment variables.
    """

    def __init__(
        self, name: str, args: Sequence[str], logs: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log = logs / f"{name}.log"
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._pending = b""

    def start(self) -> Child:
        """Start the child (in its own session, so that a Ctrl-C does not reach it)."""
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self._offset = log.tell()
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI; arguments built here
                [sys.executable, "-m", "shouyin.cli", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        logger.info("started %s (pid %d): %s", self.name, self.process.pid, " ".join(self.args))
        return self

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self.process is None:
            raise RuntimeError(f"{self.name} not started")
        return self.process.pid

    def status(self) -> int | None:
        """The exit status, or ``None`` while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def tail(self, chars: int = 2000) -> str:
        """The end of the log, for error messages."""
        if not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-chars:]

    def _next_line(self) -> str | None:
        newline = self._pending.find(b"\n")
        if newline < 0:
            with self.log.open("rb") as log:
                log.seek(self._offset)
                chunk = log.read()
            self._offset += len(chunk)
            self._pending += chunk
            newline = self._pending.find(b"\n")
            if newline < 0:
                return None
        line, self._pending = self._pending[:newline], self._pending[newline + 1 :]
        return line.decode(errors="replace")

    async def expect(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """Read the log until a line matches ``pattern``.

        Raises:
            ChildDied: the child exited first.
            TimeoutError: no such line within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                line = self._next_line()
                if line is not None:
                    if match := pattern.search(line):
                        return match
                    continue
                status = self.status()
                if status is not None:
                    raise ChildDied(self.name, status, self.log)
                await asyncio.sleep(_POLL)

    async def event(self, name: str, timeout: float) -> dict[str, Any]:
        """The next JSON line reporting event ``name`` (the simulators' stdout protocol).

        Raises:
            ChildDied: the child exited first, or reported an ``error`` event.
            TimeoutError: no such line within ``timeout`` seconds.
        """
        wanted = re.compile(r'^\{"event": "(' + re.escape(name) + r'|error)"')
        line = await self.expect(wanted, timeout)
        data: dict[str, Any] = json.loads(line.string)
        if data["event"] == "error":
            raise ChildDied(self.name, self.status() or 1, self.log)
        return data

    async def stop(self, grace: float = _GRACE) -> int | None:
        """SIGTERM, then SIGKILL when it has not exited within ``grace``; reaps it.

        Returns:
            Its exit status, or ``None`` if it was never started.
        """
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            while process.poll() is None and loop.time() < deadline:
                await asyncio.sleep(_POLL)
            if process.poll() is None:
                logger.warning("%s did not stop within %.0f s: killed", self.name, grace)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        return process.wait(timeout=grace)


class Supervisor:
    """The demo's children, in the order they were started.

    Args:
        logs: where their log files go.
        env: environment variables every child gets.
    """

    def __init__(self, logs: Path, env: Mapping[str, str]) -> None:
        self.logs = logs
        self.env = dict(env)
        self.children: list[Child] = []

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> Child:
        """Start ``shouyin <args>`` as child ``name`` (``env``: instead of the common one)."""
        child = Child(name, args, self.logs, env or self.env).start()
        self.children.append(child)
        return child

    def dead(self) -> Child | None:
        """The first child that has exited, if any."""
        return next((c for c in self.children if c.status() is not None), None)

    async def stop_all(self) -> list[tuple[str, int | None]]:
        """Stop every child, the last started first; their names and exit statuses."""
        stopped = []
        for child in reversed(self.children):
            stopped.append((child.name, await child.stop()))
        return stopped
