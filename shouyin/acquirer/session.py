"""The terminal's side of the acquirer link, sans-I/O: builds requests, MACs them, checks and
decodes answers, and keeps the working keys from the last sign-in.

:class:`TerminalSession` is what :class:`shouyin.acquirer.client.AcquirerClient` wraps with a
socket, and what tests drive directly against a :class:`shouyin.acquirer.host.Host`::

    session = TerminalSession("T0000001", "898310048161234", derive_tmk("T0000001"))
    request = session.sign_in(trace=1, batch=1, now=now)
    answer = session.decode(request, host.handle(session.encode(request), now).message)

Answers are checked before use: an answer without a valid MAC raises :class:`MacError` (the
outcome of the request stays unknown); ``A0`` and ``77`` (sent without MAC, since the host
could not or would not verify ours) raise :class:`HostRefused` (nothing was done). A sign-in
answer installs the new keys only if they unwrap under the TMK, match their check values and
verify the answer's own MAC.
"""

from __future__ import annotations

from datetime import datetime

from shouyin.acquirer.codes import EntryMode, ResponseCode, Wallet, response_mti
from shouyin.acquirer.errors import (
    HostRefused,
    IsoFormatError,
    MacError,
    NotSignedIn,
    RemoteAcquirerError,
)
from shouyin.acquirer.iso import pack, unpack
from shouyin.acquirer.mac import (
    WorkingKeys,
    check_value,
    encrypt_pin_block,
    sign,
    unwrap_key,
    verify,
)
from shouyin.acquirer.messages import (
    BatchTotals,
    CardSaleRequest,
    EchoRequest,
    EchoResponse,
    FinancialResponse,
    IsoMessage,
    QrPrecreateRequest,
    QrSaleRequest,
    QueryRequest,
    QueryResponse,
    RefundRequest,
    RefundResponse,
    Request,
    ReversalRequest,
    ReversalResponse,
    SettlementRequest,
    SettlementResponse,
    SignInRequest,
    SignInResponse,
    VoidRequest,
    entry_mode,
    local_stamp,
)
from shouyin.acquirer.pan import get_logger

__all__ = ["RESPONSE_TYPES", "Response", "TerminalSession"]

logger = get_logger(__name__)

Response = (
    SignInResponse
    | EchoResponse
    | FinancialResponse
    | RefundResponse
    | ReversalResponse
    | SettlementResponse
    | QueryResponse
)
"""Every answer the host sends."""

RESPONSE_TYPES: dict[type[IsoMessage], type[Response]] = {
    SignInRequest: SignInResponse,
    EchoRequest: EchoResponse,
    CardSaleRequest: FinancialResponse,
    QrSaleRequest: FinancialResponse,
    QrPrecreateRequest: FinancialResponse,
    VoidRequest: FinancialResponse,
    RefundRequest: RefundResponse,
    ReversalRequest: ReversalResponse,
    SettlementRequest: SettlementResponse,
    QueryRequest: QueryResponse,
}
"""The answer model of each request model."""

_REFUSALS = frozenset({ResponseCode.MAC_ERROR.value, ResponseCode.SIGN_IN_AGAIN.value})


