"""Bytes <-> messages for one transport connection: framer + envelope + codec, no state machine.

:class:`Wire` turns received bytes into :class:`Received` messages (noting whether each arrived
sealed) and messages into bytes. It refuses, by itself, everything that is wrong whatever the
session state: framing errors (already NAKed by a serial framer), a sealed body before there are
session keys, an envelope that fails to open (tampered, replayed, wrong key...), a body that is
not a valid message, and any plain body that does not even decode once sealing is in force. Those
come out as :class:`Refused`; security and decoding refusals are answered with the fixed plain
notice ``{"type":"rejected"}``, which the peer reports as :class:`~shouyin.link.events.PeerRejected`
and never answers. Whether a well-formed message is acceptable *now* is the connection's call
(:mod:`shouyin.link.session`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shouyin.link.errors import (
    LocalProtocolError,
    MessageDecodeError,
    Refusal,
    RemoteProtocolError,
    SecurityError,
)
from shouyin.link.framing import Framer, FrameReceived, FrameRejected, LinkDown
from shouyin.link.messages import Message, MessageBase, Rejected, decode, encode
from shouyin.link.security import SecureChannel, is_sealed

__all__ = ["REJECTED_BODY", "Down", "NoticeRejected", "Received", "Refused", "Wire", "WireEvent"]

logger = logging.getLogger(__name__)

REJECTED_BODY = encode(Rejected())
"""The only thing a peer is told about a refused body."""


@dataclass(frozen=True, slots=True)
class Received:
    """A decoded message; ``body`` is its exact wire body (login hashes it), ``sealed`` says how
    it arrived."""

    message: Message
    body: bytes
    sealed: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """A body refused by the wire itself."""

    error: RemoteProtocolError


@dataclass(frozen=True, slots=True)
class NoticeRejected:
    """The peer's plain "rejected" notice arrived."""


@dataclass(frozen=True, slots=True)
class Down:
    """The framer gave up (retransmissions exhausted, stream broken)."""

    reason: str


WireEvent = Received | Refused | NoticeRejected | Down


class Wire:
    """Framing, sealing and encoding for one transport connection.

    Args:
        framer: a fresh framer for this transport connection.
        now: when the connection was made (starts the silence clock).
    """

    def __init__(self, framer: Framer, now: float) -> None:
        self.framer = framer
        self.channel: SecureChannel | None = None
        self.peer_limit: int | None = None  # the peer's max_frame_size, once known
        self.last_rx = now  # last valid message received
        self.last_tx = now  # last body sent
        self._outbox = bytearray()

    # -- sending -----------------------------------------------------------------------------

    def send_body(self, body: bytes, now: float) -> None:
        """Frame and queue an already encoded body.

        Raises:
            LocalProtocolError: the body exceeds our frame limit, the peer's, or the link is down.
        """
        if self.peer_limit is not None and len(body) > self.peer_limit:
            raise LocalProtocolError(
                f"body of {len(body)} bytes exceeds the peer's {self.peer_limit}"
            )
        self._outbox += self.framer.send(body, now)
        self.last_tx = now

    def send_plain(self, message: MessageBase, now: float) -> bytes:
        """Send ``message`` unsealed (login and pairing only); return its exact body."""
        body = encode(message)
        self.send_body(body, now)
        return body

    def send_sealed(self, message: MessageBase, now: float) -> None:
        """Send ``message`` sealed under the session keys.

        Raises:
            LocalProtocolError: there are no session keys yet.
        """
        if self.channel is None:
            raise LocalProtocolError("no session keys: log in first")
        self.send_body(self.channel.seal(encode(message)), now)

    def data_to_send(self) -> bytes:
        """Pop every byte due on the wire, in order."""
        self._outbox += self.framer.data_to_send()
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    # -- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the transport; then pull :meth:`next_event` until ``None``."""
        self.framer.receive_data(data, now)

    def handle_timer(self, now: float) -> None:
        """Let the framer retransmit or give up stalled frames; then pull :meth:`next_event`."""
        self.framer.handle_timer(now)

    def next_event(self, now: float) -> WireEvent | None:
        """The next event, decoded only now: one body at a time, because handling one (a login
        response) can change how the next is opened (its session keys)."""
        while (event := self.framer.next_event()) is not None:
            if isinstance(event, FrameReceived):
                return self._on_body(event.body, now)
            if isinstance(event, FrameRejected):
                return Refused(event.error)
            if isinstance(event, LinkDown):
                return Down(event.reason)
            # FrameAcknowledged: the framer already moved on to the next queued frame
        return None

    def refuse(self, error: RemoteProtocolError, now: float, *, answer: bool) -> Refused:
        """Log a refusal (and send the "rejected" notice if ``answer``)."""
        logger.warning("refused a body: %s", error)
        if answer and not self.framer.down:
            self.send_body(REJECTED_BODY, now)
        return Refused(error)

    def _on_body(self, body: bytes, now: float) -> WireEvent:
        sealed = is_sealed(body)
        try:
            if sealed:
                if self.channel is None:
                    raise SecurityError(Refusal.NO_SESSION, "sealed body before login")
                message = decode(self.channel.open(body))
            else:
                message = decode(body)
        except (SecurityError, MessageDecodeError) as error:
            refusal: RemoteProtocolError = error
            if not sealed and self.channel is not None:
                refusal = SecurityError(Refusal.UNSEALED, "undecodable plain body")
            return self.refuse(refusal, now, answer=True)
        if isinstance(message, Rejected) and not sealed:
            logger.info("the peer rejected something we sent")
            return NoticeRejected()
        if sealed:
            self.last_rx = now
        return Received(message, body, sealed)
