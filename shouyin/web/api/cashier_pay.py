"""The cashier API, part 2: tenders (cash, card, QR, split), abort, voids, returns, receipts.

Card and QR payments go through the lane's
:class:`~shouyin.payments.orchestrator.PaymentOrchestrator`; the request waits for the outcome
(a payment takes seconds, a PIN entry longer) while the live steps reach the page as
``payment.progress`` events on ``GET /api/events``. The payment runs as a task of the runtime, so
a closed tab does not cancel it half way; its outcome is also published (``payment.outcome``).
Cash is refused while a card/QR payment of the same sale is open (``payment_in_progress``).

A cash request carries the page's id of the tender (``tender_id``, or an ``Idempotency-Key``
header): the same request delivered twice (a double Enter, a retry after a lost answer) takes the
cash once, and the repeat is answered with the sale as the first request left it. A sale whose
items cost nothing (a free bag) is completed with ``POST /api/sales/{id}/complete``.

A split tender is simply several tenders: cash for part, then card for the rest, or the
reverse; the sale completes when nothing is left to pay. After completion the answer carries
the receipt text; the lane's peripherals (if any) print it, open the drawer for cash and show
the change, and a peripheral problem comes back as ``device_warning`` without undoing anything.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path
from pydantic import BaseModel, Field

from shouyin.domain.money import Money
from shouyin.domain.returns import ReturnItem
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import Action
from shouyin.lane import services
from shouyin.lane.services import Context
from shouyin.payments.errors import PaymentInProgress
from shouyin.payments.journal import IntentKind, IntentState
from shouyin.payments.orchestrator import PaymentOutcome
from shouyin.store.payment_repo import SqlPaymentUnitOfWork
from shouyin.web.api._common import (
    Amount,
    ApproverIn,
    DeviceWarning,
    SaleId,
    Seller,
    approve,
    cashier_name,
    device_call,
    load_sale,
    publish_sale,
    receipt_text,
    shielded,
)
from shouyin.web.auth import Principal, RuntimeDep
from shouyin.web.errors import ApiError
from shouyin.web.events import WebEvent
from shouyin.web.runtime import LaneRuntime
from shouyin.web.schemas import (
    PaymentOut,
    ReturnOut,
    SaleOut,
    of_intent,
    of_return,
    of_sale,
)

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["cashier"])

EcrRef = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
_TENDER_ID = r"^[A-Za-z0-9._:-]+$"


# -- schemas ---------------------------------------------------------------------------------
class CashIn(BaseModel):
    """Cash handed over by the customer."""

    amount_fen: Amount
    tender_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=_TENDER_ID,
        description="the page's id of this tender: a repeat with the same id takes no more cash",
    )


class ElectronicIn(BaseModel):
    """A card payment; the amount defaults to what the sale still owes (split: less)."""

    amount_fen: Amount | None = None


class QrIn(ElectronicIn):
    """A QR payment: the customer's 付款码 scanned by the cashier, or none for the terminal to
    show a merchant code."""

    auth_code: str | None = Field(default=None, min_length=1, max_length=64)


class TenderResult(BaseModel):
    """The sale after a tender, and what the cashier does next."""

    sale: SaleOut
    completed: bool
    change: int = Field(description="fen of change to give back")
    receipt_text: str | None = None
    device_warning: DeviceWarning | None = None


class PaymentResult(TenderResult):
    """The outcome of a card/QR payment (approved, declined, failed, ...)."""

    payment: PaymentOut
    approved: bool
    message: str
    message_en: str


class AbortOut(BaseModel):
    """Whether the terminal accepted the cashier's cancel."""

    accepted: bool


class VoidIn(BaseModel):
    """Void (作废) a whole unfinished sale, with a supervisor's approval."""

    approver: ApproverIn
    reason: str = Field(min_length=1, max_length=200)


class VoidPaymentIn(BaseModel):
    """Void (撤销) one approved card/QR payment of an unfinished sale."""

    approver: ApproverIn


