"""Wire overhead of framing + envelope over the JSON of a typical Payment exchange (<= 30%)."""

from __future__ import annotations

import logging

import pytest

from shouyin.link import ENVELOPE_OVERHEAD, PaymentProgress, ProgressStage, encode

from .helpers import Framing, make_pair
from .samples import TYPICAL_PAYMENT_REQUEST, TYPICAL_PAYMENT_RESPONSE

logger = logging.getLogger(__name__)

SERIAL_FRAME_OVERHEAD = 6  # STX, LEN(2), ETX, CRC(2)
STREAM_FRAME_OVERHEAD = 4  # LEN(4)


def test_typical_payment_bodies_are_in_the_expected_size_range() -> None:
    assert 150 <= len(encode(TYPICAL_PAYMENT_REQUEST)) <= 500
    assert 300 <= len(encode(TYPICAL_PAYMENT_RESPONSE)) <= 500


@pytest.mark.parametrize(
    ("framing", "per_frame"),
    [
        ("serial", SERIAL_FRAME_OVERHEAD + ENVELOPE_OVERHEAD + 1),
        ("stream", STREAM_FRAME_OVERHEAD + ENVELOPE_OVERHEAD),
    ],
)
def test_payment_exchange_overhead_is_at_most_30_percent(framing: Framing, per_frame: int) -> None:
    pair = make_pair(framing)
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.terminal.send(TYPICAL_PAYMENT_RESPONSE, pair.now)
    pair.pump()
    wire = sum(len(data) for _, data in pair.wire)
    json_bytes = len(encode(TYPICAL_PAYMENT_REQUEST)) + len(encode(TYPICAL_PAYMENT_RESPONSE))
    assert wire == json_bytes + 2 * per_frame  # on serial "+ 1" is each frame's ACK
    overhead = (wire - json_bytes) / json_bytes
    logger.info(
        "%s: JSON %d B, wire %d B, overhead %.1f%%", framing, json_bytes, wire, overhead * 100
    )
    assert overhead <= 0.30
    request_overhead = per_frame / len(encode(TYPICAL_PAYMENT_REQUEST))
    assert request_overhead <= 0.30


def test_payment_exchange_with_three_progress_reports_stays_under_30_percent_on_serial() -> None:
    pair = make_pair("serial")
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    stages = (ProgressStage.INSERT_CARD, ProgressStage.PIN_ENTRY, ProgressStage.CONTACTING_ACQUIRER)
    progress = [PaymentProgress(service_id="E42", stage=stage) for stage in stages]
    for message in progress:
        pair.terminal.send(message, pair.now)
        pair.pump()
    pair.terminal.send(TYPICAL_PAYMENT_RESPONSE, pair.now)
    pair.pump()
    messages = [TYPICAL_PAYMENT_REQUEST, *progress, TYPICAL_PAYMENT_RESPONSE]
    json_bytes = sum(len(encode(m)) for m in messages)
    wire = sum(len(data) for _, data in pair.wire)
    assert wire == json_bytes + len(messages) * (SERIAL_FRAME_OVERHEAD + ENVELOPE_OVERHEAD + 1)
    overhead = (wire - json_bytes) / json_bytes
    logger.info(
        "serial with progress: JSON %d B, wire %d B, overhead %.1f%%",
        json_bytes,
        wire,
        overhead * 100,
    )
    assert overhead <= 0.30
