"""The unit of work: one database transaction around one service operation.

A service takes a unit of work and does ``with uow: ...; uow.commit()``. Everything written
through the repositories inside the block (a sale, its receipt number, its outbox message) becomes
visible and durable together at :meth:`commit`, or not at all: leaving the block without
committing, normally or by an exception, rolls back.

::

    def complete_sale(uow: AbstractUnitOfWork, ...) -> None:
        with uow:
            sale = uow.sales.get(sale_id)
            ...
            uow.sales.save(sale)
            uow.commit()

:class:`SqlUnitOfWork` is the real one; :class:`shouyin.store.fakes.FakeUnitOfWork` keeps
everything in memory for service tests. Both satisfy :class:`AbstractUnitOfWork`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shouyin.domain.catalogue import CatalogueReader
from shouyin.store.audit_repo import AuditLog, CheckpointStore, SqlAuditLog
from shouyin.store.catalogue_repo import SqlCatalogue
from shouyin.store.outbox import SqlOutbox, SqlReceiptCounter
from shouyin.store.report_repo import SqlZReportRepository
from shouyin.store.repositories import (
    Outbox,
    ReceiptCounter,
    ReturnRepository,
    SaleRepository,
    ShiftRepository,
    UserRepository,
    ZReportRepository,
)
from shouyin.store.return_repo import SqlReturnRepository
from shouyin.store.sale_repo import SqlSaleRepository
from shouyin.store.shift_repo import SqlShiftRepository
from shouyin.store.user_repo import SqlUserRepository

__all__ = ["AbstractUnitOfWork", "SqlUnitOfWork", "make_session_factory"]


class AbstractUnitOfWork(Protocol):
    """What services see: the repositories, and commit/rollback around a ``with`` block."""

    @property
    def users(self) -> UserRepository:
        """Staff accounts."""
        ...

    @property
    def sales(self) -> SaleRepository:
        """Sales."""
        ...

    @property
    def returns(self) -> ReturnRepository:
        """Returns."""
        ...

    @property
    def shifts(self) -> ShiftRepository:
        """Shifts."""
        ...

    @property
    def z_reports(self) -> ZReportRepository:
        """Z reports."""
        ...

    @property
    def receipts(self) -> ReceiptCounter:
        """Receipt numbers."""
        ...

    @property
    def outbox(self) -> Outbox:
        """Messages for the store server."""
        ...

    @property
    def products(self) -> CatalogueReader:
        """The catalogue."""
        ...

    @property
    def audit(self) -> AuditLog:
        """The audit log: append in the same transaction as the action it records."""
        ...

    def __enter__(self) -> Self:
        """Begin."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed, and end."""
        ...

    def commit(self) -> None:
        """Make everything written so far durable and visible."""
        ...

    def rollback(self) -> None:
        """Discard everything written since the last commit."""
        ...


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory for :class:`SqlUnitOfWork`.

    Objects are not expired on commit because the repositories hand out domain objects, not ORM
    instances; autoflush is off because repositories write with SQL statements immediately.
    """
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


class SqlUnitOfWork:
    """A unit of work on a SQLAlchemy session: one transaction per ``with`` block.

    The object can be reused for several ``with`` blocks, one after the other (not nested, and
    not from several threads at once). Each block starts with a clean session and repositories
    that remember nothing of earlier blocks; the session object itself is kept, closed, between
    blocks, since a checkout opens one block per sale and building a session each time is a
    measurable part of a commit.

    ``products`` is the :class:`SqlCatalogue`, which reads through its own short connections
    rather than this transaction: the catalogue changes rarely and by import, never as part of a
    sale, and its lookups stay on their fast path.

    Args:
        session_factory: from :func:`make_session_factory`.
        catalogue: the catalogue to expose as ``products``; by default a :class:`SqlCatalogue` on
            the factory's engine.
    """

    users: SqlUserRepository
    sales: SqlSaleRepository
    returns: SqlReturnRepository
    shifts: SqlShiftRepository
    z_reports: SqlZReportRepository
    receipts: SqlReceiptCounter
    outbox: SqlOutbox
    audit: SqlAuditLog
    checkpoints: CheckpointStore | None
    """Set it to keep the audit log's signed checkpoint current after each commit that appended."""

    def __init__(
        self, session_factory: sessionmaker[Session], catalogue: SqlCatalogue | None = None
    ) -> None:
        if catalogue is None:
            engine = session_factory.kw.get("bind")
            if not isinstance(engine, Engine):
                raise TypeError("the session factory must be bound to an Engine")
            catalogue = SqlCatalogue(engine)
        self.products = catalogue
        self._session = session_factory()
        self._active = False
        self.users = SqlUserRepository(self._session)
        self.returns = SqlReturnRepository(self._session)
        self.z_reports = SqlZReportRepository(self._session)
        self.receipts = SqlReceiptCounter(self._session)
        self.outbox = SqlOutbox(self._session)
        self.checkpoints = None
        self._forget()

    def __enter__(self) -> Self:
        if self._active:
            raise RuntimeError("this unit of work is already in use; units of work do not nest")
        self._active = True
        self._forget()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._active:
            return
        self._active = False
        try:
            self._session.rollback()  # nothing to undo after commit(): then this is a no-op
        finally:
            self._session.close()

    def commit(self) -> None:
        """Commit the transaction: everything written in this block becomes durable.

        Raises:
            RuntimeError: outside a ``with`` block.
            sqlalchemy.exc.SQLAlchemyError: if the database refuses; nothing is then committed,
                and leaving the block rolls back.
        """
        self._check_active()
        self._session.commit()
        appended, self.audit.appended = self.audit.appended, None
        if appended is not None and self.checkpoints is not None:
            self.checkpoints.advance(*appended)

    def rollback(self) -> None:
        """Discard everything written since the last commit; the block may go on afterwards.

        Raises:
            RuntimeError: outside a ``with`` block.
        """
        self._check_active()
        self._session.rollback()
        self._forget()

    def _check_active(self) -> None:
        if not self._active:
            raise RuntimeError("use the unit of work inside a 'with' block")

    def _forget(self) -> None:
        # These two remember what they stored in the current transaction (to write only what
        # changed); a new block or a rollback must start them afresh.
        self.sales = SqlSaleRepository(self._session)
        self.shifts = SqlShiftRepository(self._session)
        self.audit = SqlAuditLog(self._session)
