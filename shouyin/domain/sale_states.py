"""The sale state machine: every state, every command, and the one table that joins them.

How it works
------------
A sale is always in one :class:`SaleState`. Every method of :class:`~shouyin.domain.sale.Sale` that
changes anything first names what it is about to do as a :class:`SaleCommand`, then asks
:func:`next_state` for the state that follows. :data:`TRANSITIONS` is the only place that knows
which commands a state accepts; a missing entry raises :class:`IllegalTransition` before anything
is touched. There is no other way to change a sale's state.

Some commands depend on amounts, and the sale picks the command from the outcome before asking
the table: a tender that leaves something still due is ``PAY_PART``, one that covers the rest is
``PAY_REST``; voiding a tender is ``UNPAY_ALL`` when no live tender remains, ``UNPAY_PART`` when
something is paid but not all, ``UNPAY_STILL_PAID`` when the live tenders still cover the total
(a cash over-tender). A sale with nothing due (every line free) completes from ``OPEN`` with
``COMPLETE_FREE``.

The states
----------
``OPEN``
    Scanning: lines, quantities, discounts and the member may change; no live tender exists.
``HELD``
    Suspended (挂单) to serve the next customer; only recall or void. Holding needs no tender.
``TENDERING``
    Part paid. Lines are frozen, because changing the total under a running payment would make
    the amounts approved by the terminal meaningless; to change them, void the tenders first.
``PAID``
    Live tenders cover the total (cash may exceed it: change is due). Only completing or voiding
    a tender remain; voiding the sale itself needs the tenders voided first.
``COMPLETED``
    Final and immutable; returns are separate records (:mod:`returns`).
``VOIDED``
    Cancelled with a supervisor's approval (from ``OPEN``, ``HELD`` or ``TENDERING``). It is also
    final. Approved card/QR tenders must be voided on the terminal first: a void that left an
    approved payment behind would charge a customer for nothing (:class:`TendersOutstanding`).

::

    OPEN --EDIT--> OPEN          OPEN --HOLD--> HELD --RECALL--> OPEN
    OPEN/TENDERING --PAY_PART--> TENDERING --PAY_REST--> PAID --COMPLETE--> COMPLETED
    TENDERING/PAID --UNPAY_ALL--> OPEN     OPEN/HELD/TENDERING --VOID--> VOIDED
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from shouyin.domain.errors import IllegalTransition

__all__ = ["TRANSITIONS", "SaleCommand", "SaleState", "next_state"]


class SaleState(StrEnum):
    """Where a sale is in its life."""

    OPEN = "open"
    HELD = "held"
    TENDERING = "tendering"
    PAID = "paid"
    COMPLETED = "completed"
    VOIDED = "voided"


class SaleCommand(StrEnum):
    """What is being done to a sale (the table's column keys)."""

    EDIT = "edit lines of"  # add/change/remove lines, discounts, member, price override
    HOLD = "hold"
    RECALL = "recall"
    PAY_PART = "take a part payment for"
    PAY_REST = "take the final payment for"
    UNPAY_PART = "void a tender (part still paid) of"
    UNPAY_STILL_PAID = "void a tender (still fully paid) of"
    UNPAY_ALL = "void the last tender of"
    COMPLETE = "complete"
    COMPLETE_FREE = "complete with nothing due"
    VOID = "void"


_S = SaleState
_C = SaleCommand

TRANSITIONS: Final[dict[SaleState, dict[SaleCommand, SaleState]]] = {
    _S.OPEN: {
        _C.EDIT: _S.OPEN,
        _C.HOLD: _S.HELD,
        _C.PAY_PART: _S.TENDERING,
        _C.PAY_REST: _S.PAID,
        _C.COMPLETE_FREE: _S.COMPLETED,
        _C.VOID: _S.VOIDED,
    },
    _S.HELD: {
        _C.RECALL: _S.OPEN,
        _C.VOID: _S.VOIDED,
    },
    _S.TENDERING: {
        _C.PAY_PART: _S.TENDERING,
        _C.PAY_REST: _S.PAID,
        _C.UNPAY_PART: _S.TENDERING,
        _C.UNPAY_ALL: _S.OPEN,
        _C.VOID: _S.VOIDED,
    },
    _S.PAID: {
        _C.COMPLETE: _S.COMPLETED,
        _C.UNPAY_STILL_PAID: _S.PAID,
        _C.UNPAY_PART: _S.TENDERING,
        _C.UNPAY_ALL: _S.OPEN,
    },
    _S.COMPLETED: {},
    _S.VOIDED: {},
}


def next_state(state: SaleState, command: SaleCommand) -> SaleState:
    """Return the state that ``command`` leads to from ``state``.

    Raises:
        IllegalTransition: if the table has no such entry.
    """
    try:
        return TRANSITIONS[state][command]
    except KeyError:
        raise IllegalTransition(state.value, command.value) from None
