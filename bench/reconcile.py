"""Reconciliation (对账) of 1,000,000 transactions: :func:`shouyin.payments.reconcile.reconcile`
against a pandas outer-merge baseline doing the same matching on the same data, in one run.

The data: one lane, one terminal, one acquirer; a mix of card and wallet payments and refunds,
with 0.1% missing on each side, 0.05% amount mismatches (at the acquirer) and a few state
mismatches (approved in the lane, reversed at the acquirer). The acquirer knows no ecr_ref (as
the real ledger), so lane and terminal meet by ecr_ref and the acquirer by batch + trace.

The baseline merges lane and terminal on ``ecr_ref`` (outer), then the result with the acquirer
on ``batch`` + ``trace`` (outer), and classifies rows with vectorised comparisons: the same
first-key matching, without the fallback passes (which favours pandas).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from pathlib import Path

from bench.common import Figure
from shouyin.payments.reconcile import Outcome, Record, reconcile

SECTION = "reconcile"
TRANSACTIONS = 1_000_000
KINDS = ("card", "card", "card", "wechat", "alipay", "unionpay")


def synthetic(
    count: int, seed: int = 20260314
) -> tuple[list[Record], list[Record], list[Record], dict[str, int]]:
    """``count`` transactions as the three sides record them, and the discrepancies planted."""
    rng = random.Random(seed)
    lane: list[Record] = []
    terminal: list[Record] = []
    acquirer: list[Record] = []
    planted = {"missing_lane": 0, "missing_terminal": 0, "missing_acquirer": 0, "amount": 0}
    planted["state"] = 0
    for n in range(count):
        ecr_ref = f"L01-20260314-{n:07d}"
        batch = f"{1 + n // 100_000:06d}"
        trace = f"{n % 100_000 + 1:06d}"
        rrn = f"{n:012d}"
        amount = rng.randrange(100, 50_000)
        kind = KINDS[n % len(KINDS)]
        operation = "refund" if n % 50 == 0 else "sale"
        record = Record(ecr_ref, batch, trace, rrn, amount, kind, "approved", operation)
        roll = rng.random()
        if roll < 0.001:
            planted["missing_lane"] += 1
        else:
            lane.append(record)
        if 0.001 <= roll < 0.002:
            planted["missing_terminal"] += 1
        else:
            terminal.append(record)
        if 0.002 <= roll < 0.003:
            planted["missing_acquirer"] += 1
            continue
        acq = record._replace(ecr_ref=None)
        if 0.003 <= roll < 0.0035:
            planted["amount"] += 1
            acq = acq._replace(amount=amount + 1)
        elif 0.0035 <= roll < 0.0036:
            planted["state"] += 1
            acq = acq._replace(state="reversed")
        acquirer.append(acq)
    # Each side in its own export order (lane and terminal by ecr_ref, the ledger by id).
    return lane, terminal, acquirer, planted


def pandas_baseline(
    lane: list[Record], terminal: list[Record], acquirer: list[Record]
) -> dict[str, int]:
    """The same matching with pandas outer merges; returns counts per outcome."""
    import pandas as pd

    columns = list(Record._fields)
    lf = pd.DataFrame.from_records(lane, columns=columns)
    tf = pd.DataFrame.from_records(terminal, columns=columns)
    af = pd.DataFrame.from_records(acquirer, columns=columns).drop(columns=["ecr_ref"])
    lt = lf.merge(tf, on="ecr_ref", how="outer", suffixes=("_l", "_t"), indicator="lt")
    lt["batch"] = lt["batch_t"].fillna(lt["batch_l"])
    lt["trace"] = lt["trace_t"].fillna(lt["trace_l"])
    full = lt.merge(af, on=["batch", "trace"], how="outer", indicator="lta")
    full = full.rename(columns={"amount": "amount_a", "state": "state_a"})
    present = full["lt"].eq("both") & full["lta"].eq("both")
    same_amount = full["amount_l"].eq(full["amount_t"]) & full["amount_t"].eq(full["amount_a"])
    same_state = full["state_l"].eq(full["state_t"]) & full["state_t"].eq(full["state_a"])
    matched = present & same_amount & same_state
    missing = ~present
    amount = present & ~same_amount
    state = present & same_amount & ~same_state
    return {
        "matched": int(matched.sum()),
        "missing": int(missing.sum()),
        "amount_mismatch": int(amount.sum()),
        "state_mismatch": int(state.sum()),
    }


def run(workdir: Path, args: argparse.Namespace) -> list[Figure]:
    """Generate the data, time both, check they agree, report seconds and the ratio."""
    del workdir
    count: int = getattr(args, "reconcile_transactions", None) or TRANSACTIONS
    lane, terminal, acquirer, planted = synthetic(count)
    # Same process, same data, the garbage collector in its default state for both (reconcile()
    # pauses it itself while it matches; that is part of the product, not of the benchmark).
    gc.collect()
    start = time.perf_counter()
    report = reconcile(lane, terminal, acquirer)
    ours = time.perf_counter() - start
    gc.collect()
    start = time.perf_counter()
    baseline = pandas_baseline(lane, terminal, acquirer)
    theirs = time.perf_counter() - start
    expected_missing = planted["missing_lane"] + planted["missing_terminal"]
    expected_missing += planted["missing_acquirer"]
    agree = (
        report.count(Outcome.MISSING) == expected_missing == baseline["missing"]
        and report.count(Outcome.AMOUNT_MISMATCH) == planted["amount"]
        and baseline["amount_mismatch"] == planted["amount"]
        and report.count(Outcome.STATE_MISMATCH) == planted["state"]
        and report.matched == baseline["matched"]
    )
    label = f"{count:,} txns"
    return [
        Figure(SECTION, f"reconcile() {label}", ours, "s", "< 3 s", ours < 3.0),
        Figure(SECTION, f"pandas merge baseline {label}", theirs, "s"),
        Figure(SECTION, "pandas time / ours", theirs / ours, "x", "> 1 (faster)", theirs > ours),
        Figure(
            SECTION, "discrepancies found", len(report.discrepancies), "rows", "= planted", agree
        ),
    ]
