"""Attacks and bad input at the session level: every one refused, logged, and survived."""

from __future__ import annotations

import pytest

from shouyin.link import (
    ConnectionState,
    FrameRefused,
    LinkConfig,
    LoggedIn,
    MessageReceived,
    PeerRejected,
    Refusal,
    encode,
    encode_serial_frame,
    encode_stream_frame,
)

from .helpers import Framing, LinkPair, make_pair, of_type, refusals
from .samples import TYPICAL_PAYMENT_REQUEST, TYPICAL_PAYMENT_RESPONSE

REJECTED_STREAM = encode_stream_frame(b'{"type":"rejected"}')


def capture_to_terminal(pair: LinkPair) -> list[bytes]:
    """Record every chunk the cashier writes (a wiretap)."""
    taps: list[bytes] = []

    def tap(data: bytes) -> bytes:
        taps.append(data)
        return data

    pair.to_terminal = tap
    return taps


def test_replayed_frame_is_refused_and_the_peer_told_only_rejected() -> None:
    pair = make_pair()
    wiretap = capture_to_terminal(pair)
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.clear()
    pair.terminal.receive_data(wiretap[0], pair.now)
    assert refusals(pair.terminal.events()) == [Refusal.REPLAYED]
    assert pair.terminal.data_to_send() == REJECTED_STREAM
    pair.cashier.receive_data(REJECTED_STREAM, pair.now)
    assert pair.cashier.events() == [PeerRejected()]
    assert pair.cashier.data_to_send() == b""  # "rejected" is never answered: no ping-pong


def test_replay_of_an_older_frame_over_serial_is_refused() -> None:
    pair = make_pair("serial")
    wiretap = capture_to_terminal(pair)
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.advance(2.0)  # a heartbeat goes by, so the replay is not a mere duplicate
    pair.clear()
    pair.terminal.receive_data(wiretap[0], pair.now)
    pair.pump()
    assert refusals(pair.terminal_events) == [Refusal.TOO_OLD]  # seq is below the last accepted
    assert not of_type(pair.terminal_events, MessageReceived)


def test_unsealed_reply_is_refused_never_decrypted_anyway() -> None:
    pair = make_pair()
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.cashier.receive_data(encode_stream_frame(encode(TYPICAL_PAYMENT_RESPONSE)), pair.now)
    pair.pump()
    assert refusals(pair.cashier_events) == [Refusal.UNSEALED]
    assert not of_type(pair.cashier_events, MessageReceived)
    assert pair.cashier.state is ConnectionState.BUSY  # still waiting for a real answer
    assert pair.cashier.in_flight == TYPICAL_PAYMENT_REQUEST.service_id


def sealed_request_frame(pair: LinkPair) -> bytes:
    wiretap = capture_to_terminal(pair)
    pair.terminal.connection_lost(pair.now)  # keep the terminal from consuming it
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    frame = pair.cashier.data_to_send()
    assert not wiretap
    return frame


def fresh_terminal_pair(framing: Framing) -> tuple[LinkPair, bytes]:
    pair = make_pair(framing, config=LinkConfig(dead_after=1e9))
    twin = make_pair(framing)  # same seeds: same keys and the same bytes
    frame = sealed_request_frame(twin)
    return pair, frame


def test_every_single_bit_flip_of_a_sealed_stream_body_is_refused() -> None:
    pair, frame = fresh_terminal_pair("stream")
    header, body = frame[:4], frame[4:]
    for bit in range(len(body) * 8):
        flipped = bytearray(body)
        flipped[bit // 8] ^= 1 << (bit % 8)
        pair.terminal.receive_data(header + bytes(flipped), pair.now)
        pair.terminal.data_to_send()
        events = pair.terminal.events()
        assert len(events) == 1 and isinstance(events[0], FrameRefused), bit
    assert pair.terminal.state is ConnectionState.READY
    pair.terminal.receive_data(frame, pair.now)
    assert [e.message for e in pair.terminal.events() if isinstance(e, MessageReceived)] == [
        TYPICAL_PAYMENT_REQUEST
    ]


def test_every_single_bit_flip_of_a_sealed_serial_frame_is_refused() -> None:
    pair, frame = fresh_terminal_pair("serial")
    terminal = pair.terminal
    now = pair.now
    for bit in range(len(frame) * 8):
        flipped = bytearray(frame)
        flipped[bit // 8] ^= 1 << (bit % 8)
        terminal.receive_data(bytes(flipped), now)
        now += 1.0  # let a stalled partial frame (a flipped LEN) be given up
        terminal.handle_timer(now)
        terminal.data_to_send()
        assert not of_type(terminal.events(), MessageReceived), bit
    terminal.receive_data(frame, now)
    assert [e.message for e in terminal.events() if isinstance(e, MessageReceived)] == [
        TYPICAL_PAYMENT_REQUEST
    ]


def test_frame_from_an_earlier_session_is_refused_as_wrong_key() -> None:
    pair = make_pair()
    wiretap = capture_to_terminal(pair)
    pair.advance(2.0)  # a heartbeat under the current keys
    old = wiretap[-1]
    pair.to_terminal = None
    pair.cashier.login(pair.now)  # fresh session keys
    pair.pump()
    pair.clear()
    pair.terminal.receive_data(old, pair.now)
    assert refusals(pair.terminal.events()) == [Refusal.WRONG_KEY]


def test_reflected_frame_is_refused() -> None:
    pair = make_pair()
    wiretap = capture_to_terminal(pair)
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.clear()
    pair.cashier.receive_data(wiretap[0], pair.now)
    assert refusals(pair.cashier.events()) == [Refusal.WRONG_DIRECTION]


def test_sealed_frame_before_login_is_refused() -> None:
    twin = make_pair()
    frame = sealed_request_frame(twin)
    pair = make_pair(login=False)
    pair.terminal.receive_data(frame, pair.now)
    assert refusals(pair.terminal.events()) == [Refusal.NO_SESSION]


@pytest.mark.parametrize(
    "noise",
    [b"\x00\xff\x00 POS READY\r\n", b"\x02\x7f\x7f\x03", b"\x06\x15\x06", bytes(range(256)) * 2],
)
def test_unsolicited_bytes_on_serial_connect_are_skipped(noise: bytes) -> None:
    pair = make_pair("serial", login=False)
    pair.cashier.receive_data(noise, pair.now)
    pair.terminal.receive_data(noise, pair.now)
    pair.advance(1.0)  # any partial frame the noise started is given up
    pair.clear()
    pair.cashier.login(pair.now)
    pair.pump()
    assert of_type(pair.cashier_events, LoggedIn) and of_type(pair.terminal_events, LoggedIn)


def test_garbage_body_in_a_valid_frame_is_refused_and_the_session_survives() -> None:
    pair = make_pair("serial")
    pair.terminal.receive_data(encode_serial_frame(b"\x01short"), pair.now)
    pair.terminal.receive_data(encode_serial_frame(b"{not json"), pair.now)
    pair.pump()
    assert refusals(pair.terminal_events) == [Refusal.TRUNCATED, Refusal.UNSEALED]
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    assert of_type(pair.terminal_events, MessageReceived)


def test_oversize_stream_frame_closes_the_link_cleanly() -> None:
    pair = make_pair()
    pair.terminal.receive_data(b"\x7f\xff\xff\xff" + b"x" * 100, pair.now)
    pair.pump()
    assert pair.terminal.state is ConnectionState.DISCONNECTED
    assert of_type(pair.terminal_events, FrameRefused)
