"""The virtual receipt printer (``shouyin printer sim``): a network ESC/POS printer on 127.0.0.1.

It listens like a printer on raw TCP (port 9100 on real ones), parses each connection's bytes
with :class:`~shouyin.devices.escpos_parser.EscPosParser`, answers ``DLE EOT`` status queries at
once, and on end of connection stores the job (:class:`PrintJob`) and, with an output directory,
writes ``job-NNNN.bin`` (the raw bytes), ``.txt`` and ``.png``.

Faults, for tests and demos, through :meth:`VirtualPrinter.set_state` in-process or a JSON line on
the control port (``{"paper": "out"}``, ``{"paper": "near_end"}``, ``{"cover_open": true}``,
``{"answers_status": false}``, ``{}`` to read the state): with paper out or the cover open the
printer answers status but prints nothing (the job is counted in ``refused``), as a real one
stops at paper end; it still executes real-time drawer pulses (``DLE DC4``). Every pulse the
drawer receives is kept in ``drawer_kicks``. With ``answers_status`` false it ignores status
queries, like printers that cannot answer. :meth:`VirtualPrinter.wait_for_connections` returns
once connections have ended and been handled, so a test can assert on what a lane did *not*
send (``refused == 0``). A job the renderer fails on is still stored, its raw bytes written.

:class:`ThreadedPrinter` runs it on its own event loop in a thread, for synchronous callers
(:class:`~shouyin.devices.lane.LaneDevices`, python-escpos) in tests and the demo.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Final

from shouyin.devices.escpos_model import DrawerKick, PrinterEncoding
from shouyin.devices.escpos_parser import EscPosParser, Event, PrintedLine, StatusQuery
from shouyin.devices.printer_render import render_png, render_text

__all__ = ["PaperState", "PrintJob", "SimState", "ThreadedPrinter", "VirtualPrinter", "status_byte"]

logger = logging.getLogger(__name__)

MAX_JOB_BYTES: Final = 8 << 20  # a job larger than this is cut off: no real receipt is
IDLE_TIMEOUT: Final = 30.0  # seconds a connection may stay silent before the printer drops it
_READ_SIZE: Final = 65536


class PaperState(StrEnum):
    """The paper roll sensor."""

    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class SimState:
    """The simulated printer's condition."""

    paper: PaperState = PaperState.OK
    cover_open: bool = False
    answers_status: bool = True

    @property
    def can_print(self) -> bool:
        """Whether a job received now is printed."""
        return self.paper is not PaperState.OUT and not self.cover_open


def status_byte(state: SimState, n: int) -> int:
    """The reply to ``DLE EOT n`` (Epson bit layout; fixed bits 1 and 4 always set)."""
    value = 0x12
    if n == 1 and not state.can_print:
        value |= 0x08  # offline
    elif n == 2:
        value |= 0x04 if state.cover_open else 0
        value |= 0x20 if state.paper is PaperState.OUT else 0
    elif n == 4:
        value |= 0x0C if state.paper is not PaperState.OK else 0
        value |= 0x60 if state.paper is PaperState.OUT else 0
    return value


@dataclass(frozen=True, slots=True)
class PrintJob:
    """One printed job (one connection's bytes).

    Attributes:
        number: 1, 2, ... in order of arrival.
        raw: the bytes received, status queries included.
        events: what the parser made of them.
        text: :func:`~shouyin.devices.printer_render.render_text` of the events.
        files: the written ``.bin``, ``.txt`` and ``.png`` (empty without an output directory).
    """

    number: int
    raw: bytes = field(repr=False)
    events: tuple[Event, ...] = field(repr=False)
    text: str = field(repr=False)
    files: tuple[Path, ...] = ()

    @property
    def lines(self) -> list[str]:
        """The printed text lines exactly as decoded (no alignment padding added)."""
        return [e.text for e in self.events if isinstance(e, PrintedLine)]


