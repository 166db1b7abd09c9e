"""In-memory twins of the repositories and the unit of work, for service tests.

:class:`FakeUnitOfWork` behaves like :class:`~shouyin.store.uow.SqlUnitOfWork` where services can
tell the difference:

* writes inside a ``with`` block are seen by later reads in the same block, and are kept only if
  :meth:`~FakeUnitOfWork.commit` is called (``committed`` records that it was);
* loaded objects are copies: changing a sale without saving it changes nothing stored;
* the same keys are unique (user id and name, receipt number per lane, return id, Z number per
  lane), raising :class:`~shouyin.store.repositories.Conflict`.

Outside a ``with`` block the repositories read and write the committed data directly, so that a
test can set up data and inspect the outcome without ceremony.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from shouyin.domain.audit import GENESIS_HASH, AuditEntry, AuditEvent, chain_entry
from shouyin.domain.catalogue import Catalogue
from shouyin.domain.reports import Report
from shouyin.domain.returns import Return
from shouyin.domain.sale import Sale
from shouyin.domain.sale_states import SaleState
from shouyin.domain.shift import Shift, ShiftState
from shouyin.domain.users import User
from shouyin.store.audit_repo import AuditFilter
from shouyin.store.report_repo import check_z_report
from shouyin.store.repositories import Conflict, OutboxMessage, format_receipt_no

__all__ = [
    "FakeAuditLog",
    "FakeData",
    "FakeOutbox",
    "FakeReceiptCounter",
    "FakeReturnRepository",
    "FakeSaleRepository",
    "FakeShiftRepository",
    "FakeUnitOfWork",
    "FakeUserRepository",
    "FakeZReportRepository",
    "copy_sale",
    "copy_shift",
]


def _check_aware(*times: datetime | None) -> None:
    """Refuse naive datetimes, as the SQL repositories do (their meaning is ambiguous)."""
    if any(t is not None and t.tzinfo is None for t in times):
        raise ValueError("naive datetime refused: store times in UTC with tzinfo")


def copy_sale(sale: Sale) -> Sale:
    """A new :class:`Sale` with the same persisted fields and no events (what a load returns)."""
    return Sale(
        sale_id=sale.sale_id,
        receipt_no=sale.receipt_no,
        lane_id=sale.lane_id,
        shift_id=sale.shift_id,
        cashier_id=sale.cashier_id,
        opened_at=sale.opened_at,
        state=sale.state,
        lines=sale.lines,
        tenders=sale.tenders,
        member_id=sale.member_id,
        order_discount=sale.order_discount,
        promotions=sale.promotions,
        completed_at=sale.completed_at,
        voided_at=sale.voided_at,
        voided_by=sale.voided_by,
        void_reason=sale.void_reason,
    )


def copy_shift(shift: Shift) -> Shift:
    """A new :class:`Shift` with the same persisted fields and no events."""
    return Shift(
        shift_id=shift.shift_id,
        lane_id=shift.lane_id,
        cashier_id=shift.cashier_id,
        opened_at=shift.opened_at,
        opening_float=shift.opening_float,
        state=shift.state,
        movements=shift.movements,
        no_sales=shift.no_sales,
        closed_at=shift.closed_at,
        counted_cash=shift.counted_cash,
    )


@dataclass(slots=True)
class FakeData:
    """Everything a fake database holds. Values are private snapshots, never handed out."""

    users: dict[str, User] = field(default_factory=dict)
    sales: dict[str, Sale] = field(default_factory=dict)
    cash_tenders: dict[str, tuple[str, int]] = field(default_factory=dict)
    returns: dict[str, Return] = field(default_factory=dict)
    shifts: dict[str, Shift] = field(default_factory=dict)
    z_reports: dict[tuple[str, int], Report] = field(default_factory=dict)
    receipt_counters: dict[str, int] = field(default_factory=dict)
    outbox: dict[int, OutboxMessage] = field(default_factory=dict)
    outbox_last_id: int = 0
    audit: list[AuditEntry] = field(default_factory=list)

    def copy(self) -> FakeData:
        """A copy whose dicts can change independently (the snapshots in them never change)."""
        return FakeData(
            users=dict(self.users),
            sales=dict(self.sales),
            cash_tenders=dict(self.cash_tenders),
            returns=dict(self.returns),
            shifts=dict(self.shifts),
            z_reports=dict(self.z_reports),
            receipt_counters=dict(self.receipt_counters),
            outbox=dict(self.outbox),
            outbox_last_id=self.outbox_last_id,
            audit=list(self.audit),
        )


class _FakeRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    @property
    def _data(self) -> FakeData:
        return self._uow.data


class FakeUserRepository(_FakeRepository):
    """In-memory :class:`~shouyin.store.repositories.UserRepository`."""

    def get(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        user = self._data.users.get(user_id)
        return None if user is None else replace(user)

    def get_by_username(self, username: str) -> User | None:
        """The user with this login name, or None."""
        found = next((u for u in self._data.users.values() if u.username == username), None)
        return None if found is None else replace(found)

    def add(self, user: User) -> None:
        """Insert a new user; Conflict if the id or user name is taken."""
        if user.user_id in self._data.users or self.get_by_username(user.username) is not None:
            raise Conflict(f"user {user.user_id} / {user.username!r} already exists")
        _check_aware(user.locked_until, user.last_login_at)
        self._data.users[user.user_id] = replace(user)

    def save(self, user: User) -> None:
        """Write back a changed user; LookupError if never added, Conflict on a taken name."""
        if user.user_id not in self._data.users:
            raise LookupError(f"no user {user.user_id} to save")
        other = self.get_by_username(user.username)
        if other is not None and other.user_id != user.user_id:
            raise Conflict(f"user name {user.username!r} is taken")
        _check_aware(user.locked_until, user.last_login_at)
        self._data.users[user.user_id] = replace(user)

    def count_failed_login(self, user_id: str, now: datetime) -> int:
        """Count one more failure (after clearing a lock expired by ``now``); the new count."""
        _check_aware(now)
        stored = self._data.users.get(user_id)
        if stored is None:
            raise LookupError(f"no user {user_id} to count a failure for")
        if stored.locked_until is not None and stored.locked_until <= now:
            stored = replace(stored, failed_logins=0, locked_until=None)
        stored = replace(stored, failed_logins=stored.failed_logins + 1)
        self._data.users[user_id] = stored
        return stored.failed_logins

    def lock_until(self, user_id: str, until: datetime) -> None:
        """Lock the account until ``until`` (never shortening a lock already set)."""
        _check_aware(until)
        stored = self._data.users.get(user_id)
        if stored is not None and (stored.locked_until is None or stored.locked_until < until):
            self._data.users[user_id] = replace(stored, locked_until=until)

    def record_sign_in(self, user: User, now: datetime) -> bool:
        """Write a successful sign-in unless the account is disabled or locked at ``now``."""
        _check_aware(now, user.last_login_at)
        stored = self._data.users.get(user.user_id)
        if stored is None or not stored.active or stored.is_locked(now):
            return False
        self._data.users[user.user_id] = replace(
            stored,
            failed_logins=0,
            locked_until=None,
            last_login_at=user.last_login_at,
            password_hash=user.password_hash,
        )
        return True

    def list(self) -> builtins.list[User]:
        """Every user, by user name."""
        return [replace(u) for u in sorted(self._data.users.values(), key=lambda u: u.username)]


class FakeSaleRepository(_FakeRepository):
    """In-memory :class:`~shouyin.store.repositories.SaleRepository`."""

    def get(self, sale_id: str) -> Sale | None:
        """The sale with this id, rebuilt without events, or None."""
        sale = self._data.sales.get(sale_id)
        return None if sale is None else copy_sale(sale)

    def save(self, sale: Sale) -> None:
        """Insert or update a sale; Conflict if its receipt number is taken on its lane."""
        _check_aware(sale.opened_at, sale.completed_at, sale.voided_at)
        for other in self._data.sales.values():
            if (
                other.sale_id != sale.sale_id
                and other.lane_id == sale.lane_id
                and other.receipt_no == sale.receipt_no
            ):
                raise Conflict(f"receipt {sale.receipt_no} already used on {sale.lane_id}")
        self._data.sales[sale.sale_id] = copy_sale(sale)

    def list_by_shift(self, shift_ids: Collection[str]) -> list[Sale]:
        """Every sale of these shifts, by opening time then id."""
        found = [s for s in self._data.sales.values() if s.shift_id in shift_ids]
        return [copy_sale(s) for s in sorted(found, key=lambda s: (s.opened_at, s.sale_id))]

    def list_completed_between(self, start: datetime, end: datetime) -> list[Sale]:
        """Sales completed in ``[start, end)``, by completion time then id."""
        found = [
            (s.completed_at, s)
            for s in self._data.sales.values()
            if s.completed_at is not None and start <= s.completed_at < end
        ]
        found.sort(key=lambda pair: (pair[0], pair[1].sale_id))
        return [copy_sale(s) for _, s in found]

    def held(self, lane_id: str) -> list[Sale]:
        """The lane's held sales, oldest first."""
        found = [
            s
            for s in self._data.sales.values()
            if s.lane_id == lane_id and s.state is SaleState.HELD
        ]
        return [copy_sale(s) for s in sorted(found, key=lambda s: (s.opened_at, s.sale_id))]

    def by_receipt(self, lane_id: str, receipt_no: str) -> Sale | None:
        """The lane's sale with this receipt number, or None."""
        for s in self._data.sales.values():
            if s.lane_id == lane_id and s.receipt_no == receipt_no:
                return copy_sale(s)
        return None

    def unfinished(self, shift_id: str) -> list[Sale]:
        """The shift's sales still open, tendering or paid, oldest first."""
        states = (SaleState.OPEN, SaleState.TENDERING, SaleState.PAID)
        found = [
            s for s in self._data.sales.values() if s.shift_id == shift_id and s.state in states
        ]
        return [copy_sale(s) for s in sorted(found, key=lambda s: (s.opened_at, s.sale_id))]

    def cash_tender(self, tender_id: str) -> tuple[str, int] | None:
        """The sale id and tender number recorded for the page's cash tender id, or None."""
        return self._data.cash_tenders.get(tender_id)

    def record_cash_tender(
        self, tender_id: str, sale_id: str, tender_no: int, at: datetime
    ) -> None:
        """Record the page's id of a cash tender; Conflict if it is recorded already."""
        _check_aware(at)
        if tender_id in self._data.cash_tenders:
            raise Conflict(f"cash tender id {tender_id} already recorded")
        self._data.cash_tenders[tender_id] = (sale_id, tender_no)


