"""Payment orchestration: overhead per card payment over loopback TLS, and payments per second.

Each lane is what a real lane runs: a SQLite lane database (WAL, ``synchronous=FULL``) with the
payment journal, a :class:`PaymentOrchestrator`, and the cashier side of the link as a
:class:`LinkServer` (TLS 1.3, mutual certificates) to which a paired terminal connects. The
terminal is the real simulator (:class:`TerminalApp`) with the in-memory acquirer and a card
presented at once, so a payment's time is link + terminal + journal.

Overhead: ``pay()`` (intent commit, request, ``sent`` commit, answer, result + tender + sale
completion commit) against a bare Payment sent on the same link to the same simulator (a fresh
``ecr_ref``, nothing journalled), alternating one of each so that a noisy moment hits both alike.
Throughput: payments per second for one lane, and for 8 lanes (8 servers, 8 terminals, 8
orchestrators, 8 SQLite files) paying concurrently on one event loop in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Figure, percentile
from bench.link import TERMINAL_ID, TIMEOUT, _capabilities, _pair, _Store
from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.users import PasswordHasher, Role, User
from shouyin.lane import services
from shouyin.link import Connection, MessageReceived, PaymentKind, PaymentRequest, Request, Result
from shouyin.link import Role as LinkRole
from shouyin.link.aio import LinkEndpoint
from shouyin.link.firewall import Firewall, FirewallPolicy
from shouyin.link.keystore import KeyStore, TerminalKeyStore
from shouyin.link.peer import peer_capabilities
from shouyin.link.server import LinkServer
from shouyin.link.transport import connect_tls
from shouyin.payments import PaymentOrchestrator
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.payment_repo import SqlPaymentUnitOfWork
from shouyin.store.uow import make_session_factory
from shouyin.terminal.app import TerminalApp
from shouyin.terminal.cards import RulesReader
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.state import TerminalState

SECTION = "payments"
PAYMENTS = 1000
WARM_UP = 50
LANES = 8
PAYMENTS_PER_LANE = 150
MS = 1000.0
PRODUCT = Product(sku="B1", name="矿泉水", price=Money(200))
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    logs = [logging.getLogger(name) for name in ("shouyin.link", "shouyin.terminal")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)


@dataclass
class _Lane:
    """One lane: its database, orchestrator and cashier, and its terminal's link."""

    uow: SqlPaymentUnitOfWork
    ctx: services.Context
    cashier: User
    ecr: LinkEndpoint
    orchestrator: PaymentOrchestrator
    bare_count: int = 0

    def new_sale(self) -> str:
        sale = services.start_sale(self.uow, self.ctx, self.cashier)
        with self.uow:
            stored = self.uow.sales.get(sale.sale_id)
            if stored is None:
                raise RuntimeError("the sale just started is gone")
            stored.add_product(PRODUCT, 3)
            self.uow.sales.save(stored)
            self.uow.commit()
        return sale.sale_id

    async def pay(self) -> float:
        """One journalled card payment of a fresh sale; the seconds ``pay()`` took."""
        sale_id = self.new_sale()
        start = time.perf_counter()
        outcome = await self.orchestrator.pay(sale_id, TenderKind.CARD, Money(600))
        elapsed = time.perf_counter() - start
        if not outcome.completed:
            raise RuntimeError(f"payment not completed: {outcome.state}")
        return elapsed

    async def bare(self) -> float:
        """The same Payment straight on the link to the simulator; the seconds it took."""
        self.bare_count += 1
        request = PaymentRequest(
            service_id=self.ecr.new_service_id(),
            ecr_ref=f"BARE-{self.bare_count:06d}",
            amount=600,
            kind=PaymentKind.CARD,
        )
        start = time.perf_counter()
        response = await self.ecr.request(request, timeout=TIMEOUT)
        elapsed = time.perf_counter() - start
        if response.result is not Result.SUCCESS:
            raise RuntimeError(f"bare payment failed: {response}")
        return elapsed


async def _server(directory: Path) -> _Store:
    keystore = KeyStore(directory / "ecr")
    keystore.init("bench", ["127.0.0.1"], datetime.now(UTC))
    keys: dict[str, Any] = {}
    server = LinkServer(
        ecr_id=f"lane-{directory.name}",
        capabilities=_capabilities(),
        firewall=Firewall(FirewallPolicy(max_attempts=10_000)),
        listen=["tls://127.0.0.1:0"],
        keys=keys.get,
        keystore=keystore,
        on_paired=lambda event: keys.__setitem__(event.peer_id, event.key),
    )
    await server.start()
    store = _Store(server, keystore, TerminalKeyStore(directory / "unused"), keys, [])
    store.pairing_s.append(await _pair(store, directory / "poi"))
    return store


