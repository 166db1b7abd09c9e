"""What every transaction flow needs: the terminal's services and the transaction in hand.

:class:`Services` bundles the state, the acquirer, the reader, the clock, the status and the
fault switches with the outbox (where messages to the cashier system go) and offers the few
operations all flows share: report progress, pass a named step (where the power may be cut),
call the acquirer with a bounded wait that keeps reporting progress, and wait for the
customer in a way a cashier's Abort can interrupt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from shouyin.link.errors import LinkError
from shouyin.link.messages import MessageBase, PaymentProgress
from shouyin.link.values import ProgressStage
from shouyin.link.wallets import DEFAULT_WALLET_RULES, WalletRule
from shouyin.terminal.errors import AcquirerFailure, AcquirerNoAnswer, PowerLoss
from shouyin.terminal.faults import AcquirerFault, Faults, Step
from shouyin.terminal.ports import AcquirerPort, CardReader, Clock, HostReply
from shouyin.terminal.records import TerminalConfig
from shouyin.terminal.state import TerminalState
from shouyin.terminal.status import TerminalStatus

__all__ = ["Aborted", "Outbox", "Services", "Txn"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

Outbox = Callable[[MessageBase], None]
"""Sends a message to the cashier system (responses, progress, notifications)."""


class Aborted(Exception):
    """The cashier aborted the transaction while the terminal waited for the customer."""


@dataclass
class Txn:
    """The financial request in hand.

    Attributes:
        service_id: the request's service id (progress messages name it).
        ecr_ref: its cashier reference.
        abortable: whether an Abort can still stop it (not once the acquirer has it).
        aborted: set by an Abort.
        after: notifications to send once the response is out (e.g. card removed).
    """

    service_id: str
    ecr_ref: str
    abortable: bool = True
    aborted: asyncio.Event = field(default_factory=asyncio.Event)
    after: list[MessageBase] = field(default_factory=list)


@dataclass
class Services:
    """The terminal's services, shared by every flow."""

    state: TerminalState
    acquirer: AcquirerPort
    reader: CardReader
    clock: Clock
    status: TerminalStatus
    faults: Faults
    outbox: Outbox
    wallet_rules: Sequence[WalletRule] = DEFAULT_WALLET_RULES
    kick_reversals: Callable[[], None] = field(default=lambda: None)
    test_mode: bool = False  # the test services (test host, test journal): see test_mode.py
    _acquirer_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def config(self) -> TerminalConfig:
        """The terminal's configuration."""
        return self.state.config

    def send(self, message: MessageBase) -> None:
        """Send to the cashier system; a link that is down is logged, never raised (the
        journal keeps every outcome for a status query)."""
        try:
            self.outbox(message)
        except LinkError as error:
            logger.warning("cannot send %s: %s", message.type, error)

    def progress(self, txn: Txn, stage: ProgressStage, message: str | None = None) -> None:
        """Report progress of ``txn`` (and show it on the terminal's screen)."""
        if message is not None:
            self.status.screen = (message,)
        self.send(PaymentProgress(service_id=txn.service_id, stage=stage, message=message))

    def step(self, step: Step) -> None:
        """Pass a named step; the power may be cut here.

        Raises:
            PowerLoss: the fault switch says so; the process wrapper exits at once.
        """
        if self.faults.power_lost_at(step):
            raise PowerLoss(step.value)

    async def call(
        self,
        operation: str,
        request: Callable[[], Awaitable[HostReply]],
        txn: Txn | None = None,
        timeout: float | None = None,
        *,
        exclusive: bool = True,
    ) -> HostReply:
        """Call the acquirer within ``timeout`` (default: the config's ``acquirer_timeout``);
        while waiting, report "processing" every ``progress_interval``. The acquirer fault
        switches apply here.

        Args:
            operation: the request's name, for logs and fault switches.
            request: makes the call.
            txn: the transaction to report progress for, if any.
            timeout: seconds allowed.
            exclusive: wait for any other exclusive call to finish first (the host link takes
                one transaction at a time); an echo test does not.

        Raises:
            AcquirerNoAnswer: no answer in time, or the acquirer link failed.
            AcquirerUnavailable: the acquirer could not be reached; nothing was sent.
        """
        limit = self.config.acquirer_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        fault = self.faults.acquirer_fault(operation)

        async def attempt() -> HostReply:
            if fault is AcquirerFault.LOSE_REQUEST:
                await asyncio.Event().wait()  # the host never sees it
            reply = await request()
            if fault is AcquirerFault.LOSE_REPLY:
                await asyncio.Event().wait()  # the host acted; its answer is lost
            return reply

        async with self._acquirer_lock if exclusive else contextlib.nullcontext():
            task = asyncio.ensure_future(attempt())
            deadline = loop.time() + limit
            try:
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        logger.warning("acquirer %s: no answer in %.0f s", operation, limit)
                        raise AcquirerNoAnswer(operation, "timeout")
                    wait = min(remaining, self.config.progress_interval) if txn else remaining
                    done, _ = await asyncio.wait({task}, timeout=wait)
                    if done:
                        return task.result()
                    if txn is not None:
                        self.progress(txn, ProgressStage.PROCESSING, "交易处理中，请稍候")
            except AcquirerFailure:
                raise
            except (OSError, LinkError, TimeoutError) as error:
                raise AcquirerNoAnswer(operation, type(error).__name__) from error
            finally:
                if not task.done():
                    task.cancel()

    async def wait_customer(
        self,
        txn: Txn,
        action: Awaitable[T],
        timeout: float,
        reminder: tuple[ProgressStage, str] | None = None,
    ) -> T:
        """Wait for the customer (card, PIN, signature) unless the cashier aborts first.

        Args:
            txn: the transaction.
            action: what the customer is to do.
            timeout: seconds allowed.
            reminder: progress repeated every ``progress_interval`` while waiting (a long wait
                for the customer is not a timeout for the cashier system).

        Raises:
            Aborted: the cashier aborted.
            TimeoutError: the customer did nothing within ``timeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        task = asyncio.ensure_future(action)
        aborted = asyncio.ensure_future(txn.aborted.wait())
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError
                done, _ = await asyncio.wait(
                    {task, aborted},
                    timeout=min(remaining, self.config.progress_interval),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if task in done:
                    return task.result()
                if aborted in done:
                    raise Aborted
                if reminder is not None:
                    self.progress(txn, *reminder)
        finally:
            for pending in (task, aborted):
                if not pending.done():
                    pending.cancel()

    async def pause(self, txn: Txn | None, seconds: float) -> bool:
        """Sleep ``seconds``; ``True`` if the cashier aborted meanwhile (ends it early)."""
        if txn is None:
            await asyncio.sleep(seconds)
            return False
        try:
            await asyncio.wait_for(txn.aborted.wait(), seconds)
        except TimeoutError:
            return False
        return True
