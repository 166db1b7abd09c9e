"""Framing: cut a byte stream into bodies and back, sans-I/O.

Two framers share one surface, so the session does not care which transport is underneath:

``receive_data(data, now)``
    feed bytes read from the transport (any number of pieces, several frames per read);
``next_event()``
    the next :class:`FrameReceived`, :class:`FrameAcknowledged`, :class:`FrameRejected` or
    :class:`LinkDown`, or ``None`` when more input (or time) is needed;
``send(body, now) -> bytes``
    queue a body; returns every byte now due on the wire (the same as :meth:`data_to_send`);
``data_to_send()``
    bytes to write: frames, ACK/NAK answers, retransmissions;
``next_timer()`` / ``handle_timer(now)``
    when to call back, and what to do then (ACK wait, partial frame give-up).

Nothing here reads a clock or touches a port: time is the ``now`` argument (seconds, any epoch).

Serial framing (RS232 / USB-CDC), byte by byte::

    offset  size  field
    0       1     STX  0x02
    1       2     LEN  length of BODY, unsigned big-endian (0..max_body)
    3       LEN   BODY
    3+LEN   1     ETX  0x03
    4+LEN   2     CRC  CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0)
                       over LEN..ETX inclusive, big-endian

Overhead: 6 bytes per frame, plus the 1-byte answer. The receiver answers each complete frame
with ACK (0x06) when it is well formed or NAK (0x15) when the ETX or CRC is wrong or LEN is over
the limit. The sender keeps one frame outstanding (stop-and-wait); it retransmits on NAK or when
no ACK arrives within ``ack_timeout + byte_time * len(frame)``, up to ``max_retransmissions`` (3)
times, then emits :class:`LinkDown`. Bytes between frames that are not STX/ACK/NAK (noise, a
terminal waking up) are skipped; a refused frame is skipped by rescanning from the byte after its
STX, so a real frame hidden behind a corrupted header is still found ("resynchronising on STX").
ACK/NAK bytes inside a refused frame's span are not taken for answers, and candidate frames
starting inside it are skipped silently (ciphertext is full of 0x02 bytes). A partial frame that
stops growing for ``inter_byte_timeout`` is given up the same way, and so is one that turns out to
contain a complete valid frame further on (a false STX in wake-up noise must not swallow the real
frames behind it until they happen to fill its bogus LEN). A NAK is not repeated within
``inter_byte_timeout``: one corrupted transmission must cost one retransmission, not several.
Because ACKs can be lost, a frame whose body equals the previous accepted body is a
retransmission: it is ACKed again but not delivered twice (upper layers never send two identical
consecutive bodies that matter: the envelope's sequence number differs and plain messages carry
distinct ids; only the informational "rejected" notice may repeat, and dropping a repeat of it
loses nothing). A residual risk is inherent in one-byte answers: a noise byte 0x06 between
frames while one is outstanding reads as an ACK. The frame is then lost, not duplicated; the
envelope's replay window tolerates the gap and the session's request timeout and status query
(section 5 of the design) recover the outcome.

Stream framing (TCP, TLS)::

    offset  size  field
    0       4     LEN  length of BODY, unsigned big-endian (0..max_body)
    4       LEN   BODY

No answers, no timers: TCP already retransmits. A LEN over ``max_body`` cannot be resynchronised
on a length-prefixed stream, so it emits :class:`FrameRejected` then :class:`LinkDown` and ignores
all later input; the adapter closes the connection.
"""

from __future__ import annotations

import binascii
import logging
from collections import deque
from dataclasses import dataclass, fields
from typing import Protocol

from shouyin.link.errors import FrameError, LocalProtocolError

__all__ = [
    "ACK",
    "ETX",
    "NAK",
    "SERIAL_MAX_BODY",
    "STREAM_MAX_BODY",
    "STX",
    "FrameAcknowledged",
    "FrameReceived",
    "FrameRejected",
    "Framer",
    "FramingEvent",
    "FramingStats",
    "LinkDown",
    "SerialFramer",
    "StreamFramer",
    "crc16_ccitt_false",
    "encode_serial_frame",
    "encode_stream_frame",
]

