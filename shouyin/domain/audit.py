"""The audit log's pure core: entries, their hash chain, checkpoints and chain verification.

Every money and admin action is recorded as an :class:`AuditEvent` carrying PCI DSS 10.2.2's
fields: who (``actor``), what (``action``), when (``at``), success or failure (``outcome``), from
where (``source``: the lane, host or terminal the action came from) and on what (``target``).

Entries form a hash chain. Entry *n* stores ``prev_hash`` (entry *n-1*'s hash; entry 1 the
:data:`GENESIS_HASH`) and ``entry_hash = SHA-256(prev_hash || canonical(event))``, where the
canonical encoding is compact, key-sorted UTF-8 JSON (:func:`canonical_event`). Changing an entry
changes its hash; deleting, inserting or moving one breaks the next entry's link. The entry number
(``seq``) is deliberately not hashed: an entry's place is fixed by the link, which lets the
verifier tell a *moved* entry (its content intact, its link pointing elsewhere) from an *edited*
one.

A bare chain cannot reveal a cut-off tail, nor an edit followed by rehashing everything after it.
So the head (number and hash) is also kept in a :class:`Checkpoint` signed outside the database;
:class:`ChainVerifier` checks the entry at the checkpoint's number against it.

This module does no I/O; :mod:`shouyin.store.audit_repo` stores entries and checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from shouyin.domain.carddata import scrub
from shouyin.domain.errors import DomainError

__all__ = [
    "GENESIS_HASH",
    "AuditAction",
    "AuditEntry",
    "AuditError",
    "AuditEvent",
    "AuditOutcome",
    "ChainProblem",
    "ChainReport",
    "ChainVerifier",
    "Checkpoint",
    "InvalidAuditEvent",
    "ProblemKind",
    "canonical_event",
    "chain_entry",
    "hash_entry",
    "verify_chain",
]

GENESIS_HASH: Final = "0" * 64
"""The ``prev_hash`` of entry 1."""

MAX_TEXT: Final = 200
"""Longest actor, source, target or detail text kept (longer text is cut, never refused)."""
MAX_DETAILS: Final = 32

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_DETAIL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

DetailValue = str | int | bool | None


class AuditError(DomainError):
    """Root of the audit log's errors that reach the admin (a missing or forged checkpoint...)."""


class InvalidAuditEvent(ValueError):
    """An audit event the caller built wrongly (a bug in the caller, never user input)."""


class AuditOutcome(StrEnum):
    """Whether the action succeeded."""

    SUCCESS = "success"
    FAILURE = "failure"


class AuditAction(StrEnum):
    """The known actions. Other parts may record any ``area.verb`` name as well."""

    SALE_COMPLETED = "sale.completed"
    SALE_VOIDED = "sale.voided"
    RETURN_CASH = "return.cash"
    PAYMENT = "payment.recorded"
    VOID = "payment.void"
    REFUND = "payment.refund"
    REVERSAL = "payment.reversal"
    DRAWER_OPEN = "drawer.open"
    DRAWER_NO_SALE = "drawer.no_sale"
    PRICE_CHANGE = "catalogue.price_change"
    USER_CREATED = "user.created"
    USER_UNLOCKED = "user.unlocked"
    LOGIN = "user.login"
    TERMINAL_PAIRED = "terminal.paired"
    TERMINAL_REVOKED = "terminal.revoked"
    UPDATE_PUBLISHED = "update.published"
    UPDATE_INSTALLED = "update.installed"
    SHIFT_OPENED = "shift.opened"
    SHIFT_CLOSED = "shift.closed"
    Z_REPORT = "report.z"
    AUDIT_VERIFIED = "audit.verified"