class ReturnItemIn(BaseModel):
    """A line of the original sale and how many pieces come back (none: the whole line)."""

    line_no: int = Field(ge=1, le=100_000)
    quantity: int | None = Field(default=None, ge=1, le=9999)


class ReturnIn(BaseModel):
    """Take goods back against an earlier sale, with a supervisor's approval."""

    sale_id: str = Field(min_length=1, max_length=64)
    items: list[ReturnItemIn] = Field(min_length=1, max_length=200)
    approver: ApproverIn
    reason: str = Field(min_length=1, max_length=200)
    method: Literal["cash", "original"] = Field(
        default="cash", description="refund in cash, or to the original card/QR payment"
    )
    ecr_ref: str | None = Field(
        default=None, max_length=64, description="the payment to refund, when several"
    )


class ReturnResult(BaseModel):
    """A recorded return, or the refund's outcome when it went to the card/QR."""

    return_: ReturnOut | None = Field(default=None, alias="return")
    payment: PaymentOut | None = None
    approved: bool
    message: str
    message_en: str


class ReceiptOut(BaseModel):
    """A receipt as printed."""

    text: str
    device_warning: DeviceWarning | None = None


# -- helpers ---------------------------------------------------------------------------------
async def _finish(runtime: LaneRuntime, user: Principal, sale: Sale) -> TenderResult:
    """The answer after a tender; on completion: receipt, peripherals, event."""
    completed = sale.state is SaleState.COMPLETED
    text = receipt_text(runtime, sale) if completed else None
    warning = None
    if completed:
        name = cashier_name(runtime, sale.cashier_id)
        warning = await device_call(
            runtime,
            sale.lane_id,
            lambda d: d.sale_completed(sale, cashier_name=name, user_id=user.user.user_id),
        )
        publish_sale(runtime, "sale.completed", sale)
    elif sale.lane_id in runtime.devices:
        runtime.spawn(device_call(runtime, sale.lane_id, lambda d: d.sale_changed(sale)))
    return TenderResult(
        sale=of_sale(sale),
        completed=completed,
        change=sale.change.fen,
        receipt_text=text,
        device_warning=warning,
    )


def _amount(sale: Sale, amount_fen: int | None) -> Money:
    return Money(amount_fen) if amount_fen is not None else sale.remaining


async def _pay(
    runtime: LaneRuntime,
    user: Principal,
    sale_id: str,
    kind: TenderKind,
    *,
    amount_fen: int | None,
    auth_code: str | None = None,
) -> PaymentResult:
    sale = load_sale(runtime, user, sale_id)
    orchestrator = runtime.orchestrator(user.lane_id)
    amount = _amount(sale, amount_fen)
    outcome: PaymentOutcome = await shielded(
        runtime,
        orchestrator.pay(sale_id, kind, amount, auth_code, operator_id=user.user.user_id),
    )
    runtime.bus.publish(
        WebEvent(
            "payment.outcome",
            {
                "sale_id": sale_id,
                "ecr_ref": outcome.ecr_ref,
                "state": outcome.state.value,
                "zh": outcome.explanation.zh,
                "en": outcome.explanation.en,
            },
            lane_id=user.lane_id,
        )
    )
    after = outcome.sale or load_sale(runtime, user, sale_id)
    finished = await _finish(runtime, user, after)
    return PaymentResult(
        **finished.model_dump(),
        payment=of_intent(outcome.intent),
        approved=outcome.approved,
        message=outcome.explanation.zh,
        message_en=outcome.explanation.en,
    )


# -- tenders ---------------------------------------------------------------------------------
class _Repeat(Exception):
    """A cash request whose tender id is recorded already: answered, never paid again."""


def _no_open_payment(uow: SqlPaymentUnitOfWork, sale: Sale) -> None:
    """Refuse cash while a card/QR payment (or its void) of the sale is unsettled in the journal
    (inside the cash tender's transaction)."""
    if any(
        i.kind is IntentKind.PAYMENT and (i.is_open or i.state is IntentState.VOIDING)
        for i in uow.payments.for_sale(sale.sale_id)
    ):
        raise PaymentInProgress(f"sale {sale.sale_id} has an unsettled card/QR payment")


