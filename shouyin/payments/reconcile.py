"""Three-way reconciliation (对账): the lane journal, the terminal batch and the acquirer ledger.

Pure: the inputs are three sequences of :class:`Record` (plain named tuples, built by
:mod:`shouyin.payments.reconcile_io` or by tests), the output a :class:`ReconciliationReport`.

Matching
--------
Each side is first cleared of **duplicates**: two records of one side with the same identity
(``ecr_ref`` when known, else ``batch`` + ``trace``, else ``rrn``) are one transaction booked
twice; the smallest (by :func:`sort_key`) stands, the others are reported as ``duplicate``.

Then the lane is paired with the terminal, and each resulting group (lane + terminal, lane alone,
terminal alone) with the acquirer, each time in passes over what is still unpaired: by
``ecr_ref``, then by ``batch`` + ``trace``, then by ``rrn``. A fallback key never pairs two
records whose ``ecr_ref`` are both known and differ (two different attempts). When several
groups claim one record, the smallest group (by :func:`sort_key`) gets it, so the report does not
depend on the order of the inputs.

The first pass touches every record; it is a dict comprehension and a list of lookups (C
speed). The later passes only see what the first left over, which is small in practice.

Outcome of a group (the first that applies):
``missing``: absent on a side while present ones hold money (``approved``);
``amount_mismatch``: present sides disagree on the amount;
``state_mismatch``: present sides disagree on the state (e.g. approved in the lane, reversed at
the acquirer), or on the payment kind or the operation (a sale against a refund);
``no_money``: absent on a side, but nothing was charged where it is present (declined...);
``matched``: on all three sides, same amount and state.

Totals by payment kind count each side's ``approved`` records (sales and refunds apart), so that
for every side: total = matched + discrepancies (a property the tests check).
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import compress, repeat
from operator import and_, eq, itemgetter, ne, not_
from typing import Final, NamedTuple

__all__ = [
    "ABSENT",
    "APPROVED",
    "KindTotals",
    "Outcome",
    "ReconciliationReport",
    "Record",
    "Row",
    "Side",
    "SideTotals",
    "reconcile",
    "sort_key",
]

logger = logging.getLogger(__name__)

APPROVED = "approved"
"""The normalised state of a record that moved money."""
REFUND = "refund"
"""The ``operation`` of a refund (anything else is a sale)."""


class Side(StrEnum):
    """The three records."""

    LANE = "lane"  # 收银流水
    TERMINAL = "terminal"  # 终端批次
    ACQUIRER = "acquirer"  # 收单流水


class Outcome(StrEnum):
    """How a row reconciled (see the module docstring)."""

    MATCHED = "matched"
    MISSING = "missing"
    AMOUNT_MISMATCH = "amount_mismatch"
    STATE_MISMATCH = "state_mismatch"
    NO_MONEY = "no_money"
    DUPLICATE = "duplicate"


class Record(NamedTuple):
    """One transaction as one side records it (normalised by the loader).

    Attributes:
        ecr_ref: the lane's id of the attempt, where the side knows it.
        batch: six-digit batch number, or None.
        trace: six-digit trace number, or None.
        rrn: the acquirer's reference, or None.
        amount: fen.
        kind: payment kind label: ``card``, ``wechat``, ``alipay``, ``unionpay`` or ``qr``.
        state: ``approved``, ``declined``, ``voided``, ``reversed``, ``failed``, ``unknown``.
        operation: ``sale`` or ``refund``.
    """

    ecr_ref: str | None
    batch: str | None
    trace: str | None
    rrn: str | None
    amount: int
    kind: str
    state: str
    operation: str = "sale"


class Row(NamedTuple):
    """One line of the report: a transaction across the three sides (None where absent)."""

    outcome: Outcome
    kind: str
    operation: str
    ecr_ref: str | None
    batch: str | None
    trace: str | None
    rrn: str | None
    lane_amount: int | None
    terminal_amount: int | None
    acquirer_amount: int | None
    lane_state: str | None
    terminal_state: str | None
    acquirer_state: str | None


def sort_key(record: Record) -> tuple[str, str, str, str, int, str, str, str]:
    """A total order on records (None sorts as the empty string)."""
    return (
        record[0] or "",
        record[1] or "",
        record[2] or "",
        record[3] or "",
        record[4],
        record[5],
        record[6],
        record[7],
    )


def _row_key(row: Row) -> tuple[str, str, str, str, str, str, str, str]:
    # Every field takes part: rows equal but for one field must still sort the same way
    # whatever order the inputs came in (a sale and a refund sharing a trace, say).
    return (
        row.ecr_ref or "",
        row.batch or "",
        row.trace or "",
        row.rrn or "",
        row.outcome.value,
        row.kind,
        row.operation,
        repr(row[7:]),
    )


@dataclass
class SideTotals:
    """Approved sales and refunds of one side for one payment kind (fen)."""

    count: int = 0
    amount: int = 0
    refund_count: int = 0
    refund_amount: int = 0

    def add(self, record: Record, times: int = 1, amount: int | None = None) -> None:
        """Count ``record`` if it moved money (``times`` records of ``amount`` fen in all)."""
        if record[6] != APPROVED:
            return
        fen = record[4] if amount is None else amount
        if record[7] == REFUND:
            self.refund_count += times
            self.refund_amount += fen
        else:
            self.count += times
            self.amount += fen


@dataclass
class KindTotals:
    """Totals of one payment kind: each side's, and how many rows matched or did not."""

    kind: str
    lane: SideTotals = field(default_factory=SideTotals)
    terminal: SideTotals = field(default_factory=SideTotals)
    acquirer: SideTotals = field(default_factory=SideTotals)
    matched: int = 0
    discrepancies: int = 0

    def side(self, side: Side) -> SideTotals:
        """One side's totals."""
        if side is Side.LANE:
            return self.lane
        return self.terminal if side is Side.TERMINAL else self.acquirer

    @property
    def balanced(self) -> bool:
        """The three sides agree on this kind."""
        return self.lane == self.terminal == self.acquirer