def _clean(text: str) -> str:
    # Card data never reaches the log: free text is scrubbed, then cut to a bounded length.
    return scrub(text)[:MAX_TEXT]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One action, as the caller reports it (PCI DSS 10.2.2's fields).

    Free text (actor, source, target, string details) is passed through
    :func:`shouyin.domain.carddata.scrub` and cut to :data:`MAX_TEXT` characters, so a card
    number typed into a reason field is masked before it is hashed or stored.

    Attributes:
        action: what: an :class:`AuditAction` or any ``area.verb`` name.
        outcome: success or failure.
        actor: who: a user id or name, ``system``, or a terminal id.
        source: from where: the lane, host or terminal (``lane:L01``, ``cli``, ``127.0.0.1``).
        target: on what: ``sale:<id>``, ``terminal:<id>``, ``user:<name>``...
        at: when (aware; stored in UTC).
        details: a few more facts (amount in fen, ecr_ref, reason...).

    Raises:
        InvalidAuditEvent: a malformed action, a naive time or unsupported details.
    """

    action: str
    outcome: AuditOutcome
    actor: str
    source: str
    target: str
    at: datetime
    details: Mapping[str, DetailValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _ACTION.match(str(self.action)) or len(self.action) > 48:
            raise InvalidAuditEvent(f"audit action must look like 'area.verb': {self.action!r}")
        if self.at.tzinfo is None:
            raise InvalidAuditEvent("audit times must be aware (UTC)")
        if len(self.details) > MAX_DETAILS:
            raise InvalidAuditEvent(f"at most {MAX_DETAILS} details")
        details: dict[str, DetailValue] = {}
        for key, value in self.details.items():
            if not _DETAIL_KEY.match(key):
                raise InvalidAuditEvent(f"bad detail key {key!r}")
            if value is not None and not isinstance(value, (bool, int, str)):
                raise InvalidAuditEvent(f"detail {key!r} must be text, an integer or a flag")
            details[key] = _clean(value) if isinstance(value, str) else value
        object.__setattr__(self, "action", str(self.action))
        object.__setattr__(self, "outcome", AuditOutcome(self.outcome))
        object.__setattr__(self, "actor", _clean(self.actor))
        object.__setattr__(self, "source", _clean(self.source))
        object.__setattr__(self, "target", _clean(self.target))
        # Microseconds kept, zone normalised: the stored value must encode back identically.
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        object.__setattr__(self, "details", details)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An event in the chain: its number, its predecessor's hash and its own hash."""

    seq: int
    event: AuditEvent
    prev_hash: str
    entry_hash: str


def canonical_event(event: AuditEvent) -> bytes:
    """The event's canonical encoding: key-sorted compact JSON in UTF-8, time in ISO 8601 UTC."""
    document = {
        "action": event.action,
        "actor": event.actor,
        "at": event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "details": dict(event.details),
        "outcome": event.outcome.value,
        "source": event.source,
        "target": event.target,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def hash_entry(prev_hash: str, event: AuditEvent) -> str:
    """``SHA-256(prev_hash || canonical(event))`` as 64 lowercase hex digits."""
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_event(event))
    return digest.hexdigest()


def chain_entry(head_seq: int, head_hash: str, event: AuditEvent) -> AuditEntry:
    """The entry that follows the head ``(head_seq, head_hash)``; ``(0, GENESIS_HASH)`` if empty."""
    return AuditEntry(head_seq + 1, event, head_hash, hash_entry(head_hash, event))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The log's head as recorded outside the database: entry number and hash, and when."""

    seq: int
    entry_hash: str
    at: datetime

    def payload(self) -> bytes:
        """The bytes that are signed."""
        when = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"shouyin-audit-checkpoint/1\n{self.seq}\n{self.entry_hash}\n{when}".encode()


class ProblemKind(StrEnum):
    """What is wrong at a place in the chain."""

    EDITED = "edited"
    """The entry's content no longer matches its hash."""
    DELETED = "deleted"
    """Entries are missing before this one (a gap in the numbers and a broken link)."""
    INSERTED = "inserted"
    """This entry was put between two entries that still link to each other."""
    REORDERED = "reordered"
    """This entry's predecessor is elsewhere in the log: entries were moved."""
    BROKEN_LINK = "broken_link"
    """This entry does not follow its predecessor, and no nearby entry explains why."""
    TRUNCATED = "truncated"
    """The log ends before the signed checkpoint: its tail was cut off."""
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    """The entry at the checkpoint's number is not the one that was signed: history rewritten."""


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """One thing wrong with the log, and where (the entry number ``seq``)."""

    seq: int
    kind: ProblemKind
    detail: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The verdict on a whole log.

    Attributes:
        entries: how many entries were read.
        head_seq: the last entry's number (0 when empty).
        head_hash: the last entry's hash.
        checkpoint: the checkpoint checked, if any.
        problems: everything found, by entry number; empty when the log is intact.
    """

    entries: int
    head_seq: int
    head_hash: str
    checkpoint: Checkpoint | None
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        """True when the chain is intact (and agrees with the checkpoint, if there is one)."""
        return not self.problems


class ChainVerifier:
    """Checks a log entry by entry, in ``seq`` order, in bounded memory.

    Each entry is judged once a few entries *after* it have been seen (a window of
    ``2 * window + 1`` entries), so that a moved entry can be told from an inserted one: both
    break a link, but only a moved entry's hash is still referenced by another entry.

    Use: ``verifier.feed(entry)`` for every entry, then ``verifier.finish()``.

    Args:
        checkpoint: the signed head to check the log against, if any.
        window: how far around a broken link to look for the entries that explain it.
    """

    def __init__(self, checkpoint: Checkpoint | None = None, *, window: int = 32) -> None:
        self._checkpoint = checkpoint
        self._window = window
        self._buffer: deque[AuditEntry] = deque()
        self._judged: deque[AuditEntry] = deque(maxlen=window + 2)  # recent, for look-behind
        self._problems: list[ChainProblem] = []
        self._count = 0
        self._last: AuditEntry | None = None
        self._checkpoint_seen = False

    def feed(self, entry: AuditEntry) -> None:
        """Take the next entry (in ascending ``seq`` order)."""
        self._count += 1
        self._last = entry
        self._buffer.append(entry)
        if len(self._buffer) > self._window:
            self._judge(self._buffer.popleft())

    def finish(self) -> ChainReport:
        """Judge what is left and return the verdict."""
        while self._buffer:
            self._judge(self._buffer.popleft())
        last = self._last
        head_seq, head_hash = (last.seq, last.entry_hash) if last else (0, GENESIS_HASH)
        cp = self._checkpoint
        if cp is not None and not self._checkpoint_seen and cp.seq > 0:
            if head_seq < cp.seq:
                self._problems.append(
                    ChainProblem(
                        head_seq + 1,
                        ProblemKind.TRUNCATED,
                        f"the log ends at entry {head_seq} but the signed checkpoint of "
                        f"{cp.at:%Y-%m-%d %H:%M:%S} UTC records entry {cp.seq}: "
                        f"entries {head_seq + 1}..{cp.seq} were cut off",
                    )
                )
            else:
                self._problems.append(
                    ChainProblem(
                        cp.seq,
                        ProblemKind.CHECKPOINT_MISMATCH,
                        f"entry {cp.seq} of the signed checkpoint is missing",
                    )
                )
        return ChainReport(
            self._count,
            head_seq,
            head_hash,
            cp,
            tuple(sorted(self._problems, key=lambda p: (p.seq, p.kind.value))),
        )

    def _judge(self, entry: AuditEntry) -> None:
        previous = self._judged[-1] if self._judged else None
        if hash_entry(entry.prev_hash, entry.event) != entry.entry_hash:
            self._problems.append(
                ChainProblem(
                    entry.seq,
                    ProblemKind.EDITED,
                    f"entry {entry.seq} ({entry.event.action}) does not match its hash: "
                    "its content was changed",
                )
            )
        expected_prev = previous.entry_hash if previous else GENESIS_HASH
        expected_seq = previous.seq + 1 if previous else 1
        if entry.prev_hash != expected_prev:
            self._problems.append(self._broken_link(entry, previous, expected_seq))
        elif entry.seq != expected_seq:
            self._problems.append(
                ChainProblem(
                    entry.seq,
                    ProblemKind.EDITED,
                    f"entry {entry.seq} is numbered wrongly: it follows entry "
                    f"{previous.seq if previous else 0} in the chain",
                )
            )
        cp = self._checkpoint
        if cp is not None and entry.seq == cp.seq:
            self._checkpoint_seen = True
            if entry.entry_hash != cp.entry_hash:
                self._problems.append(
                    ChainProblem(
                        entry.seq,
                        ProblemKind.CHECKPOINT_MISMATCH,
                        f"entry {entry.seq} is not the entry the checkpoint signed: the log was "
                        f"rewritten at or before entry {entry.seq}",
                    )
                )
        self._judged.append(entry)

    def _broken_link(
        self, entry: AuditEntry, previous: AuditEntry | None, expected_seq: int
    ) -> ChainProblem:
        if entry.seq > expected_seq:
            missing = (
                f"entry {expected_seq}"
                if entry.seq == expected_seq + 1
                else f"entries {expected_seq}..{entry.seq - 1}"
            )
            return ChainProblem(
                entry.seq, ProblemKind.DELETED, f"{missing} missing before entry {entry.seq}"
            )
        nearby = list(self._judged) + list(self._buffer)
        by_hash = {e.entry_hash: e for e in nearby if e is not previous}
        before_previous = self._judged[-2] if len(self._judged) >= 2 else None
        linked_to = by_hash.get(entry.prev_hash)
        if linked_to is None and entry.prev_hash == GENESIS_HASH and entry.seq != 1:
            detail = f"entry {entry.seq} claims to be the first entry"
            return ChainProblem(entry.seq, ProblemKind.BROKEN_LINK, detail)
        if linked_to is not None and previous is not None:
            referenced = {e.prev_hash for e in nearby if e is not entry}
            if linked_to is before_previous and previous.entry_hash not in referenced:
                return ChainProblem(
                    previous.seq,
                    ProblemKind.INSERTED,
                    f"entry {previous.seq} ({previous.event.action}) was inserted: entry "
                    f"{entry.seq} links to entry {linked_to.seq} before it",
                )
            return ChainProblem(
                entry.seq,
                ProblemKind.REORDERED,
                f"entry {entry.seq} ({entry.event.action}) belongs after entry {linked_to.seq}, "
                f"not after entry {previous.seq}: entries were moved",
            )
        after = previous.seq if previous else 0
        return ChainProblem(
            entry.seq,
            ProblemKind.BROKEN_LINK,
            f"entry {entry.seq} does not follow entry {after}: an entry was removed, inserted "
            "or replaced here",
        )


def verify_chain(
    entries: Iterable[AuditEntry], checkpoint: Checkpoint | None = None
) -> ChainReport:
    """Verify a whole log (in ``seq`` order) against an optional checkpoint.

    Args:
        entries: every entry, ascending by ``seq``.
        checkpoint: the signed head, if one exists (its signature already checked).

    Returns:
        The report; ``report.ok`` when intact.
    """
    verifier = ChainVerifier(checkpoint)
    for entry in entries:
        verifier.feed(entry)
    return verifier.finish()
