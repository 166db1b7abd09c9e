"""Fault switches: what goes wrong, when. Pure data and decisions; the I/O wrapper acts.

A :class:`FaultPlan` says which outgoing writes (counted from when the plan was set, 1-based)
are dropped, delayed, corrupted or cut off mid-frame with a disconnect, at which named
:class:`Step` of a transaction the power goes, and whether the acquirer stops answering.
:class:`Faults` keeps the counters and answers the wrapper's questions:

* :meth:`Faults.on_write` for every chunk the link is about to write -> a :class:`WriteAction`;
* :meth:`Faults.power_lost_at` at every step of a transaction -> exit now without flushing?
* :meth:`Faults.acquirer_fault` before every acquirer request -> lose the request, lose the
  answer (the host acted: the dangerous case that reversal exists for), or nothing.

Plans arrive as JSON over the control channel and as CLI flags, hence the pydantic model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AcquirerFault",
    "FaultPlan",
    "Faults",
    "Step",
    "WriteAction",
    "WriteKind",
]

logger = logging.getLogger(__name__)


class Step(StrEnum):
    """Named steps of a transaction where the power can be cut."""

    REQUEST_RECEIVED = "request_received"
    CARD_READ = "card_read"
    BEFORE_ACQUIRER = "before_acquirer"
    AFTER_ACQUIRER_APPROVAL = "after_acquirer_approval"
    AFTER_RECORD = "after_record"
    BEFORE_RESPONSE = "before_response"
    AFTER_RESPONSE = "after_response"
    BEFORE_REVERSAL = "before_reversal"
    BEFORE_SETTLEMENT = "before_settlement"
    AFTER_SETTLEMENT = "after_settlement"
    FIRMWARE_WRITE = "firmware_write"  # half the new image written to the inactive slot
    FIRMWARE_BOOT = "firmware_boot"  # the new slot booted, before its self-test


class AcquirerFault(StrEnum):
    """How the acquirer link fails."""

    NONE = "none"
    LOSE_REQUEST = "lose_request"  # the host never sees it
    LOSE_REPLY = "lose_reply"  # the host acts, its answer is lost


class FaultPlan(BaseModel):
    """The fault switches (all off by default).

    Attributes:
        drop: numbers of outgoing writes to drop.
        delay: write number -> seconds to hold it (and everything after it) back.
        corrupt: numbers of outgoing writes with one byte flipped.
        disconnect: numbers of outgoing writes cut in half, after which the link is closed.
        power_loss_at: cut the power at this step (once).
        acquirer: how acquirer requests fail.
        acquirer_operations: only these operations (``sale``, ``reverse``...); empty: all.
        acquirer_count: only this many requests (0: every one while the switch is set).
        firmware_self_test_fails: a newly installed firmware fails its self-test.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    drop: frozenset[int] = frozenset()
    delay: dict[int, float] = Field(default_factory=dict)
    corrupt: frozenset[int] = frozenset()
    disconnect: frozenset[int] = frozenset()
    power_loss_at: Step | None = None
    acquirer: AcquirerFault = AcquirerFault.NONE
    acquirer_operations: frozenset[str] = frozenset()
    acquirer_count: int = Field(default=0, ge=0)
    firmware_self_test_fails: bool = False


class WriteKind(StrEnum):
    """What to do with an outgoing write."""

    DELIVER = "deliver"
    DROP = "drop"
    DELAY = "delay"
    CORRUPT = "corrupt"
    CUT = "cut"  # write ``data`` (the first half), then disconnect


@dataclass(frozen=True, slots=True)
class WriteAction:
    """The decision for one outgoing write: what to write (``data``), after ``delay`` seconds."""

    kind: WriteKind
    data: bytes
    delay: float = 0.0


def _flip(data: bytes) -> bytes:
    index = len(data) // 2
    return data[:index] + bytes([data[index] ^ 0x5A]) + data[index + 1 :]


class Faults:
    """The live fault switches and their counters.

    Args:
        plan: the initial plan.
    """

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan or FaultPlan()
        self.writes = 0
        self.acquirer_faults = 0
        self.fired: list[str] = []  # what happened, for the control channel and tests

    def set_plan(self, plan: FaultPlan) -> None:
        """Replace the plan; write numbers count again from 1."""
        self.plan = plan
        self.writes = 0
        self.acquirer_faults = 0
        logger.warning("fault plan set: %s", plan.model_dump(exclude_defaults=True))

    def on_write(self, data: bytes) -> WriteAction:
        """Decide the fate of the next outgoing write."""
        self.writes += 1
        n, plan = self.writes, self.plan
        if not data:
            return WriteAction(WriteKind.DELIVER, data)
        if n in plan.drop:
            return self._fired(WriteAction(WriteKind.DROP, b""), n)
        if n in plan.disconnect:
            return self._fired(WriteAction(WriteKind.CUT, data[: max(1, len(data) // 2)]), n)
        if n in plan.corrupt:
            return self._fired(WriteAction(WriteKind.CORRUPT, _flip(data)), n)
        if n in plan.delay:
            return self._fired(WriteAction(WriteKind.DELAY, data, plan.delay[n]), n)
        return WriteAction(WriteKind.DELIVER, data)

    def _fired(self, action: WriteAction, n: int) -> WriteAction:
        self.fired.append(f"write {n}: {action.kind.value}")
        logger.warning("fault: write %d %s", n, action.kind.value)
        return action

    def power_lost_at(self, step: Step) -> bool:
        """Whether the power goes now (the switch then turns itself off)."""
        if self.plan.power_loss_at is not step:
            return False
        self.plan = self.plan.model_copy(update={"power_loss_at": None})
        self.fired.append(f"power loss at {step.value}")
        logger.warning("fault: power loss at %s", step.value)
        return True

    def acquirer_fault(self, operation: str) -> AcquirerFault:
        """How the next acquirer request ``operation`` fails (counts it if it does)."""
        plan = self.plan
        if plan.acquirer is AcquirerFault.NONE:
            return AcquirerFault.NONE
        if plan.acquirer_operations and operation not in plan.acquirer_operations:
            return AcquirerFault.NONE
        if plan.acquirer_count and self.acquirer_faults >= plan.acquirer_count:
            return AcquirerFault.NONE
        self.acquirer_faults += 1
        self.fired.append(f"acquirer {operation}: {plan.acquirer.value}")
        logger.warning("fault: acquirer %s %s", operation, plan.acquirer.value)
        return plan.acquirer
