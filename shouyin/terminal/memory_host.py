"""An in-memory acquirer host implementing ``AcquirerPort``: for tests and standalone demos.

It answers by the shared test-card table (:mod:`shouyin.acquirer.testcards`, the same rules as
the acquirer simulator), keeps a ledger (so that tests can check "the acquirer saw exactly one
sale" and settlement totals) and counts every call. The ``no_answer`` card is booked and then
never answered: the terminal's own timeout fires and it must reverse.

QR orders follow a script of statuses: by default the one the payment code's last two digits
select (:func:`~shouyin.acquirer.testcards.qr_behaviour`), or ``qr_scripts[code]``; the sale
answers the first status, each query the next (the last one repeats). Merchant-presented
orders follow ``merchant_qr_script``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from shouyin.acquirer.testcards import CardBehaviour, QrBehaviour, card_by_pan, qr_behaviour
from shouyin.link.values import PaymentKind, Totals
from shouyin.link.wallets import recognise_wallet
from shouyin.terminal.cards import luhn_valid
from shouyin.terminal.ports import (
    HostReply,
    QrStatus,
    QueryAuth,
    RefundAuth,
    ReversalAuth,
    SaleAuth,
    SettleAuth,
    VoidAuth,
)

__all__ = ["LedgerEntry", "MemoryAcquirer"]

logger = logging.getLogger(__name__)

_QR_FAILURES = {QrStatus.CLOSED: "Q1", QrStatus.REVOKED: "Q1"}
_S = QrStatus
_QR_SCRIPTS: dict[QrBehaviour, tuple[list[QrStatus], str]] = {
    QrBehaviour.SUCCESS: ([_S.SUCCESS], "00"),
    QrBehaviour.USERPAYING_SUCCESS: ([_S.USERPAYING, _S.USERPAYING, _S.SUCCESS], "00"),
    QrBehaviour.USERPAYING_FAIL: ([_S.USERPAYING, _S.PAYERROR], "05"),
    QrBehaviour.SYSTEM_ERROR: ([_S.SYSTEMERROR, _S.SUCCESS], "00"),
    QrBehaviour.INSUFFICIENT_BALANCE: ([_S.PAYERROR], "51"),
    QrBehaviour.EXPIRED_CODE: ([_S.PAYERROR], "Q2"),
    QrBehaviour.USERPAYING_FOREVER: ([_S.USERPAYING], "00"),
}
_CARD_CODES = {
    CardBehaviour.DECLINE: "05",
    CardBehaviour.INSUFFICIENT_FUNDS: "51",
    CardBehaviour.EXPIRED: "54",
    CardBehaviour.INVALID: "14",
    CardBehaviour.ISSUER_UNAVAILABLE: "91",
}


@dataclass
class LedgerEntry:
    """One transaction as the host books it (masked card only)."""

    operation: str
    batch: str
    trace: str
    amount: int
    kind: PaymentKind | None = None
    status: str = "approved"
    rrn: str | None = None
    order_id: str | None = None
    masked_pan: str | None = None
    original_rrn: str | None = None


@dataclass
class _Order:
    auth: SaleAuth
    script: list[QrStatus]
    created: float
    fail_code: str = "05"
    entry: LedgerEntry | None = None

    def status(self) -> QrStatus:
        return self.script[0]

    def advance(self) -> QrStatus:
        if len(self.script) > 1:
            self.script.pop(0)
        return self.script[0]


@dataclass
class MemoryAcquirer:
    """The fake host. Set ``offline`` to make every request go unanswered.

    Args:
        qr_scripts: payment code -> statuses (default: ``[SUCCESS]``).
        merchant_qr_script: statuses of merchant-presented orders, one per query.
        revoke_retries: how many revokes are answered "retry" before one succeeds.
    """

    qr_scripts: dict[str, list[QrStatus]] = field(default_factory=dict)
    merchant_qr_script: Sequence[QrStatus] = (QrStatus.NOTPAY, QrStatus.SUCCESS)
    revoke_retries: int = 0
    offline: bool = False
    calls: list[tuple[str, object]] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    _orders: dict[str, _Order] = field(default_factory=dict)
    _refunds: dict[str, HostReply] = field(default_factory=dict)
    _rrn: int = 0

    def count(self, operation: str) -> int:
        """How many ``operation`` requests arrived."""
        return sum(1 for op, _ in self.calls if op == operation)

    async def _arrive(self, operation: str, auth: object) -> None:
        self.calls.append((operation, auth))
        if self.offline:
            await asyncio.Event().wait()  # never answers

    def _book(self, operation: str, auth: SaleAuth | VoidAuth | RefundAuth) -> LedgerEntry:
        self._rrn += 1
        kind = auth.kind if isinstance(auth, SaleAuth) else None
        masked = auth.card.masked_pan if isinstance(auth, SaleAuth) and auth.card else None
        order = auth.order_id if isinstance(auth, SaleAuth | VoidAuth) else None
        entry = LedgerEntry(
            operation,
            auth.batch,
            auth.trace,
            auth.amount,
            kind,
            "approved",
            f"{self._rrn:012d}",
            order,
            masked,
        )
        self.ledger.append(entry)
        return entry

    def _find(self, batch: str, trace: str) -> LedgerEntry | None:
        return next((e for e in self.ledger if (e.batch, e.trace) == (batch, trace)), None)

    async def sign_in(self) -> HostReply:
        """Always approved."""
        await self._arrive("sign_in", None)
        return HostReply("00")

    async def echo(self) -> HostReply:
        """Always approved."""
        await self._arrive("echo", None)
        return HostReply("00")

    async def sale(self, auth: SaleAuth) -> HostReply:
        """Card: by the test-card table; QR: by the code's script."""
        await self._arrive("sale", auth)
        if auth.kind is PaymentKind.QR_CODE:
            return self._qr_sale(auth)
        return await self._card_sale(auth)

    async def _card_sale(self, auth: SaleAuth) -> HostReply:
        card = auth.card
        if card is None or not luhn_valid(card.pan):
            return HostReply("14", message="invalid card")
        test_card = card_by_pan(card.pan)
        behaviour = test_card.behaviour if test_card else CardBehaviour.APPROVE
        if test_card is not None and test_card.delay_s:
            await asyncio.sleep(test_card.delay_s)
        if test_card is not None and test_card.expiry < f"{auth.at:%y%m}":
            return HostReply("54", message="expired card")
        right_pin = test_card.pin if test_card is not None else "123456"
        if auth.pin is not None and auth.pin != right_pin:
            return HostReply("55", message="wrong PIN")
        if behaviour is CardBehaviour.PIN_REQUIRED and auth.pin is None:
            return HostReply("55", message="PIN required")
        if behaviour in _CARD_CODES:
            return HostReply(_CARD_CODES[behaviour])
        entry = self._book("sale", auth)
        if behaviour is CardBehaviour.NO_ANSWER:
            await asyncio.Event().wait()  # booked, but the answer never comes
        return HostReply("00", rrn=entry.rrn, auth_code=f"{self._rrn % 1_000_000:06d}")

    def _qr_sale(self, auth: SaleAuth) -> HostReply:
        code = auth.auth_code or ""
        script, fail_code = _QR_SCRIPTS[qr_behaviour(code)]
        script = list(self.qr_scripts.get(code, script))
        order = _Order(auth, script, asyncio.get_running_loop().time(), fail_code)
        self._orders[auth.order_id] = order
        return self._order_reply(order, order.status())

    def _order_reply(self, order: _Order, status: QrStatus) -> HostReply:
        auth = order.auth
        wallet = auth.wallet or recognise_wallet(auth.auth_code or "")
        wallet_order = f"W{auth.order_id}"
        if status is QrStatus.SUCCESS:
            if order.entry is None:
                order.entry = self._book("sale", auth)
            return HostReply(
                "00",
                rrn=order.entry.rrn,
                qr_status=status,
                wallet=wallet,
                wallet_order_id=wallet_order,
            )
        failed = status is QrStatus.PAYERROR
        code = order.fail_code if failed else _QR_FAILURES.get(status, "Q0")
        return HostReply(code, qr_status=status, wallet=wallet, wallet_order_id=wallet_order)

    async def precreate(self, auth: SaleAuth) -> HostReply:
        """A merchant-presented order following ``merchant_qr_script``."""
        await self._arrive("precreate", auth)
        order = _Order(auth, list(self.merchant_qr_script), asyncio.get_running_loop().time())
        self._orders[auth.order_id] = order
        return HostReply(
            "00", qr_status=QrStatus.NOTPAY, qr_payload=f"https://qr.sim/{auth.order_id}"
        )

    async def query(self, auth: QueryAuth) -> HostReply:
        """The order's next scripted status."""
        await self._arrive("query", auth)
        order = self._orders.get(auth.order_id)
        if order is None:
            return HostReply("25", message="order not found")
        if order.status() in (QrStatus.REVOKED, QrStatus.CLOSED):
            return self._order_reply(order, order.status())
        return self._order_reply(order, order.advance())

    async def reverse(self, auth: ReversalAuth) -> HostReply:
        """Reverse (or revoke) the original; ``25`` when there is nothing to reverse."""
        await self._arrive("reverse", auth)
        if auth.order_id is not None and auth.order_id in self._orders:
            order = self._orders[auth.order_id]
            if self.revoke_retries > 0:
                self.revoke_retries -= 1
                return HostReply("96", qr_status=order.status(), retry=True)
            order.script = [QrStatus.REVOKED]
            if order.entry is not None:
                order.entry.status = "reversed"
            return HostReply("00", qr_status=QrStatus.REVOKED)
        entry = self._find(auth.batch, auth.original_trace)
        if entry is None:
            return HostReply("25", message="original not found")
        entry.status = "reversed" if auth.original_kind == "sale" else "approved"
        return HostReply("00", rrn=entry.rrn)

    async def void(self, auth: VoidAuth) -> HostReply:
        """Void an approved sale of the batch."""
        await self._arrive("void", auth)
        entry = self._find(auth.batch, auth.original_trace)
        if entry is None or entry.status != "approved":
            return HostReply("25", message="original not found")
        entry.status = "voided"
        booked = self._book("void", auth)
        return HostReply("00", rrn=booked.rrn, auth_code=auth.original_auth_code)

    async def refund(self, auth: RefundAuth) -> HostReply:
        """Refund, idempotent by refund number."""
        await self._arrive("refund", auth)
        if auth.refund_no in self._refunds:
            return self._refunds[auth.refund_no]
        original = next((e for e in self.ledger if e.rrn == auth.original_rrn), None)
        if original is None:
            return HostReply("25", message="original not found")
        booked = self._book("refund", auth)
        booked.original_rrn = auth.original_rrn
        reply = HostReply("00", rrn=booked.rrn)
        self._refunds[auth.refund_no] = reply
        return reply

    def totals(self, batch: str) -> dict[PaymentKind, tuple[int, int, int, int]]:
        """The host's totals of ``batch``: kind -> (count, amount, refunds, refund amount)."""
        out: dict[PaymentKind, tuple[int, int, int, int]] = {}
        kinds = {e.rrn: _norm(e.kind) for e in self.ledger if e.operation == "sale" and e.kind}
        for entry in self.ledger:
            if entry.batch != batch or entry.status != "approved":
                continue
            if entry.operation == "sale" and entry.kind is not None:
                kind = _norm(entry.kind)
                c, a, rc, ra = out.get(kind, (0, 0, 0, 0))
                out[kind] = (c + 1, a + entry.amount, rc, ra)
            elif entry.operation == "refund":
                kind = kinds.get(entry.original_rrn or "") or PaymentKind.CARD
                c, a, rc, ra = out.get(kind, (0, 0, 0, 0))
                out[kind] = (c, a, rc + 1, ra + entry.amount)
        return out

    async def settle(self, auth: SettleAuth) -> HostReply:
        """``00`` when the terminal's totals match the ledger, ``95`` otherwise."""
        await self._arrive("settle", auth)
        mine = _sum(auth.totals)
        host = {k: v for k, v in self.totals(auth.batch).items() if any(v)}
        return HostReply("00" if mine == host else "95")


def _norm(kind: PaymentKind) -> PaymentKind:
    return PaymentKind.QR_CODE if kind is PaymentKind.MERCHANT_QR else kind


def _sum(totals: Sequence[Totals]) -> dict[PaymentKind, tuple[int, int, int, int]]:
    out: dict[PaymentKind, tuple[int, int, int, int]] = {}
    for t in totals:
        kind = _norm(t.kind)
        c, a, rc, ra = out.get(kind, (0, 0, 0, 0))
        out[kind] = (c + t.count, a + t.amount, rc + t.refund_count, ra + t.refund_amount)
    return {k: v for k, v in out.items() if any(v)}
