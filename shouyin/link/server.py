"""The cashier system's listener of the terminal link (:class:`LinkServer`), and
:func:`pair_terminal`, a terminal's one-off pairing connection; both drive
:class:`~shouyin.link.aio.LinkEndpoint`.

:class:`LinkServer` listens for terminals on the configured addresses only. For each accepted
connection, in this order and before anything else happens on it: the
:class:`~shouyin.link.firewall.Firewall` checks the source (CIDR allowlist, rate limit, lockout);
on ``tls://`` the TLS 1.3 handshake runs (a client certificate from the store CA is required,
except while pairing is open, when a terminal without one may connect to pair and do nothing
else); the certificate is checked again with revocation
(:meth:`~shouyin.link.keystore.KeyStore.authenticate_peer`) and its terminal id must be paired
(:meth:`~shouyin.link.firewall.Firewall.check_identity`) and have a long-term key; only then is
the connection handed to that terminal's :class:`LinkEndpoint`, which logs in. A plain
``tcp://`` server serves the one terminal configured for it. Every refusal is logged; failed
handshakes and certificates, failed logins, wrong pairing codes and refused frames are counted
against the source (:meth:`~shouyin.link.firewall.Firewall.record_failure`), which is locked out
after too many; a successful login clears its count.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from shouyin.link.aio import LinkEndpoint
from shouyin.link.config import LinkConfig
from shouyin.link.errors import (
    LocalProtocolError,
    PairingCodeRejected,
    PairingFailed,
    SecurityError,
)
from shouyin.link.events import (
    Event,
    FrameRefused,
    LinkDead,
    LoggedIn,
    LoginFailed,
    Paired,
    PairingAborted,
)
from shouyin.link.firewall import FailureKind, Firewall
from shouyin.link.framing import Framer, StreamFramer
from shouyin.link.keystore import KeyStore
from shouyin.link.pairing import CertificateIssuer, CodeState, PairingCode
from shouyin.link.pki import CertificateRejected
from shouyin.link.security import LongTermKey
from shouyin.link.session import Connection
from shouyin.link.states import Role
from shouyin.link.transport import LinkAddress, Listener, Scheme, StreamTransport, Transport, listen
from shouyin.link.values import Capabilities

__all__ = ["EndpointListener", "KeyLookup", "LinkServer", "PairedListener", "pair_terminal"]

logger = logging.getLogger(__name__)

PairedListener = Callable[[Paired], None]
"""Called with each successful pairing (:class:`Paired`) on the server."""
EndpointListener = Callable[[str, LinkEndpoint], None]
"""Called with a terminal id and its endpoint when the server makes that terminal's endpoint."""


async def pair_terminal(
    transport: Transport,
    *,
    terminal_id: str,
    capabilities: Capabilities,
    code: str,
    csr: str | None = None,
    config: LinkConfig | None = None,
    framer_factory: Callable[[], Framer] = StreamFramer,
    timeout: float | None = None,
) -> Paired:
    """(Terminal side) Pair over a fresh ``transport`` (then closed) and return the outcome.

    On TLS, dial with :func:`~shouyin.link.transport.pairing_ssl_context` (the terminal has no
    certificate yet), then install what comes back with
    :meth:`~shouyin.link.keystore.TerminalKeyStore.install` and redial with the certificate.

    Raises:
        PairingFailed: wrong code, refused, burnt or expired code.
        LinkError: the link went down or the pairing timed out.
    """
    connection = Connection(
        Role.POI, terminal_id, capabilities, config=config, framer_factory=framer_factory
    )
    endpoint = LinkEndpoint(connection, name=f"pairing {terminal_id}")
    endpoint.attach(transport)
    try:
        return await endpoint.pair(code, csr=csr, timeout=timeout)
    finally:
        await endpoint.close()


KeyLookup = Callable[[str], LongTermKey | None]
"""Maps a terminal id to its long-term key (``None``: not paired)."""


