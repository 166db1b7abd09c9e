"""Connection settings: timeouts and compatibility rules, one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass

from shouyin.link.values import PaymentKind

__all__ = ["PROTOCOL_VERSION", "LinkConfig"]

PROTOCOL_VERSION = 1
"""The link protocol version this code speaks."""


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Timeouts (seconds) and compatibility rules of a connection.

    Attributes:
        protocol_versions: versions this side speaks; Login picks the highest common one.
        heartbeat_interval: the ECR sends a heartbeat after this long without sending anything.
        dead_after: a logged-in link with nothing valid received for this long is dead.
        request_timeout: answer time for non-financial requests.
        login_timeout: time for the whole Login handshake.
        pairing_timeout: time for the whole pairing exchange.
        payment_timeout: financial requests: restarted by every progress message.
        payment_hard_limit: financial requests: overall limit, progress or not.
        required_payment_kinds: the peer must offer these (else ``IncompatiblePeer``).
        min_peer_frame_size: the peer must accept bodies at least this large.
        late_response_memory: how many timed-out requests are remembered to report late answers.

    Raises:
        ValueError: a timeout is not positive, ``dead_after`` does not exceed
            ``heartbeat_interval``, the hard limit is below the payment timeout, or no version.
    """

    protocol_versions: tuple[int, ...] = (PROTOCOL_VERSION,)
    heartbeat_interval: float = 2.0
    dead_after: float = 6.0
    request_timeout: float = 10.0
    login_timeout: float = 5.0
    pairing_timeout: float = 10.0
    payment_timeout: float = 30.0
    payment_hard_limit: float = 180.0
    required_payment_kinds: tuple[PaymentKind, ...] = ()
    min_peer_frame_size: int = 1024
    late_response_memory: int = 64

    def __post_init__(self) -> None:
        timeouts = (
            self.heartbeat_interval,
            self.dead_after,
            self.request_timeout,
            self.login_timeout,
            self.pairing_timeout,
            self.payment_timeout,
            self.payment_hard_limit,
        )
        if min(timeouts) <= 0:
            raise ValueError("timeouts must be positive")
        if self.dead_after <= self.heartbeat_interval:
            raise ValueError("dead_after must exceed heartbeat_interval, or idle links die")
        if self.payment_hard_limit < self.payment_timeout:
            raise ValueError("payment_hard_limit must be at least payment_timeout")
        if not self.protocol_versions:
            raise ValueError("at least one protocol version")
