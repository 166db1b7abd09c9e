"""The simulator's control channel: JSON lines on a local socket, for tests and demos.

One JSON object per line in, one per line out (``{"ok": true, ...}`` or ``{"ok": false,
"error": "..."}``). Commands (``cmd``):

``status``
    status, fault switches fired so far, link state, open batch and last trace.
``set_status``
    ``power``, ``battery_percent``, ``paper``, ``temperature_c`` (sends EventNotifications);
    ``crc_errors``, ``retransmissions``: injected line noise (a loose cable, for health tests).
``faults``
    ``plan``: a :class:`~shouyin.terminal.faults.FaultPlan` as JSON (replaces the current one).
``reader``
    ``rules``: a list of reader rules; ``default``: the rule for everything else.
``journal``
    ``ecr_ref``: one transaction, or the open batch's transactions without it.
``slip``
    ``trace`` (optional): the slip's lines. ``printouts``: what was printed.
``reversals``
    the reversals not yet acknowledged.
``stop``
    stop the simulator cleanly.

The socket is a unix socket in the state directory (0600) or a TCP port on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shouyin.terminal.app import TerminalApp
from shouyin.terminal.cards import RulesReader, rule_from_dict
from shouyin.terminal.faults import FaultPlan

__all__ = ["ControlHandler", "ControlServer"]

logger = logging.getLogger(__name__)

_MAX_LINE = 64 * 1024


class ControlHandler:
    """Turns control commands into actions on the running terminal.

    Args:
        app: the terminal application.
        reader: the rules-driven reader (``None``: the ``reader`` command is refused).
        stop: called by the ``stop`` command.
        link_state: describes the link for ``status``.
    """

    def __init__(
        self,
        app: TerminalApp,
        reader: RulesReader | None,
        stop: Callable[[], None],
        link_state: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.app = app
        self.reader = reader
        self.stop = stop
        self.link_state = link_state

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911 - one per command
        """Execute one command; never raises (errors come back as ``{"ok": false}``)."""
        try:
            name = command.get("cmd")
            app, state = self.app, self.app.state
            if name == "status":
                return _ok(
                    status=app.status.as_dict(), fired=list(app.faults.fired),
                    link=self.link_state(), batch=state.batch, last_trace=state.last_trace,
                )  # fmt: skip
            if name == "set_status":
                fields = {k: v for k, v in command.items() if k != "cmd"}
                events = app.set_status(**fields)
                return _ok(events=[e.event.value for e in events])
            if name == "faults":
                app.faults.set_plan(FaultPlan.model_validate(command.get("plan", {})))
                return _ok(plan=app.faults.plan.model_dump(mode="json"))
            if name == "reader":
                return self._reader(command)
            if name == "journal":
                ref = command.get("ecr_ref")
                if ref is not None:
                    entry = state.get(str(ref))
                    return _ok(entry=entry.model_dump(mode="json") if entry else None)
                return _ok(entries=[e.model_dump(mode="json") for e in state.entries(state.batch)])
            if name == "slip":
                trace = command.get("trace")
                slip = state.slip(trace=f"{int(trace):06d}" if trace is not None else None)
                return _ok(slip=list(slip.lines()) if slip else None)
            if name == "printouts":
                return _ok(printouts=[{"document": d, "text": t} for d, t in state.printouts()])
            if name == "reversals":
                return _ok(reversals=[r.model_dump(mode="json") for r in state.reversals()])
            if name == "stop":
                self.stop()
                return _ok()
            return {"ok": False, "error": f"unknown command {str(name)[:40]!r}"}
        except (ValidationError, ValueError, TypeError, KeyError) as error:
            return {"ok": False, "error": f"{type(error).__name__}: {str(error)[:300]}"}

    def _reader(self, command: dict[str, Any]) -> dict[str, Any]:
        if self.reader is None:
            return {"ok": False, "error": "the reader is not rules-driven"}
        rules = [rule_from_dict(r) for r in command.get("rules", [])]
        self.reader.replace_rules(rules)
        if "default" in command:
            self.reader.default = rule_from_dict(command["default"])
        return _ok(rules=len(rules))


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


class ControlServer:
    """Serves a :class:`ControlHandler` on a unix socket or a 127.0.0.1 TCP port.

    Args:
        handler: executes commands.
        where: ``unix:<path>`` or ``tcp://127.0.0.1:<port>`` (port 0: a free one).
    """

    def __init__(self, handler: ControlHandler, where: str) -> None:
        self.handler = handler
        self.where = where
        self.address = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Start listening; returns the address (``unix:/path`` or ``tcp://127.0.0.1:port``).

        Raises:
            ValueError: neither a unix path nor a loopback TCP address.
            OSError: cannot bind.
        """
        if self.where.startswith("unix:"):
            path = Path(self.where.removeprefix("unix:"))
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._server = await asyncio.start_unix_server(self._serve, path, limit=_MAX_LINE)
            os.chmod(path, 0o600)
            self.address = f"unix:{path}"
        elif self.where.startswith("tcp://127.0.0.1:"):
            port = int(self.where.rsplit(":", 1)[1])
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", port, limit=_MAX_LINE
            )
            bound = self._server.sockets[0].getsockname()[1]
            self.address = f"tcp://127.0.0.1:{bound}"
        else:
            raise ValueError("control channel: unix:<path> or tcp://127.0.0.1:<port>")
        logger.info("control channel on %s", self.address)
        return self.address

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    command = json.loads(line)
                    if not isinstance(command, dict):
                        raise ValueError("a command is a JSON object")
                    answer = self.handler.handle(command)
                except ValueError as error:
                    answer = {"ok": False, "error": f"bad command: {str(error)[:200]}"}
                writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
