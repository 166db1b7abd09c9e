"""Helpers for the terminal simulator tests: a virtual-time event loop and a harness that joins
a cashier ``Connection`` to a ``TerminalApp`` over a ``LinkPair`` (sans-I/O), with the in-memory
acquirer and the rules-driven card reader.

Virtual time: :class:`VirtualTimeLoop` is an asyncio loop whose clock jumps straight to the next
timer whenever nothing is ready to run, as trio's ``MockClock(autojump_threshold=0)`` does. A
45-second QR poll or a 30-second acquirer timeout therefore takes milliseconds, and every wait in
the code under test is still a real ``asyncio.sleep`` / ``wait_for``. A loop with nothing ready
and nothing scheduled is a deadlock and fails the test at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from shouyin.link import (
    EventNotification,
    LateResponse,
    MessageBase,
    MessageReceived,
    PaymentProgress,
    Request,
    Response,
    ResponseTimedOut,
    SessionReset,
)
from shouyin.terminal.app import TerminalApp
from shouyin.terminal.cards import ReaderRule, RulesReader
from shouyin.terminal.errors import PowerLoss
from shouyin.terminal.faults import FaultPlan, Faults
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.ports import AcquirerPort, Clock
from shouyin.terminal.records import TerminalConfig
from shouyin.terminal.state import TerminalState
from tests.link.helpers import START, LinkPair, make_pair

T = TypeVar("T")

EPOCH = datetime(2025, 3, 14, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
"""The wall-clock time at virtual time zero."""


class _VirtualSelector(selectors.BaseSelector):
    """Wraps the real selector; instead of blocking for ``timeout``, advances virtual time."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("deadlock: nothing is ready and no timer is scheduled")
        self._loop.virtual_now += timeout
        return []

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (see the module docstring)."""

    def __init__(self) -> None:
        self.virtual_now = 0.0
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self.virtual_now


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a fresh virtual-time loop."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())


class LoopClock:
    """Wall-clock time that follows the running loop's (virtual) time."""

    def __init__(self, epoch: datetime = EPOCH) -> None:
        self.epoch = epoch

    def now(self) -> datetime:
        """``epoch`` plus the loop's time."""
        try:
            seconds = asyncio.get_running_loop().time()
        except RuntimeError:
            seconds = 0.0
        return self.epoch + timedelta(seconds=seconds)


