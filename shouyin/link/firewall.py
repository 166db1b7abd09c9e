"""The link's "firewall": who may connect, how often, and matching host firewall rules. Pure.

Four gates stand between the network and the terminal link (DESIGN.md section 4):

1. **Bind**: the server listens only on :attr:`FirewallPolicy.listen_addresses` (loopback by
   default); the I/O adapter binds :meth:`FirewallPolicy.link_endpoints`.
2. **Source networks**: :meth:`Firewall.check_connection` refuses a source outside
   :attr:`FirewallPolicy.allowed_networks` (CIDRs, IPv4 and IPv6; IPv4-mapped IPv6 addresses from
   dual-stack sockets count as IPv4). The default is **loopback only**: a fresh install is
   unreachable from the network until the admin adds the store LAN (e.g. ``192.168.1.0/24``);
   guessing "all private ranges" would also admit guest Wi-Fi and neighbouring networks.
3. **Rate limit and lockout**, per source (an IPv4 address, or an IPv6 /64 since one host can
   hold a whole /64): a token bucket allows :attr:`~FirewallPolicy.max_attempts` connection
   attempts per :attr:`~FirewallPolicy.attempt_window`; :meth:`Firewall.record_failure` counts
   authentication failures, wrong pairing codes and bad frames, and
   :attr:`~FirewallPolicy.max_failures` of them within :attr:`~FirewallPolicy.failure_window`
   lock the source out for :attr:`~FirewallPolicy.lockout_duration`, doubling at each repeated
   lockout up to :attr:`~FirewallPolicy.max_lockout_duration`; :meth:`Firewall.record_success`
   (an authenticated, paired terminal) clears the count and the escalation.
4. **Identity**: after the TLS handshake (and
   :func:`shouyin.link.pki.authenticate_terminal_certificate`), :meth:`Firewall.check_identity`
   admits only paired, non-revoked terminal ids.

Every refusal is logged (module logger, WARNING) with the source and the reason, never a code, a
key or a message body, and counted in :attr:`Firewall.refusals` for health reports. Memory is
bounded: at most :attr:`~FirewallPolicy.max_tracked_sources` sources are tracked (least recently
seen evicted first; a refused attempt counts as "seen", so an active attacker stays tracked), and
only sources inside the allowlist are ever tracked, so a flood from outside costs nothing.

Why brute-forcing a pairing code is hopeless
-------------------------------------------
A pairing code is 8 random digits: 10^8 equally likely values. Pairing runs SPAKE2 keyed by the
code, so an eavesdropper learns nothing to test guesses offline: every guess is an online attempt
against the server. :class:`shouyin.link.pairing.PairingCode` burns a code after 3 failed attempts
(from any sources together) and it expires after 10 minutes, so whatever the attacker does, one
code falls with probability at most 3 / 10^8 = 3 x 10^-8. Codes exist only while an admin is
registering a terminal; even if a fresh code were issued every 10 minutes around the clock, a 50 %
chance would take about 2.3 x 10^7 codes, i.e. some 440 years. Independently of burning, a single
source gets at most :attr:`~FirewallPolicy.max_failures` (5) wrong attempts before a 15 minute
lockout, then 30 min, 1 h, ... up to 24 h per 5 attempts: after the first day about 5 guesses a
day, 10^7 days for half the code space, and the rate limit caps attempts before any of that.

Host firewall rules
-------------------
:func:`render_nftables` prints a complete ``table inet shouyin`` that filters **only shouyin's TCP
ports**: established traffic and loopback pass, the allowed CIDRs pass (``ip`` and ``ip6``
separately), the rest to those ports is dropped. SSH and every other service are untouched (the
chain's policy is accept), so loading it can never lock the admin out. :func:`render_iptables`
prints the same as an idempotent ``sh`` script for iptables/ip6tables hosts, where allowed traffic
goes back (``RETURN``) to ``INPUT`` so that the host's own rules still apply. Either way shouyin's
rules only ever *drop*: on a host whose own firewall drops by default, its ports must still be
opened there.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections import Counter, OrderedDict, deque
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, IPvAnyNetwork, model_validator

__all__ = [
    "DEFAULT_LINK_PORT",
    "DEFAULT_WEB_PORT",
    "Decision",
    "FailureKind",
    "Firewall",
    "FirewallPolicy",
    "RefusalReason",
    "render_iptables",
    "render_nftables",
]

logger = logging.getLogger(__name__)

DEFAULT_LINK_PORT = 8583
"""Default TCP/TLS port of the terminal link (a nod to ISO 8583)."""
DEFAULT_WEB_PORT = 8080
"""Default port of the web interface."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class RefusalReason(StrEnum):
    """Why a connection or an identity was refused."""

    INVALID_SOURCE = "invalid_source"
    NOT_IN_ALLOWLIST = "not_in_allowlist"
    RATE_LIMITED = "rate_limited"
    LOCKED_OUT = "locked_out"
    NOT_PAIRED = "not_paired"
    REVOKED = "revoked"


