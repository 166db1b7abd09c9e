"""The security envelope: AEAD sealing, session keys and the replay window, sans-I/O.

Every body on every transport (TLS included: defence in depth) is sealed once the session is
logged in. A sealed body, byte by byte::

    offset  size  field
    0       1     version    0x01 (a plain JSON body starts with '{' = 0x7B, so the first byte
                             tells sealed from unsealed)
    1       1     direction  0x01 ECR -> POI, 0x02 POI -> ECR
    2       4     key_id     identifies the session keys (derived with them at Login)
    6       8     seq        unsigned big-endian, strictly increasing per direction, from 0
    14      n     ciphertext ChaCha20-Poly1305 of the message JSON
    14+n    16    tag        Poly1305 tag; associated data = bytes 0..13 (the header)

Overhead: 30 bytes per body (14 header + 16 tag); with serial framing 36 bytes per frame.

The nonce is the 96-bit ``iv(4) || seq(8)`` where ``iv`` is a per-direction secret derived with
the keys: the ``seq`` field *is* the explicit part of the nonce (RFC 5116 section 3.2 "partially
implicit nonce"), so a nonce can never repeat under a key while ``seq`` strictly increases, and it
costs no extra bytes. Each direction has its own key and iv, so a frame reflected back to its
sender fails the direction check and the tag.

Opening checks, in order: version, direction, key id, replay window (cheap refusal of repeated,
too old or too far ahead ``seq``), then the tag; the window is updated only after the tag verified,
so forged frames cannot move it. Any failure raises :class:`SecurityError` with a
:class:`Refusal`; the session logs it and tells the peer only "rejected".

Session keys (:func:`derive_session_keys`) come from HKDF-SHA256 at every Login::

    salt = ecr_nonce(32) || poi_nonce(32)
    ikm  = long-term pairing key (32)
    info = "shouyin/link/v1 session" || lp(ecr_id) || lp(terminal_id) || transcript_hash(32)
    okm  = key_e2p(32) || key_p2e(32) || iv_e2p(4) || iv_p2e(4) || key_id(4)

where ``lp(x)`` is a 2-byte big-endian length then ``x`` (UTF-8), and ``transcript_hash`` is the
SHA-256 over the exact Login request and response bodies, so a tampered version or capability
list yields different keys and the login confirmation fails.

Key material is held in objects whose ``repr`` shows only the key id; nothing here logs bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
from collections.abc import Iterable
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shouyin.link.errors import LocalProtocolError, Refusal, SecurityError

__all__ = [
    "ENVELOPE_OVERHEAD",
    "ENVELOPE_VERSION",
    "HEADER_SIZE",
    "TAG_SIZE",
    "Direction",
    "LongTermKey",
    "ReplayWindow",
    "SecureChannel",
    "SessionKeys",
    "derive_session_keys",
    "is_sealed",
    "length_prefixed",
    "transcript_hash",
]

logger = logging.getLogger(__name__)

ENVELOPE_VERSION = 0x01
_HEADER = struct.Struct(">BB4sQ")
HEADER_SIZE = _HEADER.size  # 14
TAG_SIZE = 16
ENVELOPE_OVERHEAD = HEADER_SIZE + TAG_SIZE  # 30
KEY_SIZE = 32
NONCE_SIZE = 32
_MAX_SEQ = 2**64 - 1


class Direction(IntEnum):
    """Which way a sealed body travels (byte 1 of the envelope)."""

    ECR_TO_POI = 0x01
    POI_TO_ECR = 0x02

    @property
    def reverse(self) -> Direction:
        """The opposite direction."""
        return Direction.POI_TO_ECR if self is Direction.ECR_TO_POI else Direction.ECR_TO_POI


def length_prefixed(*parts: bytes | str) -> bytes:
    """Concatenate ``parts``, each as a 2-byte big-endian length then its bytes (UTF-8 for str).

    Raises:
        ValueError: a part is longer than 65535 bytes.
    """
    out = bytearray()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        if len(raw) > 0xFFFF:
            raise ValueError("part too long for a 2-byte length prefix")
        out += len(raw).to_bytes(2, "big") + raw
    return bytes(out)


def transcript_hash(bodies: Iterable[bytes]) -> bytes:
    """SHA-256 over the length-prefixed ``bodies`` (exact wire bytes of a handshake)."""
    return hashlib.sha256(length_prefixed(*bodies)).digest()


def _hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


class LongTermKey:
    """A terminal's long-term pairing key, bound to the ECR and terminal identities.

    The 32 key bytes come out of pairing (:mod:`shouyin.link.pairing`) and are stored by the
    application (preferably encrypted at rest); :meth:`secret_bytes` is the only way to read them.
    ``key_id`` (8 hex digits) names the key in a Login request and is safe to log.
    """

    __slots__ = ("_secret", "ecr_id", "key_id", "terminal_id")

    def __init__(self, secret: bytes, *, ecr_id: str, terminal_id: str) -> None:
        if len(secret) != KEY_SIZE:
            raise ValueError(f"a long-term key is {KEY_SIZE} bytes")
        self._secret = bytes(secret)
        self.ecr_id = ecr_id
        self.terminal_id = terminal_id
        self.key_id = _hkdf(
            self._secret, b"", b"shouyin/link/v1 key id" + length_prefixed(ecr_id, terminal_id), 4
        ).hex()

    def secret_bytes(self) -> bytes:
        """The raw key bytes, for storage only. Never log them."""
        return self._secret

    def __repr__(self) -> str:
        return (
            f"LongTermKey(key_id={self.key_id!r}, ecr_id={self.ecr_id!r}, "
            f"terminal_id={self.terminal_id!r})"
        )

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LongTermKey):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret) and (
            self.ecr_id,
            self.terminal_id,
        ) == (other.ecr_id, other.terminal_id)

    def __hash__(self) -> int:
        return hash(self.key_id)


class SessionKeys:
    """The per-direction AEAD keys and nonce prefixes of one logged-in session.

    ``key_id`` (4 bytes) travels in every envelope header; ``repr`` shows only its hex.
    """

    __slots__ = ("_iv", "_keys", "key_id")

    def __init__(
        self, *, key_id: bytes, key_e2p: bytes, key_p2e: bytes, iv_e2p: bytes, iv_p2e: bytes
    ) -> None:
        if len(key_id) != 4 or len(iv_e2p) != 4 or len(iv_p2e) != 4:
            raise ValueError("key_id and ivs are 4 bytes")
        if len(key_e2p) != KEY_SIZE or len(key_p2e) != KEY_SIZE:
            raise ValueError(f"session keys are {KEY_SIZE} bytes")
        self.key_id = bytes(key_id)
        self._keys = {Direction.ECR_TO_POI: key_e2p, Direction.POI_TO_ECR: key_p2e}
        self._iv = {Direction.ECR_TO_POI: iv_e2p, Direction.POI_TO_ECR: iv_p2e}

    def aead(self, direction: Direction) -> ChaCha20Poly1305:
        """The AEAD for one direction."""
        return ChaCha20Poly1305(self._keys[direction])

    def iv(self, direction: Direction) -> bytes:
        """The 4-byte secret nonce prefix for one direction."""
        return self._iv[direction]

    def __repr__(self) -> str:
        return f"SessionKeys(key_id={self.key_id.hex()!r})"

    __str__ = __repr__


def derive_session_keys(
    long_term_key: LongTermKey,
    *,
    ecr_nonce: bytes,
    poi_nonce: bytes,
    transcript: bytes,
) -> SessionKeys:
    """Derive fresh session keys at Login (layout in the module docstring).

    Args:
        long_term_key: the pairing key; its ``ecr_id``/``terminal_id`` are bound into ``info``.
        ecr_nonce: the ECR's fresh 32-byte nonce from the Login request.
        poi_nonce: the terminal's fresh 32-byte nonce from the Login response.
        transcript: :func:`transcript_hash` of the Login request and response bodies.

    Raises:
        SecurityError: a nonce has the wrong length.
    """
    if len(ecr_nonce) != NONCE_SIZE or len(poi_nonce) != NONCE_SIZE:
        raise SecurityError(Refusal.CONFIRMATION_FAILED, "login nonce has the wrong length")
    info = (
        b"shouyin/link/v1 session"
        + length_prefixed(long_term_key.ecr_id, long_term_key.terminal_id)
        + transcript
    )
    okm = _hkdf(long_term_key.secret_bytes(), ecr_nonce + poi_nonce, info, 76)
    return SessionKeys(
        key_e2p=okm[0:32],
        key_p2e=okm[32:64],
        iv_e2p=okm[64:68],
        iv_p2e=okm[68:72],
        key_id=okm[72:76],
    )


def is_sealed(body: bytes) -> bool:
    """True when ``body`` looks like a sealed envelope (first byte is a known version)."""
    return bool(body) and body[0] == ENVELOPE_VERSION


class ReplayWindow:
    """Sliding-bitmap anti-replay window (as in IPsec/DTLS) over one direction's ``seq``.

    ``highest`` is the largest accepted ``seq``; bit ``i`` of the bitmap records whether
    ``highest - i`` was accepted. A ``seq`` is refused when it was already accepted, is older than
    ``size`` below ``highest``, or is more than ``max_ahead`` above it. Every shouyin transport
    (serial with ACK/NAK, TCP, TLS) delivers in order, so the default ``size=1`` makes ``seq``
    strictly increasing as DESIGN.md requires: a delayed, reordered or repeated frame is refused.
    Gaps (a frame refused on the way) are fine. A larger window is for datagram transports.

    Args:
        size: how many sequence numbers below the highest are remembered (1..1024).
        max_ahead: how far above the highest a ``seq`` may jump.
    """

    def __init__(self, size: int = 1, max_ahead: int = 1024) -> None:
        if not 1 <= size <= 1024:
            raise ValueError("window size must be 1..1024")
        self.size = size
        self.max_ahead = max_ahead
        self.highest = -1
        self._bitmap = 0

    def check(self, seq: int) -> None:
        """Raise :class:`SecurityError` if ``seq`` must be refused; does not record it."""
        if seq > self.highest:
            if seq - self.highest > self.max_ahead:
                raise SecurityError(Refusal.TOO_FAR_AHEAD, f"highest is {self.highest}", seq)
            return
        offset = self.highest - seq
        if offset >= self.size:
            raise SecurityError(Refusal.TOO_OLD, f"highest is {self.highest}", seq)
        if self._bitmap >> offset & 1:
            raise SecurityError(Refusal.REPLAYED, "", seq)

    def commit(self, seq: int) -> None:
        """Record ``seq`` as accepted (after its tag verified)."""
        if seq > self.highest:
            shift = seq - self.highest
            mask = (1 << self.size) - 1
            self._bitmap = ((self._bitmap << shift) | 1) & mask if shift < self.size else 1
            self.highest = seq
        else:
            self._bitmap |= 1 << (self.highest - seq)


class SecureChannel:
    """Seal outgoing and open incoming bodies for one side of a session.

    Args:
        keys: the session keys from :func:`derive_session_keys`.
        outgoing: the direction this side sends in (``ECR_TO_POI`` for the cashier side).
        window: replay window for incoming bodies (a fresh default one if omitted).
    """

    def __init__(
        self, keys: SessionKeys, outgoing: Direction, window: ReplayWindow | None = None
    ) -> None:
        self.keys = keys
        self.outgoing = outgoing
        self.incoming = outgoing.reverse
        self.window = window or ReplayWindow()
        self.next_seq = 0
        self.refusals = 0
        self._seal_aead = keys.aead(outgoing)
        self._open_aead = keys.aead(self.incoming)

    @property
    def key_id(self) -> bytes:
        """The 4-byte id of the session keys (safe to log)."""
        return self.keys.key_id

    def seal(self, plaintext: bytes) -> bytes:
        """Return the sealed envelope of ``plaintext`` under the next sequence number.

        Raises:
            LocalProtocolError: the sequence space is exhausted (log in again for new keys).
        """
        seq = self.next_seq
        if seq > _MAX_SEQ:
            raise LocalProtocolError("sequence numbers exhausted; log in again")
        self.next_seq = seq + 1
        header = _HEADER.pack(ENVELOPE_VERSION, self.outgoing, self.keys.key_id, seq)
        nonce = self.keys.iv(self.outgoing) + seq.to_bytes(8, "big")
        return header + self._seal_aead.encrypt(nonce, plaintext, header)

    def open(self, body: bytes) -> bytes:
        """Check and decrypt an incoming envelope; return the plaintext.

        Raises:
            SecurityError: unsealed, truncated, unknown version, wrong direction, wrong key id,
                replayed / too old / too far ahead ``seq``, or bad tag.
        """
        try:
            return self._open(body)
        except SecurityError:
            self.refusals += 1
            raise

    def _open(self, body: bytes) -> bytes:
        if not body or body[0] != ENVELOPE_VERSION:
            if body[:1] == b"{":
                raise SecurityError(Refusal.UNSEALED, "plain body where a sealed one is required")
            raise SecurityError(Refusal.UNKNOWN_VERSION, f"first byte {body[:1].hex() or 'none'}")
        if len(body) < ENVELOPE_OVERHEAD:
            raise SecurityError(Refusal.TRUNCATED, f"{len(body)} bytes")
        _version, direction, key_id, seq = _HEADER.unpack_from(body)
        if direction != self.incoming:
            raise SecurityError(Refusal.WRONG_DIRECTION, f"direction byte {direction}", seq)
        if not hmac.compare_digest(key_id, self.keys.key_id):
            raise SecurityError(Refusal.WRONG_KEY, f"key id {key_id.hex()}", seq)
        self.window.check(seq)
        header = body[:HEADER_SIZE]
        nonce = self.keys.iv(self.incoming) + seq.to_bytes(8, "big")
        try:
            plaintext = self._open_aead.decrypt(nonce, body[HEADER_SIZE:], header)
        except InvalidTag as error:
            raise SecurityError(Refusal.BAD_TAG, "", seq) from error
        self.window.commit(seq)
        return plaintext

    def __repr__(self) -> str:
        return (
            f"SecureChannel(key_id={self.keys.key_id.hex()!r}, outgoing={self.outgoing.name}, "
            f"next_seq={self.next_seq}, highest_in={self.window.highest})"
        )
