"""The terminal's durable state directory: what a restart, or a power cut, must not lose.

One SQLite database, ``terminal.db``, in WAL mode with ``synchronous=FULL``, so that every
commit is on disk before the call returns (the process may then lose power at any step and come
back with everything committed so far). It holds:

* ``meta``: the configuration (:class:`~shouyin.terminal.records.TerminalConfig`), the pairing
  results (long-term link key, cashier system id), the counters (trace and batch numbers, six
  digits each) and the firmware slots;
* ``journal``: transactions by ``ecr_ref`` (:class:`~shouyin.terminal.records.JournalEntry`),
  the last :attr:`~shouyin.terminal.records.TerminalConfig.journal_keep` of them at least;
* ``reversals``: reversals not yet acknowledged by the acquirer;
* ``slips``: card slips (签购单) with their signature image; ``printouts``: what was printed.

The TLS key, certificate and pinned store CA live beside it in ``tls/``
(:class:`~shouyin.link.keystore.TerminalKeyStore`). The directory is 0700 and the database 0600.

Card data: the store never receives a full card number, track data, PIN or CVV: the models it
stores only have room for a masked number. A defensive check refuses any text with a run of 13
or more digits that passes the Luhn check, should a bug ever try.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shouyin.link.security import LongTermKey
from shouyin.link.values import TransactionState
from shouyin.terminal.cards import luhn_valid
from shouyin.terminal.errors import StateError
from shouyin.terminal.records import (
    FirmwareSlots,
    JournalEntry,
    PendingReversal,
    Stage,
    TerminalConfig,
)
from shouyin.terminal.slips import Slip

__all__ = ["DB_NAME", "TerminalState", "next_number"]

logger = logging.getLogger(__name__)

DB_NAME = "terminal.db"
_SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ecr_ref TEXT NOT NULL UNIQUE,
    batch TEXT NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_batch ON journal (batch);
CREATE TABLE IF NOT EXISTS reversals (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS slips (
    batch TEXT NOT NULL,
    trace TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    signature BLOB,
    PRIMARY KEY (batch, trace)
);
CREATE TABLE IF NOT EXISTS printouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, document TEXT NOT NULL, text TEXT NOT NULL
);
"""
# Letter-led identifiers (order numbers such as T2345678...) are not card numbers.
_CARD_LIKE = re.compile(r"(?<![0-9A-Za-z])[2-6][0-9]{12,18}(?![0-9])")


def next_number(current: int) -> int:
    """The next six-digit trace or batch number: 1..999999, wrapping to 1."""
    return current % 999_999 + 1


def _check_no_pan(text: str, known_ids: frozenset[str] = frozenset()) -> str:
    """Refuse text holding what looks like a full card number (defence in depth): a run of
    exactly 13-19 digits starting with 2-6 that passes the Luhn check, unless it is one of the
    terminal's own configured identifiers (a merchant number may well pass the Luhn check)."""
    for match in _CARD_LIKE.finditer(text):
        if match.group() not in known_ids and luhn_valid(match.group()):
            raise StateError("refusing to store what looks like a full card number")
    return text


def _identifiers(config: TerminalConfig) -> frozenset[str]:
    return frozenset({config.merchant_id, config.acquirer_terminal_id, config.terminal_id})


