"""Diagnostics against the real simulator over a real link (in-process, virtual time)."""

from __future__ import annotations

import asyncio
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
from shouyin.link import Connection, Role
from shouyin.link.aio import LinkEndpoint
from shouyin.link.messages import PaymentRequest
from shouyin.link.peer import Responder, serve
from shouyin.link.transport import memory_pipe
from shouyin.link.values import PaymentKind, Result, TransactionKind, TransactionState
from shouyin.terminal.cards import ReaderRule
from shouyin.terminal.settlement import batch_totals
from shouyin.terminal.state import TerminalState
from shouyin.terminal.test_mode import TEST_DIR
from tests.link.helpers import (
    ECR_ID,
    TERMINAL_ID,
    ecr_capabilities,
    long_term_key,
    poi_capabilities,
)
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


def test_the_suite_runs_in_test_mode_and_leaves_the_real_money_exactly_as_it_was(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with TerminalRig(tmp_path) as rig:
            real = PaymentRequest(
                service_id=rig.cashier.new_service_id(),
                ecr_ref="REAL-1",
                amount=1234,
                kind=PaymentKind.CARD,
            )
            assert (await rig.cashier.request(real, timeout=120)).result is Result.SUCCESS
            state = rig.app.state
            batch, journal = state.batch, state.entries()
            totals = batch_totals(state.entries(batch))
            ledger, calls = list(rig.acquirer.ledger), list(rig.acquirer.calls)
            printouts, reversals = state.printouts(), state.reversals()

            steps, skew = await transaction_suite(
                rig.cashier, prefix="DIAG-T1", now=LoopClock().now
            )

            assert [(s.name, s.passed) for s in steps] == [(name, True) for name in SUITE_STEPS]
            assert skew is not None and abs(skew) < 1000
            assert (state.batch, state.entries()) == (batch, journal)
            assert batch_totals(state.entries(batch)) == totals
            assert (rig.acquirer.ledger, rig.acquirer.calls) == (ledger, calls)
            assert (state.printouts(), state.reversals()) == (printouts, reversals)
            assert not rig.app.test_mode.active
        by_name = {s.name: s for s in steps}
        assert "balanced: 1 sale(s) 1 fen, 1 refund(s) 1 fen" in by_name["settlement"].detail
        assert "real batch 000001 and its totals unchanged" in by_name["test_mode_end"].detail
        test = TerminalState(tmp_path / "terminal" / TEST_DIR)
        entries = {e.ecr_ref: e for e in test.entries()}
        assert entries["DIAG-T1-SALE"].state is TransactionState.VOIDED
        assert entries["DIAG-T1-QR"].kind is TransactionKind.PAYMENT
        assert entries["DIAG-T1-REFUND"].kind is TransactionKind.REFUND
        assert test.batch == "000002"  # the test batch was settled and closed
        test.close()

    run_virtual(main)


def test_a_failing_step_is_reported_and_test_mode_is_still_left(tmp_path: Path) -> None:
    async def main() -> None:
        async with TerminalRig(tmp_path, lose_answers=1) as rig:
            steps, _ = await transaction_suite(rig.cashier, prefix="DIAG-T2", timeout=30)
            assert not rig.app.test_mode.active
            assert rig.acquirer.ledger == []
        by_name = {s.name: s for s in steps}
        assert not by_name["sale"].passed
        assert "LinkLost" in by_name["sale"].detail or "Timeout" in by_name["sale"].detail
        assert by_name["qr_micropay"].passed  # the link came back; later steps still ran
        assert by_name["test_mode_end"].passed
        assert [s.name for s in steps] == list(SUITE_STEPS)

    run_virtual(main)


def test_a_declined_test_sale_fails_its_step_and_the_rest_still_runs(tmp_path: Path) -> None:
    async def main() -> None:
        rules = (ReaderRule(card="decline", ecr_ref="DIAG-T3-SALE"),)
        async with TerminalRig(tmp_path, rules=rules) as rig:
            steps, _ = await transaction_suite(rig.cashier, prefix="DIAG-T3", timeout=30)
            assert not rig.app.test_mode.active
        by_name = {s.name: s for s in steps}
        assert (by_name["sale"].passed, by_name["status_query"].passed) == (False, False)
        assert "declined" in by_name["sale"].detail
        assert by_name["qr_micropay"].passed and by_name["settlement"].passed
        assert by_name["test_mode_end"].passed

    run_virtual(main)


def test_a_terminal_without_test_mode_gets_no_test_transaction_at_all(tmp_path: Path) -> None:
    """The library's minimal peer answers every Admin request with a bare success, as a
    terminal that knows nothing of test mode might: the suite must not send it a single
    payment, since it would be real."""

    async def main() -> None:
        poi = LinkEndpoint(
            Connection(Role.POI, TERMINAL_ID, poi_capabilities(), long_term_key=long_term_key())
        )
        cashier = LinkEndpoint(
            Connection(Role.ECR, ECR_ID, ecr_capabilities(), long_term_key=long_term_key())
        )
        responder = Responder()
        serving = asyncio.ensure_future(serve(poi, responder))
        a, b = memory_pipe()
        poi.attach(b)
        cashier.attach(a)
        try:
            await cashier.wait_ready(30)
            steps, _ = await transaction_suite(cashier, prefix="DIAG-T4", timeout=5)
        finally:
            serving.cancel()
            await cashier.close()
            await poi.close()
        assert responder.transactions == {}  # not one payment, void or refund reached it
        by_name = {s.name: s for s in steps}
        assert not by_name["test_mode_start"].passed
        assert "did not confirm test mode" in by_name["test_mode_start"].detail
        assert all(by_name[n].skipped for n in SUITE_STEPS[1:-1])
        report = DiagnosticsReport(terminal_id="10000001", started_at=LoopClock().now())
        report.transactions = steps
        assert not report.passed

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
    assert all(s.passed for s in loaded.transactions)
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
