"""Read models of the admin pages: what the admin API shows, computed in SQL, read only.

Every function takes a SQLAlchemy :class:`~sqlalchemy.Connection` and returns frozen dataclasses
(the API turns them into its pydantic schemas). Money is integer fen throughout; times are aware
UTC datetimes; a "day" is a business day in the store's time zone
(:func:`shouyin.lane.services.business_day_bounds`).

Sales by hour
    The local hours of a day are turned into UTC boundaries in Python (so a day with a daylight
    saving change has 23 or 25 hours, and a zone whose offset is not a whole hour works too), and
    the database sums completed sales into those buckets with one ``CASE`` over ``completed_at``:
    the totals are exact integers summed by SQL, on SQLite and PostgreSQL alike. A sale belongs
    to the hour it was *completed* in, which is also the business day that counts it.

Sales journal
    Only the masked card number is ever read (``first 6 + * + last 4``, as stored); it is masked
    again on the way out, so that a value stored by older code could never leak a full number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, RowMapping, Select, and_, case, func, select

from shouyin.domain.sale_states import SaleState
from shouyin.domain.shift import ShiftState
from shouyin.lane.services import business_day_bounds
from shouyin.store.tables import SaleRow, SaleTenderRow, ShiftRow, TerminalRow, UserRow, table

__all__ = [
    "MAX_JOURNAL_ROWS",
    "HourBucket",
    "JournalSale",
    "JournalTender",
    "LaneSummary",
    "ShiftSummary",
    "hour_boundaries",
    "lane_summaries",
    "safe_masked_pan",
    "sales_by_hour",
    "sales_journal",
    "shift_summaries",
]

MAX_JOURNAL_ROWS: Final = 500
"""The most sales one journal page returns (the admin pages through the rest)."""

_S = table(SaleRow).c
_T = table(SaleTenderRow).c
_SH = table(ShiftRow).c
_TE = table(TerminalRow).c
_U = table(UserRow).c


# -- sales by hour ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HourBucket:
    """One local hour of a business day.

    Attributes:
        start: the hour's start, local time (aware, in the store's zone).
        sales_count: completed sales in the hour.
        amount: their total due, fen.
    """

    start: datetime
    sales_count: int
    amount: int


def hour_boundaries(day: date, tz: ZoneInfo) -> list[datetime]:
    """The UTC instants where the local hours of ``day`` start, plus the day's end.

    Walks the day in UTC steps of one hour from its local midnight, so that every instant of
    the day falls in exactly one bucket even when the clocks change.
    """
    start, end = business_day_bounds(day, tz)
    bounds = [start]
    while bounds[-1] < end:
        bounds.append(min(bounds[-1] + timedelta(hours=1), end))
    return bounds


def sales_by_hour(
    conn: Connection, day: date, tz: ZoneInfo, *, lane_id: str | None = None
) -> list[HourBucket]:
    """Completed sales of a business day, counted and summed per local hour, in SQL.

    Args:
        conn: a connection to the lane's or store server's database.
        day: the business day (in ``tz``).
        tz: the store's time zone.
        lane_id: only this lane's sales (all lanes by default).

    Returns:
        One bucket per local hour of the day (empty hours included), in order.
    """
    bounds = hour_boundaries(day, tz)
    completed = _S.completed_at
    bucket = case(
        *((completed < upper, index) for index, upper in enumerate(bounds[1:])),
        else_=-1,
    ).label("bucket")
    query = (
        select(bucket, func.count().label("n"), func.coalesce(func.sum(_S.total_due), 0))
        .where(
            _S.state == SaleState.COMPLETED.value,
            completed >= bounds[0],
            completed < bounds[-1],
        )
        .group_by(bucket)
    )
    if lane_id is not None:
        query = query.where(_S.lane_id == lane_id)
    found = {int(row[0]): (int(row[1]), int(row[2])) for row in conn.execute(query)}
    return [
        HourBucket(lower.astimezone(tz), *found.get(index, (0, 0)))
        for index, lower in enumerate(bounds[:-1])
    ]


# -- sales journal ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalTender:
    """One tender as the journal shows it: never more of a card than the masked number."""

    tender_no: int
    kind: str
    amount: int
    voided: bool
    ecr_ref: str | None
    rrn: str | None
    masked_pan: str | None
    wallet: str | None


@dataclass(frozen=True, slots=True)
class JournalSale:
    """One sale of the journal, with its tenders."""

    sale_id: str
    receipt_no: str
    lane_id: str
    cashier_id: str
    cashier_name: str | None
    state: str
    opened_at: datetime
    completed_at: datetime | None
    total_due: int
    tenders: tuple[JournalTender, ...]


def safe_masked_pan(value: str | None) -> str | None:
    """A stored masked card number, re-masked if it somehow holds more than first 6 + last 4."""
    if value is None:
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) <= 10:
        return value
    # Never raise here (one odd row must not break the journal page): mask any length.
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def sales_journal(
    conn: Connection,
    day: date,
    tz: ZoneInfo,
    *,
    lane_id: str | None = None,
    state: SaleState | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[JournalSale]:
    """The sales opened on a business day, newest first, with their tenders.

    Args:
        conn: a database connection.
        day: the business day (in ``tz``), by the time each sale was opened.
        tz: the store's time zone.
        lane_id: only this lane.
        state: only sales in this state.
        limit: at most this many (capped at :data:`MAX_JOURNAL_ROWS`).
        offset: skip this many first (paging).
    """
    start, end = business_day_bounds(day, tz)
    query = (
        select(
            _S.sale_id,
            _S.receipt_no,
            _S.lane_id,
            _S.cashier_id,
            _U.display_name,
            _S.state,
            _S.opened_at,
            _S.completed_at,
            _S.total_due,
        )
        .outerjoin(UserRow, _U.user_id == _S.cashier_id)
        .where(_S.opened_at >= start, _S.opened_at < end)
        .order_by(_S.opened_at.desc(), _S.sale_id)
        .limit(max(0, min(limit, MAX_JOURNAL_ROWS)))
        .offset(max(0, offset))
    )
    if lane_id is not None:
        query = query.where(_S.lane_id == lane_id)
    if state is not None:
        query = query.where(_S.state == state.value)
    headers = list(conn.execute(query).mappings())
    tenders: dict[str, list[JournalTender]] = defaultdict(list)
    ids = [h["sale_id"] for h in headers]
    if ids:
        rows = conn.execute(
            select(
                _T.sale_id,
                _T.tender_no,
                _T.kind,
                _T.amount,
                _T.voided,
                _T.ecr_ref,
                _T.rrn,
                _T.masked_pan,
                _T.wallet,
            )
            .where(_T.sale_id.in_(ids))
            .order_by(_T.sale_id, _T.tender_no)
        ).mappings()
        for r in rows:
            tenders[r["sale_id"]].append(
                JournalTender(
                    tender_no=r["tender_no"],
                    kind=r["kind"],
                    amount=int(r["amount"]),
                    voided=bool(r["voided"]),
                    ecr_ref=r["ecr_ref"],
                    rrn=r["rrn"],
                    masked_pan=safe_masked_pan(r["masked_pan"]),
                    wallet=r["wallet"],
                )
            )
    return [
        JournalSale(
            sale_id=h["sale_id"],
            receipt_no=h["receipt_no"],
            lane_id=h["lane_id"],
            cashier_id=h["cashier_id"],
            cashier_name=h["display_name"],
            state=h["state"],
            opened_at=h["opened_at"],
            completed_at=h["completed_at"],
            total_due=int(h["total_due"]),
            tenders=tuple(tenders.get(h["sale_id"], ())),
        )
        for h in headers
    ]


# -- lanes and shifts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShiftSummary:
    """A shift's header as the admin lists it (figures come from the X/Z reports)."""

    shift_id: str
    lane_id: str
    cashier_id: str
    cashier_name: str | None
    state: str
    opened_at: datetime
    closed_at: datetime | None
    opening_float: int
    counted_cash: int | None


