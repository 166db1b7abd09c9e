"""Logs and error texts never carry key material, pairing codes or card numbers."""

from __future__ import annotations

import logging

import pytest

from shouyin.link import (
    LongTermKey,
    MessageDecodeError,
    Paired,
    PairingCode,
    decode,
    encode_stream_frame,
)

from .helpers import make_pair, of_type
from .samples import TYPICAL_PAYMENT_REQUEST, TYPICAL_PAYMENT_RESPONSE

PAN = "6228480402564890018"


def test_a_whole_session_logs_no_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="shouyin.link")
    pair = make_pair(paired=False)
    code = PairingCode("73914682", created_at=pair.now)
    pair.cashier.allow_pairing(code)
    pair.terminal.start_pairing("73914682", pair.now)
    pair.pump()
    [paired] = of_type(pair.cashier_events, Paired)
    pair.cashier.login(pair.now)
    pair.pump()
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.terminal.send(TYPICAL_PAYMENT_RESPONSE, pair.now)
    pair.pump()
    smuggled = f'{{"type":"payment_response","acquirer":{{"masked_pan":"{PAN}"}}}}'.encode()
    pair.cashier.receive_data(encode_stream_frame(smuggled), pair.now)
    pair.cashier.receive_data(encode_stream_frame(b"\x01" + b"\xaa" * 60), pair.now)
    pair.advance(10.0)
    key: LongTermKey = paired.key
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert caplog.records  # the run did log: refusals, login, pairing
    for secret in (key.secret_bytes().hex(), "73914682", PAN):
        assert secret not in text
    assert key.key_id in text  # the key *id* is what logs show


def test_decode_error_text_has_no_card_number() -> None:
    with pytest.raises(MessageDecodeError) as caught:
        decode(f'{{"type":"payment_request","description":{PAN}}}'.encode())
    assert PAN not in str(caught.value)
