"""The whole demo system, started and stopped in order: the acquirer simulator, a virtual
receipt printer per lane, two simulated payment terminals (one on a pty serial cable, one over
TLS), their pairing, and a server per lane (``shouyin serve``; lane L01 drives the TLS terminal,
lane L02 the serial one, both on the store's one database, as two lanes of one shop).

Pairing is done the way an admin does it (:class:`~shouyin.fleet.pairing.PairingSession`, what
``shouyin fleet pair`` runs): the session shows a one-time code, the terminal is started with
that code (over TLS: with the pairing QR code's text) and pairs. A pairing session holds the link
port (TLS) or the serial port while it waits, so both pairings happen before the servers start;
the TLS terminal is then started again together with the servers, so that it dials its server at
once instead of after the back-off of dials refused while nobody listened.

The serial "cable" is a :class:`~shouyin.link.transport.PtyCable` held by the demo itself: the
terminal opens one end, the lane (pairing, then its server) the other, and the cable's device
paths stay the same across restarts of either side.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from shouyin.config import Settings
from shouyin.demo_procs import Child, ChildDied, Supervisor
from shouyin.demo_store import TERMINALS, DemoTerminal, StoreSummary, create_store
from shouyin.fleet.keys import PASSPHRASE_ENV, TerminalKeyRing
from shouyin.fleet.pairing import PairingSession
from shouyin.link.pairing_qr import encode_payload
from shouyin.link.transport import PtyCable
from shouyin.terminal.records import TerminalConfig
from shouyin.terminal.state import TerminalState

__all__ = ["LANES", "DemoPorts", "DemoSystem", "LaneServer", "RunningTerminal"]

logger = logging.getLogger(__name__)

BAUD: Final = 115_200
STEP_TIMEOUT: Final = 30.0  # seconds any one step (a child ready, a pairing) may take
_ACQUIRER_READY: Final = re.compile(r"port=(\d+) control_port=(\d+)")
_PRINTER_READY: Final = re.compile(r"127\.0\.0\.1:(\d+)\D+(\d+)")
MERCHANT_NAME: Final = "shouyin 示范超市"
ACQUIRER_TIMEOUT: Final = 10.0
"""Seconds a terminal waits for the acquirer before it reverses (the demo's "no answer" card
should not keep the person at the cashier page waiting the production 30 s)."""
LANES: Final = tuple(dict.fromkeys(t.lane_id for t in TERMINALS))
"""The demo's lanes, each with its own server and terminal (as in a real store)."""


@dataclass(frozen=True, slots=True)
class DemoPorts:
    """The loopback ports of the demo (known before the servers start).

    Attributes:
        web: each lane server's web port, in the order of :data:`LANES`.
        link: the link port network terminals dial (the TLS terminal's lane server).
    """

    web: tuple[int, ...]
    link: int


@dataclass(slots=True)
class LaneServer:
    """One lane's server (``shouyin serve``) and the terminal it drives."""

    lane_id: str
    web_port: int
    child: Child

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.web_port}"


@dataclass(slots=True)
class RunningTerminal:
    """A simulated terminal of the demo and where to steer it."""

    spec: DemoTerminal
    child: Child
    state_dir: Path
    control: str = ""
    key_id: str = ""


