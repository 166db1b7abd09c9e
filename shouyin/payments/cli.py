"""``shouyin payments ...``: reconciliation (对账) from the command line (a Typer sub-app).

:data:`payments_app` is mounted by :mod:`shouyin.cli`. ``reconcile`` loads the three records,
matches them with a progress bar, prints a summary table (Chinese with English) and, with
``--csv``, writes every row::

    shouyin payments reconcile --terminal /var/lib/term --acquirer ledger.sqlite3 --csv out.csv

Sources (each may also be a records CSV, see :mod:`shouyin.payments.reconcile_io`):

* ``--lane``: the lane database (default: the configured one) or a CSV;
* ``--terminal``: the simulator's state directory or a CSV;
* ``--acquirer``: the acquirer ledger file (``ledger.sqlite3``), the control channel's ``export``
  answer saved as JSON, or a CSV.

An input that cannot be read ends the command with its file and line named and exit code 1.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shouyin.payments.reconcile import (
    Outcome,
    ReconciliationReport,
    Record,
    Side,
    reconcile,
)
from shouyin.payments.reconcile_io import (
    ReconcileInputError,
    read_ledger_json,
    read_records_csv,
    record_from_intent,
    record_from_ledger,
    record_from_terminal,
    write_report_csv,
)

__all__ = ["payments_app"]

logger = logging.getLogger(__name__)

payments_app = typer.Typer(
    help="Payments: reconciliation (对账) of lane, terminal and acquirer", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)

_STEPS = ("dedupe", "lane-terminal", "acquirer", "classify")
_OUTCOME_NAMES = {
    Outcome.MATCHED: "相符 matched",
    Outcome.MISSING: "缺失 missing",
    Outcome.AMOUNT_MISMATCH: "金额不符 amount mismatch",
    Outcome.STATE_MISMATCH: "状态不符 state mismatch",
    Outcome.NO_MONEY: "未扣款 no money moved",
    Outcome.DUPLICATE: "重复 duplicate",
}
_SIDE_NAMES = {
    Side.LANE: "收银 lane",
    Side.TERMINAL: "终端 terminal",
    Side.ACQUIRER: "收单 acquirer",
}


@payments_app.callback()
def _group() -> None:
    """Payments: reconciliation (对账)."""


def _existing(path: Path) -> Path:
    if not path.exists():
        raise ReconcileInputError(f"{path}: no such file or directory")
    return path


def load_lane(source: Path | None, database_url: str | None, lane_id: str | None) -> list[Record]:
    """The lane journal: a records CSV, or the store (``database_url`` or the configured one).

    Raises:
        ReconcileInputError: the file cannot be read.
    """
    if source is not None:
        return read_records_csv(_existing(source))
    from shouyin.config import Settings
    from shouyin.store.engine import make_engine
    from shouyin.store.migrate import upgrade
    from shouyin.store.payment_repo import SqlPaymentUnitOfWork
    from shouyin.store.uow import make_session_factory

    engine = make_engine(database_url or Settings().resolved_database_url())
    try:
        upgrade(engine)
        with SqlPaymentUnitOfWork(make_session_factory(engine)) as uow:
            return [record_from_intent(i) for i in uow.payments.journal(lane_id)]
    finally:
        engine.dispose()


def load_terminal(source: Path) -> list[Record]:
    """The terminal batch: a records CSV, or the simulator's state directory.

    Raises:
        ReconcileInputError: the file cannot be read.
    """
    if _existing(source).is_dir():
        from shouyin.terminal.errors import TerminalError
        from shouyin.terminal.state import TerminalState

        try:
            state = TerminalState(source)
        except TerminalError as error:
            raise ReconcileInputError(f"{source}: {error}") from error
        try:
            return [record_from_terminal(entry) for entry in state.entries()]
        finally:
            state.close()
    return read_records_csv(source)


def load_acquirer(source: Path) -> list[Record]:
    """The acquirer ledger: a records CSV, the control channel's JSON, or the ledger file.

    Raises:
        ReconcileInputError: the file cannot be read.
    """
    _existing(source)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return read_records_csv(source)
    if suffix == ".json":
        return read_ledger_json(source)
    import sqlite3

    from shouyin.acquirer.ledger import Ledger

    try:
        ledger = Ledger(source)
        try:
            entries = ledger.export()
        finally:
            ledger.close()
    except sqlite3.Error as error:
        raise ReconcileInputError(f"{source}: not an acquirer ledger ({error})") from error
    return [r for r in map(record_from_ledger, entries) if r is not None]


def _fen(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def summary_tables(report: ReconciliationReport) -> tuple[Table, Table]:
    """The outcome counts and the totals by payment kind, for the console."""
    outcomes = Table(title="对账结果 Reconciliation")
    outcomes.add_column("结果 outcome")
    outcomes.add_column("笔数 rows", justify="right")
    for outcome in Outcome:
        outcomes.add_row(_OUTCOME_NAMES[outcome], f"{report.count(outcome):,}")
    totals = Table(title="分类合计 Totals by payment kind (消费 sales / 退货 refunds, ￥)")
    totals.add_column("类型 kind")
    for side in Side:
        totals.add_column(_SIDE_NAMES[side], justify="right")
    totals.add_column("平 balanced")
    for kt in report.totals:
        cells = [
            f"{s.count:,} / {_fen(s.amount)}\n{s.refund_count:,} / {_fen(s.refund_amount)}"
            for s in (kt.lane, kt.terminal, kt.acquirer)
        ]
        totals.add_row(kt.kind, *cells, "是 yes" if kt.balanced else "[red]否 NO[/red]")
    return outcomes, totals


@payments_app.command("reconcile")
def reconcile_command(  # noqa: PLR0917 - Typer options are parameters
    terminal: Annotated[
        Path, typer.Option("--terminal", help="terminal state directory or records CSV")
    ],
    acquirer: Annotated[
        Path, typer.Option("--acquirer", help="ledger.sqlite3, export JSON or records CSV")
    ],
    lane: Annotated[
        Path | None, typer.Option("--lane", help="lane records CSV (default: the database)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="lane database URL")
    ] = None,
    lane_id: Annotated[str | None, typer.Option("--lane-id", help="only this lane")] = None,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="write every row to this CSV file")
    ] = None,
    show: Annotated[int, typer.Option(help="discrepancies to list")] = 20,
) -> None:
    """对账: match the lane journal, the terminal batch and the acquirer ledger."""
    try:
        sides = (
            load_lane(lane, database_url, lane_id),
            load_terminal(terminal),
            load_acquirer(acquirer),
        )
    except ReconcileInputError as error:
        err_console.print(f"[red]错误 error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(1) from error
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("对账 reconciling", total=len(_STEPS))

        def step(name: str) -> None:
            progress.update(task, completed=_STEPS.index(name), description=f"对账 {name}")

        report = reconcile(*sides, progress=step)
        progress.update(task, completed=len(_STEPS), description="对账 done")
    for table in summary_tables(report):
        console.print(table)
    if report.discrepancies and show > 0:
        listing = Table(title=f"差异 Discrepancies (first {min(show, len(report.discrepancies))})")
        for column in ("outcome", "kind", "ecr_ref", "batch", "trace", "rrn"):
            listing.add_column(column)
        listing.add_column("lane/terminal/acquirer")
        for row in report.discrepancies[:show]:
            amounts = " / ".join(
                "-" if a is None else f"{_fen(a)} {s}"
                for a, s in zip(row[7:10], row[10:13], strict=True)
            )
            listing.add_row(
                _OUTCOME_NAMES[row.outcome],
                row.kind,
                row.ecr_ref or "",
                row.batch or "",
                row.trace or "",
                row.rrn or "",
                amounts,
            )
        console.print(listing)
    if csv_path is not None:
        count = write_report_csv(csv_path, report)
        console.print(f"已导出 {count:,} 行 / wrote {count:,} rows to {csv_path}")
    console.print("对账平 balanced" if report.balanced else "[red]对账不平 NOT balanced[/red]")
