"""The asyncio driver of the terminal link: a :class:`Connection` over a real transport.

:class:`LinkEndpoint` runs one sans-I/O :class:`~shouyin.link.session.Connection` over successive
transports (:mod:`shouyin.link.transport`), the way aioquic's asyncio adapter runs its
connection: one reader task feeds received bytes with ``receive_data(data, now)``; one
``loop.call_at`` timer fires ``handle_timer(now)`` at ``next_timer()``; after every call the bytes
of ``data_to_send()`` are written and the events drained. ``now`` is the loop's monotonic clock.

Application surface:

* :meth:`LinkEndpoint.request` sends a request and awaits its response (correlated by
  ``service_id``); it raises :class:`~shouyin.link.errors.LinkTimeout` when the connection's own
  deadline passes and :class:`LinkLost` when the link goes down first (for a payment: outcome
  unknown, query it by ``ecr_ref``). Progress messages go to an optional callback.
* :meth:`LinkEndpoint.send` sends responses, progress and notifications (the terminal side).
* :meth:`LinkEndpoint.events` / :meth:`LinkEndpoint.next_event` yield every other event
  (requests arriving at a terminal, notifications, late responses, link state changes).
* Pairing: :meth:`LinkEndpoint.allow_pairing` (cashier side) and
  :meth:`LinkEndpoint.start_pairing` / :meth:`LinkEndpoint.pair` (terminal side;
  :func:`~shouyin.link.server.pair_terminal` for a one-off pairing connection).

With a ``connector`` the endpoint dials by itself and, after every ``LinkDead`` or failed login,
closes the transport, waits per :class:`~shouyin.link.backoff.Backoff` and dials again; the
cashier side then logs in again by itself. Without one, whoever accepts connections hands them over
with :meth:`LinkEndpoint.attach`: that is what the cashier system's
:class:`~shouyin.link.server.LinkServer` does.

:class:`~shouyin.link.server.LinkServer` and :func:`~shouyin.link.server.pair_terminal` live in
:mod:`shouyin.link.server`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from shouyin.link.backoff import Backoff
from shouyin.link.errors import LinkError, LinkTimeout, LocalProtocolError
from shouyin.link.events import (
    ConnectionClosed,
    Event,
    HealthReported,
    LinkDead,
    LoggedIn,
    LoggedOut,
    LoginFailed,
    MessageReceived,
    Paired,
    PairingAborted,
    PeerInfo,
    ResponseTimedOut,
)
from shouyin.link.messages import (
    HeartbeatRequest,
    HeartbeatResponse,
    LogoutRequest,
    LogoutResponse,
    MessageBase,
    PaymentProgress,
    Request,
    Response,
    failure_response,
)
from shouyin.link.pairing import CertificateIssuer, PairingCode
from shouyin.link.session import Connection
from shouyin.link.states import ConnectionState, Role
from shouyin.link.transport import Transport, TransportInfo
from shouyin.link.values import ErrorCondition, Result

__all__ = [
    "Connector",
    "EventListener",
    "LinkEndpoint",
    "LinkLost",
    "ProgressCallback",
    "RequestHandler",
]

logger = logging.getLogger(__name__)

Connector = Callable[[], Awaitable[Transport]]
"""Opens a fresh transport (e.g. ``lambda: connect_tls(address, context)``)."""
ProgressCallback = Callable[[PaymentProgress], None]
"""Called with each progress message of a financial request."""
EventListener = Callable[["LinkEndpoint", Event], None]
"""Called synchronously with every event, before it is queued (servers hook the firewall here)."""
RequestHandler = Callable[[Request], Iterable[MessageBase]]
"""(Terminal side) Answers a request at once: the progress, response and notifications to send."""

_SYSTEM_RANDOM = secrets.SystemRandom()
T = TypeVar("T")


class LinkLost(LinkError):
    """The link went down, or the endpoint was closed, while a request was pending.

    For a financial request the outcome is unknown: query it by ``ecr_ref`` once reconnected.

    Attributes:
        request: the request left without an answer.
        reason: why the link went down.
    """

    def __init__(self, request: Request, reason: str) -> None:
        super().__init__(f"{request.type} {request.service_id}: link lost ({reason})")
        self.request = request
        self.reason = reason


@dataclass(slots=True)
class _Waiter:
    request: Request
    future: asyncio.Future[Response]
    on_progress: ProgressCallback | None


class LinkEndpoint:
    """One end of a terminal link over asyncio (see the module docstring).

    Args:
        connection: the sans-I/O connection to drive (fresh, ``DISCONNECTED``).
        connector: dials a new transport; with it, :meth:`start` keeps the link up by itself.
        backoff: reconnection delays.
        random: jitter source for the back-off (the OS CSPRNG by default).
        auto_login: log in whenever a transport comes up and a long-term key is known (default:
            yes on the cashier side, which is the side that logs in).
        connect_timeout: seconds allowed to each dial.
        max_queued_events: the event queue's bound; the oldest event is dropped (and logged)
            when nobody reads them.
        on_request: (terminal side) answer each incoming request synchronously, as soon as it
            is read, instead of queueing it as an event; an exception is logged and answered
            with ``unavailable_service``.
        name: for log lines (default: role and identity).

    Attributes:
        connection: the driven connection (its ``long_term_key`` may be set before a login).
        sessions: how many logins completed so far (one per transport at most).
        last_down_reason: why the last transport went away.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        connector: Connector | None = None,
        backoff: Backoff | None = None,
        random: Callable[[], float] = _SYSTEM_RANDOM.random,
        auto_login: bool | None = None,
        connect_timeout: float = 5.0,
        max_queued_events: int = 1024,
        on_request: RequestHandler | None = None,
        name: str | None = None,
    ) -> None:
        self.connection = connection
        self._on_request = on_request
        self.name = name or f"{connection.role.name} {connection.identity}"
        self._connector = connector
        self._backoff = backoff or Backoff()
        self._random = random
        self._auto_login = connection.role is Role.ECR if auto_login is None else auto_login
        self._connect_timeout = connect_timeout
        self._max_events = max_queued_events
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: Transport | None = None
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._events: deque[Event] = deque()
        self._event_ready: asyncio.Event | None = None
        self._waiters: dict[str, _Waiter] = {}
        self._heartbeats: deque[str] = deque()  # explicit heartbeat requests, oldest first
        self._logins: list[asyncio.Future[PeerInfo]] = []
        self._pairings: list[asyncio.Future[Paired]] = []
        self._listeners: list[EventListener] = []
        self._ready: asyncio.Event | None = None
        self._down: asyncio.Event | None = None
        self.sessions = 0  # logins completed so far
        self._pumping = False
        self._closed = False
        self.last_down_reason: str | None = None

    # -- introspection -----------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The connection's state."""
        return self.connection.state

    @property
    def peer(self) -> PeerInfo | None:
        """Who we are logged in with, if we are."""
        return self.connection.peer

    @property
    def transport_info(self) -> TransportInfo | None:
        """The current transport's peer details, if connected."""
        return self._transport.info if self._transport is not None else None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def is_ready(self) -> bool:
        """Logged in (``READY`` or ``BUSY``)."""
        return self.connection.state in (ConnectionState.READY, ConnectionState.BUSY)

    def new_service_id(self) -> str:
        """A fresh ``service_id`` for a request or pairing exchange."""
        return self.connection.new_service_id()

    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener(endpoint, event)`` for every event, before it is queued."""
        self._listeners.append(listener)

    def __repr__(self) -> str:
        return f"LinkEndpoint({self.name!r}, {self.connection.state.name})"

    # -- life cycle --------------------------------------------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._ready = asyncio.Event()
            self._event_ready = asyncio.Event()
        elif self._loop is not loop:
            raise LocalProtocolError("a LinkEndpoint belongs to one event loop")
        return loop

    def _now(self) -> float:
        return self._bind_loop().time()

    async def start(self) -> None:
        """Dial with the connector and keep the link up until :meth:`close`.

        Raises:
            LocalProtocolError: no connector, or already started.
        """
        loop = self._bind_loop()
        if self._connector is None:
            raise LocalProtocolError("start() needs a connector; use attach() otherwise")
        if self._supervisor is not None:
            raise LocalProtocolError("already started")
        self._supervisor = loop.create_task(self._supervise(), name=f"link {self.name}")

    def attach(self, transport: Transport) -> None:
        """Run the connection over ``transport`` now (replacing the current one, if any).

        The cashier side then logs in at once when it knows the terminal's key.

        Raises:
            LocalProtocolError: the endpoint is closed.
        """
        loop = self._bind_loop()
        if self._closed:
            transport.close()
            raise LocalProtocolError("the endpoint is closed")
        if self._transport is not None:
            self._lose(self._transport, "replaced by a new connection")
        self._down = asyncio.Event()  # after _lose(), which sets the previous one
        self._transport = transport
        self.connection.connection_made(self._now())
        logger.info("%s: connected to %s", self.name, transport.info.peer)
        self._reader = loop.create_task(self._read(transport), name=f"read {self.name}")
        self._maybe_login()
        self._pump()

    def drop(self, reason: str) -> None:
        """Drop the current transport (the connection reports ``LinkDead``); with a connector,
        the endpoint dials again after the back-off."""
        if self._transport is not None:
            self._lose(self._transport, reason)

    async def wait_down(self) -> None:
        """Wait until the current transport is gone (returns at once if there is none)."""
        down = self._down
        if self._transport is not None and down is not None:
            await down.wait()

    async def close(self) -> None:
        """Close for good: pending requests fail with :class:`LinkLost`, the transport closes."""
        if self._closed:
            return
        self._bind_loop()
        self._closed = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and supervisor is not asyncio.current_task():
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        self.connection.close(self._now())
        self._pump()
        transport = self._release_transport()
        if transport is not None:
            await transport.wait_closed()
        self._cancel_timer()
        self._fail_all(LinkError(f"{self.name}: closed"))

    async def __aenter__(self) -> LinkEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- application API ---------------------------------------------------------------------

    async def wait_ready(self, timeout: float | None = None) -> PeerInfo:
        """Wait until logged in; return who with.

        Raises:
            TimeoutError: not logged in within ``timeout`` seconds.
        """
        self._bind_loop()
        ready = self._ready
        assert ready is not None  # set by _bind_loop
        while True:
            peer = self.connection.peer
            if self.is_ready and peer is not None:
                return peer
            ready.clear()
            await asyncio.wait_for(ready.wait(), timeout)

    async def request(
        self,
        request: Request,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send ``request`` and await its response (failures are responses too: check
        ``result``).

        Args:
            request: a request with a fresh ``service_id`` (:meth:`new_service_id`).
            on_progress: called with each :class:`PaymentProgress` of a financial request.
            timeout: an extra bound in seconds; the connection's own deadlines (request,
                payment inactivity, payment hard limit) apply anyway.

        Returns:
            The response.

        Raises:
            Busy: a financial request while another one is in flight.
            LocalProtocolError: not logged in, or the message is not allowed now.
            LinkTimeout: the connection's deadline passed (for a payment: outcome unknown).
            LinkLost: the link went down first (for a payment: outcome unknown).
            TimeoutError: ``timeout`` passed (the request stays pending in the connection).
        """
        loop = self._bind_loop()
        sid = request.service_id
        if sid in self._waiters:
            raise LocalProtocolError(f"service_id {sid!r} is already awaited")
        future: asyncio.Future[Response] = loop.create_future()
        self._waiters[sid] = _Waiter(request, future, on_progress)
        try:
            self.connection.send(request, self._now())
        except BaseException:
            del self._waiters[sid]
            raise
        if isinstance(request, HeartbeatRequest):
            self._heartbeats.append(sid)
        try:
            self._pump()
            return await _wait(future, timeout)
        finally:
            self._waiters.pop(sid, None)
            if sid in self._heartbeats:
                self._heartbeats.remove(sid)

    def send(self, message: MessageBase) -> None:
        """Send a response, progress message or notification (terminal side).

        Raises:
            LocalProtocolError: not allowed from this role or in this state.
        """
        self._bind_loop()
        self.connection.send(message, self._now())
        self._pump()

    async def login(self, timeout: float | None = None) -> PeerInfo:
        """(Cashier side) Log in now (again) and wait for the answer.

        Raises:
            LocalProtocolError: not connected, not paired, or requests pending.
            LinkError: the login failed (``IncompatiblePeer``, ``SecurityError``, ``LinkTimeout``).
        """
        loop = self._bind_loop()
        future: asyncio.Future[PeerInfo] = loop.create_future()
        self._logins.append(future)
        try:
            self.connection.login(self._now())
            self._pump()
            return await _wait(future, timeout)
        finally:
            if future in self._logins:
                self._logins.remove(future)

    async def logout(self, timeout: float | None = None) -> None:
        """(Cashier side) 签退: log out and wait until the session keys are gone."""
        request = LogoutRequest(service_id=self.new_service_id())
        await self.request(request, timeout=timeout)

    def allow_pairing(
        self, code: PairingCode | None, issuer: CertificateIssuer | None = None
    ) -> None:
        """(Cashier side) Let a terminal pair with ``code`` (``None`` closes pairing); share one
        :class:`PairingCode` across connections so that its 3 tries are counted together."""
        self.connection.allow_pairing(code, issuer)

    def start_pairing(self, code: str, *, csr: str | None = None) -> None:
        """(Terminal side) Send the pairing request now; the outcome arrives as a
        :class:`Paired` or :class:`PairingAborted` event (:meth:`pair` awaits it instead).

        Raises:
            LocalProtocolError: not the terminal side, or not connected and idle.
        """
        self._bind_loop()
        self.connection.start_pairing(code, self._now(), csr=csr)
        self._pump()

    async def pair(
        self, code: str, *, csr: str | None = None, timeout: float | None = None
    ) -> Paired:
        """(Terminal side) Pair with the 8 digits the admin typed; needs a fresh connection.

        Args:
            code: the pairing code.
            csr: a PEM certificate signing request, to get a TLS client certificate back.
            timeout: an extra bound in seconds (the connection's pairing timeout applies anyway).

        Returns:
            The :class:`Paired` event (key, certificate, CA certificate).

        Raises:
            PairingFailed: wrong code, refused, burnt or expired code.
            LinkError: the link went down, or the pairing timed out.
        """
        future = self._expect_pairing()
        try:
            self.connection.start_pairing(code, self._now(), csr=csr)
            self._pump()
            return await _wait(future, timeout)
        finally:
            if future in self._pairings:
                self._pairings.remove(future)

    def _expect_pairing(self) -> asyncio.Future[Paired]:
        future: asyncio.Future[Paired] = self._bind_loop().create_future()
        self._pairings.append(future)
        return future

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next queued event.

        Raises:
            TimeoutError: none within ``timeout`` seconds.
        """
        self._bind_loop()
        ready = self._event_ready
        assert ready is not None  # set by _bind_loop
        while not self._events:
            ready.clear()
            await asyncio.wait_for(ready.wait(), timeout)
        return self._events.popleft()

    async def events(self) -> AsyncIterator[Event]:
        """Every queued event, as they come (forever; break out or cancel)."""
        while True:
            yield await self.next_event()

    def pending_events(self) -> list[Event]:
        """Pop the events queued so far, without waiting."""
        drained = list(self._events)
        self._events.clear()
        return drained

    # -- driving the connection --------------------------------------------------------------

    def _pump(self) -> None:
        """Write what the connection wants written, dispatch its events, re-arm the timer."""
        if self._pumping:  # a listener called back into us: the outer loop finishes the job
            return
        self._pumping = True
        try:
            while True:
                data = self.connection.data_to_send()
                if data and self._transport is not None:
                    self._transport.write(data)
                events = self.connection.events()
                if not events and not data:
                    break
                for event in events:
                    self._dispatch(event)
        finally:
            self._pumping = False
        self._arm_timer()

    def _arm_timer(self) -> None:
        """Make sure ``handle_timer`` runs no later than ``next_timer()``.

        A timer already set for an *earlier* time is kept: firing early is harmless (the
        connection checks every deadline against ``now``) and re-arms, whereas moving the timer
        after every frame (each one pushes the heartbeat deadline back) would cost a timer
        handle per message on the fast path.
        """
        when = self.connection.next_timer()
        current = self._timer_at
        if self._timer is not None and current is not None and (when is None or current <= when):
            return
        self._cancel_timer()
        if when is not None and self._loop is not None:
            self._timer_at = when
            self._timer = self._loop.call_at(when, self._on_timer, when)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _on_timer(self, when: float) -> None:
        self._timer = None
        self._timer_at = None
        # call_at may fire up to one clock tick early: never tell the connection "before when"
        self.connection.handle_timer(max(self._now(), when))
        self._pump()

    async def _read(self, transport: Transport) -> None:
        reason = "closed by the peer"
        try:
            while True:
                data = await transport.read()
                if not data:
                    break
                if transport is not self._transport:
                    return
                self.connection.receive_data(data, self._now())
                self._pump()
        except asyncio.CancelledError:
            raise
        except OSError as error:
            reason = f"transport failed: {error.__class__.__name__}: {error}"
        except Exception:  # a bug must not leave the link half alive: drop it, loudly
            logger.exception("%s: failure while reading", self.name)
            reason = "internal error"
        if transport is self._transport:
            self._lose(transport, reason)

    def _lose(self, transport: Transport, reason: str) -> None:
        """The transport is gone or must go: tell the connection, close it."""
        if transport is not self._transport:
            return
        self.connection.connection_lost(self._now(), reason)
        self._pump()
        self._release_transport()
        self.last_down_reason = reason

    def _release_transport(self) -> Transport | None:
        transport, self._transport = self._transport, None
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if transport is not None:
            transport.close()
        if self._down is not None:
            self._down.set()
        return transport

    def _maybe_login(self) -> None:
        conn = self.connection
        if (
            self._auto_login
            and conn.role is Role.ECR
            and conn.long_term_key is not None
            and conn.state is ConnectionState.CONNECTED
            and self._transport is not None
        ):
            conn.login(self._now())

    # -- events ------------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(self, event)
            except Exception:
                logger.exception("%s: event listener failed", self.name)
        if self._settle(event) or self._answer(event):
            return
        if len(self._events) >= self._max_events:
            dropped = self._events.popleft()
            logger.warning("%s: event queue full, dropped %s", self.name, type(dropped).__name__)
        self._events.append(event)
        if self._event_ready is not None:
            self._event_ready.set()

    def _settle(self, event: Event) -> bool:
        """Resolve whatever awaits ``event``; True when it was consumed (a response)."""
        if isinstance(event, MessageReceived):
            return self._on_message(event)
        if isinstance(event, ResponseTimedOut):
            waiter = self._waiters.get(event.request.service_id)
            if waiter is not None:
                reason = f"{event.request.type} {event.request.service_id}: {event.reason.value}"
                _fail(waiter.future, LinkTimeout(reason))
        elif isinstance(event, HealthReported):
            self._on_health(event)
        elif isinstance(event, LinkDead | ConnectionClosed):
            reason = event.reason if isinstance(event, LinkDead) else "closed"
            self._on_link_down(event.pending, reason)
        else:
            self._on_session_event(event)
        return False

    def _on_health(self, event: HealthReported) -> None:
        # The connection reports heartbeat answers only as health: settle the oldest explicit
        # heartbeat request (automatic heartbeats are the connection's own business).
        if not self._heartbeats:
            return
        sid = self._heartbeats.popleft()
        waiter = self._waiters.get(sid)
        if waiter is not None and not waiter.future.done():
            answer = HeartbeatResponse(service_id=sid, result=Result.SUCCESS, health=event.health)
            waiter.future.set_result(answer)

    def _on_session_event(self, event: Event) -> None:
        """Login, logout and pairing outcomes."""
        if isinstance(event, LoggedIn | LoginFailed):
            self._on_login_outcome(event)
        elif isinstance(event, LoggedOut):
            for sid, waiter in list(self._waiters.items()):
                if isinstance(waiter.request, LogoutRequest) and not waiter.future.done():
                    waiter.future.set_result(LogoutResponse(service_id=sid, result=Result.SUCCESS))
        elif isinstance(event, Paired):
            for pairing in self._pairings:
                if not pairing.done():
                    pairing.set_result(event)
            self._maybe_login()
        elif isinstance(event, PairingAborted):
            for pairing in self._pairings:
                _fail(pairing, event.error)

    def _on_login_outcome(self, event: LoggedIn | LoginFailed) -> None:
        if isinstance(event, LoggedIn):
            self.sessions += 1
            for login in self._logins:
                if not login.done():
                    login.set_result(event.peer)
            if self._ready is not None:
                self._ready.set()
            return
        for login in self._logins:
            _fail(login, event.error)
        if self.connection.role is Role.ECR and self._transport is not None:
            # Retry on a fresh transport after the back-off (or let the terminal redial).
            self._loop_call_soon(self.drop, f"login failed: {event.error}")

    def _answer(self, event: Event) -> bool:
        """Run the request handler on an incoming request; True when it did."""
        handler = self._on_request
        if handler is None or not isinstance(event, MessageReceived):
            return False
        request = event.message
        if not isinstance(request, Request) or event.in_reply_to is not None:
            return False
        try:
            answers = list(handler(request))
        except Exception:
            logger.exception("%s: request handler failed on %s", self.name, request.type)
            answers = [failure_response(request, ErrorCondition.UNAVAILABLE_SERVICE)]
        now = self._now()
        for message in answers:
            try:
                self.connection.send(message, now)
            except LinkError as error:
                logger.warning("%s: cannot send %s: %s", self.name, message.type, error)
                break
        return True

    def _on_message(self, event: MessageReceived) -> bool:
        message, request = event.message, event.in_reply_to
        if request is None:
            return False
        waiter = self._waiters.get(request.service_id)
        if waiter is None:
            return False
        if isinstance(message, PaymentProgress):
            if waiter.on_progress is not None:
                try:
                    waiter.on_progress(message)
                except Exception:
                    logger.exception("%s: progress callback failed", self.name)
            return False
        if isinstance(message, Response) and not waiter.future.done():
            waiter.future.set_result(message)
            return True
        return False

    def _on_link_down(self, pending: tuple[Request, ...], reason: str) -> None:
        for request in pending:
            waiter = self._waiters.get(request.service_id)
            if waiter is not None:
                _fail(waiter.future, LinkLost(request, reason))
        # Requests the connection no longer tracks (e.g. explicit heartbeats) fail too.
        for waiter in self._waiters.values():
            _fail(waiter.future, LinkLost(waiter.request, reason))
        for login in self._logins:
            _fail(login, LinkError(f"link down: {reason}"))
        for pairing in self._pairings:
            _fail(pairing, LinkError(f"link down: {reason}"))
        if self._ready is not None:
            self._ready.clear()
        transport = self._transport
        if transport is not None:
            # The connection dropped the link itself (silence, retransmissions, framing lost).
            self._loop_call_soon(self._lose, transport, reason)

    def _loop_call_soon(self, callback: Callable[..., object], *args: object) -> None:
        if self._loop is not None:
            self._loop.call_soon(callback, *args)

    def _fail_all(self, error: LinkError) -> None:
        for waiter in self._waiters.values():
            _fail(waiter.future, LinkLost(waiter.request, str(error)))
        for login in self._logins:
            _fail(login, error)
        for pairing in self._pairings:
            _fail(pairing, error)

    # -- reconnection ------------------------------------------------------------------------

    def _is_closed(self) -> bool:
        return self._closed

    async def _supervise(self) -> None:
        connector = self._connector
        assert connector is not None  # checked by start()
        attempt = 0
        if self._transport is not None:  # adopt a transport attached before start()
            await self.wait_down()
            await asyncio.sleep(self._backoff.delay(0, self._random))
        while not self._closed:
            try:
                transport = await asyncio.wait_for(connector(), self._connect_timeout)
            except (OSError, TimeoutError, LinkError) as error:
                delay = self._backoff.delay(attempt, self._random)
                attempt += 1
                logger.info("%s: cannot connect (%s); retrying in %.2f s", self.name, error, delay)
                await asyncio.sleep(delay)
                continue
            if self.closed:
                transport.close()
                return
            sessions = self.sessions
            self.attach(transport)
            await self.wait_down()
            if self._is_closed():  # a call: mypy must not narrow across the await
                return
            if self.sessions > sessions:  # it worked for a while: start the back-off over
                attempt = 0
            delay = self._backoff.delay(attempt, self._random)
            attempt += 1
            logger.info(
                "%s: link down (%s); reconnecting in %.2f s",
                self.name,
                self.last_down_reason,
                delay,
            )
            await asyncio.sleep(delay)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # mark retrieved: nobody may be awaiting it any more


async def _wait(future: asyncio.Future[T], timeout: float | None) -> T:
    """Await ``future``, bounded by ``timeout`` when given (the future is cancelled then; the
    dispatcher never sets a result on a done future)."""
    if timeout is None:
        return await future
    return await asyncio.wait_for(future, timeout)
