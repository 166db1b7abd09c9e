"""Typed errors of the acquirer simulator; :class:`AcquirerError` is the root of them all.

Split by who is at fault (the h11 convention used across shouyin):

* :class:`LocalAcquirerError`: our caller misused the API (a sale before sign-in, a field value
  that cannot be encoded). Fix the calling code.
* :class:`RemoteAcquirerError`: the peer or the wire sent something we refuse: a malformed
  ISO 8583 message (:class:`IsoFormatError`), a bad frame (:class:`FrameError`), a bad MAC
  (:class:`MacError`).
* :class:`HostRefused`: the host answered without processing the request (``A0`` MAC error,
  ``77`` sign in again): the request had **no effect**, it may be retried after a new sign-in.
* :class:`AcquirerTimeout`: a request was (or may have been) sent and no valid answer came:
  its outcome is **unknown**, so a financial request must be reversed (0400).
* :class:`AcquirerUnreachable`: the host could not be reached and nothing was sent: the outcome
  is known (nothing happened).

Messages never contain card numbers, track data, PIN blocks or keys: only field numbers, byte
positions, message types and trace numbers.
"""

from __future__ import annotations

__all__ = [
    "AcquirerError",
    "AcquirerTimeout",
    "AcquirerUnreachable",
    "FrameError",
    "HostRefused",
    "IsoFormatError",
    "LocalAcquirerError",
    "MacError",
    "NotSignedIn",
    "RemoteAcquirerError",
]


class AcquirerError(Exception):
    """Root of every error raised by :mod:`shouyin.acquirer`."""


class LocalAcquirerError(AcquirerError):
    """The caller used the API in a way that cannot work (a bug on our side)."""


class NotSignedIn(LocalAcquirerError):
    """A MAC'ed request was attempted before a successful sign-in delivered the working keys."""

    def __init__(self) -> None:
        super().__init__("no working keys: sign in (0800) first")


class RemoteAcquirerError(AcquirerError):
    """The peer or the wire sent something this side refuses."""


class IsoFormatError(RemoteAcquirerError):
    """An ISO 8583 message could not be decoded or lacks a mandatory field.

    Attributes:
        field: the ISO field (``"t"`` for the MTI, ``"p"`` for the bitmap, ``"2"``..``"64"``),
            or ``""`` when the message as a whole is refused.
        position: byte offset in the message where decoding failed, or ``-1``.
        reason: the explanation (never the offending value: it might be a card number).
    """

    def __init__(self, field: str, reason: str, position: int = -1) -> None:
        where = f"field {field}" if field else "message"
        if position >= 0:
            where += f" at byte {position}"
        super().__init__(f"ISO 8583 format error, {where}: {reason}")
        self.field = field
        self.position = position
        self.reason = reason


class FrameError(RemoteAcquirerError):
    """A TCP frame was oversize, empty or carried an unknown TPDU.

    Attributes:
        reason: ``"oversize"``, ``"empty"`` or ``"tpdu"``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"frame refused: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.detail = detail


class MacError(RemoteAcquirerError):
    """A message's MAC (field 64) is missing or wrong.

    Attributes:
        mti: the message type of the refused message.
        trace: its trace number (field 11) when present.
    """

    def __init__(self, mti: str, trace: str | None, reason: str = "bad MAC") -> None:
        super().__init__(f"{reason} on {mti} trace {trace or '-'}")
        self.mti = mti
        self.trace = trace
        self.reason = reason


class HostRefused(AcquirerError):
    """The host answered ``A0`` (MAC error) or ``77`` (sign in again) without processing.

    The request had no effect; sign in again and retry it (with the same trace).

    Attributes:
        response_code: ``"A0"`` or ``"77"``.
        mti: the refused request's message type.
        trace: the refused request's trace number.
    """

    def __init__(self, response_code: str, mti: str, trace: int) -> None:
        super().__init__(
            f"host refused {mti} trace {trace:06d} with {response_code}: sign in again"
        )
        self.response_code = response_code
        self.mti = mti
        self.trace = trace


class AcquirerTimeout(AcquirerError):
    """No valid answer in time, or the connection broke after sending: the outcome is unknown.

    Attributes:
        mti: the request's message type.
        trace: the request's trace number.
        reason: ``"timeout"`` or ``"connection lost"``.
    """

    def __init__(self, mti: str, trace: int, reason: str = "timeout") -> None:
        super().__init__(f"no answer to {mti} trace {trace:06d}: {reason}")
        self.mti = mti
        self.trace = trace
        self.reason = reason


class AcquirerUnreachable(AcquirerError):
    """The host could not be connected to; the request was **not** sent.

    Attributes:
        address: ``host:port``.
    """

    def __init__(self, address: str, detail: str = "") -> None:
        super().__init__(f"acquirer {address} unreachable" + (f": {detail}" if detail else ""))
        self.address = address
        self.detail = detail
