"""A whole diagnostics run, the printer test page, and the saved report (JSON and HTML).

:func:`run_diagnostics` runs the connection test, optionally the test-transaction suite, and
optionally a printer test page, into one :class:`~shouyin.fleet.diagnostics.DiagnosticsReport`.
:func:`save_report` writes it as JSON (for support tools) and as one self-contained HTML page
(every value escaped, no external resources) that a technician can e-mail.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shouyin.domain.carddata import scrub
from shouyin.fleet.diagnostics import (
    DiagnosticsReport,
    StepResult,
    connection_test,
    transaction_suite,
)
from shouyin.link.keystore import atomic_write

if TYPE_CHECKING:
    from shouyin.link.aio import LinkEndpoint

__all__ = ["print_test_page", "render_html", "run_diagnostics", "save_report"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


def print_test_page(printer_url: str, columns: int, encoding: str, lines: list[str]) -> StepResult:
    """Print a diagnostics test page on the lane's receipt printer (status checked first).

    Uses the printer API of :mod:`shouyin.devices` (python-escpos transport, ESC/POS encoder).

    Returns:
        The step: passed when the printer was ready and took the page.
    """
    from shouyin.devices.errors import DeviceError
    from shouyin.devices.escpos_model import (
        Align,
        Block,
        Cut,
        Feed,
        PrinterEncoding,
        Style,
        TextLine,
        encode,
    )
    from shouyin.devices.printer import PrinterConfig, PrinterLink

    started = time.perf_counter()
    ruler = "".join(str(i % 10) for i in range(1, columns + 1))
    blocks: list[Block] = [
        TextLine("终端诊断 DIAGNOSTICS", Style(bold=True), Align.CENTER),
        TextLine(ruler),
        *(TextLine(line[:columns]) for line in lines),
        Feed(3),
        Cut(),
    ]
    try:
        config = PrinterConfig(printer_url, PrinterEncoding(encoding), columns)
        with PrinterLink(config) as link:
            state = link.status().state
            if not state.can_print:
                detail, passed = f"printer not ready: {state.value}", False
            else:
                size = link.send(encode(blocks, config.encoding))
                detail, passed = f"test page sent ({size} bytes), printer {state.value}", True
    except (DeviceError, ValueError, OSError) as error:
        detail, passed = f"{type(error).__name__}: {error}"[:300], False
    duration = round((time.perf_counter() - started) * 1000, 2)
    return StepResult(name="printer_test_page", passed=passed, duration_ms=duration, detail=detail)


async def run_diagnostics(
    endpoint: LinkEndpoint,
    terminal_id: str,
    *,
    lane_id: str = "",
    rounds: int = 20,
    transactions: bool = True,
    printer: tuple[str, int, str] | None = None,
    on_progress: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DiagnosticsReport:
    """Connection test, test-transaction suite and printer test page, as one report.

    Args:
        endpoint: a logged-in link to the terminal.
        terminal_id: the terminal tested.
        lane_id: its lane.
        rounds: connection test round trips.
        transactions: run the test-transaction suite.
        printer: ``(url, columns, encoding)`` of the lane's receipt printer, or None to skip.
        on_progress: called after each round and step (for a progress bar).
        now: the aware current time.
    """
    report = DiagnosticsReport(terminal_id=terminal_id, lane_id=lane_id, started_at=now())
    report.connection = await connection_test(
        endpoint, rounds=rounds, on_round=on_progress, now=now
    )
    if transactions:
        steps, skew = await transaction_suite(endpoint, on_step=on_progress, now=now)
        report.transactions = steps
        report.clock_skew_ms = skew
    else:
        report.notes.append("test transactions not run (--no-transactions)")
    if report.clock_skew_ms is None:
        report.notes.append("clock skew unknown: it is measured from the test sale's time")
    if printer is None:
        report.notes.append("printer test page skipped: no receipt printer configured")
    else:
        url, columns, encoding = printer
        verdict = "PASS" if report.passed else "FAIL"
        lines = [f"终端 {terminal_id}  {lane_id}", f"{report.started_at:%Y-%m-%d %H:%M:%S} UTC"]
        lines.append(f"结果 {verdict}")
        report.printer = print_test_page(url, columns, encoding, lines)
        if on_progress is not None:
            on_progress("printer")
    report.finished_at = now()
    return report


_STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;
text-align:left}.pass{color:#060}.fail{color:#b00;font-weight:bold}.skip{color:#777}
"""


def _row(key: str, value: object) -> str:
    return f"<tr><th>{html.escape(key)}</th><td>{html.escape(_text(value))}</td></tr>"


def _text(value: object) -> str:
    return scrub("-" if value is None else str(value))


def render_html(report: DiagnosticsReport) -> str:
    """The report as one self-contained HTML page (inline style, every value escaped)."""
    verdict = "PASS" if report.passed else "FAIL"
    parts = [
        "<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'>",
        f"<title>{html.escape(f'诊断报告 {report.terminal_id}')}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>终端诊断报告 Terminal diagnostics: {html.escape(report.terminal_id)}</h1>",
        f"<p class='{verdict.lower()}'>{verdict}</p><table>",
        _row("lane", report.lane_id),
        _row("started", report.started_at),
        _row("finished", report.finished_at),
        _row("clock skew (ms)", report.clock_skew_ms),
        "</table>",
    ]
    if report.connection is not None:
        parts.append("<h2>连接测试 Connection test</h2><table>")
        for key, value in report.connection.model_dump(exclude={"health"}).items():
            parts.append(_row(key, value))
        health = report.connection.health
        if health is not None:
            parts.append(_row("health", health.model_dump_json(exclude_none=True)))
        parts.append("</table>")
    steps = [*report.transactions, *([report.printer] if report.printer else [])]
    if steps:
        parts.append("<h2>测试交易 Test transactions</h2><table>")
        parts.append("<tr><th>step</th><th>result</th><th>ms</th><th>detail</th></tr>")
        for step in steps:
            css = "skip" if step.skipped else "pass" if step.passed else "fail"
            label = "SKIPPED" if step.skipped else "PASS" if step.passed else "FAIL"
            parts.append(
                f"<tr><td>{html.escape(step.name)}</td><td class='{css}'>{label}</td>"
                f"<td>{step.duration_ms}</td><td>{html.escape(_text(step.detail))}</td></tr>"
            )
        parts.append("</table>")
    if report.notes:
        parts.append("<h2>备注 Notes</h2><ul>")
        parts.extend(f"<li>{html.escape(_text(note))}</li>" for note in report.notes)
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def save_report(report: DiagnosticsReport, directory: Path) -> tuple[Path, Path]:
    """Write ``diag-<terminal>-<time>.json`` and ``.html`` into ``directory``.

    Returns:
        The JSON and HTML paths.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"diag-{report.terminal_id}-{report.started_at:%Y%m%dT%H%M%SZ}"
    json_path, html_path = directory / f"{stem}.json", directory / f"{stem}.html"
    document = report.model_dump_json(indent=2)
    atomic_write(json_path, scrub(document).encode(), mode=0o644)
    atomic_write(html_path, render_html(report).encode(), mode=0o644)
    logger.info("diagnostics report saved: %s", json_path)
    return json_path, html_path
