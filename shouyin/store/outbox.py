"""Receipt numbers and the outbox in SQL: the two per-lane sequences a checkout writes to."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import Dialect, select, update
from sqlalchemy.orm import Session

from shouyin.store.repositories import OutboxMessage, format_receipt_no
from shouyin.store.rows import bulk_insert, driver_fetch_one, dumps, placeholder
from shouyin.store.tables import OutboxRow, table

__all__ = ["SqlOutbox", "SqlReceiptCounter"]

_O = table(OutboxRow)


@lru_cache(maxsize=8)
def _bump_sql(dialect: Dialect) -> str:
    mark = placeholder(dialect)
    # The same statement on SQLite (3.35+) and PostgreSQL.
    return (
        f"INSERT INTO receipt_counters (lane_id, next_no) VALUES ({mark}, 2) "  # noqa: S608
        "ON CONFLICT (lane_id) DO UPDATE SET next_no = receipt_counters.next_no + 1 "
        "RETURNING next_no"
    )


class SqlReceiptCounter:
    """:class:`~shouyin.store.repositories.ReceiptCounter` on a SQLAlchemy session.

    One upsert both creates a lane's counter and bumps it, and returns the number: there is no
    read-then-write window, and the lock it takes (the row on PostgreSQL, the database on SQLite)
    holds until the transaction ends, which is what makes the numbers gapless.

    Args:
        session: the unit of work's session; this repository never commits.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def next(self, lane_id: str) -> str:
        """Take the lane's next receipt number, ``L01-000123``, starting at 1."""
        conn = self._session.connection()
        (following,) = driver_fetch_one(conn, _bump_sql(conn.dialect), (lane_id,))
        return format_receipt_no(lane_id, int(following) - 1)


_OUTBOX_COLUMNS = ("topic", "payload", "created_at", "sent_at")


class SqlOutbox:
    """:class:`~shouyin.store.repositories.Outbox` on a SQLAlchemy session.

    Args:
        session: the unit of work's session; this repository never commits.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, topic: str, payload: Mapping[str, object], *, now: datetime | None = None) -> int:
        """Queue a message; ``now`` defaults to the current UTC time.

        Returns:
            The message id.
        """
        conn = self._session.connection()
        insert = bulk_insert(_O, conn.dialect, _OUTBOX_COLUMNS, returning="id")
        created = now if now is not None else datetime.now(UTC)
        (message_id,) = insert.returning(conn, (topic, dumps(payload), created, None))
        return int(message_id)

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Up to ``limit`` unsent messages, oldest first."""
        stmt = select(_O).where(_O.c.sent_at.is_(None)).order_by(_O.c.id).limit(limit)
        return [
            OutboxMessage(
                id=row["id"],
                topic=row["topic"],
                payload=json.loads(row["payload"]),
                created_at=row["created_at"],
                sent_at=row["sent_at"],
            )
            for row in self._session.connection().execute(stmt).mappings()
        ]

    def mark_sent(self, ids: Collection[int], now: datetime) -> None:
        """Record that the server acknowledged these messages."""
        if ids:
            stmt = update(_O).where(_O.c.id.in_(list(ids)), _O.c.sent_at.is_(None))
            self._session.connection().execute(stmt, {"sent_at": now})