def _terminal(store: _Store, directory: Path) -> tuple[LinkEndpoint, TerminalApp]:
    """The simulator, connected to the lane's server over TLS."""
    context = store.terminal.ssl_client_context("127.0.0.1")
    address = store.address
    connection = Connection(
        LinkRole.POI, TERMINAL_ID, peer_capabilities(), long_term_key=store.keys[TERMINAL_ID]
    )
    endpoint = LinkEndpoint(connection, connector=lambda: connect_tls(address, context))
    app = TerminalApp(
        TerminalState(directory / "terminal"),
        MemoryAcquirer(),
        RulesReader((), no_card_wait=70.0),
        outbox=endpoint.send,
    )
    app.recover()
    return endpoint, app


async def _follow(endpoint: LinkEndpoint, app: TerminalApp, tasks: set[asyncio.Task[Any]]) -> None:
    async for event in endpoint.events():
        if isinstance(event, MessageReceived) and isinstance(event.message, Request):
            task = asyncio.create_task(app.handle(event.message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


@contextlib.asynccontextmanager
async def _lane(directory: Path, number: int) -> AsyncIterator[_Lane]:
    directory.mkdir(parents=True, exist_ok=True)
    store = await _server(directory)
    endpoint, app = _terminal(store, directory)
    tasks: set[asyncio.Task[Any]] = set()
    follower = asyncio.create_task(_follow(endpoint, app, tasks))
    reversals = asyncio.create_task(app.reversals.run())
    engine = make_engine(f"sqlite:///{directory / 'lane.db'}")
    try:
        upgrade(engine)
        uow = SqlPaymentUnitOfWork(make_session_factory(engine))
        ctx = services.Context(lane_id=f"L{number:02d}")
        cashier = services.create_user(
            uow, HASHER, ctx, username="li", display_name="李", role=Role.CASHIER, password="472913"
        )
        services.open_shift(uow, ctx, cashier, Money(50_000))
        await endpoint.start()
        ecr = await store.server.wait_ready(TERMINAL_ID, TIMEOUT)
        orchestrator = PaymentOrchestrator(uow, ecr, ctx)
        await orchestrator.recover_all()
        yield _Lane(uow, ctx, cashier, ecr, orchestrator)
    finally:
        for task in (follower, reversals, *tasks):
            task.cancel()
        await asyncio.gather(follower, reversals, *tasks, return_exceptions=True)
        await endpoint.close()
        await store.server.close()
        app.state.close()
        engine.dispose()


async def _overhead(workdir: Path, count: int) -> tuple[list[float], list[float], float]:
    """Alternate bare round trips and ``pay()`` calls; then time ``count`` payments in a row."""
    pays: list[float] = []
    bares: list[float] = []
    async with _lane(workdir / "one", 1) as lane:
        for i in range(count + WARM_UP):
            bare, pay = await lane.bare(), await lane.pay()
            if i >= WARM_UP:
                bares.append(bare)
                pays.append(pay)
        start = time.perf_counter()
        for _ in range(count):
            await lane.pay()
        rate = count / (time.perf_counter() - start)
    return pays, bares, rate


async def _parallel(workdir: Path, lanes: int, per_lane: int) -> float:
    """Payments per second with ``lanes`` lanes paying at once."""
    async with contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(_lane(workdir / f"lane{n}", n))
            for n in range(1, lanes + 1)
        ]

        async def pay_all(lane: _Lane) -> None:
            for _ in range(per_lane):
                await lane.pay()

        await asyncio.gather(*(lane.pay() for lane in opened))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(pay_all(lane) for lane in opened))
        return lanes * per_lane / (time.perf_counter() - start)


async def _run(workdir: Path, count: int) -> list[Figure]:
    pays, bares, one_lane = await _overhead(workdir, count)
    eight_lanes = await _parallel(workdir, LANES, PAYMENTS_PER_LANE)
    pay50, pay99 = percentile(pays, 50) * MS, percentile(pays, 99) * MS
    bare50, bare99 = percentile(bares, 50) * MS, percentile(bares, 99) * MS
    over50, over99 = pay50 - bare50, pay99 - bare99
    return [
        Figure(SECTION, "pay() p50 (TLS, simulator, journal)", pay50, "ms"),
        Figure(SECTION, "pay() p99", pay99, "ms"),
        Figure(SECTION, "bare link payment to simulator p50", bare50, "ms"),
        Figure(SECTION, "bare link payment to simulator p99", bare99, "ms"),
        Figure(SECTION, "orchestration overhead p50", over50, "ms"),
        Figure(SECTION, "orchestration overhead p99", over99, "ms", "< 5 ms", over99 < 5),
        Figure(SECTION, "payments/s, 1 lane", one_lane, "/s"),
        Figure(SECTION, f"payments/s, {LANES} lanes (one process)", eight_lanes, "/s"),
    ]


def run(workdir: Path, args: argparse.Namespace) -> list[Figure]:
    """Run the payment benchmarks (``args.payments`` timed payments, default 1000)."""
    count = int(getattr(args, "payments", PAYMENTS))
    with _quiet():
        return asyncio.run(asyncio.wait_for(_run(workdir, count), 600))