def _check_repeat(uow: SqlPaymentUnitOfWork, sale_id: str, tender_id: str) -> None:
    """Raise ``_Repeat`` when the tender id is recorded for this sale (409 for another sale)."""
    found = uow.sales.cash_tender(tender_id)
    if found is None:
        return
    if found[0] != sale_id:
        raise ApiError(
            409,
            "tender_id_reused",
            "付款编号已用于另一笔交易",
            "The tender id belongs to another sale",
        )
    raise _Repeat(tender_id)


def _take_cash(
    uow: SqlPaymentUnitOfWork,
    ctx: Context,
    sale_id: str,
    tendered: Money,
    tender_id: str | None,
) -> Sale:
    """Take cash and record its tender id in one transaction (``services.pay_cash`` plus the
    id).

    Raises:
        _Repeat: the tender id is recorded already (nothing changed).
    """
    with uow:
        if tender_id is not None:
            _check_repeat(uow, sale_id, tender_id)
        sale = services.get_sale(uow, sale_id)
        _no_open_payment(uow, sale)
        tender_no = sale.add_tender(TenderKind.CASH, tendered).tender_no
        if not sale.remaining:
            services.complete_paid_sale(uow, ctx, sale)
        if tender_id is not None:
            uow.sales.record_cash_tender(tender_id, sale_id, tender_no, ctx.clock())
        uow.sales.save(sale)
        uow.commit()
        return sale


def _repeated(runtime: LaneRuntime, sale: Sale) -> TenderResult:
    """The answer to a repeated cash request: the sale as it stands, with no receipt printed,
    no drawer opened and no event published again."""
    completed = sale.state is SaleState.COMPLETED
    return TenderResult(
        sale=of_sale(sale),
        completed=completed,
        change=sale.change.fen,
        receipt_text=receipt_text(runtime, sale) if completed else None,
    )


@router.post("/sales/{sale_id}/cash", response_model=TenderResult, summary="Take cash (现金)")
async def pay_cash(
    sale_id: SaleId,
    body: CashIn,
    user: Seller,
    runtime: RuntimeDep,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=64, pattern=_TENDER_ID),
    ] = None,
) -> TenderResult:
    """Take cash (more than owed: change is due); refused while a card/QR payment of the sale
    is open. A repeat of a request (same ``tender_id`` or ``Idempotency-Key``) takes no more
    cash: it is answered with the sale as it stands."""
    sale = load_sale(runtime, user, sale_id)
    tender_id = body.tender_id or idempotency_key
    tendered = Money(body.amount_fen)
    ctx = runtime.context(user.lane_id)
    if sale.state is SaleState.OPEN and not sale.total_due and sale.active_lines:
        raise ApiError(
            409,
            "nothing_due",
            "应付 0 元，无需收款：请直接完成交易",
            "Nothing is due: complete the sale without payment",
        )
    # No await from the id's check to its record: no other request of this lane runs between.
    try:
        if runtime.has_terminal(user.lane_id):
            if tender_id is not None:
                with runtime.uow() as uow:
                    _check_repeat(uow, sale_id, tender_id)
            # The orchestrator also refuses cash while a card payment is under way in this
            # process; the id is recorded right after, in the same step of the event loop.
            sale = runtime.orchestrator(user.lane_id).pay_cash(sale_id, tendered)
            if tender_id is not None:
                record = runtime.uow()
                with record:
                    tender_no = sale.tenders[-1].tender_no
                    record.sales.record_cash_tender(tender_id, sale_id, tender_no, ctx.clock())
                    record.commit()
        else:
            sale = _take_cash(runtime.uow(), ctx, sale_id, tendered, tender_id)
    except _Repeat:
        return _repeated(runtime, load_sale(runtime, user, sale_id))
    return await _finish(runtime, user, sale)


