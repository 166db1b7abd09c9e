"""``shouyin audit ...`` and ``shouyin health``: the store admin's operations commands (Typer).

:data:`audit_app` is mounted by :mod:`shouyin.cli` as ``shouyin audit`` and :func:`health_command`
as ``shouyin health``. Library errors are typed (:class:`~shouyin.domain.audit.AuditError` is a
:class:`~shouyin.domain.errors.DomainError`), so the CLI's one error mapping shows them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shouyin.config import Settings
from shouyin.domain.audit import AuditOutcome
from shouyin.i18n import register, t

__all__ = ["MESSAGES", "audit_app", "health_command", "mount"]

EXIT_TAMPERED: Final = 2

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "audit.verify.progress": {"zh": "校验审计日志", "en": "Verifying the audit log"},
    "audit.verify.ok": {
        "zh": "审计日志完整：{entries} 条，链头 #{seq} {hash}",
        "en": "Audit log intact: {entries} entries, head #{seq} {hash}",
    },
    "audit.verify.checkpoint": {
        "zh": "已核对签名检查点 #{seq}（{at}）",
        "en": "Checked against the signed checkpoint #{seq} ({at})",
    },
    "audit.verify.no_checkpoint": {
        "zh": "警告：没有签名检查点，无法发现被截断的日志尾部",
        "en": "Warning: no signed checkpoint; a cut-off tail cannot be detected",
    },
    "audit.verify.no_checkpoint_fail": {
        "zh": "失败：日志有 {entries} 条记录（或曾签过检查点）却没有签名检查点：检查点文件被删除，"
        "或数据库来自别的机器。查明原因后可用 --no-checkpoint-ok 仅校验链",
        "en": "FAILED: the log has {entries} entries (or was signed before) but no signed "
        "checkpoint: the checkpoint file was removed, or the database comes from another "
        "machine. Once you know why, --no-checkpoint-ok verifies the chain alone",
    },
    "audit.verify.bad": {
        "zh": "审计日志被篡改：发现 {count} 处问题",
        "en": "Audit log tampered with: {count} problem(s) found",
    },
    "audit.col.seq": {"zh": "序号", "en": "No."},
    "audit.col.problem": {"zh": "问题", "en": "Problem"},
    "audit.col.detail": {"zh": "说明", "en": "Detail"},
    "audit.col.at": {"zh": "时间", "en": "When"},
    "audit.col.actor": {"zh": "操作人", "en": "Who"},
    "audit.col.action": {"zh": "操作", "en": "What"},
    "audit.col.outcome": {"zh": "结果", "en": "Outcome"},
    "audit.col.source": {"zh": "来源", "en": "From"},
    "audit.col.target": {"zh": "对象", "en": "On"},
    "audit.col.details": {"zh": "详情", "en": "Details"},
    "audit.list.title": {"zh": "审计日志", "en": "Audit log"},
    "audit.list.empty": {"zh": "没有匹配的审计记录", "en": "No matching audit entries"},
    "audit.problem.edited": {"zh": "被修改", "en": "edited"},
    "audit.problem.deleted": {"zh": "被删除", "en": "deleted"},
    "audit.problem.inserted": {"zh": "被插入", "en": "inserted"},
    "audit.problem.reordered": {"zh": "顺序被调换", "en": "reordered"},
    "audit.problem.broken_link": {"zh": "链断开", "en": "broken link"},
    "audit.problem.truncated": {"zh": "尾部被截断", "en": "tail cut off"},
    "audit.problem.checkpoint_mismatch": {"zh": "与检查点不符", "en": "checkpoint mismatch"},
    "health.title": {"zh": "终端健康状态", "en": "Terminal health"},
    "health.none": {
        "zh": "还没有终端报告健康状态",
        "en": "No terminal has reported its health yet",
    },
    "health.history": {"zh": "告警历史", "en": "Alert history"},
    "health.online": {"zh": "在线", "en": "online"},
    "health.offline": {"zh": "离线", "en": "offline"},
    "health.no_alerts": {"zh": "正常", "en": "OK"},
    "health.col.terminal": {"zh": "终端", "en": "Terminal"},
    "health.col.lane": {"zh": "收银台", "en": "Lane"},
    "health.col.online": {"zh": "连接", "en": "Link"},
    "health.col.heartbeat": {"zh": "最后心跳", "en": "Last heartbeat"},
    "health.col.power": {"zh": "电源", "en": "Power"},
    "health.col.paper": {"zh": "纸", "en": "Paper"},
    "health.col.temp": {"zh": "温度", "en": "Temp C"},
    "health.col.firmware": {"zh": "固件", "en": "Firmware"},
    "health.col.alerts": {"zh": "告警", "en": "Alerts"},
    "health.col.alert": {"zh": "告警", "en": "Alert"},
    "health.col.raised": {"zh": "发生", "en": "Raised"},
    "health.col.cleared": {"zh": "解除", "en": "Cleared"},
    "audit.bad_since": {
        "zh": "--since 应为日期（2026-11-29）或天数（7d）",
        "en": "--since takes a date (2026-11-29) or a number of days (7d)",
    },
}
register(MESSAGES)

audit_app = typer.Typer(help="审计日志 Audit log: verify and list", no_args_is_help=True)
_console = Console()
_err_console = Console(stderr=True)


def _engine(settings: Settings) -> Engine:
    from shouyin.store.engine import make_engine
    from shouyin.store.migrate import upgrade

    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    return engine


@audit_app.command("verify")
def audit_verify(
    no_checkpoint_ok: Annotated[
        bool,
        typer.Option(
            "--no-checkpoint-ok",
            help="accept a log without a signed checkpoint (a database restored onto a machine "
            "without its key directory); a cut-off tail then goes unnoticed",
        ),
    ] = False,
) -> None:
    """Check every entry's hash and link, the head row, and the head against the signed checkpoint.

    Exit code 0 when intact, 2 when tampering is found (each problem listed with its entry number)
    and 2 as well when the log has entries but no signed checkpoint exists (deleting the checkpoint
    file must not hide a cut-off tail), unless ``--no-checkpoint-ok`` is given.
    """
    from shouyin.store.audit_repo import (
        CHECKPOINT_KEY_FILE,
        CheckpointStore,
        SqlAuditLog,
        verify_audit_log,
    )

    settings = Settings()
    engine = _engine(settings)
    try:
        with Session(engine) as session:
            total = SqlAuditLog(session).head()[0]
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=_err_console,
                transient=True,
            ) as progress:
                task = progress.add_task(t("audit.verify.progress"), total=total or None)
                report = verify_audit_log(
                    session,
                    CheckpointStore(settings.keys_dir),
                    on_entry=lambda _entry: progress.advance(task),
                )
    finally:
        engine.dispose()
    checkpoint = report.checkpoint
    # A checkpoint key without a checkpoint means one was written once: its loss is suspicious
    # even when the log is empty now (emptied, head row reset, checkpoint file removed).
    signed_before = (settings.keys_dir / CHECKPOINT_KEY_FILE).exists()
    missing = checkpoint is None and (report.entries > 0 or signed_before)
    if checkpoint is None:
        _err_console.print(t("audit.verify.no_checkpoint"))
        if missing and not no_checkpoint_ok:
            _err_console.print(t("audit.verify.no_checkpoint_fail", entries=report.entries))
            raise typer.Exit(EXIT_TAMPERED)
    else:
        at = f"{checkpoint.at:%Y-%m-%d %H:%M:%S} UTC"
        _console.print(t("audit.verify.checkpoint", seq=checkpoint.seq, at=at))
    if report.ok:
        head = report.head_hash[:16]
        _console.print(t("audit.verify.ok", entries=report.entries, seq=report.head_seq, hash=head))
        return
    table = Table(title=t("audit.verify.bad", count=len(report.problems)))
    table.add_column(t("audit.col.seq"), justify="right")
    table.add_column(t("audit.col.problem"))
    table.add_column(t("audit.col.detail"))
    for problem in report.problems:
        table.add_row(str(problem.seq), t(f"audit.problem.{problem.kind.value}"), problem.detail)
    _console.print(table)
    raise typer.Exit(EXIT_TAMPERED)


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        if value.endswith("d") and value[:-1].isdigit():
            return datetime.now(UTC) - timedelta(days=int(value[:-1]))
        day = datetime.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(t("audit.bad_since")) from error
    return day if day.tzinfo else day.replace(tzinfo=UTC)


@audit_app.command("list")
def audit_list(  # noqa: PLR0917 - Typer options are parameters
    since: Annotated[str | None, typer.Option(help="date (2026-11-29) or days back (7d)")] = None,
    action: Annotated[
        str | None, typer.Option(help="action or its prefix (sale., payment.)")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="who")] = None,
    target: Annotated[str | None, typer.Option(help="on what (sale:<id>, terminal:<id>)")] = None,
    failures: Annotated[bool, typer.Option("--failures", help="failures only")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """The newest audit entries, filtered."""
    from shouyin.store.audit_repo import AuditFilter, SqlAuditLog

    query = AuditFilter(
        since=_since(since),
        action=action,
        actor=actor,
        target=target,
        outcome=AuditOutcome.FAILURE if failures else None,
        limit=limit,
    )
    engine = _engine(Settings())
    try:
        with Session(engine) as session:
            entries = SqlAuditLog(session).list(query)
    finally:
        engine.dispose()
    if not entries:
        _console.print(t("audit.list.empty"))
        return
    table = Table(title=t("audit.list.title"))
    for key in ("seq", "at", "actor", "action", "outcome", "source", "target", "details"):
        table.add_column(t(f"audit.col.{key}"), overflow="fold")
    for entry in entries:
        e = entry.event
        details = ", ".join(f"{k}={v}" for k, v in e.details.items() if v is not None)
        style = "red" if e.outcome is AuditOutcome.FAILURE else None
        table.add_row(
            str(entry.seq),
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.actor,
            e.action,
            e.outcome.value,
            e.source,
            e.target,
            details,
            style=style,
        )
    _console.print(table)


def health_command(
    check: Annotated[
        bool, typer.Option("--check", help="run the time rules first (no heartbeat, certificate)")
    ] = False,
    history: Annotated[int, typer.Option(help="also list the last N alerts (0: none)")] = 0,
    expected_firmware: Annotated[
        str | None,
        typer.Option(envvar="SHOUYIN_EXPECTED_FIRMWARE", help="firmware every terminal should run"),
    ] = None,
) -> None:
    """终端健康 Terminal health: latest status and active alerts of every terminal."""
    from shouyin.fleet.health import HealthPolicy
    from shouyin.fleet.health_monitor import HealthMonitor, terminal_health
    from shouyin.fleet.health_store import SqlHealthUnitOfWork

    policy = HealthPolicy(expected_firmware=expected_firmware or None)
    engine = _engine(Settings())
    try:
        if check:
            HealthMonitor(engine, policy).check()
        views = terminal_health(engine, policy=policy)
        records = []
        if history:
            with SqlHealthUnitOfWork(engine) as uow:
                records = uow.health.history(limit=history)
    finally:
        engine.dispose()
    if not views:
        _console.print(t("health.none"))
        return
    table = Table(title=t("health.title"))
    for key in ("terminal", "lane", "online", "heartbeat", "power", "paper", "temp", "firmware"):
        table.add_column(t(f"health.col.{key}"))
    table.add_column(t("health.col.alerts"), overflow="fold")
    for view in views:
        sample = view.sample
        power = "-"
        if sample is not None and sample.power is not None:
            power = sample.power.value
            if sample.battery_percent is not None:
                power += f" {sample.battery_percent}%"
        seen = f"{view.last_heartbeat_at:%m-%d %H:%M:%S}" if view.last_heartbeat_at else "-"
        alerts = "; ".join(f"[{a.severity.value}] {a.message}" for a in view.alerts)
        table.add_row(
            view.terminal_id,
            view.lane_id or "-",
            t("health.online") if view.online else t("health.offline"),
            seen,
            power,
            sample.paper.value if sample and sample.paper else "-",
            str(sample.temperature_c) if sample and sample.temperature_c is not None else "-",
            (sample.firmware or "-") if sample else "-",
            alerts or t("health.no_alerts"),
            style="red" if any(a.severity.value == "critical" for a in view.alerts) else None,
        )
    _console.print(table)
    if records:
        past = Table(title=t("health.history"))
        for key in ("terminal", "alert", "raised", "cleared"):
            past.add_column(t(f"health.col.{key}"))
        for record in records:
            cleared = f"{record.cleared_at:%m-%d %H:%M:%S}" if record.cleared_at else "-"
            raised = f"{record.raised_at:%m-%d %H:%M:%S}"
            past.add_row(record.terminal_id, record.message, raised, cleared)
        _console.print(past)


def mount(app: typer.Typer) -> None:
    """Mount ``shouyin audit``, ``shouyin health`` and ``shouyin diag`` on the main app."""
    from shouyin.fleet.diagnostics_cli import diag_command

    app.add_typer(audit_app, name="audit", help="审计日志: verify the chain, list entries")
    app.command("health", help="终端健康: status and alerts of every terminal")(health_command)
    app.command("diag", help="终端诊断: connection test, test transactions, report")(diag_command)
