"""Serial and stream framing: exact bytes, ACK/NAK, retransmission, resynchronisation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shouyin.link import (
    ACK,
    NAK,
    FrameAcknowledged,
    FrameError,
    FrameReceived,
    FrameRejected,
    LinkDown,
    LocalProtocolError,
    SerialFramer,
    StreamFramer,
    crc16_ccitt_false,
    encode_serial_frame,
    encode_stream_frame,
)
from shouyin.link.framing import FramingEvent

T0 = 100.0


def drain(framer: SerialFramer | StreamFramer) -> list[FramingEvent]:
    events = []
    while (event := framer.next_event()) is not None:
        events.append(event)
    return events


def bodies(events: list[FramingEvent]) -> list[bytes]:
    return [e.body for e in events if isinstance(e, FrameReceived)]


def bitwise_crc(data: bytes) -> int:
    """Reference CRC-16/CCITT-FALSE, bit by bit, independent of binascii."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


# -- CRC and encoding --------------------------------------------------------------------------


def test_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert bitwise_crc(b"123456789") == 0x29B1


@given(st.binary(max_size=300))
def test_crc_matches_bitwise_reference(data: bytes) -> None:
    assert crc16_ccitt_false(data) == bitwise_crc(data)


@pytest.mark.parametrize(
    ("body", "frame_hex"),
    [
        (b"", "02 00 00 03 fc ff"),
        (b"hello", "02 00 05 68 65 6c 6c 6f 03 f3 d5"),
        (b"\x02\x03\x06\x15", "02 00 04 02 03 06 15 03 56 75"),
        (
            b'{"type":"rejected"}',
            "02 00 13 7b 22 74 79 70 65 22 3a 22 72 65 6a 65 63 74 65 64 22 7d 03 24 ac",
        ),
    ],
)
def test_serial_frame_known_vectors(body: bytes, frame_hex: str) -> None:
    frame = bytes.fromhex(frame_hex)
    assert encode_serial_frame(body) == frame
    assert bitwise_crc(frame[1:-2]) == int.from_bytes(frame[-2:], "big")


def test_stream_frame_is_four_byte_length_then_body() -> None:
    assert encode_stream_frame(b"hello") == b"\x00\x00\x00\x05hello"
    assert encode_stream_frame(b"") == b"\x00\x00\x00\x00"


# -- serial: receiving -------------------------------------------------------------------------


def test_good_frame_is_delivered_and_acked() -> None:
    rx = SerialFramer()
    rx.receive_data(encode_serial_frame(b"hello"), T0)
    assert bodies(drain(rx)) == [b"hello"]
    assert rx.data_to_send() == bytes([ACK])
    assert rx.stats.frames_received == 1


def test_bad_crc_is_naked_and_reported_with_offset() -> None:
    rx = SerialFramer()
    frame = bytearray(encode_serial_frame(b"hello"))
    frame[-1] ^= 0x01
    rx.receive_data(b"xx" + bytes(frame), T0)
    events = drain(rx)
    rejected = [e for e in events if isinstance(e, FrameRejected)]
    assert bodies(events) == []
    assert [(r.error.reason, r.error.offset) for r in rejected] == [("crc", 2)]
    assert rx.data_to_send() == bytes([NAK])
    assert rx.stats.crc_errors == 1


def test_missing_etx_is_naked() -> None:
    rx = SerialFramer()
    frame = bytearray(encode_serial_frame(b"hello"))
    frame[8] = 0x00  # the ETX
    rx.receive_data(bytes(frame), T0)
    rejected = [e for e in drain(rx) if isinstance(e, FrameRejected)]
    assert [r.error.reason for r in rejected] == ["no_etx"]
    assert rx.data_to_send() == bytes([NAK])