@router.post(
    "/sales/{sale_id}/complete", response_model=TenderResult, summary="Complete a free sale"
)
async def complete_sale(sale_id: SaleId, user: Seller, runtime: RuntimeDep) -> TenderResult:
    """Complete a sale with nothing due (its items cost nothing), with no payment. A repeat on
    the completed sale answers it as it stands (no second receipt, no drawer)."""
    load_sale(runtime, user, sale_id)
    uow = runtime.uow()
    try:
        with uow:
            sale = services.get_sale(uow, sale_id)
            if sale.state is SaleState.COMPLETED:
                raise _Repeat(sale_id)
            _no_open_payment(uow, sale)
            # Sale.complete refuses a sale with something due or without items
            services.complete_paid_sale(uow, runtime.context(user.lane_id), sale)
            uow.sales.save(sale)
            uow.commit()
    except _Repeat:
        return _repeated(runtime, load_sale(runtime, user, sale_id))
    return await _finish(runtime, user, sale)


@router.post("/sales/{sale_id}/card", response_model=PaymentResult, summary="Card (刷卡)")
async def pay_card(
    sale_id: SaleId, body: ElectronicIn, user: Seller, runtime: RuntimeDep
) -> PaymentResult:
    """Pay by card on the lane's terminal (default: everything still owed)."""
    return await _pay(runtime, user, sale_id, TenderKind.CARD, amount_fen=body.amount_fen)


@router.post("/sales/{sale_id}/qr", response_model=PaymentResult, summary="QR (扫码付)")
async def pay_qr(sale_id: SaleId, body: QrIn, user: Seller, runtime: RuntimeDep) -> PaymentResult:
    """Pay with the customer's 付款码 (WeChat, Alipay, UnionPay; recognised from the code)."""
    return await _pay(
        runtime, user, sale_id, TenderKind.QR, amount_fen=body.amount_fen, auth_code=body.auth_code
    )


@router.post("/sales/{sale_id}/abort", response_model=AbortOut, summary="Cancel a card payment")
async def abort(sale_id: SaleId, user: Seller, runtime: RuntimeDep) -> AbortOut:
    """Ask the terminal to cancel the payment under way (possible until the card data left)."""
    load_sale(runtime, user, sale_id)
    orchestrator = runtime.orchestrator(user.lane_id)
    return AbortOut(accepted=await orchestrator.abort(sale_id))


@router.get(
    "/sales/{sale_id}/payments", response_model=list[PaymentOut], summary="Card/QR attempts"
)
async def payments(sale_id: SaleId, user: Seller, runtime: RuntimeDep) -> list[PaymentOut]:
    """Every card/QR payment and refund attempt of the sale, oldest first (masked card only)."""
    load_sale(runtime, user, sale_id)
    uow = runtime.uow()
    with uow:
        return [of_intent(i) for i in uow.payments.for_sale(sale_id)]


# -- voids -----------------------------------------------------------------------------------
@router.post(
    "/sales/{sale_id}/payments/{ecr_ref}/void",
    response_model=PaymentResult,
    summary="Void a card/QR payment (撤销)",
)
async def void_payment(
    sale_id: SaleId, ecr_ref: EcrRef, body: VoidPaymentIn, user: Seller, runtime: RuntimeDep
) -> PaymentResult:
    """Void one approved card/QR payment of an unfinished sale (supervisor approval)."""
    load_sale(runtime, user, sale_id)
    if not any(i.ecr_ref == ecr_ref for i in runtime.orchestrator(user.lane_id).journal(sale_id)):
        raise ApiError(404, "unknown_payment", "没有这笔付款", "No such payment")
    approval = await approve(runtime, user, body.approver, Action.VOID_SALE)
    orchestrator = runtime.orchestrator(user.lane_id)
    outcome = await shielded(runtime, orchestrator.void(ecr_ref, approval))
    after = outcome.sale or load_sale(runtime, user, sale_id)
    finished = await _finish(runtime, user, after)
    return PaymentResult(
        **finished.model_dump(),
        payment=of_intent(outcome.intent),
        approved=outcome.state is IntentState.VOIDED,
        message=outcome.explanation.zh,
        message_en=outcome.explanation.en,
    )


