"""Helpers shared by the SQL repositories: the checkout's fast write path, JSON, and the column
groups that several tables share (payment references, manual discounts).

The fast path
-------------
A lane commits one sale per checkout, and the benchmark holds that commit to 70% of what bare
SQLite achieves. For statements that small, SQLAlchemy's per-statement work (cache key, compiled
parameters built through dictionaries, result set-up) costs about as much as SQLite's own, so the
writes of a checkout (sale header, lines, tenders, receipt counter, outbox, shift movements) run
pre-built SQL on the driver's cursor instead (:class:`BulkInsert`, :func:`driver_execute`), still
inside the session's transaction and with the columns' own bind processors. What is lost is
SQLAlchemy's statement logging (``echo``) and events for those statements; reads and the rarer
writes stay on Core.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Boolean, Connection, Dialect, RowMapping, Table
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import IntegrityError

from shouyin.domain.promotions import (
    DiscountKind,
    ManualDiscount,
    Promotion,
    promotion_from_dict,
    promotion_to_dict,
)
from shouyin.domain.sale_lines import PaymentRef
from shouyin.store.repositories import StoreError

__all__ = [
    "DISCOUNT_COLUMNS",
    "REF_COLUMNS",
    "BulkInsert",
    "RowUpdate",
    "bulk_insert",
    "discount_from",
    "discount_row",
    "driver_execute",
    "driver_fetch_one",
    "dumps",
    "placeholder",
    "promotions_from_json",
    "promotions_json",
    "ref_from",
    "ref_row",
    "row_update",
]

REF_COLUMNS = ("ecr_ref", "rrn", "trace", "batch", "auth_code", "masked_pan", "wallet")
DISCOUNT_COLUMNS = ("kind", "value", "reason")
_NO_REF: tuple[None, ...] = (None,) * len(REF_COLUMNS)
_NO_DISCOUNT: tuple[None, ...] = (None,) * len(DISCOUNT_COLUMNS)

_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def placeholder(dialect: Dialect) -> str:
    """The driver's positional parameter marker (``?`` for sqlite3, ``%s`` for psycopg)."""
    try:
        return _MARKS[dialect.paramstyle]
    except KeyError:  # pragma: no cover - sqlite3 and psycopg only
        raise StoreError(f"unsupported parameter style {dialect.paramstyle}") from None


@contextmanager
def _driver_cursor(conn: Connection, sql: str, params: Sequence[Any]) -> Iterator[DBAPICursor]:
    # The driver's own cursor, inside the transaction the session already began: for the small
    # statements of a checkout SQLAlchemy's per-statement bookkeeping costs more than SQLite's
    # own work. Constraint violations are wrapped as SQLAlchemy would wrap them.
    cursor = conn.connection.cursor()
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.IntegrityError as error:
        raise IntegrityError(sql, params, error) from error
    finally:
        cursor.close()


