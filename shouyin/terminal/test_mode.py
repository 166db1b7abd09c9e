"""Test mode (测试模式): test transactions that never touch the real batch or the acquirer.

A technician (``shouyin diag``) switches test mode on with an Admin ``test_mode_start``. From
then on, until ``test_mode_end``, the timeout (:attr:`TerminalConfig.test_mode_timeout`, 10
minutes by default) or a restart, financial requests run against **test services**:

* a **test host** in the terminal itself (a fresh :class:`MemoryAcquirer` per test session) in
  place of the acquirer. Real 电签POS do the same in their test/demo mode: test transactions are
  answered locally (or by a separate test host), never sent to the production acquirer with a
  flag that one misconfigured hop could ignore. The acquirer link itself is checked by the
  diagnosis echo, which keeps going to the real acquirer;
* a **test journal and batch**: a separate state directory, ``<state>/test``, recreated at each
  test session, so its trace and batch numbers, slips, reversal flags and settlement never mix
  with the real ones (the real recovery and reversal worker never even open it).

Every answer produced in test mode carries ``test: true``, every printout is framed by
:data:`TEST_BANNER`, and the status and heartbeat report ``test_mode``. Test mode lives in
memory only, so a power cut always comes back in normal mode. A request in test mode that names
a *real* transaction (a status query, a void, a refund, a repeated payment) is never run against
the test services: a status query is answered from the real journal, and the others are refused
as ``busy`` (the cashier system retries them once test mode ends).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta

from shouyin.link.messages import EventNotification
from shouyin.link.values import NotificationKind
from shouyin.terminal.common import TEST_BANNER
from shouyin.terminal.context import Services
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.state import TerminalState

__all__ = ["TEST_BANNER", "TEST_DIR", "TestMode"]

logger = logging.getLogger(__name__)

TEST_DIR = "test"
"""The test journal's state directory, inside the terminal's own."""
_RETRY_EXPIRY = 1.0  # seconds: the timeout fell during a transaction; end test mode after it


class TestMode:
    """The terminal's test mode: whether it is on, until when, and the test services.

    Args:
        real: the terminal's real services (the test services share its reader, clock, status,
            fault switches and outbox).
        busy: whether a financial request is running (test mode never switches under one).
    """

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, real: Services, busy: Callable[[], bool]) -> None:
        self.real = real
        self._busy = busy
        self.services: Services | None = None
        self.until: datetime | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        """Whether test mode is on."""
        return self.services is not None

    def start(self, timeout: float) -> datetime:
        """Switch test mode on (or extend it) for ``timeout`` seconds; returns its end.

        A new test session starts with a fresh test journal and test host.
        """
        real = self.real
        if self.services is None:
            directory = real.state.directory / TEST_DIR
            shutil.rmtree(directory, ignore_errors=True)  # last session's test batch: gone
            state = TerminalState(directory, real.config)
            self.services = Services(
                state=state,
                acquirer=MemoryAcquirer(),
                reader=real.reader,
                clock=real.clock,
                status=real.status,
                faults=real.faults,
                outbox=real.send,
                wallet_rules=real.wallet_rules,
                test_mode=True,
            )
            real.status.test_mode = True
            logger.warning("test mode on: financial requests go to the test host")
            real.send(EventNotification(event=NotificationKind.TEST_MODE_STARTED))
        self.until = real.clock.now() + timedelta(seconds=timeout)
        real.status.test_mode_until = self.until
        self._arm(timeout)
        return self.until

    def end(self, reason: str) -> bool:
        """Switch test mode off; ``False`` if it was not on."""
        services = self.services
        if services is None:
            return False
        self._cancel()
        self.services = None
        self.until = None
        self.real.status.test_mode = False
        self.real.status.test_mode_until = None
        services.state.close()  # kept on disk until the next session, for support
        logger.warning("test mode off (%s)", reason)
        self.real.send(EventNotification(event=NotificationKind.TEST_MODE_ENDED, detail=reason))
        return True

    def _arm(self, delay: float) -> None:
        self._cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the timeout is checked lazily
            return
        self._timer = loop.call_later(delay, self.expire)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def expire(self) -> bool:
        """End test mode if its time is up (never under a running transaction: then a little
        later); ``True`` if it ended now."""
        if self.services is None or self.until is None:
            return False
        left = (self.until - self.real.clock.now()).total_seconds()
        if left > 0:  # the wall clock and the loop's timer disagree a little: wait the rest
            self._arm(max(left, _RETRY_EXPIRY / 10))
            return False
        if self._busy():
            self._arm(_RETRY_EXPIRY)
            return False
        return self.end("timeout")
