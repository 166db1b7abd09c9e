"""Three-way reconciliation (对账): exact outcomes on a hand-made set, order independence and
totals (hypothesis), CSV round trips and the ``reconcile`` command."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from shouyin.payments.cli import payments_app
from shouyin.payments.reconcile import (
    APPROVED,
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
    read_report_csv,
    write_records_csv,
    write_report_csv,
)


def rec(
    ecr: str | None,
    trace: str | None,
    amount: int = 1000,
    *,
    rrn: str | None = None,
    state: str = APPROVED,
    kind: str = "card",
    batch: str | None = "000001",
    operation: str = "sale",
) -> Record:
    return Record(ecr, batch if trace else None, trace, rrn, amount, kind, state, operation)


def acq(trace: str, amount: int = 1000, **kw: object) -> Record:
    return rec(None, trace, amount, **kw)  # type: ignore[arg-type]


LANE = [
    rec("L-1", "000001", rrn="R1"),
    rec("L-2", "000002", rrn="R2"),
    rec("L-5", "000005", 2000, rrn="R5"),
    rec("L-6", "000006", 500, kind="wechat"),
    rec("L-7", "000007", 700),
    rec("L-7", "000007", 700),  # the lane booked it twice
    rec("L-9", None, 900, rrn="R9"),
    rec("L-10", None, 100, state="declined"),
    rec("L-11", "000011", 300, operation="refund"),
]
TERMINAL = [
    rec("L-1", "000001", rrn="R1"),
    rec("L-2", "000002", rrn="R2"),
    rec("L-4", "000004", 400, rrn="R4"),
    rec("L-5", "000005", 2000, rrn="R5"),
    rec("L-6", "000006", 500, kind="wechat"),
    rec("L-7", "000007", 700),
    rec("L-9", None, 900, rrn="R9"),
    rec("L-11", "000011", 300, operation="refund"),
]
ACQUIRER = [
    acq("000001", rrn="R1"),
    acq("000003", 333),  # the acquirer alone
    acq("000004", 400, rrn="R4"),
    acq("000005", 2001, rrn="R5"),
    acq("000006", 500, kind="wechat", state="reversed"),
    acq("000007", 700),
    rec(None, "000001", 900, rrn="R9", batch="000002"),  # found by rrn
    acq("000011", 300, operation="refund"),
]


def by_ref(report: ReconciliationReport) -> dict[str, Outcome]:
    return {
        row.ecr_ref or f"#{row.trace}": row.outcome
        for row in report.rows()
        if row.outcome is not Outcome.DUPLICATE
    }


def test_hand_made_set_gives_each_outcome_exactly() -> None:
    report = reconcile(LANE, TERMINAL, ACQUIRER)
    assert by_ref(report) == {
        "L-1": Outcome.MATCHED,
        "L-2": Outcome.MISSING,
        "#000003": Outcome.MISSING,
        "L-4": Outcome.MISSING,
        "L-5": Outcome.AMOUNT_MISMATCH,
        "L-6": Outcome.STATE_MISMATCH,
        "L-7": Outcome.MATCHED,  # the duplicate is its own row, below
        "L-9": Outcome.MATCHED,
        "L-10": Outcome.NO_MONEY,
        "L-11": Outcome.MATCHED,
    }
    assert report.matched == 4
    assert report.count(Outcome.DUPLICATE) == 1
    assert [r.ecr_ref for r in report.missing_on(Side.ACQUIRER)] == ["L-2"]
    assert [r.ecr_ref for r in report.missing_on(Side.LANE)] == [None, "L-4"]
    assert [r.ecr_ref for r in report.missing_on(Side.TERMINAL)] == [None]
    assert not report.balanced


def test_amount_mismatch_row_shows_each_sides_amount() -> None:
    report = reconcile(LANE, TERMINAL, ACQUIRER)
    (row,) = [r for r in report.discrepancies if r.outcome is Outcome.AMOUNT_MISMATCH]
    assert (row.lane_amount, row.terminal_amount, row.acquirer_amount) == (2000, 2000, 2001)
    assert (row.batch, row.trace, row.rrn) == ("000001", "000005", "R5")


def test_approved_in_lane_but_reversed_at_acquirer_is_a_state_mismatch() -> None:
    report = reconcile(LANE, TERMINAL, ACQUIRER)
    (row,) = [r for r in report.discrepancies if r.outcome is Outcome.STATE_MISMATCH]
    assert (row.lane_state, row.terminal_state, row.acquirer_state) == (
        "approved",
        "approved",
        "reversed",
    )
    assert row.kind == "wechat"


def test_totals_by_kind_count_each_sides_approved_money() -> None:
    report = reconcile(LANE, TERMINAL, ACQUIRER)
    card, wechat = report.totals
    assert card.kind == "card" and wechat.kind == "wechat"
    assert (card.lane.count, card.lane.amount) == (6, 1000 + 1000 + 2000 + 700 + 700 + 900)
    assert (card.lane.refund_count, card.lane.refund_amount) == (1, 300)
    assert (card.acquirer.count, card.acquirer.amount) == (6, 1000 + 333 + 400 + 2001 + 700 + 900)
    assert (wechat.lane.amount, wechat.acquirer.amount) == (500, 0)
    assert not card.balanced


def test_different_ecr_refs_never_pair_on_a_shared_trace() -> None:
    lane = [rec("A", "000001")]
    terminal = [rec("B", "000001")]
    report = reconcile(lane, terminal, [acq("000001")])
    assert sorted(r.outcome for r in report.rows()) == [Outcome.MISSING, Outcome.MISSING]


def test_all_three_agreeing_is_balanced() -> None:
    rows = [rec(f"E-{i}", f"{i:06d}", 100 + i) for i in range(1, 50)]
    report = reconcile(rows, list(reversed(rows)), [r._replace(ecr_ref=None) for r in rows])
    assert report.matched == 49 and report.balanced and report.discrepancies == []


# -- properties ----------------------------------------------------------------------------------

_refs = st.sampled_from([f"E{i}" for i in range(12)] + [None])
_traces = st.sampled_from([f"{i:06d}" for i in range(1, 10)] + [None])
records = st.builds(
    Record,
    ecr_ref=_refs,
    batch=st.sampled_from(["000001", "000002"]),
    trace=_traces,
    rrn=st.sampled_from(["R1", "R2", "R3", None]),
    amount=st.integers(1, 5),
    kind=st.sampled_from(["card", "wechat"]),
    state=st.sampled_from(["approved", "reversed"]),
    operation=st.sampled_from(["sale", "refund"]),
)
sides = st.lists(records, max_size=12)


def _direct_totals(rows: list[Record]) -> dict[str, tuple[int, int, int, int]]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        if r.state == APPROVED:
            slot = 2 if r.operation == "refund" else 0
            sums[r.kind][slot] += 1
            sums[r.kind][slot + 1] += r.amount
    return {k: (v[0], v[1], v[2], v[3]) for k, v in sums.items() if any(v)}


@settings(max_examples=150, deadline=None)
@given(sides, sides, sides, st.randoms(use_true_random=False))
def test_shuffled_inputs_give_the_same_report(
    lane: list[Record], terminal: list[Record], acquirer: list[Record], rnd: random.Random
) -> None:
    first = reconcile(lane, terminal, acquirer)
    shuffled = [list(lane), list(terminal), list(acquirer)]
    for side in shuffled:
        rnd.shuffle(side)
    second = reconcile(*shuffled)
    assert list(first.rows()) == list(second.rows())
    assert first.totals == second.totals


@settings(max_examples=150, deadline=None)
@given(sides, sides, sides)
def test_totals_are_matched_plus_discrepancies_and_every_record_is_in_one_row(
    lane: list[Record], terminal: list[Record], acquirer: list[Record]
) -> None:
    report = reconcile(lane, terminal, acquirer)
    for side, inputs in ((Side.LANE, lane), (Side.TERMINAL, terminal), (Side.ACQUIRER, acquirer)):
        reported = {
            kt.kind: (s.count, s.amount, s.refund_count, s.refund_amount)
            for kt in report.totals
            if any(vars(s := kt.side(side)).values())
        }
        assert reported == _direct_totals(inputs)
    rows = list(report.rows())
    assert sum(r.lane_amount is not None for r in rows) == len(lane)
    assert sum(r.terminal_amount is not None for r in rows) == len(terminal)
    assert sum(r.acquirer_amount is not None for r in rows) == len(acquirer)
    assert report.matched + len(report.discrepancies) == len(rows)


# -- files ---------------------------------------------------------------------------------------


def test_report_csv_round_trip(tmp_path: Path) -> None:
    report = reconcile(LANE, TERMINAL, ACQUIRER)
    path = tmp_path / "report.csv"
    assert write_report_csv(path, report) == len(list(report.rows()))
    assert read_report_csv(path) == list(report.rows())


def test_records_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lane.csv"
    write_records_csv(path, LANE)
    assert read_records_csv(path) == LANE


def test_a_bad_amount_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    write_records_csv(path, LANE[:2])
    path.write_text(path.read_text().replace(",1000,", ",10.00,", 1))
    with pytest.raises(ReconcileInputError, match=r"bad\.csv: line 2: amount must be whole fen"):
        read_records_csv(path)


def test_a_file_without_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ReconcileInputError, match="line 1: expected the columns"):
        read_records_csv(path)


def _ledger_entry(
    trace: int, amount: int, kind: str = "sale", status: str = "approved"
) -> dict[str, object]:
    return {
        "id": trace,
        "terminal_id": "10000001",
        "merchant_id": "898310048160001",
        "batch": 1,
        "trace": trace,
        "kind": kind,
        "amount": amount,
        "status": status,
        "response_code": "00",
        "rrn": f"{trace:012d}",
        "auth_code": "123456",
        "masked_pan": "622848******1234",
        "wallet": None,
        "wallet_status": None,
        "wallet_order_id": None,
        "original_id": None,
        "time": "2026-03-14T10:00:00+08:00",
    }


def test_ledger_json_from_the_control_channel_keeps_sales_and_drops_bookkeeping(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.json"
    entries = [_ledger_entry(1, 1000), _ledger_entry(2, 500, "reversal"), _ledger_entry(3, 300)]
    entries[2]["status"] = "settled"
    path.write_text(json.dumps({"ok": True, "entries": entries}))
    assert read_ledger_json(path) == [
        Record(None, "000001", "000001", "000000000001", 1000, "card", "approved", "sale"),
        Record(None, "000001", "000003", "000000000003", 300, "card", "approved", "sale"),
    ]


def test_a_malformed_ledger_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    entry = _ledger_entry(1, 1000)
    entry["amount"] = "lots"
    path.write_text(json.dumps([entry]))
    with pytest.raises(ReconcileInputError, match="entry 1: amount"):
        read_ledger_json(path)


# -- command -------------------------------------------------------------------------------------


def _write_sides(tmp_path: Path) -> list[str]:
    paths = []
    for name, rows in (("lane", LANE), ("terminal", TERMINAL), ("acquirer", ACQUIRER)):
        path = tmp_path / f"{name}.csv"
        write_records_csv(path, rows)
        paths += [f"--{name}", str(path)]
    return paths


def test_reconcile_command_prints_the_summary_and_exports_every_row(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        payments_app, ["reconcile", *_write_sides(tmp_path), "--csv", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "对账结果 Reconciliation" in result.output
    assert "金额不符 amount mismatch" in result.output
    assert "对账不平 NOT balanced" in result.output
    assert len(read_report_csv(out)) == len(list(reconcile(LANE, TERMINAL, ACQUIRER).rows()))


def test_reconcile_command_refuses_a_bad_file_clearly(tmp_path: Path) -> None:
    args = _write_sides(tmp_path)
    (tmp_path / "acquirer.csv").write_text("nonsense\n")
    result = CliRunner().invoke(payments_app, ["reconcile", *args])
    assert result.exit_code == 1
    assert "acquirer.csv: line 1: expected the columns" in result.output


def test_reconcile_command_names_a_missing_file(tmp_path: Path) -> None:
    args = _write_sides(tmp_path)
    args[args.index("--terminal") + 1] = str(tmp_path / "nowhere.csv")
    result = CliRunner().invoke(payments_app, ["reconcile", *args])
    assert result.exit_code == 1
    assert "nowhere.csv: no such file or directory" in result.output
