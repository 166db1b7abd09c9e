"""``shouyin link trace``: frames and headers out of captured bytes, never keys or card numbers."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from shouyin.link import ENVELOPE_OVERHEAD, encode, encode_serial_frame, encode_stream_frame
from shouyin.link.cli import link_app
from shouyin.link.trace import (
    CaptureError,
    TraceFraming,
    TraceRecord,
    decode,
    detect_framing,
    mask_card_numbers,
    parse_hex,
    read_capture,
    read_pcap,
    render,
)

from .helpers import Framing, LinkPair, make_pair
from .samples import TYPICAL_PAYMENT_REQUEST, TYPICAL_PAYMENT_RESPONSE

CARD = "6212345678901232"  # Luhn-valid test number


def captured(framing: Framing) -> tuple[LinkPair, bytes, bytes]:
    """Login and one payment over a fake link; returns (pair, cashier bytes, terminal bytes)."""
    pair = make_pair(framing, login=False)
    pair.cashier.login(pair.now)
    pair.pump()
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.terminal.send(TYPICAL_PAYMENT_RESPONSE, pair.now)
    pair.pump()
    ecr = b"".join(data for way, data in pair.wire if way == "ecr->poi")
    poi = b"".join(data for way, data in pair.wire if way == "poi->ecr")
    return pair, ecr, poi


def text_of(records: list[TraceRecord]) -> str:
    console = Console(file=io.StringIO(), width=300)
    console.print(render(records))
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


# -- decoding --------------------------------------------------------------------------------------


def test_serial_capture_shows_login_then_sealed_frames_with_rising_sequence_numbers() -> None:
    pair, ecr, _ = captured("serial")
    records = decode(ecr, TraceFraming.SERIAL)
    frames = [r for r in records if r.kind == "frame"]
    assert [f.message for f in frames] == ["login_request", "(sealed)", "(sealed)"]
    assert frames[0].direction == "ECR->POI" and frames[0].sealed is False
    assert dict(frames[0].fields)["ecr_id"] == "lane-01"
    assert [f.seq for f in frames[1:]] == [0, 1]
    assert {f.direction for f in frames[1:]} == {"ECR->POI"}
    channel = pair.cashier._wire.channel if pair.cashier._wire else None
    assert channel is not None and frames[1].key_id == channel.key_id.hex()
    assert [r.kind for r in records].count("ACK") == 3  # the cashier's answers to the terminal


def test_framing_is_detected_for_both_transports() -> None:
    _, serial_bytes, _ = captured("serial")
    _, stream_bytes, _ = captured("stream")
    assert detect_framing(serial_bytes) is TraceFraming.SERIAL
    assert detect_framing(stream_bytes) is TraceFraming.STREAM
    records = decode(stream_bytes)
    assert [r.kind for r in records] == ["frame"] * 3
    assert records[-1].body_size == len(encode(TYPICAL_PAYMENT_REQUEST)) + ENVELOPE_OVERHEAD


def test_noise_crc_errors_and_truncation_are_rows_not_crashes() -> None:
    good = encode_serial_frame(b'{"type":"rejected"}')
    corrupt = bytearray(good)
    corrupt[5] ^= 0x01
    data = b"\x00wake\xff" + bytes(corrupt) + good + b"\x15" + good[:7]
    records = decode(data, TraceFraming.SERIAL)
    assert [r.kind for r in records] == ["noise", "bad", "frame", "NAK", "bad"]
    assert "CRC" in records[1].note and "truncated" in records[4].note
    assert records[2].message == "rejected"


def test_oversize_stream_length_stops_decoding() -> None:
    data = encode_stream_frame(b'{"type":"rejected"}') + (10**6).to_bytes(4, "big") + b"junk"
    records = decode(data, TraceFraming.STREAM)
    assert [r.kind for r in records] == ["frame", "bad"]
    assert "framing lost" in records[1].note


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(list(TraceFraming)))
def test_any_bytes_decode_without_error(data: bytes, framing: TraceFraming) -> None:
    records = decode(data, framing)
    assert sum(r.size for r in records) <= len(data)
    assert all(r.offset + r.size <= len(data) for r in records)


@given(st.binary(max_size=60))
def test_any_rows_render(data: bytes) -> None:
    text_of(decode(data))


# -- nothing secret is shown -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (CARD, "621234******1232"),
        ("6212 3456 7890 1232", "621234******1232"),
        ("ref 6212-3456-7890-1232!", "ref 621234******1232!"),
        ("6212345678901233", "6212345678901233"),  # fails the Luhn check
        ("621234567890", "621234567890"),  # 12 digits: too short for a card
        ("62123456789012320", "62123456789012320"),  # 17 digits, not Luhn-valid
        ("42000012342025031412345", "42000012342025031412345"),  # 23 digits: an order id
    ],
)
def test_card_numbers_are_masked(text: str, shown: str) -> None:
    assert mask_card_numbers(text) == shown


def test_plain_bodies_show_ids_but_never_secrets_or_card_numbers() -> None:
    _, ecr, poi = captured("stream")
    body = (
        b'{"type":"payment_request","service_id":"E1","ecr_ref":"' + CARD.encode() + b'",'
        b'"amount":1,"kind":"card"}'
    )
    records = decode(ecr + encode_stream_frame(body)) + decode(poi)
    output = text_of(records)
    assert CARD not in output and "621234******1232" in output
    login = records[0]
    assert login.message == "login_request"
    length = int.from_bytes(ecr[:4], "big")
    nonce = json.loads(ecr[4 : 4 + length])["nonce"]
    assert nonce[:16] not in output  # the login nonce never appears
    assert bytes(range(32)).hex()[:16] not in output  # nor the long-term key


def test_pairing_messages_show_no_pake_confirmation_or_certificate() -> None:
    body = (
        b'{"type":"pairing_challenge","service_id":"P1","ecr_id":"lane-01",'
        b'"pake":"' + b"41" * 33 + b'","confirm":"' + b"cd" * 32 + b'"}'
    )
    output = text_of(decode(encode_stream_frame(body)))
    assert "pairing_challenge" in output and "ECR->POI" in output
    assert "4141" not in output and "cdcd" not in output


# -- input formats ---------------------------------------------------------------------------------


def test_hex_text_accepts_the_usual_separators() -> None:
    assert parse_hex("02 00:01 0x41,03\n") == b"\x02\x00\x01\x41\x03"
    with pytest.raises(CaptureError):
        parse_hex("02 zz")
    with pytest.raises(CaptureError):
        parse_hex("123")


def _tcp_packet(src: str, dst: str, sport: int, dport: int, seq: int, payload: bytes) -> bytes:
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x18, 65535, 0, 0) + payload
    ip = struct.pack(
        ">BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp),
        0,
        0,
        64,
        6,
        0,
        bytes(map(int, src.split("."))),
        bytes(map(int, dst.split("."))),
    )
    return ip + tcp


def _ethernet(packet: bytes) -> bytes:
    return b"\x00" * 12 + b"\x08\x00" + packet


def _pcap(frames: list[bytes], linktype: int = 1) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame
    return out


def _pcapng(frames: list[bytes], linktype: int = 1) -> bytes:
    def block(kind: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        length = len(body) + 12
        return struct.pack("<II", kind, length) + body + struct.pack("<I", length)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", linktype, 0, 65535))
    for frame in frames:
        out += block(6, struct.pack("<IIIII", 0, 0, 0, len(frame), len(frame)) + frame)
    return out


def _segments() -> tuple[list[bytes], bytes]:
    _, ecr, poi = captured("stream")
    a, b = ecr[:50], ecr[50:]
    frames = [
        _ethernet(_tcp_packet("10.0.0.2", "10.0.0.1", 40000, 8583, 1000, a)),
        _ethernet(_tcp_packet("10.0.0.2", "10.0.0.1", 40000, 8583, 1000, a)),  # retransmitted
        _ethernet(_tcp_packet("10.0.0.1", "10.0.0.2", 8583, 40000, 7, poi)),
        _ethernet(_tcp_packet("10.0.0.2", "10.0.0.1", 40000, 8583, 1050, b)),
    ]
    return frames, ecr


@pytest.mark.parametrize("writer", [_pcap, _pcapng])
def test_pcap_payloads_are_reassembled_per_direction(writer: object) -> None:
    frames, ecr = _segments()
    assert callable(writer)
    captures = read_capture(writer(frames))
    assert [c.flow for c in captures] == [
        "10.0.0.2:40000 -> 10.0.0.1:8583",
        "10.0.0.1:8583 -> 10.0.0.2:40000",
    ]
    assert captures[0].data == ecr
    assert [r.message for r in decode(captures[1].data)] == [
        "login_response",
        "(sealed)",
        "(sealed)",
    ]


def test_capture_without_tcp_payload_is_refused() -> None:
    with pytest.raises(CaptureError):
        read_pcap(_pcap([b"\x00" * 20]))


def test_raw_file_contents_are_taken_as_bytes_and_hex_files_as_hex() -> None:
    frame = encode_serial_frame(b'{"type":"rejected"}')
    assert read_capture(frame)[0].data == frame
    assert read_capture(frame.hex().encode())[0].data == frame


# -- the command -----------------------------------------------------------------------------------


def test_trace_command_prints_a_table_from_hex(tmp_path: Path) -> None:
    _, ecr, _ = captured("serial")
    runner = CliRunner()
    result = runner.invoke(link_app, ["trace", ecr.hex()], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "login_request" in result.output and "serial framing" in result.output
    assert "3 frames" in result.output


def test_trace_command_reads_a_pcap_file(tmp_path: Path) -> None:
    frames, _ = _segments()
    path = tmp_path / "link.pcap"
    path.write_bytes(_pcap(frames))
    result = CliRunner().invoke(link_app, ["trace", "--file", str(path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "10.0.0.2:40000 -> 10.0.0.1:8583" in result.output


def test_trace_command_refuses_bad_input() -> None:
    result = CliRunner().invoke(link_app, ["trace", "not hex"])
    assert result.exit_code == 2
    assert "not hex" in result.output
    assert CliRunner().invoke(link_app, ["trace"]).exit_code == 2


def test_a_card_number_next_to_another_number_is_still_masked() -> None:
    assert mask_card_numbers("ref 12 4111111111111111") == "ref 12 411111******1111"
    assert mask_card_numbers("4111111111111111D25121010") == "411111******1111=****"
