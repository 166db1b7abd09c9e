"""The exactly-once invariants of DESIGN.md section 5, checked over the journal, sales and terminal.

:func:`violations` returns a list of plain-language problems (empty when all hold):

1. every approved terminal payment belongs to exactly one sale (a live tender with its
   ``ecr_ref`` and amount) and is approved in the journal — or it was reversed or voided;
2. no sale is completed without its live tenders covering it, every card/QR tender being an
   approved payment of the journal for that sale, tender and amount;
3. the journal and the terminal agree: an intent approved in the journal is approved on the
   terminal; a transaction the terminal reversed, voided, declined or never had is not approved
   in the journal;
4. once the lane is quiet (``quiescent``), nothing is left open or unacknowledged, and every sale
   holding an approved payment is completed.

Pure: pass in what the lane stored (intents, sales) and what the terminal keeps (its payment
transactions by ``ecr_ref``: the simulator's journal, or a fake's). Crash and chaos tests call it
after recovery.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from shouyin.domain.sale_states import SaleState
from shouyin.domain.sale_view import SaleView
from shouyin.link.values import TransactionState
from shouyin.payments.journal import (
    OPEN_STATES,
    RETRY_STATES,
    IntentKind,
    IntentState,
    PaymentIntent,
)

__all__ = ["violations"]

_ON_SALE = (IntentState.APPROVED, IntentState.VOIDING)  # a live tender may hold these


def violations(
    intents: Iterable[PaymentIntent],
    sales: Iterable[SaleView],
    terminal: Mapping[str, TransactionState] | None = None,
    *,
    quiescent: bool = True,
) -> list[str]:
    """Every broken invariant, in words (see the module docstring).

    Args:
        intents: the lane's journal.
        sales: the lane's sales.
        terminal: the terminal's payment transactions: ``ecr_ref`` -> state (``None``: skip the
            terminal checks).
        quiescent: the lane is done (no payment under way): nothing may be left unsettled, and
            sales with approved payments must be completed.

    Returns:
        The problems found; empty when every invariant holds.
    """
    payments = {i.ecr_ref: i for i in intents if i.kind is IntentKind.PAYMENT}
    problems: list[str] = []
    holders: dict[str, list[str]] = defaultdict(list)
    for sale in sales:
        problems += _check_sale(sale, payments, holders, quiescent)
    for ecr_ref, intent in payments.items():
        on = holders.get(ecr_ref, [])
        if intent.state in _ON_SALE and on != [intent.sale_id]:
            problems.append(f"{ecr_ref} is {intent.state} but held by sales {on}")
        if intent.state not in _ON_SALE and on:
            problems.append(f"{ecr_ref} is {intent.state} but still a live tender of {on}")
        if quiescent and intent.state in OPEN_STATES | RETRY_STATES:
            problems.append(f"{ecr_ref} is still {intent.state}")
    if terminal is not None:
        problems += _check_terminal(payments, terminal, quiescent)
    return problems


def _check_sale(
    sale: SaleView,
    payments: Mapping[str, PaymentIntent],
    holders: dict[str, list[str]],
    quiescent: bool,
) -> list[str]:
    problems = []
    electronic_live = False
    for tender in sale.tenders:
        if tender.ecr_ref is None:
            continue
        intent = payments.get(tender.ecr_ref)
        if tender.voided:
            if intent is not None and intent.state is not IntentState.VOIDED:
                problems.append(f"sale {sale.sale_id}: voided tender {tender.ecr_ref} not voided")
            continue
        electronic_live = True
        holders[tender.ecr_ref].append(sale.sale_id)
        if intent is None:
            problems.append(f"sale {sale.sale_id}: tender {tender.ecr_ref} has no journal entry")
        elif (
            intent.state not in _ON_SALE
            or intent.sale_id != sale.sale_id
            or intent.amount != tender.amount
            or intent.tender_no != tender.tender_no
        ):
            problems.append(
                f"sale {sale.sale_id}: tender {tender.ecr_ref} does not match its intent "
                f"({intent.state}, {intent.amount}, tender {intent.tender_no})"
            )
    if sale.state is SaleState.COMPLETED and sale.paid < sale.total_due:
        problems.append(f"sale {sale.sale_id} completed with {sale.paid} of {sale.total_due}")
    if quiescent and electronic_live and sale.state is not SaleState.COMPLETED:
        problems.append(f"sale {sale.sale_id} holds approved payments but is {sale.state}")
    return problems


def _check_terminal(
    payments: Mapping[str, PaymentIntent],
    terminal: Mapping[str, TransactionState],
    quiescent: bool,
) -> list[str]:
    problems = []
    for ecr_ref, state in terminal.items():
        intent = payments.get(ecr_ref)
        if intent is None:
            problems.append(f"terminal transaction {ecr_ref} ({state}) has no journal entry")
            continue
        if state is TransactionState.APPROVED:
            settled_ok = intent.state in _ON_SALE
            if not settled_ok and (quiescent or intent.state not in OPEN_STATES | RETRY_STATES):
                problems.append(
                    f"{ecr_ref} approved on the terminal but {intent.state} in the journal"
                )
        elif intent.state is IntentState.APPROVED:
            problems.append(f"{ecr_ref} approved in the journal but {state} on the terminal")
    for ecr_ref, intent in payments.items():
        if intent.state is IntentState.APPROVED and ecr_ref not in terminal:
            problems.append(f"{ecr_ref} approved in the journal, unknown to the terminal")
    return problems
