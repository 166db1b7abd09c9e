"""Sales in SQL: a header row, its lines and its tenders, written with few statements.

A lane commits one sale per checkout, so :meth:`SqlSaleRepository.save` is the storage hot path.
It writes with pre-built SQL on the driver (:mod:`shouyin.store.rows`: no ORM, no lazy loading,
one executemany for the lines and one for the tenders), and it remembers what each sale looked
like when this unit of work last loaded or saved it, so that:

* a sale it has never seen costs one ``INSERT ... ON CONFLICT (sale_id) DO NOTHING`` for the
  header plus one executemany each for lines and tenders; only when that insert finds the sale
  already stored (saved by an earlier unit of work) are its header updated and its lines and
  tenders replaced;
* a sale it has seen costs an ``UPDATE`` of the header plus writes of only the lines and tenders
  that changed: new ones are inserted, changed ones deleted and re-inserted (lines and tenders
  are never removed from a sale). A scan, say, is one ``UPDATE`` and one ``INSERT``.

Reads fetch headers, lines and tenders with three queries however many sales match, and rebuild
each :class:`Sale` through its constructor, which re-checks its invariants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    bindparam,
    delete,
    insert,
    literal_column,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shouyin.domain.money import Money
from shouyin.domain.product import Unit
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import SaleLine, Tender, TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.store.repositories import Conflict
from shouyin.store.rows import (
    DISCOUNT_COLUMNS,
    REF_COLUMNS,
    bulk_insert,
    discount_from,
    discount_row,
    promotions_from_json,
    promotions_json,
    ref_from,
    ref_row,
    row_update,
)
from shouyin.store.tables import CashTenderIdRow, SaleLineRow, SaleRow, SaleTenderRow, table

__all__ = ["SqlSaleRepository"]

_S = table(SaleRow)
_L = table(SaleLineRow)
_T = table(SaleTenderRow)
_C = table(CashTenderIdRow)

# The states of a sale still being rung up or paid: literals, not bound parameters, so that the
# partial index ix_sales_unfinished (same list) can be used.
_UNFINISHED: tuple[ColumnElement[str], ...] = tuple(
    literal_column(f"'{state.value}'")
    for state in (SaleState.OPEN, SaleState.TENDERING, SaleState.PAID)
)


_HEADER_COLUMNS = (
    "sale_id",
    "receipt_no",
    "lane_id",
    "shift_id",
    "cashier_id",
    "opened_at",
    "state",
    "member_id",
    *(f"order_discount_{c}" for c in DISCOUNT_COLUMNS),
    "promotions",
    "total_due",
    "completed_at",
    "voided_at",
    "voided_by",
    "void_reason",
)
_LINE_COLUMNS = (
    "sale_id",
    "line_no",
    "sku",
    "name",
    "category",
    "tax_rate_bp",
    "unit",
    "unit_price",
    "quantity",
    "grams",
    "fixed_amount",
    "member_price",
    *(f"discount_{c}" for c in DISCOUNT_COLUMNS),
    "voided",
    "voided_by",
    "price_override_by",
)
_TENDER_COLUMNS = ("sale_id", "tender_no", "kind", "amount", "voided", *REF_COLUMNS)

# One sale by id (SqlSaleRepository.get): built once, so that SQLAlchemy computes their cache keys
# once rather than on every load.
_GET_HEADER = select(_S).where(_S.c.sale_id == bindparam("sale_id"))
_GET_LINES = select(_L).where(_L.c.sale_id == bindparam("sale_id")).order_by(_L.c.line_no)
_GET_TENDERS = select(_T).where(_T.c.sale_id == bindparam("sale_id")).order_by(_T.c.tender_no)


def _header_row(sale: Sale) -> tuple[Any, ...]:
    return (
        sale.sale_id,
        sale.receipt_no,
        sale.lane_id,
        sale.shift_id,
        sale.cashier_id,
        sale.opened_at,
        sale.state.value,
        sale.member_id,
        *discount_row(sale.order_discount),
        promotions_json(sale.promotions),
        sale.total_due.fen,
        sale.completed_at,
        sale.voided_at,
        sale.voided_by,
        sale.void_reason,
    )


def _line_row(sale_id: str, line: SaleLine) -> tuple[Any, ...]:
    fixed, member = line.fixed_amount, line.member_price
    return (
        sale_id,
        line.line_no,
        line.sku,
        line.name,
        line.category,
        line.tax_rate_bp,
        line.unit.value,
        line.unit_price.fen,
        line.quantity,
        line.grams,
        None if fixed is None else fixed.fen,
        None if member is None else member.fen,
        *discount_row(line.discount),
        line.voided,
        line.voided_by,
        line.price_override_by,
    )


def _tender_row(sale_id: str, tender: Tender) -> tuple[Any, ...]:
    return (
        sale_id,
        tender.tender_no,
        tender.kind.value,
        tender.amount.fen,
        tender.voided,
        *ref_row(tender.ref),
    )


def _line_from(row: RowMapping) -> SaleLine:
    fixed, member = row["fixed_amount"], row["member_price"]
    return SaleLine(
        line_no=row["line_no"],
        sku=row["sku"],
        name=row["name"],
        category=row["category"],
        tax_rate_bp=row["tax_rate_bp"],
        unit=Unit(row["unit"]),
        unit_price=Money(row["unit_price"]),
        quantity=row["quantity"],
        grams=row["grams"],
        fixed_amount=None if fixed is None else Money(fixed),
        member_price=None if member is None else Money(member),
        discount=discount_from("discount", row),
        voided=bool(row["voided"]),
        voided_by=row["voided_by"],
        price_override_by=row["price_override_by"],
    )


def _tender_from(row: RowMapping) -> Tender:
    return Tender(
        tender_no=row["tender_no"],
        kind=TenderKind(row["kind"]),
        amount=Money(row["amount"]),
        ref=ref_from(row),
        voided=bool(row["voided"]),
    )


def _sale_from(row: RowMapping, lines: Sequence[SaleLine], tenders: Sequence[Tender]) -> Sale:
    return Sale(
        sale_id=row["sale_id"],
        receipt_no=row["receipt_no"],
        lane_id=row["lane_id"],
        shift_id=row["shift_id"],
        cashier_id=row["cashier_id"],
        opened_at=row["opened_at"],
        state=SaleState(row["state"]),
        lines=lines,
        tenders=tenders,
        member_id=row["member_id"],
        order_discount=discount_from("order_discount", row),
        promotions=promotions_from_json(row["promotions"]),
        completed_at=row["completed_at"],
        voided_at=row["voided_at"],
        voided_by=row["voided_by"],
        void_reason=row["void_reason"],
    )


class SqlSaleRepository:
    """:class:`~shouyin.store.repositories.SaleRepository` on a SQLAlchemy session.

    Args:
        session: the unit of work's session; this repository never commits.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        # sale_id -> (lines, tenders) as stored in this transaction, for diffing on save.
        self._stored: dict[str, tuple[tuple[SaleLine, ...], tuple[Tender, ...]]] = {}

    # -- writing ---------------------------------------------------------------------------------
    def save(self, sale: Sale) -> None:
        """Insert or update a sale with its lines and tenders (see the module docstring).

        Raises:
            Conflict: if another sale of the lane has the same receipt number.
        """
        conn = self._session.connection()
        header = _header_row(sale)
        stored = self._stored.get(sale.sale_id)
        try:
            if stored is None:
                insert = bulk_insert(_S, conn.dialect, _HEADER_COLUMNS, "sale_id")
                if insert.execute(conn, [header]) == 1:
                    self._insert_children(conn, sale.sale_id, sale.lines, sale.tenders)
                else:  # saved by an earlier unit of work: replace everything
                    self._update_header(conn, header)
                    conn.execute(delete(_L).where(_L.c.sale_id == sale.sale_id))
                    conn.execute(delete(_T).where(_T.c.sale_id == sale.sale_id))
                    self._insert_children(conn, sale.sale_id, sale.lines, sale.tenders)
            else:
                self._update_header(conn, header)
                old_lines, old_tenders = stored
                lines = [ln for ln in sale.lines if not _same(old_lines, ln.line_no, ln)]
                tenders = [t for t in sale.tenders if not _same(old_tenders, t.tender_no, t)]
                # Changed rows are replaced; new ones (numbers past the stored) just go in.
                self._delete_children(
                    conn,
                    sale.sale_id,
                    [ln.line_no for ln in lines if ln.line_no <= len(old_lines)],
                    [t.tender_no for t in tenders if t.tender_no <= len(old_tenders)],
                )
                self._insert_children(conn, sale.sale_id, lines, tenders)
        except IntegrityError as error:
            raise Conflict(
                f"sale {sale.sale_id}: receipt {sale.receipt_no} already used on {sale.lane_id}"
            ) from error
        self._stored[sale.sale_id] = (sale.lines, sale.tenders)

    @staticmethod
    def _update_header(conn: Connection, header: tuple[Any, ...]) -> None:
        update = row_update(_S, conn.dialect, "sale_id", _HEADER_COLUMNS[1:])
        update.execute(conn, header[0], header[1:])

    @staticmethod
    def _delete_children(
        conn: Connection,
        sale_id: str,
        lines: Sequence[int],
        tenders: Sequence[int],
    ) -> None:
        if lines:
            conn.execute(delete(_L).where(_L.c.sale_id == sale_id, _L.c.line_no.in_(lines)))
        if tenders:
            conn.execute(delete(_T).where(_T.c.sale_id == sale_id, _T.c.tender_no.in_(tenders)))

    @staticmethod
    def _insert_children(
        conn: Connection, sale_id: str, lines: Sequence[SaleLine], tenders: Sequence[Tender]
    ) -> None:
        if lines:
            rows = [_line_row(sale_id, ln) for ln in lines]
            bulk_insert(_L, conn.dialect, _LINE_COLUMNS).execute(conn, rows)
        if tenders:
            rows = [_tender_row(sale_id, t) for t in tenders]
            bulk_insert(_T, conn.dialect, _TENDER_COLUMNS).execute(conn, rows)

    # -- reading ---------------------------------------------------------------------------------
    def get(self, sale_id: str) -> Sale | None:
        """The sale with this id, rebuilt without events, or None."""
        # The payment path loads a sale in every write: pre-built statements (their cache keys
        # computed once) and no sub-select, since the one sale's id is known.
        conn = self._session.connection()
        params = {"sale_id": sale_id}
        header = conn.execute(_GET_HEADER, params).mappings().first()
        if header is None:
            return None
        lines = [_line_from(row) for row in conn.execute(_GET_LINES, params).mappings()]
        tenders = [_tender_from(row) for row in conn.execute(_GET_TENDERS, params).mappings()]
        return self._restore(header, lines, tenders)

    def list_by_shift(self, shift_ids: Collection[str]) -> list[Sale]:
        """Every sale of these shifts, in any state, by opening time then id."""
        if not shift_ids:
            return []
        return self._load(_S.c.shift_id.in_(list(shift_ids)), _S.c.opened_at)

    def list_completed_between(self, start: datetime, end: datetime) -> list[Sale]:
        """Sales completed in ``[start, end)``, by completion time then id."""
        where = (_S.c.completed_at >= start) & (_S.c.completed_at < end)
        return self._load(where, _S.c.completed_at)

    def held(self, lane_id: str) -> list[Sale]:
        """The lane's suspended (held) sales, oldest first."""
        # The literal (not a bound parameter) lets the partial index ix_sales_held be used.
        where = (_S.c.lane_id == lane_id) & (_S.c.state == literal_column("'held'"))
        return self._load(where, _S.c.opened_at)

    def by_receipt(self, lane_id: str, receipt_no: str) -> Sale | None:
        """The lane's sale with this receipt number, or None (one index lookup: the unique
        ``uq_sales_lane_id_receipt_no``)."""
        where = (_S.c.lane_id == lane_id) & (_S.c.receipt_no == receipt_no)
        found = self._load(where)
        return found[0] if found else None

    def unfinished(self, shift_id: str) -> list[Sale]:
        """The shift's sales still open, tendering or paid (not held, completed or voided),
        oldest first, from the partial index ``ix_sales_unfinished`` (not the shift's completed
        sales)."""
        where = (_S.c.shift_id == shift_id) & _S.c.state.in_(_UNFINISHED)
        return self._load(where, _S.c.opened_at)

    def cash_tender(self, tender_id: str) -> tuple[str, int] | None:
        """The sale id and tender number recorded for the page's cash tender id, or None."""
        conn = self._session.connection()
        row = conn.execute(
            select(_C.c.sale_id, _C.c.tender_no).where(_C.c.tender_id == tender_id)
        ).first()
        return None if row is None else (row.sale_id, row.tender_no)

    def record_cash_tender(
        self, tender_id: str, sale_id: str, tender_no: int, at: datetime
    ) -> None:
        """Record the page's id of a cash tender (in the caller's transaction, with the tender;
        ``tender_no`` 0: the request completed a sale with nothing due).

        Raises:
            Conflict: the id is recorded already.
        """
        conn = self._session.connection()
        values = {"tender_id": tender_id, "sale_id": sale_id, "tender_no": tender_no}
        try:  # the transaction is unusable after a conflict: the caller rolls it back
            conn.execute(insert(_C).values(**values, created_at=at))
        except IntegrityError as error:
            raise Conflict(f"cash tender id {tender_id} already recorded") from error

    def _load(self, where: ColumnElement[bool], order: Any = None) -> list[Sale]:
        conn = self._session.connection()
        ordering = (_S.c.sale_id,) if order is None else (order, _S.c.sale_id)
        headers = conn.execute(select(_S).where(where).order_by(*ordering)).mappings().all()
        if not headers:
            return []
        # The children of every matching sale in one query each, whatever the number of sales.
        ids = select(_S.c.sale_id).where(where)
        lines: dict[str, list[SaleLine]] = defaultdict(list)
        for row in conn.execute(
            select(_L).where(_L.c.sale_id.in_(ids)).order_by(_L.c.sale_id, _L.c.line_no)
        ).mappings():
            lines[row["sale_id"]].append(_line_from(row))
        tenders: dict[str, list[Tender]] = defaultdict(list)
        for row in conn.execute(
            select(_T).where(_T.c.sale_id.in_(ids)).order_by(_T.c.sale_id, _T.c.tender_no)
        ).mappings():
            tenders[row["sale_id"]].append(_tender_from(row))
        return [
            self._restore(header, lines[header["sale_id"]], tenders[header["sale_id"]])
            for header in headers
        ]

    def _restore(
        self, header: RowMapping, lines: Sequence[SaleLine], tenders: Sequence[Tender]
    ) -> Sale:
        sale = _sale_from(header, lines, tenders)
        self._stored[sale.sale_id] = (sale.lines, sale.tenders)
        return sale


def _same(old: tuple[Any, ...], number: int, new: object) -> bool:
    """Whether item ``number`` (1-based, as line and tender numbers are) is unchanged."""
    return number <= len(old) and old[number - 1] == new
