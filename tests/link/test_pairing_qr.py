"""The pairing QR payload: its text encoding, its parser, and its PNG and terminal renderings."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shouyin.link.errors import LinkError
from shouyin.link.pairing_qr import (
    PairingPayload,
    PairingPayloadError,
    encode_payload,
    make_qr,
    parse_payload,
    to_png_bytes,
    to_terminal_text,
)

FP = "0123456789abcdef" * 4
CODE = "31415926"
SAMPLE = PairingPayload(address="192.168.1.10", port=8583, code=CODE, fingerprint=FP)
SAMPLE_TEXT = f"shouyin-pair:v1?a=192.168.1.10&p=8583&c={CODE}&f={FP}"


def _with(**fields: str) -> str:
    values = {"a": "192.168.1.10", "p": "8583", "c": CODE, "f": FP} | fields
    return "shouyin-pair:v1?" + "&".join(f"{k}={v}" for k, v in values.items())


# -- encoding --------------------------------------------------------------------------------


def test_encoding_is_the_documented_canonical_text() -> None:
    assert encode_payload(SAMPLE) == SAMPLE_TEXT
    assert SAMPLE.to_text() == SAMPLE_TEXT


def test_parsing_the_canonical_text_gives_the_payload_back() -> None:
    assert parse_payload(SAMPLE_TEXT) == SAMPLE
    assert PairingPayload.from_text(SAMPLE_TEXT) == SAMPLE


def test_repr_and_str_hide_the_code() -> None:
    assert CODE not in repr(SAMPLE)
    assert CODE not in str(SAMPLE)
    assert SAMPLE.code == CODE


@pytest.mark.parametrize(
    ("given_address", "normalised"),
    [
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("::ffff:192.168.1.10", "::ffff:c0a8:10a"),
        ("POS.Example.LAN.", "pos.example.lan"),
        ("localhost", "localhost"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_addresses_are_normalised(given_address: str, normalised: str) -> None:
    payload = PairingPayload(address=given_address, port=1, code=CODE, fingerprint=FP)
    assert payload.address == normalised


def test_fields_are_read_in_any_order_and_an_upper_case_fingerprint_is_accepted() -> None:
    text = f"shouyin-pair:v1?f={FP.upper()}&c={CODE}&p=8583&a=192.168.1.10\n"
    assert parse_payload(text) == SAMPLE


def test_typical_payload_fits_a_small_qr_code() -> None:
    qr = make_qr(SAMPLE)
    assert isinstance(qr.version, int)
    assert qr.version <= 7
    assert qr.error in {"M", "Q", "H"}


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "text"),
        ("https://example.com/?a=1", "text"),
        ("shouyin-pair:v2?a=x&p=1&c=12345678&f=" + FP, "version"),
        ("shouyin-pair:?a=x", "version"),
        ("shouyin-pair:v1", "text"),
        ("shouyin-pair:v1?", "text"),
        (_with() + "&x=1", "text"),
        (_with() + "&a=10.0.0.1", "address"),
        (_with() + "&p", "text"),
        ("shouyin-pair:v1?a=h&p=1&c=" + CODE, "fingerprint"),
        (_with(a="10.1.1"), "address"),
        (_with(a="bad host"), "address"),
        (_with(a="-h.lan"), "address"),
        (_with(a="fe80::1%eth0"), "address"),
        (_with(a="收银.lan"), "address"),
        (_with(a=""), "address"),
        (_with(p="0"), "port"),
        (_with(p="65536"), "port"),
        (_with(p="080"), "port"),
        (_with(p="+80"), "port"),
        (_with(p="٨٠"), "port"),
        (_with(c="1234567"), "code"),
        (_with(c="123456789"), "code"),
        (_with(c="١٢٣٤٥٦٧٨"), "code"),
        (_with(f=FP[:-1]), "fingerprint"),
        (_with(f=FP[:-1] + "g"), "fingerprint"),
        (_with(f="ab:" * 31 + "ab"), "fingerprint"),
        ("shouyin-pair:v1?" + "a=x&" * 200, "text"),
    ],
)
def test_invalid_texts_are_refused_with_the_offending_field(text: str, field: str) -> None:
    with pytest.raises(PairingPayloadError) as info:
        parse_payload(text)
    assert info.value.field == field
    assert isinstance(info.value, LinkError)


def test_errors_never_quote_the_code() -> None:
    for text in (_with(c="9876543"), _with(p="0", c="98765432"), _with(a="x y", c="98765432")):
        with pytest.raises(PairingPayloadError) as info:
            parse_payload(text)
        assert "9876543" not in str(info.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"port": 0},
        {"port": "8583"},
        {"code": "1234567a"},
        {"fingerprint": FP.upper()},
        {"address": "x y"},
    ],
)
def test_the_model_itself_validates_its_fields(fields: dict[str, object]) -> None:
    values: dict[str, object] = {
        "address": "10.0.0.1",
        "port": 1,
        "code": CODE,
        "fingerprint": FP,
    } | fields
    with pytest.raises(ValidationError):
        PairingPayload.model_validate(values)


# -- properties ------------------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_hostname = (
    st.lists(_label, min_size=1, max_size=4).filter(lambda ls: not ls[-1].isdigit()).map(".".join)
)
_address = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    _hostname,
)
payloads = st.builds(
    PairingPayload,
    address=_address,
    port=st.integers(1, 65535),
    code=st.from_regex(r"[0-9]{8}", fullmatch=True),
    fingerprint=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
)


@settings(max_examples=300)
@given(payloads)
def test_every_payload_round_trips_through_its_text(payload: PairingPayload) -> None:
    text = encode_payload(payload)
    assert text.isascii()
    assert parse_payload(text) == payload


@settings(max_examples=300)
@given(
    st.one_of(st.text(max_size=300), st.text(max_size=200).map(lambda t: "shouyin-pair:v1?" + t))
)
def test_parsing_arbitrary_text_returns_a_payload_or_a_typed_error(text: str) -> None:
    try:
        payload = parse_payload(text)
    except PairingPayloadError:
        return
    assert parse_payload(encode_payload(payload)) == payload


@settings(max_examples=200)
@given(payloads, st.data())
def test_any_single_character_corruption_is_refused_or_changes_the_payload(
    payload: PairingPayload, data: st.DataObject
) -> None:
    text = encode_payload(payload)
    position = data.draw(st.integers(len("shouyin-pair:v1?"), len(text) - 1))
    replacement = data.draw(st.sampled_from("0a9Z:&=%.- "))
    corrupted = text[:position] + replacement + text[position + 1 :]
    try:
        parsed = parse_payload(corrupted)
    except PairingPayloadError:
        return
    # A changed text must never pass for the same invitation (same code, same fingerprint).
    assert corrupted == text or parsed != payload


def test_ipv6_addresses_survive_the_text_unbracketed() -> None:
    payload = PairingPayload(address="fd00::10", port=443, code=CODE, fingerprint=FP)
    assert "a=fd00::10&" in payload.to_text()
    assert ipaddress.ip_address(parse_payload(payload.to_text()).address)


# -- rendering -------------------------------------------------------------------------------


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.mark.parametrize(("scale", "border"), [(1, 0), (4, 4), (10, 2)])
def test_png_has_the_size_of_the_symbol_times_the_scale(scale: int, border: int) -> None:
    modules = make_qr(SAMPLE).symbol_size(scale=1, border=border)[0]
    assert _png_size(to_png_bytes(SAMPLE, scale=scale, border=border)) == (
        modules * scale,
        modules * scale,
    )


def test_png_refuses_a_zero_scale() -> None:
    with pytest.raises(ValueError, match="scale"):
        to_png_bytes(SAMPLE, scale=0)


def _decode_half_blocks(text: str) -> list[list[bool]]:
    rows: list[list[bool]] = []
    tops = {"█": (True, True), "▀": (True, False), "▄": (False, True), " ": (False, False)}
    for line in text.splitlines():
        pairs = [tops[char] for char in line]
        rows.append([top for top, _ in pairs])
        rows.append([bottom for _, bottom in pairs])
    return rows


@pytest.mark.parametrize("dark_background", [True, False])
@pytest.mark.parametrize("border", [0, 1, 2, 4])
def test_terminal_rendering_draws_exactly_the_qr_modules(
    dark_background: bool, border: int
) -> None:
    text = to_terminal_text(SAMPLE, border=border, dark_background=dark_background)
    assert set(text) <= {"█", "▀", "▄", " ", "\n"}
    matrix = [
        [bool(module) for module in row]
        for row in make_qr(SAMPLE).matrix_iter(scale=1, border=border)
    ]
    drawn = _decode_half_blocks(text)
    assert len(drawn) == len(matrix) + len(matrix) % 2
    for expected, got in zip(matrix, drawn, strict=False):
        # dark background: the ink (light) shows the light modules; light background: the dark.
        assert got == [module != dark_background for module in expected]
    if len(matrix) % 2:
        assert drawn[-1] == [False] * len(matrix[0])  # padding row stays background


def test_terminal_rendering_is_half_as_tall_as_wide() -> None:
    lines = to_terminal_text(SAMPLE, border=2).splitlines()
    width = make_qr(SAMPLE).symbol_size(scale=1, border=2)[0]
    assert {len(line) for line in lines} == {width}
    assert len(lines) == (width + 1) // 2


def test_terminal_rendering_refuses_a_negative_border() -> None:
    with pytest.raises(ValueError, match="border"):
        to_terminal_text(SAMPLE, border=-1)
