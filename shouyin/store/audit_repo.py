"""The audit log in SQL, and its signed checkpoint on disk.

Appending (what every money and admin service calls, inside its own unit of work)::

    with uow:
        ...                       # the action itself
        uow.audit.append(AuditEvent(action=AuditAction.SALE_COMPLETED, outcome=AuditOutcome.SUCCESS,
                                    actor=cashier.username, source=f"lane:{lane}",
                                    target=f"sale:{sale_id}", at=now, details={"amount": 1250}))
        uow.commit()              # the entry commits with the action, or neither does

Code without a lane unit of work (the fleet commands, the update publisher) calls
:func:`append_audit` with an engine: one short transaction for one entry.

Concurrency: :meth:`SqlAuditLog.append` first *updates* the single ``audit_head`` row (a row lock
on PostgreSQL, the database write lock on SQLite), then reads the head, chains the new entry onto
it and moves the head. A second writer waits on that lock until the first commits, then reads the
new head: two writers never chain onto the same entry.

The cut-off tail: after a commit that appended, the unit of work calls
:meth:`CheckpointStore.advance`, which signs ``(seq, entry_hash)`` of the head with an Ed25519 key
from the store's key directory and writes it next to it, outside the database.
:func:`verify_audit_log` checks the log against that checkpoint.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Engine, RowMapping, insert, select, update
from sqlalchemy.orm import Session

from shouyin.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditError,
    AuditEvent,
    AuditOutcome,
    ChainProblem,
    ChainReport,
    ChainVerifier,
    Checkpoint,
    ProblemKind,
    chain_entry,
)
from shouyin.link.keystore import atomic_write
from shouyin.store.tables import AuditEntryRow, AuditHeadRow, table

__all__ = [
    "CHECKPOINT_FILE",
    "CHECKPOINT_KEY_FILE",
    "AuditFilter",
    "AuditLog",
    "CheckpointInvalid",
    "CheckpointStore",
    "SqlAuditLog",
    "append_audit",
    "verify_audit_log",
]

logger = logging.getLogger(__name__)

_LOG = table(AuditEntryRow)
_HEAD = table(AuditHeadRow)
_HEAD_ID = 1
_PAGE = 1000

CHECKPOINT_KEY_FILE = "audit-checkpoint.key"
CHECKPOINT_FILE = "audit-checkpoint.json"


class CheckpointInvalid(AuditError):
    """The checkpoint file exists but is malformed or its signature does not verify."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries :meth:`AuditLog.list` returns (all fields optional, combined with AND)."""

    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    actor: str | None = None
    target: str | None = None
    outcome: AuditOutcome | None = None
    limit: int = 100


class AuditLog(Protocol):
    """The audit log as services see it (``uow.audit``)."""

    def append(self, event: AuditEvent) -> AuditEntry:
        """Chain ``event`` onto the log in the current transaction; return the new entry."""
        ...

    def head(self) -> tuple[int, str]:
        """The last entry's number and hash (``(0, GENESIS_HASH)`` when empty)."""
        ...

    def entries(self, from_seq: int = 1) -> Iterator[AuditEntry]:
        """Every entry from ``from_seq`` on, ascending."""
        ...

    def list(self, query: AuditFilter) -> builtins.list[AuditEntry]:
        """The newest entries matching ``query``, newest first."""
        ...


def _event_values(entry: AuditEntry) -> dict[str, Any]:
    event = entry.event
    return {
        "seq": entry.seq,
        "at": event.at,
        "action": event.action,
        "outcome": event.outcome.value,
        "actor": event.actor,
        "source": event.source,
        "target": event.target,
        "details": json.dumps(dict(event.details), sort_keys=True, ensure_ascii=False),
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
    }


def _entry_from(row: RowMapping) -> AuditEntry:
    event = AuditEvent(
        action=row["action"],
        outcome=AuditOutcome(row["outcome"]),
        actor=row["actor"],
        source=row["source"],
        target=row["target"],
        at=row["at"],
        details=json.loads(row["details"]),
    )
    return AuditEntry(row["seq"], event, row["prev_hash"], row["entry_hash"])


