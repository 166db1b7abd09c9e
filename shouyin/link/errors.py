"""Typed errors of the terminal link.

Every error raised by :mod:`shouyin.link` derives from :class:`LinkError`, split by who is at fault
(the h11 convention):

* :class:`LocalProtocolError`: *our* caller misused the API (sending a Payment while another one is
  in flight, sending before login, a body larger than the frame limit...). Fix the calling code.
* :class:`RemoteProtocolError`: the *peer* (or the wire) misbehaved: a malformed frame, a bad
  authentication tag, a replayed sequence number, an undecodable message, an incompatible peer.
  The link refuses the input, logs it and carries on (or closes cleanly); it never crashes.
* :class:`LinkTimeout`: nobody is provably at fault; an answer did not come in time.

Errors carry context as attributes (a byte offset, a field path, a refusal reason) so that logs and
health counters can be precise; their messages never contain key material, message bodies or card
numbers.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Busy",
    "FrameError",
    "IncompatiblePeer",
    "LinkError",
    "LinkTimeout",
    "LocalProtocolError",
    "MessageDecodeError",
    "PairingCodeRejected",
    "PairingFailed",
    "Refusal",
    "RemoteProtocolError",
    "SecurityError",
]


class LinkError(Exception):
    """Root of every error raised by :mod:`shouyin.link`."""


class LocalProtocolError(LinkError):
    """The caller used the API in a way the protocol does not allow in the current state."""


class Busy(LocalProtocolError):
    """A payment (or another financial transaction) is already in flight on this terminal link.

    Attributes:
        in_flight: the ``service_id`` of the transaction in flight.
    """

    def __init__(self, in_flight: str) -> None:
        super().__init__(f"a financial transaction is already in flight (service_id {in_flight!r})")
        self.in_flight = in_flight


class RemoteProtocolError(LinkError):
    """The peer or the wire sent something the protocol refuses."""


class FrameError(RemoteProtocolError):
    """A frame was malformed, oversize, truncated or failed its CRC.

    Attributes:
        reason: short machine-friendly reason (``"crc"``, ``"oversize"``, ``"no_etx"``,
            ``"truncated"``).
        offset: position in the received byte stream (bytes since the connection started) of the
            first byte of the offending frame.
    """

    def __init__(self, reason: str, offset: int, detail: str = "") -> None:
        text = f"frame refused at byte {offset}: {reason}"
        super().__init__(f"{text} ({detail})" if detail else text)
        self.reason = reason
        self.offset = offset
        self.detail = detail


class Refusal(StrEnum):
    """Why a security envelope was refused (logged locally; the peer only hears "rejected")."""

    UNSEALED = "unsealed"
    TRUNCATED = "truncated"
    UNKNOWN_VERSION = "unknown_version"
    WRONG_DIRECTION = "wrong_direction"
    WRONG_KEY = "wrong_key"
    REPLAYED = "replayed"
    TOO_OLD = "too_old"
    TOO_FAR_AHEAD = "too_far_ahead"
    BAD_TAG = "bad_tag"
    NO_SESSION = "no_session"
    CONFIRMATION_FAILED = "confirmation_failed"


class SecurityError(RemoteProtocolError):
    """A body failed the security checks: unsealed, wrong key, replayed or tampered.

    Attributes:
        refusal: the :class:`Refusal` reason.
        seq: the envelope sequence number when it could be read, else ``None``.
    """

    def __init__(self, refusal: Refusal, detail: str = "", seq: int | None = None) -> None:
        text = f"refused: {refusal.value}"
        if seq is not None:
            text += f" (seq {seq})"
        super().__init__(f"{text}: {detail}" if detail else text)
        self.refusal = refusal
        self.seq = seq
        self.detail = detail


class PairingFailed(SecurityError):
    """Pairing did not complete: wrong code, failed key confirmation or a refused request."""

    def __init__(self, detail: str) -> None:
        super().__init__(Refusal.CONFIRMATION_FAILED, detail)


class MessageDecodeError(RemoteProtocolError):
    """A body is not a valid message: bad JSON, unknown ``type``, a missing or invalid field.

    Attributes:
        field: dotted path of the first offending field (``""`` when the JSON itself is bad).
        reason: the validator's explanation (never the offending value: it might be a card number).
    """

    def __init__(self, field: str, reason: str) -> None:
        where = f"field {field!r}" if field else "body"
        super().__init__(f"undecodable message, {where}: {reason}")
        self.field = field
        self.reason = reason


class IncompatiblePeer(RemoteProtocolError):
    """Login found no common protocol version or a capability this side requires is missing.

    Attributes:
        ours: what this side offers or requires.
        theirs: what the peer offered.
    """

    def __init__(self, what: str, ours: object, theirs: object) -> None:
        super().__init__(f"incompatible peer: {what} (ours {ours!r}, theirs {theirs!r})")
        self.what = what
        self.ours = ours
        self.theirs = theirs


class PairingCodeRejected(LinkError):
    """A pairing code cannot be used: expired, already used, or burnt by too many wrong tries.

    Attributes:
        state: the code's state name (``"expired"``, ``"used"``, ``"burnt"``).
    """

    def __init__(self, state: str) -> None:
        super().__init__(f"pairing code is {state}")
        self.state = state


class LinkTimeout(LinkError):
    """An expected answer did not arrive in time (reported as an event by the session)."""
