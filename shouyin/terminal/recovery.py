"""Recovery: what the terminal does after a restart, and the reversal worker.

After a restart (or a power cut), :func:`recover` arms every stored reversal flag (their
originals were sent and no answer was recorded) and closes every unfinished journal entry:
nothing sent yet -> failed, no money moved; sent -> failed with an unknown outcome, reversed by
the worker; an unfinished refund -> failed, to be retried by the cashier with the same refund
number (the acquirer keys refunds by it).

:class:`ReversalWorker` sends armed reversals (0400) until the acquirer acknowledges each one
(DESIGN.md section 5), every ``reversal_retry`` seconds, at once when kicked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shouyin.link.values import ErrorCondition, TransactionKind, TransactionState
from shouyin.terminal.common import fail
from shouyin.terminal.context import Services
from shouyin.terminal.errors import AcquirerFailure
from shouyin.terminal.faults import Step
from shouyin.terminal.ports import ReversalAuth
from shouyin.terminal.records import PendingReversal, Stage

__all__ = ["ReversalWorker", "recover", "send_reversal"]

logger = logging.getLogger(__name__)

_TRY_AGAIN = frozenset({"91", "96", "98"})


def recover(services: Services) -> int:
    """Bring the state back to consistency after a restart; returns how many entries closed."""
    state = services.state
    for reversal in state.reversals(armed=False):
        logger.warning(
            "restart: reversal of %s trace %s armed", reversal.ecr_ref, reversal.original_trace
        )
        state.update_reversal(reversal.model_copy(update={"armed": True}))
    closed = 0
    for entry in state.unfinished():
        closed += 1
        if entry.kind is TransactionKind.REFUND:
            fail(services, entry, ErrorCondition.TIMEOUT, "终端重启，请用同一退货单号重试")
        elif entry.stage is Stage.INTENT:
            fail(services, entry, ErrorCondition.ABORTED, "终端重启，交易未发送，未扣款")
        else:
            fail(services, entry, ErrorCondition.TIMEOUT, "终端重启，结果未知，已发起冲正")
    if closed:
        logger.warning("restart: %d unfinished transactions closed", closed)
    return closed


async def send_reversal(services: Services, reversal: PendingReversal) -> bool:
    """Send one stored reversal; ``True`` once the acquirer acknowledged it (it is then gone).

    Raises:
        PowerLoss: a fault switch cut the power before sending.
    """
    state = services.state
    services.step(Step.BEFORE_REVERSAL)
    auth = ReversalAuth(
        original_trace=reversal.original_trace,
        batch=reversal.batch,
        amount=reversal.amount,
        original_kind=reversal.original_kind,
        order_id=reversal.order_id,
        payment_kind=reversal.payment_kind,
    )
    try:
        reply = await services.call("reverse", lambda: services.acquirer.reverse(auth))
    except AcquirerFailure:
        reply = None
    if reply is None or reply.retry or reply.code in _TRY_AGAIN:
        attempts = reversal.attempts + 1
        state.update_reversal(reversal.model_copy(update={"attempts": attempts}))
        logger.warning(
            "reversal of %s trace %s not acknowledged (attempt %d)",
            reversal.ecr_ref,
            reversal.original_trace,
            attempts,
        )
        return False
    entry = state.get(reversal.ecr_ref)
    now = services.clock.now()
    if entry is not None and reversal.original_kind == "sale":
        entry = entry.changed(
            now, state=TransactionState.REVERSED, stage=Stage.DONE, message="交易已冲正"
        )
    elif entry is not None and reversal.original_kind == "void":
        entry = entry.changed(now, message="撤销结果未知，已冲正撤销，原交易有效")
    if entry is not None and reversal.id is not None:
        state.put(entry, drop_reversal=reversal.id)
    elif reversal.id is not None:
        state.remove_reversal(reversal.id)
    logger.info(
        "reversal of %s trace %s acknowledged (%s)",
        reversal.ecr_ref,
        reversal.original_trace,
        reply.code,
    )
    return True


class ReversalWorker:
    """Sends armed reversals until acknowledged (run it as a task for the process's life).

    Args:
        services: the terminal's services.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self._kick = asyncio.Event()

    def kick(self) -> None:
        """Try now (a reversal was just armed)."""
        self._kick.set()

    async def run_once(self) -> int:
        """One pass over the armed reversals; returns how many are left."""
        left = 0
        for reversal in self.services.state.reversals(armed=True):
            if not await send_reversal(self.services, reversal):
                left += 1
        return left

    async def run(self) -> None:
        """Forever: a pass, then wait for a kick (or the retry interval while some are left)."""
        while True:
            self._kick.clear()
            left = await self.run_once()
            wait = self.services.config.reversal_retry if left else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), wait)