@dataclass
class DemoSystem:
    """Build and run the demo in ``root`` (emptied first by the caller).

    Args:
        root: the demo directory: ``lane/`` (the store's data, shared by the lane servers),
            ``logs/``, ``acquirer/``, ``terminals/<id>/``.
        ports: the loopback ports to use.
        language: ``zh`` or ``en`` for the children's messages.
    """

    root: Path
    ports: DemoPorts
    language: str = "zh"
    summary: StoreSummary | None = None
    terminals: list[RunningTerminal] = field(default_factory=list)
    servers: list[LaneServer] = field(default_factory=list)
    acquirer_control: int = 0
    printers: dict[str, int] = field(default_factory=dict)
    """lane -> the virtual printer's control port."""
    _printer_ports: dict[str, int] = field(default_factory=dict)
    _cable: PtyCable | None = None
    _supervisor: Supervisor | None = None

    def settings(self, lane_id: str = LANES[0]) -> Settings:
        """A lane's settings: loopback only, fixed ports, the store's data in ``root/lane``."""
        return Settings(
            data_dir=self.root / "lane",
            database_url=None,
            lane_id=lane_id,
            listen_addresses=["127.0.0.1"],
            allowed_networks=["127.0.0.0/8"],
            server_names=["localhost", "127.0.0.1"],
            link_port=self.ports.link,
            web_port=self.ports.web[LANES.index(lane_id)],
            language=self.language,
        )

    def lane_env(self, lane_id: str) -> dict[str, str]:
        """The environment that gives a child the settings of ``lane_id``."""
        s = self.settings(lane_id)
        return {
            "SHOUYIN_DATA_DIR": str(s.data_dir),
            "SHOUYIN_DATABASE_URL": "",
            "SHOUYIN_LANE_ID": s.lane_id,
            "SHOUYIN_LISTEN_ADDRESSES": '["127.0.0.1"]',
            "SHOUYIN_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "SHOUYIN_SERVER_NAMES": '["localhost", "127.0.0.1"]',
            "SHOUYIN_LINK_PORT": str(s.link_port),
            "SHOUYIN_WEB_PORT": str(s.web_port),
            "SHOUYIN_LANGUAGE": self.language,
            # A throw-away store: its terminal keys are not sealed with a passphrase.
            PASSPHRASE_ENV: "",
            "SHOUYIN_PRINTER_URL": (
                f"tcp://127.0.0.1:{self._printer_ports[lane_id]}"
                if lane_id in self._printer_ports
                else ""
            ),
        }

    @property
    def supervisor(self) -> Supervisor:
        """The children (after :meth:`start` began)."""
        if self._supervisor is None:
            raise RuntimeError("start() first")
        return self._supervisor

    def receipts_dir(self, lane_id: str) -> Path:
        """Where the lane's virtual printer keeps its jobs (``job-NNNN.txt``, ``.png``)."""
        return self.root / "receipts" / lane_id

    @property
    def web_url(self) -> str:
        """The first lane server's base URL (the admin pages are on every lane server)."""
        return f"http://127.0.0.1:{self.ports.web[0]}"

    # -- starting ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the store and start everything, in order; bounded at every step.

        Raises:
            ChildDied: a child exited while starting (its log says why).
            TimeoutError: a step took longer than :data:`STEP_TIMEOUT`.
        """
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._supervisor = Supervisor(logs, self.lane_env(LANES[0]))
        cable = PtyCable(BAUD)
        cable.start()
        self._cable = cable
        terminal_end, lane_end = cable.paths
        rules = self.root / "reader-rules.json"
        store = asyncio.create_task(
            asyncio.to_thread(
                create_store, self.settings(), f"serial://{lane_end}?baud={BAUD}", rules
            )
        )
        acquirer = self.supervisor.start(
            "acquirer",
            "acquirer", "sim", "--port", "0", "--control-port", "0",
            "--state-dir", str(self.root / "acquirer"), "--log-level", "WARNING",
        )  # fmt: skip
        match = await acquirer.expect(_ACQUIRER_READY, STEP_TIMEOUT)
        acquirer_port, self.acquirer_control = int(match.group(1)), int(match.group(2))
        self.summary = await store
        # The two pairings are independent (one holds the link port, the other the cable),
        # and the printers need neither.
        paired, _ = await asyncio.gather(
            asyncio.gather(
                *(self._pair(spec, acquirer_port, rules, terminal_end) for spec in TERMINALS)
            ),
            self._start_printers(),
        )
        self.terminals = list(paired)
        # The store's database is migrated already (create_store): the servers start together.
        for lane_id in LANES:
            child = self.supervisor.start(
                f"server-{lane_id}", "serve", "--demo-promotions", "--log-level", "warning",
                env=self.lane_env(lane_id),
            )  # fmt: skip
            self.servers.append(LaneServer(lane_id, self.ports.web[LANES.index(lane_id)], child))
        dialling = [t for t in self.terminals if t.spec.transport == "tls"]
        await asyncio.gather(
            *(_wait_for_server(server) for server in self.servers),
            *(self._dial_in(t, acquirer_port, rules) for t in dialling),
        )
        await asyncio.gather(*(t.child.event("logged_in", STEP_TIMEOUT) for t in self.terminals))

    def _state_dir(self, spec: DemoTerminal) -> Path:
        return self.root / "terminals" / spec.terminal_id

    def _terminal_args(
        self, spec: DemoTerminal, acquirer_port: int, rules: Path, *extra: str
    ) -> list[str]:
        return [
            "terminal", "sim", "--state-dir", str(self._state_dir(spec)),
            "--acquirer", f"tcp://127.0.0.1:{acquirer_port}",
            "--control", "tcp://127.0.0.1:0", "--rules", str(rules),
            "--acquirer-timeout", str(ACQUIRER_TIMEOUT), *extra,
        ]  # fmt: skip

    async def _pair(
        self, spec: DemoTerminal, acquirer_port: int, rules: Path, terminal_end: str
    ) -> RunningTerminal:
        """Pair ``spec`` as an admin would, and leave it running (ready for its server)."""
        name = f"terminal-{spec.terminal_id}"
        # Each terminal needs its own 终端编号 at the acquirer (the simulator's default is one
        # number for all): the acquirer tells terminals apart, and their traces, by it. The
        # simulator keeps the configuration of a state directory that exists.
        config = TerminalConfig(
            terminal_id=spec.terminal_id,
            merchant_name=MERCHANT_NAME,
            acquirer_terminal_id=spec.terminal_id,
        )
        await asyncio.to_thread(_new_terminal_state, self._state_dir(spec), config)
        settings = self.settings(spec.lane_id)
        keyring = TerminalKeyRing(settings.keys_dir, passphrase=None)
        async with PairingSession(settings, spec.terminal_id, keyring=keyring) as session:
            invitation = session.invitation
            if spec.transport == "tls":
                assert invitation.payload is not None  # a network terminal has a QR code
                pairing = ["--pair-qr", encode_payload(invitation.payload)]
            else:
                link = ["--serial", terminal_end, "--baud", str(BAUD)]
                pairing = [*link, "--pair", invitation.code.digits]
            args = self._terminal_args(spec, acquirer_port, rules, *pairing)
            child = self.supervisor.start(name, *args)
            running = RunningTerminal(spec, child, self._state_dir(spec))
            running.control = (await child.event("control", STEP_TIMEOUT))["address"]
            async with asyncio.TaskGroup() as group:
                result = group.create_task(session.wait(STEP_TIMEOUT))
                group.create_task(child.event("paired", STEP_TIMEOUT))
            running.key_id = result.result().terminal.key_id or ""
        if spec.transport == "tls":
            # Started again with the server (see _dial_in): then it dials at once, instead of
            # after the back-off of dials refused while no server listens.
            self.supervisor.children.remove(child)
            await child.stop()
        logger.info("terminal %s paired (key %s)", spec.terminal_id, running.key_id)
        return running

    async def _dial_in(self, running: RunningTerminal, acquirer_port: int, rules: Path) -> None:
        """Start a paired network terminal that dials the link port with its certificate."""
        link = ["--connect", f"tls://127.0.0.1:{self.ports.link}"]
        args = self._terminal_args(running.spec, acquirer_port, rules, *link)
        running.child = self.supervisor.start(running.child.name, *args)
        running.control = (await running.child.event("control", STEP_TIMEOUT))["address"]

    async def _start_printers(self) -> None:
        """A virtual receipt printer per lane, when this installation has them (issue 8)."""
        if not _has_printer_sim():
            return
        started = []
        for lane_id in LANES:
            out = self.receipts_dir(lane_id)
            args = ["printer", "sim", "--port", "0", "--control-port", "0", "--out", str(out)]
            started.append(self.supervisor.start(f"printer-{lane_id}", *args))
        for lane_id, printer in zip(LANES, started, strict=True):
            match = await printer.expect(_PRINTER_READY, STEP_TIMEOUT)
            self._printer_ports[lane_id] = int(match.group(1))
            self.printers[lane_id] = int(match.group(2))

    # -- running and stopping ------------------------------------------------------------------

    def dead(self) -> Child | None:
        """The first child that has exited, if any."""
        return None if self._supervisor is None else self._supervisor.dead()

    async def stop(self) -> list[tuple[str, int | None]]:
        """Stop every child (the last started first), then the serial cable; idempotent."""
        stopped = await self._supervisor.stop_all() if self._supervisor is not None else []
        self._supervisor = None
        cable, self._cable = self._cable, None
        if cable is not None:
            await cable.close()
        return stopped


async def _wait_for_server(server: LaneServer) -> None:
    """Poll the server's web port until it answers (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_TIMEOUT
    async with httpx.AsyncClient(base_url=server.url, timeout=2.0) as client:
        while True:
            status = server.child.status()
            if status is not None:
                raise ChildDied(server.child.name, status, server.child.log)
            try:
                await client.get("/api/openapi.json")
                return
            except httpx.TransportError:
                if loop.time() > deadline:
                    raise TimeoutError(f"the server did not answer on {server.url}") from None
                await asyncio.sleep(0.1)


def _new_terminal_state(directory: Path, config: TerminalConfig) -> None:
    TerminalState(directory, config).close()


def _has_printer_sim() -> bool:
    try:
        from shouyin.cli import app
    except ImportError:  # pragma: no cover - the CLI always imports
        return False
    return any(group.name == "printer" for group in app.registered_groups)
