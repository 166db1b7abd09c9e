"""What a terminal answer means for the journal: pure functions from responses to verdicts.

The rule behind every mapping: only an answer that *proves* the outcome settles an intent.

* A payment is ``approved`` only on ``success``; ``declined`` when the card, wallet or acquirer
  refused it; ``failed`` when the terminal says it did not happen (aborted, busy, not found, no
  acquirer — in which case the terminal itself reverses what it sent, DESIGN.md section 5).
  ``partial`` or ``in_progress`` are not outcomes: the intent stays unknown.
* A status query settles what the terminal's record says; ``not_found`` means the request never
  reached the terminal (it keeps its last transactions by ``ecr_ref``), so nothing was charged.
* A reversal is acknowledged only on ``success`` (``partial``: the terminal queued it towards the
  acquirer, so it is asked again later); ``not_found`` means there was nothing to reverse.
* A void either happened (``success``) or was refused and the original stands (any definite
  failure, including the terminal's own timeout, after which it reverses the void); ``busy``
  or no answer means ask again.
* A refund left without an answer (``timeout``, ``unreachable_host``, ``in_progress``) is
  unknown and is sent again with the same refund number; other failures are final.

* An answer marked ``test`` (测试交易: the terminal answered from its test host or test journal)
  proves nothing about a real transaction, whatever it says: every judge makes it ``unknown``
  (condition ``test_mode``) — never an approval that completes a sale with no money taken, never
  a decline or "not found" that releases it. The intent is asked again once test mode is over.

Messages from the terminal are kept (scrubbed of anything that looks like a card number).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from shouyin.domain.carddata import scrub
from shouyin.link.messages import (
    PaymentResponse,
    RefundResponse,
    Response,
    ReversalResponse,
    TransactionStatusResponse,
)
from shouyin.link.values import (
    AcquirerData,
    ErrorCondition,
    Result,
    TransactionKind,
    TransactionState,
)

__all__ = [
    "Verdict",
    "VerdictKind",
    "of_payment",
    "of_refund",
    "of_reversal",
    "of_status",
    "of_void",
    "unanswered",
]

_C = ErrorCondition
_DECLINES: Final = frozenset(
    {_C.DECLINED, _C.INSUFFICIENT_FUNDS, _C.INVALID_CARD, _C.INVALID_CODE, _C.WRONG_PIN, _C.REFUSAL}
)
_MAX_MESSAGE: Final = 200
TEST_MODE: Final = "test_mode"
"""The condition of a verdict on an answer marked ``test``."""

logger = logging.getLogger(__name__)


class VerdictKind(StrEnum):
    """What an answer proves."""

    APPROVED = "approved"  # payment/refund approved; reversal acknowledged; void done
    DECLINED = "declined"  # refused by card, wallet or acquirer
    FAILED = "failed"  # did not happen (or: nothing to reverse)
    REVERSED = "reversed"  # (status) the terminal had reversed it already
    VOIDED = "voided"  # (status) the terminal had voided it already
    REFUSED = "refused"  # (void) not done: the original stands
    UNKNOWN = "unknown"  # proves nothing: ask again


@dataclass(frozen=True, slots=True)
class Verdict:
    """A classified terminal answer.

    Attributes:
        kind: what it proves.
        amount: the approved amount in fen, when the answer carries one.
        acquirer: the acquirer data (masked card only).
        condition: the error condition (the link's, or ``timeout``/``link_lost``/...).
        message: the terminal's explanation, scrubbed and bounded.
    """

    kind: VerdictKind
    amount: int | None = None
    acquirer: AcquirerData | None = None
    condition: str | None = None
    message: str | None = None

    @property
    def final(self) -> bool:
        """Whether the answer settles something."""
        return self.kind is not VerdictKind.UNKNOWN


def _text(response: Response) -> str | None:
    return scrub(response.message)[:_MAX_MESSAGE] if response.message else None


def _condition(response: Response) -> str | None:
    return response.error_condition.value if response.error_condition is not None else None


def _verdict(
    kind: VerdictKind,
    response: Response,
    *,
    amount: int | None = None,
    acquirer: AcquirerData | None = None,
) -> Verdict:
    return Verdict(kind, amount, acquirer, _condition(response), _text(response))


def _test_answer(response: Response, what: str) -> Verdict | None:
    """``unknown`` for an answer marked ``test`` (it speaks for the test journal only)."""
    if not response.test:
        return None
    logger.warning(
        "%s answer marked test (%s, %s): not about a real transaction, outcome still unknown",
        what,
        response.result.value,
        _condition(response) or "-",
    )
    return Verdict(VerdictKind.UNKNOWN, condition=TEST_MODE, message="POS机处于测试模式")


def unanswered(condition: str, message: str) -> Verdict:
    """The verdict for no answer at all (``condition`` says why: timeout, link lost...)."""
    return Verdict(VerdictKind.UNKNOWN, condition=condition, message=message)


def of_payment(response: PaymentResponse) -> Verdict:
    """What a Payment answer proves."""
    if (test := _test_answer(response, "payment")) is not None:
        return test
    if response.result is Result.SUCCESS:
        return _verdict(
            VerdictKind.APPROVED, response, amount=response.amount, acquirer=response.acquirer
        )
    condition = response.error_condition
    if response.result is Result.PARTIAL or condition is _C.IN_PROGRESS:
        return _verdict(VerdictKind.UNKNOWN, response)
    kind = VerdictKind.DECLINED if condition in _DECLINES else VerdictKind.FAILED
    return _verdict(kind, response, acquirer=response.acquirer)


_STATUS_KINDS: Final = {
    TransactionState.APPROVED: VerdictKind.APPROVED,
    TransactionState.DECLINED: VerdictKind.DECLINED,
    TransactionState.FAILED: VerdictKind.FAILED,
    TransactionState.REVERSED: VerdictKind.REVERSED,
    TransactionState.VOIDED: VerdictKind.VOIDED,
    TransactionState.IN_PROGRESS: VerdictKind.UNKNOWN,
}


def of_status(response: TransactionStatusResponse, expected: TransactionKind) -> Verdict:
    """What a status answer proves about a transaction of kind ``expected``."""
    if (test := _test_answer(response, "status")) is not None:
        return test
    if response.result is not Result.SUCCESS or response.transaction is None:
        if response.error_condition is _C.NOT_FOUND:
            return _verdict(VerdictKind.FAILED, response)
        return _verdict(VerdictKind.UNKNOWN, response)
    record = response.transaction
    if record.kind is not expected:  # the ecr_ref names something else: prove nothing
        return Verdict(VerdictKind.UNKNOWN, condition="kind_mismatch", message=_text(response))
    return Verdict(
        _STATUS_KINDS[record.state],
        amount=record.amount,
        acquirer=record.acquirer,
        condition=record.error_condition.value if record.error_condition else None,
        message=_text(response),
    )


def of_reversal(response: ReversalResponse) -> Verdict:
    """What an answer to a Reversal (冲正) proves: acknowledged, nothing to do, or ask again."""
    if (test := _test_answer(response, "reversal")) is not None:
        return test
    if response.result is Result.SUCCESS:
        return _verdict(VerdictKind.APPROVED, response, acquirer=response.acquirer)
    if response.result is Result.FAILURE and response.error_condition is _C.NOT_FOUND:
        return _verdict(VerdictKind.FAILED, response)
    return _verdict(VerdictKind.UNKNOWN, response)


def of_void(response: ReversalResponse) -> Verdict:
    """What an answer to a void (撤销) proves: done, refused (original stands), or ask again."""
    if (test := _test_answer(response, "void")) is not None:
        return test
    if response.result is Result.SUCCESS:
        return _verdict(VerdictKind.APPROVED, response, acquirer=response.acquirer)
    if response.result is Result.PARTIAL or response.error_condition in (_C.BUSY, _C.IN_PROGRESS):
        return _verdict(VerdictKind.UNKNOWN, response)
    return _verdict(VerdictKind.REFUSED, response)


_REFUND_RETRY: Final = frozenset({_C.TIMEOUT, _C.UNREACHABLE_HOST, _C.IN_PROGRESS, _C.BUSY})


def of_refund(response: RefundResponse) -> Verdict:
    """What a Refund answer proves (unknown ones are sent again with the same number)."""
    if (test := _test_answer(response, "refund")) is not None:
        return test
    if response.result is Result.SUCCESS:
        return _verdict(
            VerdictKind.APPROVED, response, amount=response.amount, acquirer=response.acquirer
        )
    condition = response.error_condition
    if response.result is Result.PARTIAL or condition in _REFUND_RETRY:
        return _verdict(VerdictKind.UNKNOWN, response)
    kind = VerdictKind.DECLINED if condition in _DECLINES else VerdictKind.FAILED
    return _verdict(kind, response)