def test_oversize_length_is_refused_without_waiting_for_the_body() -> None:
    rx = SerialFramer(max_body=16)
    rx.receive_data(b"\x02\x00\x11", T0)  # LEN 17 > 16
    events = drain(rx)
    assert isinstance(events[0], FrameRejected)
    assert events[0].error.reason == "oversize"
    assert isinstance(events[0].error, FrameError)
    assert rx.data_to_send() == bytes([NAK])


def test_noise_before_a_frame_is_skipped() -> None:
    rx = SerialFramer()
    rx.receive_data(b"\xff\x00garbage\x7f" + encode_serial_frame(b"ok"), T0)
    assert bodies(drain(rx)) == [b"ok"]
    assert rx.stats.noise_bytes == 10
    assert rx.data_to_send() == bytes([ACK])


def test_frame_hidden_behind_a_false_stx_is_found() -> None:
    """A noise STX whose LEN swallows a real frame: the CRC fails, the rescan finds the frame."""
    rx = SerialFramer()
    real = encode_serial_frame(b"payload")
    fake_header = b"\x02\x00" + bytes([len(real) - 3])  # claims a body ending inside the frame
    rx.receive_data(fake_header + real + b"tail-noise" * 2, T0)
    events = drain(rx)
    assert bodies(events) == [b"payload"]


def test_stalled_partial_frame_is_given_up_after_inter_byte_timeout() -> None:
    rx = SerialFramer(inter_byte_timeout=0.5)
    rx.receive_data(b"\x02\x10\x00abc", T0)  # LEN 4096, only 3 body bytes ever come
    assert drain(rx) == []
    assert rx.next_timer() == T0 + 0.5
    rx.handle_timer(T0 + 0.5)
    events = drain(rx)
    assert [e.error.reason for e in events if isinstance(e, FrameRejected)] == ["truncated"]
    assert rx.data_to_send() == bytes([NAK])
    rx.receive_data(encode_serial_frame(b"next"), T0 + 0.6)
    assert bodies(drain(rx)) == [b"next"]


def test_duplicate_after_lost_ack_is_acked_but_not_delivered_twice() -> None:
    rx = SerialFramer()
    frame = encode_serial_frame(b"once")
    rx.receive_data(frame, T0)
    rx.receive_data(frame, T0 + 1)
    assert bodies(drain(rx)) == [b"once"]
    assert rx.data_to_send() == bytes([ACK, ACK])
    assert rx.stats.duplicates == 1


def test_stray_ack_and_nak_are_ignored() -> None:
    rx = SerialFramer()
    rx.receive_data(bytes([ACK, NAK, ACK]) + encode_serial_frame(b"x"), T0)
    assert bodies(drain(rx)) == [b"x"]
    assert rx.stats.stray_answers == 3


def test_ack_bytes_inside_a_refused_frame_are_not_answers() -> None:
    tx = SerialFramer()
    tx.send(b"mine", T0)
    tx.data_to_send()
    bad = bytearray(encode_serial_frame(bytes([ACK]) * 5))
    bad[-1] ^= 0xFF
    tx.receive_data(bytes(bad), T0 + 0.1)
    events = drain(tx)
    assert not any(isinstance(e, FrameAcknowledged) for e in events)
    assert tx.stats.stray_answers == 0


# -- serial: sending ---------------------------------------------------------------------------


def test_send_returns_the_frame_and_waits_for_ack() -> None:
    tx = SerialFramer(ack_timeout=1.0)
    assert tx.send(b"hello", T0) == encode_serial_frame(b"hello")
    assert tx.next_timer() == T0 + 1.0
    tx.receive_data(bytes([ACK]), T0 + 0.2)
    assert drain(tx) == [FrameAcknowledged()]
    assert tx.next_timer() is None


def test_second_frame_waits_until_the_first_is_acked() -> None:
    tx = SerialFramer()
    assert tx.send(b"one", T0) == encode_serial_frame(b"one")
    assert tx.send(b"two", T0) == b""
    tx.receive_data(bytes([ACK]), T0 + 0.1)
    assert tx.data_to_send() == encode_serial_frame(b"two")