@router.post("/sales/{sale_id}/void", response_model=SaleOut, summary="Void the sale (作废)")
async def void_sale(sale_id: SaleId, body: VoidIn, user: Seller, runtime: RuntimeDep) -> SaleOut:
    """Void an unfinished sale (supervisor approval). Card/QR payments on it must be voided
    first (``tenders_outstanding`` otherwise)."""
    load_sale(runtime, user, sale_id)
    approval = await approve(runtime, user, body.approver, Action.VOID_SALE)
    sale = services.void_sale(
        runtime.uow(), runtime.context(user.lane_id), sale_id, approval, body.reason
    )
    publish_sale(runtime, "sale.voided", sale)
    return of_sale(sale)


# -- returns ---------------------------------------------------------------------------------
@router.post("/returns", response_model=ReturnResult, summary="Return goods (退货)")
async def create_return(body: ReturnIn, user: Seller, runtime: RuntimeDep) -> ReturnResult:
    """Take goods back against an earlier sale of this lane, refunded in cash or to the
    original card/QR payment (supervisor approval)."""
    sale = load_sale(runtime, user, body.sale_id)
    items = [ReturnItem(i.line_no, i.quantity) for i in body.items]
    approval = await approve(runtime, user, body.approver, Action.REFUND)
    ctx = runtime.context(user.lane_id)
    if body.method == "cash":
        ret = services.return_for_cash(
            runtime.uow(),
            ctx,
            user.user,
            sale_id=sale.sale_id,
            items=items,
            approval=approval,
            reason=body.reason,
        )
        return ReturnResult(
            **{"return": of_return(ret)},
            approved=True,
            message="退货完成，请退现金",
            message_en="Return recorded; refund the cash",
        )
    orchestrator = runtime.orchestrator(user.lane_id)
    approved = orchestrator.approved_payments(sale.sale_id)
    chosen = [p for p in approved if body.ecr_ref in (None, p.ecr_ref)]
    if len(chosen) != 1:
        raise ApiError(
            422,
            "choose_payment",
            "请选择要退回的付款",
            "Choose the payment to refund",
        )
    outcome = await shielded(
        runtime,
        orchestrator.refund(
            sale_id=sale.sale_id,
            original_ecr_ref=chosen[0].ecr_ref,
            items=items,
            approval=approval,
            reason=body.reason,
            cashier=user.user,
        ),
    )
    uow = runtime.uow()
    with uow:
        returns = uow.returns.for_sale(sale.sale_id)
    recorded = [
        r for r in returns if any(t.ref and t.ref.ecr_ref == outcome.ecr_ref for t in r.tenders)
    ]
    return ReturnResult(
        **{"return": of_return(recorded[0]) if recorded else None},
        payment=of_intent(outcome.intent),
        approved=outcome.approved,
        message=outcome.explanation.zh,
        message_en=outcome.explanation.en,
    )


# -- receipts --------------------------------------------------------------------------------
@router.get("/sales/{sale_id}/receipt", response_model=ReceiptOut, summary="Receipt preview")
async def receipt(sale_id: SaleId, user: Seller, runtime: RuntimeDep) -> ReceiptOut:
    """The sale's receipt as it prints (58 mm)."""
    return ReceiptOut(text=receipt_text(runtime, load_sale(runtime, user, sale_id)))


@router.post("/sales/{sale_id}/reprint", response_model=ReceiptOut, summary="Reprint (重印)")
async def reprint(sale_id: SaleId, user: Seller, runtime: RuntimeDep) -> ReceiptOut:
    """Print a copy of a completed sale's receipt, marked 重印."""
    sale = load_sale(runtime, user, sale_id)
    if sale.state is not SaleState.COMPLETED:
        raise ApiError(409, "not_completed", "交易未完成，不能重印", "The sale is not completed")
    text = receipt_text(runtime, sale, copy=True)
    name = cashier_name(runtime, sale.cashier_id)
    warning = await device_call(
        runtime,
        user.lane_id,
        lambda d: d.reprint(sale, cashier_name=name, user_id=user.user.user_id),
    )
    return ReceiptOut(text=text, device_warning=warning)
