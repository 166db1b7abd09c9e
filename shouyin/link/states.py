"""The connection state machine: every state, every transition and every message rule, here.

Both ends run the same :class:`~shouyin.link.session.Connection` class, one in the ECR role (the
cashier system, 收银) and one in the POI role (the payment terminal, 电签POS). Each keeps its own
state; the protocol keeps the two in step.

States
------
``DISCONNECTED``
    No transport. The adapter calls ``connection_made(now)`` once a port is open or a TCP/TLS
    connection is up.
``CONNECTED``
    Transport up, no session keys. Only unsealed messages are possible: a Login request (ECR ->
    POI) or a pairing exchange (started by the POI).
``PAIRING``
    SPAKE2 pairing in progress (see :mod:`shouyin.link.pairing`); ends back in ``CONNECTED``,
    with a long-term key on success.
``LOGGING_IN``
    签到 in progress: the ECR sent its Login request (versions, capabilities, nonce); the POI
    answered and both derived session keys from the long-term key and both nonces. Each side
    then sends a sealed ``LoginConfirm``; the one that receives its peer's confirm (after having
    sent its own) is ``READY``. A refused login (no common version, a missing capability, an
    unknown key) goes back to ``CONNECTED``.
``READY``
    Logged in, no financial transaction in flight. Everything is sealed from here on; an
    unsealed body is refused (only the plain ``Rejected`` notice is read, never answered). The
    ECR sends a heartbeat whenever it sent nothing for ``heartbeat_interval``; either side
    declares the link dead when it received nothing valid for ``dead_after``.
``BUSY``
    A financial transaction (Payment, Refund, Reversal, Reconciliation) is in flight. There is
    at most one per terminal: the ECR gets :class:`~shouyin.link.errors.Busy` for a second one and
    a POI answers one with ``error_condition=busy``. Status queries, aborts, diagnosis, print,
    display and heartbeats still flow. The ECR's payment timeout restarts on every progress
    message from the terminal; a hard limit counted from the request holds regardless.
``LOGGING_OUT``
    签退 sent; the answer (or its timeout) returns to ``CONNECTED`` and drops the keys.
``CLOSED``
    ``close()`` was called; nothing more happens. Final.

Leaving: from any state but ``CLOSED``, a lost transport, exhausted retransmissions, a broken
stream or silence longer than ``dead_after`` go to ``DISCONNECTED`` with a ``LinkDead`` event
listing the requests left without an answer (the payments layer then queries by ``ecr_ref``).
A terminal that receives a new Login request naming its pairing key while logged in (the cashier
system restarted on a serial line, where no connection event exists) starts the new session at
once, reporting the requests it abandons in ``SessionReset``; the new login still has to prove
knowledge of the long-term key before anything sealed is accepted. A Login request naming any
other key is refused without touching the live session.

:data:`TRANSITIONS` holds every state change; a pair missing from it is a protocol error.
:data:`MESSAGE_RULES` says who may send each sealed message and in which states;
:data:`PLAIN_RULES` lists the only unsealed messages ever read (besides the ``Rejected`` notice).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from shouyin.link.messages import (
    AbortRequest,
    AbortResponse,
    AdminRequest,
    AdminResponse,
    DiagnosisRequest,
    DiagnosisResponse,
    DisplayRequest,
    DisplayResponse,
    EventNotification,
    HeartbeatRequest,
    HeartbeatResponse,
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
    PaymentRequest,
    PaymentResponse,
    PrintRequest,
    PrintResponse,
    ReconciliationRequest,
    ReconciliationResponse,
    RefundRequest,
    RefundResponse,
    ReversalRequest,
    ReversalResponse,
    TransactionStatusRequest,
    TransactionStatusResponse,
)

__all__ = [
    "FINANCIAL",
    "MESSAGE_RULES",
    "PLAIN_RULES",
    "TRANSITIONS",
    "ConnectionState",
    "MessageRule",
    "Role",
    "Trigger",
]


class Role(Enum):
    """Which end of the link a connection is."""

    ECR = "ecr"  # the cashier system: sends requests
    POI = "poi"  # the payment terminal: answers, reports progress and events

    @property
    def peer(self) -> Role:
        """The other end."""
        return Role.POI if self is Role.ECR else Role.ECR


class ConnectionState(Enum):
    """States of a connection (see the module docstring)."""

    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    PAIRING = "pairing"
    LOGGING_IN = "logging_in"
    READY = "ready"
    BUSY = "busy"
    LOGGING_OUT = "logging_out"
    CLOSED = "closed"


class Trigger(Enum):
    """What moves the machine."""

    CONNECTION_MADE = "connection_made"
    CONNECTION_LOST = "connection_lost"  # transport gone, link dead, retransmissions exhausted
    PAIRING_STARTED = "pairing_started"
    PAIRING_ENDED = "pairing_ended"
    LOGIN_STARTED = "login_started"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    FINANCIAL_STARTED = "financial_started"
    FINANCIAL_ENDED = "financial_ended"
    LOGOUT_STARTED = "logout_started"
    LOGOUT_ENDED = "logout_ended"
    CLOSE = "close"


_S = ConnectionState
_T = Trigger

_ALWAYS = {_T.CONNECTION_LOST: _S.DISCONNECTED, _T.CLOSE: _S.CLOSED}

TRANSITIONS: dict[ConnectionState, dict[Trigger, ConnectionState]] = {
    _S.DISCONNECTED: {_T.CONNECTION_MADE: _S.CONNECTED, _T.CLOSE: _S.CLOSED},
    _S.CONNECTED: {
        _T.PAIRING_STARTED: _S.PAIRING,
        _T.LOGIN_STARTED: _S.LOGGING_IN,
        **_ALWAYS,
    },
    _S.PAIRING: {_T.PAIRING_ENDED: _S.CONNECTED, **_ALWAYS},
    _S.LOGGING_IN: {
        _T.LOGIN_STARTED: _S.LOGGING_IN,  # the ECR retried its login
        _T.LOGIN_SUCCEEDED: _S.READY,
        _T.LOGIN_FAILED: _S.CONNECTED,
        **_ALWAYS,
    },
    _S.READY: {
        _T.FINANCIAL_STARTED: _S.BUSY,
        _T.LOGOUT_STARTED: _S.LOGGING_OUT,
        _T.LOGIN_STARTED: _S.LOGGING_IN,  # fresh keys, or the peer restarted
        **_ALWAYS,
    },
    _S.BUSY: {
        _T.FINANCIAL_ENDED: _S.READY,
        _T.LOGIN_STARTED: _S.LOGGING_IN,  # POI only: the cashier system restarted mid-payment
        **_ALWAYS,
    },
    _S.LOGGING_OUT: {_T.LOGOUT_ENDED: _S.CONNECTED, **_ALWAYS},
    _S.CLOSED: {},
}
"""``TRANSITIONS[state][trigger]`` is the next state; a missing entry is a protocol error."""


@dataclass(frozen=True, slots=True)
class MessageRule:
    """Who may send a sealed message, and in which states (of the sender and the receiver)."""

    sender: Role
    states: frozenset[ConnectionState]
    financial: bool = False


_IDLE = frozenset({_S.READY})
_SESSION = frozenset({_S.READY, _S.BUSY})


def _rule(sender: Role, states: frozenset[ConnectionState], financial: bool = False) -> MessageRule:
    return MessageRule(sender, states, financial)


MESSAGE_RULES: dict[type[MessageBase], MessageRule] = {
    # Financial requests: one at a time; they move READY -> BUSY.
    PaymentRequest: _rule(Role.ECR, _IDLE, financial=True),
    RefundRequest: _rule(Role.ECR, _IDLE, financial=True),
    ReversalRequest: _rule(Role.ECR, _IDLE, financial=True),
    ReconciliationRequest: _rule(Role.ECR, _IDLE, financial=True),
    # Requests that may overlap a financial one.
    TransactionStatusRequest: _rule(Role.ECR, _SESSION),
    AbortRequest: _rule(Role.ECR, _SESSION),
    DiagnosisRequest: _rule(Role.ECR, _SESSION),
    PrintRequest: _rule(Role.ECR, _SESSION),
    DisplayRequest: _rule(Role.ECR, _SESSION),
    HeartbeatRequest: _rule(Role.ECR, _SESSION),
    # Requests only when idle.
    AdminRequest: _rule(Role.ECR, _IDLE),
    LogoutRequest: _rule(Role.ECR, _IDLE),
    # Terminal -> cashier system.
    PaymentResponse: _rule(Role.POI, _SESSION),
    RefundResponse: _rule(Role.POI, _SESSION),
    ReversalResponse: _rule(Role.POI, _SESSION),
    ReconciliationResponse: _rule(Role.POI, _SESSION),
    TransactionStatusResponse: _rule(Role.POI, _SESSION),
    AbortResponse: _rule(Role.POI, _SESSION),
    DiagnosisResponse: _rule(Role.POI, _SESSION),
    PrintResponse: _rule(Role.POI, _SESSION),
    DisplayResponse: _rule(Role.POI, _SESSION),
    HeartbeatResponse: _rule(Role.POI, _SESSION),
    AdminResponse: _rule(Role.POI, _SESSION),
    LogoutResponse: _rule(Role.POI, frozenset({_S.READY, _S.LOGGING_OUT})),
    PaymentProgress: _rule(Role.POI, frozenset({_S.BUSY})),
    EventNotification: _rule(Role.POI, frozenset({_S.READY, _S.BUSY, _S.LOGGING_OUT})),
}
"""Sealed application messages: sender role and the states in which they may flow."""

FINANCIAL: frozenset[type[MessageBase]] = frozenset(
    message for message, rule in MESSAGE_RULES.items() if rule.financial
)
"""Request types of which at most one may be in flight per terminal."""

PLAIN_RULES: dict[tuple[Role, type[MessageBase]], frozenset[ConnectionState]] = {
    (Role.POI, LoginRequest): frozenset({_S.CONNECTED, _S.LOGGING_IN, _S.READY, _S.BUSY}),
    (Role.ECR, LoginResponse): frozenset({_S.LOGGING_IN}),
    (Role.ECR, PairingRequest): frozenset({_S.CONNECTED}),
    (Role.POI, PairingChallenge): frozenset({_S.PAIRING}),
    (Role.ECR, PairingConfirm): frozenset({_S.PAIRING}),
    (Role.POI, PairingComplete): frozenset({_S.PAIRING}),
}
"""``PLAIN_RULES[(receiving role, type)]``: states in which that unsealed message is read. Any
other unsealed body is refused (as ``unsealed`` once session keys exist)."""
