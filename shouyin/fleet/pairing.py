"""Pairing, re-pairing and revoking payment terminals: the cashier side of DESIGN.md section 4.

:func:`pair_terminal_interactively` (``shouyin fleet pair``) runs one pairing, in this order:

1. the terminal must be registered for *this* lane (``Settings.lane_id``: its keys and
   certificate live in this machine's key store, and the lane id is the cashier system's link
   identity, ``ecr_id``, which every later Login must present), the store CA must exist
   (``shouyin init``) and the key ring must unlock (passphrase checked before a code is shown);
2. a one-time :class:`~shouyin.link.pairing.PairingCode` is made: 8 digits, 10 minutes, single
   use, burnt after 3 wrong tries;
3. a network terminal: a :class:`~shouyin.link.server.LinkServer` listens on
   ``Settings.listen_addresses`` at ``Settings.link_port`` (``tls://`` only) behind the firewall
   built from the settings (adapted: see :class:`_PairingFirewall`), with pairing open; the
   admin is shown the code and the QR code ``{address, port, code, CA fingerprint}``
   (:func:`qr_address` picks the address). A serial
   terminal: its port (the registered ``serial://`` URL) is opened and a
   :class:`~shouyin.link.aio.LinkEndpoint` waits there for the terminal's pairing request; the
   admin gets the code only (the QR code's address and port mean nothing on a cable);
4. the terminal runs SPAKE2 with the code (:mod:`shouyin.link.pairing`); on success the key store
   issues its TLS client certificate (with a CSR; a network terminal without one is refused,
   since it could never log in) and, when re-pairing, revokes the previous certificate's serial;
5. the long-term key goes into the :class:`~shouyin.fleet.keys.TerminalKeyRing` (replacing any
   previous one) and the registry records the terminal as paired, with ``key_id`` and the
   certificate's serial and expiry; then everything is closed.

A pairing ends without success when the admin's ``timeout`` passes, the code expires, it is burnt
(three wrong codes), or the terminal that answered the code claims another terminal id (no
certificate is issued to it and its key is not kept). :class:`PairingNotCompleted` says which.

The pairing server lets nobody log in (its key lookup knows no key): it exists to pair. It binds
the configured link port, so it cannot run while the lane's own link server holds that port.

:func:`revoke` revokes the terminal's certificate in the key store (the link server refuses it at
the next TLS handshake), deletes its key from the key ring (so no Login can succeed, TLS or
serial), and records the terminal as revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from importlib import metadata
from types import TracebackType
from typing import TYPE_CHECKING, Final

from pydantic import ValidationError

from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome
from shouyin.fleet.keys import TerminalKeyRing, passphrase_from_env
from shouyin.fleet.registry import (
    FleetError,
    Terminal,
    TerminalState,
    TerminalUnitOfWork,
    UnknownTerminal,
    get_terminal,
    validate_lane_id,
    validate_terminal_id,
)
from shouyin.link.aio import LinkEndpoint
from shouyin.link.config import LinkConfig
from shouyin.link.errors import PairingCodeRejected, PairingFailed
from shouyin.link.events import Event, Paired, PairingAborted
from shouyin.link.firewall import Decision, FailureKind, Firewall, FirewallPolicy
from shouyin.link.keystore import KeyStore
from shouyin.link.pairing import PAIRING_CODE_LIFETIME, CertificateIssuer, CodeState, PairingCode
from shouyin.link.pairing_qr import PairingPayload
from shouyin.link.pki import CertificateRejected, certificate_from_pem
from shouyin.link.server import KeyLookup, LinkServer
from shouyin.link.session import Connection
from shouyin.link.states import Role
from shouyin.link.transport import open_serial
from shouyin.link.values import Capabilities

if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv6Address

    from shouyin.config import Settings

__all__ = [
    "DEFAULT_PAIRING_TIMEOUT",
    "ListenFailed",
    "PairingFailure",
    "PairingInvitation",
    "PairingNotCompleted",
    "PairingResult",
    "PairingSession",
    "RevocationResult",
    "StoreNotInitialised",
    "WrongLane",
    "build_link_server",
    "ecr_capabilities",
    "ecr_identity",
    "listen_urls",
    "pair_terminal_interactively",
    "qr_address",
    "revoke",
]

logger = logging.getLogger(__name__)

DEFAULT_PAIRING_TIMEOUT: Final = PAIRING_CODE_LIFETIME
"""The admin waits as long as the code lives (10 minutes) unless told otherwise."""
_POLL: Final = 0.25  # seconds between checks of the code's state (expiry, burnt)
_HANDSHAKE_TIMEOUT: Final = 5.0  # the LinkServer's default TLS handshake bound
_SERIAL_LINGER: Final = 5.0  # at most this long for the last frame's ACK on a serial line
_LOOPBACK_NAMES: Final = ("localhost", "localhost.localdomain")


def _utc_now() -> datetime:
    return datetime.now(UTC)


# -- errors ----------------------------------------------------------------------------------------


class PairingFailure(StrEnum):
    """Why a pairing ended without a paired terminal."""

    TIMED_OUT = "timed_out"
    """The admin's timeout passed with no successful attempt."""
    EXPIRED = "expired"
    """The code's 10 minutes are over."""
    BURNT = "burnt"
    """Three wrong codes: the code is burnt."""
    WRONG_TERMINAL = "wrong_terminal"
    """The terminal that knew the code claims another terminal id."""
    NO_CERTIFICATE = "no_certificate"
    """A network terminal sent no (valid) certificate request: it could never log in."""
    INCOMPLETE = "incomplete"
    """The code was used, but the exchange did not finish (the link or the issuer failed)."""


