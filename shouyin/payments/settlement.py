"""Settlement (结算) of a lane's terminal: close its batch and check it against the journal.

:func:`settle` asks the terminal to settle (a Reconciliation request), takes the batch number and
the batch totals per payment kind it answers, sums the lane journal's transactions of that batch
the same way, and stores the comparison.

Both sides count the same thing (see :mod:`shouyin.terminal.settlement`): per payment kind
(``card``, or the wallet of a QR payment), the **approved** sales of the batch that were not
voided or reversed, and the approved refunds under the kind of the payment they refund. On the
lane that is every intent of the batch in state ``approved`` (a voided or reversed intent is in
state ``voided``/``reversed``); an intent still ``voiding`` counts as approved, as on the
terminal until the void is answered.

Storage: the settlement is stored as one JSON message on the lane's outbox (topic
:data:`SETTLEMENT_TOPIC`), in its own commit. That needs no new table or migration, keeps an
immutable record on the lane, and brings it to the store server with the rest of the lane's
records; :func:`settlement_payload` is its shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Protocol

from shouyin.link.errors import LinkError
from shouyin.link.messages import ReconciliationRequest, ReconciliationResponse
from shouyin.link.values import PaymentKind, ReconciliationKind, Result, Totals
from shouyin.payments.errors import PaymentError
from shouyin.payments.journal import IntentKind, IntentState, PaymentIntent
from shouyin.payments.port import TerminalPort
from shouyin.payments.reconcile import SideTotals
from shouyin.store.uow import AbstractUnitOfWork

__all__ = [
    "SETTLEMENT_TOPIC",
    "KindSettlement",
    "Settlement",
    "SettlementFailed",
    "SettlementUnitOfWork",
    "journal_totals",
    "settle",
    "settlement_payload",
    "terminal_totals",
]

logger = logging.getLogger(__name__)

SETTLEMENT_TOPIC: Final = "payments.settlement"
_COUNTED: Final = frozenset({IntentState.APPROVED, IntentState.VOIDING})


class SettlementFailed(PaymentError):
    """The terminal did not answer the settlement request (nothing was stored)."""


class _JournalQueries(Protocol):
    def get(self, ecr_ref: str) -> PaymentIntent | None: ...

    def journal(
        self,
        lane_id: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch: str | None = None,
    ) -> list[PaymentIntent]: ...


class SettlementUnitOfWork(AbstractUnitOfWork, Protocol):
    """A lane unit of work whose journal answers read queries (``SqlPaymentUnitOfWork``)."""

    @property
    def payments(self) -> _JournalQueries:
        """The payment journal."""
        ...


@dataclass(frozen=True, slots=True)
class KindSettlement:
    """One payment kind of a settlement: the terminal's totals and the journal's."""

    kind: str
    terminal: SideTotals
    journal: SideTotals

    @property
    def balanced(self) -> bool:
        """Counts and amounts agree."""
        return self.terminal == self.journal


@dataclass(frozen=True, slots=True)
class Settlement:
    """The outcome of :func:`settle`.

    Attributes:
        terminal_id: the terminal settled.
        batch: the batch closed (or reported).
        at: when.
        result: the terminal's result (``success``, ``partial``: closed but the acquirer's
            totals differed, ``failure``: not closed).
        kinds: per payment kind, sorted.
        message: the terminal's explanation.
        error_condition: the terminal's condition when not a success.
        outbox_id: the stored record's outbox message id.
    """

    terminal_id: str
    batch: str | None
    at: datetime
    result: Result
    kinds: tuple[KindSettlement, ...] = ()
    message: str | None = None
    error_condition: str | None = None
    outbox_id: int | None = field(default=None, compare=False)

    @property
    def balanced(self) -> bool:
        """The terminal closed its batch and its totals equal the journal's (结算平)."""
        return self.result is not Result.FAILURE and all(k.balanced for k in self.kinds)


def _label(kind: PaymentKind, wallet: str | None) -> str:
    return "card" if kind is PaymentKind.CARD else (wallet or "qr")


def terminal_totals(totals: tuple[Totals, ...]) -> dict[str, SideTotals]:
    """The terminal's batch totals by kind label (``card``, or the wallet)."""
    found: dict[str, SideTotals] = {}
    for t in totals:
        side = found.setdefault(_label(t.kind, t.wallet.value if t.wallet else None), SideTotals())
        side.count += t.count
        side.amount += t.amount
        side.refund_count += t.refund_count
        side.refund_amount += t.refund_amount
    return found


def _intent_label(intent: PaymentIntent) -> str:
    if intent.tender_kind.value == "card":
        return "card"
    return intent.wallet.value if intent.wallet is not None else "qr"


