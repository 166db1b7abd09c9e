"""A scriptable in-memory terminal: :class:`FakeTerminal` satisfies
:class:`~shouyin.payments.port.TerminalPort` with a terminal's externally visible rules.

It keeps its transactions by ``ecr_ref``, answers a repeated Payment from them (never a second
charge), and answers status queries, reversals, voids and refunds as the simulator does; a script
of misbehaviour per payment (:class:`FakeBehaviour`) makes it decline, lose the answer, never
answer, or make the customer confirm on the phone, and counters (``charges``, ``requests``) let
tests check what the "acquirer" saw. Everything a request does up to its first real wait happens
at once, as for bytes already on the wire, so a caller killed right after sending still leaves
the transaction on the terminal. For the real simulator over a real link, see ``tests/payments``.
"""

from __future__ import annotations

import asyncio
import builtins
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from shouyin.link.aio import LinkLost, ProgressCallback
from shouyin.link.errors import LinkTimeout, LocalProtocolError
from shouyin.link.messages import (
    AbortRequest,
    AbortResponse,
    PaymentProgress,
    PaymentRequest,
    PaymentResponse,
    RefundRequest,
    RefundResponse,
    Request,
    Response,
    ReversalRequest,
    ReversalResponse,
    TransactionStatusRequest,
    TransactionStatusResponse,
    failure_response,
)
from shouyin.link.values import (
    AcquirerData,
    ErrorCondition,
    PaymentKind,
    ProgressStage,
    Result,
    ReversalReason,
    TransactionKind,
    TransactionRecord,
    TransactionState,
    Wallet,
)

__all__ = ["FakeBehaviour", "FakeTerminal", "FakeTransaction"]


class FakeBehaviour(StrEnum):
    """What the fake terminal does with the next new payment."""

    APPROVE = "approve"
    DECLINE = "decline"
    LOSE_RESPONSE = "lose_response"  # approves, then the link drops before the answer
    NEVER_ANSWER = "never_answer"  # approves, and no answer ever comes (the link times out)
    NOT_RECEIVED = "not_received"  # the link drops before the request arrives
    USERPAYING = "userpaying"  # QR: the customer confirms on the phone, then approved
    WAIT_FOR_CARD = "wait_for_card"  # waits ``card_wait`` for the card (abortable meanwhile)


@dataclass
class FakeTransaction:
    """A transaction as the fake terminal keeps it."""

    ecr_ref: str
    kind: TransactionKind
    state: TransactionState
    amount: int
    payment_kind: PaymentKind
    acquirer: AcquirerData | None = None
    original_ecr_ref: str | None = None
    refunded: int = 0

    def record(self) -> TransactionRecord:
        """As a status query reports it."""
        return TransactionRecord(
            ecr_ref=self.ecr_ref,
            kind=self.kind,
            state=self.state,
            amount=self.amount,
            acquirer=self.acquirer,
        )