class VirtualPrinter:
    """An asyncio ESC/POS network printer (see the module docstring).

    Args:
        out_dir: where to write each job (``None``: keep jobs in memory only).
        encoding: the printer's text encoding setting.
        columns: paper width in columns (32 or 48).
        host: address to listen on (loopback).
        port: TCP port (0: any free port; see :attr:`port`).
        control_port: TCP port of the JSON control line (``None``: no control port; 0: any).
        png: also render each job as a PNG.
        on_job: called (in the printer's loop) with each stored job.
    """

    def __init__(
        self,
        out_dir: Path | None = None,
        *,
        encoding: PrinterEncoding = PrinterEncoding.GB18030,
        columns: int = 32,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int | None = None,
        png: bool = True,
        on_job: Callable[[PrintJob], None] | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.encoding = encoding
        self.columns = columns
        self.host = host
        self.png = png
        self.on_job = on_job
        self.state = SimState()
        self.jobs: list[PrintJob] = []
        self.refused = 0
        self.connections = 0  # print connections ended (and their job stored or refused)
        self._last_number = 0  # job numbers are taken before any await: concurrent jobs differ
        self.drawer_kicks: list[DrawerKick] = []  # every pulse the drawer received
        self._ports = (port, control_port)
        self._servers: list[asyncio.Server] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._changed = threading.Condition()
        self.port = 0
        self.control_port: int | None = None

    async def start(self) -> None:
        """Start listening; :attr:`port` (and :attr:`control_port`) then hold the real ports."""
        server = await asyncio.start_server(self._serve, self.host, self._ports[0])
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        if self._ports[1] is not None:
            control = await asyncio.start_server(self._control, self.host, self._ports[1])
            self._servers.append(control)
            self.control_port = control.sockets[0].getsockname()[1]
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    async def stop(self) -> None:
        """Stop listening and close the servers."""
        for server in self._servers:
            server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    def set_state(self, **changes: object) -> SimState:
        """Change the simulated condition (``paper``, ``cover_open``, ``answers_status``)."""
        if "paper" in changes:
            changes["paper"] = PaperState(str(changes["paper"]))
        for key in ("cover_open", "answers_status"):
            if key in changes and not isinstance(changes[key], bool):
                raise ValueError(f"{key} must be true or false")
        unknown = set(changes) - {"paper", "cover_open", "answers_status"}
        if unknown:
            raise ValueError(f"unknown setting {sorted(unknown)}")
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]
        logger.info("virtual printer state: %s", self.state)
        return self.state

    def wait_for_jobs(self, count: int, timeout: float = 5.0) -> list[PrintJob]:
        """Block (in another thread than the printer's loop) until ``count`` jobs are stored.

        Raises:
            TimeoutError: fewer jobs arrived within ``timeout`` seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.jobs) >= count, timeout):
                raise TimeoutError(f"{len(self.jobs)} of {count} print jobs within {timeout}s")
            return list(self.jobs)

    def wait_for_kicks(self, count: int, timeout: float = 5.0) -> list[DrawerKick]:
        """Block until the drawer has received ``count`` pulses; return them.

        Raises:
            TimeoutError: fewer pulses within ``timeout`` seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.drawer_kicks) >= count, timeout):
                raise TimeoutError(f"{len(self.drawer_kicks)} of {count} drawer kicks")
            return list(self.drawer_kicks)

    def wait_for_refused(self, count: int, timeout: float = 5.0) -> int:
        """Block until ``count`` jobs were refused (paper out, cover open); return the count.

        Raises:
            TimeoutError: fewer jobs were refused within ``timeout`` seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self.refused >= count, timeout):
                raise TimeoutError(f"{self.refused} of {count} refused jobs within {timeout}s")
            return self.refused

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> int:
        """Block until ``count`` print connections have ended and been handled; return the count.

        After it, :attr:`jobs` and :attr:`refused` account for everything those connections sent.

        Raises:
            TimeoutError: fewer connections ended within ``timeout`` seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self.connections >= count, timeout):
                raise TimeoutError(f"{self.connections} of {count} connections within {timeout}s")
            return self.connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a stream handler always runs in a task
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        parser = EscPosParser(self.encoding)
        raw = bytearray()
        events: list[Event] = []
        try:
            while len(raw) < MAX_JOB_BYTES:
                chunk = await asyncio.wait_for(reader.read(_READ_SIZE), IDLE_TIMEOUT)
                if not chunk:
                    break
                raw += chunk
                for event in parser.feed(chunk):
                    if isinstance(event, StatusQuery):
                        if self.state.answers_status:
                            writer.write(bytes([status_byte(self.state, event.n)]))
                    elif isinstance(event, DrawerKick) and event.realtime:
                        self._kicked(event)  # real time: executed even when stopped
                    else:
                        events.append(event)
                await writer.drain()
        except (TimeoutError, ConnectionError) as error:
            logger.info("printer connection ended: %r", error)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        events += parser.close()
        try:
            if events:
                await self._store(bytes(raw), events)
        finally:
            with self._changed:
                self.connections += 1
                self._changed.notify_all()

    async def _store(self, raw: bytes, events: list[Event]) -> None:
        if not self.state.can_print:
            with self._changed:
                self.refused += 1
                self._changed.notify_all()
            logger.warning("job not printed: %s", self.state)
            return
        for event in events:
            if isinstance(event, DrawerKick):
                self._kicked(event)
        self._last_number += 1  # synchronously: a job arriving during an await gets the next one
        number = self._last_number
        try:
            text = render_text(events, self.columns, self.encoding)
        except Exception as error:  # a bad job must not lose its bytes nor kill the handler
            logger.exception("print job %d: text rendering failed", number)
            text = f"[render error: {error!r}]\n"
        files: tuple[Path, ...] = ()
        if self.out_dir is not None:
            files = await asyncio.to_thread(self._write, number, raw, events, text)
        job = PrintJob(number, raw, tuple(events), text, files)
        with self._changed:
            bisect.insort(self.jobs, job, key=lambda j: j.number)  # a later job may finish first
            self._changed.notify_all()
        logger.info("print job %d: %d bytes", number, len(raw))
        if self.on_job is not None:
            self.on_job(job)

    def _kicked(self, kick: DrawerKick) -> None:
        with self._changed:
            self.drawer_kicks.append(kick)
            self._changed.notify_all()
        logger.info("drawer kick: %s", kick)

    def _write(self, number: int, raw: bytes, events: list[Event], text: str) -> tuple[Path, ...]:
        assert self.out_dir is not None  # only called with an output directory
        stem = self.out_dir / f"job-{number:04d}"
        paths = [stem.with_suffix(".bin"), stem.with_suffix(".txt")]
        paths[0].write_bytes(raw)
        paths[1].write_text(text, encoding="utf-8")
        if self.png:
            try:
                render_png(events, self.columns, stem.with_suffix(".png"), self.encoding)
                paths.append(stem.with_suffix(".png"))
            except Exception:  # the .bin and .txt are kept: the job can still be inspected
                logger.exception("print job %d: PNG rendering failed", number)
        return tuple(paths)

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One JSON object per line in, the resulting state (or an error) per line out."""
        task = asyncio.current_task()
        assert task is not None  # a stream handler always runs in a task
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            for _ in range(1000):  # bounded: a control client sends a few lines
                line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
                if not line:
                    break
                try:
                    changes = json.loads(line)
                    if not isinstance(changes, dict):
                        raise ValueError("send a JSON object")
                    state = self.set_state(**changes)
                    reply = {"ok": True, **asdict(state), "jobs": len(self.jobs)}
                except (ValueError, TypeError) as error:
                    reply = {"ok": False, "error": str(error)}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


class ThreadedPrinter:
    """A :class:`VirtualPrinter` on its own event loop in a daemon thread (a context manager).

    Args:
        printer: the printer to run.
    """

    def __init__(self, printer: VirtualPrinter) -> None:
        self.printer = printer
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> VirtualPrinter:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.printer.start(), self._loop).result(10)
        return self.printer

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.printer.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