_ECR: Final = itemgetter(0)
_BATCH: Final = itemgetter(1)
_TRACE: Final = itemgetter(2)
_RRN: Final = itemgetter(3)
_AMOUNT: Final = itemgetter(4)
_CORE: Final = itemgetter(4, 5, 6, 7)  # amount, kind, state, operation

ABSENT: Final = Record(None, None, None, None, -1, "", "", "")
"""Stands for "no record" in the aligned lists (index ``-1``: appended to a copy of each side)."""

Index = list[int]
"""Record positions, ``-1`` where a side has no record."""


@dataclass
class ReconciliationReport:
    """The result of :func:`reconcile`.

    Attributes:
        lane, terminal, acquirer: the inputs (rows refer to them).
        matched_index: parallel positions (lane, terminal, acquirer) of the matched
            transactions, kept as indices because there may be millions.
        discrepancies: every other row (missing, mismatched, no money, duplicate), sorted.
        totals: per payment kind, sorted by kind.
    """

    lane: Sequence[Record]
    terminal: Sequence[Record]
    acquirer: Sequence[Record]
    matched_index: tuple[Index, Index, Index]
    discrepancies: list[Row]
    totals: list[KindTotals]

    @property
    def matched(self) -> int:
        """How many transactions matched on all three sides."""
        return len(self.matched_index[0])

    def count(self, outcome: Outcome) -> int:
        """How many rows have ``outcome``."""
        if outcome is Outcome.MATCHED:
            return self.matched
        return sum(1 for row in self.discrepancies if row.outcome is outcome)

    def missing_on(self, side: Side) -> list[Row]:
        """The ``missing`` rows absent on ``side``."""
        slot = {Side.LANE: 7, Side.TERMINAL: 8, Side.ACQUIRER: 9}[side]
        return [r for r in self.discrepancies if r.outcome is Outcome.MISSING and r[slot] is None]

    @property
    def balanced(self) -> bool:
        """Nothing but matched rows (and rows where no money moved)."""
        return all(row.outcome is Outcome.NO_MONEY for row in self.discrepancies)

    def matched_rows(self) -> list[Row]:
        """The matched transactions as rows, sorted (built on demand)."""
        lane, terminal, acquirer = self.lane, self.terminal, self.acquirer
        rows = [
            _row(Outcome.MATCHED, lane[i], terminal[j], acquirer[k])
            for i, j, k in zip(*self.matched_index, strict=True)
        ]
        rows.sort(key=_row_key)
        return rows

    def rows(self) -> Iterator[Row]:
        """Every row: the matched ones, then the discrepancies, each part sorted."""
        yield from self.matched_rows()
        yield from self.discrepancies


