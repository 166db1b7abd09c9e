"""Recovery: settle every journal entry whose outcome is unknown or not yet acknowledged.

Whatever broke — a timeout, a lost link, a terminal restart, a crash of the cashier system — it
leaves intents in an open state (``pending``, ``sent``, ``unknown``) or a retry state
(``reversing``, ``voiding``). :class:`Recovery` settles them, in the ways DESIGN.md section 5
prescribes, and never by guessing:

* **payments, open**: ask the terminal by ``ecr_ref`` (查询) every ``query_interval`` for up to
  ``query_window``. Approved: the outcome is recorded and the sale completed, in one commit
  (:func:`~shouyin.payments.recording.record_payment`). Declined, failed or not found: recorded
  as such; nothing was charged. Still unknown at the end of the window: the decision to reverse
  is committed (``reversing``) and then the Reversal (冲正) is sent;
* **reversing**: send the Reversal again until the terminal acknowledges it (the terminal is
  idempotent: a reversed transaction answers ``success`` again) — a few tries while the cashier
  waits, then in the background, with growing pauses, forever;
* **voiding**: send the void again until a definite answer (done, or refused: the original
  stands); a status query cannot tell a void in flight from a refused one, so it is not used;
* **refunds, open**: send the same refund again, with the same refund number, which the terminal
  and acquirer use to answer a repeat from their records.

Why this is exactly-once: an intent is committed before its request can leave, so a charge the
terminal could have made always has a journal entry to find it by; the terminal answers for an
``ecr_ref`` from its own journal, so asking never charges; an approval is attached to the sale
in the same commit that records it, and a ``reversing`` intent is never attached afterwards, so
each approved transaction ends on exactly one sale or reversed. :meth:`Recovery.recover_all` runs
at start-up before the lane takes new payments (the orchestrator refuses them until then).

Each step calls the kill-point hook (:mod:`~shouyin.payments.killpoints`) so crash tests can stop
the process there; each outcome comes with a short explanation for the cashier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

from shouyin.lane.services import Context
from shouyin.link.messages import (
    RefundRequest,
    RefundResponse,
    Response,
    ReversalRequest,
    ReversalResponse,
    TransactionStatusRequest,
    TransactionStatusResponse,
)
from shouyin.link.values import ReversalReason, TransactionKind
from shouyin.payments.journal import (
    OPEN_STATES,
    IntentKind,
    IntentState,
    PaymentIntent,
    PaymentUnitOfWork,
)
from shouyin.payments.killpoints import KillPoint
from shouyin.payments.policy import PaymentPolicy
from shouyin.payments.port import Channel, Exchange
from shouyin.payments.recording import (
    Recorded,
    load,
    mark_sent,
    record_payment,
    record_reversal,
    record_void,
    start_reversal,
)
from shouyin.payments.refunds import record_refund
from shouyin.payments.verdicts import (
    Verdict,
    VerdictKind,
    of_refund,
    of_reversal,
    of_status,
    of_void,
    unanswered,
)
from shouyin.payments.wording import Explanation, ProgressEvent, Step, explain, progress

__all__ = ["Notify", "Recovery", "RecoveryReport", "Resolution"]

logger = logging.getLogger(__name__)

Notify = Callable[[ProgressEvent], None]
"""Receives progress events for the cashier's screen."""


