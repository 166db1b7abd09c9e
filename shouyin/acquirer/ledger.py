"""The acquirer's ledger: every transaction it saw, in SQLite (the third record of 对账).

One file, ``ledger.sqlite3`` in the simulator's state directory, in WAL mode with
``synchronous=FULL`` so that an answered transaction survives a crash; ``":memory:"`` for tests.
Tables:

* ``txns``: one row per financial request (sale, QR, void, refund) and per reversal, keyed by
  terminal + batch + trace (reversals in their own key space, so that a reversal can arrive
  before the original it cancels). Columns hold the **masked** PAN only; ``fingerprint`` is a
  keyed hash (HMAC) of the request's content, used to tell a resent request from a different
  one reusing a trace number.
* ``settlements``: one row per closed batch, with both sides' totals and the answer.
* ``terminals``: the working keys of each terminal, wrapped under a storage key (never clear).
* ``counters``: RRN and approval-code sequences.

The ledger is storage only; the rules live in :mod:`shouyin.acquirer.host`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from shouyin.acquirer.codes import TxnKind, TxnStatus, Wallet, WalletStatus
from shouyin.acquirer.pan import get_logger

__all__ = ["LEDGER_FILE", "Ledger", "LedgerEntry", "SettlementRecord", "Txn"]

logger = get_logger(__name__)

LEDGER_FILE: Final = "ledger.sqlite3"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS txns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    terminal_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    batch INTEGER NOT NULL,
    trace INTEGER NOT NULL,
    kind TEXT NOT NULL,
    processing_code TEXT NOT NULL,
    amount INTEGER NOT NULL,
    response_code TEXT NOT NULL,
    status TEXT NOT NULL,
    rrn TEXT,
    auth_code TEXT,
    masked_pan TEXT,
    entry_mode TEXT,
    wallet TEXT,
    wallet_status TEXT,
    wallet_order_id TEXT,
    original_id INTEGER REFERENCES txns(id),
    fingerprint TEXT NOT NULL,
    resolves_at TEXT,
    final_code TEXT,
    local_time TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS txns_key ON txns (terminal_id, batch, trace)
    WHERE kind != 'reversal';
CREATE UNIQUE INDEX IF NOT EXISTS reversals_key ON txns (terminal_id, batch, trace)
    WHERE kind = 'reversal';
CREATE INDEX IF NOT EXISTS txns_rrn ON txns (rrn);
CREATE TABLE IF NOT EXISTS settlements (
    terminal_id TEXT NOT NULL,
    batch INTEGER NOT NULL,
    merchant_id TEXT NOT NULL,
    trace INTEGER NOT NULL,
    terminal_totals TEXT NOT NULL,
    host_totals TEXT NOT NULL,
    response_code TEXT NOT NULL,
    settled_at TEXT NOT NULL,
    PRIMARY KEY (terminal_id, batch)
);
CREATE TABLE IF NOT EXISTS terminals (
    terminal_id TEXT PRIMARY KEY,
    mak_wrapped BLOB NOT NULL,
    pik_wrapped BLOB NOT NULL,
    signed_in_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Txn:
    """One ledger row (see the module docstring); ``id`` is 0 before insertion."""

    terminal_id: str
    merchant_id: str
    batch: int
    trace: int
    kind: TxnKind
    processing_code: str
    amount: int
    response_code: str
    status: TxnStatus
    fingerprint: str
    local_time: str
    created_at: str
    updated_at: str
    rrn: str | None = None
    auth_code: str | None = None
    masked_pan: str | None = None
    entry_mode: str | None = None
    wallet: Wallet | None = None
    wallet_status: WalletStatus | None = None
    wallet_order_id: str | None = None
    original_id: int | None = None
    resolves_at: str | None = None
    final_code: str | None = None
    id: int = 0


_COLUMNS: Final = tuple(item.name for item in fields(Txn) if item.name != "id")


class LedgerEntry(BaseModel):
    """A transaction as exported for reconciliation (no internal bookkeeping columns)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    terminal_id: str
    merchant_id: str
    batch: int
    trace: int
    kind: TxnKind
    amount: int
    status: TxnStatus
    response_code: str
    rrn: str | None
    auth_code: str | None
    masked_pan: str | None
    wallet: Wallet | None
    wallet_status: WalletStatus | None
    wallet_order_id: str | None
    original_id: int | None
    time: str


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A closed batch: both sides' totals (field 63 text) and the answer (``00``/``95``)."""

    terminal_id: str
    batch: int
    merchant_id: str
    trace: int
    terminal_totals: str
    host_totals: str
    response_code: str
    settled_at: str