class FakeReturnRepository(_FakeRepository):
    """In-memory :class:`~shouyin.store.repositories.ReturnRepository` (returns are immutable)."""

    def add(self, ret: Return) -> None:
        """Insert a return; Conflict if its id is taken."""
        if ret.return_id in self._data.returns:
            raise Conflict(f"return {ret.return_id} already exists")
        _check_aware(ret.created_at)
        self._data.returns[ret.return_id] = ret

    def get(self, return_id: str) -> Return | None:
        """The return with this id, or None."""
        return self._data.returns.get(return_id)

    def for_sale(self, sale_id: str) -> list[Return]:
        """Every return against this sale, oldest first."""
        return self._sorted(r for r in self._data.returns.values() if r.sale_id == sale_id)

    def list_by_shift(self, shift_ids: Collection[str]) -> list[Return]:
        """Every return made in these shifts, oldest first."""
        return self._sorted(r for r in self._data.returns.values() if r.shift_id in shift_ids)

    @staticmethod
    def _sorted(returns: Iterable[Return]) -> list[Return]:
        return sorted(returns, key=lambda r: (r.created_at, r.return_id))


class FakeShiftRepository(_FakeRepository):
    """In-memory :class:`~shouyin.store.repositories.ShiftRepository`."""

    def get(self, shift_id: str) -> Shift | None:
        """The shift with this id, or None."""
        shift = self._data.shifts.get(shift_id)
        return None if shift is None else copy_shift(shift)

    def save(self, shift: Shift) -> None:
        """Insert or update a shift."""
        _check_aware(
            shift.opened_at,
            shift.closed_at,
            *(m.at for m in shift.movements),
            *(n.at for n in shift.no_sales),
        )
        self._data.shifts[shift.shift_id] = copy_shift(shift)

    def open_for_lane(self, lane_id: str) -> Shift | None:
        """The lane's open shift, if any (the newest, should there be several)."""
        found = [s for s in self._by_lane(lane_id) if s.state is ShiftState.OPEN]
        return copy_shift(found[-1]) if found else None

    def list_for_day(self, lane_id: str, day_start: datetime, day_end: datetime) -> list[Shift]:
        """The lane's shifts opened in ``[day_start, day_end)``, oldest first."""
        return [copy_shift(s) for s in self._by_lane(lane_id) if day_start <= s.opened_at < day_end]

    def _by_lane(self, lane_id: str) -> list[Shift]:
        found = [s for s in self._data.shifts.values() if s.lane_id == lane_id]
        return sorted(found, key=lambda s: (s.opened_at, s.shift_id))


