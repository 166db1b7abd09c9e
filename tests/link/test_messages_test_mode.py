"""The test-mode additions to the link messages: Admin commands, the ``test`` mark on answers,
``test_mode`` in health, the notifications; and that normal messages' bytes did not change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shouyin.link import decode, encode
from shouyin.link.errors import MessageDecodeError
from shouyin.link.messages import (
    AdminRequest,
    AdminResponse,
    EventNotification,
    HeartbeatResponse,
    PaymentResponse,
)
from shouyin.link.values import (
    AdminAction,
    NotificationKind,
    PaymentKind,
    Result,
    TerminalHealth,
)


def test_test_mode_start_with_its_timeout_is_exact_compact_json() -> None:
    request = AdminRequest(
        service_id="E1", action=AdminAction.TEST_MODE_START, test_mode_timeout=600
    )
    body = (
        b'{"type":"admin_request","service_id":"E1","action":"test_mode_start",'
        b'"test_mode_timeout":600}'
    )
    assert encode(request) == body
    assert decode(body) == request
    end = AdminRequest(service_id="E2", action=AdminAction.TEST_MODE_END)
    assert encode(end) == b'{"type":"admin_request","service_id":"E2","action":"test_mode_end"}'


def test_admin_answer_carries_test_mode_and_until_when() -> None:
    until = datetime(2025, 3, 14, 2, 10, tzinfo=UTC)
    answer = AdminResponse(
        service_id="E1", result=Result.SUCCESS, test_mode=True, test_mode_until=until
    )
    assert decode(encode(answer)) == answer
    assert b'"test_mode":true,"test_mode_until":"2025-03-14T02:10:00Z"' in encode(answer)


@pytest.mark.parametrize("action", [AdminAction.TEST_MODE_END, AdminAction.REBOOT])
def test_a_test_mode_timeout_goes_only_with_test_mode_start(action: AdminAction) -> None:
    with pytest.raises(ValidationError, match="test_mode_timeout"):
        AdminRequest(service_id="E1", action=action, test_mode_timeout=60)


@pytest.mark.parametrize("timeout", [0, 3601, 1.5, "600"])
def test_a_test_mode_timeout_is_a_bounded_int_of_seconds(timeout: object) -> None:
    body = (
        b'{"type":"admin_request","service_id":"E1","action":"test_mode_start",'
        b'"test_mode_timeout":'
        + (f'"{timeout}"' if isinstance(timeout, str) else str(timeout)).encode()
        + b"}"
    )
    with pytest.raises(MessageDecodeError, match="test_mode_timeout"):
        decode(body)


def test_a_test_answer_is_marked_and_a_normal_one_is_byte_for_byte_unchanged() -> None:
    normal = PaymentResponse(
        service_id="E1", result=Result.SUCCESS, ecr_ref="R1", amount=1, kind=PaymentKind.CARD
    )
    expected = (
        b'{"type":"payment_response","service_id":"E1","result":"success","ecr_ref":"R1",'
        b'"amount":1,"kind":"card"}'
    )
    assert encode(normal) == expected
    test = normal.model_copy(update={"test": True})
    assert decode(encode(test)) == test
    assert b'"test":true' in encode(test)
    decoded = decode(expected)
    assert isinstance(decoded, PaymentResponse) and decoded.test is None


def test_health_reports_test_mode_only_while_on() -> None:
    on = HeartbeatResponse(
        service_id="H1", result=Result.SUCCESS, health=TerminalHealth(test_mode=True)
    )
    assert encode(on) == (
        b'{"type":"heartbeat_response","service_id":"H1","result":"success",'
        b'"health":{"test_mode":true}}'
    )
    assert decode(encode(on)) == on
    off = HeartbeatResponse(
        service_id="H2", result=Result.SUCCESS, health=TerminalHealth(firmware="SIM-1.0.0")
    )
    assert b"test_mode" not in encode(off)


@pytest.mark.parametrize(
    ("kind", "wire"),
    [
        (NotificationKind.TEST_MODE_STARTED, "test_mode_started"),
        (NotificationKind.TEST_MODE_ENDED, "test_mode_ended"),
    ],
)
def test_test_mode_notifications_round_trip(kind: NotificationKind, wire: str) -> None:
    event = EventNotification(event=kind, detail="timeout")
    assert f'"event":"{wire}"'.encode() in encode(event)
    assert decode(encode(event)) == event
