"""Typed messages: round trips, validation rules, typed decode errors that leak nothing."""

from __future__ import annotations

import json
import typing

import pytest
from hypothesis import given
from pydantic import ValidationError

from shouyin.link import (
    ErrorCondition,
    Message,
    MessageBase,
    MessageDecodeError,
    PaymentKind,
    PaymentRequest,
    PaymentResponse,
    Request,
    Result,
    decode,
    encode,
    failure_response,
)
from shouyin.link.values import AcquirerData

from .samples import SAMPLES, TYPICAL_PAYMENT_REQUEST, messages

PAN = "6228480402564890018"  # Luhn-valid test card number


def test_every_message_type_has_a_sample() -> None:
    union = typing.get_args(typing.get_args(Message)[0])
    assert {type(sample) for sample in SAMPLES} == set(union)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda m: m.type)
def test_every_sample_round_trips(sample: MessageBase) -> None:
    assert decode(encode(sample)) == sample


@given(messages)
def test_messages_round_trip(message: MessageBase) -> None:
    assert decode(encode(message)) == message


def test_encoding_is_compact_json_with_type_first_and_no_nulls() -> None:
    body = encode(TYPICAL_PAYMENT_REQUEST)
    assert body.startswith(b'{"type":"payment_request","service_id":"E42"')
    assert b" " not in body.replace(b"Sale 000123 lane 01", b"")
    assert b"null" not in body
    assert body == (
        b'{"type":"payment_request","service_id":"E42","ecr_ref":"L01-20250314-000123",'
        b'"amount":12345,"currency":"CNY","kind":"card","operator_id":"cashier-07",'
        b'"description":"Sale 000123 lane 01"}'
    )


def test_chinese_text_is_utf8_not_escaped() -> None:
    sample = next(s for s in SAMPLES if s.type == "payment_progress")
    assert "请输入密码".encode() in encode(sample)


@pytest.mark.parametrize("amount", [1.5, 100.0, "100", -1, 0, True])
def test_amount_must_be_a_positive_int_of_fen(amount: object) -> None:
    body = json.dumps(
        {
            "type": "payment_request",
            "service_id": "E1",
            "ecr_ref": "R",
            "kind": "card",
            "amount": amount,
        }
    ).encode()
    with pytest.raises(MessageDecodeError) as caught:
        decode(body)
    assert caught.value.field == "payment_request.amount"


@pytest.mark.parametrize(
    "pan",
    [
        PAN,
        "6228480402564890",
        "622848******12345",
        "62284******1234",
        "abcdef******1234",
        "622848**********1234",
        "622848-1234",
    ],
)
def test_masked_pan_refuses_anything_but_first6_stars_last4(pan: str) -> None:
    with pytest.raises(ValidationError):
        AcquirerData(masked_pan=pan)


@pytest.mark.parametrize("pan", ["622848***1234", "622848******1234", "622848*********1234"])
def test_masked_pan_accepts_first6_stars_last4(pan: str) -> None:
    assert AcquirerData(masked_pan=pan).masked_pan == pan


def test_full_pan_in_a_response_is_refused_and_never_echoed() -> None:
    body = encode(
        PaymentResponse(
            service_id="E1", ecr_ref="R1", result=Result.SUCCESS, acquirer=AcquirerData()
        )
    ).replace(b'"acquirer":{}', f'"acquirer":{{"masked_pan":"{PAN}"}}'.encode())
    with pytest.raises(MessageDecodeError) as caught:
        decode(body)
    assert caught.value.field == "payment_response.acquirer.masked_pan"
    assert PAN not in str(caught.value)
    assert caught.value.__cause__ is None  # the pydantic error (which echoes input) is not chained


def test_pan_smuggled_as_field_name_or_type_is_not_echoed() -> None:
    for body in (
        f'{{"type":"payment_request","{PAN}":1}}'.encode(),
        f'{{"type":"{PAN}"}}'.encode(),
    ):
        with pytest.raises(MessageDecodeError) as caught:
            decode(body)
        assert PAN not in str(caught.value)


def test_qr_payment_needs_an_auth_code_and_card_payment_must_not_have_one() -> None:
    with pytest.raises(ValidationError):
        PaymentRequest(service_id="E1", ecr_ref="R", amount=1, kind=PaymentKind.QR_CODE)
    with pytest.raises(ValidationError):
        PaymentRequest(
            service_id="E1", ecr_ref="R", amount=1, kind=PaymentKind.CARD, auth_code="1" * 18
        )


def test_failure_needs_an_error_condition() -> None:
    with pytest.raises(ValidationError, match="error_condition"):
        PaymentResponse(service_id="E1", ecr_ref="R", result=Result.FAILURE)


def test_failure_response_matches_the_request_and_copies_ecr_ref() -> None:
    response = failure_response(TYPICAL_PAYMENT_REQUEST, ErrorCondition.BUSY)
    assert isinstance(response, PaymentResponse)
    assert (response.service_id, response.ecr_ref) == ("E42", TYPICAL_PAYMENT_REQUEST.ecr_ref)
    assert response.error_condition is ErrorCondition.BUSY


@pytest.mark.parametrize(
    "sample", [s for s in SAMPLES if isinstance(s, Request)], ids=lambda m: m.type
)
def test_every_request_has_a_failure_response(sample: Request) -> None:
    response = failure_response(sample, ErrorCondition.NOT_ALLOWED)
    assert decode(encode(response)) == response


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", ""),
        (b"not json", ""),
        (b"[1,2]", ""),
        (b'{"type":"nope"}', ""),
        (b'{"service_id":"E1"}', ""),
        (b'{"type":"heartbeat_request"}', "heartbeat_request.service_id"),
        (b'{"type":"heartbeat_request","service_id":""}', "heartbeat_request.service_id"),
        (b'{"type":"heartbeat_request","service_id":"E 1"}', "heartbeat_request.service_id"),
        (
            b'{"type":"heartbeat_request","service_id":"E1","x":1}',
            "heartbeat_request.<unexpected field>",
        ),
        (
            b'{"type":"display_request","service_id":"E1","lines":["' + b"x" * 300 + b'"]}',
            "display_request.lines.0",
        ),
        (b"\xff\xfe", ""),
    ],
)
def test_bad_bodies_raise_a_typed_error_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(MessageDecodeError) as caught:
        decode(body)
    assert caught.value.field == field
