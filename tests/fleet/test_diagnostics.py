"""Diagnostics against the real simulator over a real link (in-process, virtual time)."""

from __future__ import annotations

import json
from pathlib import Path

from shouyin.fleet.diagnostics import (
    SUITE_STEPS,
    DiagnosticsReport,
    StepResult,
    connection_test,
    percentile,
    transaction_suite,
)
from shouyin.fleet.diagnostics_report import (
    print_test_page,
    render_html,
    run_diagnostics,
    save_report,
)
from shouyin.link.values import TransactionKind, TransactionState
from tests.payments import TerminalRig
from tests.terminal import LoopClock, run_virtual

PAN = "6222021234567890128"


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (
        50.0,
        95.0,
        100.0,
    )
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0


def test_connection_test_measures_every_round_trip(tmp_path: Path) -> None:
    async def main() -> None:
        async with TerminalRig(tmp_path) as rig:
            report = await connection_test(rig.cashier, rounds=12, now=LoopClock().now)
        assert (report.rounds, report.answered, report.loss_percent) == (12, 12, 0.0)
        assert report.latency_p50_ms is not None and report.latency_max_ms is not None
        assert report.latency_p50_ms <= report.latency_max_ms
        assert report.reconnects == 0
        assert report.acquirer_reachable is True
        assert report.health is not None and report.health.firmware == "SIM-1.0.0"

    run_virtual(main)


def test_the_suite_passes_and_leaves_the_batch_net_unchanged(tmp_path: Path) -> None:
    async def main() -> None:
        async with TerminalRig(tmp_path) as rig:
            batch = rig.app.state.batch
            steps, skew = await transaction_suite(
                rig.cashier, prefix="DIAG-T1", now=LoopClock().now
            )
            entries = {e.ecr_ref: e for e in rig.app.state.entries()}
            assert rig.app.state.batch == batch  # "settlement" read totals, closed nothing
        assert [(s.name, s.passed) for s in steps] == [(name, True) for name in SUITE_STEPS]
        assert skew is not None and abs(skew) < 1000
        assert entries["DIAG-T1-SALE"].state is TransactionState.VOIDED
        assert entries["DIAG-T1-QR"].kind is TransactionKind.PAYMENT
        assert entries["DIAG-T1-REFUND"].kind is TransactionKind.REFUND
        assert all(ref.startswith("DIAG-") for ref in entries)

    run_virtual(main)


def test_a_failing_step_is_reported_and_the_suite_goes_on(tmp_path: Path) -> None:
    async def main() -> None:
        async with TerminalRig(tmp_path, lose_answers=1) as rig:
            steps, _ = await transaction_suite(rig.cashier, prefix="DIAG-T2", timeout=30)
        by_name = {s.name: s for s in steps}
        assert not by_name["sale"].passed
        assert "LinkLost" in by_name["sale"].detail or "Timeout" in by_name["sale"].detail
        assert by_name["qr_micropay"].passed  # the link came back; later steps still ran
        assert len(steps) == len(SUITE_STEPS)

    run_virtual(main)


def test_a_whole_run_is_saved_as_json_and_escaped_html(tmp_path: Path) -> None:
    async def main() -> DiagnosticsReport:
        async with TerminalRig(tmp_path / "rig") as rig:
            return await run_diagnostics(
                rig.cashier, "10000001", lane_id="L01", rounds=3, now=LoopClock().now
            )

    report = run_virtual(main)
    assert report.passed
    assert "printer test page skipped: no receipt printer configured" in report.notes
    report.notes.append(f"<script>alert(1)</script> card {PAN}")
    json_path, html_path = save_report(report, tmp_path / "out")
    page = html_path.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert PAN not in page and PAN not in json_path.read_text(encoding="utf-8")
    assert "http" not in page.replace("https://", "")  # self-contained: no external resources
    loaded = DiagnosticsReport.model_validate(json.loads(json_path.read_text(encoding="utf-8")))
    assert [s.name for s in loaded.transactions] == list(SUITE_STEPS)
    assert loaded.connection is not None and loaded.connection.answered == 3


def test_a_failed_step_makes_the_report_fail() -> None:
    report = DiagnosticsReport(terminal_id="10000001", started_at=LoopClock().now())
    report.transactions = [StepResult(name="sale", passed=False, duration_ms=1.0)]
    assert not report.passed
    assert "FAIL" in render_html(report)


def test_the_printer_test_page_goes_through_the_devices_printer_api() -> None:
    step = print_test_page("dummy://", 32, "gb18030", ["终端 10000001", "结果 PASS"])
    assert step.passed, step.detail
    broken = print_test_page("tcp://127.0.0.1:1", 32, "gb18030", ["x"])
    assert not broken.passed
