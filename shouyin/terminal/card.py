"""The card sale (消费), step by step, as a 电签POS does it.

1. "请刷卡/插卡/挥卡": wait for a card (the cashier may abort);
2. PIN entry when the card asks for it, except contactless sales up to the no-CVM limit
   (小额免密免签);
3. take a trace number, store the reversal flag, mark the journal entry *sent*, then send the
   0200 and wait, reporting "交易处理中" so that the cashier's payment timeout never fires on a
   slow host;
4. no answer: arm the reversal (the worker sends it until acknowledged) and answer failure;
   a refusal: record and answer it; an approval: record it (dropping the reversal flag in the
   same commit), capture the electronic signature when needed, print the slip, answer.

Every state change is committed before the next step, so a power cut anywhere leaves a journal
from which :mod:`shouyin.terminal.recovery` knows what to do.
"""

from __future__ import annotations

import logging

from shouyin.link.messages import EventNotification, PaymentRequest, PaymentResponse
from shouyin.link.values import (
    CardEntry,
    ErrorCondition,
    NotificationKind,
    PaymentKind,
    ProgressStage,
    TransactionState,
)
from shouyin.terminal.common import (
    acquirer_data,
    call_acquirer,
    fail,
    order_id,
    print_slip,
    reversal_flag,
    slip_for,
)
from shouyin.terminal.context import Aborted, Services, Txn
from shouyin.terminal.faults import Step
from shouyin.terminal.outcomes import payment_response
from shouyin.terminal.ports import CardData, CardPrompt, Cvm, SaleAuth
from shouyin.terminal.records import JournalEntry, Stage
from shouyin.terminal.slips import SlipKind, format_fen, signature_png, signature_ref

__all__ = ["card_sale"]

logger = logging.getLogger(__name__)


async def _read_card(
    services: Services, txn: Txn, prompt: CardPrompt
) -> CardData | tuple[ErrorCondition, str]:
    show = (ProgressStage.PRESENT_CARD, f"请刷卡/插卡/挥卡 {format_fen(prompt.amount)}")
    services.progress(txn, *show)
    try:
        card = await services.wait_customer(
            txn, services.reader.read_card(prompt), services.config.card_timeout, show
        )
    except Aborted:
        return ErrorCondition.ABORTED, "交易已取消"
    except TimeoutError:
        card = None
    if card is None:
        return ErrorCondition.TIMEOUT, "未检测到卡片"
    services.progress(txn, ProgressStage.READING_CARD, "读卡中")
    return card


async def _pin(
    services: Services, txn: Txn, card: CardData, prompt: CardPrompt
) -> str | tuple[ErrorCondition, str]:
    show = (ProgressStage.PIN_ENTRY, "请输入密码")
    services.progress(txn, *show)
    try:
        entry = await services.wait_customer(
            txn, services.reader.enter_pin(card, prompt), services.config.card_timeout, show
        )
    except Aborted:
        return ErrorCondition.ABORTED, "交易已取消"
    except TimeoutError:
        return ErrorCondition.TIMEOUT, "密码输入超时"
    if entry.pin is None:
        return ErrorCondition.CANCELLED, "持卡人取消"
    return entry.pin


async def _signature(
    services: Services, txn: Txn, card: CardData, prompt: CardPrompt, *, batch: str, trace: str
) -> tuple[str | None, bytes | None]:
    show = (ProgressStage.SIGNATURE, "请持卡人签名")
    services.progress(txn, *show)
    try:
        signature = await services.wait_customer(
            txn, services.reader.capture_signature(card, prompt), services.config.card_timeout, show
        )
    except (Aborted, TimeoutError):
        signature = None
    if signature is None:
        logger.info("no electronic signature for %s: sign the paper slip", prompt.ecr_ref)
        return None, None
    png = signature_png(signature)
    return signature_ref(batch, trace, png), png


async def card_sale(
    services: Services, txn: Txn, request: PaymentRequest, entry: JournalEntry
) -> PaymentResponse:
    """Run a card sale for the journal ``entry`` (recorded as intent) and return the answer.

    Raises:
        PowerLoss: a fault switch cut the power at a step.
    """
    config, state = services.config, services.state
    prompt = CardPrompt(request.amount, request.ecr_ref)
    card = await _read_card(services, txn, prompt)
    if isinstance(card, tuple):
        return payment_response(fail(services, entry, *card), txn.service_id)
    services.step(Step.CARD_READ)
    if card.entry is CardEntry.CHIP:  # reported once the answer is out and the card pulled
        txn.after.append(EventNotification(event=NotificationKind.CARD_REMOVED))
    no_cvm = card.entry is CardEntry.CONTACTLESS and request.amount <= config.no_cvm_limit
    pin: str | None = None
    if card.cvm is Cvm.ONLINE_PIN and not no_cvm:
        entered = await _pin(services, txn, card, prompt)
        if isinstance(entered, tuple):
            return payment_response(fail(services, entry, *entered), txn.service_id)
        pin = entered

    txn.abortable = False
    trace = state.next_trace()
    entry = entry.changed(
        services.clock.now(),
        stage=Stage.SENT,
        trace=trace,
        order_id=order_id(services, entry.batch, trace),
    )
    flag = reversal_flag(services, entry, trace, "sale")
    state.put(entry)
    services.step(Step.BEFORE_ACQUIRER)
    services.progress(txn, ProgressStage.CONTACTING_ACQUIRER, "交易处理中")
    at = services.clock.now()
    auth = SaleAuth(
        trace=trace,
        batch=entry.batch,
        amount=entry.amount,
        at=at,
        order_id=entry.order_id or "",
        kind=PaymentKind.CARD,
        card=card,
        pin=pin,
    )
    reply = await call_acquirer(
        services,
        txn,
        entry,
        "sale",
        lambda: services.acquirer.sale(auth),
        flag=flag,
        unreachable="无法连接收单机构，未扣款",
        no_answer=(ErrorCondition.TIMEOUT, "交易超时，已发起冲正"),
    )
    if isinstance(reply, JournalEntry):
        return payment_response(reply, txn.service_id)

    services.step(Step.AFTER_ACQUIRER_APPROVAL)
    data = acquirer_data(
        services,
        entry,
        reply,
        trace,
        at,
        masked_pan=card.masked_pan,
        brand=card.brand,
        card_entry=card.entry,
    )
    entry = entry.changed(
        services.clock.now(),
        state=TransactionState.APPROVED,
        stage=Stage.DONE,
        acquirer=data,
        message="交易成功",
    )
    state.put(entry, drop_reversal=flag.id)
    services.step(Step.AFTER_RECORD)
    logger.info("card sale %s approved (trace %s)", entry.ecr_ref, trace)

    needs_signature = not no_cvm and card.cvm is not Cvm.NO_CVM
    ref, png = (None, None)
    if needs_signature:
        ref, png = await _signature(services, txn, card, prompt, batch=entry.batch, trace=trace)
    slip = slip_for(services, entry, SlipKind.SALE, data, signature_ref=ref)
    print_slip(services, txn, slip, png)
    services.status.screen = ("交易成功", format_fen(entry.amount))
    return payment_response(entry, txn.service_id)