def driver_execute(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """Run ``sql`` once per row (executemany when several) on the driver; returns the row count.

    Raises:
        sqlalchemy.exc.IntegrityError: wrapping the driver's, on a constraint violation.
    """
    with _driver_cursor(conn, sql, rows) as cursor:
        if len(rows) == 1:
            cursor.execute(sql, rows[0])
        else:
            cursor.executemany(sql, rows)
        return int(cursor.rowcount)


def driver_fetch_one(conn: Connection, sql: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Run ``sql`` (with ``RETURNING``) on the driver and return its single result row.

    Raises:
        sqlalchemy.exc.IntegrityError: wrapping the driver's, on a constraint violation.
    """
    with _driver_cursor(conn, sql, row) as cursor:
        cursor.execute(sql, row)
        result = cursor.fetchone()
    if result is None:  # pragma: no cover - only used with RETURNING on a written row
        raise StoreError(f"no row returned by {sql}")
    return tuple(result)


_Processors = list[tuple[int, Callable[[Any], Any]]]


def _processors(table: Table, dialect: Dialect, columns: Sequence[str]) -> _Processors:
    """The bind processors the driver needs for ``columns``, by position."""
    # The dialect's own implementation of each type does the conversion (SQLite stores datetimes
    # as text in one fixed format, which range queries compare). Booleans need none: sqlite3 and
    # psycopg bind Python bools natively, and skipping them spares lines and tenders any per-row
    # work.
    return [
        (i, proc)
        for i, name in enumerate(columns)
        if not isinstance(table.columns[name].type, Boolean)
        and (proc := table.columns[name].type.dialect_impl(dialect).bind_processor(dialect))
        is not None
    ]


def _process(processors: _Processors, row: tuple[Any, ...]) -> tuple[Any, ...]:
    if not processors:
        return row
    values = list(row)
    for i, proc in processors:
        values[i] = proc(values[i])
    return tuple(values)


class BulkInsert:
    """A plain ``INSERT`` of whole rows, handed to the driver as one executemany.

    The SQL text and the columns' bind processors (UTC datetimes) are prepared once per table and
    dialect; rows come as tuples and run on the driver's cursor inside the session's transaction
    (:func:`driver_execute`; see the module docstring for why). Build one with
    :func:`bulk_insert`.

    Args:
        table: the table.
        dialect: the connection's dialect.
        columns: the order of the values in each row; every column of the table, once, except
            an autoincrement primary key, which may be left out.
        suffix: SQL appended to the statement.
    """

    def __init__(
        self, table: Table, dialect: Dialect, columns: tuple[str, ...], suffix: str = ""
    ) -> None:
        optional = {c.name for c in table.primary_key if c.autoincrement is True}
        if sorted(columns) != sorted(set(table.columns.keys()) - (optional - set(columns))):
            raise StoreError(f"{table.name}: rows must give every column once, got {columns}")
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in columns)
        values = ", ".join([placeholder(dialect)] * len(columns))
        # Identifiers come from our own table definitions, values travel as parameters.
        self.sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({values}){suffix}"  # noqa: S608
        self._processors = _processors(table, dialect, columns)

    def _process(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return _process(self._processors, row)

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert the rows in the connection's transaction; returns the driver's row count.

        Raises:
            sqlalchemy.exc.IntegrityError: wrapping the driver's, on a constraint violation.
        """
        if self._processors:
            rows = [self._process(row) for row in rows]
        return driver_execute(conn, self.sql, rows)

    def returning(self, conn: Connection, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """Insert one row with a ``RETURNING`` suffix and return what it returns."""
        return driver_fetch_one(conn, self.sql, self._process(row))


@lru_cache(maxsize=128)
def bulk_insert(
    table: Table,
    dialect: Dialect,
    columns: tuple[str, ...],
    on_conflict_ignore: str = "",
    returning: str = "",
) -> BulkInsert:
    """The cached :class:`BulkInsert` of ``table`` for ``dialect``.

    Args:
        table: the table.
        dialect: the connection's dialect.
        columns: the order of the values in each row.
        on_conflict_ignore: a key column; adds ``ON CONFLICT (key) DO NOTHING`` (the same on
            SQLite and PostgreSQL), so that the row count tells whether the row went in.
        returning: a column to return (use :meth:`BulkInsert.returning`).
    """
    quote = dialect.identifier_preparer.quote
    suffix = ""
    if on_conflict_ignore:
        suffix += f" ON CONFLICT ({quote(on_conflict_ignore)}) DO NOTHING"
    if returning:
        suffix += f" RETURNING {quote(returning)}"
    return BulkInsert(table, dialect, columns, suffix)


class RowUpdate:
    """``UPDATE table SET <columns> WHERE key = ?`` of one row, run on the driver.

    The counterpart of :class:`BulkInsert` for a header that changes at every step of a sale.
    Build one with :func:`row_update`.

    Args:
        table: the table.
        dialect: the connection's dialect.
        key: the key column of the row.
        columns: the columns set, in the order of the values given to :meth:`execute`.
    """

    def __init__(self, table: Table, dialect: Dialect, key: str, columns: tuple[str, ...]) -> None:
        quote, mark = dialect.identifier_preparer.quote, placeholder(dialect)
        assignments = ", ".join(f"{quote(name)} = {mark}" for name in columns)
        # Identifiers come from our own table definitions, values travel as parameters.
        self.sql = f"UPDATE {quote(table.name)} SET {assignments} WHERE {quote(key)} = {mark}"  # noqa: S608
        self._processors = _processors(table, dialect, (*columns, key))

    def execute(self, conn: Connection, key: object, values: tuple[Any, ...]) -> int:
        """Set the row's columns to ``values``; returns the number of rows changed (0 or 1)."""
        return driver_execute(conn, self.sql, [_process(self._processors, (*values, key))])


@lru_cache(maxsize=32)
def row_update(table: Table, dialect: Dialect, key: str, columns: tuple[str, ...]) -> RowUpdate:
    """The cached :class:`RowUpdate` of ``columns`` of ``table`` for ``dialect``."""
    return RowUpdate(table, dialect, key, columns)


def dumps(data: object) -> str:
    """Compact JSON that keeps Chinese text readable in the database."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def ref_row(ref: PaymentRef | None) -> tuple[str | None, ...]:
    """The payment-reference columns of a tender, in :data:`REF_COLUMNS` order (NULL for cash)."""
    if ref is None:
        return _NO_REF
    return (ref.ecr_ref, ref.rrn, ref.trace, ref.batch, ref.auth_code, ref.masked_pan, ref.wallet)


def ref_from(row: RowMapping) -> PaymentRef | None:
    """The PaymentRef stored in a tender row, or None for cash."""
    if row["ecr_ref"] is None:
        return None
    return PaymentRef(
        ecr_ref=row["ecr_ref"],
        rrn=row["rrn"],
        trace=row["trace"],
        batch=row["batch"],
        auth_code=row["auth_code"],
        masked_pan=row["masked_pan"],
        wallet=row["wallet"],
    )


def discount_row(discount: ManualDiscount | None) -> tuple[str | int | None, ...]:
    """A manual discount's ``<prefix>_kind/_value/_reason`` columns (NULL for none)."""
    if discount is None:
        return _NO_DISCOUNT
    return (discount.kind.value, discount.value, discount.reason)


def discount_from(prefix: str, row: RowMapping) -> ManualDiscount | None:
    """The manual discount stored under ``prefix``, or None."""
    kind = row[f"{prefix}_kind"]
    if kind is None:
        return None
    return ManualDiscount(DiscountKind(kind), row[f"{prefix}_value"], row[f"{prefix}_reason"])


# Every sale of a day carries the same promotions: encode and decode each distinct set once.
@lru_cache(maxsize=32)
def promotions_json(promotions: tuple[Promotion, ...]) -> str:
    """The JSON snapshot of a sale's promotions."""
    return dumps([promotion_to_dict(p) for p in promotions])


@lru_cache(maxsize=32)
def promotions_from_json(text: str) -> tuple[Promotion, ...]:
    """The promotions of a JSON snapshot (immutable, so the cached tuple is safely shared)."""
    return tuple(promotion_from_dict(item) for item in json.loads(text))
