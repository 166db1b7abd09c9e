"""The storage API the services see: one repository Protocol per aggregate, plus its errors.

Two implementations satisfy every Protocol here: the SQL ones (``*_repo.py``, working on the
SQLAlchemy session of a :class:`~shouyin.store.uow.SqlUnitOfWork`) and the in-memory fakes in
:mod:`shouyin.store.fakes` for service tests. Services depend on these Protocols only.

Conventions shared by every repository:

* ``get`` returns ``None`` when there is no such record; lists come back in a stable order
  (documented per method).
* ``save`` inserts or updates the whole aggregate; ``add`` inserts a record that is never
  changed afterwards and raises :class:`Conflict` when its key is taken.
* Nothing is visible to other units of work until the unit of work commits; loaded objects are
  copies, so changing one without saving it changes nothing.
* Time ranges are half open: ``start <= t < end``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shouyin.domain.reports import Report
from shouyin.domain.returns import Return
from shouyin.domain.sale import Sale
from shouyin.domain.shift import Shift
from shouyin.domain.users import User

__all__ = [
    "Conflict",
    "Outbox",
    "OutboxMessage",
    "ReceiptCounter",
    "ReturnRepository",
    "SaleRepository",
    "ShiftRepository",
    "StoreError",
    "UserRepository",
    "ZReportRepository",
    "format_receipt_no",
]


class StoreError(Exception):
    """Root of the storage errors."""


class Conflict(StoreError):
    """A record with the same key (id, user name, receipt number, Z number) already exists.

    The unit of work must be rolled back afterwards (leaving its ``with`` block does that).
    """


def format_receipt_no(lane_id: str, number: int) -> str:
    """The printed receipt number (小票号): ``L01-000123``, at least six digits."""
    return f"{lane_id}-{number:06d}"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message queued for the store server.

    Attributes:
        id: increasing per database; the server's idempotency key together with the lane.
        topic: what happened (``sale.completed``, ``return.created``, ...).
        payload: JSON-ready data.
        created_at: when it was queued.
        sent_at: when the server acknowledged it, or ``None`` while pending.
    """

    id: int
    topic: str
    payload: Mapping[str, object]
    created_at: datetime
    sent_at: datetime | None = None


class UserRepository(Protocol):
    """Staff accounts."""

    def get(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        ...

    def get_by_username(self, username: str) -> User | None:
        """The user with this login name, or None."""
        ...

    def add(self, user: User) -> None:
        """Insert a new user.

        Raises:
            Conflict: if the id or the user name is taken.
        """
        ...

    def save(self, user: User) -> None:
        """Write back a changed user (login counters, lock, password, role...).

        Raises:
            LookupError: if the user was never added.
            Conflict: if the new user name is taken.
        """
        ...

    def count_failed_login(self, user_id: str, now: datetime) -> int:
        """Count one more failed sign-in atomically (concurrent failures all count), after
        clearing a lock expired by ``now``; return the new count.

        Raises:
            LookupError: if there is no such user.
        """
        ...

    def lock_until(self, user_id: str, until: datetime) -> None:
        """Lock the account until ``until`` (never shortening a lock already set)."""
        ...

    def record_sign_in(self, user: User, now: datetime) -> bool:
        """Write a successful sign-in (counter reset, last login, password hash) unless the
        account is disabled or locked at ``now``; return whether it was written."""
        ...

    def list(self) -> list[User]:
        """Every user, by user name."""
        ...


class SaleRepository(Protocol):
    """Sales with their lines and tenders."""

    def get(self, sale_id: str) -> Sale | None:
        """The sale with this id, rebuilt without events, or None."""
        ...

    def save(self, sale: Sale) -> None:
        """Insert or update a sale with all its lines and tenders.

        Raises:
            Conflict: if another sale of the lane has the same receipt number.
        """
        ...

    def list_by_shift(self, shift_ids: Collection[str]) -> list[Sale]:
        """Every sale of these shifts, in any state, by opening time then id."""
        ...

    def list_completed_between(self, start: datetime, end: datetime) -> list[Sale]:
        """Sales completed in ``[start, end)``, by completion time then id."""
        ...

    def held(self, lane_id: str) -> list[Sale]:
        """The lane's suspended (held) sales, oldest first."""
        ...


class ReturnRepository(Protocol):
    """Returns: immutable once made."""

    def add(self, ret: Return) -> None:
        """Insert a return.

        Raises:
            Conflict: if its id is taken.
        """
        ...

    def get(self, return_id: str) -> Return | None:
        """The return with this id, or None."""
        ...

    def for_sale(self, sale_id: str) -> list[Return]:
        """Every return against this sale, oldest first (the ``prior_returns`` of a new one)."""
        ...

    def list_by_shift(self, shift_ids: Collection[str]) -> list[Return]:
        """Every return made in these shifts, oldest first."""
        ...


class ShiftRepository(Protocol):
    """Shifts with their cash movements and no-sales."""

    def get(self, shift_id: str) -> Shift | None:
        """The shift with this id, or None."""
        ...

    def save(self, shift: Shift) -> None:
        """Insert or update a shift with its movements and no-sales."""
        ...

    def open_for_lane(self, lane_id: str) -> Shift | None:
        """The lane's open shift, if any (the newest, should there be several)."""
        ...

    def list_for_day(self, lane_id: str, day_start: datetime, day_end: datetime) -> list[Shift]:
        """The lane's shifts opened in ``[day_start, day_end)``, oldest first."""
        ...


class ZReportRepository(Protocol):
    """Z reports, kept exactly as printed."""

    def last_number(self, lane_id: str) -> int:
        """The lane's highest Z number, 0 before the first."""
        ...

    def add(self, report: Report, lane_id: str) -> None:
        """Keep a Z report.

        Raises:
            ValueError: if ``report`` is not a Z report with a number and a business day.
            Conflict: if the lane already has a report with that number.
        """
        ...

    def get(self, lane_id: str, number: int) -> Report | None:
        """The lane's Z report with this number, equal to the one added, or None."""
        ...


class ReceiptCounter(Protocol):
    """Gapless receipt numbers per lane."""

    def next(self, lane_id: str) -> str:
        """Take the lane's next receipt number (``L01-000123``), starting at 1.

        The number belongs to the unit of work: if it rolls back, the number is handed out again,
        so committed sales have no gaps. Concurrent units of work on the same lane wait for each
        other (the counter row stays locked until commit).
        """
        ...


class Outbox(Protocol):
    """Messages for the store server, written in the same transaction as what they report."""

    def add(self, topic: str, payload: Mapping[str, object], *, now: datetime | None = None) -> int:
        """Queue a message; ``now`` defaults to the current UTC time.

        Returns:
            The message id.
        """
        ...

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Up to ``limit`` unsent messages, oldest first."""
        ...

    def mark_sent(self, ids: Collection[int], now: datetime) -> None:
        """Record that the server acknowledged these messages."""
        ...