class FakeZReportRepository(_FakeRepository):
    """In-memory :class:`~shouyin.store.repositories.ZReportRepository`."""

    def last_number(self, lane_id: str) -> int:
        """The lane's highest Z number, 0 before the first."""
        return max((n for lane, n in self._data.z_reports if lane == lane_id), default=0)

    def add(self, report: Report, lane_id: str) -> None:
        """Keep a Z report; ValueError if it is not one, Conflict if the number is taken."""
        number, _ = check_z_report(report)
        if (lane_id, number) in self._data.z_reports:
            raise Conflict(f"lane {lane_id} already has Z report {number}")
        _check_aware(report.generated_at)
        self._data.z_reports[lane_id, number] = report

    def get(self, lane_id: str, number: int) -> Report | None:
        """The lane's Z report with this number, or None."""
        return self._data.z_reports.get((lane_id, number))


class FakeReceiptCounter(_FakeRepository):
    """In-memory :class:`~shouyin.store.repositories.ReceiptCounter` (rolled back with the rest)."""

    def next(self, lane_id: str) -> str:
        """Take the lane's next receipt number, ``L01-000123``, starting at 1."""
        number = self._data.receipt_counters.get(lane_id, 1)
        self._data.receipt_counters[lane_id] = number + 1
        return format_receipt_no(lane_id, number)


