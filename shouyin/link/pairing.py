"""Pairing: turn a one-time 8-digit code into a terminal's long-term key, sans-I/O.

The admin registers a terminal; the cashier system (ECR) shows a :class:`PairingCode` (8 digits,
valid 10 minutes, single use, burnt after 3 failed attempts). The admin types it on the terminal
(POI). Both sides then run SPAKE2 (package ``spake2``, the ECR as side A, the terminal as side B)
keyed by the code, so that an eavesdropper learns nothing and an active attacker gets exactly one
online guess per attempt, which the code's 3-attempt budget turns into a 3 in 10^8 chance.

Messages (all unsealed, JSON, see :mod:`shouyin.link.messages`)::

    POI -> ECR  PairingRequest   {terminal_id, pake: B's SPAKE2 message, csr?}
    ECR -> POI  PairingChallenge {ecr_id, pake: A's SPAKE2 message, confirm: HMAC(k_ecr, "ecr"|th)}
    POI -> ECR  PairingConfirm   {confirm: HMAC(k_poi, "poi"|th)}, or no confirm when the ECR's
                                 confirmation did not verify
    ECR -> POI  PairingComplete  {result, key_id, certificate?, ca_certificate?,
                                  mac: HMAC(k_done, th | lp(result, key_id, cert, ca))}

where ``th`` is the transcript hash::

    th = SHA-256(lp("shouyin/link/v1 pairing", ecr_id, terminal_id, pake_a, pake_b, csr or ""))
    k_ecr | k_poi | k_done | long_term_key = HKDF-SHA256(ikm=SPAKE2 key, salt=th,
                                                  info="shouyin/link/v1 pairing", 128 bytes)

``lp`` is the 2-byte length prefix of :func:`~shouyin.link.security.length_prefixed`. Binding the
identities and the CSR into ``th`` means a relay cannot swap them; the MAC on PairingComplete
covers the certificates the ECR issues. With a wrong code both sides compute different SPAKE2 keys:
the terminal finds the ECR's confirmation wrong and answers with an empty confirmation, the ECR
counts a failed attempt and answers ``failure``; neither learns more than "wrong".

Every attempt is counted as failed when it starts and refunded when it succeeds, so an attacker who
drops the connection half-way also spends an attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from spake2 import SPAKE2_A, SPAKE2_B

from shouyin.link.errors import LocalProtocolError, PairingCodeRejected, PairingFailed
from shouyin.link.messages import (
    PairingChallenge,
    PairingComplete,
    PairingConfirm,
    PairingRequest,
)
from shouyin.link.security import LongTermKey, length_prefixed
from shouyin.link.values import ErrorCondition, Result

__all__ = [
    "PAIRING_CODE_LIFETIME",
    "PAIRING_MAX_FAILURES",
    "CertificateIssuer",
    "CodeState",
    "PairingClient",
    "PairingCode",
    "PairingOutcome",
    "PairingServer",
]

logger = logging.getLogger(__name__)

PAIRING_CODE_LIFETIME = 600.0
"""Seconds a pairing code stays valid (10 minutes)."""
PAIRING_MAX_FAILURES = 3
"""Failed attempts after which a code is burnt."""

_SPAKE_ID_ECR = b"shouyin/ecr"
_SPAKE_ID_POI = b"shouyin/poi"

Entropy = Callable[[int], bytes]
CertificateIssuer = Callable[[str, str | None], tuple[str | None, str | None]]
"""Hook ``(terminal_id, csr_pem) -> (certificate_pem, ca_certificate_pem)`` run by the ECR once
the terminal proved it knows the code; x509 issuance lives outside the link package."""


class CodeState(StrEnum):
    """Life cycle of a pairing code."""

    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    BURNT = "burnt"


class PairingCode:
    """A one-time 8-digit pairing code: 10 minutes, single use, 3 failed attempts at most.

    ``repr`` hides the digits; read :attr:`digits` to show them to the admin.

    Args:
        digits: exactly 8 ASCII digits.
        created_at: ``now`` when the code was made (seconds, the caller's clock).
        lifetime: seconds until it expires.
        max_failures: failed attempts until it is burnt.
    """

    def __init__(
        self,
        digits: str,
        *,
        created_at: float,
        lifetime: float = PAIRING_CODE_LIFETIME,
        max_failures: int = PAIRING_MAX_FAILURES,
    ) -> None:
        if len(digits) != 8 or not digits.isascii() or not digits.isdigit():
            raise ValueError("a pairing code is exactly 8 digits")
        self._digits = digits
        self.created_at = created_at
        self.expires_at = created_at + lifetime
        self.max_failures = max_failures
        self.failures = 0
        self.used = False

    @classmethod
    def from_random(cls, random_bytes: bytes, now: float) -> PairingCode:
        """Make a code from at least 8 random bytes (bias below 10^-11).

        Raises:
            ValueError: fewer than 8 bytes were given.
        """
        if len(random_bytes) < 8:
            raise ValueError("need at least 8 random bytes")
        value = int.from_bytes(random_bytes[:8], "big") % 100_000_000
        return cls(f"{value:08d}", created_at=now)

    @classmethod
    def generate(cls, now: float) -> PairingCode:
        """Make a code from the operating system's CSPRNG."""
        return cls.from_random(secrets.token_bytes(8), now)

    @property
    def digits(self) -> str:
        """The 8 digits, to show the admin (never log them)."""
        return self._digits

    def state(self, now: float) -> CodeState:
        """The code's state at ``now``."""
        if self.used:
            return CodeState.USED
        if self.failures >= self.max_failures:
            return CodeState.BURNT
        if now >= self.expires_at:
            return CodeState.EXPIRED
        return CodeState.VALID

    def begin_attempt(self, now: float) -> bytes:
        """Start an attempt: count it as failed until :meth:`record_success`; return the password.

        Raises:
            PairingCodeRejected: the code is expired, used or burnt.
        """
        state = self.state(now)
        if state is not CodeState.VALID:
            raise PairingCodeRejected(state.value)
        self.failures += 1
        return self._digits.encode()

    def record_success(self) -> None:
        """The attempt succeeded: refund it and mark the code used."""
        self.failures = max(0, self.failures - 1)
        self.used = True

    def __repr__(self) -> str:
        return (
            f"PairingCode(digits='********', expires_at={self.expires_at}, "
            f"failures={self.failures}, used={self.used})"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class PairingOutcome:
    """What the terminal takes away from a successful pairing."""

    key: LongTermKey
    certificate: str | None
    ca_certificate: str | None


@dataclass(frozen=True, slots=True)
class _PairingKeys:
    transcript: bytes
    confirm_ecr: bytes
    confirm_poi: bytes
    done: bytes
    long_term: bytes

    def __repr__(self) -> str:
        return "_PairingKeys(<redacted>)"


def _derive(
    spake_key: bytes,
    *,
    ecr_id: str,
    terminal_id: str,
    pake_a: bytes,
    pake_b: bytes,
    csr: str | None,
) -> _PairingKeys:
    th = hashlib.sha256(
        length_prefixed(
            b"shouyin/link/v1 pairing", ecr_id, terminal_id, pake_a, pake_b, (csr or "").encode()
        )
    ).digest()
    okm = HKDF(
        algorithm=hashes.SHA256(), length=128, salt=th, info=b"shouyin/link/v1 pairing"
    ).derive(spake_key)
    return _PairingKeys(th, okm[0:32], okm[32:64], okm[64:96], okm[96:128])


def _mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _complete_mac(keys: _PairingKeys, message: PairingComplete) -> str:
    covered = length_prefixed(
        message.result.value,
        message.key_id or "",
        message.certificate or "",
        message.ca_certificate or "",
    )
    return _mac(keys.done, keys.transcript + covered)


def _pake_bytes(text: str) -> bytes:
    return bytes.fromhex(text)


class PairingServer:
    """The ECR side of one pairing attempt (SPAKE2 side A).

    Args:
        ecr_id: the cashier system's identity, bound into the key.
        code: the pairing code the admin was shown; attempts are counted on it.
        entropy: random source for SPAKE2 (``os.urandom``; inject a fixed one in tests).
        issuer: optional :data:`CertificateIssuer` hook for a TLS client certificate.
    """

    def __init__(
        self,
        ecr_id: str,
        code: PairingCode,
        *,
        entropy: Entropy = os.urandom,
        issuer: CertificateIssuer | None = None,
    ) -> None:
        self.ecr_id = ecr_id
        self.code = code
        self.issuer = issuer
        self.terminal_id: str | None = None
        self.csr: str | None = None
        self._entropy = entropy
        self._keys: _PairingKeys | None = None
        self._service_id = ""
        self._key: LongTermKey | None = None

    def receive_request(self, request: PairingRequest, now: float) -> PairingChallenge:
        """Answer the terminal's request with our SPAKE2 message and key confirmation.

        Raises:
            PairingCodeRejected: the code is expired, used or burnt (answer with :meth:`refusal`).
            PairingFailed: the terminal's SPAKE2 message is malformed.
        """
        password = self.code.begin_attempt(now)
        self.terminal_id = request.terminal_id
        self.csr = request.csr
        self._service_id = request.service_id
        spake = SPAKE2_A(password, idA=_SPAKE_ID_ECR, idB=_SPAKE_ID_POI, entropy_f=self._entropy)
        pake_a: bytes = spake.start()
        pake_b = _pake_bytes(request.pake)
        try:
            spake_key: bytes = spake.finish(pake_b)
        except Exception as error:  # spake2 raises assorted types on malformed input
            raise PairingFailed("malformed PAKE message") from error
        self._keys = _derive(
            spake_key,
            ecr_id=self.ecr_id,
            terminal_id=request.terminal_id,
            pake_a=pake_a,
            pake_b=pake_b,
            csr=self.csr,
        )
        return PairingChallenge(
            service_id=request.service_id,
            ecr_id=self.ecr_id,
            pake=pake_a.hex(),
            confirm=_mac(self._keys.confirm_ecr, b"ecr" + self._keys.transcript),
        )

    def receive_confirm(self, confirm: PairingConfirm) -> LongTermKey:
        """Check the terminal's confirmation; on success the code is used and the key agreed.

        Raises:
            PairingFailed: wrong code (or tampering): the attempt stays counted as failed.
        """
        keys = self._keys
        if keys is None or self.terminal_id is None:
            raise LocalProtocolError("receive_request must come first")
        expected = _mac(keys.confirm_poi, b"poi" + keys.transcript)
        if confirm.confirm is None or not hmac.compare_digest(confirm.confirm, expected):
            logger.warning(
                "pairing of terminal %r failed: key confirmation (wrong code?)", self.terminal_id
            )
            raise PairingFailed("key confirmation failed")
        self.code.record_success()
        self._key = LongTermKey(keys.long_term, ecr_id=self.ecr_id, terminal_id=self.terminal_id)
        logger.info("terminal %r paired, key id %s", self.terminal_id, self._key.key_id)
        return self._key

    def complete(self) -> PairingComplete:
        """The final success message, with certificates from the issuer hook if any."""
        keys, key = self._keys, self._key
        if keys is None or key is None or self.terminal_id is None:
            raise LocalProtocolError("pairing is not confirmed")
        certificate, ca_certificate = (
            self.issuer(self.terminal_id, self.csr) if self.issuer else (None, None)
        )
        unsigned = PairingComplete(
            service_id=self._service_id,
            result=Result.SUCCESS,
            key_id=key.key_id,
            certificate=certificate,
            ca_certificate=ca_certificate,
        )
        return unsigned.model_copy(update={"mac": _complete_mac(keys, unsigned)})

    @staticmethod
    def refusal(service_id: str, condition: ErrorCondition) -> PairingComplete:
        """A failure answer (no MAC: it grants nothing)."""
        return PairingComplete(
            service_id=service_id, result=Result.FAILURE, error_condition=condition
        )


class PairingClient:
    """The terminal side of one pairing attempt (SPAKE2 side B).

    Args:
        terminal_id: the terminal's identity.
        code: the 8 digits the admin typed (or scanned).
        service_id: id of the pairing exchange.
        csr: optional PEM certificate signing request for a TLS client certificate.
        entropy: random source for SPAKE2.
    """

    def __init__(
        self,
        terminal_id: str,
        code: str,
        *,
        service_id: str = "pairing",
        csr: str | None = None,
        entropy: Entropy = os.urandom,
    ) -> None:
        self.terminal_id = terminal_id
        self.service_id = service_id
        self.csr = csr
        self.ecr_id: str | None = None
        self.error: PairingFailed | None = None
        self._spake = SPAKE2_B(
            code.encode(), idA=_SPAKE_ID_ECR, idB=_SPAKE_ID_POI, entropy_f=entropy
        )
        self._pake_b = b""
        self._keys: _PairingKeys | None = None

    def start(self) -> PairingRequest:
        """The first message."""
        self._pake_b = self._spake.start()
        return PairingRequest(
            service_id=self.service_id,
            terminal_id=self.terminal_id,
            pake=self._pake_b.hex(),
            csr=self.csr,
        )

    def receive_challenge(self, challenge: PairingChallenge) -> PairingConfirm:
        """Check the ECR's confirmation and answer with ours, or with none if it was wrong.

        On failure :attr:`error` is set; the exchange still ends with the ECR's PairingComplete.
        """
        self.ecr_id = challenge.ecr_id
        pake_a = _pake_bytes(challenge.pake)
        try:
            spake_key: bytes = self._spake.finish(pake_a)
        except Exception:  # spake2 raises assorted types on malformed input
            self.error = PairingFailed("malformed PAKE message")
            return PairingConfirm(service_id=self.service_id)
        keys = _derive(
            spake_key,
            ecr_id=challenge.ecr_id,
            terminal_id=self.terminal_id,
            pake_a=pake_a,
            pake_b=self._pake_b,
            csr=self.csr,
        )
        expected = _mac(keys.confirm_ecr, b"ecr" + keys.transcript)
        if not hmac.compare_digest(challenge.confirm, expected):
            logger.warning("pairing failed: the cashier system's confirmation is wrong")
            self.error = PairingFailed("key confirmation failed (wrong code?)")
            return PairingConfirm(service_id=self.service_id)
        self._keys = keys
        return PairingConfirm(
            service_id=self.service_id, confirm=_mac(keys.confirm_poi, b"poi" + keys.transcript)
        )

    def receive_complete(self, complete: PairingComplete) -> PairingOutcome:
        """Check the ECR's final message and return the long-term key.

        Raises:
            PairingFailed: our own check failed, the ECR refused, or the MAC is wrong.
        """
        if self.error is not None:
            raise self.error
        keys = self._keys
        if complete.result is not Result.SUCCESS or keys is None or self.ecr_id is None:
            raise PairingFailed(f"refused by the cashier system ({complete.error_condition})")
        if complete.mac is None or not hmac.compare_digest(
            complete.mac, _complete_mac(keys, complete.model_copy(update={"mac": None}))
        ):
            raise PairingFailed("final message MAC is wrong")
        key = LongTermKey(keys.long_term, ecr_id=self.ecr_id, terminal_id=self.terminal_id)
        if complete.key_id != key.key_id:
            raise PairingFailed("key id mismatch")
        return PairingOutcome(key, complete.certificate, complete.ca_certificate)