def _row(outcome: Outcome, lane: Record | None, term: Record | None, acq: Record | None) -> Row:
    first = lane or term or acq
    assert first is not None  # a group is never empty
    refs = (term, lane, acq)  # the terminal assigned trace and batch: its values come first
    return Row(
        outcome,
        first[5],
        first[7],
        next((r[0] for r in (lane, term, acq) if r is not None and r[0] is not None), None),
        next((r[1] for r in refs if r is not None and r[1] is not None), None),
        next((r[2] for r in refs if r is not None and r[2] is not None), None),
        next((r[3] for r in (acq, term, lane) if r is not None and r[3] is not None), None),
        lane[4] if lane is not None else None,
        term[4] if term is not None else None,
        acq[4] if acq is not None else None,
        lane[6] if lane is not None else None,
        term[6] if term is not None else None,
        acq[6] if acq is not None else None,
    )


def _outcome(lane: Record | None, term: Record | None, acq: Record | None) -> Outcome:
    present = [r for r in (lane, term, acq) if r is not None]
    if len(present) < 3 and any(r[6] == APPROVED for r in present):
        return Outcome.MISSING
    if len({r[4] for r in present}) > 1:
        outcome = Outcome.AMOUNT_MISMATCH
    elif len({(r[5], r[6], r[7]) for r in present}) > 1:
        outcome = Outcome.STATE_MISMATCH
    else:
        outcome = Outcome.MATCHED if len(present) == 3 else Outcome.NO_MONEY
    return outcome


_EMPTY: Final[dict[str, int]] = {}
_Idx = dict[str, int] | dict[str | None, dict[str, int]]


def _column(pass_no: int) -> Callable[[Record], str | None]:
    return _ECR if pass_no == 0 else _RRN


def _runs(batches: list[str | None]) -> list[tuple[str | None, int, int]] | None:
    """``(batch, start, end)`` of each run of equal batch numbers, or None when there are so
    many runs that a plain loop is cheaper. Found at C speed (one comparison per record)."""
    if not batches:
        return []
    starts = [0, *compress(range(1, len(batches)), map(ne, batches[1:], batches[:-1]))]
    if len(starts) > 64 + len(batches) // 1000:
        return None
    ends = [*starts[1:], len(batches)]
    return [(batches[a], a, b) for a, b in zip(starts, ends, strict=True)]


def _count_keyed(keys: list[str | None]) -> int:
    """How many keys are set (``all`` tests truth at C speed; keys are never empty strings)."""
    return len(keys) if all(keys) else len(keys) - keys.count(None)


def _build(
    rights: Sequence[Record],
    available: Sequence[int],
    pass_no: int,
    keys: list[str | None] | None = None,
) -> tuple[_Idx, bool]:
    """The index of a pass over the available right records, and whether keys were unique.

    Pass 0 (ecr_ref) and 2 (rrn) map the key to the position; pass 1 maps batch, then trace:
    a tuple key per record would cost more than all the rest (it allocates a million
    objects). When keys are shared, the last occurrence wins here; :func:`_index` rebuilds.
    """
    whole = isinstance(available, range) and len(available) == len(rights)
    chosen = rights if whole else [rights[j] for j in available]
    if pass_no != 1:
        if keys is None or not whole:
            keys = list(map(_column(pass_no), chosen))
        flat = dict(zip(keys, available, strict=True))
        flat.pop(None, None)
        return flat, len(flat) == _count_keyed(keys)  # type: ignore[return-value]
    traces = list(map(_TRACE, chosen))
    batches = list(map(_BATCH, chosen))
    keyed = _count_keyed(traces)
    if keyed < len(traces):  # keep only the records that have a trace
        kept = [i for i, t in enumerate(traces) if t is not None]
        traces = [traces[i] for i in kept]
        batches = [batches[i] for i in kept]
        available = [available[i] for i in kept]
    nested: dict[str | None, dict[str, int]] = {}
    runs = _runs(batches)
    if runs is not None:  # batches come in runs (a ledger in time order): one dict per run
        for batch, start, end in runs:
            part = nested.get(batch)
            if part is None:
                part = nested[batch] = {}
            part.update(zip(traces[start:end], available[start:end], strict=True))
    else:
        for batch, trace, j in zip(batches, traces, available, strict=True):
            part = nested.get(batch)
            if part is None:
                part = nested[batch] = {}
            part[trace] = j
    return nested, sum(map(len, nested.values())) == keyed


def _index(rights: Sequence[Record], available: Sequence[int], pass_no: int) -> _Idx:
    """:func:`_build`, with shared keys given to the smallest record (order-independent)."""
    index, unique = _build(rights, available, pass_no)
    if unique:
        return index
    ordered = sorted(available, key=lambda j: sort_key(rights[j]))
    index, _unique = _build(rights, ordered, pass_no)
    return index


