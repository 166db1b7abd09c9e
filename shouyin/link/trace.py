"""Decode a captured link byte stream into frames and headers, for people debugging a cable.

Input is what a serial sniffer, ``tcpdump`` or a log captured: raw bytes, hex text, or a pcap /
pcapng file (TCP payloads are pulled out per direction, stdlib only). :func:`decode` cuts the
bytes into :class:`TraceRecord` rows with either framing (serial ``STX|LEN|BODY|ETX|CRC`` with
ACK/NAK answers and noise, or stream ``LEN|BODY``), chosen by :func:`detect_framing` unless given.
Each body is then described without any key: a sealed envelope shows its header (version,
direction, key id, sequence number, length); a plain JSON body shows its message type, ids,
result and error condition only. Nonces, PAKE messages, MACs and certificates are never shown,
and any run of 13-19 digits that passes the Luhn check (a card number) is masked wherever it
appears (:func:`mask_card_numbers`).

:func:`render` turns the rows into a Rich table; ``shouyin link trace`` (:mod:`shouyin.link.cli`)
is the command line.
"""

from __future__ import annotations

import ipaddress
import json
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from rich.table import Table

from shouyin.domain.carddata import scrub
from shouyin.link.framing import ACK, ETX, NAK, STREAM_MAX_BODY, STX, crc16_ccitt_false
from shouyin.link.security import ENVELOPE_OVERHEAD, ENVELOPE_VERSION, Direction

__all__ = [
    "BodyDescription",
    "Capture",
    "CaptureError",
    "TraceFraming",
    "TraceRecord",
    "decode",
    "describe_body",
    "detect_framing",
    "mask_card_numbers",
    "parse_hex",
    "read_capture",
    "read_pcap",
    "render",
]

_SERIAL_OVERHEAD = 6
_STREAM_HEADER = 4
_SHOWN_FIELDS = ("service_id", "ecr_ref", "terminal_id", "ecr_id", "key_id", "target_service_id")
_PLAIN_DIRECTION = {
    "login_request": "ECR->POI",
    "login_response": "POI->ECR",
    "pairing_request": "POI->ECR",
    "pairing_challenge": "ECR->POI",
    "pairing_confirm": "POI->ECR",
    "pairing_complete": "ECR->POI",
}
_MAX_SHOWN = 64


class CaptureError(ValueError):
    """The input is not hex, not a readable capture, or holds no TCP payload."""