def test_nak_triggers_immediate_retransmission() -> None:
    tx = SerialFramer()
    frame = tx.send(b"hello", T0)
    tx.receive_data(bytes([NAK]), T0 + 0.1)
    assert tx.data_to_send() == frame
    assert tx.stats.retransmissions == 1
    assert tx.stats.naks_received == 1


def test_missing_ack_retransmits_three_times_then_link_down() -> None:
    tx = SerialFramer(ack_timeout=1.0, max_retransmissions=3)
    frame = tx.send(b"hello", T0)
    now = T0
    for attempt in range(3):
        timer = tx.next_timer()
        assert timer == now + 1.0
        now = timer
        tx.handle_timer(now)
        assert tx.data_to_send() == frame, attempt
    tx.handle_timer(now + 1.0)
    assert drain(tx) == [LinkDown("no ACK after 3 retransmissions (ACK timeout)")]
    assert tx.data_to_send() == b""
    assert tx.down
    assert tx.stats.retransmissions == 3
    with pytest.raises(LocalProtocolError):
        tx.send(b"again", now + 2)


def test_four_naks_bring_the_link_down() -> None:
    tx = SerialFramer()
    tx.send(b"hello", T0)
    for _ in range(4):
        tx.receive_data(bytes([NAK]), T0)
    assert isinstance(drain(tx)[-1], LinkDown)


def test_ack_timeout_accounts_for_transmission_time() -> None:
    tx = SerialFramer(ack_timeout=0.5, byte_time=10 / 9600)
    frame = tx.send(b"x" * 300, T0)
    assert tx.next_timer() == pytest.approx(T0 + 0.5 + len(frame) * 10 / 9600)


def test_sending_an_oversize_body_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="exceeds the frame limit"):
        SerialFramer(max_body=10).send(b"x" * 11, T0)


def test_two_serial_framers_survive_a_corrupted_first_transmission() -> None:
    a, b = SerialFramer(), SerialFramer()
    frame = bytearray(a.send(b"important", T0))
    frame[5] ^= 0x40
    b.receive_data(bytes(frame), T0)
    a.receive_data(b.data_to_send(), T0)  # NAK
    b.receive_data(a.data_to_send(), T0)  # retransmission
    a.receive_data(b.data_to_send(), T0)  # ACK
    assert bodies(drain(b)) == [b"important"]
    assert drain(a) == [FrameAcknowledged()]
    assert (a.stats.retransmissions, b.stats.crc_errors) == (1, 1)


# -- reassembly --------------------------------------------------------------------------------

STREAM_OF_FRAMES = [b"first", b"", b"\x02\x03\x06\x15 control bytes inside", b"x" * 300]


@pytest.mark.parametrize("kind", ["serial", "stream"])
def test_split_at_every_byte_boundary_reassembles(kind: str) -> None:
    encode = encode_serial_frame if kind == "serial" else encode_stream_frame
    wire = b"".join(encode(b) for b in STREAM_OF_FRAMES)
    for cut in range(len(wire) + 1):
        rx = SerialFramer() if kind == "serial" else StreamFramer()
        rx.receive_data(wire[:cut], T0)
        rx.receive_data(wire[cut:], T0)
        assert bodies(drain(rx)) == STREAM_OF_FRAMES, cut


@given(
    frames=st.lists(st.binary(max_size=200), min_size=1, max_size=6, unique=True),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
    kind=st.sampled_from(["serial", "stream"]),
)
def test_any_chunking_of_several_frames_reassembles(
    frames: list[bytes], cuts: list[int], kind: str
) -> None:
    encode = encode_serial_frame if kind == "serial" else encode_stream_frame
    wire = b"".join(encode(f) for f in frames)
    rx = SerialFramer() if kind == "serial" else StreamFramer()
    edges = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    for start, end in itertools.pairwise(edges):
        rx.receive_data(wire[start:end], T0)
    assert bodies(drain(rx)) == frames


