"""The ISO 8583 dialect: exact bytes, round trips of every message (hypothesis), refusals, TLV and
TCP framing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shouyin.acquirer.codes import TotalsKind, TxnKind, TxnStatus, Wallet, WalletStatus
from shouyin.acquirer.errors import FrameError, IsoFormatError, LocalAcquirerError
from shouyin.acquirer.fieldmap import IsoMessage
from shouyin.acquirer.framing import (
    MAX_FRAME,
    TERMINAL_TPDU,
    FrameDecoder,
    encode_frame,
    reply_tpdu,
)
from shouyin.acquirer.iso import pack, tlv_decode, tlv_encode, unpack
from shouyin.acquirer.mac import sign
from shouyin.acquirer.messages import (
    CardSaleRequest,
    EchoRequest,
    FinancialResponse,
    QrPrecreateRequest,
    QrSaleRequest,
    QueryRequest,
    QueryResponse,
    RefundRequest,
    RefundResponse,
    ReversalRequest,
    ReversalResponse,
    SettlementRequest,
    SettlementResponse,
    SignInRequest,
    SignInResponse,
    VoidRequest,
    parse_request,
)
from shouyin.acquirer.totals import BatchTotals, KindTotals

from . import MID, TID

SALE = CardSaleRequest(
    pan="6228480000000000018",
    amount=1234,
    trace=1,
    local_time="103000",
    local_date="1129",
    expiry="3012",
    entry_mode="051",
    terminal_id=TID,
    merchant_id=MID,
    batch=1,
)


def test_card_sale_encodes_to_exact_bytes() -> None:
    packed = sign(SALE.to_fields(), bytes(range(16)))
    assert packed == (
        b"0200"  # MTI
        + bytes.fromhex("703C048000C08011")  # bitmap: 2 3 4 11 12 13 14 22 25 41 42 49 60 64
        + b"19" + b"6228480000000000018"  # 2 PAN, LLVAR
        + b"000000"  # 3 processing code: card sale
        + b"000000001234"  # 4 amount: 12.34 yuan in fen
        + b"000001" + b"103000" + b"1129"  # 11 trace, 12 time, 13 date
        + b"3012"  # 14 expiry YYMM
        + b"051" + b"00"  # 22 chip with PIN, 25 normal
        + b"T0000001" + b"898310048161234"  # 41 terminal, 42 merchant
        + b"156"  # 49 CNY
        + b"006" + b"000001"  # 60 batch, LLLVAR
        + bytes.fromhex("CC5D23AC39EEE290")  # 64 AES-CMAC under the MAK, first 8 bytes
    )  # fmt: skip


def test_unpack_returns_the_fields_as_text() -> None:
    fields = unpack(pack(SALE.to_fields()))
    assert fields["t"] == "0200"
    assert fields["4"] == "000000001234"
    assert "p" not in fields


# -- round trips -----------------------------------------------------------------------------

traces = st.integers(0, 999_999)
amounts = st.integers(0, 999_999_999_999)
times = st.from_regex(r"\A[0-9]{6}\Z")
dates = st.from_regex(r"\A[0-9]{4}\Z")
tids = st.from_regex(r"\A[0-9A-Za-z]{8}\Z")
mids = st.from_regex(r"\A[0-9A-Za-z]{15}\Z")
rrns = st.from_regex(r"\A[0-9A-Za-z]{12}\Z")
codes = st.from_regex(r"\A[0-9A-Z]{2}\Z")
approvals = st.from_regex(r"\A[0-9A-Za-z]{6}\Z")
pans = st.from_regex(r"\A[0-9]{12,19}\Z")


def party() -> dict[str, st.SearchStrategy[object]]:
    return {
        "trace": traces,
        "batch": traces,
        "local_time": times,
        "local_date": dates,
        "terminal_id": tids,
        "merchant_id": mids,
    }


def answer() -> dict[str, st.SearchStrategy[object]]:
    return {**party(), "response_code": codes}


totals = st.builds(
    BatchTotals,
    by_kind=st.dictionaries(
        st.sampled_from(list(TotalsKind)),
        st.builds(
            KindTotals,
            sale_count=st.integers(0, 999_999),
            sale_amount=amounts,
            refund_count=st.integers(0, 999_999),
            refund_amount=amounts,
        ),
    ),
)

MESSAGES = st.one_of(
    st.builds(SignInRequest, **party()),
    st.builds(EchoRequest, **party()),
    st.builds(
        SignInResponse,
        **answer(),
        mak_wrapped=st.binary(min_size=24, max_size=24),
        mak_kcv=st.from_regex(r"\A[0-9A-F]{6}\Z"),
        pik_wrapped=st.binary(min_size=24, max_size=24),
        pik_kcv=st.from_regex(r"\A[0-9A-F]{6}\Z"),
    ),
    st.builds(
        CardSaleRequest,
        **party(),
        amount=amounts,
        pan=pans,
        expiry=st.none() | dates,
        entry_mode=st.from_regex(r"\A0[12357][012]\Z"),
        track2=st.none() | st.from_regex(r"\A[0-9]{16}=[0-9]{4}[0-9]{0,12}\Z"),
        pin_block=st.none() | st.binary(min_size=16, max_size=16),
    ),
    st.builds(QrSaleRequest, **party(), amount=amounts, auth_code=st.from_regex(r"\A[0-9]{18}\Z")),
    st.builds(
        QrPrecreateRequest, **party(), amount=amounts, wallet=st.none() | st.sampled_from(Wallet)
    ),
    st.builds(
        VoidRequest,
        **party(),
        amount=amounts,
        original_batch=traces,
        original_trace=traces,
        original_rrn=st.none() | rrns,
        original_auth_code=st.none() | approvals,
    ),
    st.builds(
        RefundRequest,
        **party(),
        amount=amounts,
        original_rrn=rrns,
        original_batch=traces,
        original_trace=traces,
        original_date=dates,
    ),
    st.builds(
        ReversalRequest, **party(), processing_code=st.from_regex(r"\A[0-9]{6}\Z"), amount=amounts
    ),
    st.builds(QueryRequest, **party()),
    st.builds(SettlementRequest, **party(), totals=totals),
    st.builds(
        FinancialResponse,
        **answer(),
        processing_code=st.from_regex(r"\A[0-9]{6}\Z"),
        amount=amounts,
        rrn=st.none() | rrns,
        auth_code=st.none() | approvals,
        wallet=st.none() | st.sampled_from(Wallet),
        wallet_status=st.none() | st.sampled_from(WalletStatus),
        wallet_order_id=st.none() | st.from_regex(r"\A[0-9]{24}\Z"),
    ),
    st.builds(
        RefundResponse,
        **answer(),
        processing_code=st.just("200000"),
        amount=amounts,
        rrn=st.none() | rrns,
    ),
    st.builds(
        ReversalResponse,
        **answer(),
        processing_code=st.from_regex(r"\A[0-9]{6}\Z"),
        amount=amounts,
        wallet_status=st.none() | st.sampled_from(WalletStatus),
    ),
    st.builds(SettlementResponse, **answer(), totals=totals),
    st.builds(
        QueryResponse,
        **answer(),
        amount=st.none() | amounts,
        status=st.none() | st.sampled_from(TxnStatus),
        kind=st.none() | st.sampled_from(TxnKind),
        original_response_code=st.none() | codes,
        masked_pan=st.none() | st.just("622848*********0018"),
    ),
)


@settings(max_examples=150, deadline=None)
@given(MESSAGES)
def test_every_message_survives_pack_and_unpack(message: IsoMessage) -> None:
    packed = sign(message.to_fields(), b"k" * 16)
    assert type(message).from_fields(unpack(packed)) == message


@settings(max_examples=100, deadline=None)
@given(
    MESSAGES.filter(lambda message: message.MTI in {"0200", "0220", "0400", "0500", "0600", "0800"})
)
def test_parse_request_picks_the_right_model(message: IsoMessage) -> None:
    assert parse_request(unpack(pack(message.to_fields()))) == message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_unpack_never_crashes_on_garbage(data: bytes) -> None:
    try:
        fields = unpack(data)
    except IsoFormatError:
        return
    with contextlib.suppress(IsoFormatError):
        parse_request(fields)


# -- refusals --------------------------------------------------------------------------------


def test_a_secondary_bitmap_is_refused() -> None:
    data = b"0200" + bytes.fromhex("8000000000000000") + bytes.fromhex("0000000000000001") + b"x"
    with pytest.raises(IsoFormatError) as caught:
        unpack(data)
    assert caught.value.field in {"1", "128"}


def test_a_field_outside_the_dialect_is_refused() -> None:
    data = b"0200" + bytes.fromhex("0200000000000000") + b"1234567890"  # field 7
    with pytest.raises(IsoFormatError, match="field 7"):
        unpack(data)


def test_non_digits_in_a_numeric_field_are_refused() -> None:
    data = pack({"t": "0200", "3": "00000A"})
    with pytest.raises(IsoFormatError, match="field 3"):
        unpack(data)


def test_a_truncated_message_names_field_and_position() -> None:
    data = pack(SALE.to_fields())[:30]
    with pytest.raises(IsoFormatError) as caught:
        unpack(data)
    assert caught.value.position > 0
    assert "6228480000000000018" not in str(caught.value)


def test_an_invalid_value_is_reported_without_the_value() -> None:
    fields = {**SALE.to_fields(), "2": "62x8480000000000018"}
    with pytest.raises(IsoFormatError) as caught:
        CardSaleRequest.from_fields(fields)
    assert caught.value.field == "2"
    assert "622" not in str(caught.value)


def test_an_unknown_processing_code_is_refused() -> None:
    with pytest.raises(IsoFormatError, match="field 3"):
        parse_request({**SALE.to_fields(), "3": "310000"})


def test_an_unknown_mti_is_refused() -> None:
    with pytest.raises(IsoFormatError, match="field t"):
        parse_request({**SALE.to_fields(), "t": "0100"})


def test_pack_refuses_a_field_outside_the_dialect() -> None:
    with pytest.raises(LocalAcquirerError):
        pack({"t": "0200", "7": "1129103000"})


def test_pack_refuses_a_value_too_long() -> None:
    with pytest.raises(LocalAcquirerError, match="field 2"):
        pack({"t": "0200", "2": "1" * 20})


# -- TLV -------------------------------------------------------------------------------------


@given(
    st.dictionaries(
        st.from_regex(r"\A[A-Z0-9]{2}\Z"),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=50),
    )
)
def test_tlv_round_trips(items: dict[str, str]) -> None:
    assert tlv_decode(tlv_encode(items)) == items


@pytest.mark.parametrize("text", ["AC", "AC01", "AC005abc", "ac003abc", "AC0x3abc"])
def test_broken_tlv_is_refused(text: str) -> None:
    with pytest.raises(IsoFormatError, match="field 48"):
        tlv_decode(text)


# -- framing ---------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=5),
    st.lists(st.integers(1, 50), min_size=1, max_size=20),
)
def test_frames_reassemble_from_any_split(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(message) for message in messages)
    decoder = FrameDecoder()
    received = []
    position = 0
    for cut in [*cuts, len(stream)]:
        received += decoder.feed(stream[position : position + cut])
        position += cut
        if position >= len(stream):
            break
    received += decoder.feed(stream[position:])
    assert [frame.message for frame in received] == messages
    assert all(frame.tpdu == TERMINAL_TPDU for frame in received)
    assert decoder.pending == 0


def test_frame_layout_is_length_tpdu_message() -> None:
    assert encode_frame(b"0800") == b"\x00\x09" + bytes.fromhex("6000060000") + b"0800"


def test_reply_tpdu_swaps_addresses() -> None:
    assert reply_tpdu(bytes.fromhex("6000060000")) == bytes.fromhex("6000000006")


def test_an_oversize_frame_is_refused() -> None:
    with pytest.raises(FrameError, match="oversize"):
        FrameDecoder().feed((MAX_FRAME + 1).to_bytes(2, "big"))


def test_a_frame_without_tpdu_id_is_refused() -> None:
    with pytest.raises(FrameError, match="tpdu"):
        FrameDecoder().feed(b"\x00\x06" + bytes.fromhex("7000060000") + b"x")


def test_a_frame_shorter_than_a_tpdu_is_refused() -> None:
    with pytest.raises(FrameError, match="empty"):
        FrameDecoder().feed(b"\x00\x02ab")