class PairingNotCompleted(FleetError):
    """The pairing ended without success; nothing was stored.

    Attributes:
        terminal_id: the terminal being paired.
        reason: why.
    """

    def __init__(self, terminal_id: str, reason: PairingFailure) -> None:
        super().__init__(f"terminal {terminal_id} not paired: {reason.value}")
        self.terminal_id = terminal_id
        self.reason = reason


class WrongLane(FleetError):
    """The terminal belongs to another lane: pair or revoke it on that lane's machine.

    Attributes:
        terminal_id: the terminal.
        lane_id: its lane.
        here: this installation's lane (``Settings.lane_id``).
    """

    def __init__(self, terminal_id: str, lane_id: str, here: str) -> None:
        super().__init__(f"terminal {terminal_id} belongs to lane {lane_id}, this is lane {here}")
        self.terminal_id = terminal_id
        self.lane_id = lane_id
        self.here = here


class StoreNotInitialised(FleetError):
    """The store CA does not exist yet: run ``shouyin init`` first.

    Attributes:
        path: the key store directory.
    """

    def __init__(self, path: str) -> None:
        super().__init__(f"the store CA is missing in {path}: run 'shouyin init'")
        self.path = path


class ListenFailed(FleetError):
    """The link port or the serial port cannot be opened (in use, no permission, no device).

    Attributes:
        where: the address or device.
        reason: the operating system's message.
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"cannot open {where}: {reason}")
        self.where = where
        self.reason = reason


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairingInvitation:
    """What the admin is shown while the cashier system waits for the terminal.

    ``repr`` hides the code (``PairingCode`` and ``PairingPayload`` both do); read
    ``code.digits`` to show it.

    Attributes:
        terminal: the terminal being paired.
        code: the one-time code.
        payload: the QR code's content, or ``None`` for a serial terminal.
        where: the ``tls://`` addresses listened on, or the serial URL.
    """

    terminal: Terminal
    code: PairingCode
    payload: PairingPayload | None
    where: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PairingResult:
    """A successful pairing.

    Attributes:
        terminal: the terminal as now recorded (``PAIRED``).
        previous_key_id: the key it had before (re-pairing), if any.
        previous_certificate_serial: the certificate it had before, now revoked, if any.
    """

    terminal: Terminal
    previous_key_id: str | None
    previous_certificate_serial: str | None

    @property
    def re_paired(self) -> bool:
        """The terminal was paired before: its old key and certificate are replaced."""
        return self.previous_key_id is not None or self.previous_certificate_serial is not None


@dataclass(frozen=True, slots=True)
class RevocationResult:
    """What :func:`revoke` did.

    Attributes:
        terminal_id: the terminal.
        terminal: its record afterwards (``None`` if it was never registered).
        certificate_revoked: a current certificate was revoked.
        key_deleted: a stored key was deleted.
        already_revoked: the record was already ``REVOKED``.
    """

    terminal_id: str
    terminal: Terminal | None
    certificate_revoked: bool
    key_deleted: bool
    already_revoked: bool


# -- settings --------------------------------------------------------------------------------------


def ecr_identity(settings: Settings) -> str:
    """The cashier system's link identity (``ecr_id``): this installation's lane id.

    Pairing binds it into the terminal's key, and the terminal refuses a Login from any other
    identity, so the lane's link server must use the same value.

    Raises:
        InvalidTerminal: the configured lane id is not a valid identity.
    """
    return validate_lane_id(settings.lane_id)


def _version() -> str:
    try:
        return metadata.version("shouyin")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def ecr_capabilities() -> Capabilities:
    """What the cashier system announces on the link (pairing does not use them; Login does)."""
    return Capabilities(
        printer=True, display=True, max_frame_size=8192, firmware=f"shouyin {_version()}"
    )


def _is_loopback_name(name: str) -> bool:
    lowered = name.lower().rstrip(".")
    return lowered in _LOOPBACK_NAMES or lowered.endswith(".localhost")


def _qr_candidate(name: str) -> str | None:
    """``name`` in the QR code's form, or ``None`` when a terminal cannot dial it from the LAN."""
    try:
        ip: IPv4Address | IPv6Address | None = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is not None and (ip.is_loopback or ip.is_unspecified or ip.is_link_local):
        return None
    if ip is None and _is_loopback_name(name):
        return None
    try:
        payload = PairingPayload(address=name, port=1, code="00000000", fingerprint="0" * 64)
    except ValidationError:
        logger.warning("server name %r cannot go into a pairing QR code; skipped", name)
        return None
    return payload.address