class LinkServer:
    """The cashier system's side of the network link: accepts terminals (see the module
    docstring for the order of checks).

    Args:
        ecr_id: the cashier system's identity.
        capabilities: what it offers at Login.
        firewall: the firewall; its policy's ``listen_addresses`` are the only bindable hosts.
        listen: ``tcp://`` and/or ``tls://`` addresses (IP literals; port 0 for a free port).
        keys: terminal id -> long-term key, ``None`` when unknown.
        keystore: the store's key store (required for ``tls://``).
        plain_terminal_id: the terminal a ``tcp://`` listener serves (plain TCP has no identity).
        config: link timeouts for every terminal connection.
        on_paired: called with each successful :class:`Paired` event: store ``event.key``.
        handshake_timeout: seconds allowed for a TLS handshake.
        wall_clock: the aware time for certificate validity.
    """

    def __init__(
        self,
        *,
        ecr_id: str,
        capabilities: Capabilities,
        firewall: Firewall,
        listen: Sequence[LinkAddress | str],
        keys: KeyLookup,
        keystore: KeyStore | None = None,
        plain_terminal_id: str | None = None,
        config: LinkConfig | None = None,
        on_paired: Callable[[Paired], None] | None = None,
        handshake_timeout: float = 5.0,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ecr_id = ecr_id
        self.capabilities = capabilities
        self.firewall = firewall
        self.config = config or LinkConfig()
        self.endpoints: dict[str, LinkEndpoint] = {}
        self.refusals: Counter[str] = Counter()
        self._addresses = [LinkAddress.parse(a) if isinstance(a, str) else a for a in listen]
        self._keys = keys
        self._keystore = keystore
        self._plain_terminal_id = plain_terminal_id
        self._paired_listeners: list[PairedListener] = [on_paired] if on_paired else []
        self._endpoint_listeners: list[EndpointListener] = []
        self._handshake_timeout = handshake_timeout
        self._wall_clock = wall_clock
        self._listener: Listener | None = None
        self._context: ssl.SSLContext | None = None
        self._pairing_context: ssl.SSLContext | None = None
        self._pairing_code: PairingCode | None = None
        self._issuer: CertificateIssuer | None = None
        self._sources: dict[int, str] = {}  # id(endpoint) -> source address of its transport
        self._pairing_sessions: set[LinkEndpoint] = set()
        self._endpoint_added: asyncio.Event | None = None

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listen addresses (only those the firewall policy lists).

        Raises:
            AddressError: an address the policy does not list, a host name, a serial URL.
            LocalProtocolError: ``tls://`` without a key store.
            OSError: an address cannot be bound.
        """
        self._endpoint_added = asyncio.Event()
        if any(a.scheme is Scheme.TLS for a in self._addresses):
            if self._keystore is None:
                raise LocalProtocolError("a tls:// listener needs the store's key store")
            self._context = self._keystore.ssl_server_context()
            self._pairing_context = self._keystore.ssl_server_context()
            # While pairing is open a terminal without a certificate may connect, to pair only.
            self._pairing_context.verify_mode = ssl.CERT_OPTIONAL
        allowed = [str(a) for a in self.firewall.policy.listen_addresses]
        self._listener = await listen(self._addresses, self._accept, allowed_hosts=allowed)

    @property
    def addresses(self) -> tuple[LinkAddress, ...]:
        """The bound addresses (with the actual ports)."""
        return self._listener.addresses if self._listener is not None else ()

    async def close(self) -> None:
        """Stop listening and close every terminal connection."""
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        endpoints = [*self.endpoints.values(), *self._pairing_sessions]
        await asyncio.gather(*(e.close() for e in endpoints), return_exceptions=True)

    async def __aenter__(self) -> LinkServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- application API ---------------------------------------------------------------------

    def allow_pairing(
        self, code: PairingCode | None, issuer: CertificateIssuer | None = None
    ) -> None:
        """Open pairing with ``code`` (one code shared by every connection), or close it.

        While a valid code is set, a TLS client without a certificate is let in to pair, and only
        to pair (one attempt per connection); a used, burnt or expired code closes that again.

        Args:
            code: the one-time code the admin was shown, made on the event loop's clock
                (``PairingCode.generate(time.monotonic())``); ``None`` closes pairing.
            issuer: issues the terminal's TLS client certificate
                (:meth:`~shouyin.link.keystore.KeyStore.certificate_issuer`).
        """
        self._pairing_code = code
        self._issuer = issuer
        if self._plain_terminal_id is not None:
            endpoint = self.endpoints.get(self._plain_terminal_id)
            if endpoint is not None:
                endpoint.allow_pairing(code, issuer)

    async def wait_ready(self, terminal_id: str, timeout: float) -> LinkEndpoint:
        """Wait until ``terminal_id`` is connected and logged in; return its endpoint.

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        added = self._endpoint_added
        assert added is not None, "start() first"
        while terminal_id not in self.endpoints:
            added.clear()
            await asyncio.wait_for(added.wait(), max(0.0, deadline - loop.time()))
        endpoint = self.endpoints[terminal_id]
        await endpoint.wait_ready(max(0.0, deadline - loop.time()))
        return endpoint

    def add_paired_listener(self, listener: PairedListener) -> Callable[[], None]:
        """Call ``listener`` with each successful :class:`Paired` event (after the ``on_paired``
        given at construction); returns a function that removes it again."""
        self._paired_listeners.append(listener)
        return lambda: _discard(self._paired_listeners, listener)

    def add_endpoint_listener(self, listener: EndpointListener) -> Callable[[], None]:
        """Call ``listener(terminal_id, endpoint)`` when a terminal first connects and the server
        makes its endpoint (one per terminal id, reused across reconnections; those made
        already are in :attr:`endpoints`), so that the caller can listen to its events from
        the first one. Returns a function that removes the listener again."""
        self._endpoint_listeners.append(listener)
        return lambda: _discard(self._endpoint_listeners, listener)

    def disconnect(self, terminal_id: str, reason: str = "disconnected by the server") -> None:
        """Drop a terminal's current connection (e.g. right after revoking it)."""
        endpoint = self.endpoints.get(terminal_id)
        if endpoint is not None:
            endpoint.drop(reason)

    # -- accepting ---------------------------------------------------------------------------

    def _pairing_open(self) -> bool:
        """A usable code is set (a used, burnt or expired one closes the certificate-less door)."""
        code = self._pairing_code
        return code is not None and code.state(asyncio.get_running_loop().time()) is CodeState.VALID

    def _refuse(
        self,
        transport: Transport,
        source: str,
        reason: str,
        *,
        failure: FailureKind | None = None,
        logged: bool = False,
    ) -> None:
        self.refusals[reason] += 1
        if not logged:
            logger.warning("link server refused %s: %s", source, reason)
        if failure is not None:
            self.firewall.record_failure(source, failure, asyncio.get_running_loop().time())
        transport.close()

    async def _accept(self, transport: StreamTransport, address: LinkAddress) -> None:
        source = transport.info.peer_host or "?"
        decision = self.firewall.check_connection(source, asyncio.get_running_loop().time())
        if not decision.allowed:
            reason = decision.reason.value if decision.reason else "refused"
            self._refuse(transport, source, f"firewall: {reason}", logged=True)
            return
        if address.scheme is Scheme.TLS:
            terminal_id = await self._authenticate(transport, source)
        else:
            terminal_id = self._plain_terminal_id
            if terminal_id is None:
                self._refuse(transport, source, "no terminal is configured for this port")
                return
        if terminal_id is None:
            return  # refused, or a pairing-only connection that has finished
        key = self._keys(terminal_id)
        if key is None and (address.scheme is Scheme.TLS or not self._pairing_open()):
            self._refuse(
                transport,
                source,
                f"terminal {terminal_id!r} has no pairing key",
                failure=FailureKind.AUTHENTICATION,
            )
            return
        endpoint = self._endpoint_for(terminal_id)
        if address.scheme is Scheme.TCP and endpoint.is_ready:
            # Plain TCP proves nothing before Login: never let a newcomer cut a live session
            # (a terminal that really reconnects gets in once its old link is found dead).
            self._refuse(transport, source, f"terminal {terminal_id!r} is already connected")
            return
        if key is not None:
            endpoint.connection.long_term_key = key
        if address.scheme is Scheme.TCP:
            endpoint.allow_pairing(self._pairing_code, self._issuer)
        self._sources[id(endpoint)] = source
        endpoint.attach(transport)

    async def _authenticate(self, transport: StreamTransport, source: str) -> str | None:
        """TLS handshake and certificate checks; the terminal id, or ``None`` once handled."""
        keystore, pairing_open = self._keystore, self._pairing_open()
        context = self._pairing_context if pairing_open else self._context
        assert keystore is not None and context is not None  # checked by start()
        try:
            await transport.start_tls(context, timeout=self._handshake_timeout)
        except (OSError, TimeoutError) as error:
            detail = getattr(error, "reason", None) or error.__class__.__name__
            reason = f"TLS handshake failed ({detail})"
            self._refuse(transport, source, reason, failure=FailureKind.AUTHENTICATION)
            return None
        certificate = transport.info.peer_certificate
        if certificate is None:
            if not self._pairing_open():
                self._refuse(transport, source, "no client certificate", failure=None)
            else:
                await self._pair_over(transport, source)
            return None
        try:
            terminal_id = keystore.authenticate_peer(certificate, self._wall_clock())
        except CertificateRejected as error:
            reason = f"certificate refused ({error.problem.value})"
            self._refuse(transport, source, reason, failure=FailureKind.AUTHENTICATION)
            return None
        paired = keystore.paired_terminal_ids()
        decision = self.firewall.check_identity(terminal_id, paired, source_ip=source)
        if not decision.allowed:
            reason = f"identity: {decision.reason.value if decision.reason else 'refused'}"
            self._refuse(transport, source, reason, failure=FailureKind.AUTHENTICATION, logged=True)
            return None
        return terminal_id

    async def _pair_over(self, transport: StreamTransport, source: str) -> None:
        """Run one pairing attempt on a certificate-less TLS connection, then close it."""
        connection = Connection(Role.ECR, self.ecr_id, self.capabilities, config=self.config)
        connection.allow_pairing(self._pairing_code, self._issuer)
        endpoint = LinkEndpoint(connection, auto_login=False, name=f"pairing {source}")
        outcome: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

        def watch(_: LinkEndpoint, event: Event) -> None:
            if isinstance(event, Paired | PairingAborted | LinkDead) and not outcome.done():
                outcome.set_result(event)

        endpoint.add_listener(watch)
        endpoint.add_listener(self._on_event)
        self._sources[id(endpoint)] = source
        self._pairing_sessions.add(endpoint)
        endpoint.attach(transport)
        try:
            limit = self.config.pairing_timeout + self._handshake_timeout
            event = await asyncio.wait_for(outcome, limit)
            if isinstance(event, Paired):
                await transport.drain()
        except TimeoutError:
            self._refuse(transport, source, "pairing: nothing received in time")
        finally:
            self._pairing_sessions.discard(endpoint)
            self._sources.pop(id(endpoint), None)
            await endpoint.close()

    def _endpoint_for(self, terminal_id: str) -> LinkEndpoint:
        endpoint = self.endpoints.get(terminal_id)
        if endpoint is None:
            connection = Connection(Role.ECR, self.ecr_id, self.capabilities, config=self.config)
            endpoint = LinkEndpoint(connection, name=f"ECR {self.ecr_id} -> {terminal_id}")
            endpoint.add_listener(self._on_event)
            self.endpoints[terminal_id] = endpoint
            for listener in list(self._endpoint_listeners):
                try:
                    listener(terminal_id, endpoint)
                except Exception:  # a listener's bug must not refuse the terminal
                    logger.exception("endpoint listener failed for terminal %s", terminal_id)
            if self._endpoint_added is not None:
                self._endpoint_added.set()
        return endpoint

    def _on_event(self, endpoint: LinkEndpoint, event: Event) -> None:
        """Feed the firewall with what happens on terminal connections."""
        source = self._sources.get(id(endpoint))
        if source is None:
            return
        now = asyncio.get_running_loop().time()
        if isinstance(event, FrameRefused):
            decision = self.firewall.record_failure(source, FailureKind.BAD_FRAME, now)
            if not decision.allowed:
                asyncio.get_running_loop().call_soon(endpoint.drop, "source locked out")
        elif isinstance(event, LoggedIn):
            self.firewall.record_success(source, now)
        elif isinstance(event, LoginFailed) and isinstance(event.error, SecurityError):
            self.firewall.record_failure(source, FailureKind.AUTHENTICATION, now)
        elif isinstance(event, PairingAborted):
            if isinstance(event.error, PairingFailed | PairingCodeRejected):
                self.firewall.record_failure(source, FailureKind.PAIRING_CODE, now)
        elif isinstance(event, Paired):
            for listener in list(self._paired_listeners):
                listener(event)


def _discard(listeners: list[Callable[..., None]], listener: Callable[..., None]) -> None:
    """Remove ``listener`` once if present (removing twice is harmless)."""
    if listener in listeners:
        listeners.remove(listener)