logger = logging.getLogger(__name__)

STX = 0x02
ETX = 0x03
ACK = 0x06
NAK = 0x15

SERIAL_MAX_BODY = 8 * 1024
"""Default largest serial body: 8 KiB takes ~8.5 s at 9600 baud, already a long frame."""
STREAM_MAX_BODY = 64 * 1024
"""Default largest TCP/TLS body."""

_SERIAL_HEADER = 3  # STX + LEN(2)
_SERIAL_TRAILER = 3  # ETX + CRC(2)
_STREAM_HEADER = 4
_REASON_COUNTERS = {
    "crc": "crc_errors",
    "no_etx": "malformed",
    "oversize": "oversize",
    "truncated": "truncated",
}


def crc16_ccitt_false(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (check value for ``b"123456789"`` is ``0x29B1``).

    ``binascii.crc_hqx`` is the same polynomial without reflection; seeding it with 0xFFFF gives
    the CCITT-FALSE variant, computed in C.
    """
    return binascii.crc_hqx(data, 0xFFFF)


def encode_serial_frame(body: bytes) -> bytes:
    """Return the serial frame ``STX | LEN | BODY | ETX | CRC`` for ``body`` (no size limit check).

    Raises:
        LocalProtocolError: the body does not fit the 2-byte length field.
    """
    if len(body) > 0xFFFF:
        raise LocalProtocolError(f"serial body of {len(body)} bytes exceeds 65535")
    inner = len(body).to_bytes(2, "big") + body + bytes((ETX,))
    return bytes((STX,)) + inner + crc16_ccitt_false(inner).to_bytes(2, "big")


def encode_stream_frame(body: bytes) -> bytes:
    """Return the stream frame ``LEN(4) | BODY`` for ``body``."""
    return len(body).to_bytes(4, "big") + body


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A complete, well-formed body arrived."""

    body: bytes


@dataclass(frozen=True, slots=True)
class FrameAcknowledged:
    """The peer ACKed our outstanding serial frame (never emitted by the stream framer)."""


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame was refused (and NAKed on serial); ``error`` says why and where."""

    error: FrameError


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The framer gave up: retransmissions exhausted or an unrecoverable stream. It stays down."""

    reason: str


FramingEvent = FrameReceived | FrameAcknowledged | FrameRejected | LinkDown


@dataclass(slots=True)
class FramingStats:
    """Counters for health reporting: CRC errors and retransmissions reveal a loose cable."""

    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    crc_errors: int = 0
    malformed: int = 0
    oversize: int = 0
    truncated: int = 0
    resyncs: int = 0
    noise_bytes: int = 0
    retransmissions: int = 0
    ack_timeouts: int = 0
    naks_sent: int = 0
    naks_received: int = 0
    stray_answers: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a plain dict (for heartbeats and logs)."""
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


class Framer(Protocol):
    """The surface shared by :class:`SerialFramer` and :class:`StreamFramer`."""

    @property
    def stats(self) -> FramingStats:
        """Frame counters."""
        ...

    @property
    def max_body(self) -> int:
        """Largest body accepted in either direction."""
        ...

    @property
    def down(self) -> bool:
        """True once :class:`LinkDown` was emitted."""
        ...

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the transport."""
        ...

    def next_event(self) -> FramingEvent | None:
        """Pop the next event, or ``None`` if there is none."""
        ...

    def send(self, body: bytes, now: float) -> bytes:
        """Queue ``body``; return the bytes now due on the wire."""
        ...

    def data_to_send(self) -> bytes:
        """Pop the bytes due on the wire."""
        ...

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` must be called, or ``None``."""
        ...

    def handle_timer(self, now: float) -> None:
        """Act on expired timers."""
        ...


class _FramerBase:
    """Event queue, outbox and stats shared by both framers."""

    def __init__(self, max_body: int) -> None:
        if max_body < 1:
            raise ValueError("max_body must be positive")
        self._max_body = max_body
        self._events: deque[FramingEvent] = deque()
        self._outbox = bytearray()
        self._stats = FramingStats()
        self._down = False

    @property
    def stats(self) -> FramingStats:
        """Frame counters."""
        return self._stats

    @property
    def max_body(self) -> int:
        """Largest body accepted in either direction."""
        return self._max_body

    @property
    def down(self) -> bool:
        """True once :class:`LinkDown` was emitted; then input is ignored and output refused."""
        return self._down

    def next_event(self) -> FramingEvent | None:
        """Pop the next event, or ``None`` when more input or time is needed."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Pop every byte due on the wire, in order."""
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    def _check_send(self, body: bytes) -> None:
        if self._down:
            raise LocalProtocolError("the link is down; reconnect before sending")
        if len(body) > self._max_body:
            raise LocalProtocolError(
                f"body of {len(body)} bytes exceeds the frame limit of {self._max_body}"
            )

    def _go_down(self, reason: str) -> None:
        logger.warning("link down: %s", reason)
        self._down = True
        self._events.append(LinkDown(reason))


class SerialFramer(_FramerBase):
    """Serial framing with ACK/NAK, stop-and-wait retransmission and resynchronisation.

    Args:
        max_body: largest body in either direction; longer LEN fields are refused.
        ack_timeout: seconds to wait for an answer after a frame was written, on top of
            ``byte_time * len(frame)``.
        max_retransmissions: retransmissions after the first transmission before giving up.
        byte_time: seconds one byte takes on the wire (``10 / baud`` for 8N1); 0 on fast links.
        inter_byte_timeout: a partial frame not completed within this many seconds of its last
            byte is given up (NAKed and skipped), so a corrupted LEN cannot stall the receiver.
    """

    def __init__(
        self,
        *,
        max_body: int = SERIAL_MAX_BODY,
        ack_timeout: float = 1.0,
        max_retransmissions: int = 3,
        byte_time: float = 0.0,
        inter_byte_timeout: float = 0.5,
    ) -> None:
        if max_body > 0xFFFF:
            raise ValueError("a serial body cannot exceed 65535 bytes (2-byte LEN)")
        super().__init__(max_body)
        self._ack_timeout = ack_timeout
        self._max_retransmissions = max_retransmissions
        self._byte_time = byte_time
        self._inter_byte_timeout = inter_byte_timeout
        self._rx = bytearray()
        self._rx_offset = 0  # stream offset of self._rx[0]
        self._blind_until = 0  # ACK/NAK before this stream offset lie inside a refused frame
        self._partial_deadline: float | None = None
        self._nak_quiet_until = float("-inf")
        self._last_body: bytes | None = None
        self._queue: deque[bytes] = deque()
        self._outstanding: bytes | None = None
        self._tries = 0
        self._ack_deadline: float | None = None

    # -- sending -----------------------------------------------------------------------------

    def send(self, body: bytes, now: float) -> bytes:
        """Queue ``body``; transmit it at once unless a frame awaits its ACK.

        Returns:
            every byte now due on the wire (also available from :meth:`data_to_send`).

        Raises:
            LocalProtocolError: the body exceeds ``max_body`` or the link is down.
        """
        self._check_send(body)
        self._queue.append(encode_serial_frame(body))
        if self._outstanding is None:
            self._transmit_next(now)
        return self.data_to_send()

    def _transmit_next(self, now: float) -> None:
        if self._queue:
            self._outstanding = self._queue.popleft()
            self._tries = 0
            self._write_outstanding(now)

    def _write_outstanding(self, now: float) -> None:
        frame = self._outstanding
        if frame is None:  # pragma: no cover - callers set it first
            return
        self._outbox += frame
        self._stats.frames_sent += 1
        self._stats.bytes_sent += len(frame)
        self._ack_deadline = now + self._ack_timeout + self._byte_time * len(frame)

    def _retransmit_or_give_up(self, now: float, why: str) -> None:
        if self._tries >= self._max_retransmissions:
            self._outstanding = None
            self._ack_deadline = None
            self._queue.clear()
            self._go_down(f"no ACK after {self._max_retransmissions} retransmissions ({why})")
            return
        self._tries += 1
        self._stats.retransmissions += 1
        logger.info("retransmitting frame (%s), try %d", why, self._tries)
        self._write_outstanding(now)

    def _answer(self, byte: int) -> None:
        self._outbox.append(byte)
        self._stats.bytes_sent += 1
        if byte == NAK:
            self._stats.naks_sent += 1

    # -- timers ------------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        """The earliest of the ACK deadline and the partial-frame deadline, or ``None``."""
        deadlines = [d for d in (self._ack_deadline, self._partial_deadline) if d is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Retransmit after a missing ACK; give up a stalled partial frame."""
        if self._down:
            return
        if self._ack_deadline is not None and now >= self._ack_deadline:
            self._stats.ack_timeouts += 1
            self._retransmit_or_give_up(now, "ACK timeout")
            if self.down:  # the property: mypy must not narrow across the call above
                return
        if self._partial_deadline is not None and now >= self._partial_deadline:
            self._partial_deadline = None
            if self._rx and self._rx[0] == STX:
                # The stall proves its LEN false: blind only the bytes it holds, not the future.
                self._refuse("truncated", len(self._rx), now, "frame stalled")
                self._parse(now)

    # -- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the port: frames, answers and noise, in any number of pieces."""
        if self._down or not data:
            return
        self._stats.bytes_received += len(data)
        self._rx += data
        self._parse(now)

    def _drop(self, count: int) -> None:
        del self._rx[:count]
        self._rx_offset += count

    def _refuse(
        self, reason: str, span_end: int, now: float, detail: str = "", skip: int = 1
    ) -> None:
        """Refuse the frame at the head of the buffer: NAK, skip its STX, rescan the rest.

        A candidate whose STX lies inside a frame already refused is just a byte of that frame
        (ciphertext is full of 0x02): it is skipped silently, without another error or NAK.
        After a NAK, further NAKs are held back for ``inter_byte_timeout``: one NAK already asks
        for one retransmission, and every extra one would spend the sender's retry budget.
        ``skip`` is how many bytes to drop (1: just the STX; more when a later frame is known).
        """
        self._stats.resyncs += 1
        if self._rx_offset < self._blind_until:
            self._drop(skip)
            return
        setattr(
            self._stats,
            _REASON_COUNTERS[reason],
            getattr(self._stats, _REASON_COUNTERS[reason]) + 1,
        )
        error = FrameError(reason, self._rx_offset, detail)
        logger.warning("%s", error)
        self._events.append(FrameRejected(error))
        if now >= self._nak_quiet_until:
            self._answer(NAK)
            self._nak_quiet_until = now + self._inter_byte_timeout
        self._blind_until = max(self._blind_until, self._rx_offset + span_end)
        self._drop(skip)

    def _later_valid_frame(self) -> int | None:
        """Index of the first complete, valid frame after the head of the buffer, if any.

        While the head candidate is incomplete, a complete valid frame further on proves that the
        head was a false STX (noise, a terminal waking up): real frames do not nest, JSON escapes
        control bytes and a random match needs ETX and CRC to agree (about 1 in 16 million).
        """
        rx, max_body = self._rx, self._max_body
        index = rx.find(STX, 1)
        while index != -1:
            if len(rx) - index >= _SERIAL_HEADER:
                length = (rx[index + 1] << 8) | rx[index + 2]
                end = index + _SERIAL_HEADER + length + _SERIAL_TRAILER
                if (
                    length <= max_body
                    and end <= len(rx)
                    and rx[end - 3] == ETX
                    and crc16_ccitt_false(memoryview(rx)[index + 1 : end - 2])
                    == (rx[end - 2] << 8) | rx[end - 1]
                ):
                    return index
            index = rx.find(STX, index + 1)
        return None

    def _parse(self, now: float) -> None:
        max_body = self._max_body
        while self._rx and not self._down:
            first = self._rx[0]
            if first == STX:
                if len(self._rx) < _SERIAL_HEADER:
                    break
                length = (self._rx[1] << 8) | self._rx[2]
                if length > max_body:
                    self._refuse("oversize", _SERIAL_HEADER, now, f"LEN {length} > {max_body}")
                    continue
                total = _SERIAL_HEADER + length + _SERIAL_TRAILER
                if len(self._rx) < total:
                    later = self._later_valid_frame()
                    if later is None:
                        break
                    self._refuse("truncated", later, now, "a valid frame follows", skip=later)
                    continue
                if self._rx[_SERIAL_HEADER + length] != ETX:
                    self._refuse("no_etx", total, now)
                    continue
                crc = (self._rx[total - 2] << 8) | self._rx[total - 1]
                if crc16_ccitt_false(memoryview(self._rx)[1 : total - 2]) != crc:
                    self._refuse("crc", total, now)
                    continue
                body = bytes(self._rx[_SERIAL_HEADER : _SERIAL_HEADER + length])
                self._drop(total)
                self._answer(ACK)
                if body == self._last_body:
                    self._stats.duplicates += 1
                    logger.info("duplicate frame (our ACK was lost); ACKed again, not delivered")
                    continue
                self._last_body = body
                self._stats.frames_received += 1
                self._events.append(FrameReceived(body))
            elif first in (ACK, NAK) and self._rx_offset >= self._blind_until:
                self._drop(1)
                self._on_answer(first, now)
            else:
                self._skip_noise()
        # A partial frame must complete within inter_byte_timeout of the last byte received.
        self._partial_deadline = now + self._inter_byte_timeout if self._rx else None

    def _skip_noise(self) -> None:
        """Drop bytes up to the next STX (or the next ACK/NAK outside a refused frame)."""
        index = 1
        size = len(self._rx)
        while index < size:
            byte = self._rx[index]
            if byte == STX or (byte in (ACK, NAK) and self._rx_offset + index >= self._blind_until):
                break
            index += 1
        self._stats.noise_bytes += index
        self._stats.resyncs += 1
        logger.debug("skipped %d noise bytes at offset %d", index, self._rx_offset)
        self._drop(index)

    def _on_answer(self, byte: int, now: float) -> None:
        if self._outstanding is None:
            self._stats.stray_answers += 1
            logger.debug("stray %s ignored", "ACK" if byte == ACK else "NAK")
            return
        if byte == ACK:
            self._outstanding = None
            self._ack_deadline = None
            self._events.append(FrameAcknowledged())
            self._transmit_next(now)
        else:
            self._stats.naks_received += 1
            self._retransmit_or_give_up(now, "NAK")


class StreamFramer(_FramerBase):
    """Length-prefixed framing for TCP and TLS (``LEN(4) | BODY``), no answers, no timers.

    Args:
        max_body: largest body in either direction; a longer LEN ends the link.
    """

    def __init__(self, *, max_body: int = STREAM_MAX_BODY) -> None:
        super().__init__(max_body)
        self._rx = bytearray()
        self._rx_offset = 0

    def send(self, body: bytes, now: float) -> bytes:
        """Queue ``body``; return every byte now due on the wire.

        Raises:
            LocalProtocolError: the body exceeds ``max_body`` or the link is down.
        """
        self._check_send(body)
        frame = encode_stream_frame(body)
        self._outbox += frame
        self._stats.frames_sent += 1
        self._stats.bytes_sent += len(frame)
        return self.data_to_send()

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the socket, in any number of pieces."""
        if self._down or not data:
            return
        self._stats.bytes_received += len(data)
        self._rx += data
        while len(self._rx) >= _STREAM_HEADER:
            length = int.from_bytes(self._rx[:_STREAM_HEADER], "big")
            if length > self._max_body:
                self._stats.oversize += 1
                error = FrameError("oversize", self._rx_offset, f"LEN {length} > {self._max_body}")
                logger.warning("%s", error)
                self._events.append(FrameRejected(error))
                self._rx.clear()
                self._go_down("stream framing lost (oversize length)")
                return
            total = _STREAM_HEADER + length
            if len(self._rx) < total:
                return
            body = bytes(self._rx[_STREAM_HEADER:total])
            del self._rx[:total]
            self._rx_offset += total
            self._stats.frames_received += 1
            self._events.append(FrameReceived(body))

    def next_timer(self) -> float | None:
        """Always ``None``: the stream framer has no timers."""
        return None

    def handle_timer(self, now: float) -> None:
        """Nothing to do: the stream framer has no timers."""