def qr_address(settings: Settings) -> str:
    """The address the pairing QR code tells a network terminal to dial.

    The first of ``Settings.server_names`` that a terminal on the store LAN can reach: not a
    loopback, unspecified or link-local address, nor ``localhost``. Those names are the ones the
    server certificate covers (``shouyin init``), so the terminal's later TLS connections match
    it. With none (a fresh, loopback-only install), ``127.0.0.1``: enough for a terminal
    simulator on the same machine; add the LAN address to ``SHOUYIN_SERVER_NAMES`` (and
    ``SHOUYIN_LISTEN_ADDRESSES``) for real terminals.
    """
    for name in settings.server_names:
        candidate = _qr_candidate(name)
        if candidate is not None:
            return candidate
    return "127.0.0.1"


def listen_urls(settings: Settings) -> list[str]:
    """``tls://`` URLs for every configured listen address at the link port.

    A host name among the listen addresses is refused by the server when it starts (it binds IP
    addresses only, see :func:`shouyin.link.transport.listen`).
    """
    port = settings.link_port
    return [
        f"tls://[{host}]:{port}" if ":" in host else f"tls://{host}:{port}"
        for host in settings.listen_addresses
    ]


def build_link_server(
    settings: Settings,
    *,
    keys: KeyLookup,
    keystore: KeyStore,
    firewall: Firewall | None = None,
    config: LinkConfig | None = None,
    on_paired: Callable[[Paired], None] | None = None,
    capabilities: Capabilities | None = None,
) -> LinkServer:
    """The cashier system's TLS link server as the settings describe it (not started).

    Args:
        settings: listen addresses, link port, firewall policy, lane id.
        keys: terminal id -> long-term key (a :class:`~shouyin.fleet.keys.TerminalKeyRing`).
        keystore: the store's key store (``Settings.keys_dir``).
        firewall: by default a fresh one from ``settings.firewall_policy()``.
        config: link timeouts.
        on_paired: called with each successful pairing.
        capabilities: what it announces at Login (:func:`ecr_capabilities` by default).

    Returns:
        The server; ``async with`` it to listen.
    """
    return LinkServer(
        ecr_id=ecr_identity(settings),
        capabilities=capabilities or ecr_capabilities(),
        firewall=firewall or Firewall(settings.firewall_policy()),
        listen=listen_urls(settings),
        keys=keys,
        keystore=keystore,
        config=config,
        on_paired=on_paired,
        handshake_timeout=_HANDSHAKE_TIMEOUT,
    )