class FakeOutbox(_FakeRepository):
    """In-memory :class:`~shouyin.store.repositories.Outbox`."""

    def add(self, topic: str, payload: Mapping[str, object], *, now: datetime | None = None) -> int:
        """Queue a message (the payload is copied, as the SQL outbox stores JSON text)."""
        _check_aware(now)
        data = self._data
        data.outbox_last_id += 1
        data.outbox[data.outbox_last_id] = OutboxMessage(
            id=data.outbox_last_id,
            topic=topic,
            payload=copy.deepcopy(dict(payload)),
            created_at=now if now is not None else datetime.now(UTC),
        )
        return data.outbox_last_id

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Up to ``limit`` unsent messages, oldest first."""
        unsent = [m for _, m in sorted(self._data.outbox.items()) if m.sent_at is None]
        return unsent[:limit]

    def mark_sent(self, ids: Collection[int], now: datetime) -> None:
        """Record that the server acknowledged these messages."""
        _check_aware(now)
        for message_id in ids:
            message = self._data.outbox.get(message_id)
            if message is not None and message.sent_at is None:
                self._data.outbox[message_id] = replace(message, sent_at=now)


class FakeAuditLog(_FakeRepository):
    """In-memory :class:`~shouyin.store.audit_repo.AuditLog`: the same chain, kept in a list."""

    def append(self, event: AuditEvent) -> AuditEntry:
        """Chain ``event`` onto the log."""
        entry = chain_entry(*self.head(), event)
        self._data.audit.append(entry)
        return entry

    def head(self) -> tuple[int, str]:
        """The last entry's number and hash."""
        log = self._data.audit
        return (log[-1].seq, log[-1].entry_hash) if log else (0, GENESIS_HASH)

    def entries(self, from_seq: int = 1) -> Iterator[AuditEntry]:
        """Every entry from ``from_seq`` on, ascending."""
        return iter([e for e in self._data.audit if e.seq >= from_seq])

    def list(self, query: AuditFilter) -> builtins.list[AuditEntry]:
        """The newest entries matching ``query``, newest first."""
        found = [
            e
            for e in reversed(self._data.audit)
            if (query.since is None or e.event.at >= query.since)
            and (query.until is None or e.event.at < query.until)
            and (query.action is None or e.event.action.startswith(query.action))
            and (query.actor is None or e.event.actor == query.actor)
            and (query.target is None or e.event.target == query.target)
            and (query.outcome is None or e.event.outcome is query.outcome)
        ]
        return found[: max(1, query.limit)]


class FakeUnitOfWork:
    """An in-memory unit of work with the interface of :class:`~shouyin.store.uow.SqlUnitOfWork`.

    Attributes:
        committed: True once :meth:`commit` has been called (the Cosmic Python check).
        commits: how many times :meth:`commit` was called.
        products: the in-memory catalogue.

    Args:
        catalogue: the catalogue exposed as ``products`` (empty by default).
    """

    def __init__(self, catalogue: Catalogue | None = None) -> None:
        self.products = catalogue if catalogue is not None else Catalogue()
        self.committed = False
        self.commits = 0
        self._committed_data = FakeData()
        self._work: FakeData | None = None
        self.users = FakeUserRepository(self)
        self.sales = FakeSaleRepository(self)
        self.returns = FakeReturnRepository(self)
        self.shifts = FakeShiftRepository(self)
        self.z_reports = FakeZReportRepository(self)
        self.receipts = FakeReceiptCounter(self)
        self.outbox = FakeOutbox(self)
        self.audit = FakeAuditLog(self)

    @property
    def data(self) -> FakeData:
        """What the repositories see: the block's working copy, or the committed data outside."""
        return self._work if self._work is not None else self._committed_data

    def __enter__(self) -> Self:
        if self._work is not None:
            raise RuntimeError("this unit of work is already in use; units of work do not nest")
        self._work = self._committed_data.copy()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._work = None  # whatever was not committed is dropped

    def commit(self) -> None:
        """Keep everything written in this block."""
        if self._work is None:
            raise RuntimeError("use the unit of work inside a 'with' block")
        self._committed_data = self._work
        self._work = self._committed_data.copy()
        self.committed = True
        self.commits += 1

    def rollback(self) -> None:
        """Drop everything written since the last commit."""
        if self._work is None:
            raise RuntimeError("use the unit of work inside a 'with' block")
        self._work = self._committed_data.copy()