def _lookup(index: _Idx, records: Sequence[Record], pass_no: int) -> Index:
    """Each record's position in ``index`` (``-1``: none)."""
    if pass_no != 1:
        flat: dict[str, int] = index  # type: ignore[assignment]
        return list(map(flat.get, map(_column(pass_no), records), repeat(-1)))  # type: ignore[arg-type]
    nested: dict[str | None, dict[str, int]] = index  # type: ignore[assignment]
    if len(nested) == 1:
        ((batch, part),) = nested.items()
        single = list(map(part.get, map(_TRACE, records), repeat(-1)))
        if any(map(ne, map(_BATCH, records), repeat(batch))):
            single = [f if r[1] == batch else -1 for f, r in zip(single, records, strict=True)]
        return single
    batches = list(map(_BATCH, records))
    runs = _runs(batches)
    if runs is None:
        get = nested.get
        return [get(r[1], _EMPTY).get(r[2], -1) for r in records]  # type: ignore[arg-type]
    traces = list(map(_TRACE, records))
    found: Index = []
    for batch, start, end in runs:
        part = nested.get(batch, _EMPTY)
        found += map(part.get, traces[start:end], repeat(-1))
    return found


def _identity_index(
    records: Sequence[Record], *, left: bool
) -> tuple[int, _Idx | None, bool] | None:
    """Whether the side's identities are unique, when every record has the same kind of
    identity (all an ecr_ref; or none an ecr_ref and all a trace), with the index of that
    pass (not for the left side of a pairing, which needs none); None otherwise."""
    whole = range(len(records))
    if not any(map(_ECR, records)):  # no ecr_ref at all (an acquirer): batch + trace
        if all(map(_TRACE, records)):
            return (1, *_build(records, whole, 1))
        return None
    refs = list(map(_ECR, records))
    if all(refs):
        if left:
            return 0, None, len(set(refs)) == len(refs)
        return (0, *_build(records, whole, 0, refs))
    return None


def _dedupe(
    records: Sequence[Record], *, left: bool = False
) -> tuple[Sequence[int], list[int], tuple[int, _Idx] | None]:
    """Positions kept, positions that duplicate a kept record (see the module docstring), and
    the identity index when it can serve the first matching pass."""
    known = _identity_index(records, left=left)
    if known is not None and known[2]:
        prebuilt = (known[0], known[1]) if known[1] is not None else None
        return range(len(records)), [], prebuilt
    idents = [
        r[0] if r[0] is not None else ((r[1], r[2]) if r[2] is not None else r[3]) for r in records
    ]
    counts = Counter(i for i in idents if i is not None)
    winners: dict[object, int] = {}
    duplicates: list[int] = []
    for index, ident in enumerate(idents):
        if ident is None or counts[ident] == 1:
            continue
        best = winners.get(ident)
        if best is None:
            winners[ident] = index
        elif sort_key(records[index]) < sort_key(records[best]):
            duplicates.append(best)
            winners[ident] = index
        else:
            duplicates.append(index)
    dropped = set(duplicates)
    return [i for i in range(len(records)) if i not in dropped], sorted(duplicates), None


def _pair(
    lefts: Sequence[Record],
    rights: Sequence[Record],
    available: Sequence[int],
    prebuilt: tuple[int, _Idx] | None = None,
) -> tuple[Index, list[int]]:
    """Pair each left record with at most one right record, pass by pass.

    Args:
        lefts: the left side's records (or a group's keys).
        rights: the right side's records.
        available: the right positions that may be paired.
        prebuilt: (pass, index) already built over all of ``available``.

    Returns:
        For each left the paired right position (``-1``: none), and the right positions left.
    """
    hits: Index = [-1] * len(lefts)
    open_lefts: Sequence[int] = range(len(lefts))
    for pass_no in range(3):
        if not open_lefts or not available:
            break
        if prebuilt is not None and prebuilt[0] == pass_no:
            index = prebuilt[1]
        elif prebuilt is not None and pass_no < prebuilt[0]:
            continue  # the side has no such key at all
        else:
            index = _index(rights, available, pass_no)
        prebuilt = None
        if not index:
            continue
        whole = isinstance(open_lefts, range) and len(open_lefts) == len(lefts)
        found = _lookup(index, lefts if whole else [lefts[i] for i in open_lefts], pass_no)
        distinct = set(found)
        distinct.discard(-1)
        hit_count = len(found) - found.count(-1)
        refs_can_conflict = pass_no > 0 and any(map(_ECR, (rights[j] for j in distinct)))
        if not refs_can_conflict and len(distinct) == hit_count:  # the usual case
            hits = _assign(hits, open_lefts, found)
            taken = distinct
        else:
            taken = _settle_claims(lefts, rights, open_lefts, found, hits)
        if taken:
            open_lefts = _still_open(hits, open_lefts)
            # What is left is usually small: set arithmetic at C speed, then sort that.
            available = sorted(set(available).difference(taken))
    return hits, list(available)