@dataclass(frozen=True, slots=True)
class LaneSummary:
    """A lane: its terminals' count and its open shift, if any."""

    lane_id: str
    terminals: int
    open_shift: ShiftSummary | None


def _shift_query() -> Select[Any]:
    return select(
        _SH.shift_id,
        _SH.lane_id,
        _SH.cashier_id,
        _U.display_name,
        _SH.state,
        _SH.opened_at,
        _SH.closed_at,
        _SH.opening_float,
        _SH.counted_cash,
    ).outerjoin(UserRow, _U.user_id == _SH.cashier_id)


def _shift_from(row: RowMapping) -> ShiftSummary:
    counted = row["counted_cash"]
    return ShiftSummary(
        shift_id=row["shift_id"],
        lane_id=row["lane_id"],
        cashier_id=row["cashier_id"],
        cashier_name=row["display_name"],
        state=row["state"],
        opened_at=row["opened_at"],
        closed_at=row["closed_at"],
        opening_float=int(row["opening_float"]),
        counted_cash=None if counted is None else int(counted),
    )


def shift_summaries(
    conn: Connection, day: date, tz: ZoneInfo, *, lane_id: str | None = None
) -> list[ShiftSummary]:
    """The shifts opened on a business day (by lane, then opening time)."""
    start, end = business_day_bounds(day, tz)
    query = _shift_query().where(and_(_SH.opened_at >= start, _SH.opened_at < end))
    if lane_id is not None:
        query = query.where(_SH.lane_id == lane_id)
    rows = conn.execute(query.order_by(_SH.lane_id, _SH.opened_at)).mappings()
    return [_shift_from(m) for m in rows]


def lane_summaries(conn: Connection, known: Sequence[str] = ()) -> list[LaneSummary]:
    """Every lane that has terminals or shifts (plus ``known`` ones), by id."""
    counted = conn.execute(select(_TE.lane_id, func.count()).group_by(_TE.lane_id))
    terminals: dict[str, int] = {str(lane): int(n) for lane, n in counted}
    lanes = set(known) | set(terminals)
    lanes |= set(conn.execute(select(_SH.lane_id).distinct()).scalars())
    open_rows = conn.execute(_shift_query().where(_SH.state == ShiftState.OPEN.value)).mappings()
    open_shifts = {s.lane_id: s for s in (_shift_from(m) for m in open_rows)}
    return [
        LaneSummary(lane, int(terminals.get(lane, 0)), open_shifts.get(lane))
        for lane in sorted(lanes)
    ]
