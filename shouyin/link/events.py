"""Events a :class:`~shouyin.link.session.Connection` emits: frozen dataclasses, noun names.

The application (payments layer, simulator, adapters) reads them with ``next_event()`` after
feeding bytes or time. None of them carries key material; messages carry only masked card data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shouyin.link.errors import LinkError, RemoteProtocolError
from shouyin.link.messages import MessageBase, Request
from shouyin.link.security import LongTermKey
from shouyin.link.values import Capabilities, TerminalHealth

__all__ = [
    "ConnectionClosed",
    "Event",
    "FrameRefused",
    "HealthReported",
    "LateResponse",
    "LinkDead",
    "LoggedIn",
    "LoggedOut",
    "LoginFailed",
    "MessageReceived",
    "Paired",
    "PairingAborted",
    "PeerInfo",
    "PeerRejected",
    "RequestRefused",
    "ResponseTimedOut",
    "SessionReset",
    "TimeoutReason",
]


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Who is at the other end, as agreed at Login."""

    peer_id: str
    protocol_version: int
    capabilities: Capabilities
    key_id: str  # hex of the session key id, safe to log


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A valid message arrived: a request (POI side), a response (with the request it answers),
    a progress report or an event notification."""

    message: MessageBase
    in_reply_to: Request | None = None


@dataclass(frozen=True, slots=True)
class LateResponse:
    """A response arrived after its request timed out. For a payment this is the "approved but
    the cashier never heard" case: the payments layer must record it, not drop it."""

    message: MessageBase
    request: Request


class TimeoutReason(StrEnum):
    """Why a request timed out."""

    NO_RESPONSE = "no_response"  # the per-request timeout
    INACTIVITY = "inactivity"  # financial: no progress within payment_timeout
    HARD_LIMIT = "hard_limit"  # financial: the overall limit, progress or not


@dataclass(frozen=True, slots=True)
class ResponseTimedOut:
    """No response in time; the outcome of a financial request is now unknown (query it)."""

    request: Request
    reason: TimeoutReason


@dataclass(frozen=True, slots=True)
class RequestRefused:
    """(POI) A request was answered with a failure by the link itself, e.g. ``busy``."""

    request: Request
    reason: str


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """Login completed; sealed traffic may flow."""

    peer: PeerInfo


@dataclass(frozen=True, slots=True)
class LoginFailed:
    """Login was refused or timed out (``IncompatiblePeer``, ``SecurityError``, ``LinkTimeout``)."""

    error: LinkError


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """签退 completed; the session keys are gone."""


@dataclass(frozen=True, slots=True)
class SessionReset:
    """(POI) The peer logged in again while requests were open; they are forgotten by the link
    (the terminal keeps their outcome for status queries by ``ecr_ref``)."""

    abandoned: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class LinkDead:
    """The link stopped working: silence, exhausted retransmissions, broken stream or a lost
    transport. ``pending`` are requests left without an answer."""

    reason: str
    pending: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """``close()`` was called. ``pending`` are requests left without an answer."""

    pending: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class FrameRefused:
    """A frame or body was refused (bad framing, security, decoding or protocol rule); logged,
    counted, and (for security and decoding failures) answered with a plain ``Rejected``."""

    error: RemoteProtocolError


@dataclass(frozen=True, slots=True)
class PeerRejected:
    """The peer said it rejected something we sent. Unauthenticated: informational only."""


@dataclass(frozen=True, slots=True)
class HealthReported:
    """(ECR) A heartbeat answer carried the terminal's health."""

    health: TerminalHealth


@dataclass(frozen=True, slots=True)
class Paired:
    """Pairing succeeded: store ``key`` (and install the certificates) for ``peer_id``."""

    peer_id: str
    key: LongTermKey
    certificate: str | None = None
    ca_certificate: str | None = None


@dataclass(frozen=True, slots=True)
class PairingAborted:
    """Pairing failed (wrong code, refused, burnt code, timeout); nothing was agreed."""

    error: LinkError


Event = (
    MessageReceived
    | LateResponse
    | ResponseTimedOut
    | RequestRefused
    | LoggedIn
    | LoginFailed
    | LoggedOut
    | SessionReset
    | LinkDead
    | ConnectionClosed
    | FrameRefused
    | PeerRejected
    | HealthReported
    | Paired
    | PairingAborted
)
"""Any connection event."""
