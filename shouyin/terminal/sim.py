"""The simulator process: the terminal application on a real link, acquirer and control channel.

:class:`TerminalSim` wires :class:`~shouyin.terminal.app.TerminalApp` to

* the cashier system through :class:`~shouyin.link.aio.LinkEndpoint`, over one of: a pty
  null-modem cable it creates (``serial="pty"``: it reports the ECR side's device path), a given
  serial device, a TCP port it listens on for the cashier system, or a ``tcp://``/``tls://``
  address it dials (reconnecting by itself). Every transport goes through
  :class:`~shouyin.terminal.faulty.FaultyTransport`, so the fault switches apply;
* pairing, like a real terminal: the 8-digit code (with the cashier system's address), or the
  text of the pairing QR code. Over TLS the terminal pairs on a certificate-less connection,
  installs the certificate and pins the store CA (checked against the QR code's fingerprint),
  then dials with its certificate; over serial or plain TCP it pairs on the session's own link.
  The long-term key is kept in the state directory;
* the acquirer: the ISO 8583 simulator at ``tcp://host:port``, or ``memory`` (built in);
* the control channel (:mod:`shouyin.terminal.control`).

A fault switch that cuts the power ends the process at once with ``os._exit`` (status 137):
nothing is flushed or closed, as with a real power cut; the state directory holds only what
was committed. Progress is reported through ``emit(event, **fields)`` (the CLI prints JSON
lines on stdout for test harnesses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from shouyin.link.aio import LinkEndpoint
from shouyin.link.config import LinkConfig
from shouyin.link.errors import LinkError
from shouyin.link.events import LinkDead, LoggedIn, LoggedOut, MessageReceived, Paired, SessionReset
from shouyin.link.keystore import TerminalKeyStore
from shouyin.link.messages import MessageBase, Request
from shouyin.link.pairing_qr import parse_payload
from shouyin.link.server import pair_terminal
from shouyin.link.session import Connection
from shouyin.link.states import Role
from shouyin.link.transport import (
    LinkAddress,
    PtyCable,
    Scheme,
    Transport,
    connect_tcp,
    connect_tls,
    listen,
    open_serial,
    pairing_ssl_context,
)
from shouyin.link.values import Capabilities, LinkCounters, PaymentKind, Wallet
from shouyin.terminal.app import TerminalApp
from shouyin.terminal.cards import ReaderRule, RulesReader
from shouyin.terminal.control import ControlHandler, ControlServer
from shouyin.terminal.errors import PowerLoss
from shouyin.terminal.faults import FaultPlan, Faults
from shouyin.terminal.faulty import FaultyTransport
from shouyin.terminal.firmware import pin_trusted_root
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.ports import AcquirerPort, CardReader, SystemClock
from shouyin.terminal.records import TerminalConfig
from shouyin.terminal.state import TerminalState

__all__ = ["POWER_LOSS_EXIT", "SimOptions", "TerminalSim", "terminal_capabilities"]

logger = logging.getLogger(__name__)

POWER_LOSS_EXIT = 137
"""Exit status when a fault switch cuts the power."""
_PAIR_ATTEMPTS = 30

Emit = Callable[..., None]


def terminal_capabilities(firmware: str) -> Capabilities:
    """What the simulated terminal offers at Login."""
    return Capabilities(
        payment_kinds=(PaymentKind.CARD, PaymentKind.QR_CODE, PaymentKind.MERCHANT_QR),
        wallets=(Wallet.WECHAT, Wallet.ALIPAY, Wallet.UNIONPAY),
        printer=True,
        display=True,
        max_frame_size=8192,
        firmware=firmware,
        model="SHOUYIN-SIM",
    )


@dataclass(frozen=True)
class SimOptions:
    """How to run the simulator (see :mod:`shouyin.terminal.cli` for the flags).

    Attributes:
        state_dir: the terminal's state directory.
        serial: ``"pty"`` (create a null-modem pty pair) or a serial device / ``serial://`` URL.
        baud: serial speed.
        listen: ``tcp://host:port`` to wait for the cashier system on.
        connect: ``tcp://`` or ``tls://`` address of the cashier system to dial.
        server_name: the name to check in the cashier system's certificate.
        pair_code: pair first with this 8-digit code.
        pair_qr: pair first with the text of this pairing QR code.
        acquirer: ``memory`` or ``tcp://host:port`` of the acquirer simulator.
        control: ``unix`` (a socket in the state directory), ``tcp://127.0.0.1:<port>`` or
            ``None``.
        config: the terminal configuration for a new state directory.
        rules: card reader rules; ``default_card``: the card for anything else.
        faults: the initial fault switches.
        dead_after: the link's dead-peer time.
        acquirer_timeout: seconds per acquirer answer (applied to an existing state too).
        update_root: the store's TUF root metadata to pin (provisioning; once per state).
    """

    state_dir: Path
    serial: str | None = None
    baud: int = 115_200
    listen: str | None = None
    connect: str | None = None
    server_name: str | None = None
    pair_code: str | None = None
    pair_qr: str | None = None
    acquirer: str = "memory"
    control: str | None = "unix"
    config: TerminalConfig | None = None
    rules: tuple[ReaderRule, ...] = ()
    default_card: str = "approve"
    faults: FaultPlan = field(default_factory=FaultPlan)
    dead_after: float = 6.0
    acquirer_timeout: float | None = None
    update_root: Path | None = None


def _no_emit(event: str, **fields: Any) -> None:
    logger.debug("%s %s", event, fields)


class TerminalSim:
    """One run of the simulator.

    Args:
        options: how to run.
        emit: reports what happens (``emit("logged_in", peer=...)``).
        reader: the card reader to use instead of the rules-driven one (a person at the
            interactive console); the control channel's ``reader`` command is then refused.
        watch: sees every request that arrives and every message the terminal sends.
    """

    def __init__(
        self,
        options: SimOptions,
        emit: Emit = _no_emit,
        *,
        reader: CardReader | None = None,
        watch: Callable[[MessageBase], None] | None = None,
    ) -> None:
        self.options = options
        self.emit = emit
        self.state = TerminalState(options.state_dir, options.config)
        timeout = options.acquirer_timeout
        if timeout is not None and timeout != self.state.config.acquirer_timeout:
            self.state.save_config(
                self.state.config.model_copy(update={"acquirer_timeout": timeout})
            )
        self.config = self.state.config
        if options.update_root is not None:
            pin_trusted_root(options.state_dir, options.update_root.read_bytes())
        self.faults = Faults(options.faults)
        self.reader = RulesReader(options.rules, ReaderRule(card=options.default_card))
        self.rules_driven = reader is None
        self.watch = watch
        self.acquirer = self._make_acquirer()
        self.app = TerminalApp(self.state, self.acquirer, reader or self.reader, faults=self.faults)
        self.keystore = TerminalKeyStore(options.state_dir / "tls")
        self.stop_event = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.endpoint: LinkEndpoint | None = None
        self.address: LinkAddress | None = None
        self.pair_code = options.pair_code
        self.ca_fingerprint: str | None = None
        if options.pair_qr is not None:
            payload = parse_payload(options.pair_qr)
            self.pair_code, self.ca_fingerprint = payload.code, payload.fingerprint
            host = f"[{payload.address}]" if ":" in payload.address else payload.address
            self.qr_address: str | None = f"tls://{host}:{payload.port}"
        else:
            self.qr_address = None

    def _make_acquirer(self) -> AcquirerPort:
        where = self.options.acquirer
        if where == "memory":
            return MemoryAcquirer()
        address = LinkAddress.parse(where)
        if address.scheme is not Scheme.TCP:
            raise ValueError("--acquirer is memory or tcp://host:port")
        from shouyin.terminal.host_client import ClientAcquirer, make_client

        client = make_client(
            address.host, address.port, self.state, SystemClock(), self.config.acquirer_timeout
        )
        return ClientAcquirer(client, self.state)

    def stop(self) -> None:
        """Ask the simulator to stop (control channel, signals)."""
        self.stop_event.set()

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop`.

        Raises:
            LinkError: pairing failed, or the link could not be set up.
            OSError: a port or device could not be opened.
        """
        closed = self.app.recover()
        if closed:
            self.emit("recovered", closed=closed)
        self._spawn(self._reversals())
        control = await self._start_control()
        try:
            await self._start_link()
            self.emit("started", terminal_id=self.config.terminal_id, batch=self.state.batch)
            await self.stop_event.wait()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.endpoint is not None:
                await self.endpoint.close()
            if control is not None:
                await control.close()
            close = getattr(self.acquirer, "close", None)
            if close is not None:
                await close()
            self.state.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _start_control(self) -> ControlServer | None:
        where = self.options.control
        if where is None:
            return None
        if where == "unix":
            where = f"unix:{self.options.state_dir / 'control.sock'}"
        rules = self.reader if self.rules_driven else None
        handler = ControlHandler(self.app, rules, self.stop, self._link_state)
        server = ControlServer(handler, where)
        self.emit("control", address=await server.start())
        return server

    def _link_state(self) -> dict[str, Any]:
        endpoint = self.endpoint
        if endpoint is None:
            return {"state": "none"}
        stats = endpoint.connection.framing_stats
        return {
            "state": endpoint.state.value,
            "sessions": endpoint.sessions,
            "address": str(self.address) if self.address else None,
            "framing": stats.as_dict(),
        }

    def _connection(self, address: LinkAddress) -> Connection:
        firmware = self.app.status.firmware.running
        link = LinkConfig(
            heartbeat_interval=self.options.dead_after / 3, dead_after=self.options.dead_after
        )
        connection = Connection(
            Role.POI,
            self.config.terminal_id,
            terminal_capabilities(firmware),
            config=link,
            framer_factory=address.framer_factory(),
            long_term_key=self.state.link_key(),
        )

        def counters() -> LinkCounters:
            stats = connection.framing_stats
            return LinkCounters(
                crc_errors=stats.crc_errors,
                retransmissions=stats.retransmissions,
                resyncs=stats.resyncs,
                naks=stats.naks_received + stats.naks_sent,
                security_refusals=connection.refusals,
            )

        self.app.status.link_counters = counters
        connection.health = self.app.status.health()
        return connection

    def _wrap(self, transport: Transport, address: LinkAddress) -> FaultyTransport:
        return FaultyTransport(transport, self.faults, hang_up_on_cut=not address.is_serial)

    async def _start_link(self) -> None:
        options = self.options
        if options.serial is not None:
            await self._start_serial(options.serial)
        elif options.listen is not None:
            await self._start_listening(LinkAddress.parse(options.listen))
        else:
            target = options.connect or self.qr_address
            if target is None:
                raise ValueError("say where the cashier system is: --serial, --listen or --connect")
            await self._start_dialling(LinkAddress.parse(target))

    def _make_endpoint(self, address: LinkAddress, connector: Any = None) -> LinkEndpoint:
        self.address = address
        endpoint = LinkEndpoint(
            self._connection(address), connector=connector, name=f"terminal {address}"
        )
        self.endpoint = endpoint
        watch = self.watch
        if watch is None:
            self.app.set_outbox(endpoint.send)
        else:

            def outbox(message: MessageBase) -> None:
                watch(message)
                endpoint.send(message)

            self.app.set_outbox(outbox)
        self._spawn(self._follow(endpoint))
        self._spawn(self._refresh_health(endpoint))
        return endpoint

    async def _start_serial(self, where: str) -> None:
        if where == "pty":
            cable = PtyCable(self.options.baud)
            cable.start()
            self._spawn(self._hold(cable))
            device, ecr_side = cable.paths
            self.emit("serial", ecr_path=ecr_side, baud=self.options.baud)
        else:
            device = where.removeprefix("serial://").split("?", 1)[0]
        address = LinkAddress(Scheme.SERIAL, device=device, baud=self.options.baud)
        endpoint = self._make_endpoint(address)
        endpoint.attach(self._wrap(await open_serial(address), address))
        if self.pair_code is not None:
            self._spawn(self._pair_serial(endpoint, address))

    async def _pair_serial(self, endpoint: LinkEndpoint, address: LinkAddress) -> None:
        """Pair over the serial line, trying again while the other end is not there yet (a
        serial line has no "connected" moment: the cashier system may open it later)."""
        code, self.pair_code = self.pair_code, None
        assert code is not None
        for attempt in range(1, _PAIR_ATTEMPTS + 1):
            try:
                self._paired(await endpoint.pair(code, timeout=15))
                return
            except LinkError as error:
                self.emit("pairing_retry", attempt=attempt, reason=str(error)[:200])
                await asyncio.sleep(1.0)
                if endpoint.transport_info is None:  # the framer gave up: reopen the port
                    endpoint.attach(self._wrap(await open_serial(address), address))
        self.emit("error", message="pairing failed")
        self.stop()

    async def _hold(self, cable: PtyCable) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await cable.close()

    async def _start_listening(self, address: LinkAddress) -> None:
        endpoint = self._make_endpoint(address)
        pending = [self.pair_code] if self.pair_code else []

        async def accepted(transport: Transport, _: LinkAddress) -> None:
            self.emit("connected", peer=transport.info.peer)
            endpoint.attach(self._wrap(transport, address))
            if pending:
                pending.pop()
                await self._pair_on(endpoint)
            await endpoint.wait_down()

        listener = await listen([address], accepted)
        bound = listener.addresses[0]
        self.emit("listening", address=str(bound), port=bound.port)
        self._spawn(self._close_on_stop(listener))

    async def _close_on_stop(self, listener: Any) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await listener.close()

    async def _start_dialling(self, address: LinkAddress) -> None:
        if self.pair_code is not None and address.scheme is Scheme.TLS:
            await self._pair_tls(address)
        name = self.options.server_name or address.host

        async def connector() -> Transport:
            if address.scheme is Scheme.TLS:
                context = self.keystore.ssl_client_context(name)
                transport = await connect_tls(address, context, server_hostname=name)
            else:
                transport = await connect_tcp(address)
            return self._wrap(transport, address)

        endpoint = self._make_endpoint(address, connector)
        if self.pair_code is not None:  # plain TCP: pair on the session's own link
            endpoint.attach(await connector())
            await self._pair_on(endpoint)
        await endpoint.start()

    async def _pair_on(self, endpoint: LinkEndpoint) -> None:
        code, self.pair_code = self.pair_code, None
        assert code is not None
        paired = await endpoint.pair(code, timeout=15)
        self._paired(paired)

    async def _pair_tls(self, address: LinkAddress) -> None:
        code, self.pair_code = self.pair_code, None
        assert code is not None
        transport = await connect_tls(address, pairing_ssl_context())
        paired = await pair_terminal(
            transport,
            terminal_id=self.config.terminal_id,
            capabilities=terminal_capabilities(self.app.status.firmware.running),
            code=code,
            csr=self.keystore.make_csr(self.config.terminal_id),
            timeout=15,
        )
        if paired.certificate is None or paired.ca_certificate is None:
            raise LinkError("pairing brought back no certificate")
        self.keystore.install(
            paired.certificate,
            paired.ca_certificate,
            SystemClock().now(),
            expected_ca_fingerprint=self.ca_fingerprint,
        )
        self._paired(paired)

    def _paired(self, paired: Paired) -> None:
        self.state.save_link_key(paired.key)
        if self.endpoint is not None:
            self.endpoint.connection.long_term_key = paired.key
        self.emit("paired", peer=paired.peer_id, key_id=paired.key.key_id)

    # -- serving -------------------------------------------------------------------------------

    async def _follow(self, endpoint: LinkEndpoint) -> None:
        async for event in endpoint.events():
            if isinstance(event, MessageReceived) and isinstance(event.message, Request):
                self.emit("request", type=event.message.type, service_id=event.message.service_id)
                if self.watch is not None:
                    self.watch(event.message)
                self._spawn(self._serve(event.message))
            elif isinstance(event, SessionReset):
                self.app.abort_current("the cashier system logged in again")
            elif isinstance(event, LoggedIn):
                self.emit("logged_in", peer=event.peer.peer_id, key_id=event.peer.key_id)
            elif isinstance(event, LoggedOut):
                self.emit("logged_out")
            elif isinstance(event, LinkDead):
                self.app.status.reconnects += 1
                self.emit("link_dead", reason=event.reason)

    async def _serve(self, request: Request) -> None:
        try:
            response = await self.app.handle(request)
        except PowerLoss as loss:
            _power_off(loss.step)
        except Exception:  # a bug: keep the terminal running, the journal has the outcome
            logger.exception("%s %s failed", request.type, request.service_id)
            return
        self.emit(
            "response",
            type=response.type,
            service_id=response.service_id,
            result=response.result.value,
            error_condition=response.error_condition.value if response.error_condition else None,
        )

    async def _reversals(self) -> None:
        try:
            await self.app.reversals.run()
        except PowerLoss as loss:
            _power_off(loss.step)

    async def _refresh_health(self, endpoint: LinkEndpoint) -> None:
        while True:
            endpoint.connection.health = self.app.status.health()
            await asyncio.sleep(1.0)


def _power_off(step: str) -> NoReturn:
    """The power is gone: no flushing, no closing, no goodbye on the link."""
    with contextlib.suppress(OSError):
        os.write(2, f"shouyin terminal sim: power lost at {step}\n".encode())
    os._exit(POWER_LOSS_EXIT)
