"""Typed ISO 8583 messages of the acquirer link (pydantic models, one per message).

Attributes map to fields through :mod:`shouyin.acquirer.fieldmap`; :func:`parse_request` picks
the model of a received request by MTI, processing code (field 3) and net code (field 60).

Layouts (request -> answer; ``[x]`` optional; all carry 41 terminal id and 42 merchant id)::

    0800 sign-in   11 12 13 60(batch+001)            -> 0810 11 12 13 39 60 62(MK MC PK PC) 64
    0800 echo      11 12 13 60(batch+301) 64         -> 0810 11 12 13 39 60 64
    0200 card sale 2|35 3=000000 4 11 12 13 [14] 22 25 [35] 49 [52] 60 64
    0200 QR sale   3=009000 4 11 12 13 22=032 25 48(AC) 49 60 64
    0200 precreate 3=009100 4 11 12 13 22=032 25 [48(WL)] 49 60 64
    0200 void      3=200000 4 11 12 13 25 [37 38] 49 60 61(orig batch+trace) 64
        -> 0210    3 4 11 12 13 [37 38] 39 [48(WL WS OI QP)] 49 60 64
    0220 refund    3=200000 4 11 12 13 25 37(orig RRN) 49 60 [61] 64 -> 0230 as 0210
    0400 reversal  3(orig) 4 11(orig) 12 13 25 39(reason) 49 60(orig batch) 64
        -> 0410    3 4 11 12 13 39 [48(WS)] 60 64
    0500 settle    11 12 13 49 60 63(terminal totals) 64 -> 0510 11 12 13 39 60 63(host) 64
    0600 query     11(orig) 12 13 60(orig batch) 64
        -> 0610    [3 4] 11 12 13 [37 38] 39 48(ST RC KD [WL WS OI MP]) 60 64

A 0610's field 39 says whether the original was found (``00``) or not (``25``); the original's
own outcome is in field 48 (``ST`` status, ``RC`` response code, ``WS`` wallet status).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from shouyin.acquirer.codes import (
    Mti,
    NetCode,
    ProcessingCode,
    ResponseCode,
    TxnKind,
    TxnStatus,
    Wallet,
    WalletStatus,
)
from shouyin.acquirer.errors import IsoFormatError
from shouyin.acquirer.fieldmap import (
    ApprovalCode,
    Batch,
    Code2,
    Date4,
    F,
    Fen,
    IsoMessage,
    Kcv,
    MerchantId,
    Proc,
    Rrn,
    TerminalId,
    Time6,
    Trace,
    entry_mode,
    local_stamp,
)
from shouyin.acquirer.totals import BatchTotals, KindTotals

__all__ = [
    "BatchTotals",
    "CardSaleRequest",
    "EchoRequest",
    "EchoResponse",
    "F",
    "FinancialResponse",
    "IsoMessage",
    "KindTotals",
    "QrPrecreateRequest",
    "QrSaleRequest",
    "QueryRequest",
    "QueryResponse",
    "RefundRequest",
    "RefundResponse",
    "Request",
    "ReversalRequest",
    "ReversalResponse",
    "SettlementRequest",
    "SettlementResponse",
    "SignInRequest",
    "SignInResponse",
    "VoidRequest",
    "entry_mode",
    "local_stamp",
    "parse_request",
]


# -- shared parts ------------------------------------------------------------------------------


class _Party(IsoMessage):
    trace: Annotated[Trace, F("11", 6)]
    local_time: Annotated[Time6, F("12")]
    local_date: Annotated[Date4, F("13")]
    terminal_id: Annotated[TerminalId, F("41")]
    merchant_id: Annotated[MerchantId, F("42")]
    batch: Annotated[Batch, F("60", 6, start=0)]


class _Answer(_Party):
    response_code: Annotated[Code2, F("39")]

    @property
    def approved(self) -> bool:
        """Field 39 is ``00``."""
        return self.response_code == ResponseCode.APPROVED


# -- 0800 / 0810 -------------------------------------------------------------------------------


class SignInRequest(_Party):
    """0800 sign-in (签到): asks for fresh working keys."""

    MTI: ClassVar[str] = Mti.NETWORK
    net_code: Annotated[Literal["001"], F("60", 3, start=6)] = NetCode.SIGN_IN.value


class SignInResponse(_Answer):
    """0810 answer to a sign-in: the MAK and PIK wrapped under the TMK, with check values."""

    MTI: ClassVar[str] = Mti.NETWORK_RESPONSE
    net_code: Annotated[Literal["001"], F("60", 3, start=6)] = NetCode.SIGN_IN.value
    mak_wrapped: Annotated[bytes | None, F("62", tag="MK", binary=True), Field(repr=False)] = None
    mak_kcv: Annotated[Kcv | None, F("62", tag="MC")] = None
    pik_wrapped: Annotated[bytes | None, F("62", tag="PK", binary=True), Field(repr=False)] = None
    pik_kcv: Annotated[Kcv | None, F("62", tag="PC")] = None


class EchoRequest(_Party):
    """0800 echo test (MAC'ed: it also proves the working keys agree)."""

    MTI: ClassVar[str] = Mti.NETWORK
    net_code: Annotated[Literal["301"], F("60", 3, start=6)] = NetCode.ECHO.value


class EchoResponse(_Answer):
    """0810 answer to an echo test."""

    MTI: ClassVar[str] = Mti.NETWORK_RESPONSE
    net_code: Annotated[Literal["301"], F("60", 3, start=6)] = NetCode.ECHO.value


# -- 0200 / 0210, 0220 / 0230 ------------------------------------------------------------------

_FIN_CONSTANTS: Mapping[str, str] = {"25": "00", "49": "156"}


class CardSaleRequest(_Party):
    """0200 card sale (消费). The PAN comes in field 2, or only inside track 2 (field 35)."""

    MTI: ClassVar[str] = Mti.FINANCIAL_REQUEST
    CONSTANTS: ClassVar[Mapping[str, str]] = {"3": ProcessingCode.CARD_SALE, **_FIN_CONSTANTS}
    pan: Annotated[str | None, F("2"), Field(pattern=r"^[0-9]{12,19}$", repr=False)] = None
    amount: Annotated[Fen, F("4", 12)]
    expiry: Annotated[str | None, F("14"), Field(pattern=r"^[0-9]{4}$", repr=False)] = None
    entry_mode: Annotated[str, F("22"), Field(pattern=r"^0[12357][012]$")]
    track2: Annotated[
        str | None, F("35"), Field(pattern=r"^[0-9]{12,19}[=D][0-9]{4}[0-9]*$", repr=False)
    ] = None
    pin_block: Annotated[bytes | None, F("52", binary=True), Field(repr=False)] = None

    def card_number(self) -> str | None:
        """The PAN from field 2, else from track 2."""
        if self.pan is not None:
            return self.pan
        if self.track2 is not None:
            return self.track2.replace("D", "=").split("=", 1)[0]
        return None

    def card_expiry(self) -> str | None:
        """The expiry from field 14, else from track 2."""
        if self.expiry is not None:
            return self.expiry
        if self.track2 is not None:
            return self.track2.replace("D", "=").split("=", 1)[1][:4]
        return None


class QrSaleRequest(_Party):
    """0200 QR micropay: the cashier scanned the customer's payment code (付款码)."""

    MTI: ClassVar[str] = Mti.FINANCIAL_REQUEST
    CONSTANTS: ClassVar[Mapping[str, str]] = {
        "3": ProcessingCode.QR_SALE,
        "22": "032",
        **_FIN_CONSTANTS,
    }
    amount: Annotated[Fen, F("4", 12)]
    auth_code: Annotated[str, F("48", tag="AC"), Field(pattern=r"^[0-9]{10,32}$")]


class QrPrecreateRequest(_Party):
    """0200 precreate: a merchant-presented QR order the customer scans (optionally a wallet)."""

    MTI: ClassVar[str] = Mti.FINANCIAL_REQUEST
    CONSTANTS: ClassVar[Mapping[str, str]] = {
        "3": ProcessingCode.QR_PRECREATE,
        "22": "032",
        **_FIN_CONSTANTS,
    }
    amount: Annotated[Fen, F("4", 12)]
    wallet: Annotated[Wallet | None, F("48", tag="WL")] = None


class VoidRequest(_Party):
    """0200 void (撤销) of an approved sale of the open batch."""

    MTI: ClassVar[str] = Mti.FINANCIAL_REQUEST
    CONSTANTS: ClassVar[Mapping[str, str]] = {"3": ProcessingCode.VOID, **_FIN_CONSTANTS}
    amount: Annotated[Fen, F("4", 12)]
    original_rrn: Annotated[Rrn | None, F("37")] = None
    original_auth_code: Annotated[ApprovalCode | None, F("38")] = None
    original_batch: Annotated[Batch, F("61", 6, start=0)]
    original_trace: Annotated[Trace, F("61", 6, start=6)]


class RefundRequest(_Party):
    """0220 refund (退货) against an earlier sale, found by its RRN."""

    MTI: ClassVar[str] = Mti.ADVICE
    CONSTANTS: ClassVar[Mapping[str, str]] = {"3": ProcessingCode.REFUND, **_FIN_CONSTANTS}
    amount: Annotated[Fen, F("4", 12)]
    original_rrn: Annotated[Rrn, F("37")]
    original_batch: Annotated[Batch | None, F("61", 6, start=0)] = None
    original_trace: Annotated[Trace | None, F("61", 6, start=6)] = None
    original_date: Annotated[Date4 | None, F("61", 4, start=12)] = None


class FinancialResponse(_Answer):
    """0210: the answer to a sale, QR sale, precreate or void."""

    MTI: ClassVar[str] = Mti.FINANCIAL_RESPONSE
    CONSTANTS: ClassVar[Mapping[str, str]] = {"49": "156"}
    processing_code: Annotated[Proc, F("3")]
    amount: Annotated[Fen, F("4", 12)]
    rrn: Annotated[Rrn | None, F("37")] = None
    auth_code: Annotated[ApprovalCode | None, F("38")] = None
    wallet: Annotated[Wallet | None, F("48", tag="WL")] = None
    wallet_status: Annotated[WalletStatus | None, F("48", tag="WS")] = None
    wallet_order_id: Annotated[str | None, F("48", tag="OI"), Field(max_length=64)] = None
    qr_payload: Annotated[str | None, F("48", tag="QP"), Field(max_length=256)] = None

    @property
    def pending(self) -> bool:
        """Field 39 is ``09``: a QR order waiting for the customer; query it."""
        return self.response_code == ResponseCode.IN_PROGRESS


class RefundResponse(FinancialResponse):
    """0230: the answer to a refund."""

    MTI: ClassVar[str] = Mti.ADVICE_RESPONSE


# -- 0400 / 0410 -------------------------------------------------------------------------------


class ReversalRequest(_Party):
    """0400 reversal (冲正) or QR revoke: field 11 and 60 name the original transaction."""

    MTI: ClassVar[str] = Mti.REVERSAL
    CONSTANTS: ClassVar[Mapping[str, str]] = _FIN_CONSTANTS
    processing_code: Annotated[Proc, F("3")]
    amount: Annotated[Fen, F("4", 12)]
    reason: Annotated[Code2, F("39")] = ResponseCode.REVERSAL_TIMEOUT.value


class ReversalResponse(_Answer):
    """0410: ``00`` once the original is reversed (or was never there)."""

    MTI: ClassVar[str] = Mti.REVERSAL_RESPONSE
    processing_code: Annotated[Proc, F("3")]
    amount: Annotated[Fen, F("4", 12)]
    wallet_status: Annotated[WalletStatus | None, F("48", tag="WS")] = None


# -- 0500 / 0510 -------------------------------------------------------------------------------


class SettlementRequest(_Party):
    """0500 settlement (结算) of ``batch`` with the terminal's totals."""

    MTI: ClassVar[str] = Mti.SETTLEMENT
    CONSTANTS: ClassVar[Mapping[str, str]] = {"49": "156"}
    totals: Annotated[BatchTotals, F("63", parser=BatchTotals.decode, encoder=BatchTotals.encode)]


class SettlementResponse(_Answer):
    """0510: ``00`` balanced or ``95`` not, with the host's totals; the batch is closed."""

    MTI: ClassVar[str] = Mti.SETTLEMENT_RESPONSE
    totals: Annotated[BatchTotals, F("63", parser=BatchTotals.decode, encoder=BatchTotals.encode)]


# -- 0600 / 0610 -------------------------------------------------------------------------------


class QueryRequest(_Party):
    """0600 status query (查询) of the transaction with trace ``trace`` in batch ``batch``."""

    MTI: ClassVar[str] = Mti.QUERY


class QueryResponse(_Answer):
    """0610: ``00`` found (the original's outcome in ``status`` and ``original_response_code``)
    or ``25`` not found."""

    MTI: ClassVar[str] = Mti.QUERY_RESPONSE
    processing_code: Annotated[Proc | None, F("3")] = None
    amount: Annotated[Fen | None, F("4", 12)] = None
    rrn: Annotated[Rrn | None, F("37")] = None
    auth_code: Annotated[ApprovalCode | None, F("38")] = None
    status: Annotated[TxnStatus | None, F("48", tag="ST")] = None
    original_response_code: Annotated[Code2 | None, F("48", tag="RC")] = None
    kind: Annotated[TxnKind | None, F("48", tag="KD")] = None
    wallet: Annotated[Wallet | None, F("48", tag="WL")] = None
    wallet_status: Annotated[WalletStatus | None, F("48", tag="WS")] = None
    wallet_order_id: Annotated[str | None, F("48", tag="OI"), Field(max_length=64)] = None
    masked_pan: Annotated[
        str | None, F("48", tag="MP"), Field(pattern=r"^[0-9]{6}\*{1,9}[0-9]{4}$")
    ] = None


# -- dispatch ----------------------------------------------------------------------------------

Request = (
    SignInRequest
    | EchoRequest
    | CardSaleRequest
    | QrSaleRequest
    | QrPrecreateRequest
    | VoidRequest
    | RefundRequest
    | ReversalRequest
    | SettlementRequest
    | QueryRequest
)
"""Every request the host accepts."""

_BY_PROC: dict[str, type[Request]] = {
    ProcessingCode.CARD_SALE: CardSaleRequest,
    ProcessingCode.QR_SALE: QrSaleRequest,
    ProcessingCode.QR_PRECREATE: QrPrecreateRequest,
    ProcessingCode.VOID: VoidRequest,
}
_BY_NET: dict[str, type[Request]] = {NetCode.SIGN_IN: SignInRequest, NetCode.ECHO: EchoRequest}
_BY_MTI: dict[str, Callable[[Mapping[str, str]], type[Request] | None]] = {
    Mti.FINANCIAL_REQUEST: lambda fields: _BY_PROC.get(fields.get("3", "")),
    Mti.NETWORK: lambda fields: _BY_NET.get(fields.get("60", "")[6:9]),
    Mti.ADVICE: lambda _: RefundRequest,
    Mti.REVERSAL: lambda _: ReversalRequest,
    Mti.SETTLEMENT: lambda _: SettlementRequest,
    Mti.QUERY: lambda _: QueryRequest,
}


def parse_request(fields: Mapping[str, str]) -> Request:
    """The typed request of decoded fields.

    Args:
        fields: as returned by :func:`shouyin.acquirer.iso.unpack`.

    Returns:
        The request model.

    Raises:
        IsoFormatError: an unsupported MTI, processing code or net code, or an invalid field.
    """
    chooser = _BY_MTI.get(fields.get("t", ""))
    if chooser is None:
        raise IsoFormatError("t", "unsupported message type")
    model = chooser(fields)
    if model is None:
        key = "3" if fields.get("t") == Mti.FINANCIAL_REQUEST else "60"
        raise IsoFormatError(key, "unsupported transaction")
    return model.from_fields(fields)