class TraceFraming(StrEnum):
    """Which framing to decode with."""

    AUTO = "auto"
    SERIAL = "serial"
    STREAM = "stream"


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One row of a trace: a frame, an answer byte, noise or a broken frame.

    Attributes:
        offset: where it starts in its byte stream.
        kind: ``frame``, ``ACK``, ``NAK``, ``noise`` or ``bad``.
        size: its bytes on the wire.
        flow: the capture direction (``src -> dst``) for pcap input, else ``""``.
        direction: ``ECR->POI`` / ``POI->ECR`` when the body tells.
        sealed: whether the body is a sealed envelope (``None`` for non-frames).
        version: envelope version byte.
        key_id: envelope key id (hex; it names the session keys, it is not one).
        seq: envelope sequence number.
        body_size: the body's length.
        message: the plain message's type, ``(sealed)``, or ``(undecodable)``.
        fields: ids, result and error condition of a plain message (masked).
        note: what is wrong or noteworthy.
    """

    offset: int
    kind: str
    size: int
    flow: str = ""
    direction: str = ""
    sealed: bool | None = None
    version: int | None = None
    key_id: str = ""
    seq: int | None = None
    body_size: int | None = None
    message: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    note: str = ""


# -- masking -------------------------------------------------------------------------------------


def mask_card_numbers(text: str) -> str:
    """Mask card data in ``text`` (track 2 and Luhn-valid 13-19 digit runs): first 6 + last 4.

    The one shared implementation, :func:`shouyin.domain.carddata.scrub`.
    """
    return scrub(text)


def _shown(value: object) -> str:
    text = mask_card_numbers(str(value))
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


# -- bodies --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BodyDescription:
    """What may be shown of one body (see :class:`TraceRecord` for the fields)."""

    sealed: bool
    message: str
    direction: str = ""
    version: int | None = None
    key_id: str = ""
    seq: int | None = None
    fields: tuple[tuple[str, str], ...] = ()
    note: str = ""


def describe_body(body: bytes) -> BodyDescription:
    """The safe-to-print description of one body: envelope header, or message type and ids."""
    if body[:1] == bytes((ENVELOPE_VERSION,)):
        if len(body) < ENVELOPE_OVERHEAD:
            return BodyDescription(True, "(sealed)", note="envelope too short")
        version, direction, key_id, seq = struct.unpack_from(">BB4sQ", body)
        try:
            way = Direction(direction).name.replace("_TO_", "->")
        except ValueError:
            way = f"? ({direction:#04x})"
        ciphertext = len(body) - ENVELOPE_OVERHEAD
        return BodyDescription(
            True, "(sealed)", way, version, key_id.hex(), seq, note=f"{ciphertext} B ciphertext"
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return BodyDescription(False, "(undecodable)", note="neither sealed nor JSON")
    if not isinstance(document, dict):
        return BodyDescription(False, "(undecodable)", note="JSON but not an object")
    kind = _shown(document.get("type", "(no type)"))
    names = (*_SHOWN_FIELDS, "result", "error_condition")
    fields = tuple((name, _shown(document[name])) for name in names if name in document)
    return BodyDescription(False, kind, _PLAIN_DIRECTION.get(kind, ""), fields=fields)


def _frame(offset: int, size: int, body: bytes, flow: str) -> TraceRecord:
    d = describe_body(body)
    return TraceRecord(
        offset,
        "frame",
        size,
        flow,
        direction=d.direction,
        sealed=d.sealed,
        version=d.version,
        key_id=d.key_id,
        seq=d.seq,
        body_size=len(body),
        message=d.message,
        fields=d.fields,
        note=d.note,
    )


# -- framing -------------------------------------------------------------------------------------


def _decode_serial(data: bytes, flow: str, max_body: int) -> list[TraceRecord]:
    records: list[TraceRecord] = []
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte in (ACK, NAK):
            records.append(TraceRecord(i, "ACK" if byte == ACK else "NAK", 1, flow))
            i += 1
            continue
        if byte != STX:
            j = i + 1
            while j < n and data[j] not in (STX, ACK, NAK):
                j += 1
            records.append(TraceRecord(i, "noise", j - i, flow, note=f"{j - i} B skipped"))
            i = j
            continue
        if n - i < 3:
            records.append(TraceRecord(i, "bad", n - i, flow, note="capture ends inside a header"))
            break
        length = int.from_bytes(data[i + 1 : i + 3], "big")
        total = length + _SERIAL_OVERHEAD
        if length > max_body:
            records.append(TraceRecord(i, "bad", 1, flow, note=f"LEN {length} over {max_body}"))
            i += 1
            continue
        if i + total > n:
            records.append(TraceRecord(i, "bad", n - i, flow, note=f"truncated: LEN {length}"))
            break
        inner = data[i + 1 : i + total - 2]
        crc = int.from_bytes(data[i + total - 2 : i + total], "big")
        if data[i + 3 + length] != ETX:
            records.append(TraceRecord(i, "bad", total, flow, note="no ETX (resync)"))
        elif crc16_ccitt_false(inner) != crc:
            records.append(TraceRecord(i, "bad", total, flow, note="CRC error (NAKed)"))
        else:
            records.append(_frame(i, total, data[i + 3 : i + 3 + length], flow))
        i += total
    return records


def _decode_stream(data: bytes, flow: str, max_body: int) -> list[TraceRecord]:
    records: list[TraceRecord] = []
    i, n = 0, len(data)
    while i < n:
        if n - i < _STREAM_HEADER:
            records.append(TraceRecord(i, "bad", n - i, flow, note="capture ends inside LEN"))
            break
        length = int.from_bytes(data[i : i + _STREAM_HEADER], "big")
        if length > max_body:
            note = f"LEN {length} over {max_body}: framing lost, rest not decoded"
            records.append(TraceRecord(i, "bad", n - i, flow, note=note))
            break
        total = _STREAM_HEADER + length
        if i + total > n:
            records.append(TraceRecord(i, "bad", n - i, flow, note=f"truncated: LEN {length}"))
            break
        records.append(_frame(i, total, data[i + _STREAM_HEADER : i + total], flow))
        i += total
    return records


def _score(records: list[TraceRecord]) -> int:
    return sum(r.size for r in records if r.kind == "frame" and r.message != "(undecodable)")


def detect_framing(data: bytes, max_body: int = STREAM_MAX_BODY) -> TraceFraming:
    """Guess the framing: the one whose well-formed frames with meaningful bodies cover more
    bytes (serial wins a tie, since its CRC makes a false frame much less likely)."""
    serial = _score(_decode_serial(data, "", max_body))
    stream = _score(_decode_stream(data, "", max_body))
    return TraceFraming.STREAM if stream > serial else TraceFraming.SERIAL


def decode(
    data: bytes,
    framing: TraceFraming = TraceFraming.AUTO,
    *,
    flow: str = "",
    max_body: int = STREAM_MAX_BODY,
) -> list[TraceRecord]:
    """Cut ``data`` into trace rows.

    Args:
        data: one direction of a link (or both, on a serial line: the envelope tells apart).
        framing: serial, stream or auto-detected.
        flow: a label copied into every row (the pcap direction).
        max_body: a larger LEN is reported as broken framing.

    Returns:
        The rows, in stream order.
    """
    if framing is TraceFraming.AUTO:
        framing = detect_framing(data, max_body)
    if framing is TraceFraming.SERIAL:
        return _decode_serial(data, flow, max_body)
    return _decode_stream(data, flow, max_body)


# -- input ---------------------------------------------------------------------------------------

_HEX_NOISE = re.compile(r"0[xX]|[\s:,\-]")


def parse_hex(text: str) -> bytes:
    """Bytes from hex text: whitespace, colons, commas, dashes and ``0x`` prefixes are ignored.

    Raises:
        CaptureError: anything else, or an odd number of digits.
    """
    digits = _HEX_NOISE.sub("", text)
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise CaptureError("not hex text (or an odd number of digits)") from None


@dataclass(frozen=True, slots=True)
class Capture:
    """One direction of captured bytes."""

    flow: str
    data: bytes


_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


def read_capture(raw: bytes) -> list[Capture]:
    """Interpret file contents: a pcap/pcapng capture, hex text, or raw link bytes.

    Raises:
        CaptureError: a capture that cannot be read or holds no TCP payload.
    """
    if raw[:4] in _PCAP_MAGICS or raw[:4] == _PCAPNG_SHB:
        return read_pcap(raw)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return [Capture("", raw)]
    if text.strip() and not _HEX_NOISE.sub("", text).strip("0123456789abcdefABCDEF"):
        return [Capture("", parse_hex(text))]
    return [Capture("", raw)]


def _packets(raw: bytes) -> Iterable[tuple[int, bytes]]:
    """(link type, frame) of every packet of a pcap or pcapng file."""
    if raw[:4] == _PCAPNG_SHB:
        yield from _pcapng_packets(raw)
        return
    order = _PCAP_MAGICS[raw[:4]]
    if len(raw) < 24:
        raise CaptureError("pcap header truncated")
    linktype = struct.unpack_from(order + "I", raw, 20)[0] & 0x0FFFFFFF
    offset = 24
    while offset + 16 <= len(raw):
        captured = struct.unpack_from(order + "I", raw, offset + 8)[0]
        start = offset + 16
        if start + captured > len(raw):
            break  # a capture cut short: keep what is complete
        yield linktype, raw[start : start + captured]
        offset = start + captured


def _pcapng_packets(raw: bytes) -> Iterable[tuple[int, bytes]]:
    order = "<"
    linktypes: list[int] = []
    offset = 0
    while offset + 12 <= len(raw):
        if raw[offset : offset + 4] == _PCAPNG_SHB:
            order = "<" if raw[offset + 8 : offset + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            linktypes = []
        block_type, length = struct.unpack_from(order + "II", raw, offset)
        if length < 12 or offset + length > len(raw):
            break
        body = raw[offset + 8 : offset + length - 4]
        if block_type == 1 and len(body) >= 2:  # interface description
            linktypes.append(struct.unpack_from(order + "H", body, 0)[0])
        elif block_type == 6 and len(body) >= 20:  # enhanced packet
            interface, _, _, captured = struct.unpack_from(order + "IIII", body, 0)
            if interface < len(linktypes):
                yield linktypes[interface], body[20 : 20 + captured]
        elif block_type == 3 and len(body) >= 4 and linktypes:  # simple packet
            yield linktypes[0], body[4:]
        offset += length


def _ip_payload(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet inside a link-layer frame, or ``None``."""
    if linktype == 1:  # Ethernet, possibly VLAN-tagged
        offset, ethertype = 12, 0
        while offset + 2 <= len(frame):
            ethertype = int.from_bytes(frame[offset : offset + 2], "big")
            offset += 2
            if ethertype not in (0x8100, 0x88A8):
                break
            offset += 2
        return frame[offset:] if ethertype in (0x0800, 0x86DD) else None
    if linktype == 0:  # BSD loopback: 4-byte address family
        return frame[4:]
    if linktype == 113:  # Linux cooked capture
        return frame[16:]
    if linktype == 276:  # Linux cooked capture v2
        return frame[20:]
    if linktype in (12, 101, 228, 229):  # raw IP
        return frame
    return None


