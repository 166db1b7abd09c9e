"""Process helpers for the simulator end-to-end tests: ``shouyin acquirer sim`` and ``shouyin
terminal sim`` as real child processes, followed through their output.

Each child is a :class:`subprocess.Popen` of ``python -m shouyin.cli ...`` whose stdout goes to a
file that :meth:`ChildProcess.line` follows (so a full pipe can never block the child, and the
output is there to read after a failure) and whose stderr goes to a log file. A
:class:`ProcessGroup` remembers every child it started; its :meth:`~ProcessGroup.close` (called
by a fixture's finaliser) kills whatever is still running, by process id, and reaps it. Every
wait here is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shouyin.acquirer.client import AcquirerControl
from shouyin.acquirer.ledger import LedgerEntry
from shouyin.link import Capabilities, Connection, LinkConfig, LongTermKey, Paired, Role
from shouyin.link.aio import LinkEndpoint
from shouyin.link.firewall import Firewall, FirewallPolicy
from shouyin.link.keystore import KeyStore
from shouyin.link.pairing import PairingCode
from shouyin.link.pairing_qr import PairingPayload, encode_payload
from shouyin.link.server import LinkServer
from shouyin.link.transport import LinkAddress, Scheme, Transport, open_serial
from shouyin.terminal.records import JournalEntry
from tests.helpers.process import Event, expect_event

from . import ECR_ID, QUICK_BACKOFF, TERMINAL_ID

WAIT = 10.0
"""Default bound of any single wait on a child."""
BAUD = 115_200
"""The pty cable's (paced) speed."""
_POLL = 0.02
_ACQUIRER_READY = re.compile(r"port=(\d+) control_port=(\d+)")


class ChildProcess:
    """``python -m shouyin.cli <args>`` with stdout to a file followed line by line.

    Args:
        name: a short name for file names and messages.
        args: the command line after ``shouyin``.
        directory: where ``<name>.out`` and ``<name>.log`` go (appended to across restarts).
    """

    def __init__(self, name: str, args: Sequence[str], directory: Path) -> None:
        self.name = name
        self.args = list(args)
        self.out_path = directory / f"{name}.out"
        self.log_path = directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._pending = b""

    def start(self) -> ChildProcess:
        """Start the child (its output is followed from the end of what is already there)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._offset = self.out_path.stat().st_size if self.out_path.exists() else 0
        self._pending = b""
        with self.out_path.open("ab") as out, self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shouyin.cli", *self.args],
                stdout=out,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        return self

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def running(self) -> bool:
        """Started and not exited."""
        return self.process is not None and self.process.poll() is None

    def tail(self) -> str:
        """The end of the child's stderr log, for assertion messages."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-3000:]

    def _read_line(self) -> str | None:
        newline = self._pending.find(b"\n")
        if newline < 0:
            with self.out_path.open("rb") as out:
                out.seek(self._offset)
                chunk = out.read()
            self._offset += len(chunk)
            self._pending += chunk
            newline = self._pending.find(b"\n")
            if newline < 0:
                return None
        line, self._pending = self._pending[:newline], self._pending[newline + 1 :]
        return line.decode(errors="replace")

    async def line(self, timeout: float = WAIT) -> str:
        """The next line the child printed.

        Raises:
            AssertionError: the child exited first.
            TimeoutError: nothing within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                line = self._read_line()
                if line is not None:
                    return line
                if not self.running:
                    line = self._read_line()  # what it printed just before exiting
                    if line is not None:
                        return line
                    raise AssertionError(f"{self.name} exited: {self.tail()}")
                await asyncio.sleep(_POLL)

    async def wait_exit(self, timeout: float = WAIT) -> int:
        """Wait for the child to exit; its status (negative: killed by that signal)."""
        assert self.process is not None, "not started"
        async with asyncio.timeout(timeout):
            while (status := self.process.poll()) is None:
                await asyncio.sleep(_POLL)
        return status

    def signal(self, number: signal.Signals) -> None:
        """Send ``number`` to the child (by its process id), if it still runs."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(number)

    async def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit within ``timeout``."""
        self.signal(signal.SIGTERM)
        try:
            return await self.wait_exit(timeout)
        except TimeoutError:
            self.kill()
            return await self.wait_exit(timeout)

    def kill(self) -> None:
        """SIGKILL: gone at once, nothing flushed or closed (a power cut)."""
        self.signal(signal.SIGKILL)

    def reap(self) -> None:
        """Kill the child if it still runs and collect its status (finalisers)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # a zombie we cannot help
            process.wait(timeout=5.0)