def _quiet(_: ProgressEvent) -> None:
    """No one is watching (start-up, background)."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """What recovery did with one intent.

    Attributes:
        intent: the intent afterwards.
        before: its state before.
        explanation: what the cashier is told.
    """

    intent: PaymentIntent
    before: IntentState
    explanation: Explanation

    @property
    def settled(self) -> bool:
        """Whether nothing is left to do for it."""
        return self.intent.settled


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """The outcome of :meth:`Recovery.recover_all`.

    Attributes:
        resolutions: one per intent found unsettled, oldest first.
        link_ready: whether the terminal was logged in when recovery started.
    """

    resolutions: tuple[Resolution, ...] = ()
    link_ready: bool = True

    @property
    def unsettled(self) -> tuple[Resolution, ...]:
        """Intents still waiting for the terminal (reversals or voids retried in the background)."""
        return tuple(r for r in self.resolutions if not r.settled)

    def lines(self, language: str = "zh") -> list[str]:
        """One line per intent for the cashier: ``ecr_ref: explanation``."""
        return [
            f"{r.intent.ecr_ref}: {r.explanation.zh if language == 'zh' else r.explanation.en}"
            for r in self.resolutions
        ]


_R = TypeVar("_R", bound=Response)


def _judge(exchange: Exchange, kind: type[_R], judge: Callable[[_R], Verdict]) -> Verdict:
    """The verdict on an exchange: ``judge`` of its answer, or unknown without a usable one."""
    response = exchange.response
    if response is None:
        return unanswered(exchange.condition or "no_answer", exchange.detail)
    if not isinstance(response, kind):
        return unanswered("message_format", f"unexpected {response.type}")
    return judge(response)


def _of_payment_status(response: TransactionStatusResponse) -> Verdict:
    return of_status(response, TransactionKind.PAYMENT)


class Recovery:
    """Settles open and retry-state intents (see the module docstring).

    Args:
        uow: the lane's unit of work (with the journal).
        channel: the terminal.
        ctx: lane, clock and ids.
        policy: timings.
    """

    def __init__(
        self, uow: PaymentUnitOfWork, channel: Channel, ctx: Context, policy: PaymentPolicy
    ) -> None:
        self.uow = uow
        self.channel = channel
        self.ctx = ctx
        self.policy = policy

    def _cp(self, point: KillPoint) -> None:
        self.channel.checkpoint(point)

    async def _pause(self, attempt: int) -> None:
        policy = self.policy
        delay = min(policy.reversal_retry * 2 ** max(0, attempt - 1), policy.reversal_retry_max)
        await asyncio.sleep(delay)

    # -- payments with an unknown outcome ------------------------------------------------------
    async def resolve_payment(
        self, ecr_ref: str, notify: Notify = _quiet, *, once: bool = False
    ) -> Recorded:
        """Ask the terminal what became of a payment; record it, or reverse it in the end.

        Args:
            ecr_ref: an open payment intent.
            notify: progress for the cashier.
            once: ask once (background pass); reverse only if the intent has been unknown for
                longer than the query window.

        Returns:
            The intent as settled (or still open, with ``once``) and the sale.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.query_window
        notify(progress(ecr_ref, Step.QUERYING))
        last = unanswered("no_answer", "")
        while True:
            self._cp(KillPoint.BEFORE_QUERY)
            request = TransactionStatusRequest(
                service_id=self.channel.new_service_id(), ecr_ref=ecr_ref
            )
            exchange = await self.channel.exchange(request, timeout=self.policy.query_timeout)
            self._cp(KillPoint.AFTER_QUERY)
            verdict = _judge(exchange, TransactionStatusResponse, _of_payment_status)
            if verdict.final:
                self._cp(KillPoint.BEFORE_RESULT_WRITE)
                recorded = record_payment(self.uow, self.ctx, ecr_ref, verdict)
                self._cp(KillPoint.AFTER_RESULT_WRITE)
                if recorded.intent.state is IntentState.REVERSING:  # approved, sale refused it
                    return await self.reverse(ecr_ref, notify, tries=1 if once else None)
                return recorded
            last = verdict if verdict.condition else last
            if once:
                current = load(self.uow, ecr_ref)
                if not exchange.sent:  # the terminal is unreachable: decide nothing yet
                    return current
                age = (self.ctx.clock() - current.intent.updated_at).total_seconds()
                if not current.intent.is_open or age < self.policy.query_window:
                    return current
                break
            if loop.time() + self.policy.query_interval > deadline:
                break
            await asyncio.sleep(self.policy.query_interval)
        logger.warning("payment %s still unknown after the query window: reversing", ecr_ref)
        message = last.message or last.condition or "no answer"
        start_reversal(self.uow, self.ctx, ecr_ref, last.condition or "no_answer", message)
        return await self.reverse(ecr_ref, notify, tries=1 if once else None)

    # -- reversals (冲正) ----------------------------------------------------------------------
    async def reverse(
        self, ecr_ref: str, notify: Notify = _quiet, *, tries: int | None = None
    ) -> Recorded:
        """Send the Reversal of a ``reversing`` intent until acknowledged, or ``tries`` attempts
        (default: the policy's inline tries; the background loop goes on after that).

        Returns:
            The intent: ``reversed``, ``failed`` (nothing to reverse) or still ``reversing``.
        """
        intent = load(self.uow, ecr_ref).intent
        attempt = 0
        limit = tries if tries is not None else self.policy.inline_tries
        while intent.state is IntentState.REVERSING:
            notify(progress(ecr_ref, Step.REVERSING))
            self._cp(KillPoint.BEFORE_REVERSAL)
            request = ReversalRequest(
                service_id=self.channel.new_service_id(),
                ecr_ref=ecr_ref,
                reason=ReversalReason.UNKNOWN_OUTCOME,
                amount=intent.amount.fen,
            )
            async with self.channel.financial():
                exchange = await self.channel.exchange(
                    request, kill_point=KillPoint.DURING_REVERSAL
                )
            self._cp(KillPoint.AFTER_REVERSAL)
            attempt += 1
            if exchange.sent:  # nothing to write about a request that never left
                verdict = _judge(exchange, ReversalResponse, of_reversal)
                intent = record_reversal(self.uow, self.ctx, ecr_ref, verdict)
                self._cp(KillPoint.AFTER_REVERSAL_WRITE)
            if intent.state is not IntentState.REVERSING or attempt >= limit:
                break
            await self._pause(attempt)
        if intent.state is IntentState.REVERSING:
            logger.warning("reversal of %s not acknowledged yet (%d tries)", ecr_ref, attempt)
        return Recorded(intent)

    # -- voids (撤销) --------------------------------------------------------------------------
    async def send_void(
        self, ecr_ref: str, notify: Notify = _quiet, *, tries: int | None = None
    ) -> Recorded:
        """Send the void of a ``voiding`` intent until the terminal gives a definite answer.

        Returns:
            The intent (``voided``, ``approved`` if refused, or still ``voiding``) and the sale.
        """
        recorded = load(self.uow, ecr_ref)
        attempt = 0
        limit = tries if tries is not None else self.policy.inline_tries
        while recorded.intent.state is IntentState.VOIDING:
            notify(progress(ecr_ref, Step.VOIDING))
            request = ReversalRequest(
                service_id=self.channel.new_service_id(),
                ecr_ref=ecr_ref,
                reason=ReversalReason.VOID,
                amount=recorded.intent.amount.fen,
            )
            async with self.channel.financial():
                exchange = await self.channel.exchange(request, kill_point=KillPoint.AFTER_SEND)
            self._cp(KillPoint.AFTER_RESPONSE)
            attempt += 1
            if exchange.sent:
                verdict = _judge(exchange, ReversalResponse, of_void)
                self._cp(KillPoint.BEFORE_RESULT_WRITE)
                recorded = record_void(self.uow, self.ctx, ecr_ref, verdict)
                self._cp(KillPoint.AFTER_RESULT_WRITE)
            if recorded.intent.state is not IntentState.VOIDING or attempt >= limit:
                break
            await self._pause(attempt)
        return recorded

    # -- refunds (退货) ------------------------------------------------------------------------
    async def send_refund(
        self,
        ecr_ref: str,
        notify: Notify = _quiet,
        *,
        tries: int | None = None,
        fresh: bool = False,
    ) -> Recorded:
        """Send a refund (again, with the same number) until the terminal gives a final answer.

        Args:
            ecr_ref: an open refund intent (its own refund number).
            notify: progress for the cashier.
            tries: attempts before giving up for now.
            fresh: the intent was just written in this process and never sent: a request
                that provably did not leave means the refund failed (nothing was paid).

        Returns:
            The intent (``approved``, ``declined``, ``failed``, or still ``unknown``) and sale.
        """
        recorded = load(self.uow, ecr_ref)
        attempt = 0
        limit = tries if tries is not None else self.policy.inline_tries
        while recorded.intent.is_open:
            intent = recorded.intent
            notify(progress(ecr_ref, Step.REFUNDING))
            request = RefundRequest(
                service_id=self.channel.new_service_id(),
                ecr_ref=ecr_ref,
                amount=intent.amount.fen,
                original_ecr_ref=intent.original_ecr_ref,
                operator_id=intent.operator_id,
            )
            async with self.channel.financial():
                exchange = await self.channel.exchange(
                    request, kill_point=KillPoint.AFTER_SEND, after_send=self._sent(ecr_ref)
                )
            self._cp(KillPoint.AFTER_RESPONSE)
            if fresh and attempt == 0 and not exchange.sent:
                verdict = Verdict(VerdictKind.FAILED, condition="not_sent", message=None)
            else:
                verdict = _judge(exchange, RefundResponse, of_refund)
            attempt += 1
            if exchange.sent or verdict.final:
                self._cp(KillPoint.BEFORE_RESULT_WRITE)
                recorded = record_refund(self.uow, self.ctx, ecr_ref, verdict)
                self._cp(KillPoint.AFTER_RESULT_WRITE)
            if not recorded.intent.is_open or attempt >= limit:
                break
            await self._pause(attempt)
        return recorded

    def _sent(self, ecr_ref: str) -> Callable[[], None] | None:
        if not self.policy.record_sent:
            return None

        def sent() -> None:
            mark_sent(self.uow, self.ctx, ecr_ref)
            self._cp(KillPoint.AFTER_SENT_WRITE)

        return sent

    # -- everything ----------------------------------------------------------------------------
    async def settle(
        self, intent: PaymentIntent, notify: Notify = _quiet, *, background: bool = False
    ) -> Recorded:
        """Do the next thing an unsettled intent needs (see the module docstring).

        Args:
            intent: the intent as last read.
            notify: progress for the cashier.
            background: one attempt per intent (the background pass), not the inline tries.
        """
        tries = 1 if background else None
        if intent.state is IntentState.REVERSING:
            return await self.reverse(intent.ecr_ref, notify, tries=tries)
        if intent.state is IntentState.VOIDING:
            return await self.send_void(intent.ecr_ref, notify, tries=tries)
        if intent.state in OPEN_STATES and intent.kind is IntentKind.REFUND:
            return await self.send_refund(intent.ecr_ref, notify, tries=tries)
        if intent.state in OPEN_STATES:
            return await self.resolve_payment(intent.ecr_ref, notify, once=background)
        return Recorded(intent)

    def _unsettled(self) -> list[PaymentIntent]:
        with self.uow:
            return self.uow.payments.unsettled(self.ctx.lane_id)

    async def recover_all(self, notify: Notify = _quiet) -> RecoveryReport:
        """Settle every unsettled intent of the lane, oldest first (run at start-up).

        Waits (bounded by ``link_wait``) for the terminal first; if it does not come, makes one
        attempt per intent and leaves the rest to the background loop (the report says which):
        nothing can be asked or reversed meanwhile, and no card payment can be taken either.
        Reversals and voids the terminal does not acknowledge within the inline tries are left
        to the background loop too.

        Returns:
            What was done, with an explanation per intent.
        """
        todo = self._unsettled()
        if not todo:
            return RecoveryReport()
        logger.warning("recovery: %d unsettled payment intents", len(todo))
        ready = await self.channel.wait_ready(self.policy.link_wait)
        if not ready:
            logger.error("recovery: the terminal is not logged in; %d intents wait", len(todo))
        resolutions = []
        for intent in todo:
            recorded = await self.settle(intent, notify, background=not ready)
            after = recorded.intent
            sale = recorded.sale
            remaining = sale.remaining if sale is not None else None
            resolutions.append(Resolution(after, intent.state, explain(after, remaining)))
            logger.info("recovery: %s %s -> %s", after.ecr_ref, intent.state, after.state)
        return RecoveryReport(tuple(resolutions), ready)

    async def retry_unsettled(self, skip: Collection[str] = ()) -> int:
        """One background pass: one attempt for each unsettled intent not in ``skip``.

        Returns:
            How many intents are still unsettled afterwards.
        """
        left = 0
        for intent in self._unsettled():
            if intent.ecr_ref in skip:
                left += 1
                continue
            if not (await self.settle(intent, background=True)).intent.settled:
                left += 1
        return left

    async def run(
        self, stop: asyncio.Event, skip: Callable[[], Collection[str]] = lambda: ()
    ) -> None:
        """Background loop: retry unsettled intents every ``reversal_retry`` while any is left,
        else check again every ``query_window``; ends when ``stop`` is set."""
        while not stop.is_set():
            try:
                left = await self.retry_unsettled(skip())
            except Exception:  # keep retrying: a storage hiccup must not end the reversals
                logger.exception("background payment recovery pass failed")
                left = 1
            wait = self.policy.reversal_retry if left else self.policy.query_window
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