def _no_key(_: str) -> None:
    """The pairing server's key lookup: nobody logs in to it."""
    return None


class _PairingFirewall(Firewall):
    """The settings' firewall, adapted to a server that exists only to pair.

    Every terminal paired earlier keeps redialling with its certificate while the pairing server
    holds the link port, and is refused (the pairing server logs nobody in). Those refusals are
    not held against the source: otherwise a terminal being re-paired, or every terminal behind
    one NAT address, would be locked out of pairing within seconds. Wrong codes and bad frames
    still count; the rate limit still applies; the code's own 3-try budget is what makes
    guessing hopeless. Each wrong code is also reported at once, so that waiting for the outcome
    ends as soon as the third one burns the code.
    """

    def __init__(self, policy: FirewallPolicy, on_code_failure: Callable[[], None]) -> None:
        super().__init__(policy)
        self._on_code_failure = on_code_failure

    def record_failure(
        self, source_ip: str | IPv4Address | IPv6Address, kind: FailureKind, now: float
    ) -> Decision:
        if kind is FailureKind.AUTHENTICATION:
            return Decision(True)
        decision = super().record_failure(source_ip, kind, now)
        if kind is FailureKind.PAIRING_CODE:
            self._on_code_failure()
        return decision


def _default_registry(settings: Settings) -> TerminalUnitOfWork:
    from shouyin.store.audit_repo import CheckpointStore
    from shouyin.store.terminal_repo import SqlTerminalUnitOfWork

    uow = SqlTerminalUnitOfWork.open(settings.resolved_database_url())
    uow.checkpoints = CheckpointStore(settings.keys_dir)
    return uow


def _audit_event(
    action: AuditAction, terminal: Terminal, at: datetime, note: str | None
) -> AuditEvent:
    # Issue 7: pairing and revocation are admin actions, audited in the registry's transaction.
    return AuditEvent(
        action=action,
        outcome=AuditOutcome.SUCCESS,
        actor="admin",
        source=f"lane:{terminal.lane_id}",
        target=f"terminal:{terminal.terminal_id}",
        at=at,
        details={"note": note, "key_id": terminal.key_id},
    )


def _dispose(uow: TerminalUnitOfWork) -> None:
    dispose = getattr(uow, "dispose", None)
    if callable(dispose):
        dispose()


def _check_lane(terminal: Terminal, settings: Settings) -> None:
    if terminal.lane_id != settings.lane_id:
        raise WrongLane(terminal.terminal_id, terminal.lane_id, settings.lane_id)


# -- pairing ---------------------------------------------------------------------------------------