class ProcessGroup:
    """Every child a test started; :meth:`close` kills the ones still running.

    Args:
        directory: where the children's output and logs go.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.children: list[ChildProcess] = []

    def spawn(self, name: str, args: Sequence[str]) -> ChildProcess:
        """Start ``shouyin <args>`` as a child called ``name``."""
        child = ChildProcess(name, args, self.directory)
        self.children.append(child)
        return child.start()

    def close(self) -> None:
        """Kill and reap every child still running (by its own process id)."""
        for child in self.children:
            child.reap()


class AcquirerProcess:
    """``shouyin acquirer sim`` on free loopback ports, with its control channel.

    Args:
        group: starts the child.
        state_dir: the acquirer's state directory (its ledger).
        extra: more command-line options.
    """

    def __init__(self, group: ProcessGroup, state_dir: Path, *extra: str) -> None:
        self.group = group
        self.args = [
            "acquirer",
            "sim",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--control-port",
            "0",
            "--state-dir",
            str(state_dir),
            *extra,
        ]
        self.child: ChildProcess | None = None
        self.port = 0
        self.control: AcquirerControl | None = None

    async def start(self, timeout: float = WAIT) -> AcquirerProcess:
        """Start it and wait for the ports it bound."""
        self.child = self.group.spawn("acquirer", self.args)
        async with asyncio.timeout(timeout):
            while (found := _ACQUIRER_READY.search(await self.child.line())) is None:
                pass
        self.port, control_port = int(found.group(1)), int(found.group(2))
        self.control = AcquirerControl("127.0.0.1", control_port)
        return self

    @property
    def url(self) -> str:
        """Where terminals reach it."""
        return f"tcp://127.0.0.1:{self.port}"

    async def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        """One control command (bounded)."""
        assert self.control is not None, "not started"
        return await asyncio.wait_for(self.control.call(op, **arguments), WAIT)

    async def ledger(self, terminal_id: str, batch: int | None = None) -> list[LedgerEntry]:
        """The acquirer's ledger rows of one terminal (and batch), oldest first."""
        arguments: dict[str, Any] = {"terminal_id": terminal_id}
        if batch is not None:
            arguments["batch"] = batch
        answer = await self.call("export", **arguments)
        return [LedgerEntry.model_validate(row) for row in answer["entries"]]

    async def close(self) -> None:
        """Close the control connection and stop the process."""
        if self.control is not None:
            await self.control.close()
        if self.child is not None:
            await self.child.terminate()


