"""Helpers for tests over real asyncio endpoints, shared by ``tests/link`` and ``tests/e2e``:
fast link timers, trust material, and the every-category exchange."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shouyin.link import (
    AbortRequest,
    AdminAction,
    AdminRequest,
    Backoff,
    Capabilities,
    DiagnosisRequest,
    DisplayRequest,
    DocumentKind,
    EventNotification,
    FirmwarePackage,
    HeartbeatRequest,
    HeartbeatResponse,
    LinkConfig,
    LongTermKey,
    MessageReceived,
    NotificationKind,
    Paired,
    PairingCode,
    PaymentKind,
    PaymentProgress,
    PaymentRequest,
    PrintRequest,
    ReconciliationKind,
    ReconciliationRequest,
    RefundRequest,
    Request,
    Response,
    Result,
    ReversalReason,
    ReversalRequest,
    TransactionState,
    TransactionStatusRequest,
    TransactionStatusResponse,
    response_type_for,
)
from shouyin.link.aio import LinkEndpoint
from shouyin.link.firewall import Firewall, FirewallPolicy
from shouyin.link.keystore import KeyStore
from tests.link.helpers import ECR_ID, TERMINAL_ID

__all__ = [
    "ECR_ID",
    "FAST",
    "QUICK_BACKOFF",
    "TERMINAL_ID",
    "TIMEOUT",
    "Trust",
    "ecr_capabilities",
    "exchange_every_category",
    "fresh_code",
    "make_trust",
    "now",
    "wait_for_notification",
    "wrong_digits",
]

TIMEOUT = 5.0
"""Upper bound of any single wait in these tests."""

FAST = LinkConfig(
    heartbeat_interval=0.4,
    dead_after=1.2,
    request_timeout=3.0,
    login_timeout=2.0,
    pairing_timeout=3.0,
    payment_timeout=3.0,
    payment_hard_limit=6.0,
)
"""Short timers so that dead links show up within a second or two."""
QUICK_BACKOFF = Backoff(initial=0.05, factor=2.0, maximum=0.4, jitter=0.5)


def ecr_capabilities() -> Capabilities:
    """What the cashier system offers at Login."""
    return Capabilities(printer=True, display=True, max_frame_size=8192, firmware="shouyin 0.1.0")


def now() -> datetime:
    """Wall-clock time for certificates (OpenSSL checks against the real clock)."""
    return datetime.now(UTC)


def fresh_code() -> PairingCode:
    """A pairing code on the event loop's (monotonic) clock."""
    return PairingCode.generate(time.monotonic())


def wrong_digits(code: PairingCode) -> str:
    """Eight digits that are certainly not ``code``."""
    return f"{(int(code.digits) + 1) % 100_000_000:08d}"


@dataclass
class Trust:
    """The cashier side's trust material: key store, firewall and the paired terminals' keys."""

    keystore: KeyStore
    firewall: Firewall
    keys: dict[str, LongTermKey] = field(default_factory=dict)

    def remember(self, event: Paired) -> None:
        """``on_paired`` hook: keep the new long-term key."""
        self.keys[event.peer_id] = event.key

    def issuer(self) -> Any:
        """The certificate issuer hook for pairing."""
        return self.keystore.certificate_issuer(now)


def make_trust(directory: Path, policy: FirewallPolicy | None = None) -> Trust:
    """A fresh store CA and server certificate for 127.0.0.1, and a loopback-only firewall."""
    keystore = KeyStore(directory)
    keystore.init("测试超市", ["127.0.0.1", "::1"], now())
    return Trust(keystore, Firewall(policy or FirewallPolicy()))


# -- every message category ------------------------------------------------------------------------


async def exchange_every_category(ecr: LinkEndpoint, *, tag: str = "x") -> dict[str, Response]:
    """Send one request of every category through a logged-in cashier endpoint and check that
    each is answered with success by the peer; then log out and in again (签退/签到).

    Also checks the peer's progress messages (when it sends them) and the card-removed
    notification that follows a card payment. Returns the responses by request type.
    """
    new = ecr.new_service_id
    progress: list[PaymentProgress] = []
    ref = f"L01-{tag}-"
    requests: list[Request] = [
        PaymentRequest(service_id=new(), ecr_ref=ref + "1", amount=12_345, kind=PaymentKind.CARD),
        PaymentRequest(
            service_id=new(),
            ecr_ref=ref + "2",
            amount=880,
            kind=PaymentKind.QR_CODE,
            auth_code="134567890123456789",
        ),
        TransactionStatusRequest(service_id=new(), ecr_ref=ref + "1"),
        ReversalRequest(service_id=new(), ecr_ref=ref + "2", reason=ReversalReason.VOID),
        RefundRequest(
            service_id=new(), ecr_ref=ref + "3", amount=5_000, original_ecr_ref=ref + "1"
        ),
        AbortRequest(service_id=new(), target_service_id="E1"),
        DiagnosisRequest(service_id=new(), check_acquirer=True),
        ReconciliationRequest(service_id=new(), kind=ReconciliationKind.SETTLEMENT),
        PrintRequest(service_id=new(), document=DocumentKind.RECEIPT, lines=("谢谢惠顾", "Thanks")),
        DisplayRequest(service_id=new(), lines=("合计 ￥123.45",)),
        AdminRequest(
            service_id=new(),
            action=AdminAction.FIRMWARE_UPDATE,
            firmware=FirmwarePackage(version="2.0.0", sha256="ab" * 32, size=1024),
        ),
        HeartbeatRequest(service_id=new()),
    ]
    answers: dict[str, Response] = {}
    for request in requests:
        response = await ecr.request(request, on_progress=progress.append, timeout=TIMEOUT)
        assert isinstance(response, response_type_for(request)), (request, response)
        assert response.result is Result.SUCCESS, (request, response)
        assert response.service_id == request.service_id
        answers[request.type] = response
    status = answers["transaction_status_request"]
    assert isinstance(status, TransactionStatusResponse) and status.transaction is not None
    assert status.transaction.state is TransactionState.APPROVED
    heartbeat = answers["heartbeat_request"]
    assert isinstance(heartbeat, HeartbeatResponse) and heartbeat.health is not None
    await wait_for_notification(ecr, NotificationKind.CARD_REMOVED)
    await ecr.logout(timeout=TIMEOUT)
    assert ecr.peer is None
    peer = await ecr.login(timeout=TIMEOUT)
    assert peer == ecr.connection.peer
    return answers


async def wait_for_notification(ecr: LinkEndpoint, kind: NotificationKind) -> EventNotification:
    """Wait for an event notification of ``kind`` among the endpoint's events."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            event = await ecr.next_event()
            message = event.message if isinstance(event, MessageReceived) else None
            if isinstance(message, EventNotification) and message.event is kind:
                return message
