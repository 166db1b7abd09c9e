"""The connection: framing + security envelope + messages + state machine, sans-I/O.

One :class:`Connection` class serves both ends (``Role.ECR`` for the cashier system, ``Role.POI``
for the terminal and the simulator). It never touches a socket, a port or a clock; an adapter
drives it like this::

    conn.connection_made(now)
    loop:
        on bytes read:   conn.receive_data(data, now)
        on timer:        conn.handle_timer(now)
        on app request:  conn.send(message, now) / conn.login(now) / ...
        after each:      write(conn.data_to_send()); handle every conn.next_event();
                         schedule a wake-up at conn.next_timer()
        on EOF/error:    conn.connection_lost(now)

:meth:`Connection.data_to_send` is the only source of outgoing bytes (frames, ACK/NAK answers,
retransmissions, heartbeats, "rejected" notices). Bytes become messages in :mod:`shouyin.link.wire`
(framer + envelope + codec); this module decides what each message means in the current state.
Login is in :mod:`shouyin.link.login`, pairing in :mod:`shouyin.link.pairing`, the states and every
rule about who may send what in :mod:`shouyin.link.states`, the cashier's request deadlines in
:mod:`shouyin.link.pending`.

Every refused body (bad framing, security, decoding, or a protocol rule) is logged and reported as
:class:`~shouyin.link.events.FrameRefused`; security and decoding failures are also answered with
the plain ``{"type":"rejected"}`` notice, which is never answered itself (no ping-pong).
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable

from shouyin.link.config import LinkConfig
from shouyin.link.errors import (
    Busy,
    LinkError,
    LinkTimeout,
    LocalProtocolError,
    PairingCodeRejected,
    PairingFailed,
    Refusal,
    RemoteProtocolError,
    SecurityError,
)
from shouyin.link.events import (
    ConnectionClosed,
    Event,
    FrameRefused,
    HealthReported,
    LateResponse,
    LinkDead,
    LoggedIn,
    LoggedOut,
    LoginFailed,
    MessageReceived,
    Paired,
    PairingAborted,
    PeerInfo,
    PeerRejected,
    RequestRefused,
    ResponseTimedOut,
    SessionReset,
)
from shouyin.link.framing import Framer, FramingStats, StreamFramer
from shouyin.link.login import (
    LoginAttempt,
    accept_login_response,
    answer_login,
    make_login_request,
)
from shouyin.link.messages import (
    EventNotification,
    HeartbeatRequest,
    HeartbeatResponse,
    LoginConfirm,
    LoginRequest,
    LoginResponse,
    LogoutRequest,
    LogoutResponse,
    MessageBase,
    PairingChallenge,
    PairingComplete,
    PairingConfirm,
    PairingRequest,
    PaymentProgress,
    Request,
    Response,
    failure_response,
    response_type_for,
)
from shouyin.link.pairing import CertificateIssuer, PairingClient, PairingCode, PairingServer
from shouyin.link.pending import PendingRequests
from shouyin.link.security import LongTermKey
from shouyin.link.states import (
    MESSAGE_RULES,
    PLAIN_RULES,
    TRANSITIONS,
    ConnectionState,
    MessageRule,
    Role,
    Trigger,
)
from shouyin.link.values import Capabilities, ErrorCondition, LinkCounters, Result, TerminalHealth
from shouyin.link.wire import Down, NoticeRejected, Received, Refused, Wire

__all__ = ["Connection"]

logger = logging.getLogger(__name__)

_S = ConnectionState
_SEALED_STATES = frozenset({_S.READY, _S.BUSY, _S.LOGGING_OUT})


class Connection:
    """One end of a terminal link (see the module docstring for the driving loop).

    Args:
        role: ``Role.ECR`` (cashier system) or ``Role.POI`` (terminal).
        identity: this side's id (``ecr_id`` or ``terminal_id``).
        capabilities: what this side offers at Login.
        config: timeouts and compatibility rules.
        framer_factory: makes a fresh framer for each transport connection (``StreamFramer`` for
            TCP/TLS, ``functools.partial(SerialFramer, byte_time=10 / baud)`` for serial).
        long_term_key: the pairing key shared with the peer, if already paired.
        entropy: random bytes for nonces and SPAKE2 (``secrets.token_bytes``; fixed in tests).
    """

    def __init__(
        self,
        role: Role,
        identity: str,
        capabilities: Capabilities,
        *,
        config: LinkConfig | None = None,
        framer_factory: Callable[[], Framer] = StreamFramer,
        long_term_key: LongTermKey | None = None,
        entropy: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.role = role
        self.identity = identity
        self.capabilities = capabilities
        self.config = config or LinkConfig()
        self.long_term_key = long_term_key
        self.peer: PeerInfo | None = None
        self.health: TerminalHealth | None = None  # POI: reported in heartbeat answers
        self.refusals = 0
        self._framer_factory = framer_factory
        self._entropy = entropy
        self._state = _S.DISCONNECTED
        self._wire: Wire | None = None  # one per transport connection
        self._last_stats = FramingStats()
        self._events: deque[Event] = deque()
        self._pending = PendingRequests(self.config)  # ECR: sent, not yet answered
        self._incoming: dict[str, Request] = {}  # POI: received, not yet answered
        self._serving: str | None = None  # POI: the financial request being processed
        self._login: LoginAttempt | None = None
        self._pairing_code: PairingCode | None = None
        self._issuer: CertificateIssuer | None = None
        self._pairing: PairingServer | PairingClient | None = None
        self._pairing_deadline: float | None = None
        self._counter = 0

    # -- introspection -----------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current state."""
        return self._state

    @property
    def framing_stats(self) -> FramingStats:
        """Counters of the current (or last) framer."""
        return self._wire.framer.stats if self._wire else self._last_stats

    @property
    def in_flight(self) -> str | None:
        """``service_id`` of the financial transaction in flight, if any."""
        return self._pending.financial or self._serving

    def new_service_id(self) -> str:
        """A fresh ``service_id`` unique on this connection (``E1``, ``E2``... / ``P1``...)."""
        self._counter += 1
        return f"{'E' if self.role is Role.ECR else 'P'}{self._counter}"

    def __repr__(self) -> str:
        return f"Connection({self.role.name}, {self.identity!r}, {self._state.name})"

    # -- the sans-I/O surface ----------------------------------------------------------------

    def connection_made(self, now: float) -> None:
        """The transport is up: start a fresh framer."""
        self._transition(Trigger.CONNECTION_MADE)
        self._wire = Wire(self._framer_factory(), now)

    def connection_lost(self, now: float, reason: str = "transport closed") -> None:
        """The transport went away; pending requests are reported in :class:`LinkDead`."""
        if self._state not in (_S.DISCONNECTED, _S.CLOSED):
            self._link_dead(reason)

    def close(self, now: float) -> None:
        """Close for good (log out first for a clean 签退); unwritten bytes are discarded."""
        if self._state is _S.CLOSED:
            return
        pending = self._pending_requests()
        self._drop_transport()
        self._transition(Trigger.CLOSE)
        self._events.append(ConnectionClosed(pending))

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the transport."""
        if self._wire is not None:
            self._wire.receive_data(data, now)
            self._on_wire_events(now)

    def data_to_send(self) -> bytes:
        """Pop the bytes to write to the transport now, in order.

        This is the only source of outgoing bytes; call it after every other method (the
        sending methods return nothing, so no byte can be written twice or forgotten).
        """
        return self._wire.data_to_send() if self._wire else b""

    def next_event(self) -> Event | None:
        """Pop the next event, or ``None``."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """Pop every pending event."""
        drained = list(self._events)
        self._events.clear()
        return drained

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or ``None``."""
        wire = self._wire
        times = [
            wire.framer.next_timer() if wire else None,
            self._login.deadline if self._login else None,
            self._pairing_deadline,
            self._pending.next_due(),
        ]
        if wire is not None and self._state in _SEALED_STATES:
            times.append(wire.last_rx + self.config.dead_after)
            if self._heartbeat_wanted():
                times.append(wire.last_tx + self.config.heartbeat_interval)
        return min((t for t in times if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        """Retransmit, time out requests/login/pairing, detect a dead link, send heartbeats."""
        if self._wire is not None:
            self._wire.handle_timer(now)
            self._on_wire_events(now)
        if self._login is not None and now >= self._login.deadline:
            self._fail_login(LinkTimeout("login timed out"))
        if self._pairing_deadline is not None and now >= self._pairing_deadline:
            self._end_pairing(PairingAborted(LinkTimeout("pairing timed out")))
        for entry, reason in self._pending.expire(now):
            if reason is None:
                continue  # a heartbeat: silence is judged by dead_after
            logger.warning(
                "%s %s timed out (%s)", entry.request.type, entry.request.service_id, reason
            )
            if entry.financial:
                self._transition(Trigger.FINANCIAL_ENDED)
            self._events.append(ResponseTimedOut(entry.request, reason))
            if isinstance(entry.request, LogoutRequest):
                self._end_logout()
        wire = self._wire
        if wire is None or self._state not in _SEALED_STATES:
            return
        if now >= wire.last_rx + self.config.dead_after:
            self._link_dead(f"nothing received for {self.config.dead_after:g} s")
        elif self._heartbeat_wanted() and now >= wire.last_tx + self.config.heartbeat_interval:
            request = HeartbeatRequest(service_id=self.new_service_id())
            self._send_request(request, MESSAGE_RULES[HeartbeatRequest], now, heartbeat=True)

    # -- application API ---------------------------------------------------------------------

    def send(self, message: MessageBase, now: float) -> None:
        """Send a sealed application message (its bytes then come out of :meth:`data_to_send`).

        The ECR sends requests; the POI sends responses, :class:`PaymentProgress` and
        :class:`EventNotification`. Login and pairing have their own methods.

        Raises:
            Busy: (ECR) a financial request while another one is in flight.
            LocalProtocolError: the message is not allowed from this role or in this state, its
                ``service_id`` is already pending, or it answers no pending request.
        """
        rule = MESSAGE_RULES.get(type(message))
        if rule is None:
            raise LocalProtocolError(f"{message.type} is not sent with send()")
        if rule.sender is not self.role:
            raise LocalProtocolError(f"the {self.role.name} does not send {message.type}")
        if isinstance(message, Request):
            self._send_request(message, rule, now)
        elif isinstance(message, Response):
            self._send_response(message, now)
        else:
            if self._state not in rule.states:
                raise LocalProtocolError(f"cannot send {message.type} while {self._state.value}")
            if isinstance(message, PaymentProgress) and message.service_id != self._serving:
                raise LocalProtocolError(f"no financial request {message.service_id!r} in progress")
            self._send_sealed(message, now)

    def login(self, now: float, *, operator_id: str | None = None) -> None:
        """(ECR) Start 签到 with fresh nonces.

        Raises:
            Busy: a financial transaction is in flight.
            LocalProtocolError: wrong role or state, requests still pending, or not paired.
        """
        if self.role is not Role.ECR:
            raise LocalProtocolError("only the ECR logs in")
        if self._pending.financial is not None:
            raise Busy(self._pending.financial)
        if self._state not in (_S.CONNECTED, _S.LOGGING_IN, _S.READY):
            raise LocalProtocolError(f"cannot log in while {self._state.value}")
        if self._pending_requests():
            raise LocalProtocolError("requests are still pending; wait for them before logging in")
        key = self.long_term_key
        if key is None:
            raise LocalProtocolError("not paired: no long-term key for this terminal")
        self._reset_session()
        nonce = self._entropy(32)
        request = make_login_request(
            key=key,
            identity=self.identity,
            capabilities=self.capabilities,
            config=self.config,
            service_id=self.new_service_id(),
            nonce=nonce,
            operator_id=operator_id,
        )
        self._transition(Trigger.LOGIN_STARTED)
        body = self._connected().send_plain(request, now)
        deadline = now + self.config.login_timeout
        self._login = LoginAttempt(request.service_id, deadline, body, nonce)

    def logout(self, now: float) -> None:
        """(ECR) Send 签退."""
        self.send(LogoutRequest(service_id=self.new_service_id()), now)

    def allow_pairing(
        self, code: PairingCode | None, issuer: CertificateIssuer | None = None
    ) -> None:
        """(ECR) Accept a terminal's pairing with ``code`` (``None`` closes pairing again).

        ``issuer`` is the optional hook that issues the terminal's TLS client certificate.
        """
        self._pairing_code = code
        self._issuer = issuer

    def start_pairing(self, code: str, now: float, *, csr: str | None = None) -> None:
        """(POI) Start pairing with the 8 digits the admin typed (and optionally a PEM CSR)."""
        if self.role is not Role.POI:
            raise LocalProtocolError("the terminal starts pairing")
        client = PairingClient(
            self.identity, code, service_id=self.new_service_id(), csr=csr, entropy=self._entropy
        )
        self._transition(Trigger.PAIRING_STARTED)
        self._pairing = client
        self._pairing_deadline = now + self.config.pairing_timeout
        self._send_plain(client.start(), now)

    # -- state machine plumbing --------------------------------------------------------------

    def _transition(self, trigger: Trigger) -> None:
        try:
            new = TRANSITIONS[self._state][trigger]
        except KeyError:
            message = f"{trigger.value} is not allowed while {self._state.value}"
            raise LocalProtocolError(message) from None
        if new is not self._state:
            logger.debug("%s %s: %s -> %s", self.role.name, trigger.value, self._state, new)
        self._state = new

    def _pending_requests(self) -> tuple[Request, ...]:
        return self._pending.requests() + tuple(self._incoming.values())

    def _connected(self) -> Wire:
        if self._wire is None:
            raise LocalProtocolError("not connected")
        return self._wire

    def _reset_session(self) -> None:
        if self._wire is not None:
            self._wire.channel = None
            self._wire.peer_limit = None
        self._pending.clear()
        self._incoming.clear()
        self._serving = None
        self._login = None
        self.peer = None

    def _drop_transport(self) -> None:
        if self._wire is not None:
            self._last_stats = self._wire.framer.stats
        self._reset_session()
        self._wire = None  # with its unwritten bytes: they mean nothing on the next transport
        self._pairing = None
        self._pairing_deadline = None

    def _link_dead(self, reason: str) -> None:
        pending = self._pending_requests()
        logger.warning("%s link dead: %s (%d pending)", self.role.name, reason, len(pending))
        self._drop_transport()
        self._transition(Trigger.CONNECTION_LOST)
        self._events.append(LinkDead(reason, pending))

    def _on_wire_events(self, now: float) -> None:
        # One at a time: a body may change how the next is read (a login response brings keys);
        # a dead link drops the wire, and with it whatever followed on the dead transport.
        while self._wire is not None and (event := self._wire.next_event(now)) is not None:
            if isinstance(event, Received):
                self._on_received(event, now)
            elif isinstance(event, Refused):
                self.refusals += 1
                self._events.append(FrameRefused(event.error))
            elif isinstance(event, NoticeRejected):
                self._events.append(PeerRejected())
            elif isinstance(event, Down):
                self._link_dead(event.reason)

    def _heartbeat_wanted(self) -> bool:
        return (
            self.role is Role.ECR
            and self._state in (_S.READY, _S.BUSY)
            and self._pending.heartbeat is None
        )

    # -- writing -----------------------------------------------------------------------------

    def _send_plain(self, message: MessageBase, now: float) -> None:
        self._connected().send_plain(message, now)

    def _send_sealed(self, message: MessageBase, now: float) -> None:
        self._connected().send_sealed(message, now)

    def _send_request(
        self, request: Request, rule: MessageRule, now: float, *, heartbeat: bool = False
    ) -> None:
        in_flight = self._pending.financial
        if in_flight is not None and (rule.financial or self._state not in rule.states):
            raise Busy(in_flight)
        if self._state not in rule.states:
            raise LocalProtocolError(f"cannot send {request.type} while {self._state.value}")
        if request.service_id in self._pending:
            raise LocalProtocolError(f"service_id {request.service_id!r} is already pending")
        self._send_sealed(request, now)
        self._pending.add(request, now, financial=rule.financial, heartbeat=heartbeat)
        if rule.financial:
            self._transition(Trigger.FINANCIAL_STARTED)
        if isinstance(request, LogoutRequest):
            self._transition(Trigger.LOGOUT_STARTED)

    def _send_response(self, response: Response, now: float) -> None:
        request = self._incoming.get(response.service_id)
        if request is None:
            raise LocalProtocolError(
                f"no pending request {response.service_id!r} (answered already, or the session "
                "was reset)"
            )
        if not isinstance(response, response_type_for(request)):
            raise LocalProtocolError(f"{response.type} does not answer {request.type}")
        self._send_sealed(response, now)
        del self._incoming[response.service_id]
        if response.service_id == self._serving:
            self._serving = None
            self._transition(Trigger.FINANCIAL_ENDED)

    # -- reading -----------------------------------------------------------------------------

    def _refuse(self, error: RemoteProtocolError, now: float, *, answer: bool = False) -> None:
        """Refuse a well-formed but unacceptable message (``answer``: send "rejected")."""
        self.refusals += 1
        self._connected().refuse(error, now, answer=answer)
        self._events.append(FrameRefused(error))

    def _on_received(self, received: Received, now: float) -> None:
        message = received.message
        if received.sealed:
            if isinstance(message, LoginConfirm):
                self._on_login_confirm(message, now)
            elif self._state in _SEALED_STATES:
                self._on_session_message(message, now)
            else:
                self._refuse(RemoteProtocolError(f"{message.type} before login completed"), now)
        elif self._state in PLAIN_RULES.get((self.role, type(message)), ()):
            self._on_plain_message(message, received.body, now)
        elif self._connected().channel is not None:
            self._refuse(SecurityError(Refusal.UNSEALED, f"plain {message.type}"), now, answer=True)
        else:
            violation = RemoteProtocolError(f"unexpected {message.type} while {self._state.value}")
            self._refuse(violation, now)

    def _on_plain_message(self, message: MessageBase, body: bytes, now: float) -> None:
        if isinstance(message, LoginRequest):
            self._on_login_request(message, body, now)
        elif isinstance(message, LoginResponse):
            self._on_login_response(message, body, now)
        elif isinstance(message, PairingRequest):
            self._on_pairing_request(message, now)
        elif isinstance(message, PairingChallenge | PairingConfirm | PairingComplete):
            self._on_pairing_message(message, now)

    def _on_session_message(self, message: MessageBase, now: float) -> None:
        rule = MESSAGE_RULES.get(type(message))
        if rule is None or rule.sender is not self.role.peer:
            sender = self.role.peer.name
            self._refuse(RemoteProtocolError(f"{message.type} may not come from the {sender}"), now)
        elif isinstance(message, Request):
            self._on_request(message, rule, now)
        elif isinstance(message, Response):
            self._on_response(message, now)
        elif isinstance(message, PaymentProgress):
            request = self._pending.progress(message.service_id, now)
            if request is None:
                logger.info("progress for %s, no longer pending: ignored", message.service_id)
            else:
                self._events.append(MessageReceived(message, request))
        elif isinstance(message, EventNotification) and self._state in rule.states:
            self._events.append(MessageReceived(message))
        else:
            self._refuse(RemoteProtocolError(f"unexpected {message.type}"), now)

    def _on_request(self, request: Request, rule: MessageRule, now: float) -> None:
        if request.service_id in self._incoming:
            error = RemoteProtocolError(f"service_id {request.service_id!r} is already pending")
            self._refuse(error, now)
            return
        self._incoming[request.service_id] = request
        if self._state not in rule.states:
            busy = self._state is _S.BUSY
            condition = ErrorCondition.BUSY if busy else ErrorCondition.NOT_ALLOWED
            self._send_response(failure_response(request, condition), now)
            self._events.append(RequestRefused(request, condition.value))
        elif isinstance(request, HeartbeatRequest):
            answer = HeartbeatResponse(
                service_id=request.service_id, result=Result.SUCCESS, health=self._health()
            )
            self._send_response(answer, now)
        elif isinstance(request, LogoutRequest):
            self._transition(Trigger.LOGOUT_STARTED)
            self._send_response(
                LogoutResponse(service_id=request.service_id, result=Result.SUCCESS), now
            )
            self._end_logout()
        else:
            if rule.financial:
                self._serving = request.service_id
                self._transition(Trigger.FINANCIAL_STARTED)
            self._events.append(MessageReceived(request))

    def _on_response(self, response: Response, now: float) -> None:
        entry = self._pending.answer(response)
        if entry is None:
            late = self._pending.late(response)
            if late is not None:
                logger.warning("late %s for %s", response.type, response.service_id)
                self._events.append(LateResponse(response, late))
            else:
                error = RemoteProtocolError(f"{response.type} answers no pending request")
                self._refuse(error, now)
        elif isinstance(response, HeartbeatResponse):
            if response.health is not None:
                self._events.append(HealthReported(response.health))
        elif isinstance(response, LogoutResponse):
            self._end_logout()
        else:
            if entry.financial:
                self._transition(Trigger.FINANCIAL_ENDED)
            self._events.append(MessageReceived(response, entry.request))

    def _end_logout(self) -> None:
        self._reset_session()
        self._transition(Trigger.LOGOUT_ENDED)
        self._events.append(LoggedOut())

    def _health(self) -> TerminalHealth:
        stats = self.framing_stats
        counters = LinkCounters(
            crc_errors=stats.crc_errors,
            retransmissions=stats.retransmissions,
            resyncs=stats.resyncs,
            naks=stats.naks_received + stats.naks_sent,
            security_refusals=self.refusals,
        )
        return (self.health or TerminalHealth()).model_copy(update={"link": counters})

    # -- login (the handshake itself is in shouyin.link.login) -------------------------------

    def _on_login_request(self, request: LoginRequest, body: bytes, now: float) -> None:
        key = self.long_term_key
        known = key is not None and key.key_id == request.key_id and key.ecr_id == request.ecr_id
        wire = self._connected()
        if not known and wire.channel is not None:
            # A logged-in session is only replaced by a login that can succeed: a request naming
            # another key is refused without disturbing the session it would otherwise reset.
            error = SecurityError(Refusal.WRONG_KEY, "login for an unknown key")
            self._refuse(error, now, answer=True)
            return
        abandoned = tuple(self._incoming.values())
        self._reset_session()
        if abandoned:
            self._events.append(SessionReset(abandoned))
        self._transition(Trigger.LOGIN_STARTED)
        answer = answer_login(
            request,
            body,
            key=key,
            identity=self.identity,
            capabilities=self.capabilities,
            config=self.config,
            nonce=self._entropy(32),
        )
        wire.send_body(answer.body, now)
        if answer.error is not None:
            self._fail_login(answer.error)
            return
        wire.channel = answer.channel
        self._login = LoginAttempt(request.service_id, now + self.config.login_timeout)
        self._login.peer = answer.peer
        self._send_sealed(LoginConfirm(service_id=request.service_id), now)

    def _on_login_response(self, response: LoginResponse, body: bytes, now: float) -> None:
        login, key, wire = self._login, self.long_term_key, self._connected()
        if login is None or key is None or wire.channel is not None:
            self._refuse(RemoteProtocolError("unexpected login response"), now)
            return
        if response.service_id != login.service_id:
            self._refuse(RemoteProtocolError("login response for another login"), now)
            return
        try:
            wire.channel, login.peer = accept_login_response(
                response, body, login, key=key, config=self.config
            )
        except RemoteProtocolError as error:  # IncompatiblePeer or SecurityError
            self._fail_login(error)

    def _on_login_confirm(self, confirm: LoginConfirm, now: float) -> None:
        login = self._login
        if self._state is not _S.LOGGING_IN or login is None or login.peer is None:
            self._refuse(RemoteProtocolError("unexpected login confirmation"), now)
            return
        if confirm.service_id != login.service_id:
            error = RemoteProtocolError("login confirmation for another login")
            self._refuse(error, now)
            return
        if self.role is Role.ECR:
            self._send_sealed(LoginConfirm(service_id=login.service_id), now)
        self._login = None
        self.peer = login.peer
        self._connected().peer_limit = login.peer.capabilities.max_frame_size
        self._transition(Trigger.LOGIN_SUCCEEDED)
        logger.info(
            "%s logged in with %s (key %s)", self.role.name, self.peer.peer_id, self.peer.key_id
        )
        self._events.append(LoggedIn(login.peer))

    def _fail_login(self, error: LinkError) -> None:
        logger.warning("%s login failed: %s", self.role.name, error)
        self._reset_session()
        self._transition(Trigger.LOGIN_FAILED)
        self._events.append(LoginFailed(error))

    # -- pairing (the exchange itself is in shouyin.link.pairing) ----------------------------

    def _on_pairing_request(self, request: PairingRequest, now: float) -> None:
        code = self._pairing_code
        if code is None:
            refusal = PairingServer.refusal(request.service_id, ErrorCondition.NOT_ALLOWED)
            self._send_plain(refusal, now)
            self._events.append(PairingAborted(PairingFailed("pairing is not open")))
            return
        server = PairingServer(self.identity, code, entropy=self._entropy, issuer=self._issuer)
        try:
            challenge = server.receive_request(request, now)
        except (PairingCodeRejected, PairingFailed) as error:
            logger.warning("pairing request from %r refused: %s", request.terminal_id, error)
            self._send_plain(PairingServer.refusal(request.service_id, ErrorCondition.REFUSAL), now)
            self._events.append(PairingAborted(error))
            return
        self._transition(Trigger.PAIRING_STARTED)
        self._pairing = server
        self._pairing_deadline = now + self.config.pairing_timeout
        self._send_plain(challenge, now)

    def _on_pairing_message(
        self, message: PairingChallenge | PairingConfirm | PairingComplete, now: float
    ) -> None:
        pairing = self._pairing
        if isinstance(message, PairingChallenge) and isinstance(pairing, PairingClient):
            self._send_plain(pairing.receive_challenge(message), now)
        elif isinstance(message, PairingConfirm) and isinstance(pairing, PairingServer):
            try:
                key = pairing.receive_confirm(message)
            except PairingFailed as error:
                refusal = PairingServer.refusal(message.service_id, ErrorCondition.REFUSAL)
                self._send_plain(refusal, now)
                self._end_pairing(PairingAborted(error))
                return
            complete = pairing.complete()
            self._send_plain(complete, now)
            self.long_term_key = key
            paired = Paired(key.terminal_id, key, complete.certificate, complete.ca_certificate)
            self._end_pairing(paired)
        elif isinstance(message, PairingComplete) and isinstance(pairing, PairingClient):
            try:
                outcome = pairing.receive_complete(message)
            except PairingFailed as error:
                self._end_pairing(PairingAborted(error))
                return
            key = outcome.key
            self.long_term_key = key
            self._end_pairing(Paired(key.ecr_id, key, outcome.certificate, outcome.ca_certificate))
        else:
            self._refuse(RemoteProtocolError(f"unexpected {message.type}"), now)

    def _end_pairing(self, event: Paired | PairingAborted) -> None:
        self._pairing = None
        self._pairing_deadline = None
        self._transition(Trigger.PAIRING_ENDED)
        self._events.append(event)