@dataclass
class Harness:
    """A cashier Connection and a TerminalApp over a LinkPair, on the virtual-time loop.

    Create it inside the loop (``async with Harness(tmp_path) as h``); it drives the link's
    timers, hands each request to the app as its own task, and collects what the cashier side
    receives.
    """

    directory: Path
    acquirer: MemoryAcquirer = field(default_factory=MemoryAcquirer)
    rules: tuple[ReaderRule, ...] = ()
    config: TerminalConfig | None = None
    plan: FaultPlan | None = None
    port: AcquirerPort | None = None  # another acquirer than ``acquirer`` (e.g. the real host)
    clock: Clock = field(default_factory=LoopClock)
    pair: LinkPair = field(init=False)
    app: TerminalApp = field(init=False)
    responses: dict[str, Response] = field(default_factory=dict)
    progress: list[PaymentProgress] = field(default_factory=list)
    notifications: list[EventNotification] = field(default_factory=list)
    late: list[LateResponse] = field(default_factory=list)
    timeouts: list[ResponseTimedOut] = field(default_factory=list)
    power_lost: list[str] = field(default_factory=list)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _answered: asyncio.Event = field(default_factory=asyncio.Event)
    _counter: int = 0

    async def __aenter__(self) -> Harness:
        self.boot()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown(close=False)  # the test may still read the state

    # -- life cycle ----------------------------------------------------------------------------

    def boot(self) -> None:
        """Start (or restart) the terminal on its state directory and log the cashier in."""
        self.pair = make_pair(connect=False)
        self._sync()
        self.pair.connect()
        self.pair.login()
        self.pair.clear()
        self.reader = RulesReader(self.rules, no_card_wait=70.0)
        state = TerminalState(self.directory / "terminal", self.config)
        self.app = TerminalApp(
            state,
            self.port or self.acquirer,
            self.reader,
            clock=self.clock,
            faults=Faults(self.plan),
            outbox=self._outbox,
        )
        self.app.recover()
        self._spawn(self._drive_timers())
        self._spawn(self._guard(self.app.reversals.run()))

    async def shutdown(self, *, close: bool = True) -> None:
        """Stop every task (the terminal "loses power": nothing is flushed on purpose)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if close:
            self.app.state.close()

    async def restart(self, plan: FaultPlan | None = None) -> None:
        """Power-cycle the terminal: a fresh process on the same state directory."""
        await self.shutdown()
        self.plan = plan
        self.power_lost.clear()
        self.boot()

    # -- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def time() -> float:
        return asyncio.get_running_loop().time()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _sync(self) -> None:
        self.pair.now = START + self.time()

    def _outbox(self, message: MessageBase) -> None:
        self._sync()
        self.pair.terminal.send(message, self.pair.now)
        self._pump()

    def _pump(self) -> None:
        self.pair.pump()
        for event in self.pair.terminal_events:
            if isinstance(event, MessageReceived) and isinstance(event.message, Request):
                self._spawn(self._serve(event.message))
            elif isinstance(event, SessionReset):
                self.app.abort_current("session reset")
        self.pair.terminal_events.clear()
        for event in self.pair.cashier_events:
            if isinstance(event, MessageReceived):
                message = event.message
                if isinstance(message, PaymentProgress):
                    self.progress.append(message)
                elif isinstance(message, EventNotification):
                    self.notifications.append(message)
                elif isinstance(message, Response):
                    self.responses[message.service_id] = message
                    self._answered.set()
            elif isinstance(event, LateResponse):
                self.late.append(event)
            elif isinstance(event, ResponseTimedOut):
                self.timeouts.append(event)
                self._answered.set()
        self.pair.cashier_events.clear()

    async def _serve(self, request: Request) -> None:
        await self._guard(self.app.handle(request))

    async def _guard(self, work: Awaitable[Any]) -> None:
        try:
            await work
        except PowerLoss as error:
            self.power_lost.append(error.step)
            self._answered.set()
            current = asyncio.current_task()
            for task in list(self._tasks):  # the process is gone: nothing else runs
                if task is not current:
                    task.cancel()

    async def _drive_timers(self) -> None:
        while True:
            self._sync()
            timer = self.pair.next_timer()
            wait = 1.0 if timer is None else min(1.0, max(0.0, timer - self.pair.now))
            await asyncio.sleep(wait)
            self._sync()
            self.pair.cashier.handle_timer(self.pair.now)
            self.pair.terminal.handle_timer(self.pair.now)
            self._pump()

    # -- the cashier's side --------------------------------------------------------------------

    def sid(self) -> str:
        """A fresh service id for the cashier's next request."""
        self._counter += 1
        return f"S{self._counter}"

    def send(self, request: Request) -> None:
        """Send a request without waiting."""
        self._sync()
        self.pair.cashier.send(request, self.pair.now)
        self._pump()

    async def ask(self, request: Request, within: float = 240.0) -> Response:
        """Send ``request`` and wait (virtual time, bounded) for its response.

        Raises:
            AssertionError: no response (timed out on the link, power lost, or ``within``).
        """
        self.send(request)
        return await self.wait_response(request.service_id, within)

    async def wait_response(self, service_id: str, within: float = 240.0) -> Response:
        """Wait for the response to ``service_id``."""
        deadline = self.time() + within
        while service_id not in self.responses:
            if self.power_lost:
                raise AssertionError(f"power lost at {self.power_lost[-1]}")
            if any(t.request.service_id == service_id for t in self.timeouts):
                raise AssertionError(f"{service_id} timed out on the link")
            remaining = deadline - self.time()
            assert remaining > 0, f"no response to {service_id} within {within} s"
            self._answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answered.wait(), remaining)
        return self.responses[service_id]

    async def settle(self, seconds: float = 1.0) -> None:
        """Let background work run for ``seconds`` of virtual time."""
        await asyncio.sleep(seconds)
