"""Chaos: 1,000 payments through a link that drops, delays, corrupts, duplicates and cuts frames,
and an acquirer that sometimes never answers — zero lost sales, zero double charges.

Each lane pays 250 sales (card, WeChat, Alipay; some part cash) through the real terminal
simulator behind real link endpoints (:class:`~tests.payments.TerminalRig`) on the virtual-time
loop, on a durable SQLite journal. Every write in both directions goes through a seeded
:class:`ChaosFaults` plan; a watchdog reconnects the pipe when the link stays down (a cut, or a
session the corruption killed). About one payment in twelve also meets an acquirer that books
the sale and loses its answer (the terminal must reverse it). At the end the faults stop, the
lane settles what is left, and the sales are checked against the terminal's journal and the
acquirer's ledger (:func:`tests.payments.crash_worker.ledger_problems`)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from pathlib import Path

import pytest

from shouyin.domain.money import Money
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.lane import services
from shouyin.link.transport import Transport, memory_pipe
from shouyin.payments import IntentState, PaymentOrchestrator, PaymentPolicy
from shouyin.terminal.faults import AcquirerFault, FaultPlan, Faults, WriteAction, WriteKind
from shouyin.terminal.faulty import FaultyTransport
from tests.payments import ALIPAY_CODE, COLA, OIL, RICE, WECHAT_CODE, Shop, TerminalRig, sql_uow
from tests.payments.crash_worker import DurableAcquirer, ledger_problems
from tests.terminal import run_virtual

LANES = 4
PAYMENTS_PER_LANE = 250
DROP, DELAY, CORRUPT, DUPLICATE, CUT = 0.01, 0.02, 0.01, 0.02, 0.005
ACQUIRER_TIMEOUT = 1 / 12
POLICY = PaymentPolicy(query_window=20, reversal_retry=5, reversal_retry_max=20)


class ChaosFaults(Faults):
    """Random write faults (drop, delay, corrupt, duplicate, cut), seeded, counted by kind."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng
        self.active = True
        self.seen: Counter[str] = Counter()

    def on_write(self, data: bytes) -> WriteAction:
        action = super().on_write(data)
        if not self.active or not data:
            return action
        roll = self.rng.random()
        for kind, rate in (
            (WriteKind.DROP, DROP),
            (WriteKind.DELAY, DELAY),
            (WriteKind.CORRUPT, CORRUPT),
            (WriteKind.CUT, CUT),
        ):
            if roll < rate:
                self.seen[kind.value] += 1
                if kind is WriteKind.DROP:
                    return WriteAction(kind, b"")
                if kind is WriteKind.DELAY:
                    return WriteAction(kind, data, self.rng.uniform(0.05, 3.0))
                if kind is WriteKind.CORRUPT:
                    index = self.rng.randrange(len(data))
                    flipped = data[:index] + bytes([data[index] ^ 0x5A]) + data[index + 1 :]
                    return WriteAction(kind, flipped)
                return WriteAction(kind, data[: max(1, len(data) // 2)])
            roll -= rate
        return action

    def duplicate(self) -> bool:
        """Whether the next write is sent twice."""
        if self.active and self.rng.random() < DUPLICATE:
            self.seen["duplicate"] += 1
            return True
        return False


class _DuplicatingTransport(FaultyTransport):
    """:class:`FaultyTransport` that may also send a write twice."""

    def __init__(self, inner: Transport, faults: ChaosFaults) -> None:
        super().__init__(inner, faults, hang_up_on_cut=True)
        self.chaos = faults

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.chaos.duplicate():
            super().write(data)


class ChaosRig(TerminalRig):
    """A :class:`TerminalRig` whose pipe goes through :class:`ChaosFaults` both ways."""

    chaos: ChaosFaults

    def _connect(self) -> None:
        if self.terminal.closed or self.cashier.closed:
            return
        a, b = memory_pipe()
        self.terminal.attach(_DuplicatingTransport(b, self.chaos))
        self.cashier.attach(_DuplicatingTransport(a, self.chaos))

    async def watchdog(self) -> None:
        """Reconnect when the link stays down (checked every 2 s of virtual time)."""
        down = 0
        while True:
            await asyncio.sleep(2)
            down = 0 if self.cashier.is_ready and self.terminal.is_ready else down + 1
            if down >= 2:
                down = 0
                self._connect()


async def _pay_one(
    shop: Shop, orchestrator: PaymentOrchestrator, rig: ChaosRig, rng: random.Random
) -> str:
    items = [(p, rng.randint(1, 3)) for p in (COLA, RICE, OIL) if rng.random() < 0.6]
    sale_id = shop.sale(*(items or [(COLA, 1)]))
    if rng.random() < 0.2:
        total = shop.get(sale_id).remaining
        services.pay_cash(shop.uow, shop.ctx, sale_id, Money(rng.randint(1, total.fen - 1)))
    kind, code = rng.choice(
        ((TenderKind.CARD, None), (TenderKind.QR, WECHAT_CODE), (TenderKind.QR, ALIPAY_CODE))
    )
    if rng.random() < ACQUIRER_TIMEOUT:
        rig.chaos.seen["acquirer_timeout"] += 1
        rig.chaos.plan = FaultPlan(
            acquirer=AcquirerFault.LOSE_REPLY,
            acquirer_operations=frozenset({"sale"}),
            acquirer_count=1,
        )
        rig.chaos.acquirer_faults = 0
    with contextlib.suppress(Exception):
        await rig.cashier.wait_ready(30)
    await orchestrator.pay(sale_id, kind, shop.get(sale_id).remaining, code)
    return sale_id


@pytest.mark.parametrize("seed", range(LANES))
def test_chaos_payments_lose_no_sale_and_charge_nothing_twice(tmp_path: Path, seed: int) -> None:
    async def main() -> None:
        rng = random.Random(seed)
        chaos = ChaosFaults(random.Random(seed + 100))
        chaos.active = False
        rig = ChaosRig(tmp_path, acquirer=DurableAcquirer())
        rig.chaos = chaos
        with sql_uow(tmp_path / "lane.db") as uow:
            shop = Shop.open(uow)
            async with rig:
                rig.app.services.faults = chaos
                watchdog = asyncio.create_task(rig.watchdog())
                orchestrator = PaymentOrchestrator(uow, rig.cashier, shop.ctx, policy=POLICY)
                await orchestrator.recover_all()
                chaos.active = True
                sale_ids = [
                    await _pay_one(shop, orchestrator, rig, rng) for _ in range(PAYMENTS_PER_LANE)
                ]
                chaos.active = False
                chaos.plan = FaultPlan()
                for _ in range(40):  # settle what is left, faults off
                    await asyncio.sleep(15)
                    left = await orchestrator.retry_unsettled()
                    if left == 0 and not rig.app.state.reversals():
                        break
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
                sales = shop.sales()
                shop.check(rig.states())
                assert ledger_problems(sales, rig.app.state.entries(), rig.acquirer.ledger) == []
                assert rig.app.state.reversals() == []
                states = Counter(i.state for i in shop.intents())
                assert sum(states.values()) == PAYMENTS_PER_LANE  # one attempt per sale
                assert set(states) <= {
                    IntentState.APPROVED,
                    IntentState.DECLINED,
                    IntentState.FAILED,
                    IntentState.REVERSED,
                }
                completed = {s.sale_id for s in sales if s.state is SaleState.COMPLETED}
                approved = {i.sale_id for i in shop.intents() if i.state is IntentState.APPROVED}
                assert completed == approved  # zero lost sales: every approval completed one
                assert set(sale_ids) >= completed
                assert min(chaos.seen[k] for k in ("drop", "delay", "corrupt", "cut")) > 0
                assert chaos.seen["duplicate"] > 0 and chaos.seen["acquirer_timeout"] > 0

    run_virtual(main)
