"""Helpers for the payment tests: a lane with staff and sales, and the real simulator on a link.

:class:`Shop` is a lane over a payment unit of work (the in-memory fake or SQLite): two accounts,
an open shift, sales built from products, supervisor approvals and the invariant check of
:mod:`shouyin.payments.invariants`.

:class:`TerminalRig` runs the real :class:`~shouyin.terminal.app.TerminalApp` (with the in-memory
acquirer and the rules-driven card reader) behind a real terminal-side
:class:`~shouyin.link.aio.LinkEndpoint`, joined to a cashier-side ``LinkEndpoint`` by an in-memory
pipe: the orchestrator talks to the terminal through the whole link (framing, AEAD envelope,
session, timeouts). It runs on the virtual-time loop of :mod:`tests.terminal`, so a 90-second
query window or a 45-second QR poll takes milliseconds. Faults: the next Payment answers can be
"lost" (the link drops instead of delivering them, and comes back a second later), the terminal
can be power-cycled, and the cashier side replaced (a restarted cashier system).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.sale import Sale
from shouyin.domain.users import Action, Approval, PasswordHasher, Role, User
from shouyin.lane import services
from shouyin.link import (
    Connection,
    LinkConfig,
    MessageBase,
    MessageReceived,
    PaymentResponse,
    Request,
    SessionReset,
    TransactionKind,
    TransactionState,
)
from shouyin.link import Role as LinkRole
from shouyin.link.aio import LinkEndpoint
from shouyin.link.errors import LinkError
from shouyin.link.transport import memory_pipe
from shouyin.payments import PaymentIntent, PaymentUnitOfWork, violations
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.payment_repo import SqlPaymentUnitOfWork
from shouyin.store.uow import make_session_factory
from shouyin.terminal.app import TerminalApp
from shouyin.terminal.cards import ReaderRule, RulesReader
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.records import TerminalConfig
from shouyin.terminal.state import TerminalState
from tests.link.helpers import (
    ECR_ID,
    TERMINAL_ID,
    ecr_capabilities,
    long_term_key,
    poi_capabilities,
)
from tests.terminal import LoopClock

logger = logging.getLogger(__name__)

HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
COLA = Product(sku="C1", name="可口可乐", price=Money(350))
RICE = Product(sku="R1", name="大米 5kg", price=Money(5990))
OIL = Product(sku="O1", name="花生油 1.8L", price=Money(3450))
SUPERVISOR_PASSWORD = "longer-secret-1"

# Payment codes (付款码) the simulated acquirer answers by their last two digits.
WECHAT_CODE = "134567890123456700"  # SUCCESS
WECHAT_USERPAYING = "134567890123456791"  # USERPAYING, then SUCCESS
ALIPAY_CODE = "284567890123456700"
UNIONPAY_CODE = "6284567890123456700"


@contextlib.contextmanager
def sql_uow(path: Path) -> Iterator[SqlPaymentUnitOfWork]:
    """A payment unit of work on a migrated SQLite file (a new engine each time: a "process")."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    try:
        yield SqlPaymentUnitOfWork(make_session_factory(engine))
    finally:
        engine.dispose()


@dataclass
class Shop:
    """A lane: its unit of work, context, a cashier and a supervisor, with an open shift."""

    uow: PaymentUnitOfWork
    ctx: services.Context
    cashier: User
    supervisor: User
    shift_ids: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, uow: PaymentUnitOfWork, lane_id: str = "L01") -> Shop:
        """Create the accounts and open a shift (call inside the loop: the clock is virtual)."""
        ctx = services.Context(lane_id=lane_id, clock=LoopClock().now)
        cashier = services.create_user(
            uow, HASHER, ctx, username="li", display_name="李", role=Role.CASHIER, password="472913"
        )
        supervisor = services.create_user(
            uow,
            HASHER,
            ctx,
            username="wang",
            display_name="王",
            role=Role.SUPERVISOR,
            password=SUPERVISOR_PASSWORD,
        )
        shift = services.open_shift(uow, ctx, cashier, Money(50_000))
        return cls(uow, ctx, cashier, supervisor, [shift.shift_id])

    @classmethod
    def reopen(cls, uow: PaymentUnitOfWork, shop: Shop) -> Shop:
        """The same lane after a restart: a new unit of work on the same database."""
        ctx = services.Context(lane_id=shop.ctx.lane_id, clock=LoopClock().now)
        return cls(uow, ctx, shop.cashier, shop.supervisor, list(shop.shift_ids))

    def sale(self, *items: tuple[Product, int]) -> str:
        """Start a sale with these (product, quantity) lines; return its id."""
        sale = services.start_sale(self.uow, self.ctx, self.cashier)
        with self.uow:
            stored = self.uow.sales.get(sale.sale_id)
            assert stored is not None
            for product, quantity in items:
                stored.add_product(product, quantity)
            self.uow.sales.save(stored)
            self.uow.commit()
        return sale.sale_id

    def get(self, sale_id: str) -> Sale:
        """The stored sale."""
        with self.uow:
            return services.get_sale(self.uow, sale_id)

    def approval(self, action: Action) -> Approval:
        """The supervisor types their password to approve ``action``."""
        return services.supervisor_approval(
            self.uow,
            HASHER,
            self.ctx,
            username="wang",
            password=SUPERVISOR_PASSWORD,
            action=action,
        )

    def sales(self) -> list[Sale]:
        """Every sale of the lane's shifts."""
        with self.uow:
            return self.uow.sales.list_by_shift(self.shift_ids)

    def intents(self) -> list[PaymentIntent]:
        """Every journal entry of the lane's sales."""
        with self.uow:
            found: list[PaymentIntent] = []
            for sale in self.uow.sales.list_by_shift(self.shift_ids):
                found += self.uow.payments.for_sale(sale.sale_id)
            return found

    def check(
        self, terminal: dict[str, TransactionState] | None, *, quiescent: bool = True
    ) -> None:
        """Assert the exactly-once invariants (DESIGN.md section 5)."""
        problems = violations(self.intents(), self.sales(), terminal, quiescent=quiescent)
        assert problems == [], problems