class TerminalSession:
    """One terminal's identity, keys and message codec towards the acquirer.

    Args:
        terminal_id: 8 characters (field 41).
        merchant_id: 15 characters (field 42).
        tmk: the terminal master key (see :func:`shouyin.acquirer.mac.derive_tmk`).
    """

    def __init__(self, terminal_id: str, merchant_id: str, tmk: bytes) -> None:
        self.terminal_id = terminal_id
        self.merchant_id = merchant_id
        self._tmk = tmk
        self.keys: WorkingKeys | None = None

    def __repr__(self) -> str:
        return f"TerminalSession({self.terminal_id}, signed in: {self.keys is not None})"

    # -- request builders -----------------------------------------------------------------------

    def _party(self, trace: int, batch: int, now: datetime) -> dict[str, object]:
        local_time, local_date = local_stamp(now)
        return {
            "trace": trace,
            "batch": batch,
            "local_time": local_time,
            "local_date": local_date,
            "terminal_id": self.terminal_id,
            "merchant_id": self.merchant_id,
        }

    def sign_in(self, *, trace: int, batch: int, now: datetime) -> SignInRequest:
        """An 0800 sign-in request."""
        return SignInRequest(**self._party(trace, batch, now))

    def echo(self, *, trace: int, batch: int, now: datetime) -> EchoRequest:
        """An 0800 echo test."""
        return EchoRequest(**self._party(trace, batch, now))

    def card_sale(
        self,
        *,
        trace: int,
        batch: int,
        amount: int,
        now: datetime,
        pan: str | None = None,
        expiry: str | None = None,
        entry: EntryMode = EntryMode.CHIP,
        track2: str | None = None,
        pin_block: bytes | None = None,
    ) -> CardSaleRequest:
        """An 0200 card sale (give ``pan``, ``track2`` or both).

        Args:
            trace: the terminal's trace number.
            batch: the open batch.
            amount: fen.
            now: the terminal's local time.
            pan: the card number (field 2).
            expiry: ``YYMM`` (field 14).
            entry: how the card was read.
            track2: track-2 equivalent data (field 35).
            pin_block: from :meth:`pin_block`, when the cardholder entered a PIN.

        Returns:
            The request.
        """
        return CardSaleRequest(
            **self._party(trace, batch, now),
            amount=amount,
            pan=pan,
            expiry=expiry,
            entry_mode=entry_mode(entry, pin_block is not None),
            track2=track2,
            pin_block=pin_block,
        )

    def qr_sale(
        self, *, trace: int, batch: int, amount: int, auth_code: str, now: datetime
    ) -> QrSaleRequest:
        """An 0200 QR micropay with the customer's payment code."""
        return QrSaleRequest(**self._party(trace, batch, now), amount=amount, auth_code=auth_code)

    def precreate(
        self, *, trace: int, batch: int, amount: int, now: datetime, wallet: Wallet | None = None
    ) -> QrPrecreateRequest:
        """An 0200 merchant-presented QR order."""
        return QrPrecreateRequest(**self._party(trace, batch, now), amount=amount, wallet=wallet)

    def void(
        self,
        *,
        trace: int,
        batch: int,
        amount: int,
        original_trace: int,
        now: datetime,
        original_rrn: str | None = None,
        original_auth_code: str | None = None,
    ) -> VoidRequest:
        """An 0200 void of a sale of the open batch (``batch``)."""
        return VoidRequest(
            **self._party(trace, batch, now),
            amount=amount,
            original_batch=batch,
            original_trace=original_trace,
            original_rrn=original_rrn,
            original_auth_code=original_auth_code,
        )

    def refund(
        self,
        *,
        trace: int,
        batch: int,
        amount: int,
        original_rrn: str,
        now: datetime,
        original_batch: int | None = None,
        original_trace: int | None = None,
        original_date: str | None = None,
    ) -> RefundRequest:
        """An 0220 refund against the sale with ``original_rrn``."""
        return RefundRequest(
            **self._party(trace, batch, now),
            amount=amount,
            original_rrn=original_rrn,
            original_batch=original_batch,
            original_trace=original_trace,
            original_date=original_date,
        )

    def reversal(
        self,
        *,
        original: Request | None = None,
        trace: int | None = None,
        batch: int | None = None,
        amount: int | None = None,
        processing_code: str | None = None,
        now: datetime,
        reason: str = ResponseCode.REVERSAL_TIMEOUT,
    ) -> ReversalRequest:
        """An 0400 reversal (or QR revoke) of ``original``, or of the transaction given by
        ``trace``, ``batch``, ``amount`` and ``processing_code``.

        Raises:
            ValueError: neither an original nor all four values.
        """
        if original is not None:
            trace, batch = original.trace, original.batch
            amount = getattr(original, "amount", 0)
            processing_code = original.CONSTANTS.get("3", "000000")
        if trace is None or batch is None or amount is None or processing_code is None:
            raise ValueError("a reversal needs the original request or its trace/batch/amount")
        return ReversalRequest(
            **self._party(trace, batch, now),
            processing_code=processing_code,
            amount=amount,
            reason=reason,
        )

    def query(self, *, trace: int, batch: int, now: datetime) -> QueryRequest:
        """An 0600 status query of the transaction ``trace`` in ``batch``."""
        return QueryRequest(**self._party(trace, batch, now))

    def settlement(
        self, *, trace: int, batch: int, totals: BatchTotals, now: datetime
    ) -> SettlementRequest:
        """An 0500 settlement of ``batch`` with the terminal's totals."""
        return SettlementRequest(**self._party(trace, batch, now), totals=totals)

    def pin_block(self, pin: str, pan: str) -> bytes:
        """Encipher a PIN for field 52 under the PIK from the last sign-in.

        Raises:
            NotSignedIn: no working keys yet.
        """
        if self.keys is None:
            raise NotSignedIn
        return encrypt_pin_block(pin, pan, self.keys.pik)

    # -- codec ----------------------------------------------------------------------------------

    def encode(self, request: IsoMessage) -> bytes:
        """Pack a request, with a MAC unless it is a sign-in.

        Raises:
            NotSignedIn: a MAC'ed request before sign-in.
        """
        if isinstance(request, SignInRequest):
            return pack(request.to_fields())
        if self.keys is None:
            raise NotSignedIn
        return sign(request.to_fields(), self.keys.mak)

    @staticmethod
    def answer_key(request: IsoMessage) -> tuple[str, int]:
        """What identifies the answer to ``request``: its MTI and trace."""
        return response_mti(request.MTI), int(getattr(request, "trace", 0))

    @staticmethod
    def peek_key(message: bytes) -> tuple[str, int] | None:
        """The MTI and trace of a received message, or ``None`` if unreadable."""
        try:
            fields = unpack(message)
            return fields["t"], int(fields.get("11", "-1"))
        except (IsoFormatError, ValueError):
            return None

    def decode(self, request: IsoMessage, message: bytes) -> Response:
        """Check and decode the answer to ``request``.

        Args:
            request: the request it answers.
            message: the packed answer.

        Returns:
            The typed answer.

        Raises:
            HostRefused: ``A0`` or ``77``: the request was not processed.
            MacError: the answer's MAC is missing or wrong (or the sign-in keys are bad).
            IsoFormatError: the answer does not decode as the expected model.
        """
        fields = unpack(message)
        trace = int(getattr(request, "trace", 0))
        code = fields.get("39", "")
        if code in _REFUSALS and "64" not in fields:
            raise HostRefused(code, request.MTI, trace)
        model = RESPONSE_TYPES[type(request)]
        if isinstance(request, SignInRequest):
            return self._install(request, message, fields)
        if self.keys is None or not verify(message, self.keys.mak):
            raise MacError(fields["t"], fields.get("11"), "answer MAC missing or wrong")
        return model.from_fields(fields)

    def _install(
        self, request: SignInRequest, message: bytes, fields: dict[str, str]
    ) -> SignInResponse:
        answer = SignInResponse.from_fields(fields)
        if not answer.approved:
            return answer
        if answer.mak_wrapped is None or answer.pik_wrapped is None:
            raise IsoFormatError("62", "sign-in answer without working keys")
        try:
            keys = WorkingKeys(
                mak=unwrap_key(self._tmk, answer.mak_wrapped),
                pik=unwrap_key(self._tmk, answer.pik_wrapped),
            )
        except RemoteAcquirerError as error:  # wrong TMK, or tampered on the way
            raise MacError(answer.MTI, fields.get("11"), "working keys do not unwrap") from error
        if (check_value(keys.mak), check_value(keys.pik)) != (answer.mak_kcv, answer.pik_kcv):
            raise MacError(answer.MTI, fields.get("11"), "working key check value mismatch")
        if not verify(message, keys.mak):
            raise MacError(answer.MTI, fields.get("11"), "sign-in answer MAC wrong")
        self.keys = keys
        logger.info("terminal %s signed in: %r", self.terminal_id, keys)
        return answer
