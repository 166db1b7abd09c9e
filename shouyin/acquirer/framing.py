"""TCP framing of the acquirer link (sans-I/O).

Each ISO 8583 message travels as::

    LEN (2 bytes, big-endian) | TPDU (5 bytes) | ISO 8583 message

``LEN`` counts the TPDU and the message (as is common on Chinese POS host links). The TPDU is
``0x60 | destination (2 bytes) | source (2 bytes)``; the terminal sends
``60 0006 0000`` (:data:`TERMINAL_TPDU`) and the host answers with destination and source swapped
(:func:`reply_tpdu`). The host does not route on the addresses; it only checks the ``0x60`` id.

A frame longer than :data:`MAX_FRAME` or shorter than a TPDU is a :class:`FrameError`: the
receiver cannot resynchronise a length-prefixed stream, so it closes the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shouyin.acquirer.errors import FrameError

__all__ = [
    "MAX_FRAME",
    "TERMINAL_TPDU",
    "TPDU_ID",
    "Frame",
    "FrameDecoder",
    "encode_frame",
    "reply_tpdu",
]

TPDU_ID: Final = 0x60
TERMINAL_TPDU: Final = bytes.fromhex("6000060000")
"""The TPDU a terminal sends (destination NII 0006, source 0000)."""
MAX_FRAME: Final = 4096
"""The largest frame (TPDU + message) accepted; real messages are a few hundred bytes."""
_TPDU_LEN: Final = 5


@dataclass(frozen=True, slots=True)
class Frame:
    """One received frame: its TPDU and the ISO 8583 message."""

    tpdu: bytes
    message: bytes


def reply_tpdu(tpdu: bytes) -> bytes:
    """The TPDU of the answer to a frame with ``tpdu``: destination and source swapped.

    Args:
        tpdu: the request's 5-byte TPDU.

    Returns:
        The answer's TPDU.
    """
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


def encode_frame(message: bytes, tpdu: bytes = TERMINAL_TPDU) -> bytes:
    """Frame one ISO 8583 message.

    Args:
        message: the packed message.
        tpdu: the 5-byte TPDU to put in front.

    Returns:
        ``LEN | TPDU | message``.

    Raises:
        FrameError: the frame would exceed :data:`MAX_FRAME` or the TPDU is malformed.
    """
    if len(tpdu) != _TPDU_LEN or tpdu[0] != TPDU_ID:
        raise FrameError("tpdu", "a TPDU is 5 bytes starting with 0x60")
    body = tpdu + message
    if len(body) > MAX_FRAME:
        raise FrameError("oversize", f"{len(body)} bytes")
    return len(body).to_bytes(2, "big") + body


class FrameDecoder:
    """Reassembles frames from a byte stream received in arbitrary pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes and return the frames now complete, in order.

        Args:
            data: bytes as read from the socket (any split).

        Returns:
            The complete frames (possibly none).

        Raises:
            FrameError: an oversize, too short or non-``0x60`` frame; the stream is unusable.
        """
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 2:
            length = int.from_bytes(self._buffer[:2], "big")
            if length > MAX_FRAME:
                raise FrameError("oversize", f"{length} bytes announced")
            if length < _TPDU_LEN:
                raise FrameError("empty", f"{length} bytes announced")
            if len(self._buffer) < 2 + length:
                break
            body = bytes(self._buffer[2 : 2 + length])
            del self._buffer[: 2 + length]
            if body[0] != TPDU_ID:
                raise FrameError("tpdu", f"id 0x{body[0]:02x}")
            frames.append(Frame(body[:_TPDU_LEN], body[_TPDU_LEN:]))
        return frames

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)
