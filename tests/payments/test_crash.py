"""SIGKILL at every step of a payment, in a separate process; a fresh process recovers from disk.

:mod:`tests.payments.crash_worker` runs each case: a forked lane process pays a sale through the
terminal simulator and sends itself SIGKILL at the chosen step — a cashier kill point (all 13,
20 runs each, varied baskets, card/WeChat/Alipay, part cash) or a terminal step (the power-loss
switch, 7 steps, 6 runs each; the terminal and acquirer live in the same process, their state on
disk, so they die with it). Another forked process then boots from disk, recovers, and checks
DESIGN.md section 5: every approved transaction on exactly one completed sale or reversed, no
completed sale without its payments, at most one acquirer charge per ``ecr_ref``, and the sales
equal to the acquirer's ledger. Cases are split over two worker processes (two cores)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shouyin.payments import KillPoint
from shouyin.terminal.faults import Step
from tests.payments.crash_worker import Case

RUNS_PER_POINT = 20
RUNS_PER_STEP = 6
SHARDS = 2
WORKER_TIMEOUT = 240.0  # real seconds per shard
REPO = Path(__file__).resolve().parents[2]

_LOST = (KillPoint.BEFORE_QUERY, KillPoint.AFTER_QUERY)
_REVERSE = (
    KillPoint.BEFORE_REVERSAL,
    KillPoint.DURING_REVERSAL,
    KillPoint.AFTER_REVERSAL,
    KillPoint.AFTER_REVERSAL_WRITE,
)
_TERMINAL_STEPS = (
    Step.REQUEST_RECEIVED,
    Step.CARD_READ,
    Step.BEFORE_ACQUIRER,
    Step.AFTER_ACQUIRER_APPROVAL,
    Step.AFTER_RECORD,
    Step.BEFORE_RESPONSE,
    Step.AFTER_RESPONSE,
)


def _scenario(point: KillPoint) -> str:
    if point in _LOST:
        return "lost"
    if point in _REVERSE:
        return "reverse"
    return "approve"


def _run_shards(tmp_path: Path, cases: list[Case]) -> dict[str, dict[str, object]]:
    """Run the cases in ``SHARDS`` worker processes at once; every process is reaped."""
    processes: list[subprocess.Popen[str]] = []
    try:
        for shard in range(SHARDS):
            listing = tmp_path / f"cases{shard}.json"
            listing.write_text(json.dumps([_row(c) for c in cases[shard::SHARDS]]))
            command = [
                sys.executable,
                "-m",
                "tests.payments.crash_worker",
                "--root",
                str(tmp_path / f"shard{shard}"),
                "--cases",
                str(listing),
            ]
            processes.append(
                subprocess.Popen(
                    command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
        results: dict[str, dict[str, object]] = {}
        for process in processes:
            out, err = process.communicate(timeout=WORKER_TIMEOUT)
            assert process.returncode == 0, err[-4000:]
            for line in out.splitlines():
                row = json.loads(line)
                results[row["case_id"]] = row
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def _row(case: Case) -> dict[str, object]:
    return {
        "case_id": case.case_id,
        "side": case.side,
        "point": case.point,
        "scenario": case.scenario,
        "seed": case.seed,
    }


def _assert_all_recovered(cases: list[Case], results: dict[str, dict[str, object]]) -> None:
    assert sorted(results) == sorted(c.case_id for c in cases)
    failed = {k: v for k, v in results.items() if not v["killed"] or v["error"] or v["problems"]}
    assert failed == {}


def test_cashier_killed_by_sigkill_at_every_kill_point_is_recovered_exactly_once(
    tmp_path: Path,
) -> None:
    cases = [
        Case(f"{point.value}-{run}", "cashier", point.value, _scenario(point), 1000 * i + run)
        for i, point in enumerate(KillPoint)
        for run in range(RUNS_PER_POINT)
    ]
    assert len(cases) >= 200
    _assert_all_recovered(cases, _run_shards(tmp_path, cases))


def test_terminal_power_loss_at_every_step_kills_the_process_and_is_recovered(
    tmp_path: Path,
) -> None:
    cases = [
        Case(f"{step.value}-{run}", "terminal", step.value, "approve", 5000 + 100 * i + run)
        for i, step in enumerate(_TERMINAL_STEPS)
        for run in range(RUNS_PER_STEP)
    ]
    _assert_all_recovered(cases, _run_shards(tmp_path, cases))
