"""Terminal health in SQL: latest snapshot, samples for trends, alerts with their history.

:class:`SqlHealthRepository` works on a session it never commits; :class:`SqlHealthUnitOfWork`
is the transaction around it (with the terminal registry, whose certificate expiry the rules
need), like :class:`~shouyin.store.terminal_repo.SqlTerminalUnitOfWork`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy import Engine, RowMapping, delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from shouyin.fleet.health import AlertKind, Condition, HealthSample, Severity
from shouyin.store.tables import HealthSampleRow, TerminalAlertRow, TerminalHealthRow, table
from shouyin.store.terminal_repo import SqlTerminalRepository
from shouyin.store.uow import make_session_factory

__all__ = ["AlertRecord", "SqlHealthRepository", "SqlHealthUnitOfWork"]

_LATEST = table(TerminalHealthRow)
_SAMPLES = table(HealthSampleRow)
_ALERTS = table(TerminalAlertRow)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as stored: raised once when its condition started, cleared when it ended."""

    alert_id: int
    terminal_id: str
    kind: AlertKind
    severity: Severity
    message: str
    raised_at: datetime
    cleared_at: datetime | None = None

    @property
    def active(self) -> bool:
        """True until the condition ends."""
        return self.cleared_at is None


def _alert_from(row: RowMapping) -> AlertRecord:
    return AlertRecord(
        alert_id=row["id"],
        terminal_id=row["terminal_id"],
        kind=AlertKind(row["kind"]),
        severity=Severity(row["severity"]),
        message=row["message"],
        raised_at=row["raised_at"],
        cleared_at=row["cleared_at"],
    )


class SqlHealthRepository:
    """Health samples and alerts on a SQLAlchemy session (never commits)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def save_sample(self, sample: HealthSample, *, heartbeat: bool = True) -> None:
        """Keep ``sample`` as the terminal's latest snapshot and in its trend history.

        Args:
            sample: the report.
            heartbeat: whether it came from the terminal answering (a heartbeat or diagnosis);
                an event notification changes the snapshot but is not a heartbeat.
        """
        conn = self._session.connection()
        snapshot = sample.model_dump_json()
        values: dict[str, object] = {"snapshot": snapshot}
        if heartbeat:
            values["last_heartbeat_at"] = sample.at
        done = conn.execute(
            update(_LATEST).where(_LATEST.c.terminal_id == sample.terminal_id).values(values)
        )
        if done.rowcount == 0:
            conn.execute(
                insert(_LATEST).values(
                    terminal_id=sample.terminal_id, last_heartbeat_at=sample.at, snapshot=snapshot
                )
            )
        conn.execute(
            insert(_SAMPLES).values(terminal_id=sample.terminal_id, at=sample.at, snapshot=snapshot)
        )

    def latest(self, terminal_id: str) -> tuple[datetime, HealthSample] | None:
        """The last heartbeat time and the latest snapshot, or None if never heard from."""
        row = (
            self._session.connection()
            .execute(select(_LATEST).where(_LATEST.c.terminal_id == terminal_id))
            .mappings()
            .first()
        )
        if row is None:
            return None
        return row["last_heartbeat_at"], HealthSample.model_validate_json(row["snapshot"])

    def terminal_ids(self) -> list[str]:
        """Every terminal that ever reported."""
        query = select(_LATEST.c.terminal_id).order_by(_LATEST.c.terminal_id)
        return list(self._session.connection().execute(query).scalars())

    def samples(self, terminal_id: str, since: datetime, limit: int = 1000) -> list[HealthSample]:
        """The terminal's samples since ``since``, oldest first (at most ``limit``, newest kept)."""
        query = (
            select(_SAMPLES.c.snapshot)
            .where(_SAMPLES.c.terminal_id == terminal_id, _SAMPLES.c.at >= since)
            .order_by(_SAMPLES.c.at.desc(), _SAMPLES.c.id.desc())
            .limit(limit)
        )
        rows = self._session.connection().execute(query).scalars().all()
        return [HealthSample.model_validate_json(text) for text in reversed(rows)]

    def prune(self, before: datetime) -> int:
        """Drop samples older than ``before`` (bounded retention); returns how many."""
        done = self._session.connection().execute(delete(_SAMPLES).where(_SAMPLES.c.at < before))
        return int(done.rowcount or 0)

    def active_alerts(self, terminal_id: str) -> dict[AlertKind, AlertRecord]:
        """The terminal's alerts that are not cleared, by kind."""
        query = select(_ALERTS).where(
            _ALERTS.c.terminal_id == terminal_id, _ALERTS.c.cleared_at.is_(None)
        )
        rows = self._session.connection().execute(query).mappings()
        return {record.kind: record for record in map(_alert_from, rows)}

    def raise_alert(self, terminal_id: str, condition: Condition, at: datetime) -> AlertRecord:
        """Store a newly raised alert."""
        values = {
            "terminal_id": terminal_id,
            "kind": condition.kind.value,
            "severity": condition.severity.value,
            "message": condition.message[:200],
            "raised_at": at,
            "cleared_at": None,
        }
        result = self._session.connection().execute(insert(_ALERTS).values(values))
        alert_id = result.inserted_primary_key
        assert alert_id is not None  # an INSERT always returns its key
        return AlertRecord(
            int(alert_id[0]),
            terminal_id,
            condition.kind,
            condition.severity,
            values["message"],  # type: ignore[arg-type]
            at,
        )

    def clear_alert(self, alert_id: int, at: datetime) -> None:
        """Mark an alert cleared (its condition ended)."""
        self._session.connection().execute(
            update(_ALERTS).where(_ALERTS.c.id == alert_id).values(cleared_at=at)
        )

    def history(self, terminal_id: str | None = None, limit: int = 100) -> list[AlertRecord]:
        """Alerts raised and cleared, newest first."""
        query = select(_ALERTS).order_by(_ALERTS.c.raised_at.desc(), _ALERTS.c.id.desc())
        if terminal_id is not None:
            query = query.where(_ALERTS.c.terminal_id == terminal_id)
        rows = self._session.connection().execute(query.limit(limit)).mappings()
        return [_alert_from(row) for row in rows]


class SqlHealthUnitOfWork:
    """One transaction over health and the terminal registry; rolled back unless committed.

    Args:
        engine: the database (migrated).
    """

    health: SqlHealthRepository
    terminals: SqlTerminalRepository

    def __init__(self, engine: Engine) -> None:
        self._factory: sessionmaker[Session] = make_session_factory(engine)
        self._session: Session | None = None

    def __enter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already in use; units of work do not nest")
        self._session = self._factory()
        self.health = SqlHealthRepository(self._session)
        self.terminals = SqlTerminalRepository(self._session)
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
            session.rollback()
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