class FailureKind(StrEnum):
    """What a source did wrong (all count the same towards a lockout)."""

    AUTHENTICATION = "authentication"
    """TLS handshake or certificate refused, unknown or revoked identity, failed Login."""
    PAIRING_CODE = "pairing_code"
    """A wrong (or expired, used, burnt) pairing code."""
    BAD_FRAME = "bad_frame"
    """A malformed, oversize, tampered or replayed frame."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The firewall's answer.

    Attributes:
        allowed: go ahead (``True``) or close the connection (``False``).
        reason: why not, when refused.
        retry_after: seconds until the source may try again, for rate limits and lockouts.
    """

    allowed: bool
    reason: RefusalReason | None = None
    retry_after: float | None = None


_ALLOW = Decision(True)


class FirewallPolicy(BaseModel):
    """Where the link listens, who may connect, and how hard failures are punished.

    Attributes:
        listen_addresses: addresses the servers bind (default loopback only).
        interfaces: network interface names the rendered host rules accept traffic on (empty:
            any interface).
        link_port: the terminal link's TCP/TLS port.
        web_port: the web interface's port, or ``None`` if it is not served.
        allowed_networks: source CIDRs allowed to connect (default loopback only; add the store
            LAN). Host bits must be zero (``192.168.1.0/24``, not ``192.168.1.7/24``).
        max_attempts: connection attempts per source per ``attempt_window`` (token bucket).
        attempt_window: seconds.
        max_failures: failures within ``failure_window`` that lock a source out.
        failure_window: seconds.
        lockout_duration: seconds of the first lockout; each repeated lockout doubles it.
        max_lockout_duration: upper bound of a lockout, seconds.
        max_tracked_sources: bound on the sources remembered (memory).
        ipv6_prefix_length: IPv6 sources are tracked per prefix of this length.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    listen_addresses: tuple[IPvAnyAddress, ...] = Field(
        default=(ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")), min_length=1
    )
    interfaces: tuple[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,15}$")],
        ...,
    ] = ()
    link_port: Port = DEFAULT_LINK_PORT
    web_port: Port | None = DEFAULT_WEB_PORT
    allowed_networks: tuple[IPvAnyNetwork, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    max_attempts: int = Field(default=10, ge=1, le=10_000)
    attempt_window: Seconds = 60.0
    max_failures: int = Field(default=5, ge=1, le=1_000)
    failure_window: Seconds = 600.0
    lockout_duration: Seconds = 900.0
    max_lockout_duration: Seconds = 86_400.0
    max_tracked_sources: int = Field(default=4096, ge=1, le=1_000_000)
    ipv6_prefix_length: int = Field(default=64, ge=1, le=128)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.web_port == self.link_port:
            raise ValueError("link_port and web_port must differ")
        if self.max_lockout_duration < self.lockout_duration:
            raise ValueError("max_lockout_duration must be >= lockout_duration")
        return self

    @property
    def ports(self) -> tuple[int, ...]:
        """The TCP ports shouyin serves, ascending."""
        return tuple(sorted({self.link_port} | ({self.web_port} if self.web_port else set())))

    def networks(self, version: int) -> tuple[IPNetwork, ...]:
        """The allowed networks of one IP version, overlaps merged, in address order.

        Args:
            version: 4 or 6.

        Returns:
            The collapsed networks.
        """
        if version == 4:
            v4 = [n for n in self.allowed_networks if isinstance(n, ipaddress.IPv4Network)]
            return tuple(ipaddress.collapse_addresses(v4))
        v6 = [n for n in self.allowed_networks if isinstance(n, ipaddress.IPv6Network)]
        return tuple(ipaddress.collapse_addresses(v6))

    def allows(self, address: IPAddress) -> bool:
        """Whether a (normalised) source address is inside the allowlist."""
        return any(address in network for network in self.allowed_networks)

    def link_endpoints(self) -> tuple[tuple[str, int], ...]:
        """The ``(host, port)`` pairs the link server must bind, and only those."""
        return tuple((str(address), self.link_port) for address in self.listen_addresses)


# --------------------------------------------------------------------------- runtime


@dataclass(slots=True)
class _Source:
    tokens: float
    refilled_at: float
    failures: deque[float]
    locked_until: float = -math.inf
    lockouts: int = 0


def _normalise(source_ip: str | IPAddress) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(source_ip) if isinstance(source_ip, str) else source_ip
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            return ipaddress.IPv6Address(int(address))
    return address


def _printable(source_ip: object) -> str:
    # A refused "address" is attacker-controlled text: log a bounded, escaped form.
    return repr(str(source_ip)[:64])


@dataclass
class Firewall:
    """The runtime side of a :class:`FirewallPolicy`: counters per source, decisions, logs.

    Sans-I/O: every method takes ``now`` (seconds on any monotonic clock the caller uses); the I/O
    adapter calls :meth:`check_connection` on accept, :meth:`record_failure` on each failure and
    :meth:`record_success` once a paired terminal logged in, and closes the connection whenever a
    :class:`Decision` is not ``allowed``.

    Attributes:
        policy: the policy.
        refusals: how many refusals of each reason so far.
    """

    policy: FirewallPolicy
    refusals: Counter[RefusalReason] = field(default_factory=Counter, init=False)
    _sources: OrderedDict[str, _Source] = field(default_factory=OrderedDict, init=False, repr=False)

    @property
    def tracked_sources(self) -> int:
        """How many sources are remembered (at most ``policy.max_tracked_sources``)."""
        return len(self._sources)

    def _key(self, address: IPAddress) -> str:
        if isinstance(address, ipaddress.IPv6Address):
            prefix = self.policy.ipv6_prefix_length
            return str(ipaddress.IPv6Network((address, prefix), strict=False))
        return str(address)

    def _source(self, key: str, now: float) -> _Source:
        state = self._sources.get(key)
        if state is None:
            if len(self._sources) >= self.policy.max_tracked_sources:
                self._evict(now)
            state = _Source(
                tokens=float(self.policy.max_attempts),
                refilled_at=now,
                failures=deque(maxlen=self.policy.max_failures),
            )
            self._sources[key] = state
        else:
            self._sources.move_to_end(key)
        return state

    def _evict(self, now: float) -> None:
        """Forget the least recently seen source that is not locked out.

        Locked-out sources are kept, so that cycling through many addresses (an IPv6 range
        offers plenty) cannot flush one's own lockout; only when every tracked source is locked
        does the oldest go, because memory must stay bounded.
        """
        for key, state in self._sources.items():
            if state.locked_until <= now:
                del self._sources[key]
                return
        self._sources.popitem(last=False)

    def _refuse(
        self, source: str, reason: RefusalReason, retry_after: float | None = None, detail: str = ""
    ) -> Decision:
        self.refusals[reason] += 1
        logger.warning(
            "link firewall refused %s: %s%s", source, reason.value, f" ({detail})" if detail else ""
        )
        return Decision(False, reason, retry_after)

    def check_connection(self, source_ip: str | IPAddress, now: float) -> Decision:
        """Decide whether to accept a new connection from ``source_ip``.

        Args:
            source_ip: the peer address (``str`` or ``ipaddress`` object).
            now: the current time, seconds.

        Returns:
            ``Decision(True)``, or a refusal: ``INVALID_SOURCE``, ``NOT_IN_ALLOWLIST``,
            ``LOCKED_OUT`` or ``RATE_LIMITED`` (the last two with ``retry_after``).
        """
        address = _normalise(source_ip)
        if address is None:
            return self._refuse(_printable(source_ip), RefusalReason.INVALID_SOURCE)
        if not self.policy.allows(address):
            return self._refuse(str(address), RefusalReason.NOT_IN_ALLOWLIST)
        state = self._source(self._key(address), now)
        if now < state.locked_until:
            return self._refuse(
                str(address), RefusalReason.LOCKED_OUT, retry_after=state.locked_until - now
            )
        rate = self.policy.max_attempts / self.policy.attempt_window
        elapsed = max(0.0, now - state.refilled_at)
        state.tokens = min(float(self.policy.max_attempts), state.tokens + elapsed * rate)
        state.refilled_at = max(state.refilled_at, now)
        if state.tokens < 1.0:
            return self._refuse(
                str(address), RefusalReason.RATE_LIMITED, retry_after=(1.0 - state.tokens) / rate
            )
        state.tokens -= 1.0
        return _ALLOW

    def record_failure(self, source_ip: str | IPAddress, kind: FailureKind, now: float) -> Decision:
        """Count a failure; lock the source out when it reaches ``max_failures`` in the window.

        Args:
            source_ip: the peer address.
            kind: what went wrong.
            now: the current time, seconds.

        Returns:
            ``Decision(True)`` while under the limit; ``LOCKED_OUT`` (with ``retry_after``) when
            this failure locked the source out, or when it was already locked out; the refusal
            from :meth:`check_connection` for invalid or non-allowlisted sources.
        """
        address = _normalise(source_ip)
        if address is None:
            return self._refuse(_printable(source_ip), RefusalReason.INVALID_SOURCE)
        if not self.policy.allows(address):
            return self._refuse(str(address), RefusalReason.NOT_IN_ALLOWLIST)
        state = self._source(self._key(address), now)
        if now < state.locked_until:
            return self._refuse(
                str(address), RefusalReason.LOCKED_OUT, retry_after=state.locked_until - now
            )
        horizon = now - self.policy.failure_window
        while state.failures and state.failures[0] <= horizon:
            state.failures.popleft()
        state.failures.append(now)
        logger.info(
            "link failure from %s: %s (%d/%d)",
            address,
            kind.value,
            len(state.failures),
            self.policy.max_failures,
        )
        if len(state.failures) < self.policy.max_failures:
            return _ALLOW
        state.failures.clear()
        state.lockouts += 1
        duration = min(
            self.policy.lockout_duration * 2.0 ** min(state.lockouts - 1, 64),
            self.policy.max_lockout_duration,
        )
        state.locked_until = now + duration
        return self._refuse(
            str(address),
            RefusalReason.LOCKED_OUT,
            retry_after=duration,
            detail=f"{self.policy.max_failures} failures, last {kind.value}; "
            f"locked for {duration:.0f} s",
        )

    def record_success(self, source_ip: str | IPAddress, now: float) -> None:
        """A paired terminal authenticated from this source: forget its failures and escalation.

        An active lockout is not lifted (a connection that was already open may still succeed).

        Args:
            source_ip: the peer address.
            now: the current time, seconds.
        """
        address = _normalise(source_ip)
        if address is None:
            return
        state = self._sources.get(self._key(address))
        if state is not None:
            state.failures.clear()
            if now >= state.locked_until:
                state.lockouts = 0

    def check_identity(
        self,
        terminal_id: str,
        paired_ids: AbstractSet[str],
        revoked: AbstractSet[str] = frozenset(),
        source_ip: str | IPAddress | None = None,
    ) -> Decision:
        """Admit only paired, non-revoked terminal identities.

        Refusals are logged; the caller should also :meth:`record_failure` them as
        ``AUTHENTICATION``.

        Args:
            terminal_id: the authenticated terminal id (from its certificate or its Login).
            paired_ids: the ids of the paired terminals.
            revoked: ids revoked (and not paired again since).
            source_ip: for the log line only.

        Returns:
            ``Decision(True)``, or ``REVOKED`` / ``NOT_PAIRED``.
        """
        where = f"terminal {_printable(terminal_id)}"
        if source_ip is not None:
            where += f" from {_printable(source_ip)}"
        if terminal_id in revoked:
            return self._refuse(where, RefusalReason.REVOKED)
        if terminal_id not in paired_ids:
            return self._refuse(where, RefusalReason.NOT_PAIRED)
        return _ALLOW


# --------------------------------------------------------------------------- host rules


def _join(items: list[str]) -> str:
    return ", ".join(items)


def render_nftables(policy: FirewallPolicy) -> str:
    """Host firewall rules for nftables: a complete ``table inet shouyin``.

    Loading the output with ``nft -f`` (re)creates the table atomically; only shouyin's TCP ports
    are filtered. See the module docstring.

    Args:
        policy: the policy.

    Returns:
        The ruleset text.
    """
    ports = _join([str(p) for p in policy.ports])
    v4 = [str(n) for n in policy.networks(4)]
    v6 = [str(n) for n in policy.networks(6)]
    if not policy.interfaces:
        iif = ""
    elif len(policy.interfaces) == 1:
        iif = f'iifname "{policy.interfaces[0]}" '
    else:
        iif = "iifname { " + _join([f'"{name}"' for name in policy.interfaces]) + " } "
    lines = [
        "#!/usr/sbin/nft -f",
        "# shouyin host firewall (nftables), from `shouyin firewall --format nftables`.",
        f"# Filters only shouyin's TCP ports ({ports}); SSH and other services are untouched.",
        "# shouyin listens on " + _join([str(a) for a in policy.listen_addresses]) + ".",
        "# Load with `nft -f FILE`: it replaces any previous shouyin table atomically.",
        "",
        "table inet shouyin",
        "delete table inet shouyin",
        "",
        "table inet shouyin {",
        "\tset shouyin_ports {",
        "\t\ttype inet_service",
        f"\t\telements = {{ {ports} }}",
        "\t}",
    ]
    for name, kind, networks in (
        ("allowed_ipv4", "ipv4_addr", v4),
        ("allowed_ipv6", "ipv6_addr", v6),
    ):
        if networks:
            lines += [
                "",
                f"\tset {name} {{",
                f"\t\ttype {kind}",
                "\t\tflags interval",
                f"\t\telements = {{ {_join(networks)} }}",
                "\t}",
            ]
    lines += [
        "",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        "\t\tct state established,related accept",
        '\t\tiifname "lo" accept',
    ]
    if v4:
        lines.append(f"\t\t{iif}tcp dport @shouyin_ports ip saddr @allowed_ipv4 accept")
    if v6:
        lines.append(f"\t\t{iif}tcp dport @shouyin_ports ip6 saddr @allowed_ipv6 accept")
    lines += [
        "\t\ttcp dport @shouyin_ports counter drop",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_iptables(policy: FirewallPolicy) -> str:
    """Host firewall rules for iptables/ip6tables, as an idempotent POSIX ``sh`` script.

    The script (re)builds a ``SHOUYIN`` chain in the ``filter`` table of each IP version and makes
    sure ``INPUT`` jumps to it once for TCP. In the chain, traffic not for shouyin's ports,
    established traffic, loopback and the allowed CIDRs ``RETURN`` to ``INPUT``; the rest is
    dropped.

    Args:
        policy: the policy.

    Returns:
        The script text.
    """
    ports = ",".join(str(p) for p in policy.ports)
    interfaces: list[str | None] = list(policy.interfaces) or [None]
    lines = [
        "#!/bin/sh",
        "# shouyin host firewall (iptables), from `shouyin firewall --format iptables`.",
        f"# Filters only shouyin's TCP ports ({ports}); SSH and other services are untouched.",
        "# shouyin listens on " + _join([str(a) for a in policy.listen_addresses]) + ".",
        "# Run as root; running it again replaces the previous shouyin rules.",
        "set -e",
    ]
    for label, tool, networks in (
        ("IPv4", "iptables", policy.networks(4)),
        ("IPv6", "ip6tables", policy.networks(6)),
    ):
        lines += [
            "",
            f"# {label}",
            f"{tool} -N SHOUYIN 2>/dev/null || {tool} -F SHOUYIN",
            f"{tool} -A SHOUYIN -p tcp -m multiport ! --dports {ports} -j RETURN",
            f"{tool} -A SHOUYIN -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
            f"{tool} -A SHOUYIN -i lo -j RETURN",
        ]
        for network in networks:
            for interface in interfaces:
                iif = f"-i {interface} " if interface else ""
                lines.append(f"{tool} -A SHOUYIN {iif}-s {network} -j RETURN")
        lines += [
            f"{tool} -A SHOUYIN -j DROP",
            f"{tool} -C INPUT -p tcp -j SHOUYIN 2>/dev/null || {tool} -I INPUT -p tcp -j SHOUYIN",
        ]
    return "\n".join(lines) + "\n"
