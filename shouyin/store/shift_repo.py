"""Shifts in SQL: a header plus its cash movements and no-sales, both append-only.

A shift gains a movement with every cash sale, so saving it must not rewrite the whole list each
time: the repository remembers what it loaded or saved in this unit of work, inserts only the new
tail and updates the header only when it changed. If the stored part of a list was changed (the
domain never does that) or the shift was not loaded here, the lists are rewritten whole.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Table,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.orm import Session

from shouyin.domain.money import Money
from shouyin.domain.shift import CashMovement, MovementKind, NoSale, Shift, ShiftState
from shouyin.store.rows import bulk_insert
from shouyin.store.tables import ShiftMovementRow, ShiftNoSaleRow, ShiftRow, table

__all__ = ["SqlShiftRepository"]

_S = table(ShiftRow)
_M = table(ShiftMovementRow)
_N = table(ShiftNoSaleRow)


def _header_values(shift: Shift) -> dict[str, Any]:
    return {
        "lane_id": shift.lane_id,
        "cashier_id": shift.cashier_id,
        "opened_at": shift.opened_at,
        "opening_float": shift.opening_float.fen,
        "state": shift.state.value,
        "closed_at": shift.closed_at,
        "counted_cash": None if shift.counted_cash is None else shift.counted_cash.fen,
    }


_MOVEMENT_COLUMNS = ("shift_id", "seq", "kind", "amount", "reference", "at", "approver_id")
_NO_SALE_COLUMNS = ("shift_id", "seq", "at", "approver_id", "reason")

# One shift by id (SqlShiftRepository.get), built once so that their cache keys are computed once.
_GET_HEADER = select(_S).where(_S.c.shift_id == bindparam("shift_id"))
_GET_MOVEMENTS = select(_M).where(_M.c.shift_id == bindparam("shift_id")).order_by(_M.c.seq)
_GET_NO_SALES = select(_N).where(_N.c.shift_id == bindparam("shift_id")).order_by(_N.c.seq)


def _movement_row(shift_id: str, seq: int, m: CashMovement) -> tuple[Any, ...]:
    return (shift_id, seq, m.kind.value, m.amount.fen, m.reference, m.at, m.approver_id)


def _no_sale_row(shift_id: str, seq: int, n: NoSale) -> tuple[Any, ...]:
    return (shift_id, seq, n.at, n.approver_id, n.reason)


def _movement_from(row: RowMapping) -> CashMovement:
    return CashMovement(
        kind=MovementKind(row["kind"]),
        amount=Money(row["amount"]),
        reference=row["reference"],
        at=row["at"],
        approver_id=row["approver_id"],
    )


def _no_sale_from(row: RowMapping) -> NoSale:
    return NoSale(at=row["at"], approver_id=row["approver_id"], reason=row["reason"])


def _append(
    conn: Connection,
    table: Table,
    shift_id: str,
    *,
    old: tuple[Any, ...] | None,
    new: tuple[Any, ...],
    columns: tuple[str, ...],
    row: Callable[[str, int, Any], tuple[Any, ...]],
) -> None:
    """Write ``new`` given that ``old`` is stored (``None``: unknown, rewrite everything)."""
    if old is None or new[: len(old)] != old:
        conn.execute(delete(table).where(table.c.shift_id == shift_id))
        start = 0
    else:
        start = len(old)
    if len(new) > start:
        rows = [row(shift_id, seq, item) for seq, item in enumerate(new[start:], start + 1)]
        bulk_insert(table, conn.dialect, columns).execute(conn, rows)


class SqlShiftRepository:
    """:class:`~shouyin.store.repositories.ShiftRepository` on a SQLAlchemy session.

    Args:
        session: the unit of work's session; this repository never commits.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        # shift_id -> (header, movements, no_sales) as stored in this transaction.
        self._stored: dict[
            str, tuple[dict[str, Any], tuple[CashMovement, ...], tuple[NoSale, ...]]
        ] = {}

    def save(self, shift: Shift) -> None:
        """Insert or update a shift; only what changed since it was loaded here is written."""
        conn = self._session.connection()
        header = _header_values(shift)
        sid = shift.shift_id
        old: tuple[tuple[CashMovement, ...] | None, tuple[NoSale, ...] | None]
        stored = self._stored.get(sid)
        if stored is not None:
            if header != stored[0]:  # a sale adds a movement but leaves the header alone
                conn.execute(update(_S).where(_S.c.shift_id == sid), header)
            old = (stored[1], stored[2])
        elif self._insert_header(conn, sid, header):
            old = ((), ())  # brand new: nothing stored yet
        else:
            conn.execute(update(_S).where(_S.c.shift_id == sid), header)
            old = (None, None)  # saved by an earlier unit of work: rewrite its lists
        _append(
            conn,
            _M,
            sid,
            old=old[0],
            new=shift.movements,
            columns=_MOVEMENT_COLUMNS,
            row=_movement_row,
        )
        _append(
            conn,
            _N,
            sid,
            old=old[1],
            new=shift.no_sales,
            columns=_NO_SALE_COLUMNS,
            row=_no_sale_row,
        )
        self._stored[sid] = (header, shift.movements, shift.no_sales)

    @staticmethod
    def _insert_header(conn: Connection, shift_id: str, header: dict[str, Any]) -> bool:
        """Insert the header unless the shift exists; True if it was inserted."""
        columns = ("shift_id", *header)
        insert = bulk_insert(_S, conn.dialect, columns, "shift_id")
        return insert.execute(conn, [(shift_id, *header.values())]) == 1

    def get(self, shift_id: str) -> Shift | None:
        """The shift with this id, or None."""
        # Every card sale completes through here: pre-built statements (cache keys computed
        # once), and no sub-select since the one shift's id is known.
        conn = self._session.connection()
        params = {"shift_id": shift_id}
        header = conn.execute(_GET_HEADER, params).mappings().first()
        if header is None:
            return None
        movements = [_movement_from(row) for row in conn.execute(_GET_MOVEMENTS, params).mappings()]
        no_sales = [_no_sale_from(row) for row in conn.execute(_GET_NO_SALES, params).mappings()]
        return self._restore(header, movements, no_sales)

    def open_for_lane(self, lane_id: str) -> Shift | None:
        """The lane's open shift, if any (the newest, should there be several)."""
        where = (_S.c.lane_id == lane_id) & (_S.c.state == ShiftState.OPEN.value)
        found = self._load(where)
        return found[-1] if found else None

    def list_for_day(self, lane_id: str, day_start: datetime, day_end: datetime) -> list[Shift]:
        """The lane's shifts opened in ``[day_start, day_end)``, oldest first."""
        where = (
            (_S.c.lane_id == lane_id) & (_S.c.opened_at >= day_start) & (_S.c.opened_at < day_end)
        )
        return self._load(where)

    def _load(self, where: ColumnElement[bool]) -> list[Shift]:
        conn = self._session.connection()
        order = (_S.c.opened_at, _S.c.shift_id)
        headers = conn.execute(select(_S).where(where).order_by(*order)).mappings().all()
        if not headers:
            return []
        ids = select(_S.c.shift_id).where(where)
        movements: dict[str, list[CashMovement]] = defaultdict(list)
        for row in conn.execute(
            select(_M).where(_M.c.shift_id.in_(ids)).order_by(_M.c.shift_id, _M.c.seq)
        ).mappings():
            movements[row["shift_id"]].append(_movement_from(row))
        no_sales: dict[str, list[NoSale]] = defaultdict(list)
        for row in conn.execute(
            select(_N).where(_N.c.shift_id.in_(ids)).order_by(_N.c.shift_id, _N.c.seq)
        ).mappings():
            no_sales[row["shift_id"]].append(_no_sale_from(row))
        return [
            self._restore(h, movements[h["shift_id"]], no_sales[h["shift_id"]]) for h in headers
        ]

    def _restore(
        self, h: RowMapping, movements: list[CashMovement], no_sales: list[NoSale]
    ) -> Shift:
        counted = h["counted_cash"]
        shift = Shift(
            shift_id=h["shift_id"],
            lane_id=h["lane_id"],
            cashier_id=h["cashier_id"],
            opened_at=h["opened_at"],
            opening_float=Money(h["opening_float"]),
            state=ShiftState(h["state"]),
            movements=movements,
            no_sales=no_sales,
            closed_at=h["closed_at"],
            counted_cash=None if counted is None else Money(counted),
        )
        self._stored[shift.shift_id] = (_header_values(shift), shift.movements, shift.no_sales)
        return shift
