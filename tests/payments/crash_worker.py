"""A lane that dies by SIGKILL mid-payment, and a fresh process that recovers it from disk.

Run as ``python -m tests.payments.crash_worker --root DIR --cases FILE`` (``FILE``: a JSON list
of :class:`Case`); prints one JSON result per case on stdout. The crash test
(:mod:`tests.payments.test_crash`) runs it.

The parent imports everything once and prepares a migrated lane database (staff, open shift) as a
template; then, for each case, it copies the template and forks twice:

1. the **dying** process opens the lane (SQLite journal, WAL), boots the terminal simulator
   (:class:`~tests.payments.TerminalRig`: the real ``TerminalApp`` behind real link endpoints,
   its journal on disk) with a :class:`DurableAcquirer` (the in-memory acquirer whose ledger is
   written to a file at every change), and pays a sale. At the chosen step it sends itself
   SIGKILL: a cashier :class:`~shouyin.payments.KillPoint` (checkpoint hook) or a terminal
   :class:`~shouyin.terminal.faults.Step` (power-loss fault switch) — either way the whole
   process, cashier, terminal and acquirer, dies at once with nothing flushed;
2. the **recovering** process starts from what is on disk: boots the terminal (which finishes
   its own unfinished transactions), runs ``recover_all()`` and the background retries until
   everything is settled, and checks DESIGN.md section 5 (:func:`ledger_problems` plus
   :func:`shouyin.payments.violations`), then takes one more payment to show the lane works.

Forking (instead of starting the interpreter twice per case) keeps each run at tens of
milliseconds instead of more than a second of imports; the forked children share no open file,
database connection or event loop with the parent, which never opens the lane's database.
Every wait is bounded: a child that outlives its deadline is killed and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from shouyin.domain.money import Money
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.sale_view import SaleView
from shouyin.lane import services
from shouyin.link.values import PaymentKind, TransactionKind, TransactionState
from shouyin.payments import KillPoint, PaymentOrchestrator, PaymentPolicy, violations
from shouyin.terminal.faults import Faults, Step
from shouyin.terminal.memory_host import LedgerEntry, MemoryAcquirer
from shouyin.terminal.ports import HostReply, RefundAuth, ReversalAuth, SaleAuth, VoidAuth
from shouyin.terminal.records import JournalEntry
from tests.payments import ALIPAY_CODE, COLA, OIL, RICE, WECHAT_CODE, Shop, TerminalRig, sql_uow
from tests.terminal import VirtualTimeLoop

T = TypeVar("T")

# record_sent: the kill point after the ``sent`` write is one of those every case dies at.
POLICY = PaymentPolicy(query_window=20, reversal_retry=5, reversal_retry_max=20, record_sent=True)
CHILD_DEADLINE = 60.0  # real seconds for one child process
RECOVERY_ROUNDS = 30  # background passes (15 virtual seconds apart) before giving up
KILLED_BY_SIGKILL = -signal.SIGKILL


@dataclass(frozen=True, slots=True)
class Case:
    """One crash run.

    Attributes:
        case_id: unique name (a directory under the root).
        side: ``cashier`` (``point`` is a KillPoint) or ``terminal`` (``point`` is a Step).
        point: where the process dies.
        scenario: ``approve`` (the terminal answers), ``lost`` (the answer is lost, the link
            back a second later) or ``reverse`` (the answer is lost and the link stays down
            past the query window, so the payment is reversed).
        seed: picks the basket, the tender kind and whether part is paid in cash.
    """

    case_id: str
    side: str
    point: str
    scenario: str
    seed: int


@dataclass(slots=True)
class CaseResult:
    """What one run showed (``problems`` empty and ``killed`` true: the invariants held)."""

    case_id: str
    killed: bool = False
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    intents: list[str] = field(default_factory=list)


# -- the acquirer, durable across processes ---------------------------------------------------


@dataclass
class DurableAcquirer(MemoryAcquirer):
    """:class:`MemoryAcquirer` whose ledger survives the process (rewritten after each change;
    a SIGKILL loses nothing the OS already has). ``path=None``: in memory only."""

    path: Path | None = None

    def __post_init__(self) -> None:
        if self.path is None or not self.path.exists():
            return
        for row in json.loads(self.path.read_text()):
            kind = row.pop("kind")
            self.ledger.append(LedgerEntry(**row, kind=PaymentKind(kind) if kind else None))
        self._rrn = max((int(e.rrn or 0) for e in self.ledger), default=0)

    def _persist(self) -> None:
        if self.path is None:
            return
        rows = [{**asdict(e), "kind": e.kind.value if e.kind else None} for e in self.ledger]
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps(rows))
        os.replace(scratch, self.path)

    def _book(self, operation: str, auth: SaleAuth | VoidAuth | RefundAuth) -> LedgerEntry:
        entry = super()._book(operation, auth)
        self._persist()
        return entry

    async def reverse(self, auth: ReversalAuth) -> HostReply:
        """Reverse, then write the ledger."""
        reply = await super().reverse(auth)
        self._persist()
        return reply

    async def void(self, auth: VoidAuth) -> HostReply:
        """Void, then write the ledger."""
        reply = await super().void(auth)
        self._persist()
        return reply

    async def refund(self, auth: RefundAuth) -> HostReply:
        """Refund, then write the ledger."""
        reply = await super().refund(auth)
        self._persist()
        return reply


# -- the acquirer's view of exactly-once ----------------------------------------------------


def ledger_problems(
    sales: Iterable[SaleView], entries: Iterable[JournalEntry], ledger: Sequence[LedgerEntry]
) -> list[str]:
    """Check the acquirer's ledger against the terminal's journal and the lane's sales.

    * every sale the acquirer booked is a payment the terminal knows (by batch and trace);
    * at most one sale is booked per ``ecr_ref`` (no double charge);
    * an ``ecr_ref`` is a live tender of a completed sale exactly when the acquirer holds an
      approved sale for it, of the same amount (the sale's state equals the ledger's).

    Returns:
        The problems found, in words (empty: all hold).
    """
    problems: list[str] = []
    by_trace = {
        (e.batch, e.trace): e
        for e in entries
        if e.kind is TransactionKind.PAYMENT and e.trace is not None
    }
    booked: Counter[str] = Counter()
    approved: dict[str, int] = {}
    for row in ledger:
        if row.operation != "sale":
            continue
        entry = by_trace.get((row.batch, row.trace))
        if entry is None:
            problems.append(f"acquirer sale {row.batch}/{row.trace} unknown to the terminal")
            continue
        booked[entry.ecr_ref] += 1
        if row.status == "approved":
            approved[entry.ecr_ref] = row.amount
    problems += [f"{ref} charged {n} times" for ref, n in booked.items() if n > 1]
    on_sales: dict[str, int] = {}
    for sale in sales:
        for tender in sale.tenders:
            if tender.ecr_ref is None or tender.voided:
                continue
            on_sales[tender.ecr_ref] = tender.amount.fen
            if sale.state is not SaleState.COMPLETED:
                problems.append(f"sale {sale.sale_id} holds {tender.ecr_ref} but is {sale.state}")
    if on_sales != approved:
        problems.append(f"sales hold {on_sales} but the acquirer approved {approved}")
    return problems


# -- one run ------------------------------------------------------------------------------------


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(5)  # never reached: the signal is delivered before the call returns
    os._exit(70)


def _kill_at(point: KillPoint) -> Any:
    def checkpoint(at: KillPoint) -> None:
        if at is point:
            _die()

    return checkpoint


class _PowerCut(Faults):
    """Fault switches that SIGKILL the whole process at a terminal step."""

    def __init__(self, step: Step) -> None:
        super().__init__()
        self.step = step

    def power_lost_at(self, step: Step) -> bool:
        if step is self.step:
            _die()
        return False


def _rig(directory: Path, case: Case | None) -> TerminalRig:
    acquirer = DurableAcquirer(path=directory / "acquirer.json")
    if case is None or case.scenario == "approve":
        return TerminalRig(directory, acquirer=acquirer)
    if case.scenario == "lost":
        return TerminalRig(directory, acquirer=acquirer, lose_answers=1)
    back = random.Random(case.seed).choice((21.0, 24.0, 33.0))
    return TerminalRig(directory, acquirer=acquirer, lose_answers=1, reconnect_after=back)


def _basket(shop: Shop, case: Case) -> tuple[str, TenderKind, Money, str | None]:
    rng = random.Random(case.seed)
    items = [(p, rng.randint(1, 4)) for p in (COLA, RICE, OIL) if rng.random() < 0.7]
    sale_id = shop.sale(*(items or [(COLA, rng.randint(1, 9))]))
    if rng.random() < 0.3:  # split tender: part cash first
        total = shop.get(sale_id).remaining
        services.pay_cash(shop.uow, shop.ctx, sale_id, Money(rng.randint(1, total.fen - 1)))
    remaining = shop.get(sale_id).remaining
    if case.side == "terminal":
        return sale_id, TenderKind.CARD, remaining, None
    kind, code = rng.choice(
        ((TenderKind.CARD, None), (TenderKind.QR, WECHAT_CODE), (TenderKind.QR, ALIPAY_CODE))
    )
    return sale_id, kind, remaining, code


async def _dying(case: Case, directory: Path, template: Shop) -> None:
    """Pay until the chosen step kills the process (returns only if it was never reached)."""
    with sql_uow(directory / "lane.db") as uow:
        shop = Shop.reopen(uow, template)
        async with _rig(directory, case) as rig:
            checkpoint: Any = lambda _: None  # noqa: E731 - a no-op hook
            if case.side == "cashier":
                checkpoint = _kill_at(KillPoint(case.point))
            else:
                rig.app.services.faults = _PowerCut(Step(case.point))
            orchestrator = PaymentOrchestrator(
                uow, rig.cashier, shop.ctx, policy=POLICY, checkpoint=checkpoint
            )
            await orchestrator.recover_all()
            sale_id, kind, amount, code = _basket(shop, case)
            await orchestrator.pay(sale_id, kind, amount, code)
            for _ in range(RECOVERY_ROUNDS):  # later points: background reversal retries
                await asyncio.sleep(15)
                if await orchestrator.retry_unsettled() == 0:
                    break


async def _recovering(directory: Path, template: Shop) -> CaseResult:
    """Start from disk, settle everything, check the invariants, pay once more."""
    result = CaseResult(directory.name)
    with sql_uow(directory / "lane.db") as uow:
        shop = Shop.reopen(uow, template)
        async with _rig(directory, None) as rig:
            orchestrator = PaymentOrchestrator(uow, rig.cashier, shop.ctx, policy=POLICY)
            await orchestrator.recover_all()
            for _ in range(RECOVERY_ROUNDS):
                await asyncio.sleep(15)  # the terminal's own reversal worker, too
                left = await orchestrator.retry_unsettled()
                if left == 0 and not rig.app.state.reversals():
                    break
            result.intents = [f"{i.ecr_ref}:{i.state}" for i in shop.intents()]
            result.problems += _problems(shop, rig)
            sale_id = shop.sale((COLA, 1))
            after = await orchestrator.pay(sale_id, TenderKind.CARD, Money(350))
            if not after.completed:
                result.problems.append(f"a new payment after recovery: {after.state}")
            result.problems += _problems(shop, rig)
    return result


def _problems(shop: Shop, rig: TerminalRig) -> list[str]:
    sales = shop.sales()
    problems = violations(shop.intents(), sales, rig.states())
    problems += ledger_problems(sales, rig.app.state.entries(), rig.acquirer.ledger)
    if rig.app.state.reversals():
        problems.append(f"terminal reversals never acknowledged: {rig.app.state.reversals()}")
    unsettled = [
        e.ecr_ref for e in rig.app.state.entries() if e.state is TransactionState.IN_PROGRESS
    ]
    if unsettled:
        problems.append(f"terminal transactions still in progress: {unsettled}")
    return problems


# -- processes ----------------------------------------------------------------------------------


def _run_on_virtual_time(main: Coroutine[Any, Any, T], start: float) -> T:
    def loop_factory() -> VirtualTimeLoop:
        loop = VirtualTimeLoop()
        loop.virtual_now = start
        return loop

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main)


def _fork(body: Any) -> int:
    """Run ``body()`` in a child process; the child never returns into the caller."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = int(body())
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _reap(pid: int, deadline: float) -> int:
    """Wait (bounded) for a child; kill it past the deadline. Returns ``-signal`` or the code."""
    end = time.monotonic() + deadline
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -1000
        time.sleep(0.002)


