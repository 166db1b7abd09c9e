"""Rollouts and their progress in SQL (:class:`~shouyin.fleet.updates.rollout.RolloutStore`),
with an audit entry for every terminal's final outcome.

The firmware version a terminal reports is also written to its registry record
(``terminals.firmware_version``), for the terminal list and the health checks.

Each call is its own short transaction (progress must be on disk as it happens, so that a
crashed rollout shows where it stopped). Final outcomes (installed, rolled back, failed) are
appended to the audit log (:class:`shouyin.store.audit_repo.SqlAuditLog`) in the same
transaction as the progress they record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, RowMapping, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome
from shouyin.fleet.updates.package import PackageKind
from shouyin.fleet.updates.repository import Package
from shouyin.fleet.updates.rollout import (
    Progress,
    Rollout,
    RolloutStatus,
    TerminalProgress,
)
from shouyin.store.audit_repo import SqlAuditLog
from shouyin.store.tables import (
    TerminalRow,
    UpdateRolloutRow,
    UpdateRolloutTerminalRow,
    table,
)
from shouyin.store.uow import make_session_factory

__all__ = ["SqlRolloutStore", "audit_published", "rollout_progress"]

logger = logging.getLogger(__name__)

_R = table(UpdateRolloutRow)
_T = table(UpdateRolloutTerminalRow)
_REGISTRY = table(TerminalRow)
_AUDITED = {
    Progress.INSTALLED: AuditOutcome.SUCCESS,
    Progress.ROLLED_BACK: AuditOutcome.FAILURE,
    Progress.FAILED: AuditOutcome.FAILURE,
}


def _rollout_from(row: RowMapping) -> Rollout:
    package = Package(
        target=row["target"],
        version=row["version"],
        kind=PackageKind(row["kind"]),
        model=row["model"],
        length=row["length"],
        sha256=row["sha256"],
    )
    return Rollout(
        rollout_id=row["rollout_id"],
        package=package,
        url=row["url"],
        percent=row["percent"],
        named=tuple(json.loads(row["named"])),
        created_at=row["created_at"],
    )


def audit_published(session: Session, package: Package, *, actor: str, at: datetime) -> None:
    """Append ``update.published`` for ``package`` to the audit log (in ``session``)."""
    SqlAuditLog(session).append(
        AuditEvent(
            action=AuditAction.UPDATE_PUBLISHED,
            outcome=AuditOutcome.SUCCESS,
            actor=actor,
            source="cli",
            target=f"package:{package.target}",
            at=at,
            details={"version": package.version, "sha256": package.sha256},
        )
    )


class SqlRolloutStore:
    """Rollouts in the store's database.

    Args:
        engine: the (migrated) database.
        actor: who runs the rollouts, for the audit log.
        source: from where, for the audit log.
    """

    def __init__(self, engine: Engine, *, actor: str = "admin", source: str = "cli") -> None:
        self._sessions: sessionmaker[Session] = make_session_factory(engine)
        self.actor = actor
        self.source = source

    def save_rollout(self, rollout: Rollout, terminal_ids: Sequence[str]) -> None:
        """Create ``rollout`` or widen it (percent, names); new terminals are added as pending."""
        values = {
            "version": rollout.package.version,
            "kind": rollout.package.kind.value,
            "model": rollout.package.model,
            "target": rollout.package.target,
            "sha256": rollout.package.sha256,
            "length": rollout.package.length,
            "url": rollout.url,
            "percent": rollout.percent,
            "named": json.dumps(list(rollout.named)),
            "updated_at": rollout.created_at,
        }
        with self._sessions.begin() as session:
            conn = session.connection()
            old = conn.execute(
                select(_R.c.percent, _R.c.named).where(_R.c.rollout_id == rollout.rollout_id)
            ).first()
            if old is None:
                conn.execute(
                    insert(_R).values(
                        rollout_id=rollout.rollout_id, created_at=rollout.created_at, **values
                    )
                )
            else:  # widening never drops terminals: keep the larger share and every name
                values["percent"] = max(old.percent, rollout.percent)
                values["named"] = json.dumps(
                    sorted(set(json.loads(old.named)) | set(rollout.named))
                )
                conn.execute(update(_R).where(_R.c.rollout_id == rollout.rollout_id).values(values))
            known = set(
                conn.execute(
                    select(_T.c.terminal_id).where(_T.c.rollout_id == rollout.rollout_id)
                ).scalars()
            )
            new = [tid for tid in terminal_ids if tid not in known]
            if new:
                conn.execute(
                    insert(_T),
                    [
                        {
                            "rollout_id": rollout.rollout_id,
                            "terminal_id": tid,
                            "state": Progress.PENDING.value,
                            "firmware_version": None,
                            "message": None,
                            "updated_at": rollout.created_at,
                        }
                        for tid in new
                    ],
                )

    def set_progress(
        self,
        rollout_id: str,
        terminal_id: str,
        state: Progress,
        *,
        firmware_version: str | None = None,
        message: str | None = None,
        at: datetime,
    ) -> None:
        """Record one terminal's progress (and audit a final outcome)."""
        with self._sessions.begin() as session:
            conn = session.connection()
            values: dict[str, object] = {"state": state.value, "updated_at": at}
            values["message"] = message[:200] if message else None
            if firmware_version is not None:
                values["firmware_version"] = firmware_version
            conn.execute(
                update(_T)
                .where(_T.c.rollout_id == rollout_id, _T.c.terminal_id == terminal_id)
                .values(values)
            )
            conn.execute(update(_R).where(_R.c.rollout_id == rollout_id).values(updated_at=at))
            if firmware_version is not None:  # the registry shows what the terminal runs
                conn.execute(
                    update(_REGISTRY)
                    .where(_REGISTRY.c.terminal_id == terminal_id)
                    .values(firmware_version=firmware_version)
                )
            outcome = _AUDITED.get(state)
            if outcome is not None:
                SqlAuditLog(session).append(
                    AuditEvent(
                        action=AuditAction.UPDATE_INSTALLED,
                        outcome=outcome,
                        actor=self.actor,
                        source=self.source,
                        target=f"terminal:{terminal_id}",
                        at=at,
                        details={
                            "rollout": rollout_id,
                            "progress": state.value,
                            "running": firmware_version,
                        },
                    )
                )

    def status(self, rollout_id: str) -> RolloutStatus | None:
        """The rollout and every terminal's progress, or ``None``."""
        with self._sessions() as session:
            conn = session.connection()
            row = conn.execute(select(_R).where(_R.c.rollout_id == rollout_id)).mappings().first()
            if row is None:
                return None
            rows = conn.execute(
                select(_T).where(_T.c.rollout_id == rollout_id).order_by(_T.c.terminal_id)
            ).mappings()
            terminals = tuple(
                TerminalProgress(
                    terminal_id=r["terminal_id"],
                    state=Progress(r["state"]),
                    firmware_version=r["firmware_version"],
                    message=r["message"],
                    updated_at=r["updated_at"],
                )
                for r in rows
            )
            return RolloutStatus(_rollout_from(row), terminals)

    def rollout_ids(self, limit: int = 20) -> list[str]:
        """The most recent rollouts' ids, newest first."""
        with self._sessions() as session:
            query = select(_R.c.rollout_id).order_by(_R.c.created_at.desc()).limit(limit)
            return list(session.connection().execute(query).scalars())

    def latest(self) -> RolloutStatus | None:
        """The newest rollout's progress (what the admin page shows first), if any."""
        ids = self.rollout_ids(1)
        return self.status(ids[0]) if ids else None


def rollout_progress(engine: Engine, limit: int = 10) -> list[RolloutStatus]:
    """The newest rollouts with every terminal's progress, newest first (the admin page's data).

    Args:
        engine: the store's (migrated) database.
        limit: how many rollouts.
    """
    store = SqlRolloutStore(engine)
    found = (store.status(rid) for rid in store.rollout_ids(limit))
    return [status for status in found if status is not None]