class TerminalProcess:
    """``shouyin terminal sim`` followed through its JSON lines, with its control channel.

    Unlike :class:`~tests.helpers.process.JsonLinesProcess` it reads a file its child writes
    (:class:`ChildProcess`), so that the output outlives restarts and power cuts; only the wait
    for an event (:func:`~tests.helpers.process.expect_event`) is shared.

    Args:
        group: starts the children (one per run: the terminal is restarted on the same state).
        args: the command line after ``shouyin terminal sim`` (without ``--control``).
    """

    def __init__(self, group: ProcessGroup, args: Sequence[str]) -> None:
        self.group = group
        self.args = list(args)
        self.child: ChildProcess | None = None
        self.control_address = ""
        self.seen: list[Event] = []
        self.runs = 0

    async def start(self, *extra: str) -> TerminalProcess:
        """Start (or restart) it with ``extra`` options; wait for its control channel."""
        self.runs += 1
        args = ["terminal", "sim", *self.args, *extra, "--control", "tcp://127.0.0.1:0"]
        self.child = self.group.spawn("terminal", args)
        self.seen = []
        self.control_address = (await self.expect("control"))["address"]
        return self

    async def expect(self, event: str, timeout: float = WAIT) -> dict[str, Any]:
        """The next JSON line reporting ``event`` (earlier lines of other events are kept).

        Raises:
            AssertionError: the process reported an error or exited first.
        """
        child = self.child
        assert child is not None, "not started"

        def refuse_errors(line: Event) -> None:
            if line["event"] == "error":
                raise AssertionError(f"terminal error {line}: {child.tail()}")

        next_line = functools.partial(child.line, timeout)
        return await expect_event(self.seen, event, next_line, timeout, check=refuse_errors)

    async def control(self, command: dict[str, Any]) -> dict[str, Any]:
        """One command on the terminal's control channel (bounded); fails unless ``ok``."""
        host, port = self.control_address.removeprefix("tcp://").rsplit(":", 1)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), WAIT)
        try:
            writer.write(json.dumps(command).encode() + b"\n")
            answer: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), WAIT))
        finally:
            writer.close()
        assert answer.get("ok"), answer
        return answer

    async def journal(self) -> list[JournalEntry]:
        """The open batch's transactions, as the terminal's journal holds them."""
        answer = await self.control({"cmd": "journal"})
        return [JournalEntry.model_validate(entry) for entry in answer["entries"]]

    async def slip(self, trace: str) -> list[str]:
        """The lines of the slip with ``trace``."""
        slip = (await self.control({"cmd": "slip", "trace": int(trace)}))["slip"]
        assert slip is not None, f"no slip for trace {trace}"
        return list(slip)

    async def last_printout(self) -> dict[str, str]:
        """What the terminal printed last: ``{"document": ..., "text": ...}``."""
        printouts = (await self.control({"cmd": "printouts"}))["printouts"]
        assert printouts, "nothing printed"
        return dict(printouts[-1])

    async def status(self) -> dict[str, Any]:
        """The control channel's ``status``: batch, last trace, status, link."""
        return await self.control({"cmd": "status"})

    async def stop(self) -> int:
        """SIGTERM (a clean stop) and wait for the exit status."""
        assert self.child is not None, "not started"
        return await self.child.terminate()

    async def power_cut(self) -> int:
        """SIGKILL (the power is gone) and wait until the process is."""
        assert self.child is not None, "not started"
        self.child.kill()
        return await self.child.wait_exit()