def _assign(hits: Index, open_lefts: Sequence[int], found: Index) -> Index:
    """``hits`` with the pass's finds written in (the finds themselves on the first pass)."""
    if isinstance(open_lefts, range) and len(open_lefts) == len(hits):
        return found
    for i, hit in zip(open_lefts, found, strict=True):
        hits[i] = hit
    return hits


def _still_open(hits: Index, open_lefts: Sequence[int]) -> list[int]:
    """The lefts still unpaired."""
    if isinstance(open_lefts, range) and len(open_lefts) == len(hits):
        return list(compress(open_lefts, map(eq, hits, repeat(-1))))
    return [i for i in open_lefts if hits[i] < 0]


def _settle_claims(
    lefts: Sequence[Record],
    rights: Sequence[Record],
    open_lefts: Sequence[int],
    found: Index,
    hits: Index,
) -> set[int]:
    """The slow path of :func:`_pair`: refuse pairs whose ecr_refs differ, and give a right
    record claimed by several lefts to the smallest; return the right positions taken."""
    claims: dict[int, list[int]] = {}
    for i, j in zip(open_lefts, found, strict=True):
        if j < 0:
            continue
        left_ref, right_ref = lefts[i][0], rights[j][0]
        if left_ref is not None and right_ref is not None and left_ref != right_ref:
            continue
        claims.setdefault(j, []).append(i)
    for j, claimants in claims.items():
        hits[min(claimants, key=lambda i: sort_key(lefts[i]))] = j
    return set(claims)


def _merge(term: Record, lane: Record) -> Record:
    """The keys a group offers the acquirer: the terminal's before the lane's."""
    if term is ABSENT:
        return lane
    if lane is ABSENT or (term[2] is not None and term[3] is not None):
        return term
    return term._replace(
        ecr_ref=term[0] if term[0] is not None else lane[0],
        batch=term[1] if term[2] is not None else lane[1],
        trace=term[2] if term[2] is not None else lane[2],
        rrn=term[3] if term[3] is not None else lane[3],
    )


def reconcile(
    lane: Sequence[Record],
    terminal: Sequence[Record],
    acquirer: Sequence[Record],
    *,
    progress: Callable[[str], None] | None = None,
) -> ReconciliationReport:
    """Match the three records and report (see the module docstring).

    Args:
        lane: the lane journal's records.
        terminal: the terminal batch's records.
        acquirer: the acquirer ledger's records.
        progress: called with the name of each step as it starts (for a progress bar).

    Returns:
        The report; it does not depend on the order of the inputs.
    """
    with _no_gc():
        return _reconcile(lane, terminal, acquirer, progress or (lambda _name: None))


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: matching allocates millions of small containers, none
    in a cycle, and each allocation would otherwise count towards a full collection (which
    would then walk all of them, again and again). Reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _reconcile(
    lane: Sequence[Record],
    terminal: Sequence[Record],
    acquirer: Sequence[Record],
    step: Callable[[str], None],
) -> ReconciliationReport:
    step("dedupe")
    keep_l, dup_l, _ = _dedupe(lane, left=True)
    keep_t, dup_t, index_t = _dedupe(terminal)
    keep_a, dup_a, index_a = _dedupe(acquirer)
    # Copies with the ABSENT record last: position -1 then reads as "no record".
    lane_x = [*lane, ABSENT]
    term_x = [*terminal, ABSENT]
    acq_x = [*acquirer, ABSENT]

    step("lane-terminal")
    lefts = lane if isinstance(keep_l, range) else [lane[i] for i in keep_l]
    hits_t, rest_t = _pair(lefts, terminal, keep_t, index_t)
    g_lane: Index = [*keep_l, *([-1] * len(rest_t))]
    g_term: Index = hits_t + rest_t

    step("acquirer")
    lane_recs = list(map(lane_x.__getitem__, g_lane))
    term_recs = list(map(term_x.__getitem__, g_term))
    reps = [
        t if t[2] is not None and t[3] is not None else _merge(t, l_)
        for t, l_ in zip(term_recs, lane_recs, strict=True)
    ]
    g_acq, rest_a = _pair(reps, acquirer, keep_a, index_a)

    step("classify")
    report = _classify(
        sides=(lane, terminal, acquirer),
        aligned=(lane_recs, term_recs, list(map(acq_x.__getitem__, g_acq))),
        index=(g_lane, g_term, g_acq),
        rest_a=rest_a,
        dups=(dup_l, dup_t, dup_a),
    )
    logger.info(
        "reconciled %d/%d/%d records: %d matched, %d discrepancies",
        len(lane),
        len(terminal),
        len(acquirer),
        report.matched,
        len(report.discrepancies),
    )
    return report


