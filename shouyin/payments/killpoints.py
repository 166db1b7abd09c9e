"""Named steps of a payment, where a crash test may kill the cashier process.

The orchestrator and the recovery call ``checkpoint(point)`` at each of these steps (a no-op by
default). A crash test passes a hook that sends itself SIGKILL (or raises a ``BaseException``)
when a chosen point is reached, then restarts a lane on the same database, runs
:meth:`~shouyin.payments.orchestrator.PaymentOrchestrator.recover_all` and checks the invariants
(:mod:`shouyin.payments.invariants`). What each point means for recovery:

===========================  ======================================================================
point                        durable state when the process dies here
===========================  ======================================================================
``before_intent``            nothing: no journal entry, nothing sent
``after_intent``             intent ``pending``; nothing sent (recovery: status says not found)
``after_send``               intent ``pending``; the request may be on the terminal
``after_sent_write``         intent ``sent``
``after_response``           intent ``sent``; the terminal's answer was lost with the process
``before_result_write``      as ``after_response`` (the answer is classified, not yet written)
``after_result_write``       final state and the sale's tender committed together
``before_query``             intent ``unknown`` (or ``pending``/``sent`` during start-up)
``after_query``              as ``before_query``; the status answer was lost
``before_reversal``          intent ``reversing`` (the decision to reverse is durable)
``during_reversal``          ``reversing``; the Reversal may be on the terminal
``after_reversal``           ``reversing``; its acknowledgement was lost with the process
``after_reversal_write``     ``reversed``
===========================  ======================================================================

Void and refund use the same points (their request is "sent" and "answered" the same way).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

__all__ = ["Checkpoint", "KillPoint", "no_checkpoint"]


class KillPoint(StrEnum):
    """A step of a payment at which a crash test may stop the process (see the module table)."""

    BEFORE_INTENT = "before_intent"
    AFTER_INTENT = "after_intent"
    AFTER_SEND = "after_send"
    AFTER_SENT_WRITE = "after_sent_write"
    AFTER_RESPONSE = "after_response"
    BEFORE_RESULT_WRITE = "before_result_write"
    AFTER_RESULT_WRITE = "after_result_write"
    BEFORE_QUERY = "before_query"
    AFTER_QUERY = "after_query"
    BEFORE_REVERSAL = "before_reversal"
    DURING_REVERSAL = "during_reversal"
    AFTER_REVERSAL = "after_reversal"
    AFTER_REVERSAL_WRITE = "after_reversal_write"


Checkpoint = Callable[[KillPoint], None]
"""Called at every :class:`KillPoint`; may kill the process or raise a ``BaseException``."""


def no_checkpoint(point: KillPoint) -> None:
    """The default hook: does nothing."""
