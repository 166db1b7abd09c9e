"""Returns in SQL: a header, its lines and its refund tenders; inserted once, never updated."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shouyin.domain.money import Money
from shouyin.domain.returns import RefundTender, Return, ReturnLine
from shouyin.domain.sale_lines import TenderKind
from shouyin.store.repositories import Conflict
from shouyin.store.rows import REF_COLUMNS, bulk_insert, ref_from, ref_row
from shouyin.store.tables import ReturnLineRow, ReturnRow, ReturnTenderRow, table

__all__ = ["SqlReturnRepository"]

_R = table(ReturnRow)
_L = table(ReturnLineRow)
_T = table(ReturnTenderRow)


_HEADER_COLUMNS = (
    "return_id",
    "sale_id",
    "lane_id",
    "shift_id",
    "cashier_id",
    "approver_id",
    "reason",
    "created_at",
)
_LINE_COLUMNS = (
    "return_id",
    "position",
    "line_no",
    "sku",
    "name",
    "category",
    "tax_rate_bp",
    "quantity",
    "grams",
    "amount",
)
_TENDER_COLUMNS = ("return_id", "position", "kind", "amount", "original_ecr_ref", *REF_COLUMNS)


def _line_row(return_id: str, position: int, line: ReturnLine) -> tuple[Any, ...]:
    return (
        return_id,
        position,
        line.line_no,
        line.sku,
        line.name,
        line.category,
        line.tax_rate_bp,
        line.quantity,
        line.grams,
        line.amount.fen,
    )


def _tender_row(return_id: str, position: int, tender: RefundTender) -> tuple[Any, ...]:
    return (
        return_id,
        position,
        tender.kind.value,
        tender.amount.fen,
        tender.original_ecr_ref,
        *ref_row(tender.ref),
    )


def _line_from(row: RowMapping) -> ReturnLine:
    return ReturnLine(
        line_no=row["line_no"],
        sku=row["sku"],
        name=row["name"],
        category=row["category"],
        tax_rate_bp=row["tax_rate_bp"],
        quantity=row["quantity"],
        grams=row["grams"],
        amount=Money(row["amount"]),
    )


def _tender_from(row: RowMapping) -> RefundTender:
    return RefundTender(
        kind=TenderKind(row["kind"]),
        amount=Money(row["amount"]),
        ref=ref_from(row),
        original_ecr_ref=row["original_ecr_ref"],
    )


class SqlReturnRepository:
    """:class:`~shouyin.store.repositories.ReturnRepository` on a SQLAlchemy session.

    Args:
        session: the unit of work's session; this repository never commits.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, ret: Return) -> None:
        """Insert a return with its lines and refund tenders.

        Raises:
            Conflict: if its id is taken.
        """
        conn = self._session.connection()
        header = (
            ret.return_id,
            ret.sale_id,
            ret.lane_id,
            ret.shift_id,
            ret.cashier_id,
            ret.approver_id,
            ret.reason,
            ret.created_at,
        )
        rid = ret.return_id
        try:
            bulk_insert(_R, conn.dialect, _HEADER_COLUMNS).execute(conn, [header])
        except IntegrityError as error:
            raise Conflict(f"return {rid} already exists") from error
        lines = [_line_row(rid, i, line) for i, line in enumerate(ret.lines, 1)]
        bulk_insert(_L, conn.dialect, _LINE_COLUMNS).execute(conn, lines)
        if ret.tenders:
            tenders = [_tender_row(rid, i, t) for i, t in enumerate(ret.tenders, 1)]
            bulk_insert(_T, conn.dialect, _TENDER_COLUMNS).execute(conn, tenders)

    def get(self, return_id: str) -> Return | None:
        """The return with this id, or None."""
        found = self._load(_R.c.return_id == return_id)
        return found[0] if found else None

    def for_sale(self, sale_id: str) -> list[Return]:
        """Every return against this sale, oldest first."""
        return self._load(_R.c.sale_id == sale_id)

    def list_by_shift(self, shift_ids: Collection[str]) -> list[Return]:
        """Every return made in these shifts, oldest first."""
        if not shift_ids:
            return []
        return self._load(_R.c.shift_id.in_(list(shift_ids)))

    def _load(self, where: ColumnElement[bool]) -> list[Return]:
        conn = self._session.connection()
        order = (_R.c.created_at, _R.c.return_id)
        headers = conn.execute(select(_R).where(where).order_by(*order)).mappings().all()
        if not headers:
            return []
        ids = select(_R.c.return_id).where(where)
        lines: dict[str, list[ReturnLine]] = defaultdict(list)
        for row in conn.execute(
            select(_L).where(_L.c.return_id.in_(ids)).order_by(_L.c.return_id, _L.c.position)
        ).mappings():
            lines[row["return_id"]].append(_line_from(row))
        tenders: dict[str, list[RefundTender]] = defaultdict(list)
        for row in conn.execute(
            select(_T).where(_T.c.return_id.in_(ids)).order_by(_T.c.return_id, _T.c.position)
        ).mappings():
            tenders[row["return_id"]].append(_tender_from(row))
        return [
            Return(
                return_id=h["return_id"],
                sale_id=h["sale_id"],
                lane_id=h["lane_id"],
                shift_id=h["shift_id"],
                cashier_id=h["cashier_id"],
                approver_id=h["approver_id"],
                reason=h["reason"],
                created_at=h["created_at"],
                lines=tuple(lines[h["return_id"]]),
                tenders=tuple(tenders[h["return_id"]]),
            )
            for h in headers
        ]