def _to_txn(row: sqlite3.Row) -> Txn:
    values: dict[str, Any] = dict(row)
    values["kind"] = TxnKind(values["kind"])
    values["status"] = TxnStatus(values["status"])
    values["wallet"] = Wallet(values["wallet"]) if values["wallet"] else None
    if values["wallet_status"]:
        values["wallet_status"] = WalletStatus(values["wallet_status"])
    return Txn(**values)


class Ledger:
    """SQLite storage of transactions, settlements, working keys and counters.

    Args:
        path: the database file, or ``":memory:"``.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._depth = 0

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Ledger:
        """Open (creating if needed) the ledger file in ``state_dir``.

        Args:
            state_dir: the simulator's state directory (created if missing).

        Returns:
            The ledger.
        """
        state_dir.mkdir(parents=True, exist_ok=True)
        return cls(state_dir / LEDGER_FILE)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in one durable transaction (nested blocks join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    # -- transactions ---------------------------------------------------------------------------

    def insert(self, txn: Txn) -> Txn:
        """Store a new row.

        Args:
            txn: the row (its ``id`` is ignored).

        Returns:
            The row with its ``id``.

        Raises:
            sqlite3.IntegrityError: the terminal + batch + trace key is taken.
        """
        values = [getattr(txn, name) for name in _COLUMNS]
        marks = ", ".join("?" for _ in _COLUMNS)
        cursor = self._db.execute(
            f"INSERT INTO txns ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            values,
        )
        return replace(txn, id=int(cursor.lastrowid or 0))

    def update(self, txn: Txn, now: datetime, **changes: Any) -> Txn:
        """Change columns of a row.

        Args:
            txn: the current row.
            now: the time of the change.
            **changes: column values.

        Returns:
            The updated row.
        """
        changed = replace(txn, **changes, updated_at=now.isoformat())
        names = [*changes, "updated_at"]
        assignments = ", ".join(f"{name} = ?" for name in names)
        self._db.execute(
            f"UPDATE txns SET {assignments} WHERE id = ?",  # noqa: S608
            [*(getattr(changed, name) for name in names), txn.id],
        )
        return changed

    def _one(self, sql: str, *params: object) -> Txn | None:
        row = self._db.execute(sql, params).fetchone()
        return _to_txn(row) if row is not None else None

    def get(self, txn_id: int) -> Txn | None:
        """The row with this id."""
        return self._one("SELECT * FROM txns WHERE id = ?", txn_id)

    def find(self, terminal_id: str, batch: int, trace: int) -> Txn | None:
        """The financial transaction (not a reversal) with this key."""
        return self._one(
            "SELECT * FROM txns WHERE terminal_id = ? AND batch = ? AND trace = ?"
            " AND kind != 'reversal'",
            terminal_id,
            batch,
            trace,
        )

    def find_reversal(self, terminal_id: str, batch: int, trace: int) -> Txn | None:
        """The reversal of the transaction with this key, if one came."""
        return self._one(
            "SELECT * FROM txns WHERE terminal_id = ? AND batch = ? AND trace = ?"
            " AND kind = 'reversal'",
            terminal_id,
            batch,
            trace,
        )

    def find_by_rrn(self, merchant_id: str, rrn: str) -> Txn | None:
        """The sale (card or QR) of this merchant with this RRN."""
        return self._one(
            "SELECT * FROM txns WHERE merchant_id = ? AND rrn = ? AND kind IN ('sale', 'qr')",
            merchant_id,
            rrn,
        )

    def refunded(self, original_id: int) -> int:
        """Fen refunded so far (approved or settled refunds) against a sale."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM txns WHERE original_id = ? AND kind = 'refund'"
            " AND status IN ('approved', 'settled')",
            (original_id,),
        ).fetchone()
        return int(row[0])

    def in_batch(self, terminal_id: str, batch: int) -> list[Txn]:
        """Every row of a terminal's batch, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM txns WHERE terminal_id = ? AND batch = ? ORDER BY id",
            (terminal_id, batch),
        ).fetchall()
        return [_to_txn(row) for row in rows]

    def next_number(self, name: str) -> int:
        """The next value (from 1) of a persistent counter."""
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1",
            (name,),
        )
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    # -- settlements ----------------------------------------------------------------------------

    def settlement(self, terminal_id: str, batch: int) -> SettlementRecord | None:
        """The settlement that closed this batch, if it is closed."""
        row = self._db.execute(
            "SELECT * FROM settlements WHERE terminal_id = ? AND batch = ?", (terminal_id, batch)
        ).fetchone()
        return SettlementRecord(**dict(row)) if row is not None else None

    def record_settlement(self, record: SettlementRecord) -> None:
        """Close a batch."""
        values = [getattr(record, item.name) for item in fields(SettlementRecord)]
        marks = ", ".join("?" * len(values))
        self._db.execute(f"INSERT INTO settlements VALUES ({marks})", values)  # noqa: S608

    # -- working keys ---------------------------------------------------------------------------

    def save_keys(self, terminal_id: str, mak_wrapped: bytes, pik_wrapped: bytes, at: str) -> None:
        """Store a terminal's working keys (already wrapped under the storage key)."""
        self._db.execute(
            "INSERT INTO terminals VALUES (?, ?, ?, ?) ON CONFLICT (terminal_id) DO UPDATE SET"
            " mak_wrapped = excluded.mak_wrapped, pik_wrapped = excluded.pik_wrapped,"
            " signed_in_at = excluded.signed_in_at",
            (terminal_id, mak_wrapped, pik_wrapped, at),
        )

    def load_keys(self, terminal_id: str) -> tuple[bytes, bytes] | None:
        """A terminal's wrapped working keys ``(mak, pik)``, or ``None`` before its sign-in."""
        row = self._db.execute(
            "SELECT mak_wrapped, pik_wrapped FROM terminals WHERE terminal_id = ?", (terminal_id,)
        ).fetchone()
        return (bytes(row[0]), bytes(row[1])) if row is not None else None

    # -- export ---------------------------------------------------------------------------------

    def export(self, terminal_id: str | None = None, batch: int | None = None) -> list[LedgerEntry]:
        """Every transaction (optionally of one terminal and batch), oldest first.

        Args:
            terminal_id: only this terminal's.
            batch: only this batch (with ``terminal_id``).

        Returns:
            The entries, for reconciliation against the lane journal and the terminal batch.
        """
        sql, params = "SELECT * FROM txns", list[object]()
        conditions = []
        if terminal_id is not None:
            conditions.append("terminal_id = ?")
            params.append(terminal_id)
        if batch is not None:
            conditions.append("batch = ?")
            params.append(batch)
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        rows = self._db.execute(sql + " ORDER BY id", params).fetchall()
        return [
            LedgerEntry(
                **{
                    name: getattr(txn, name)
                    for name in LedgerEntry.model_fields
                    if name != "time" and hasattr(txn, name)
                },
                time=txn.created_at,
            )
            for txn in map(_to_txn, rows)
        ]