@given(
    noise=st.binary(max_size=64).filter(lambda b: 0x02 not in b),
    frames=st.lists(st.binary(min_size=1, max_size=100), min_size=1, max_size=4, unique=True),
)
def test_unsolicited_bytes_before_frames_are_skipped(noise: bytes, frames: list[bytes]) -> None:
    rx = SerialFramer()
    rx.receive_data(noise + b"".join(encode_serial_frame(f) for f in frames), T0)
    assert bodies(drain(rx)) == frames


# -- stream ------------------------------------------------------------------------------------


def test_stream_oversize_length_ends_the_link() -> None:
    rx = StreamFramer(max_body=100)
    rx.receive_data(b"\x00\x00\x00\x65" + b"x" * 101 + encode_stream_frame(b"later"), T0)
    events = drain(rx)
    assert isinstance(events[0], FrameRejected)
    assert events[0].error.reason == "oversize"
    assert isinstance(events[1], LinkDown)
    rx.receive_data(encode_stream_frame(b"ignored"), T0)
    assert drain(rx) == []


def test_stream_has_no_answers_and_no_timers() -> None:
    tx = StreamFramer()
    assert tx.send(b"abc", T0) == b"\x00\x00\x00\x03abc"
    assert tx.next_timer() is None
    rx = StreamFramer()
    rx.receive_data(b"\x00\x00\x00\x03abc", T0)
    assert rx.data_to_send() == b""


@given(
    frames=st.lists(st.binary(min_size=1, max_size=120), min_size=1, max_size=8, unique=True),
    faults=st.lists(st.sampled_from(["ok", "flip", "drop", "noise", "drop_answer"]), max_size=40),
    noise=st.binary(min_size=1, max_size=24),
    flip_at=st.integers(min_value=0, max_value=10_000),
)
def test_serial_link_delivers_in_order_exactly_once_despite_faults(
    frames: list[bytes], faults: list[str], noise: bytes, flip_at: int
) -> None:
    """Corrupted, dropped or noise-prefixed frames and lost answers: never a loss, a duplicate
    or a reordering; at worst the link goes down after the retries, with a prefix delivered."""
    a, b = SerialFramer(ack_timeout=1.0), SerialFramer(ack_timeout=1.0)
    now = 0.0
    for frame in frames:
        a.send(frame, now)
    plan = iter(faults)
    delivered: list[bytes] = []
    for _ in range(1000):
        chunk = a.data_to_send()
        if chunk:
            fault = next(plan, "ok")
            if fault == "flip":
                bit = flip_at % (len(chunk) * 8)
                chunk = bytes(
                    c ^ (1 << bit % 8) if i == bit // 8 else c for i, c in enumerate(chunk)
                )
            elif fault == "drop":
                chunk = b""
            elif fault == "noise":
                chunk = noise + chunk
            b.receive_data(chunk, now)
        back = b.data_to_send()
        if back and next(plan, "ok") != "drop_answer":
            a.receive_data(back, now)
        delivered += bodies(drain(b))
        drain(a)
        if not chunk and not back:
            timers = [t for t in (a.next_timer(), b.next_timer()) if t is not None]
            if not timers:
                break
            now = min(timers)
            a.handle_timer(now)
            b.handle_timer(now)
    assert delivered == frames[: len(delivered)]
    if not a.down:
        assert delivered == frames


def test_false_stx_in_noise_does_not_hold_back_the_real_frame() -> None:
    """A wake-up burst whose 0x02 claims a long LEN: the real frame behind it arrives complete
    and is delivered at once, not after the inter-byte timeout."""
    rx = SerialFramer()
    rx.receive_data(b"\x00\x02\x10\x00 BOOT v1.2\r\n", T0)
    rx.receive_data(encode_serial_frame(b"real"), T0)
    events = drain(rx)
    assert bodies(events) == [b"real"]
    assert rx.data_to_send().endswith(bytes([ACK]))
