"""The payment orchestrator: card and QR payments of a sale through the lane's terminal, once.

:class:`PaymentOrchestrator` takes a payment through the terminal in the order DESIGN.md section 5
prescribes, with a commit at each step that matters:

1. **check, then write the intent.** The amount is checked against what the sale still owes, the
   payment code's wallet is recognised (DESIGN.md section 6), and the intent is committed as
   ``pending`` under a fresh ``ecr_ref``. A refusal here raises a typed error and sends nothing.
2. **send** the Payment with that ``ecr_ref``; the ``sent`` state is written while it is on the
   terminal. Live progress reaches the cashier in plain Chinese (:mod:`~shouyin.payments.wording`);
   the cashier may :meth:`~PaymentOrchestrator.abort` while the terminal still allows it.
3. **on a final answer, record it and complete the sale in one commit**: the approved intent, the
   tender (carrying the ``ecr_ref`` and the acquirer's references) and, when nothing is left to
   pay, the completed sale with its shift and outbox entries. A decline is recorded and the sale
   stays payable (split tender: pay again, by any means).
4. **no answer** (timeout, lost link, terminal restart): the intent becomes ``unknown`` and the
   :class:`~shouyin.payments.recovery.Recovery` settles it by status query, or by a reversal that
   is retried until acknowledged.

Why a payment is taken exactly once, whatever breaks and wherever the process dies:

* nothing reaches the terminal without a committed intent, so every transaction the terminal
  could approve can be found from the journal by its ``ecr_ref``;
* an ``ecr_ref`` is never reused: a new attempt gets a new one, and only once the previous
  attempt on the sale is settled (:class:`~shouyin.payments.errors.PaymentInProgress`), so two
  approvals for one intent are impossible and the terminal, which answers a repeated ``ecr_ref``
  from its journal, never charges twice;
* approval and tender commit together, and the sale refuses a second tender with the same
  ``ecr_ref``, so an approved transaction is on exactly one sale — or, if the sale could not take
  it, the same commit decides to reverse it;
* unknown outcomes are asked, never assumed; what stays unknown is reversed, and a ``reversing``
  intent is never put on a sale; reversals are retried until the terminal acknowledges them;
* at start-up :meth:`~PaymentOrchestrator.recover_all` settles the journal before any new payment
  is accepted.

Voids (撤销) and refunds (退货) follow the same pattern with a supervisor's approval: decide and
commit, send, record the answer in one commit with its effect on the sale (tender voided, or the
Return recorded), and send again — never guess — when no answer came.

Cash is not taken here: lane services take it (``shouyin.lane.services.pay_cash``); a split
tender is cash there plus as many card/QR payments here as the customer wants.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from shouyin.domain.money import Money
from shouyin.domain.returns import ReturnItem
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import Approval, User
from shouyin.lane import services
from shouyin.lane.services import Context
from shouyin.link.events import HealthReported, MessageReceived
from shouyin.link.messages import (
    AbortRequest,
    AdminResponse,
    EventNotification,
    PaymentProgress,
    PaymentRequest,
    PaymentResponse,
)
from shouyin.link.values import NotificationKind, PaymentKind, Result, Wallet
from shouyin.payments.errors import (
    PaymentError,
    PaymentInProgress,
    RecoveryPending,
    TerminalInTestMode,
)
from shouyin.payments.journal import IntentKind, IntentState, PaymentIntent, PaymentUnitOfWork
from shouyin.payments.killpoints import Checkpoint, KillPoint, no_checkpoint
from shouyin.payments.policy import PaymentPolicy
from shouyin.payments.port import Channel, TerminalPort
from shouyin.payments.recording import (
    Recorded,
    begin_void,
    load,
    mark_sent,
    mark_unknown,
    open_payment,
    record_payment,
)
from shouyin.payments.recovery import Notify, Recovery, RecoveryReport
from shouyin.payments.refunds import open_refund
from shouyin.payments.verdicts import Verdict, VerdictKind, of_payment, unanswered
from shouyin.payments.wallets import (
    DEFAULT_WALLET_RULES,
    WalletRule,
    code_tail,
    normalise_code,
    recognise_wallet,
)
from shouyin.payments.wording import Explanation, ProgressEvent, Step, explain, progress, reason

__all__ = ["PaymentOrchestrator", "PaymentOutcome"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What became of a payment, void or refund, for the cashier.

    Attributes:
        intent: the journal entry afterwards.
        sale: the sale afterwards (``None`` if it could not be read).
        explanation: one sentence, Chinese and English.
    """

    intent: PaymentIntent
    sale: Sale | None
    explanation: Explanation

    @property
    def ecr_ref(self) -> str:
        """The attempt's ``ecr_ref``."""
        return self.intent.ecr_ref

    @property
    def state(self) -> IntentState:
        """The intent's state."""
        return self.intent.state

    @property
    def approved(self) -> bool:
        """The money moved as asked (payment or refund approved)."""
        return self.intent.state is IntentState.APPROVED

    @property
    def completed(self) -> bool:
        """The sale is completed."""
        return self.sale is not None and self.sale.state is SaleState.COMPLETED


