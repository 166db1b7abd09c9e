"""The lane server's terminal links, built from the fleet registry (:class:`TerminalLinks`).

For each lane served, the first paired terminal of that lane (by id) is the lane's terminal:

* ``serial://`` terminals are dialled by this side: a :class:`~shouyin.link.aio.LinkEndpoint`
  with a connector that opens the port, reconnecting with back-off by itself;
* network terminals dial in over TLS to one :class:`~shouyin.link.server.LinkServer` on
  ``settings.link_port`` (loopback only by default; see ``Settings.listen_addresses``). Because
  that server makes a terminal's endpoint only when the terminal connects, the orchestrator gets
  a :class:`ServerTerminalPort` that looks the endpoint up at each call, and whose
  listeners (the orchestrator's test-mode watch) are put on the endpoint when it is made.

Long-term keys come from the key ring in ``settings.keys_dir`` (passphrase from
``SHOUYIN_KEY_PASSPHRASE``). A terminal that cannot be served (no key, no store CA) is logged
and skipped: the lane then sells cash only, and the page says why.

Every endpoint is handed to the ``on_endpoint`` callback before it first connects (the runtime's
health monitor and link-state events). :class:`PublishingHealthMonitor` is the fleet's health
monitor that also tells the pages what changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine

from shouyin.config import Settings
from shouyin.fleet.health import HealthPolicy, HealthSample
from shouyin.fleet.health_monitor import HealthMonitor
from shouyin.fleet.health_store import AlertRecord
from shouyin.fleet.keys import TerminalKeyRing, passphrase_from_env
from shouyin.fleet.pairing import build_link_server, ecr_capabilities, ecr_identity
from shouyin.fleet.registry import Terminal, TerminalState, list_terminals
from shouyin.link.aio import EventListener, LinkEndpoint, ProgressCallback
from shouyin.link.errors import LocalProtocolError
from shouyin.link.keystore import KeyStore
from shouyin.link.messages import EventNotification, Request, Response
from shouyin.link.server import EndpointListener, LinkServer
from shouyin.link.session import Connection
from shouyin.link.states import Role
from shouyin.link.transport import Transport, open_serial
from shouyin.payments.port import TerminalPort
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import make_session_factory

__all__ = ["HealthListener", "PublishingHealthMonitor", "ServerTerminalPort", "TerminalLinks"]

logger = logging.getLogger(__name__)


class ServerTerminalPort:
    """A :class:`~shouyin.payments.port.TerminalPort` for a network terminal behind a
    :class:`LinkServer` (its endpoint exists only once the terminal has connected)."""

    def __init__(self, server: LinkServer, terminal_id: str) -> None:
        self.server = server
        self.terminal_id = terminal_id
        self._ids = 0

    @property
    def is_ready(self) -> bool:
        """Whether the terminal is connected and logged in."""
        endpoint = self.server.endpoints.get(self.terminal_id)
        return endpoint is not None and endpoint.is_ready

    def new_service_id(self) -> str:
        """A fresh ``service_id`` (from the endpoint when there is one)."""
        endpoint = self.server.endpoints.get(self.terminal_id)
        if endpoint is not None:
            return endpoint.new_service_id()
        self._ids += 1
        return f"web-{self._ids:08d}"

    async def wait_ready(self, timeout: float | None = None) -> object:
        """Wait until the terminal has connected and logged in.

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
        return await self.server.wait_ready(
            self.terminal_id, 3600.0 if timeout is None else timeout
        )

    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener(endpoint, event)`` for every event of the terminal's link: on the
        endpoint the server made already, and on the one it makes when the terminal dials in
        (the orchestrator's test-mode watch is attached before the terminal ever connected)."""
        endpoint = self.server.endpoints.get(self.terminal_id)
        if endpoint is not None:
            endpoint.add_listener(listener)

        def on_endpoint(terminal_id: str, made: LinkEndpoint) -> None:
            # called only when the server makes an endpoint: never twice for the same one
            if terminal_id == self.terminal_id:
                made.add_listener(listener)

        self.server.add_endpoint_listener(on_endpoint)

    async def request(
        self,
        request: Request,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send over the terminal's current connection.

        Raises:
            LocalProtocolError: the terminal is not connected (nothing was sent).
        """
        endpoint = self.server.endpoints.get(self.terminal_id)
        if endpoint is None:
            raise LocalProtocolError(f"terminal {self.terminal_id} is not connected")
        return await endpoint.request(request, on_progress=on_progress, timeout=timeout)


class TerminalLinks:
    """Opens and closes the terminal links of the lanes served (see the module docstring).

    Attributes:
        server: the TLS link server, when a lane has a network terminal (the admin's pairing
            may use its ``allow_pairing``).
        endpoints: the serial terminals' endpoints, by terminal id.
        terminals: the terminal chosen per lane.

    Args:
        settings, engine, lanes: the installation, its database, the lanes served.
        on_endpoint: told ``(terminal_id, endpoint)`` for each terminal endpoint before it
            first connects (serial ones when dialled, network ones when the terminal dials in),
            so that the runtime hears every event of every link (health, link state).
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        lanes: Sequence[str],
        *,
        on_endpoint: EndpointListener | None = None,
    ) -> None:
        self.settings = settings
        self.on_endpoint = on_endpoint
        self.engine = engine
        self.lanes = tuple(lanes)
        self.server: LinkServer | None = None
        self.endpoints: dict[str, LinkEndpoint] = {}
        self.terminals: dict[str, Terminal] = {}
        self.keyring = TerminalKeyRing(settings.keys_dir, passphrase=passphrase_from_env())

    def lane_of(self, terminal_id: str) -> str | None:
        """The lane a served terminal belongs to (``None``: not served here)."""
        for lane_id, terminal in self.terminals.items():
            if terminal.terminal_id == terminal_id:
                return lane_id
        return None

    def _choose(self, lanes: Sequence[str]) -> dict[str, Terminal]:
        uow = SqlTerminalUnitOfWork(make_session_factory(self.engine))
        chosen: dict[str, Terminal] = {}
        for lane_id in lanes:
            paired = [t for t in list_terminals(uow, lane_id) if t.state is TerminalState.PAIRED]
            paired.sort(key=lambda t: t.terminal_id)
            if paired:
                chosen[lane_id] = paired[0]
                for extra in paired[1:]:
                    logger.warning(
                        "lane %s: terminal %s not used (one terminal per lane; using %s)",
                        lane_id,
                        extra.terminal_id,
                        paired[0].terminal_id,
                    )
        return chosen

    async def start(self, lanes: Sequence[str] | None = None) -> dict[str, TerminalPort]:
        """Open the links of ``lanes`` (default: all) that have no link yet; return each such
        lane's terminal port (lanes without a paired terminal are left out). Called again
        (:meth:`LaneRuntime.refresh_terminals`), it picks up terminals paired since."""
        wanted = [lane for lane in (lanes or self.lanes) if lane not in self.terminals]
        chosen = self._choose(wanted)
        self.terminals.update(chosen)
        ports: dict[str, TerminalPort] = {}
        network: dict[str, Terminal] = {}
        for lane_id, terminal in chosen.items():
            if terminal.is_serial:
                endpoint = await self._serial(terminal)
                if endpoint is not None:
                    ports[lane_id] = endpoint
                else:
                    del self.terminals[lane_id]
            else:
                network[lane_id] = terminal
        if network:
            server = self.server or await self._server()
            for lane_id, terminal in network.items():
                if server is None:
                    del self.terminals[lane_id]  # try again at the next refresh
                else:
                    ports[lane_id] = ServerTerminalPort(server, terminal.terminal_id)
        return ports

    async def _serial(self, terminal: Terminal) -> LinkEndpoint | None:
        address = terminal.link_address
        assert address is not None  # is_serial
        key = self.keyring.get(terminal.terminal_id)
        if key is None:
            logger.error("terminal %s has no long-term key: pair it again", terminal.terminal_id)
            return None

        async def connect() -> Transport:
            return await open_serial(address)

        connection = Connection(
            Role.ECR,
            ecr_identity(self.settings),
            ecr_capabilities(),
            framer_factory=address.framer_factory(),
            long_term_key=key,
        )
        endpoint = LinkEndpoint(
            connection, connector=connect, name=f"lane -> {terminal.terminal_id} ({address})"
        )
        if self.on_endpoint is not None:
            self.on_endpoint(terminal.terminal_id, endpoint)
        await endpoint.start()
        self.endpoints[terminal.terminal_id] = endpoint
        logger.info("dialling terminal %s on %s", terminal.terminal_id, address)
        return endpoint

    async def _server(self) -> LinkServer | None:
        keystore = KeyStore(self.settings.keys_dir)
        if not keystore.is_initialised():
            logger.error("no store CA in %s: run `shouyin init`", self.settings.keys_dir)
            return None
        server = build_link_server(self.settings, keys=self.keyring.get, keystore=keystore)
        if self.on_endpoint is not None:
            server.add_endpoint_listener(self.on_endpoint)
        try:
            await server.start()
        except OSError as error:
            logger.error("cannot listen for terminals: %s", error)
            return None
        self.server = server
        logger.info("listening for terminals on %s", ", ".join(map(str, server.addresses)))
        return server

    async def close(self) -> None:
        """Close every link (serial endpoints and the server)."""
        for endpoint in self.endpoints.values():
            await endpoint.close()
        self.endpoints.clear()
        if self.server is not None:
            await self.server.close()
            self.server = None


HealthListener = Callable[[str, "list[AlertRecord]", "HealthSample | None"], None]
"""Told ``(terminal_id, alerts raised or cleared, changed health or None)``."""


class PublishingHealthMonitor(HealthMonitor):
    """The fleet's :class:`~shouyin.fleet.health_monitor.HealthMonitor` that also tells the web
    pages what changed: each alert raised or cleared, and a terminal's health when what the
    admin page shows of it (paper, power, battery in steps of 10 %, firmware) changed, which
    a heartbeat every few seconds mostly does not.

    Args:
        engine, policy, clock: as for :class:`HealthMonitor`.
        on_change: told each change (on the event loop, where link events arrive).
    """

    def __init__(
        self,
        engine: Engine,
        policy: HealthPolicy | None = None,
        *,
        on_change: HealthListener,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if clock is None:
            super().__init__(engine, policy)
        else:
            super().__init__(engine, policy, clock=clock)
        self._on_change = on_change
        self._shown: dict[str, tuple[object, ...]] = {}

    def record_health(self, sample: HealthSample) -> list[AlertRecord]:
        """Store and apply the rules (see :class:`HealthMonitor`), then tell the pages."""
        done = super().record_health(sample)
        self._tell(sample.terminal_id, done, sample)
        return done

    def record_notification(
        self, terminal_id: str, notification: EventNotification
    ) -> list[AlertRecord]:
        """Apply a notification (see :class:`HealthMonitor`), then tell the pages."""
        done = super().record_notification(terminal_id, notification)
        with self._uow as uow:
            latest = uow.health.latest(terminal_id)
        self._tell(terminal_id, done, latest[1] if latest else None)
        return done

    def check(self) -> list[AlertRecord]:
        """Run the time-based rules (see :class:`HealthMonitor`), then tell the pages."""
        done = super().check()
        by_terminal: dict[str, list[AlertRecord]] = {}
        for record in done:
            by_terminal.setdefault(record.terminal_id, []).append(record)
        for terminal_id, records in by_terminal.items():
            self._tell(terminal_id, records, None)
        return done

    def _tell(
        self, terminal_id: str, alerts: list[AlertRecord], sample: HealthSample | None
    ) -> None:
        changed: HealthSample | None = None
        if sample is not None:
            battery = sample.battery_percent
            shown = (
                sample.paper,
                sample.power,
                None if battery is None else battery // 10,
                sample.firmware,
            )
            if self._shown.get(terminal_id) != shown:
                self._shown[terminal_id] = shown
                changed = sample
        if alerts or changed is not None:
            try:
                self._on_change(terminal_id, alerts, changed)
            except Exception:  # telling the pages must never lose the health record
                logger.exception("terminal %s: could not publish its health", terminal_id)