class TerminalState:
    """The state directory, opened (and created on first use).

    Args:
        directory: the state directory.
        config: the configuration to use when the directory is new (an existing one keeps its
            own unless :meth:`save_config` is called).

    Raises:
        StateError: the database is from an unknown schema version or cannot be opened.
    """

    def __init__(self, directory: Path | str, config: TerminalConfig | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        path = self.directory / DB_NAME
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=2000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise StateError(f"cannot open {path}: {error}") from error
        self._known_ids = _identifiers(config or TerminalConfig())
        version = self._get("schema")
        if version is None:
            with self._transaction():
                self._set("schema", _SCHEMA_VERSION)
                self._set("config", (config or TerminalConfig()).model_dump_json())
                self._set("trace", "0")
                self._set("batch", "1")
        elif version != _SCHEMA_VERSION:
            raise StateError(f"{path}: unknown schema version {version!r}")
        self.config = TerminalConfig.model_validate_json(self._get("config") or "{}")
        self._known_ids = _identifiers(self.config)
        self._puts = 0

    def __repr__(self) -> str:
        return f"TerminalState({str(self.directory)!r})"

    def close(self) -> None:
        """Close the database (a crash without it loses nothing committed)."""
        self._db.close()

    # -- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str, *, check: bool = True) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, _check_no_pan(value, self._known_ids) if check else value),
        )

    # -- configuration and pairing -------------------------------------------------------------

    def save_config(self, config: TerminalConfig) -> None:
        """Replace the configuration."""
        self._known_ids = _identifiers(config)
        with self._transaction():
            self._set("config", config.model_dump_json())
        self.config = config

    def save_link_key(self, key: LongTermKey) -> None:
        """Keep the long-term link key that pairing agreed (the database is 0600)."""
        payload = {
            "ecr_id": key.ecr_id,
            "terminal_id": key.terminal_id,
            "key": key.secret_bytes().hex(),
        }
        with self._transaction():
            self._set("link_key", json.dumps(payload), check=False)  # hex digits, not a card
        logger.info("stored link key %s for %s", key.key_id, key.ecr_id)

    def link_key(self) -> LongTermKey | None:
        """The long-term link key, if paired."""
        raw = self._get("link_key")
        if raw is None:
            return None
        payload = json.loads(raw)
        return LongTermKey(
            bytes.fromhex(payload["key"]),
            ecr_id=payload["ecr_id"],
            terminal_id=payload["terminal_id"],
        )

    def firmware(self) -> FirmwareSlots:
        """The A/B firmware slots."""
        raw = self._get("firmware")
        return FirmwareSlots() if raw is None else FirmwareSlots.model_validate_json(raw)

    def save_firmware(self, slots: FirmwareSlots) -> None:
        """Replace the firmware slots."""
        with self._transaction():
            self._set("firmware", slots.model_dump_json())

    # -- counters ------------------------------------------------------------------------------

    @property
    def batch(self) -> str:
        """The open batch number, six digits."""
        return f"{int(self._get('batch') or '1'):06d}"

    @property
    def last_trace(self) -> str:
        """The last trace number used, six digits (``000000`` before the first)."""
        return f"{int(self._get('trace') or '0'):06d}"

    def next_trace(self) -> str:
        """Take the next trace number (凭证号), durably."""
        with self._transaction():
            value = next_number(int(self._get("trace") or "0"))
            self._set("trace", str(value))
        return f"{value:06d}"

    def close_batch(self) -> str:
        """Start a new batch after settlement; returns the new batch number."""
        with self._transaction():
            value = next_number(int(self._get("batch") or "1"))
            self._set("batch", str(value))
        logger.info("batch %06d opened", value)
        return f"{value:06d}"

    # -- journal -------------------------------------------------------------------------------

    def get(self, ecr_ref: str) -> JournalEntry | None:
        """The transaction ``ecr_ref``, if remembered."""
        row = self._db.execute("SELECT data FROM journal WHERE ecr_ref = ?", (ecr_ref,)).fetchone()
        return None if row is None else JournalEntry.model_validate_json(row[0])

    def put(self, *entries: JournalEntry, drop_reversal: int | None = None) -> None:
        """Insert or replace transactions, durably, in one commit.

        Args:
            entries: the transactions.
            drop_reversal: delete this pending reversal in the same commit (the definite answer
                that makes it unnecessary was just recorded).
        """
        rows = [
            (e.ecr_ref, e.batch, e.state.value, _check_no_pan(e.model_dump_json(), self._known_ids))
            for e in entries
        ]
        with self._transaction():
            if drop_reversal is not None:
                self._db.execute("DELETE FROM reversals WHERE id = ?", (drop_reversal,))
            self._db.executemany(
                "INSERT INTO journal (ecr_ref, batch, state, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (ecr_ref) DO UPDATE SET batch = excluded.batch, "
                "state = excluded.state, data = excluded.data",
                rows,
            )
            self._puts += 1
            if self._puts % 100 == 0:
                self._prune()

    def _prune(self) -> None:
        keep = self.config.journal_keep
        self._db.execute(
            "DELETE FROM journal WHERE seq <= (SELECT MAX(seq) FROM journal) - ? "
            "AND batch != ? AND state != ?",
            (keep, self.batch, TransactionState.IN_PROGRESS.value),
        )

    def entries(self, batch: str | None = None) -> list[JournalEntry]:
        """Transactions in arrival order, of one batch or all."""
        if batch is None:
            rows = self._db.execute("SELECT data FROM journal ORDER BY seq").fetchall()
        else:
            rows = self._db.execute(
                "SELECT data FROM journal WHERE batch = ? ORDER BY seq", (batch,)
            ).fetchall()
        return [JournalEntry.model_validate_json(row[0]) for row in rows]

    def unfinished(self) -> list[JournalEntry]:
        """Transactions whose outcome was never recorded (recovery after a restart)."""
        rows = self._db.execute(
            "SELECT data FROM journal WHERE state = ? ORDER BY seq",
            (TransactionState.IN_PROGRESS.value,),
        ).fetchall()
        entries = [JournalEntry.model_validate_json(row[0]) for row in rows]
        return [e for e in entries if e.stage is not Stage.DONE]

    def find_by_rrn(self, rrn: str) -> JournalEntry | None:
        """The payment with acquirer reference ``rrn`` (refunds may name the original so)."""
        for entry in reversed(self.entries()):
            if entry.acquirer is not None and entry.acquirer.rrn == rrn:
                return entry
        return None

    # -- reversals -----------------------------------------------------------------------------

    def add_reversal(self, reversal: PendingReversal) -> PendingReversal:
        """Store a reversal durably; returns it with its id."""
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO reversals (data) VALUES (?)", (reversal.model_dump_json(),)
            )
            stored = reversal.model_copy(update={"id": cursor.lastrowid})
            self._db.execute(
                "UPDATE reversals SET data = ? WHERE id = ?",
                (stored.model_dump_json(), stored.id),
            )
        return stored

    def update_reversal(self, reversal: PendingReversal) -> None:
        """Record another attempt."""
        with self._transaction():
            self._db.execute(
                "UPDATE reversals SET data = ? WHERE id = ?",
                (reversal.model_dump_json(), reversal.id),
            )

    def remove_reversal(self, reversal_id: int) -> None:
        """The acquirer acknowledged it."""
        with self._transaction():
            self._db.execute("DELETE FROM reversals WHERE id = ?", (reversal_id,))

    def reversals(self, *, armed: bool | None = None) -> list[PendingReversal]:
        """Stored reversals, oldest first (``armed``: only those due, or only those not)."""
        rows = self._db.execute("SELECT data FROM reversals ORDER BY id").fetchall()
        found = [PendingReversal.model_validate_json(row[0]) for row in rows]
        return [r for r in found if armed is None or r.armed is armed]

    # -- slips and printouts -------------------------------------------------------------------

    def save_slip(self, slip: Slip, signature_png: bytes | None = None) -> None:
        """Keep a slip (and its signature image)."""
        data = _check_no_pan(slip.model_dump_json(), self._known_ids)
        with self._transaction():
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM slips").fetchone()[0]
            self._db.execute(
                "INSERT INTO slips (batch, trace, seq, data, signature) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (batch, trace) DO UPDATE SET data = excluded.data, "
                "signature = excluded.signature",
                (slip.batch, slip.trace, seq, data, signature_png),
            )

    def slip(self, trace: str | None = None, batch: str | None = None) -> Slip | None:
        """The last slip, or the one with ``trace`` (in ``batch``, default: the latest such)."""
        query, args = "SELECT data FROM slips", []
        clauses = []
        if trace is not None:
            clauses.append("trace = ?")
            args.append(trace)
        if batch is not None:
            clauses.append("batch = ?")
            args.append(batch)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        row = self._db.execute(query + " ORDER BY seq DESC LIMIT 1", args).fetchone()
        return None if row is None else Slip.model_validate_json(row[0])

    def signature(self, batch: str, trace: str) -> bytes | None:
        """The signature image of a slip."""
        row = self._db.execute(
            "SELECT signature FROM slips WHERE batch = ? AND trace = ?", (batch, trace)
        ).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def add_printout(self, document: str, lines: tuple[str, ...]) -> None:
        """Record what the printer printed."""
        text = _check_no_pan("\n".join(lines), self._known_ids)
        with self._transaction():
            self._db.execute(
                "INSERT INTO printouts (document, text) VALUES (?, ?)", (document, text)
            )

    def printouts(self, limit: int = 50) -> list[tuple[str, str]]:
        """The last printouts, oldest first, as ``(document, text)``."""
        rows = self._db.execute(
            "SELECT document, text FROM printouts ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(str(d), str(t)) for d, t in reversed(rows)]