class PaymentOrchestrator:
    """Pays, voids and refunds through one terminal, exactly once (see the module docstring).

    One orchestrator per lane and terminal. Its unit of work is used for one short transaction at
    a time, never across an ``await``.

    Args:
        uow: the lane's unit of work, with the payment journal.
        terminal: the terminal link (a ``LinkEndpoint``, or a fake).
        ctx: lane, clock and ids.
        policy: timings.
        wallet_rules: how payment codes are recognised (DESIGN.md section 6 by default).
        checkpoint: the kill-point hook (crash tests).
        on_progress: receives every progress event (in addition to a call's own listener).
    """

    def __init__(
        self,
        uow: PaymentUnitOfWork,
        terminal: TerminalPort,
        ctx: Context,
        *,
        policy: PaymentPolicy | None = None,
        wallet_rules: Sequence[WalletRule] = DEFAULT_WALLET_RULES,
        checkpoint: Checkpoint = no_checkpoint,
        on_progress: Notify | None = None,
    ) -> None:
        self.uow = uow
        self.ctx = ctx
        self.policy = policy or PaymentPolicy()
        self.wallet_rules = tuple(wallet_rules)
        self.channel = Channel(terminal, checkpoint, query_timeout=self.policy.query_timeout)
        self.recovery = Recovery(uow, self.channel, ctx, self.policy)
        self._on_progress = on_progress
        self._recovered = False
        self._in_flight: dict[str, tuple[str, str]] = {}  # sale_id -> (ecr_ref, service_id)
        self._after_sale: set[str] = set()  # voids and refunds under way, by ecr_ref
        # Test mode as the terminal last reported it (heartbeat health, its notifications and
        # admin answers); a link without listeners (a fake) never reports it.
        self.terminal_test_mode = False
        add_listener = getattr(terminal, "add_listener", None)
        if callable(add_listener):
            add_listener(self._watch_test_mode)

    def _watch_test_mode(self, _endpoint: object, event: object) -> None:
        if isinstance(event, HealthReported):
            self.terminal_test_mode = bool(event.health.test_mode)
        elif isinstance(event, MessageReceived):
            message = event.message
            if isinstance(message, AdminResponse) and message.test_mode is not None:
                self.terminal_test_mode = message.test_mode
            elif isinstance(message, EventNotification):
                if message.event is NotificationKind.TEST_MODE_STARTED:
                    self.terminal_test_mode = True
                elif message.event is NotificationKind.TEST_MODE_ENDED:
                    self.terminal_test_mode = False

    def _refuse_in_test_mode(self) -> None:
        if self.terminal_test_mode:
            raise TerminalInTestMode(
                "POS机处于测试模式，不能收款；请等待测试结束后重试 "
                "(the terminal is in test mode: no real payments until it ends)"
            )

    @property
    def recovered(self) -> bool:
        """Whether :meth:`recover_all` has run (new payments are refused until it has)."""
        return self._recovered

    @property
    def in_flight(self) -> frozenset[str]:
        """The ``ecr_ref`` of every payment, void and refund under way in this process (the
        background loop leaves them alone)."""
        paying = {ecr_ref for ecr_ref, _ in self._in_flight.values() if ecr_ref}
        return frozenset(paying | self._after_sale)

    def _notifier(self, listener: Notify | None) -> Notify:
        listeners = [x for x in (listener, self._on_progress) if x is not None]

        def notify(event: ProgressEvent) -> None:
            for each in listeners:
                try:
                    each(event)
                except Exception:
                    logger.exception("progress listener failed")

        return notify

    def _outcome(self, recorded: Recorded, *, void: bool = False) -> PaymentOutcome:
        intent, sale = recorded.intent, recorded.sale
        if sale is None:
            sale = load(self.uow, intent.ecr_ref).sale
        remaining = sale.remaining if sale is not None else None
        if void and intent.state is IntentState.APPROVED:  # the void was refused
            why = reason(intent.error_condition, intent.message)
            explanation = Explanation(
                f"撤销未成功（{why.zh}），原交易有效",
                f"Void refused ({why.en}); the payment stands",
            )
        else:
            explanation = explain(intent, remaining)
        return PaymentOutcome(intent, sale, explanation)

    # -- start-up ------------------------------------------------------------------------------
    async def recover_all(self, on_progress: Notify | None = None) -> RecoveryReport:
        """Settle the journal (run once at start-up, before the lane accepts new sales).

        Returns:
            What was found and done, with an explanation per intent for the cashier.
        """
        report = await self.recovery.recover_all(self._notifier(on_progress))
        self._recovered = True
        for line in report.lines("en"):
            logger.info("recovered %s", line)
        return report

    async def run_background(self, stop: asyncio.Event) -> None:
        """Retry what the terminal has not acknowledged yet until ``stop`` is set (run it as a
        task for the lane's life, after :meth:`recover_all`)."""
        await self.recovery.run(stop, lambda: self.in_flight)

    async def retry_unsettled(self) -> int:
        """One background pass over reversals, voids and refunds still waiting; returns how many
        are left (:meth:`run_background` does this periodically)."""
        return await self.recovery.retry_unsettled(self.in_flight)

    # -- payments ------------------------------------------------------------------------------
    async def pay(
        self,
        sale_id: str,
        kind: TenderKind,
        amount: Money,
        auth_code: str | None = None,
        *,
        operator_id: str | None = None,
        on_progress: Notify | None = None,
    ) -> PaymentOutcome:
        """Take a card or QR payment of ``amount`` towards a sale.

        Args:
            sale_id: the sale (open or part paid).
            kind: ``TenderKind.CARD`` or ``TenderKind.QR``.
            amount: at most what the sale still owes.
            auth_code: QR: the customer's scanned 付款码; without one, the terminal shows a
                merchant QR code for the customer to scan.
            operator_id: the cashier, for the terminal's records.
            on_progress: live progress for this payment.

        Returns:
            The outcome: approved (the sale completed when paid in full), declined, failed,
            reversed or still reversing — with a sentence for the cashier.

        Raises:
            RecoveryPending: :meth:`recover_all` has not run yet.
            TerminalInTestMode: the terminal reports test mode.
            UnrecognisedPaymentCode: the code matches no wallet rule.
            AmountRefused, SaleNotPayable, PaymentInProgress, UnknownSale: nothing was sent.
        """
        if not self._recovered:
            raise RecoveryPending("the lane has not settled its payment journal yet")
        self._refuse_in_test_mode()
        code, wallet, payment_kind = self._method(kind, auth_code)
        if sale_id in self._in_flight:
            raise PaymentInProgress(f"sale {sale_id} already has a payment under way")
        self._in_flight[sale_id] = ("", "")
        try:
            return await self._pay(
                sale_id=sale_id,
                kind=kind,
                amount=amount,
                code=code,
                wallet=wallet,
                payment_kind=payment_kind,
                operator_id=operator_id,
                on_progress=on_progress,
            )
        finally:
            del self._in_flight[sale_id]

    def _method(
        self, kind: TenderKind, auth_code: str | None
    ) -> tuple[str | None, Wallet | None, PaymentKind]:
        if kind is TenderKind.CARD:
            if auth_code is not None:
                raise PaymentError("a card payment takes no payment code")
            return None, None, PaymentKind.CARD
        if kind is TenderKind.QR:
            if auth_code is None:
                return None, None, PaymentKind.MERCHANT_QR
            code = normalise_code(auth_code)
            return code, recognise_wallet(code, self.wallet_rules), PaymentKind.QR_CODE
        raise PaymentError("cash is taken by the lane services, not the terminal")

    async def _pay(
        self,
        *,
        sale_id: str,
        kind: TenderKind,
        amount: Money,
        code: str | None,
        wallet: Wallet | None,
        payment_kind: PaymentKind,
        operator_id: str | None,
        on_progress: Notify | None,
    ) -> PaymentOutcome:
        checkpoint = self.channel.checkpoint
        checkpoint(KillPoint.BEFORE_INTENT)
        intent = open_payment(
            self.uow,
            self.ctx,
            sale_id=sale_id,
            tender_kind=kind,
            amount=amount,
            wallet=wallet,
            code_tail=code_tail(code) if code is not None else None,
            operator_id=operator_id,
        )
        checkpoint(KillPoint.AFTER_INTENT)
        ecr_ref = intent.ecr_ref
        notify = self._notifier(on_progress)
        verdict = await self._exchange_payment(intent, code, payment_kind, notify)
        checkpoint(KillPoint.AFTER_RESPONSE)
        if not verdict.final:
            mark_unknown(self.uow, self.ctx, ecr_ref, verdict.condition, verdict.message or "")
            return self._outcome(await self.recovery.resolve_payment(ecr_ref, notify))
        checkpoint(KillPoint.BEFORE_RESULT_WRITE)
        recorded = record_payment(self.uow, self.ctx, ecr_ref, verdict)
        checkpoint(KillPoint.AFTER_RESULT_WRITE)
        if recorded.intent.state is IntentState.REVERSING:  # approved, but the sale refused it
            recorded = await self.recovery.reverse(ecr_ref, notify)
        return self._outcome(recorded)

    async def _exchange_payment(
        self, intent: PaymentIntent, code: str | None, payment_kind: PaymentKind, notify: Notify
    ) -> Verdict:
        ecr_ref = intent.ecr_ref
        try:
            request = PaymentRequest(
                service_id=self.channel.new_service_id(),
                ecr_ref=ecr_ref,
                amount=intent.amount.fen,
                kind=payment_kind,
                auth_code=code,
                operator_id=intent.operator_id,
            )
        except ValidationError as error:  # never sent: a definite failure
            logger.error("payment %s not sendable: %s", ecr_ref, error.errors()[0]["msg"])
            return Verdict(VerdictKind.FAILED, condition="not_sent", message="无法发送到POS机")
        self._in_flight[intent.sale_id] = (ecr_ref, request.service_id)

        def sent() -> None:
            mark_sent(self.uow, self.ctx, ecr_ref)
            self.channel.checkpoint(KillPoint.AFTER_SENT_WRITE)

        def on_stage(message: PaymentProgress) -> None:
            notify(progress(ecr_ref, Step.TERMINAL, message.stage, message.message))

        async with self.channel.financial():
            notify(progress(ecr_ref, Step.SENT))
            exchange = await self.channel.exchange(
                request,
                kill_point=KillPoint.AFTER_SEND,
                after_send=sent if self.policy.record_sent else None,
                on_progress=on_stage,
                timeout=self.policy.payment_timeout,
            )
        if exchange.response is None:
            if not exchange.sent:  # provably never left: nothing can have been charged
                return Verdict(VerdictKind.FAILED, condition="not_sent", message=None)
            logger.warning("payment %s: no answer (%s)", ecr_ref, exchange.condition)
            return unanswered(exchange.condition or "no_answer", exchange.detail)
        if not isinstance(exchange.response, PaymentResponse):
            return unanswered("message_format", "unexpected answer to a payment")
        if exchange.response.test:  # 测试交易: it speaks for the test journal, not this payment
            logger.warning("payment %s answered in test mode: outcome unknown", ecr_ref)
        return of_payment(exchange.response)  # a test answer is unknown: asked again, reversed

    async def abort(self, sale_id: str) -> bool:
        """Ask the terminal to cancel the payment under way on a sale (the cashier's 取消).

        The terminal cancels only before the card data went to the acquirer; the payment then
        ends ``failed`` (aborted). Otherwise the payment goes on and ends as it ends.

        Returns:
            Whether the terminal accepted the abort.
        """
        ecr_ref, service_id = self._in_flight.get(sale_id, ("", ""))
        if not service_id:
            return False
        request = AbortRequest(
            service_id=self.channel.new_service_id(),
            target_service_id=service_id,
            reason="收银员取消",
        )
        exchange = await self.channel.exchange(request, timeout=self.policy.query_timeout)
        accepted = exchange.response is not None and exchange.response.result is Result.SUCCESS
        logger.info("abort of %s %s", ecr_ref, "accepted" if accepted else "refused")
        return accepted

    # -- cash ----------------------------------------------------------------------------------
    def pay_cash(self, sale_id: str, tendered: Money) -> Sale:
        """Take cash towards a sale (``shouyin.lane.services.pay_cash``), refused while a card
        or QR payment of the same sale is open.

        Cash taken while the terminal may still approve would leave the sale paid twice (the
        approval would then be reversed, but the customer stands there while it is). So cash
        waits until every terminal payment of the sale is settled: in this process (a payment
        under way) and in the journal (checked in the same transaction as the cash tender).

        Raises:
            PaymentInProgress: a card/QR payment or void of the sale is not settled yet.
            TenderError, SaleStateError, UnknownSale: as ``pay_cash``.
        """
        if sale_id in self._in_flight:
            raise PaymentInProgress(f"sale {sale_id} has a card/QR payment under way")
        return services.pay_cash(
            self.uow, self.ctx, sale_id, tendered, guard=lambda sale: self._no_open(sale.sale_id)
        )

    def _no_open(self, sale_id: str) -> None:
        """Raise ``PaymentInProgress`` if the journal holds an unsettled payment of the sale
        (called inside the unit of work's transaction)."""
        busy = [
            i.ecr_ref
            for i in self.uow.payments.for_sale(sale_id)
            if i.kind is IntentKind.PAYMENT and (i.is_open or i.state is IntentState.VOIDING)
        ]
        if busy:
            raise PaymentInProgress(f"sale {sale_id}: {', '.join(busy)} not settled yet")

    # -- void and refund -----------------------------------------------------------------------
    async def void(
        self, ecr_ref: str, approval: Approval, *, on_progress: Notify | None = None
    ) -> PaymentOutcome:
        """Void (撤销) an approved card/QR payment of an unfinished sale, with a supervisor's
        ``VOID_SALE`` approval; the sale's tender is voided with it.

        Returns:
            The outcome: ``voided``; ``approved`` when the terminal refused (the payment stands,
            e.g. its batch was settled: refund instead); ``voiding`` while unacknowledged.

        Raises:
            RecoveryPending, TerminalInTestMode, UnknownIntent, VoidRefused, PermissionDenied:
                nothing was sent.
        """
        if not self._recovered:
            raise RecoveryPending("the lane has not settled its payment journal yet")
        self._refuse_in_test_mode()
        begin_void(self.uow, self.ctx, ecr_ref, approval)
        self.channel.checkpoint(KillPoint.AFTER_INTENT)
        self._after_sale.add(ecr_ref)
        try:
            recorded = await self.recovery.send_void(ecr_ref, self._notifier(on_progress))
        finally:
            self._after_sale.discard(ecr_ref)
        return self._outcome(recorded, void=True)

    async def refund(
        self,
        *,
        sale_id: str,
        original_ecr_ref: str,
        items: Sequence[ReturnItem],
        approval: Approval,
        reason: str,
        cashier: User,
        on_progress: Notify | None = None,
    ) -> PaymentOutcome:
        """Refund (退货) returned goods of a completed sale to its card/QR payment, with a
        supervisor's ``REFUND`` approval; the Return is recorded when the terminal approves.

        Returns:
            The outcome: ``approved`` (Return recorded), ``declined``/``failed``, or ``unknown``
            (retried with the same refund number until the terminal answers).

        Raises:
            RecoveryPending, TerminalInTestMode, RefundRefused, ReturnError, PermissionDenied,
                ShiftError: nothing was sent.
        """
        if not self._recovered:
            raise RecoveryPending("the lane has not settled its payment journal yet")
        self._refuse_in_test_mode()
        self.channel.checkpoint(KillPoint.BEFORE_INTENT)
        intent = open_refund(
            self.uow,
            self.ctx,
            sale_id=sale_id,
            original_ecr_ref=original_ecr_ref,
            items=items,
            approval=approval,
            reason=reason,
            cashier=cashier,
        )
        self.channel.checkpoint(KillPoint.AFTER_INTENT)
        notify = self._notifier(on_progress)
        self._after_sale.add(intent.ecr_ref)
        try:
            recorded = await self.recovery.send_refund(intent.ecr_ref, notify, fresh=True)
        finally:
            self._after_sale.discard(intent.ecr_ref)
        return self._outcome(recorded)

    def journal(self, sale_id: str) -> list[PaymentIntent]:
        """Every payment and refund attempt of a sale, oldest first."""
        with self.uow:
            return self.uow.payments.for_sale(sale_id)

    def approved_payments(self, sale_id: str) -> list[PaymentIntent]:
        """The sale's approved payments (what a refund or a void can name)."""
        return [
            i
            for i in self.journal(sale_id)
            if i.kind is IntentKind.PAYMENT and i.state is IntentState.APPROVED
        ]