class SqlAuditLog:
    """:class:`AuditLog` on a SQLAlchemy session; never commits (the unit of work does).

    Attributes:
        appended: the head after this transaction's last append, or None if nothing was appended.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self.appended: tuple[int, str] | None = None

    def append(self, event: AuditEvent) -> AuditEntry:
        """Chain ``event`` onto the log (locks the head row until the transaction ends)."""
        conn = self._session.connection()
        # Lock first, read second: the no-op UPDATE takes the row lock (PostgreSQL) or the write
        # lock (SQLite) before we read the head, so the head we read cannot move under us.
        locked = conn.execute(
            update(_HEAD).where(_HEAD.c.head_id == _HEAD_ID).values(seq=_HEAD.c.seq)
        )
        if locked.rowcount == 0:  # a database built without the migration's head row
            conn.execute(insert(_HEAD).values(head_id=_HEAD_ID, seq=0, entry_hash=GENESIS_HASH))
        head = conn.execute(
            select(_HEAD.c.seq, _HEAD.c.entry_hash)
            .where(_HEAD.c.head_id == _HEAD_ID)
            .with_for_update()
        ).one()
        entry = chain_entry(head.seq, head.entry_hash, event)
        conn.execute(insert(_LOG).values(_event_values(entry)))
        conn.execute(
            update(_HEAD)
            .where(_HEAD.c.head_id == _HEAD_ID)
            .values(seq=entry.seq, entry_hash=entry.entry_hash)
        )
        self.appended = (entry.seq, entry.entry_hash)
        logger.debug("audit %d %s %s", entry.seq, event.action, event.outcome.value)
        return entry

    def head(self) -> tuple[int, str]:
        """The head row's number and hash."""
        row = (
            self._session.connection()
            .execute(select(_HEAD.c.seq, _HEAD.c.entry_hash).where(_HEAD.c.head_id == _HEAD_ID))
            .first()
        )
        return (0, GENESIS_HASH) if row is None else (row.seq, row.entry_hash)

    def entries(self, from_seq: int = 1) -> Iterator[AuditEntry]:
        """Every entry from ``from_seq`` on, ascending, read a page at a time."""
        conn = self._session.connection()
        after = from_seq - 1
        while True:
            rows = (
                conn.execute(
                    select(_LOG).where(_LOG.c.seq > after).order_by(_LOG.c.seq).limit(_PAGE)
                )
                .mappings()
                .all()
            )
            for row in rows:
                yield _entry_from(row)
            if len(rows) < _PAGE:
                return
            after = rows[-1]["seq"]

    def list(self, query: AuditFilter) -> builtins.list[AuditEntry]:
        """The newest entries matching ``query``, newest first."""
        statement = select(_LOG).order_by(_LOG.c.seq.desc()).limit(max(1, query.limit))
        if query.since is not None:
            statement = statement.where(_LOG.c.at >= query.since)
        if query.until is not None:
            statement = statement.where(_LOG.c.at < query.until)
        if query.action is not None:
            statement = statement.where(_LOG.c.action.startswith(query.action, autoescape=True))
        if query.actor is not None:
            statement = statement.where(_LOG.c.actor == query.actor)
        if query.target is not None:
            statement = statement.where(_LOG.c.target == query.target)
        if query.outcome is not None:
            statement = statement.where(_LOG.c.outcome == query.outcome.value)
        rows = self._session.connection().execute(statement).mappings()
        return [_entry_from(row) for row in rows]


