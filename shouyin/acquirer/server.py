"""The acquirer simulator's asyncio TCP server, and its JSON control channel.

Terminal port (default 9583): frames ``LEN(2) | TPDU(5) | ISO 8583`` (see
:mod:`shouyin.acquirer.framing`); any number of terminals, each on its own connection, each
connection processing its messages in order. The host (:class:`~shouyin.acquirer.host.Host`)
decides synchronously; the server only applies the delays (slow issuer, ``delay_ms``), the
silences (issuer never answers, lost answers) and drops of :mod:`shouyin.acquirer.faults`.
A malformed frame closes that connection; nothing a terminal sends stops the server.

Control port (optional, for tests and demos): one JSON object per line in, one per line out::

    {"op": "ping"}                                    -> {"ok": true}
    {"op": "faults", "drop_every": 3, "delay_ms": 0, "no_answer_rate": 0.5, "seed": 7}
                                                      -> {"ok": true, "faults": {...}}
    {"op": "config", "userpaying_ms": 500, "slow_issuer_ms": 100}
                                                      -> {"ok": true, "config": {...}}
    {"op": "export", "terminal_id": "T0000001", "batch": 1}
                                                      -> {"ok": true, "entries": [...]}
    {"op": "disconnect"}                              -> {"ok": true, "closed": 2}
    {"op": "status"}                                  -> {"ok": true, "connections": 1, ...}

Omitted switches keep their value. Both ports bind 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Self

from shouyin.acquirer.errors import FrameError
from shouyin.acquirer.faults import FaultPlan, Faults
from shouyin.acquirer.framing import FrameDecoder, encode_frame, reply_tpdu
from shouyin.acquirer.host import Host
from shouyin.acquirer.pan import get_logger

__all__ = ["DEFAULT_PORT", "AcquirerServer"]

logger = get_logger(__name__)

DEFAULT_PORT = 9583
_CONTROL_LINE_LIMIT = 64 * 1024


def _local_now() -> datetime:
    return datetime.now().astimezone()


class AcquirerServer:
    """Serves a :class:`Host` to terminals over TCP.

    Args:
        host: the acquirer host.
        bind: the address to listen on.
        port: the terminal port (0: any free port, see :attr:`port`).
        control_port: the JSON control port (``None``: no control channel; 0: any free port).
        faults: the initial fault switches.
        clock: the time source handed to the host (aware datetimes).
    """

    def __init__(
        self,
        host: Host,
        *,
        bind: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        control_port: int | None = None,
        faults: Faults | None = None,
        clock: Callable[[], datetime] = _local_now,
    ) -> None:
        self.host = host
        self.bind = bind
        self._requested = (port, control_port)
        self.plan = FaultPlan(faults)
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._control: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._control_writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (terminal port, and control port if configured)."""
        port, control_port = self._requested
        self._server = await asyncio.start_server(self._serve_terminal, self.bind, port)
        if control_port is not None:
            self._control = await asyncio.start_server(
                self._serve_control, self.bind, control_port, limit=_CONTROL_LINE_LIMIT
            )
        logger.info(
            "acquirer simulator listening on %s:%d (control %s)",
            self.bind,
            self.port,
            self.control_port if self._control else "off",
        )

    @property
    def port(self) -> int:
        """The terminal port actually bound."""
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def control_port(self) -> int | None:
        """The control port actually bound, or ``None``."""
        if self._control is None:
            return None
        return int(self._control.sockets[0].getsockname()[1])

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening, drop every connection and pending answer."""
        for server in (self._server, self._control):
            if server is not None:
                server.close()
        self.disconnect_all()
        for writer in list(self._control_writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._handlers:  # connection handlers end on their own once their socket is closed
            await asyncio.wait(list(self._handlers), timeout=1.0)
        for server in (self._server, self._control):
            if server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 1.0)
        logger.info("acquirer simulator stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def disconnect_all(self) -> int:
        """Close every terminal connection (a network outage); returns how many."""
        writers = list(self._writers)
        for writer in writers:
            writer.close()
        return len(writers)

    # -- terminal connections -------------------------------------------------------------------

    async def _serve_terminal(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        self._track_handler()
        self._writers.add(writer)
        lock = asyncio.Lock()
        decoder = FrameDecoder()
        logger.info("terminal connected from %s", peer)
        try:
            while data := await reader.read(4096):
                for frame in decoder.feed(data):
                    await self._on_message(frame.tpdu, frame.message, writer, lock)
        except FrameError as error:
            logger.warning("closing connection from %s: %s", peer, error)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            logger.info("terminal disconnected from %s", peer)

    async def _on_message(
        self, tpdu: bytes, message: bytes, writer: asyncio.StreamWriter, lock: asyncio.Lock
    ) -> None:
        decision = self.plan.next()
        if decision.drop:
            logger.info("fault: message dropped before the host (%d bytes)", len(message))
            return
        try:
            reply = self.host.handle(message, self._clock())
        except Exception:  # a host bug must not take the server down
            logger.exception("host failed on a message; no answer")
            return
        if reply.message is None:
            return
        if decision.lose_answer:
            logger.info("fault: answer to %s lost after processing", reply.mti)
            return
        frame = encode_frame(reply.message, reply_tpdu(tpdu))
        delay = reply.delay_s + decision.delay_s
        if delay <= 0:
            await self._send(writer, lock, frame)
            return
        task = asyncio.create_task(self._send_later(writer, lock, frame, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_later(
        self, writer: asyncio.StreamWriter, lock: asyncio.Lock, frame: bytes, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        await self._send(writer, lock, frame)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, lock: asyncio.Lock, frame: bytes) -> None:
        if writer.is_closing():
            logger.info("answer not sent: connection already closed")
            return
        async with lock:
            try:
                writer.write(frame)
                await writer.drain()
            except ConnectionError:
                logger.info("answer not sent: connection lost")

    # -- control channel ------------------------------------------------------------------------

    def _track_handler(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _serve_control(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._track_handler()
        self._control_writers.add(writer)
        try:
            while line := await reader.readline():
                try:
                    command = json.loads(line)
                    if not isinstance(command, dict):
                        raise TypeError("a command is a JSON object")
                    answer = self.control(command)
                except (ValueError, TypeError, KeyError) as error:
                    answer = {"ok": False, "error": str(error)}
                writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError):
            pass
        finally:
            self._control_writers.discard(writer)
            writer.close()

    def control(self, command: dict[str, Any]) -> dict[str, Any]:
        """Carry out one control command (see the module docstring).

        Args:
            command: the decoded JSON object.

        Returns:
            The JSON-friendly answer.

        Raises:
            ValueError: an unknown operation or a bad value.
            KeyError: a missing value.
        """
        op = command.get("op")
        if op == "ping":
            return {"ok": True}
        if op == "faults":
            known = set(Faults.__dataclass_fields__)
            changes = {key: value for key, value in command.items() if key in known}
            self.plan.set(replace(self.plan.faults, **changes))
            logger.info("faults set: %s", self.plan.faults.as_dict())
            return {"ok": True, "faults": self.plan.faults.as_dict()}
        if op == "config":
            config = self.host.config
            if "userpaying_ms" in command:
                config = replace(config, userpaying_s=float(command["userpaying_ms"]) / 1000)
            if "slow_issuer_ms" in command:
                slow = command["slow_issuer_ms"]
                config = replace(config, slow_issuer_s=None if slow is None else slow / 1000)
            self.host.config = config
            return {"ok": True, "config": self._config_dict()}
        if op == "export":
            entries = self.host.ledger.export(command.get("terminal_id"), command.get("batch"))
            return {"ok": True, "entries": [entry.model_dump(mode="json") for entry in entries]}
        if op == "disconnect":
            return {"ok": True, "closed": self.disconnect_all()}
        if op == "status":
            return {
                "ok": True,
                "connections": len(self._writers),
                "faults": self.plan.faults.as_dict(),
                "config": self._config_dict(),
            }
        raise ValueError(f"unknown op {op!r}")

    def _config_dict(self) -> dict[str, Any]:
        config = self.host.config
        return {
            "userpaying_ms": round(config.userpaying_s * 1000),
            "slow_issuer_ms": None
            if config.slow_issuer_s is None
            else round(config.slow_issuer_s * 1000),
        }
