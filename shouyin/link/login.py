"""Login (签到): the handshake that checks compatibility and derives fresh session keys.

Four bodies, byte-exact transcript binding::

    ECR -> POI  LoginRequest  (unsealed: versions, capabilities, ecr nonce, long-term key id)
    POI -> ECR  LoginResponse (unsealed: chosen version, capabilities, terminal nonce)
    POI -> ECR  LoginConfirm  (sealed, POI seq 0)
    ECR -> POI  LoginConfirm  (sealed, ECR seq 0)

Session keys are :func:`~shouyin.link.security.derive_session_keys` over the long-term key, both
32-byte nonces, both identities and the SHA-256 of the *exact* request and response bodies, so each
confirm proves its sender holds the long-term key and saw the same, untampered, hello messages (a
relay that rewrites a version list or a capability gets a different key id and is refused).

A refused login is answered with a failure ``LoginResponse``: ``incompatible`` (with the versions
this side speaks and a readable reason) or ``not_paired``. Pure functions: the connection
(:mod:`shouyin.link.session`) does the sending and the state changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from shouyin.link.config import LinkConfig
from shouyin.link.errors import IncompatiblePeer, Refusal, SecurityError
from shouyin.link.events import PeerInfo
from shouyin.link.messages import LoginRequest, LoginResponse, encode
from shouyin.link.security import (
    Direction,
    LongTermKey,
    SecureChannel,
    derive_session_keys,
    transcript_hash,
)
from shouyin.link.values import Capabilities, ErrorCondition, Result

__all__ = [
    "LoginAnswer",
    "LoginAttempt",
    "accept_login_response",
    "answer_login",
    "check_peer",
    "make_login_request",
]


@dataclass(slots=True)
class LoginAttempt:
    """A login in progress on either side."""

    service_id: str
    deadline: float
    request_body: bytes = b""
    nonce: bytes = b""
    peer: PeerInfo | None = None


@dataclass(frozen=True, slots=True)
class LoginAnswer:
    """(POI) What to answer a Login request with: ``body`` is the exact LoginResponse bytes.

    On refusal ``error`` is set and ``channel``/``peer`` are ``None``.
    """

    body: bytes
    error: IncompatiblePeer | SecurityError | None = None
    channel: SecureChannel | None = None
    peer: PeerInfo | None = None


def check_peer(config: LinkConfig, versions: tuple[int, ...], capabilities: Capabilities) -> int:
    """Return the highest common protocol version if the peer is compatible.

    Raises:
        IncompatiblePeer: no common version, a required payment kind is missing, or the peer's
            maximum frame size is below ``config.min_peer_frame_size``.
    """
    common = set(versions) & set(config.protocol_versions)
    if not common:
        raise IncompatiblePeer("no common protocol version", config.protocol_versions, versions)
    if set(config.required_payment_kinds) - set(capabilities.payment_kinds):
        raise IncompatiblePeer(
            "required payment kinds missing",
            sorted(config.required_payment_kinds),
            sorted(capabilities.payment_kinds),
        )
    if capabilities.max_frame_size < config.min_peer_frame_size:
        raise IncompatiblePeer(
            "maximum frame size too small",
            config.min_peer_frame_size,
            capabilities.max_frame_size,
        )
    return max(common)


def make_login_request(
    *,
    key: LongTermKey,
    identity: str,
    capabilities: Capabilities,
    config: LinkConfig,
    service_id: str,
    nonce: bytes,
    operator_id: str | None = None,
) -> LoginRequest:
    """(ECR) The Login request offering our versions and capabilities with a fresh nonce."""
    return LoginRequest(
        service_id=service_id,
        ecr_id=identity,
        key_id=key.key_id,
        protocol_versions=config.protocol_versions,
        capabilities=capabilities,
        nonce=nonce.hex(),
        operator_id=operator_id,
    )


def answer_login(
    request: LoginRequest,
    request_body: bytes,
    *,
    key: LongTermKey | None,
    identity: str,
    capabilities: Capabilities,
    config: LinkConfig,
    nonce: bytes,
) -> LoginAnswer:
    """(POI) Check a Login request; on success derive the keys bound to both exact bodies."""
    try:
        if key is None or key.key_id != request.key_id or key.ecr_id != request.ecr_id:
            raise SecurityError(Refusal.WRONG_KEY, f"unknown pairing key {request.key_id}")
        version = check_peer(config, request.protocol_versions, request.capabilities)
    except (SecurityError, IncompatiblePeer) as error:
        incompatible = isinstance(error, IncompatiblePeer)
        refusal = LoginResponse(
            service_id=request.service_id,
            result=Result.FAILURE,
            error_condition=(
                ErrorCondition.INCOMPATIBLE if incompatible else ErrorCondition.NOT_PAIRED
            ),
            supported_versions=config.protocol_versions,
            message=str(error)[:256] if incompatible else None,
        )
        return LoginAnswer(encode(refusal), error)
    response = LoginResponse(
        service_id=request.service_id,
        result=Result.SUCCESS,
        terminal_id=identity,
        protocol_version=version,
        supported_versions=config.protocol_versions,
        capabilities=capabilities,
        nonce=nonce.hex(),
    )
    body = encode(response)
    keys = derive_session_keys(
        key,
        ecr_nonce=bytes.fromhex(request.nonce),
        poi_nonce=nonce,
        transcript=transcript_hash([request_body, body]),
    )
    peer = PeerInfo(request.ecr_id, version, request.capabilities, keys.key_id.hex())
    return LoginAnswer(body, None, SecureChannel(keys, Direction.POI_TO_ECR), peer)


def accept_login_response(
    response: LoginResponse,
    response_body: bytes,
    attempt: LoginAttempt,
    *,
    key: LongTermKey,
    config: LinkConfig,
) -> tuple[SecureChannel, PeerInfo]:
    """(ECR) Check the terminal's answer and derive the session keys.

    Raises:
        IncompatiblePeer: the terminal refused us as incompatible, or we refuse it.
        SecurityError: the terminal does not know our key or claims another identity.
    """
    if response.result is not Result.SUCCESS:
        if response.error_condition is ErrorCondition.INCOMPATIBLE:
            raise IncompatiblePeer(
                response.message or "refused by the terminal",
                config.protocol_versions,
                response.supported_versions,
            )
        raise SecurityError(Refusal.WRONG_KEY, "the terminal does not know our pairing key")
    if response.terminal_id != key.terminal_id:
        raise SecurityError(Refusal.WRONG_KEY, f"terminal id {response.terminal_id!r}")
    capabilities, nonce = response.capabilities, response.nonce
    if capabilities is None or nonce is None or response.protocol_version is None:
        raise SecurityError(Refusal.CONFIRMATION_FAILED, "incomplete login response")
    version = check_peer(config, (response.protocol_version,), capabilities)
    keys = derive_session_keys(
        key,
        ecr_nonce=attempt.nonce,
        poi_nonce=bytes.fromhex(nonce),
        transcript=transcript_hash([attempt.request_body, response_body]),
    )
    peer = PeerInfo(key.terminal_id, version, capabilities, keys.key_id.hex())
    return SecureChannel(keys, Direction.ECR_TO_POI), peer
