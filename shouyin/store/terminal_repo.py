"""The payment terminal registry in SQL, and a unit of work for the admin commands that use it."""

from __future__ import annotations

import builtins
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine, RowMapping, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shouyin.fleet.registry import Terminal, TerminalExists, TerminalState, UnknownTerminal
from shouyin.store.audit_repo import CheckpointStore, SqlAuditLog
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.tables import TerminalRow, table
from shouyin.store.uow import make_session_factory

__all__ = ["SqlTerminalRepository", "SqlTerminalUnitOfWork"]

_T = table(TerminalRow)


def _values(terminal: Terminal) -> dict[str, Any]:
    return {
        "terminal_id": terminal.terminal_id,
        "lane_id": terminal.lane_id,
        "display_name": terminal.display_name,
        "link_url": terminal.link_url,
        "state": terminal.state.value,
        "registered_at": terminal.registered_at,
        "paired_at": terminal.paired_at,
        "key_id": terminal.key_id,
        "certificate_serial": terminal.certificate_serial,
        "certificate_expires_at": terminal.certificate_expires_at,
        "revoked_at": terminal.revoked_at,
        "firmware_version": terminal.firmware_version,
        "last_seen_at": terminal.last_seen_at,
    }


def _terminal_from(row: RowMapping) -> Terminal:
    return Terminal(
        terminal_id=row["terminal_id"],
        lane_id=row["lane_id"],
        display_name=row["display_name"],
        link_url=row["link_url"],
        state=TerminalState(row["state"]),
        registered_at=row["registered_at"],
        paired_at=row["paired_at"],
        key_id=row["key_id"],
        certificate_serial=row["certificate_serial"],
        certificate_expires_at=row["certificate_expires_at"],
        revoked_at=row["revoked_at"],
        firmware_version=row["firmware_version"],
        last_seen_at=row["last_seen_at"],
    )


class SqlTerminalRepository:
    """:class:`~shouyin.fleet.registry.TerminalRepository` on a SQLAlchemy session.

    Args:
        session: the unit of work's session; this repository never commits.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, terminal_id: str) -> Terminal | None:
        """The terminal with this id, or None."""
        row = (
            self._session.connection()
            .execute(select(_T).where(_T.c.terminal_id == terminal_id))
            .mappings()
            .first()
        )
        return None if row is None else _terminal_from(row)

    def add(self, terminal: Terminal) -> None:
        """Insert a new terminal.

        Raises:
            TerminalExists: if the id is taken.
        """
        try:
            self._session.connection().execute(_T.insert(), _values(terminal))
        except IntegrityError as error:
            raise TerminalExists(terminal.terminal_id) from error

    def save(self, terminal: Terminal) -> None:
        """Write back a changed terminal.

        Raises:
            UnknownTerminal: if it was never added.
        """
        values = _values(terminal)
        del values["terminal_id"]
        result = self._session.connection().execute(
            update(_T).where(_T.c.terminal_id == terminal.terminal_id), values
        )
        if result.rowcount != 1:
            raise UnknownTerminal(terminal.terminal_id)

    def list(self, lane_id: str | None = None) -> builtins.list[Terminal]:
        """Every terminal (of one lane, if given), by lane then terminal id."""
        query = select(_T).order_by(_T.c.lane_id, _T.c.terminal_id)
        if lane_id is not None:
            query = query.where(_T.c.lane_id == lane_id)
        return [_terminal_from(row) for row in self._session.connection().execute(query).mappings()]


class SqlTerminalUnitOfWork:
    """:class:`~shouyin.fleet.registry.TerminalUnitOfWork` on SQLAlchemy: one transaction per
    ``with`` block, rolled back unless :meth:`commit` was called. Reusable, not nestable.

    Args:
        session_factory: from :func:`shouyin.store.uow.make_session_factory`.
        engine: an engine this unit of work owns and :meth:`dispose` closes (see :meth:`open`).
    """

    terminals: SqlTerminalRepository
    audit: SqlAuditLog
    checkpoints: CheckpointStore | None = None
    """Set it to keep the audit log's signed checkpoint current after each commit that appended."""

    def __init__(
        self, session_factory: sessionmaker[Session], *, engine: Engine | None = None
    ) -> None:
        self._factory = session_factory
        self._engine = engine
        self._session: Session | None = None

    @classmethod
    def open(cls, database_url: str) -> SqlTerminalUnitOfWork:
        """Connect to ``database_url``, migrate it if needed, and own the engine.

        Args:
            database_url: a SQLAlchemy URL (``Settings.resolved_database_url()``).

        Returns:
            The unit of work; call :meth:`dispose` when done.
        """
        engine = make_engine(database_url)
        upgrade(engine)
        return cls(make_session_factory(engine), engine=engine)

    def __enter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already in use; units of work do not nest")
        self._session = self._factory()
        self.terminals = SqlTerminalRepository(self._session)
        self.audit = SqlAuditLog(self._session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.rollback()  # a no-op after commit()
        finally:
            session.close()

    def commit(self) -> None:
        """Commit the block's writes.

        Raises:
            RuntimeError: outside a ``with`` block.
        """
        if self._session is None:
            raise RuntimeError("use the unit of work inside a 'with' block")
        self._session.commit()
        appended, self.audit.appended = self.audit.appended, None
        if appended is not None and self.checkpoints is not None:
            self.checkpoints.advance(*appended)

    def dispose(self) -> None:
        """Close the owned engine's connections (nothing when the engine was not ours)."""
        if self._engine is not None:
            self._engine.dispose()