@dataclass
class FakeTerminal:
    """A scriptable terminal (see the module docstring).

    Attributes:
        behaviours: one per new payment, in order; then ``APPROVE``.
        silent: the next this many requests of any kind get no answer (``LinkTimeout``).
        status_failures: the next this many status queries get no answer.
        reversal_failures: the next this many reversals (and voids) get no answer.
        connected: ``False``: every request is refused unsent (``LocalProtocolError``).
        hang_for: seconds a request waits before it times out.
        card_wait: seconds ``WAIT_FOR_CARD`` waits for the card.
        transactions: by ``ecr_ref``.
        requests: every request received, in order.
        charges: approvals given (payments only): what the acquirer booked.
    """

    behaviours: deque[FakeBehaviour] = field(default_factory=deque)
    silent: int = 0
    status_failures: int = 0
    reversal_failures: int = 0
    connected: bool = True
    hang_for: float = 30.0
    card_wait: float = 20.0
    transactions: dict[str, FakeTransaction] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    charges: int = 0
    _services: int = 0
    _abort: dict[str, asyncio.Event] = field(default_factory=dict)

    def script(self, *behaviours: FakeBehaviour) -> None:
        """Queue behaviours for the next new payments."""
        self.behaviours.extend(behaviours)

    def new_service_id(self) -> str:
        """A fresh service id."""
        self._services += 1
        return f"F{self._services}"

    async def wait_ready(self, timeout: float | None = None) -> object:
        """Ready at once when connected; else wait ``timeout`` and raise TimeoutError."""
        if not self.connected:
            await asyncio.sleep(timeout or 0)
            raise TimeoutError("fake terminal not connected")
        return self

    def requests_of(self, kind: type[Request]) -> builtins.list[Request]:
        """The requests of one type received so far."""
        return [r for r in self.requests if isinstance(r, kind)]

    async def request(
        self,
        request: Request,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Answer ``request`` as a terminal would (or misbehave as scripted)."""
        if not self.connected:
            raise LocalProtocolError("not logged in")
        # Everything up to the first real wait happens at once, as for bytes already on the wire:
        # a caller that dies right after sending still leaves the transaction on the terminal.
        silent = self.silent > 0 or (
            isinstance(request, TransactionStatusRequest) and self.status_failures > 0
        )
        if silent:
            if self.silent > 0:
                self.silent -= 1
            else:
                self.status_failures -= 1
            await asyncio.sleep(self.hang_for)
            raise LinkTimeout(f"{request.type} {request.service_id}: no_response")
        self.requests.append(request)
        if isinstance(request, PaymentRequest):
            return await self._payment(request, on_progress or (lambda _: None))
        if isinstance(request, TransactionStatusRequest):
            return self._status(request)
        if isinstance(request, ReversalRequest):
            return await self._reversal(request)
        if isinstance(request, RefundRequest):
            return self._refund(request)
        if isinstance(request, AbortRequest):
            return self._abort_request(request)
        return failure_response(request, ErrorCondition.UNAVAILABLE_SERVICE)

    def _acquirer(self, request: PaymentRequest) -> AcquirerData:
        n = self.charges
        wallet = None
        if request.kind is not PaymentKind.CARD:
            wallet = _wallet_of(request.auth_code)
        return AcquirerData(
            rrn=f"{n:012d}",
            trace=f"{n:06d}",
            batch="000001",
            auth_code=f"{n:06d}",
            masked_pan="622848*********0018" if request.kind is PaymentKind.CARD else None,
            wallet=wallet,
        )

    def _answer(self, request: PaymentRequest, txn: FakeTransaction) -> PaymentResponse:
        approved = txn.state is TransactionState.APPROVED
        return PaymentResponse(
            service_id=request.service_id,
            ecr_ref=txn.ecr_ref,
            result=Result.SUCCESS if approved else Result.FAILURE,
            error_condition=None if approved else ErrorCondition.DECLINED,
            message="交易成功" if approved else "交易拒绝",
            amount=txn.amount if approved else None,
            kind=txn.payment_kind,
            acquirer=txn.acquirer,
        )

    async def _payment(
        self, request: PaymentRequest, on_progress: ProgressCallback
    ) -> PaymentResponse:
        known = self.transactions.get(request.ecr_ref)
        if known is not None:
            if known.amount != request.amount or known.kind is not TransactionKind.PAYMENT:
                return _refused(request, ErrorCondition.NOT_ALLOWED, "收银流水号已用于另一笔交易")
            return self._answer(request, known)  # the original result, never a second charge
        behaviour = self.behaviours.popleft() if self.behaviours else FakeBehaviour.APPROVE
        if behaviour is FakeBehaviour.NOT_RECEIVED:
            raise LinkLost(request, "simulated: the link dropped before the request arrived")
        if not await self._customer(request, behaviour, on_progress):
            return _refused(request, ErrorCondition.ABORTED, "交易已取消")
        txn = self._book(request, declined=behaviour is FakeBehaviour.DECLINE)
        if behaviour is FakeBehaviour.LOSE_RESPONSE:
            raise LinkLost(request, "simulated: the answer was lost")
        if behaviour is FakeBehaviour.NEVER_ANSWER:
            await asyncio.sleep(self.hang_for)
            raise LinkTimeout(f"payment {request.service_id}: no_response")
        return self._answer(request, txn)

    async def _customer(
        self, request: PaymentRequest, behaviour: FakeBehaviour, on_progress: ProgressCallback
    ) -> bool:
        """The customer's part (card and PIN, or confirming on the phone); False if aborted."""
        sid = request.service_id
        card = request.kind is PaymentKind.CARD
        first = ProgressStage.PRESENT_CARD if card else ProgressStage.CONTACTING_ACQUIRER
        on_progress(PaymentProgress(service_id=sid, stage=first))
        if behaviour is FakeBehaviour.WAIT_FOR_CARD and await self._aborted(sid):
            return False
        if behaviour is FakeBehaviour.USERPAYING:
            for _ in range(3):
                stage = ProgressStage.WAITING_FOR_CUSTOMER
                on_progress(PaymentProgress(service_id=sid, stage=stage))
                await asyncio.sleep(4.0)
        elif card:
            on_progress(PaymentProgress(service_id=sid, stage=ProgressStage.PIN_ENTRY))
        on_progress(PaymentProgress(service_id=sid, stage=ProgressStage.CONTACTING_ACQUIRER))
        return True

    async def _aborted(self, service_id: str) -> bool:
        """Wait up to ``card_wait`` for the card; True if the cashier aborted meanwhile."""
        aborted = self._abort.setdefault(service_id, asyncio.Event())
        try:
            await asyncio.wait_for(aborted.wait(), self.card_wait)
        except TimeoutError:
            return False
        finally:
            del self._abort[service_id]
        return True

    def _book(self, request: PaymentRequest, *, declined: bool) -> FakeTransaction:
        state = TransactionState.DECLINED if declined else TransactionState.APPROVED
        txn = FakeTransaction(
            request.ecr_ref, TransactionKind.PAYMENT, state, request.amount, request.kind
        )
        if not declined:
            self.charges += 1
            txn.acquirer = self._acquirer(request)
        self.transactions[request.ecr_ref] = txn
        return txn

    def _status(self, request: TransactionStatusRequest) -> TransactionStatusResponse:
        txn = self.transactions.get(request.ecr_ref)
        if txn is None:
            response = _refuse(request, ErrorCondition.NOT_FOUND, "无此交易")
            assert isinstance(response, TransactionStatusResponse)
            return response
        return TransactionStatusResponse(
            service_id=request.service_id,
            result=Result.SUCCESS,
            ecr_ref=request.ecr_ref,
            transaction=txn.record(),
        )

    async def _reversal(self, request: ReversalRequest) -> ReversalResponse:
        if self.reversal_failures > 0:
            self.reversal_failures -= 1
            await asyncio.sleep(self.hang_for)
            raise LinkTimeout(f"reversal {request.service_id}: no_response")
        txn = self.transactions.get(request.ecr_ref)
        sid, ref = request.service_id, request.ecr_ref
        if txn is None:
            return ReversalResponse(
                service_id=sid,
                ecr_ref=ref,
                result=Result.FAILURE,
                error_condition=ErrorCondition.NOT_FOUND,
                message="无此交易",
            )
        done = (TransactionState.REVERSED, TransactionState.VOIDED)
        if txn.state is TransactionState.APPROVED:
            void = request.reason is ReversalReason.VOID
            if void and txn.refunded:
                return ReversalResponse(
                    service_id=sid,
                    ecr_ref=ref,
                    result=Result.FAILURE,
                    error_condition=ErrorCondition.NOT_ALLOWED,
                    message="已有退货，不能撤销",
                )
            txn.state = TransactionState.VOIDED if void else TransactionState.REVERSED
        elif txn.state not in done:
            return ReversalResponse(
                service_id=sid, ecr_ref=ref, result=Result.SUCCESS, message="原交易未成功，无需冲正"
            )
        message = "交易已撤销" if txn.state is TransactionState.VOIDED else "交易已冲正"
        return ReversalResponse(service_id=sid, ecr_ref=ref, result=Result.SUCCESS, message=message)

    def _refund(self, request: RefundRequest) -> RefundResponse:
        known = self.transactions.get(request.ecr_ref)
        original = self.transactions.get(request.original_ecr_ref or "")
        if known is None:
            if (
                original is None
                or original.state is not TransactionState.APPROVED
                or original.refunded + request.amount > original.amount
            ):
                response = _refuse(request, ErrorCondition.NOT_ALLOWED, "原交易不可退货")
                assert isinstance(response, RefundResponse)
                return response
            original.refunded += request.amount
            known = FakeTransaction(
                request.ecr_ref,
                TransactionKind.REFUND,
                TransactionState.APPROVED,
                request.amount,
                original.payment_kind,
                AcquirerData(rrn=f"R{len(self.transactions):011d}", batch="000001"),
                original.ecr_ref,
            )
            self.transactions[request.ecr_ref] = known
        return RefundResponse(
            service_id=request.service_id,
            ecr_ref=request.ecr_ref,
            result=Result.SUCCESS,
            amount=known.amount,
            acquirer=known.acquirer,
            message="退货成功",
        )

    def _abort_request(self, request: AbortRequest) -> AbortResponse:
        waiting = self._abort.get(request.target_service_id)
        if waiting is None:
            return AbortResponse(
                service_id=request.service_id,
                result=Result.FAILURE,
                error_condition=ErrorCondition.NOT_ALLOWED,
                message="交易已提交，不能取消",
            )
        waiting.set()
        return AbortResponse(service_id=request.service_id, result=Result.SUCCESS)

    def states(self) -> dict[str, TransactionState]:
        """Every payment's state by ``ecr_ref`` (the terminal side of the invariants)."""
        return {
            ref: txn.state
            for ref, txn in self.transactions.items()
            if txn.kind is TransactionKind.PAYMENT
        }


def _refuse(request: Request, condition: ErrorCondition, message: str) -> Response:
    return failure_response(request, condition, message)


def _refused(request: PaymentRequest, condition: ErrorCondition, message: str) -> PaymentResponse:
    return PaymentResponse(
        service_id=request.service_id,
        ecr_ref=request.ecr_ref,
        result=Result.FAILURE,
        error_condition=condition,
        message=message,
    )


def _wallet_of(code: str | None) -> Wallet:
    if code is None:
        return Wallet.WECHAT
    return {"1": Wallet.WECHAT, "2": Wallet.ALIPAY, "3": Wallet.ALIPAY}.get(
        code[0], Wallet.UNIONPAY
    )
