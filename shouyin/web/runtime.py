"""Everything one running web server holds: :class:`LaneRuntime`.

The runtime is made once by ``shouyin serve`` (or a test) and handed to
:func:`shouyin.web.app.create_app`; routes reach it through the ``RuntimeDep`` dependency
(:mod:`shouyin.web.auth`). It owns:

* the settings, the database engine (migrated on start) and a unit-of-work factory
  (:meth:`LaneRuntime.uow`: a fresh :class:`~shouyin.store.payment_repo.SqlPaymentUnitOfWork`
  per request, which serves the lane services and the payment journal alike);
* the password hasher (argon2) and the lane services' :class:`~shouyin.lane.services.Context`
  per lane (:meth:`LaneRuntime.context`);
* the event bus (:attr:`LaneRuntime.bus`) the pages listen to;
* the terminal links and one :class:`~shouyin.payments.orchestrator.PaymentOrchestrator` per lane
  (:meth:`LaneRuntime.orchestrator`). Terminals come from the fleet registry: a terminal with a
  ``serial://`` link URL is dialled by this side (a reconnecting ``LinkEndpoint``); network
  terminals dial in over TLS to one :class:`~shouyin.link.server.LinkServer` on
  ``settings.link_port``. Tests inject terminal ports directly (``terminals=``). After the admin
pairs a terminal on a lane that had none, :meth:`LaneRuntime.refresh_terminals` serves it
without a restart (starting the link server if it was not running); the running server itself
is ``runtime.links.server`` (its ``allow_pairing`` pairs over it).

Start-up order (:meth:`LaneRuntime.start`), DESIGN.md section 5: migrate; open the terminal links;
then, per lane, a task runs ``recover_all`` (until it has, ``pay`` refuses with
``RecoveryPending`` and the page says so; cash sales go on) followed by the background loop that
retries reversals, voids and refunds until acknowledged. :meth:`LaneRuntime.close` stops the
loops, closes every link, ends the event streams and disposes of the engine.

Terminal health (issue 7's :class:`~shouyin.fleet.health_monitor.HealthMonitor`, as
:class:`~shouyin.web.terminals.PublishingHealthMonitor`) runs in the server for the terminals it
links: every endpoint is watched from its first event on (serial ones when dialled, network ones
through :meth:`~shouyin.link.server.LinkServer.add_endpoint_listener`) and the time-based rules
run every ``health_interval`` seconds. Alerts raised or cleared and health changes are published
as ``terminal.alert`` / ``terminal.health`` (the terminal's lane, supervisors and admins only);
a link coming up or going down as ``terminal.state`` (the lane's pages, the cashier's too).

Lane peripherals (printer, drawer, customer display) are optional: :attr:`LaneRuntime.devices`
maps a lane to a :class:`~shouyin.web.devices.PeripheralHook` (``shouyin serve`` builds one from
the settings with :func:`~shouyin.web.devices.hook_from_settings`); the cashier API calls it after
a sale and reports its failures to the page without failing the sale. Printers are read in the
background (:class:`~shouyin.web.devices.PrinterWatch`: ``printer.status`` events, paper and
cover alerts). With ``settings.scanner_port``, the serial scanner's codes are published to the
lane's cashier page as ``scanner.code`` events, which it handles like keyboard-wedge scans.
Everything started here stops in :meth:`LaneRuntime.close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine

from shouyin.config import Settings
from shouyin.devices.errors import ScannerError
from shouyin.devices.scanner import SerialScanner
from shouyin.domain.barcodes import Nomenclature
from shouyin.domain.promotions import Promotion
from shouyin.domain.users import PasswordHasher, Role
from shouyin.fleet.health import HealthPolicy, HealthSample
from shouyin.fleet.health_store import AlertRecord
from shouyin.lane.services import Context
from shouyin.link.aio import LinkEndpoint
from shouyin.link.events import ConnectionClosed, Event, LinkDead, LoggedIn, LoggedOut
from shouyin.payments.orchestrator import PaymentOrchestrator
from shouyin.payments.policy import PaymentPolicy
from shouyin.payments.port import TerminalPort
from shouyin.payments.wording import ProgressEvent
from shouyin.store.audit_repo import CheckpointStore
from shouyin.store.catalogue_repo import SqlCatalogue
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.payment_repo import SqlPaymentUnitOfWork
from shouyin.store.uow import make_session_factory
from shouyin.web.devices import DevicesHook, PeripheralHook, PrinterWatch, alert_data
from shouyin.web.events import ADMIN_ONLY, ALL_ROLES, STAFF, EventBus, WebEvent
from shouyin.web.sessions import SessionPolicy, WebSessionStore
from shouyin.web.terminals import PublishingHealthMonitor, TerminalLinks

__all__ = ["PRINTER_REFRESH", "LaneRuntime", "NoTerminal"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

PRINTER_REFRESH = 30.0
"""Seconds between background printer status reads (also read after every print)."""


class NoTerminal(Exception):
    """The lane has no paired terminal: card and QR payments are unavailable."""

    def __init__(self, lane_id: str) -> None:
        super().__init__(f"lane {lane_id} has no paired payment terminal")
        self.lane_id = lane_id


def _nomenclature(settings: Settings) -> Nomenclature:
    if settings.scale_nomenclature:
        return Nomenclature.from_spec(settings.scale_nomenclature)
    return Nomenclature.default()


class LaneRuntime:
    """The running lane server's state (see the module docstring).

    Args:
        settings: the installation's settings (lane id, database, ports, keys).
        engine: an engine to use instead of one made from the settings (tests).
        hasher: the password hasher (argon2 defaults; tests pass a cheap one).
        lanes: the lanes served (default: ``settings.lane_id`` only).
        terminals: lane -> terminal port, instead of the fleet registry's links (tests:
            a ``TerminalRig``'s cashier endpoint).
        promotions: the promotions applied to new sales.
        policy: payment timings.
        session_policy: web session lifetimes.
        devices: lane -> peripherals (optional, :class:`~shouyin.web.devices.PeripheralHook`).
        migrate: run the Alembic migrations on start.
        offload: run slow blocking work (argon2) in a worker thread; tests on a virtual-time
            loop turn it off.
        clock: aware UTC time (sessions, services).
        health_policy: terminal health thresholds (the health monitor's).
        health_interval: seconds between the health monitor's checks (no heartbeat, ...).
        printer_interval: seconds between background printer status reads.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        hasher: PasswordHasher | None = None,
        lanes: Sequence[str] | None = None,
        terminals: Mapping[str, TerminalPort] | None = None,
        promotions: Sequence[Promotion] = (),
        policy: PaymentPolicy | None = None,
        devices: Mapping[str, PeripheralHook] | None = None,
        session_policy: SessionPolicy | None = None,
        migrate: bool = True,
        offload: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        health_policy: HealthPolicy | None = None,
        health_interval: float = 5.0,
        printer_interval: float = PRINTER_REFRESH,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.resolved_database_url())
        self._own_engine = engine is None
        self.session_factory = make_session_factory(self.engine)
        self.catalogue = SqlCatalogue(self.engine)
        self.checkpoints = CheckpointStore(settings.keys_dir)  # one store: its key is loaded once
        self.hasher = hasher or PasswordHasher()
        self.sessions = WebSessionStore(self.session_factory, session_policy)
        self.lanes: tuple[str, ...] = tuple(lanes or (settings.lane_id,))
        self.default_lane = self.lanes[0]
        self.promotions = tuple(promotions)
        self.policy = policy or PaymentPolicy()
        self.devices: dict[str, PeripheralHook] = dict(devices or {})
        self.clock = clock
        self.bus = EventBus()
        self.nomenclature = _nomenclature(settings)
        self._migrate = migrate
        self._offload = offload
        self._injected = dict(terminals) if terminals is not None else None
        self.links: TerminalLinks | None = None
        self.health_policy = health_policy or HealthPolicy()
        self.health_interval = health_interval
        self.printer_interval = printer_interval
        self.monitor: PublishingHealthMonitor | None = None
        self._watched_servers: set[int] = set()
        self._link_up: dict[str, bool] = {}
        self._printers: PrinterWatch | None = None
        self.scanner: SerialScanner | None = None
        self._orchestrators: dict[str, PaymentOrchestrator] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._work: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._started = False

    # -- per-request helpers ---------------------------------------------------------------------
    def uow(self) -> SqlPaymentUnitOfWork:
        """A fresh unit of work (lane services and payment journal) for one request.

        Its commits that append to the audit log move the signed checkpoint
        (:attr:`checkpoints`) to the new head before returning, so a cut-off tail of the lane's
        log is found by ``shouyin audit verify``. Measured: about 1.5-2 ms (sign, write, fsync)
        per *audited* commit (a login, a completed sale, a payment, a shift); commits that
        append nothing (a scan, a quantity change) do not touch the checkpoint at all.
        """
        uow = SqlPaymentUnitOfWork(self.session_factory, self.catalogue)
        uow.checkpoints = self.checkpoints
        return uow

    def context(self, lane_id: str) -> Context:
        """The lane services' context of ``lane_id`` (clock, scale formats, promotions)."""
        return Context(
            lane_id=lane_id,
            nomenclature=self.nomenclature,
            promotions=self.promotions,
            clock=self.clock,
        )

    def orchestrator(self, lane_id: str) -> PaymentOrchestrator:
        """The lane's payment orchestrator.

        Raises:
            NoTerminal: the lane has no terminal.
        """
        found = self._orchestrators.get(lane_id)
        if found is None:
            raise NoTerminal(lane_id)
        return found

    def has_terminal(self, lane_id: str) -> bool:
        """Whether card and QR payments are possible on the lane."""
        return lane_id in self._orchestrators

    def terminal_status(self, lane_id: str) -> dict[str, Any]:
        """What the cashier page shows about the lane's terminal (JSON-ready)."""
        orchestrator = self._orchestrators.get(lane_id)
        if orchestrator is None:
            return {"present": False, "ready": False, "recovered": False}
        port = orchestrator.channel.port
        ready = bool(getattr(port, "is_ready", False))
        return {"present": True, "ready": ready, "recovered": orchestrator.recovered}

    async def run_blocking(self, work: Callable[[], T]) -> T:
        """Run slow blocking work (a password check) off the event loop."""
        if not self._offload:
            return work()
        return await asyncio.to_thread(work)

    def spawn(self, work: Awaitable[T]) -> asyncio.Task[T]:
        """Run ``work`` as a task owned by the runtime (cancelled by :meth:`close`), e.g. a
        terminal payment that must go on even if the browser that asked goes away."""
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self._work.add(task)
        task.add_done_callback(self._work.discard)
        return task

    # -- life cycle --------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether :meth:`start` ran (and :meth:`close` did not yet)."""
        return self._started

    async def start(self) -> None:
        """Migrate, open the terminal links, and start recovery per lane (see the module
        docstring). Idempotent."""
        if self._started:
            return
        self._started = True
        self._stop = asyncio.Event()
        self.bus.bind(asyncio.get_running_loop())
        if self._migrate:
            await self.run_blocking(lambda: upgrade(self.engine))
        purged = self.sessions.purge(self.clock())  # sessions that ended while we were down
        if purged:
            logger.info("%d expired web sessions removed", purged)
        if self._injected is not None:
            ports = dict(self._injected)
        else:
            self._start_monitor()
            self.links = self._new_links()
            ports = await self.links.start()
            self._watch_server()
        self._serve(ports)
        self._start_printer_watch()
        if self.settings.scanner_port:
            self._tasks.append(asyncio.create_task(self._read_scanner()))
        logger.info(
            "lane runtime started: lanes %s, terminals on %s",
            ", ".join(self.lanes),
            ", ".join(sorted(ports)) or "none",
        )

    def _serve(self, ports: Mapping[str, TerminalPort]) -> None:
        """One orchestrator per lane's terminal, each with its recovery task."""
        for lane_id, port in ports.items():
            orchestrator = PaymentOrchestrator(
                self.uow(),
                port,
                self.context(lane_id),
                policy=self.policy,
                on_progress=self._progress_publisher(lane_id),
            )
            self._orchestrators[lane_id] = orchestrator
            task = asyncio.create_task(self._recover_then_retry(lane_id, orchestrator))
            self._tasks.append(task)

    async def refresh_terminals(self) -> list[str]:
        """Serve terminals paired since start on lanes that had none (call after a pairing);
        return the lanes that got one. A terminal re-paired on a lane already served needs
        nothing: its new key is read at its next connection.
        """
        if not self._started or self._injected is not None:
            return []
        if self.links is None:
            self.links = self._new_links()
        missing = [lane for lane in self.lanes if lane not in self._orchestrators]
        ports = await self.links.start(missing)
        self._watch_server()
        self._serve(ports)
        if ports:
            logger.info("terminals now served on lanes %s", ", ".join(sorted(ports)))
        return sorted(ports)

    # -- terminal health and link state (issue 7's monitor, in the server) ----------------------
    def _new_links(self) -> TerminalLinks:
        return TerminalLinks(self.settings, self.engine, self.lanes, on_endpoint=self._on_endpoint)

    def _start_monitor(self) -> None:
        """The health monitor of the terminals served here, checked every
        ``health_interval`` seconds until :meth:`close`."""
        self.monitor = PublishingHealthMonitor(
            self.engine, self.health_policy, on_change=self._publish_health
        )
        self._tasks.append(asyncio.create_task(self.monitor.run(self._stop, self.health_interval)))

    def _watch_server(self) -> None:
        links, monitor = self.links, self.monitor
        if links is None or monitor is None or links.server is None:
            return
        if id(links.server) not in self._watched_servers:
            self._watched_servers.add(id(links.server))
            monitor.watch(links.server)

    def _on_endpoint(self, terminal_id: str, endpoint: LinkEndpoint) -> None:
        """A terminal's endpoint, before it first connects: record its health and publish its
        link state (``terminal.state``) from its first event on."""
        if self.monitor is not None:
            self.monitor.attach(endpoint, terminal_id)

        def listener(link: LinkEndpoint, event: Event) -> None:
            if isinstance(event, LoggedIn):
                self._publish_link(terminal_id, link, None)
            elif isinstance(event, LinkDead):
                self._publish_link(terminal_id, link, event.reason)
            elif isinstance(event, ConnectionClosed | LoggedOut):
                self._publish_link(terminal_id, link, type(event).__name__)

        endpoint.add_listener(listener)

    def _audience(
        self, terminal_id: str, roles: frozenset[Role]
    ) -> tuple[str | None, frozenset[Role]]:
        """The lane and roles of an event about ``terminal_id``: its lane's, when served here;
        otherwise every lane's admins only."""
        lane_id = self.links.lane_of(terminal_id) if self.links is not None else None
        return (lane_id, roles) if lane_id is not None else (None, ADMIN_ONLY)

    def _publish_link(self, terminal_id: str, link: LinkEndpoint, reason: str | None) -> None:
        """``terminal.state`` when a terminal's link came up or went down (the same fields as
        the admin page's link watch, :func:`shouyin.web.admin_state.watch_links`, which also
        reports state changes in between); the lane's cashier page follows it too."""
        connected = reason is None
        if self._link_up.get(terminal_id) == connected:
            return  # reconnection attempts repeat "down": tell the pages once per change
        self._link_up[terminal_id] = connected
        lane_id, roles = self._audience(terminal_id, ALL_ROLES)
        data = {
            "terminal_id": terminal_id,
            "connected": connected,
            "state": link.state.name.lower(),
        }
        if reason:
            data["reason"] = reason[:200]
        self.bus.publish(WebEvent("terminal.state", data, lane_id=lane_id, roles=roles))

    def _publish_health(
        self, terminal_id: str, alerts: list[AlertRecord], sample: HealthSample | None
    ) -> None:
        """``terminal.alert`` per alert raised or cleared, ``terminal.health`` when it changed
        (supervisors and admins only)."""
        lane_id, roles = self._audience(terminal_id, STAFF)
        for alert in alerts:
            self.bus.publish(WebEvent("terminal.alert", alert_data(alert), lane_id, roles))
        if sample is not None:
            data = {
                "terminal_id": terminal_id,
                "paper": sample.paper.value if sample.paper else None,
                "power": sample.power.value if sample.power else None,
                "battery_percent": sample.battery_percent,
                "firmware": sample.firmware,
            }
            self.bus.publish(WebEvent("terminal.health", data, lane_id, roles))

    # -- receipt printers -------------------------------------------------------------------------
    def _start_printer_watch(self) -> None:
        """Read each lane printer's status now and every ``printer_interval`` seconds (in a
        worker thread, never on a page's request) until :meth:`close`; changes become
        ``printer.status`` events and printer alerts (:class:`~.devices.PrinterWatch`)."""
        hooks = {
            lane: hook
            for lane, hook in self.devices.items()
            if isinstance(hook, DevicesHook) and hook.has_printer
        }
        if not hooks:
            return
        self._printers = PrinterWatch(hooks, self.engine, self.bus.publish, clock=self.clock)
        task = self._printers.run(self._stop, self.printer_interval, self.run_blocking)
        self._tasks.append(asyncio.create_task(task))

    # -- serial barcode scanner ----------------------------------------------------------------
    async def _read_scanner(self) -> None:
        """Deliver each code of the lane's serial scanner to its cashier page as a
        ``scanner.code`` event (handled there like a keyboard-wedge scan); reopen the port
        after an error, with a bounded back-off, until :meth:`close`."""
        lane_id = self.settings.lane_id
        failures = 0
        while not self._stop.is_set():
            try:
                scanner = await SerialScanner.from_settings(self.settings)
            except ScannerError as error:
                scanner = None
                logger.warning("lane %s: scanner unavailable: %s", lane_id, error)
            if scanner is not None:
                self.scanner = scanner
                logger.info(
                    "lane %s: reading the scanner on %s", lane_id, self.settings.scanner_port
                )
                try:
                    async for code in scanner.codes():
                        failures = 0
                        data = {"code": code}
                        self.bus.publish(WebEvent("scanner.code", data, lane_id=lane_id))
                except (OSError, ScannerError) as error:
                    logger.warning("lane %s: scanner read failed: %s", lane_id, error)
                finally:
                    self.scanner = None
                    scanner.close()
            failures += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), min(1.0 * failures, 30.0))

    def _progress_publisher(self, lane_id: str) -> Callable[[ProgressEvent], None]:
        def publish(event: ProgressEvent) -> None:
            data = {k: (str(v) if v is not None else None) for k, v in asdict(event).items()}
            self.bus.publish(WebEvent("payment.progress", data, lane_id=lane_id))

        return publish

    async def _recover_then_retry(self, lane_id: str, orchestrator: PaymentOrchestrator) -> None:
        """``recover_all`` (retried until it succeeds), then the background retry loop."""
        attempt = 0
        while not self._stop.is_set() and not orchestrator.recovered:
            try:
                report = await orchestrator.recover_all()
            except Exception:  # e.g. the database was briefly unavailable: try again, bounded
                attempt += 1
                logger.exception("lane %s: payment recovery failed (attempt %d)", lane_id, attempt)
                delay = min(self.policy.reversal_retry * attempt, self.policy.reversal_retry_max)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                continue
            lines = report.lines("zh")
            self.bus.publish(WebEvent("lane.recovered", {"lines": list(lines)}, lane_id=lane_id))
        if not self._stop.is_set():
            await orchestrator.run_background(self._stop)

    async def wait_recovered(self, timeout: float) -> None:
        """Wait (bounded) until every lane's journal is settled (tests, ``make demo``).

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not all(o.recovered for o in self._orchestrators.values()):
            if loop.time() > deadline:
                raise TimeoutError("payment recovery did not finish in time")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Stop the loops, close the terminal links and the event streams, dispose of the
        engine. Idempotent."""
        self._stop.set()
        self.bus.close()
        tasks: list[asyncio.Task[Any]] = [*self._tasks, *self._work]
        self._tasks = []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.links is not None:
            await self.links.close()
            self.links = None
        self._orchestrators.clear()
        self.monitor = None
        self._watched_servers.clear()
        self._link_up.clear()
        if self._printers is not None:
            self._printers.close()
            self._printers = None
        if self._own_engine:
            self.engine.dispose()
        self._started = False
        logger.info("lane runtime stopped")