class CheckpointStore:
    """The signed copy of the audit log's head, kept outside the database.

    The signing key is an Ed25519 key in the key directory (created on first use, mode 0600);
    the checkpoint is a small JSON file beside it. Writers take an exclusive ``flock`` and only
    ever move the checkpoint forward, so concurrent processes never write an older head over a
    newer one.

    Args:
        keys_dir: the store's key directory (``Settings.keys_dir``).
        path: the checkpoint file (default: ``keys_dir/audit-checkpoint.json``).
    """

    def __init__(self, keys_dir: Path, path: Path | None = None) -> None:
        self.keys_dir = keys_dir
        self.path = path or keys_dir / CHECKPOINT_FILE
        self._key: ed25519.Ed25519PrivateKey | None = None

    def _private_key(self) -> ed25519.Ed25519PrivateKey:
        if self._key is not None:
            return self._key
        key_path = self.keys_dir / CHECKPOINT_KEY_FILE
        self.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if key_path.exists():
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(loaded, ed25519.Ed25519PrivateKey):
                raise CheckpointInvalid(f"{key_path} is not an Ed25519 key")
            self._key = loaded
        else:
            key = ed25519.Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            atomic_write(key_path, pem)
            logger.info("created the audit checkpoint key %s", key_path)
            self._key = key
        return self._key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def load(self) -> Checkpoint | None:
        """The checkpoint, its signature checked; None if none was ever written.

        Raises:
            CheckpointInvalid: the file is malformed or its signature does not verify.
        """
        if not self.path.exists():
            return None
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            checkpoint = Checkpoint(
                seq=int(document["seq"]),
                entry_hash=str(document["entry_hash"]),
                at=datetime.fromisoformat(document["at"]),
            )
            signature = base64.b64decode(document["signature"], validate=True)
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointInvalid(f"audit checkpoint {self.path} is malformed") from error
        try:
            self._private_key().public_key().verify(signature, checkpoint.payload())
        except InvalidSignature as error:
            raise CheckpointInvalid(
                f"audit checkpoint {self.path} has a bad signature: it was altered"
            ) from error
        return checkpoint

    def advance(self, seq: int, entry_hash: str, now: datetime | None = None) -> bool:
        """Sign and write ``(seq, entry_hash)`` unless the checkpoint is already at or past it.

        Returns:
            True if the checkpoint moved.
        """
        with self._locked():
            current = self.load()
            if current is not None and current.seq >= seq:
                return False
            checkpoint = Checkpoint(seq, entry_hash, now or datetime.now(UTC))
            signature = self._private_key().sign(checkpoint.payload())
            document = {
                "seq": checkpoint.seq,
                "entry_hash": checkpoint.entry_hash,
                "at": checkpoint.at.isoformat(),
                "signature": base64.b64encode(signature).decode("ascii"),
            }
            atomic_write(self.path, json.dumps(document, indent=1).encode())
            return True


def _head_problem(row_head: tuple[int, str], report: ChainReport) -> ChainProblem | None:
    """What is wrong if the ``audit_head`` row is not the log's last entry (None if it is)."""
    row_seq, row_hash = row_head
    if (row_seq, row_hash) == (report.head_seq, report.head_hash):
        return None
    if row_seq > report.head_seq:
        return ChainProblem(
            report.head_seq + 1,
            ProblemKind.TRUNCATED,
            f"the log ends at entry {report.head_seq} but its head row records entry {row_seq}: "
            f"entries {report.head_seq + 1}..{row_seq} were cut off",
        )
    return ChainProblem(
        max(row_seq, 1),
        ProblemKind.BROKEN_LINK,
        f"the head row records entry {row_seq} ({row_hash[:16]}) but the log's last entry is "
        f"{report.head_seq} ({report.head_hash[:16]}): entries were written or changed "
        "outside the audit log",
    )


def verify_audit_log(
    session: Session,
    checkpoints: CheckpointStore | None = None,
    *,
    on_entry: Callable[[AuditEntry], None] | None = None,
) -> ChainReport:
    """Verify the whole log in the database against the signed checkpoint (if any).

    Besides the chain itself, the ``audit_head`` row (what the next append chains onto) must be
    the last entry: a head row ahead of the log means a cut-off tail even without a checkpoint.

    Args:
        session: a session on the store's database (only read).
        checkpoints: the signed checkpoint's store; None checks the chain alone.
        on_entry: called after each entry is read (a progress bar).

    Raises:
        CheckpointInvalid: the checkpoint exists but is forged or damaged.
    """
    verifier = ChainVerifier(checkpoints.load() if checkpoints is not None else None)
    log = SqlAuditLog(session)
    for entry in log.entries():
        verifier.feed(entry)
        if on_entry is not None:
            on_entry(entry)
    report = verifier.finish()
    problem = _head_problem(log.head(), report)
    if problem is None:
        return report
    problems = sorted((*report.problems, problem), key=lambda p: (p.seq, p.kind.value))
    return dataclasses.replace(report, problems=tuple(problems))


def append_audit(
    engine: Engine, event: AuditEvent, checkpoints: CheckpointStore | None = None
) -> AuditEntry:
    """Append one entry in its own transaction (for code without a lane unit of work).

    For the fleet and update commands: ``append_audit(engine, AuditEvent(...),
    CheckpointStore(settings.keys_dir))``. Prefer ``uow.audit.append`` when the action itself
    commits through a unit of work, so that the two commit together.
    """
    with Session(engine) as session, session.begin():
        entry = SqlAuditLog(session).append(event)
    if checkpoints is not None:
        checkpoints.advance(entry.seq, entry.entry_hash)
    return entry