def journal_totals(
    intents: list[PaymentIntent], original: dict[str, PaymentIntent]
) -> dict[str, SideTotals]:
    """The journal's totals of one batch by kind label.

    Args:
        intents: the batch's intents.
        original: refunded payments by ``ecr_ref`` (a refund counts under its payment's kind).
    """
    found: dict[str, SideTotals] = {}
    for intent in intents:
        if intent.state not in _COUNTED:
            continue
        source = intent
        if intent.kind is IntentKind.REFUND and intent.original_ecr_ref in original:
            source = original[intent.original_ecr_ref]
        side = found.setdefault(_intent_label(source), SideTotals())
        if intent.kind is IntentKind.REFUND:
            side.refund_count += 1
            side.refund_amount += intent.amount.fen
        else:
            side.count += 1
            side.amount += intent.amount.fen
    return found


def settlement_payload(settlement: Settlement) -> dict[str, Any]:
    """The JSON stored on the outbox."""
    return {
        "terminal_id": settlement.terminal_id,
        "batch": settlement.batch,
        "at": settlement.at.isoformat(),
        "result": settlement.result.value,
        "balanced": settlement.balanced,
        "message": settlement.message,
        "error_condition": settlement.error_condition,
        "kinds": [
            {
                "kind": k.kind,
                "balanced": k.balanced,
                "terminal": _side_dict(k.terminal),
                "journal": _side_dict(k.journal),
            }
            for k in settlement.kinds
        ],
    }


def _side_dict(side: SideTotals) -> dict[str, int]:
    return {
        "count": side.count,
        "amount": side.amount,
        "refund_count": side.refund_count,
        "refund_amount": side.refund_amount,
    }


async def settle(
    terminal_port: TerminalPort,
    uow: SettlementUnitOfWork,
    terminal_id: str,
    now: datetime,
    *,
    lane_id: str | None = None,
    kind: ReconciliationKind = ReconciliationKind.SETTLEMENT,
    timeout: float | None = 120.0,
) -> Settlement:
    """结算: settle the terminal's batch (or only ask its totals) and check the journal.

    Args:
        terminal_port: the terminal's link.
        uow: the lane's unit of work (its journal and outbox).
        terminal_id: the terminal, for the record.
        now: the time of the settlement.
        lane_id: count only this lane's intents (a terminal serves one lane).
        kind: ``settlement`` closes the batch; ``totals`` only reports it.
        timeout: seconds to wait for the terminal (it talks to the acquirer first).

    Returns:
        The settlement, stored on the outbox (also when the terminal refused: the record of a
        failed day-end matters too).

    Raises:
        SettlementFailed: no answer from the terminal; nothing was stored.
    """
    request = ReconciliationRequest(service_id=terminal_port.new_service_id(), kind=kind)
    try:
        response = await terminal_port.request(request, timeout=timeout)
    except (LinkError, TimeoutError) as error:
        raise SettlementFailed(f"terminal {terminal_id} did not answer: {error}") from error
    if not isinstance(response, ReconciliationResponse):
        raise SettlementFailed(f"terminal {terminal_id} answered {response.type}")
    with uow:
        kinds: tuple[KindSettlement, ...] = ()
        if response.batch is not None and (
            response.totals or response.result is not Result.FAILURE
        ):
            kinds = _compare(uow, response, lane_id)
        settlement = Settlement(
            terminal_id=terminal_id,
            batch=response.batch,
            at=now,
            result=response.result,
            kinds=kinds,
            message=response.message,
            error_condition=(
                response.error_condition.value if response.error_condition is not None else None
            ),
        )
        outbox_id = uow.outbox.add(SETTLEMENT_TOPIC, settlement_payload(settlement), now=now)
        uow.commit()
    log = logger.info if settlement.balanced else logger.warning
    log(
        "terminal %s batch %s settled: %s, %s",
        terminal_id,
        settlement.batch,
        settlement.result.value,
        "balanced" if settlement.balanced else "NOT balanced",
    )
    return replace(settlement, outbox_id=outbox_id)


def _compare(
    uow: SettlementUnitOfWork, response: ReconciliationResponse, lane_id: str | None
) -> tuple[KindSettlement, ...]:
    intents = uow.payments.journal(lane_id, batch=response.batch)
    original: dict[str, PaymentIntent] = {}
    for intent in intents:
        ref = intent.original_ecr_ref
        if intent.kind is IntentKind.REFUND and ref is not None and ref not in original:
            found = uow.payments.get(ref)
            if found is not None:
                original[ref] = found
    ours = journal_totals(intents, original)
    theirs = terminal_totals(response.totals)
    return tuple(
        KindSettlement(k, theirs.get(k, SideTotals()), ours.get(k, SideTotals()))
        for k in sorted(set(ours) | set(theirs))
    )
