"""``AcquirerPort`` over the acquirer simulator's ISO 8583 client (the terminal's SIM link).

:class:`ClientAcquirer` adapts :class:`shouyin.acquirer.client.AcquirerClient` to the port the
terminal core uses: it signs in on first use (and again when the host answers ``77``/``A0``,
which means "not processed"), takes trace numbers for sign-in, echo and settlement from the
terminal's own counter, encrypts the PIN under the session's PIN key, and maps the client's
exceptions onto the two outcomes the core distinguishes: nothing was sent
(:class:`~shouyin.terminal.errors.AcquirerUnavailable`) or the outcome is unknown
(:class:`~shouyin.terminal.errors.AcquirerNoAnswer`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from shouyin.acquirer.client import AcquirerClient
from shouyin.acquirer.codes import EntryMode, ProcessingCode, ResponseCode, TotalsKind, TxnStatus
from shouyin.acquirer.codes import Wallet as HostWallet
from shouyin.acquirer.errors import (
    AcquirerError,
    AcquirerTimeout,
    AcquirerUnreachable,
    HostRefused,
)
from shouyin.acquirer.mac import derive_tmk
from shouyin.acquirer.messages import FinancialResponse, QueryResponse
from shouyin.acquirer.totals import BatchTotals, KindTotals
from shouyin.link.values import CardEntry, PaymentKind, Wallet
from shouyin.terminal.errors import AcquirerNoAnswer, AcquirerUnavailable
from shouyin.terminal.ports import (
    CHINA_TZ,
    Clock,
    HostReply,
    QrStatus,
    QueryAuth,
    RefundAuth,
    ReversalAuth,
    SaleAuth,
    SettleAuth,
    VoidAuth,
)
from shouyin.terminal.state import TerminalState

__all__ = ["ClientAcquirer", "make_client"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_ENTRY = {
    CardEntry.CHIP: EntryMode.CHIP,
    CardEntry.CONTACTLESS: EntryMode.CONTACTLESS,
    CardEntry.SWIPE: EntryMode.SWIPE,
}
_PROCESSING = {
    PaymentKind.CARD: ProcessingCode.CARD_SALE,
    PaymentKind.QR_CODE: ProcessingCode.QR_SALE,
    PaymentKind.MERCHANT_QR: ProcessingCode.QR_PRECREATE,
}
_QUERY_STATUS = {
    TxnStatus.APPROVED: QrStatus.SUCCESS,
    TxnStatus.SETTLED: QrStatus.SUCCESS,
    TxnStatus.PENDING: QrStatus.USERPAYING,
    TxnStatus.DECLINED: QrStatus.PAYERROR,
    TxnStatus.REVERSED: QrStatus.REVOKED,
    TxnStatus.VOIDED: QrStatus.REVOKED,
}


def make_client(
    host: str, port: int, state: TerminalState, clock: Clock, timeout: float
) -> AcquirerClient:
    """An :class:`AcquirerClient` for this terminal (test master key derived from its id)."""
    config = state.config
    return AcquirerClient(
        host,
        port,
        config.acquirer_terminal_id,
        config.merchant_id,
        derive_tmk(config.acquirer_terminal_id),
        timeout=timeout,
        clock=lambda: clock.now().astimezone(CHINA_TZ),
    )


def _wallet(value: HostWallet | None) -> Wallet | None:
    return Wallet(value.value) if value is not None else None


def _financial(answer: FinancialResponse) -> HostReply:
    status = QrStatus(answer.wallet_status.value) if answer.wallet_status else None
    return HostReply(
        code=answer.response_code,
        rrn=answer.rrn,
        auth_code=answer.auth_code,
        qr_status=status,
        wallet=_wallet(answer.wallet),
        wallet_order_id=answer.wallet_order_id,
        qr_payload=answer.qr_payload,
    )


def _query(answer: QueryResponse) -> HostReply:
    if not answer.approved:
        return HostReply(code=answer.response_code)
    status = QrStatus(answer.wallet_status.value) if answer.wallet_status else None
    if status is None and answer.status is not None:
        status = _QUERY_STATUS.get(answer.status)
    code = "00" if status is QrStatus.SUCCESS else (answer.original_response_code or "09")
    if status is QrStatus.USERPAYING:
        code = "09"
    return HostReply(
        code=code,
        rrn=answer.rrn,
        auth_code=answer.auth_code,
        qr_status=status,
        wallet=_wallet(answer.wallet),
        wallet_order_id=answer.wallet_order_id,
    )


class ClientAcquirer:
    """The acquirer port over an :class:`AcquirerClient` (implements ``AcquirerPort``).

    Args:
        client: the ISO 8583 client.
        state: the terminal's state (trace and batch numbers).
    """

    def __init__(self, client: AcquirerClient, state: TerminalState) -> None:
        self.client = client
        self.state = state

    async def close(self) -> None:
        """Close the connection to the host."""
        await self.client.close()

    def _numbers(self) -> tuple[int, int]:
        return int(self.state.next_trace()), int(self.state.batch)

    async def _guard(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            if not self.client.signed_in:
                await self._sign_in(operation)
            try:
                return await call()
            except HostRefused:
                logger.warning("acquirer refused %s unprocessed: signing in again", operation)
                await self._sign_in(operation)
                return await call()
        except AcquirerUnreachable as error:
            raise AcquirerUnavailable(operation, str(error)) from error
        except AcquirerTimeout as error:
            raise AcquirerNoAnswer(operation, error.reason) from error
        except AcquirerError as error:  # a garbled or refused answer: the outcome is unknown
            raise AcquirerNoAnswer(operation, type(error).__name__) from error

    async def _sign_in(self, operation: str) -> None:
        trace, batch = self._numbers()
        try:
            answer = await self.client.sign_in(trace=trace, batch=batch)
        except AcquirerError as error:  # nothing of ``operation`` was sent
            raise AcquirerUnavailable(operation, f"sign-in failed: {error}") from error
        if not answer.approved:
            raise AcquirerUnavailable(operation, f"sign-in refused ({answer.response_code})")

    async def sign_in(self) -> HostReply:
        """0800 sign-in."""
        await self._sign_in("sign_in")
        return HostReply("00")

    async def echo(self) -> HostReply:
        """0800 echo test."""

        async def call() -> HostReply:
            trace, batch = self._numbers()
            return HostReply((await self.client.echo(trace=trace, batch=batch)).response_code)

        return await self._guard("echo", call)

    async def sale(self, auth: SaleAuth) -> HostReply:
        """0200 card sale or QR micropay."""
        trace, batch = int(auth.trace), int(auth.batch)

        async def call() -> HostReply:
            if auth.kind is PaymentKind.QR_CODE:
                answer = await self.client.qr_sale(
                    trace=trace, batch=batch, amount=auth.amount, auth_code=auth.auth_code or ""
                )
                return _financial(answer)
            card = auth.card
            if card is None:
                return HostReply("14", message="no card")
            block = self.client.pin_block(auth.pin, card.pan) if auth.pin is not None else None
            answer = await self.client.sale(
                trace=trace, batch=batch, amount=auth.amount, pan=card.pan, expiry=card.expiry,
                entry=_ENTRY[card.entry], track2=card.track2(), pin_block=block,
            )  # fmt: skip
            return _financial(answer)

        return await self._guard("sale", call)

    async def precreate(self, auth: SaleAuth) -> HostReply:
        """Merchant-presented QR order."""
        wallet = HostWallet(auth.wallet.value) if auth.wallet is not None else None

        async def call() -> HostReply:
            answer = await self.client.precreate(
                trace=int(auth.trace), batch=int(auth.batch), amount=auth.amount, wallet=wallet
            )
            reply = _financial(answer)
            if reply.code == ResponseCode.IN_PROGRESS and reply.qr_payload:
                # The host answers a created order "09" (waiting for the customer to scan it);
                # for the port, a precreate that brought back a code to show has succeeded.
                return replace(reply, code=ResponseCode.APPROVED.value)
            return reply

        return await self._guard("precreate", call)

    async def query(self, auth: QueryAuth) -> HostReply:
        """0600 status of the order (the original's trace and batch)."""

        async def call() -> HostReply:
            return _query(await self.client.query(trace=int(auth.trace), batch=int(auth.batch)))

        return await self._guard("query", call)

    async def reverse(self, auth: ReversalAuth) -> HostReply:
        """0400 reversal or QR revoke of the original (by its trace and batch)."""
        if auth.original_kind == "sale":
            code = _PROCESSING[auth.payment_kind]
        else:
            code = ProcessingCode.VOID  # voids and refunds share 200000

        async def call() -> HostReply:
            answer = await self.client.reverse(
                trace=int(auth.original_trace), batch=int(auth.batch), amount=auth.amount,
                processing_code=code,
            )  # fmt: skip
            status = QrStatus(answer.wallet_status.value) if answer.wallet_status else None
            return HostReply(answer.response_code, qr_status=status)

        return await self._guard("reverse", call)

    async def void(self, auth: VoidAuth) -> HostReply:
        """撤销 of an approved sale of the open batch."""

        async def call() -> HostReply:
            answer = await self.client.void(
                trace=int(auth.trace), batch=int(auth.batch), amount=auth.amount,
                original_trace=int(auth.original_trace), original_rrn=auth.original_rrn,
                original_auth_code=auth.original_auth_code,
            )  # fmt: skip
            return _financial(answer)

        return await self._guard("void", call)

    async def refund(self, auth: RefundAuth) -> HostReply:
        """退货 (its trace is kept across retries: the host keys refunds by it)."""
        if auth.original_rrn is None:
            return HostReply("25", message="original reference unknown")
        rrn = auth.original_rrn

        async def call() -> HostReply:
            answer = await self.client.refund(
                trace=int(auth.trace), batch=int(auth.batch), amount=auth.amount, original_rrn=rrn
            )
            return _financial(answer)

        return await self._guard("refund", call)

    async def settle(self, auth: SettleAuth) -> HostReply:
        """0500 settlement with the totals per kind."""
        sums: dict[TotalsKind, list[int]] = {}
        for t in auth.totals:
            host_wallet = HostWallet(t.wallet.value) if t.wallet is not None else None
            if t.kind is not PaymentKind.CARD and host_wallet is None:
                host_wallet = HostWallet.UNIONPAY
            row = sums.setdefault(TotalsKind.of(host_wallet), [0, 0, 0, 0])
            for index, value in enumerate((t.count, t.amount, t.refund_count, t.refund_amount)):
                row[index] += value
        totals = BatchTotals(
            by_kind={
                kind: KindTotals(sale_count=c, sale_amount=a, refund_count=rc, refund_amount=ra)
                for kind, (c, a, rc, ra) in sums.items()
            }
        )

        async def call() -> HostReply:
            trace = int(self.state.next_trace())
            answer = await self.client.settle(trace=trace, batch=int(auth.batch), totals=totals)
            return HostReply(answer.response_code)

        return await self._guard("settle", call)