# -- the cashier system's side of the link -----------------------------------------------------


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> None:
    """Poll ``check`` until it is true.

    Raises:
        TimeoutError: not within ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def next_session(endpoint: LinkEndpoint, after: int, timeout: float = WAIT) -> None:
    """Wait until ``endpoint`` completed a login beyond its ``after``-th and is ready."""

    async def ready() -> bool:
        return endpoint.sessions > after and endpoint.is_ready

    await eventually(ready, timeout)


class SerialLane:
    """The cashier system on the ECR side of the terminal's pty null-modem cable.

    The terminal creates the cable, so every run of it has new device paths: the endpoint
    dials whatever path the running terminal reported, and refuses to dial while there is none
    (so that it never opens a stale path the kernel may have handed to the next run's other
    end).

    Args:
        terminal: the terminal process (started with ``--serial pty``).
        config: the cashier side's link timers.
        capabilities: what the cashier system offers at Login.
    """

    def __init__(
        self, terminal: TerminalProcess, config: LinkConfig, capabilities: Capabilities
    ) -> None:
        self.terminal = terminal
        self.path: str | None = None
        address = LinkAddress(Scheme.SERIAL, device="pty", baud=BAUD)
        connection = Connection(
            Role.ECR,
            ECR_ID,
            capabilities,
            config=config,
            framer_factory=address.framer_factory(),
        )
        self.endpoint = LinkEndpoint(connection, connector=self._dial, backoff=QUICK_BACKOFF)

    async def _dial(self) -> Transport:
        if self.path is None:
            raise ConnectionRefusedError("the terminal has not reported its serial port yet")
        return await open_serial(LinkAddress(Scheme.SERIAL, device=self.path, baud=BAUD))

    async def start(self) -> LinkEndpoint:
        """Start the terminal, pair it with a one-time code over the cable, and log in."""
        code = PairingCode.generate(time.monotonic())
        await self.terminal.start("--serial", "pty", "--baud", str(BAUD), "--pair", code.digits)
        self.path = (await self.terminal.expect("serial"))["ecr_path"]
        self.endpoint.allow_pairing(code)
        await self.endpoint.start()
        await self.terminal.expect("paired", timeout=2 * WAIT)
        self.endpoint.allow_pairing(None)
        await self.endpoint.wait_ready(WAIT)
        return self.endpoint

    def going_down(self) -> None:
        """The terminal is about to stop: its port goes away with it."""
        self.path = None

    async def restart(self) -> LinkEndpoint:
        """Start the terminal again on its state (no pairing) and wait for the next login."""
        sessions = self.endpoint.sessions
        await self.terminal.start("--serial", "pty", "--baud", str(BAUD))
        self.path = (await self.terminal.expect("serial"))["ecr_path"]
        await next_session(self.endpoint, sessions)
        return self.endpoint

    async def close(self) -> None:
        """Close the cashier side."""
        await self.endpoint.close()


class TlsLane:
    """The cashier system's TLS link server; the terminal dials it.

    The store CA and server certificate are made in ``directory``; the firewall lets loopback
    in only. The terminal pairs by the pairing QR code's text, and comes back afterwards with
    the client certificate it was issued.

    Args:
        terminal: the terminal process (dials in).
        directory: the cashier side's key store.
        config: the cashier side's link timers.
        capabilities: what the cashier system offers at Login.
    """

    def __init__(
        self,
        terminal: TerminalProcess,
        directory: Path,
        config: LinkConfig,
        capabilities: Capabilities,
    ) -> None:
        self.terminal = terminal
        self.keystore = KeyStore(directory)
        self.keystore.init("测试超市", ["127.0.0.1"], datetime.now(UTC))
        self.keys: dict[str, LongTermKey] = {}
        policy = FirewallPolicy(
            listen_addresses=(ipaddress.ip_address("127.0.0.1"),),
            allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
            max_attempts=100,
        )
        self.server = LinkServer(
            ecr_id=ECR_ID,
            capabilities=capabilities,
            firewall=Firewall(policy),
            listen=["tls://127.0.0.1:0"],
            keys=self.keys.get,
            keystore=self.keystore,
            config=config,
            on_paired=self._paired,
        )
        self.endpoint: LinkEndpoint | None = None

    def _paired(self, event: Paired) -> None:
        self.keys[event.peer_id] = event.key

    @property
    def port(self) -> int:
        """The server's bound port."""
        return self.server.addresses[0].port

    async def start(self) -> LinkEndpoint:
        """Listen, start the terminal with the pairing QR text, and wait for its login."""
        await self.server.start()
        code = PairingCode.generate(time.monotonic())
        self.server.allow_pairing(code, self.keystore.certificate_issuer(lambda: datetime.now(UTC)))
        payload = PairingPayload(
            address="127.0.0.1",
            port=self.port,
            code=code.digits,
            fingerprint=self.keystore.ca_fingerprint(),
        )
        await self.terminal.start("--pair-qr", encode_payload(payload))
        await self.terminal.expect("paired", timeout=2 * WAIT)
        self.server.allow_pairing(None)
        self.endpoint = await self.server.wait_ready(TERMINAL_ID, WAIT)
        info = self.endpoint.transport_info
        assert info is not None and info.tls_version == "TLSv1.3"
        return self.endpoint

    def going_down(self) -> None:
        """Nothing to do: the terminal dials in again by itself."""

    async def restart(self) -> LinkEndpoint:
        """Start the terminal again on its state, dialling with its certificate."""
        assert self.endpoint is not None, "start() first"
        sessions = self.endpoint.sessions
        await self.terminal.start("--connect", f"tls://127.0.0.1:{self.port}")
        await next_session(self.endpoint, sessions)
        return self.endpoint

    async def close(self) -> None:
        """Stop listening and drop the terminal."""
        await self.server.close()