def _classify(
    *,
    sides: tuple[Sequence[Record], Sequence[Record], Sequence[Record]],
    aligned: tuple[list[Record], list[Record], list[Record]],
    index: tuple[Index, Index, Index],
    rest_a: list[int],
    dups: tuple[list[int], list[int], list[int]],
) -> ReconciliationReport:
    """Split the groups into matched and the rest, and total them by kind.

    A group matched when its three records agree on amount and state; ``ABSENT`` (amount -1)
    never agrees with a record, and at most two of a group's records are absent.
    """
    lr, tr, ar = aligned
    # Amount, kind, state and operation, compared as one short-lived tuple per record (freed at
    # once, so the allocator recycles it: much cheaper than four sweeps over the records).
    same_lt = map(eq, map(_CORE, lr), map(_CORE, tr))
    same_ta = map(eq, map(_CORE, tr), map(_CORE, ar))
    mask = list(map(and_, same_lt, same_ta))
    matched_index = (
        list(compress(index[0], mask)),
        list(compress(index[1], mask)),
        list(compress(index[2], mask)),
    )
    totals: dict[str, KindTotals] = {}
    tally: dict[tuple[str, str, str], list[int]] = {}
    for record in compress(lr, mask):
        bucket = (record[5], record[7], record[6])
        slot = tally.get(bucket)
        if slot is None:
            tally[bucket] = [1, record[4]]
        else:
            slot[0] += 1
            slot[1] += record[4]
    for (kind, operation, state), (count, fen) in tally.items():
        kt = _kind_totals(totals, kind)
        kt.matched += count
        if state == APPROVED:
            probe = Record(None, None, None, None, 0, kind, APPROVED, operation)
            for side_totals in (kt.lane, kt.terminal, kt.acquirer):
                side_totals.add(probe, count, fen)
    rows: list[Row] = []
    for g in compress(range(len(mask)), map(not_, mask)):
        rows.append(_discrepancy(totals, lr[g], tr[g], ar[g]))
    lane, terminal, acquirer = sides
    rows += [_discrepancy(totals, ABSENT, ABSENT, acquirer[a]) for a in rest_a]
    dup_l, dup_t, dup_a = dups
    rows += [_discrepancy(totals, lane[i], ABSENT, ABSENT, Outcome.DUPLICATE) for i in dup_l]
    rows += [_discrepancy(totals, ABSENT, terminal[i], ABSENT, Outcome.DUPLICATE) for i in dup_t]
    rows += [_discrepancy(totals, ABSENT, ABSENT, acquirer[i], Outcome.DUPLICATE) for i in dup_a]
    rows.sort(key=_row_key)
    return ReconciliationReport(
        lane, terminal, acquirer, matched_index, rows, [totals[k] for k in sorted(totals)]
    )


def _kind_totals(totals: dict[str, KindTotals], kind: str) -> KindTotals:
    found = totals.get(kind)
    if found is None:
        found = totals[kind] = KindTotals(kind)
    return found


def _discrepancy(
    totals: dict[str, KindTotals],
    lr: Record,
    tr: Record,
    ar: Record,
    outcome: Outcome | None = None,
) -> Row:
    """The row of a group that did not match, counted in the totals (each record under its own
    payment kind, the row under the row's kind). ``ABSENT`` stands for a missing record."""
    lx, tx, ax = (None if r is ABSENT else r for r in (lr, tr, ar))
    row = _row(outcome or _outcome(lx, tx, ax), lx, tx, ax)
    _kind_totals(totals, row.kind).discrepancies += 1
    for side, record in ((Side.LANE, lx), (Side.TERMINAL, tx), (Side.ACQUIRER, ax)):
        if record is not None:
            _kind_totals(totals, record[5]).side(side).add(record)
    return row