class PairingSession:
    """One pairing of one terminal (see the module docstring); ``async with`` it.

    Entering checks everything, makes the code and opens the server (or the serial port):
    :attr:`invitation` is then what to show the admin; :meth:`wait` waits for the outcome and
    stores it; leaving closes everything (a code not used by then dies with the session).

    Args:
        settings: the installation's settings.
        terminal_id: the registered terminal to pair.
        registry: the terminal registry (by default the settings' database; then disposed).
        keyring: where the key goes (by default in ``settings.keys_dir`` with the passphrase
            from ``SHOUYIN_KEY_PASSPHRASE``).
        config: link timeouts (``pairing_timeout`` bounds one attempt).
        wall_clock: the aware time for certificates and the registry.
    """

    def __init__(
        self,
        settings: Settings,
        terminal_id: str,
        *,
        registry: TerminalUnitOfWork | None = None,
        keyring: TerminalKeyRing | None = None,
        config: LinkConfig | None = None,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings = settings
        self.terminal_id = validate_terminal_id(terminal_id)
        self._own_registry = registry is None
        self._registry = registry
        self.keyring = keyring or TerminalKeyRing(
            settings.keys_dir, passphrase=passphrase_from_env()
        )
        self.keystore = KeyStore(settings.keys_dir)
        self.config = config or LinkConfig()
        self._wall_clock = wall_clock
        self._invitation: PairingInvitation | None = None
        self._server: LinkServer | None = None
        self._endpoint: LinkEndpoint | None = None
        self._paired: Paired | None = None
        self._code_failures = 0
        self._changed = asyncio.Event()
        self._succeeded = False

    def __repr__(self) -> str:
        return f"PairingSession({self.terminal_id!r})"

    @property
    def invitation(self) -> PairingInvitation:
        """The code, QR payload and addresses to show (after entering)."""
        if self._invitation is None:
            raise RuntimeError("enter the session first (async with)")
        return self._invitation

    @property
    def registry(self) -> TerminalUnitOfWork:
        """The terminal registry in use."""
        if self._registry is None:
            self._registry = _default_registry(self.settings)
        return self._registry

    async def __aenter__(self) -> PairingSession:
        try:
            await self._open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _open(self) -> None:
        terminal = get_terminal(self.registry, self.terminal_id)
        _check_lane(terminal, self.settings)
        if not self.keystore.is_initialised():
            raise StoreNotInitialised(str(self.keystore.directory))
        self.keyring.unlock()  # a wrong passphrase must fail before the admin sees a code
        loop = asyncio.get_running_loop()
        code = PairingCode.generate(loop.time())
        issuer = self._issuer()
        if terminal.is_serial:
            where = await self._open_serial(terminal, code, issuer)
            payload = None
        else:
            where = await self._open_network(code, issuer)
            payload = PairingPayload(
                address=qr_address(self.settings),
                port=self.settings.link_port,
                code=code.digits,
                fingerprint=self.keystore.ca_fingerprint(),
            )
        self._invitation = PairingInvitation(terminal, code, payload, where)
        logger.info("pairing of terminal %s open on %s", self.terminal_id, ", ".join(where))

    def _issuer(self) -> CertificateIssuer:
        """The key store's issuer, restricted to the terminal being paired."""
        inner = self.keystore.certificate_issuer(self._wall_clock)
        expected = self.terminal_id

        def issue(terminal_id: str, csr: str | None) -> tuple[str | None, str | None]:
            if terminal_id != expected:
                logger.warning(
                    "pairing: a terminal claiming id %r knew the code for %s: nothing issued",
                    terminal_id,
                    expected,
                )
                return None, None
            try:
                return inner(terminal_id, csr)
            except CertificateRejected as error:
                logger.warning("pairing: certificate request of %s refused: %s", expected, error)
                return None, None

        return issue

    async def _open_network(self, code: PairingCode, issuer: CertificateIssuer) -> tuple[str, ...]:
        firewall = _PairingFirewall(self.settings.firewall_policy(), self._on_code_failure)
        server = build_link_server(
            self.settings,
            keys=_no_key,
            keystore=self.keystore,
            firewall=firewall,
            config=self.config,
            on_paired=self._on_paired,
        )
        try:
            await server.start()
        except OSError as error:
            urls = ", ".join(listen_urls(self.settings))
            raise ListenFailed(urls, error.strerror or str(error)) from error
        self._server = server
        server.allow_pairing(code, issuer)
        return tuple(str(a) for a in server.addresses)

    async def _open_serial(
        self, terminal: Terminal, code: PairingCode, issuer: CertificateIssuer
    ) -> tuple[str, ...]:
        address = terminal.link_address
        assert address is not None  # is_serial
        try:
            transport = await open_serial(address)
        except OSError as error:
            raise ListenFailed(str(address), error.strerror or str(error)) from error
        connection = Connection(
            Role.ECR,
            ecr_identity(self.settings),
            ecr_capabilities(),
            config=self.config,
            framer_factory=address.framer_factory(),
        )
        endpoint = LinkEndpoint(connection, auto_login=False, name=f"pairing {self.terminal_id}")
        endpoint.add_listener(self._watch)
        endpoint.allow_pairing(code, issuer)
        self._endpoint = endpoint
        endpoint.attach(transport)
        return (str(address),)

    # -- outcome ---------------------------------------------------------------------------------

    def _on_paired(self, event: Paired) -> None:
        if self._paired is None:  # the code is single use: there is only ever one
            self._paired = event
        self._changed.set()

    def _on_code_failure(self) -> None:
        self._code_failures += 1
        self._changed.set()

    def _watch(self, _: LinkEndpoint, event: Event) -> None:
        if isinstance(event, Paired):
            self._on_paired(event)
        elif isinstance(event, PairingAborted) and isinstance(
            event.error, PairingFailed | PairingCodeRejected
        ):
            self._on_code_failure()

    async def wait(self, timeout: float = DEFAULT_PAIRING_TIMEOUT) -> PairingResult:
        """Wait for the terminal, then store its key and record it as paired.

        Args:
            timeout: seconds to wait (the code expires after 10 minutes anyway).

        Returns:
            The outcome.

        Raises:
            PairingNotCompleted: timed out, the code expired or was burnt, or the terminal that
                knew the code is another one or sent no certificate request.
            KeyRingError: the key cannot be stored.
        """
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        code = self.invitation.code
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # An attempt is counted as failed when it starts: "burnt" is final once the third wrong
        # attempt was reported, or once the longest attempt could have ended.
        grace = self.config.pairing_timeout + _HANDSHAKE_TIMEOUT
        stuck_since: float | None = None
        while self._paired is None:
            now = loop.time()
            state = code.state(now)
            if state is CodeState.EXPIRED:
                raise PairingNotCompleted(self.terminal_id, PairingFailure.EXPIRED)
            if state is CodeState.BURNT and self._code_failures >= code.max_failures:
                raise PairingNotCompleted(self.terminal_id, PairingFailure.BURNT)
            if state in (CodeState.BURNT, CodeState.USED):
                stuck_since = now if stuck_since is None else stuck_since
                if now - stuck_since >= grace:
                    failure = (
                        PairingFailure.BURNT
                        if state is CodeState.BURNT
                        else PairingFailure.INCOMPLETE
                    )
                    raise PairingNotCompleted(self.terminal_id, failure)
            if now >= deadline:
                raise PairingNotCompleted(self.terminal_id, PairingFailure.TIMED_OUT)
            self._changed.clear()
            bound = min(_POLL, deadline - now, max(code.expires_at - now, 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(bound, 0.001))
        return self._store(self._paired)

    def _store(self, event: Paired) -> PairingResult:
        """Keep what a successful pairing brought (see the module docstring, step 5)."""
        if event.peer_id != self.terminal_id:
            raise PairingNotCompleted(self.terminal_id, PairingFailure.WRONG_TERMINAL)
        now = self._wall_clock()
        serial: str | None = None
        expires: datetime | None = None
        if event.certificate is not None:
            certificate = certificate_from_pem(event.certificate)
            serial, expires = f"{certificate.serial_number:x}", certificate.not_valid_after_utc
        elif not self.invitation.terminal.is_serial:
            raise PairingNotCompleted(self.terminal_id, PairingFailure.NO_CERTIFICATE)
        else:  # a serial terminal asked for none: a certificate of its old key must not outlive it
            self.keystore.revoke_terminal(self.terminal_id, now, "re-paired over serial")
        self.keyring.put(event.key)
        registry = self.registry
        with registry:
            current = registry.terminals.get(self.terminal_id)
            if current is None:
                raise UnknownTerminal(self.terminal_id)
            updated = current.paired(
                at=now,
                key_id=event.key.key_id,
                certificate_serial=serial,
                certificate_expires_at=expires,
            )
            registry.terminals.save(updated)
            registry.audit.append(_audit_event(AuditAction.TERMINAL_PAIRED, updated, now, serial))
            registry.commit()
        self._succeeded = True
        logger.info(
            "terminal %s paired: key %s, certificate %s", self.terminal_id, event.key.key_id, serial
        )
        previous = current if current.state is TerminalState.PAIRED else None
        return PairingResult(
            terminal=updated,
            previous_key_id=previous.key_id if previous else None,
            previous_certificate_serial=previous.certificate_serial if previous else None,
        )

    async def close(self) -> None:
        """Stop listening (or release the serial port); idempotent."""
        server, self._server = self._server, None
        endpoint, self._endpoint = self._endpoint, None
        if server is not None:
            server.allow_pairing(None)
            await server.close()
        if endpoint is not None:
            if self._succeeded:
                await _linger(endpoint)
            await endpoint.close()
        if self._own_registry and self._registry is not None:
            _dispose(self._registry)
            self._registry = None


async def _linger(endpoint: LinkEndpoint) -> None:
    """Give the final pairing frame time to be acknowledged on a serial line (bounded)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + _SERIAL_LINGER
    while endpoint.connection.next_timer() is not None and loop.time() < until:
        await asyncio.sleep(0.02)


async def pair_terminal_interactively(
    settings: Settings,
    terminal_id: str,
    timeout: float = DEFAULT_PAIRING_TIMEOUT,
    *,
    on_invitation: Callable[[PairingInvitation], None] | None = None,
    registry: TerminalUnitOfWork | None = None,
    keyring: TerminalKeyRing | None = None,
    config: LinkConfig | None = None,
) -> PairingResult:
    """Pair (or re-pair) a registered terminal; see the module docstring.

    Args:
        settings: the installation's settings.
        terminal_id: the registered terminal.
        timeout: seconds to wait for the terminal.
        on_invitation: called once the code exists and the server listens, to show the code and
            the QR code to the admin.
        registry: the terminal registry (by default the settings' database).
        keyring: where the key goes (by default in ``settings.keys_dir``).
        config: link timeouts.

    Returns:
        The outcome.

    Raises:
        InvalidTerminal, UnknownTerminal: not a registered terminal.
        WrongLane: registered for another lane.
        StoreNotInitialised: ``shouyin init`` was not run.
        KeyRingError: the key ring does not unlock (passphrase) or cannot be written.
        ListenFailed: the link port or serial port cannot be opened.
        PairingNotCompleted: see :meth:`PairingSession.wait`.
    """
    session = PairingSession(
        settings, terminal_id, registry=registry, keyring=keyring, config=config
    )
    async with session:
        if on_invitation is not None:
            on_invitation(session.invitation)
        return await session.wait(timeout)


# -- revoking --------------------------------------------------------------------------------------


def revoke(
    settings: Settings,
    terminal_id: str,
    *,
    registry: TerminalUnitOfWork | None = None,
    keyring: TerminalKeyRing | None = None,
    reason: str = "revoked by the admin",
    now: datetime | None = None,
) -> RevocationResult:
    """Revoke a terminal: its certificate, then its key, then its record.

    Idempotent: revoking again only makes sure nothing is left. A terminal that is not registered
    but still has a certificate or key on this machine is cleaned up too.

    Args:
        settings: the installation's settings.
        terminal_id: the terminal.
        registry: the terminal registry (by default the settings' database).
        keyring: the key ring (by default in ``settings.keys_dir``).
        reason: kept in the revocation list.
        now: the current time (aware).

    Returns:
        What was done.

    Raises:
        InvalidTerminal: not a valid id.
        UnknownTerminal: neither registered nor holding a certificate or key here.
        WrongLane: registered for another lane (its certificate is in that lane's key store).
    """
    validate_terminal_id(terminal_id)
    at = now or _utc_now()
    own = registry is None
    uow = registry or _default_registry(settings)
    try:
        with uow:
            terminal = uow.terminals.get(terminal_id)
        if terminal is not None:
            _check_lane(terminal, settings)
        certificate_revoked = KeyStore(settings.keys_dir).revoke_terminal(terminal_id, at, reason)
        ring = keyring or TerminalKeyRing(settings.keys_dir)  # deleting needs no passphrase
        key_deleted = ring.delete(terminal_id)
        if terminal is None:
            if not (certificate_revoked or key_deleted):
                raise UnknownTerminal(terminal_id)
            return RevocationResult(terminal_id, None, certificate_revoked, key_deleted, False)
        already = terminal.state is TerminalState.REVOKED
        if not already:
            with uow:
                current = uow.terminals.get(terminal_id) or terminal
                terminal = current.revoked(at=at)
                uow.terminals.save(terminal)
                uow.audit.append(_audit_event(AuditAction.TERMINAL_REVOKED, terminal, at, reason))
                uow.commit()
        logger.info("terminal %s revoked (%s)", terminal_id, reason)
        return RevocationResult(terminal_id, terminal, certificate_revoked, key_deleted, already)
    finally:
        if own:
            _dispose(uow)