@dataclass
class TerminalRig:
    """The simulator behind a real link (see the module docstring). Use inside the loop:
    ``async with TerminalRig(tmp_path) as rig: ... rig.cashier ...``."""

    directory: Path
    acquirer: MemoryAcquirer = field(default_factory=MemoryAcquirer)
    rules: tuple[ReaderRule, ...] = ()
    config: TerminalConfig | None = None
    link_config: LinkConfig = field(default_factory=LinkConfig)
    lose_answers: int = 0
    reconnect_after: float = 1.0
    app: TerminalApp = field(init=False)
    cashier: LinkEndpoint = field(init=False)
    terminal: LinkEndpoint = field(init=False)
    _terminal_tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def __aenter__(self) -> TerminalRig:
        self._boot_terminal()
        self.cashier = self._cashier_endpoint()
        self._connect()
        await self.cashier.wait_ready(30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop_terminal()
        await self.cashier.close()

    # -- life cycle ----------------------------------------------------------------------------
    def _boot_terminal(self) -> None:
        state = TerminalState(self.directory / "terminal", self.config)
        self.app = TerminalApp(
            state,
            self.acquirer,
            RulesReader(self.rules, no_card_wait=70.0),
            clock=LoopClock(),
            outbox=self._outbox,
        )
        self.app.recover()
        connection = Connection(
            LinkRole.POI,
            TERMINAL_ID,
            poi_capabilities(),
            config=self.link_config,
            long_term_key=long_term_key(),
        )
        self.terminal = LinkEndpoint(connection, name="terminal")
        self._spawn(self._follow(self.terminal, self.app))
        self._spawn(self.app.reversals.run())

    def _cashier_endpoint(self) -> LinkEndpoint:
        connection = Connection(
            LinkRole.ECR,
            ECR_ID,
            ecr_capabilities(),
            config=self.link_config,
            long_term_key=long_term_key(),
        )
        return LinkEndpoint(connection, name="cashier")

    def _connect(self) -> None:
        if self.terminal.closed or self.cashier.closed:
            return
        a, b = memory_pipe()
        self.terminal.attach(b)
        self.cashier.attach(a)

    async def _stop_terminal(self) -> None:
        tasks = list(self._terminal_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._terminal_tasks.clear()
        await self.terminal.close()
        self.app.state.close()

    async def restart_terminal(self) -> None:
        """Power-cycle the terminal (its state directory survives) and reconnect."""
        await self._stop_terminal()
        self._boot_terminal()
        self._connect()
        await self.cashier.wait_ready(30)

    async def restart_cashier(self) -> LinkEndpoint:
        """A new cashier-side endpoint (the cashier system restarted), logged in again."""
        await self.cashier.close()
        self.cashier = self._cashier_endpoint()
        self._connect()
        await self.cashier.wait_ready(30)
        return self.cashier

    # -- plumbing ------------------------------------------------------------------------------
    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._terminal_tasks.add(task)
        task.add_done_callback(self._terminal_tasks.discard)

    async def _follow(self, endpoint: LinkEndpoint, app: TerminalApp) -> None:
        async for event in endpoint.events():
            if isinstance(event, MessageReceived) and isinstance(event.message, Request):
                self._spawn(app.handle(event.message))
            elif isinstance(event, SessionReset):
                app.abort_current("session reset")

    def _outbox(self, message: MessageBase) -> None:
        if isinstance(message, PaymentResponse) and self.lose_answers > 0:
            self.lose_answers -= 1
            logger.info("rig: the answer to %s is lost with the link", message.ecr_ref)
            self.terminal.drop("simulated: the answer was lost")
            asyncio.get_running_loop().call_later(self.reconnect_after, self._connect)
            return
        try:
            self.terminal.send(message)
        except LinkError as error:  # the link is down: a real terminal's message is lost too
            logger.info("rig: %s not sent (%s)", message.type, error)

    # -- inspection ----------------------------------------------------------------------------
    def states(self) -> dict[str, TransactionState]:
        """Every payment the terminal knows, by ``ecr_ref`` (for the invariants)."""
        return {
            entry.ecr_ref: entry.state
            for entry in self.app.state.entries()
            if entry.kind is TransactionKind.PAYMENT
        }

    def sales_booked(self) -> int:
        """How many sales the acquirer booked (approved or later reversed)."""
        return sum(1 for entry in self.acquirer.ledger if entry.operation == "sale")
