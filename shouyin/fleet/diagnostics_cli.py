"""``shouyin diag TERMINAL``: connection test, test transactions and printer page, with a report.

The command holds the cashier system's link port (like ``shouyin fleet pair``) and waits for the
paired terminal to dial in and log in, then runs
:func:`~shouyin.fleet.diagnostics_report.run_diagnostics` with a Rich progress bar, records the
terminal's health in the report, appends an audit entry (test transactions are money actions,
however small) and saves the report as JSON and HTML. Exit code 0 when everything passed, 1
otherwise. Alerts stay the business of the lane's
:class:`~shouyin.fleet.health_monitor.HealthMonitor` (with the store's policy), not of this
one-off command.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from shouyin.config import Settings
from shouyin.domain.audit import AuditEvent, AuditOutcome
from shouyin.fleet.diagnostics import SUITE_STEPS, DiagnosticsReport
from shouyin.i18n import register, t

__all__ = ["MESSAGES", "diag_command"]

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "diag.waiting": {
        "zh": "等待终端 {terminal_id} 连接并签到（最多 {seconds} 秒）……",
        "en": "Waiting for terminal {terminal_id} to connect and log in (up to {seconds} s)...",
    },
    "diag.not_connected": {
        "zh": "终端 {terminal_id} 在 {seconds} 秒内没有连接：请检查终端的服务器地址和网络",
        "en": "Terminal {terminal_id} did not connect within {seconds} s: check its server "
        "address and the network",
    },
    "diag.serial": {
        "zh": "串口终端请在收银程序运行时诊断（暂不支持独立诊断）",
        "en": "Serial terminals are diagnosed from the running lane (not supported standalone)",
    },
    "diag.progress": {"zh": "诊断终端 {terminal_id}", "en": "Diagnosing terminal {terminal_id}"},
    "diag.title": {"zh": "诊断结果", "en": "Diagnostics"},
    "diag.pass": {"zh": "通过", "en": "PASS"},
    "diag.fail": {"zh": "失败", "en": "FAIL"},
    "diag.saved": {"zh": "报告已保存：{json} 和 {html}", "en": "Report saved: {json} and {html}"},
    "diag.latency": {
        "zh": "往返 {answered}/{rounds}，丢失 {loss}%，"
        "延迟 p50 {p50} ms / p95 {p95} ms / 最大 {max} ms",
        "en": "Round trips {answered}/{rounds}, loss {loss}%, latency p50 {p50} ms / p95 {p95} ms "
        "/ max {max} ms",
    },
    "diag.transport": {
        "zh": "传输 {transport} {tls} {cipher}，证书剩余 {days} 天，重连 {reconnects} 次",
        "en": "Transport {transport} {tls} {cipher}, certificate {days} days left, "
        "{reconnects} reconnects",
    },
}
register(MESSAGES)

_console = Console()
_err_console = Console(stderr=True)


def _summary(report: DiagnosticsReport) -> Table:
    table = Table(title=t("diag.title"))
    table.add_column("step")
    table.add_column("result")
    table.add_column("ms", justify="right")
    table.add_column("detail", overflow="fold")
    for step in [*report.transactions, *([report.printer] if report.printer else [])]:
        verdict = t("diag.pass") if step.passed else t("diag.fail")
        table.add_row(step.name, verdict, f"{step.duration_ms:.1f}", step.detail)
    return table


async def _diagnose(
    settings: Settings, terminal_id: str, *, rounds: int, transactions: bool, wait: float
) -> DiagnosticsReport:
    from shouyin.fleet.diagnostics_report import run_diagnostics
    from shouyin.fleet.keys import TerminalKeyRing, passphrase_from_env
    from shouyin.fleet.pairing import build_link_server
    from shouyin.link.keystore import KeyStore
    from shouyin.store.engine import make_engine
    from shouyin.store.migrate import upgrade

    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    keyring = TerminalKeyRing(settings.keys_dir, passphrase=passphrase_from_env())
    server = build_link_server(settings, keys=keyring, keystore=KeyStore(settings.keys_dir))
    printer = (
        (settings.printer_url, settings.printer_columns, settings.printer_encoding)
        if settings.printer_url
        else None
    )
    try:
        async with server:
            _err_console.print(t("diag.waiting", terminal_id=terminal_id, seconds=int(wait)))
            try:
                endpoint = await server.wait_ready(terminal_id, wait)
            except TimeoutError:
                _err_console.print(
                    t("diag.not_connected", terminal_id=terminal_id, seconds=int(wait))
                )
                raise typer.Exit(1) from None
            total = rounds + (len(SUITE_STEPS) if transactions else 0) + (1 if printer else 0)
            with Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[step]}"),
                console=_err_console,
            ) as progress:
                task = progress.add_task(
                    t("diag.progress", terminal_id=terminal_id), total=total, step=""
                )
                return await run_diagnostics(
                    endpoint,
                    terminal_id,
                    lane_id=settings.lane_id,
                    rounds=rounds,
                    transactions=transactions,
                    printer=printer,
                    on_progress=lambda step: progress.update(task, advance=1, step=step),
                )
    finally:
        engine.dispose()


def diag_command(
    terminal_id: Annotated[str, typer.Argument(help="终端号 (8 characters)")],
    rounds: Annotated[int, typer.Option(min=1, max=1000, help="connection test round trips")] = 20,
    transactions: Annotated[
        bool,
        typer.Option(
            help="run the test-transaction suite in the terminal's test mode (no real money)"
        ),
    ] = True,
    report_dir: Annotated[
        Path | None, typer.Option(help="where to save the report (default: <data>/diagnostics)")
    ] = None,
    wait: Annotated[float, typer.Option(min=1, max=600, help="seconds to wait for it")] = 60,
) -> None:
    """终端诊断: connection test, test transactions, printer test page; saves a JSON+HTML report."""
    from shouyin.fleet.diagnostics_report import save_report
    from shouyin.fleet.registry import get_terminal
    from shouyin.store.audit_repo import CheckpointStore, append_audit
    from shouyin.store.engine import make_engine
    from shouyin.store.terminal_repo import SqlTerminalUnitOfWork

    settings = Settings()
    registry = SqlTerminalUnitOfWork.open(settings.resolved_database_url())
    try:
        terminal = get_terminal(registry, terminal_id)  # refuses an unknown terminal
    finally:
        registry.dispose()
    if terminal.is_serial:
        _err_console.print(t("diag.serial"))
        raise typer.Exit(1)
    report = asyncio.run(
        _diagnose(settings, terminal_id, rounds=rounds, transactions=transactions, wait=wait)
    )
    json_path, html_path = save_report(report, report_dir or settings.data_dir / "diagnostics")
    engine = make_engine(settings.resolved_database_url())
    try:
        append_audit(
            engine,
            AuditEvent(
                action="terminal.diagnostics",
                outcome=AuditOutcome.SUCCESS if report.passed else AuditOutcome.FAILURE,
                actor="admin",
                source=f"lane:{settings.lane_id}",
                target=f"terminal:{terminal_id}",
                at=datetime.now(UTC),
                details={"transactions": transactions, "report": json_path.name},
            ),
            CheckpointStore(settings.keys_dir),
        )
    finally:
        engine.dispose()
    connection = report.connection
    if connection is not None:
        _console.print(
            t(
                "diag.latency",
                answered=connection.answered,
                rounds=connection.rounds,
                loss=connection.loss_percent,
                p50=connection.latency_p50_ms,
                p95=connection.latency_p95_ms,
                max=connection.latency_max_ms,
            )
        )
        _console.print(
            t(
                "diag.transport",
                transport=connection.transport,
                tls=connection.tls_version or "",
                cipher=connection.cipher or "",
                days=connection.certificate_days_left,
                reconnects=connection.reconnects,
            )
        )
    _console.print(_summary(report))
    for note in report.notes:
        _console.print(f"- {note}")
    _console.print(t("diag.saved", json=json_path, html=html_path))
    _console.print(t("diag.pass") if report.passed else t("diag.fail"))
    if not report.passed:
        raise typer.Exit(1)