def run_case(case: Case, root: Path, template: Shop) -> CaseResult:
    """Kill a lane at the case's step in one process and recover it in another."""
    directory = root / case.case_id
    directory.mkdir(parents=True)
    shutil.copy(root / "template.db", directory / "lane.db")

    def dying() -> int:
        _run_on_virtual_time(_dying(case, directory, template), 0.0)
        return 3  # survived: the step was never reached

    status = _reap(_fork(dying), CHILD_DEADLINE)
    if status != KILLED_BY_SIGKILL:
        return CaseResult(case.case_id, error=f"the dying process ended with {status}")

    def recovering() -> int:
        result = _run_on_virtual_time(_recovering(directory, template), 3600.0)
        (directory / "result.json").write_text(json.dumps(asdict(result)))
        return 0

    status = _reap(_fork(recovering), CHILD_DEADLINE)
    if status != 0:
        return CaseResult(case.case_id, killed=True, error=f"recovery ended with {status}")
    result = CaseResult(**json.loads((directory / "result.json").read_text()))
    result.killed = True
    shutil.rmtree(directory, ignore_errors=True)
    return result


def _template(root: Path) -> Shop:
    async def make() -> Shop:
        with sql_uow(root / "template.db") as uow:
            return Shop.open(uow)

    return _run_on_virtual_time(make(), 0.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cases of ``--cases`` under ``--root``; one JSON result per line on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--cases", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    cases = [Case(**row) for row in json.loads(args.cases.read_text())]
    args.root.mkdir(parents=True, exist_ok=True)
    template = _template(args.root)
    for case in cases:
        result = run_case(case, args.root, template)
        print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