def _tcp_segment(packet: bytes) -> tuple[str, int, str, int, int, bytes] | None:
    """(src, sport, dst, dport, seq, payload) of a TCP packet, or ``None``."""
    if not packet:
        return None
    if packet[0] >> 4 == 4 and len(packet) >= 20:
        header = (packet[0] & 0x0F) * 4
        total = int.from_bytes(packet[2:4], "big") or len(packet)
        if packet[9] != 6:
            return None
        src = str(ipaddress.IPv4Address(packet[12:16]))
        dst = str(ipaddress.IPv4Address(packet[16:20]))
        segment = packet[header:total]
    elif packet[0] >> 4 == 6 and len(packet) >= 40:
        if packet[6] != 6:
            return None  # extension headers are not followed
        src = f"[{ipaddress.IPv6Address(packet[8:24])}]"
        dst = f"[{ipaddress.IPv6Address(packet[24:40])}]"
        segment = packet[40 : 40 + int.from_bytes(packet[4:6], "big")]
    else:
        return None
    if len(segment) < 20:
        return None
    sport, dport, seq = struct.unpack_from(">HHI", segment, 0)
    offset = (segment[12] >> 4) * 4
    return src, sport, dst, dport, seq, segment[offset:]


def read_pcap(raw: bytes) -> list[Capture]:
    """The TCP payload of each direction of each connection in a pcap or pcapng capture.

    Segments are put in sequence order as they come; retransmitted bytes are dropped and a gap
    (a segment lost by the capture) is left out, which the decoder then reports as broken framing.

    Raises:
        CaptureError: unreadable, or no TCP payload at all.
    """
    flows: dict[str, bytearray] = {}
    next_seq: dict[str, int] = {}
    try:
        for linktype, frame in _packets(raw):
            packet = _ip_payload(linktype, frame)
            segment = _tcp_segment(packet) if packet else None
            if segment is None or not segment[5]:
                continue
            src, sport, dst, dport, seq, payload = segment
            flow = f"{src}:{sport} -> {dst}:{dport}"
            expected = next_seq.get(flow)
            if expected is not None:
                skip = (expected - seq) % 2**32
                if skip < 2**31:  # old bytes: a retransmission, keep only what is new
                    payload = payload[skip:]
            flows.setdefault(flow, bytearray()).extend(payload)
            next_seq[flow] = (seq + len(segment[5])) % 2**32
    except (struct.error, ValueError) as error:
        raise CaptureError(f"unreadable capture: {error}") from None
    captures = [Capture(flow, bytes(data)) for flow, data in flows.items() if data]
    if not captures:
        raise CaptureError("no TCP payload in the capture")
    return captures


# -- output --------------------------------------------------------------------------------------


def render(records: Iterable[TraceRecord], title: str = "link trace") -> Table:
    """A Rich table of trace rows."""
    rows = list(records)
    table = Table(title=title)
    show_flow = any(r.flow for r in rows)
    if show_flow:
        table.add_column("flow")
    for name in ("offset", "frame", "bytes", "dir", "envelope", "message", "fields", "note"):
        table.add_column(name, justify="right" if name in ("offset", "bytes") else "left")
    styles = {"bad": "red", "noise": "yellow", "NAK": "red", "ACK": "green"}
    for r in rows:
        envelope = ""
        if r.sealed and r.seq is not None:
            envelope = f"v{r.version} key {r.key_id} seq {r.seq}"
        elif r.sealed is False:
            envelope = "plain"
        fields = " ".join(f"{k}={v}" for k, v in r.fields)
        cells = [
            str(r.offset),
            f"[{styles[r.kind]}]{r.kind}[/]" if r.kind in styles else r.kind,
            str(r.size),
            r.direction,
            envelope,
            r.message,
            fields,
            r.note,
        ]
        table.add_row(*([r.flow] if show_flow else []), *cells)
    return table
