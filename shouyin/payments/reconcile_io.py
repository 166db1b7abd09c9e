"""Loading the three records of 对账 as :class:`~shouyin.payments.reconcile.Record`, and CSV.

Sources:

* the lane journal: :class:`~shouyin.payments.journal.PaymentIntent` (from the store:
  ``SqlPaymentIntentRepository.journal``);
* the terminal batch: the simulator's :class:`~shouyin.terminal.records.JournalEntry` (its state
  directory), or a CSV exported with :func:`write_records_csv`;
* the acquirer ledger: :class:`~shouyin.acquirer.ledger.LedgerEntry` rows from ``Ledger.export``
  (the ledger file), or the JSON the acquirer control channel's ``export`` answers.

Every source can also be given as a records CSV (:data:`RECORD_COLUMNS`). Money is integer fen;
no card number is ever read or written here (records carry none).

Normalisation: payment kind ``card`` or the wallet (``wechat``, ``alipay``, ``unionpay``; ``qr``
when unknown); state ``approved``, ``declined``, ``voided``, ``reversed``, ``failed``, or
``unknown`` while the outcome is open (``reversing``/``voiding`` kept as they are); the acquirer's
``settled`` counts as ``approved``; its void and reversal rows are bookkeeping (the original row
carries the resulting status) and are left out.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from shouyin.acquirer.ledger import LedgerEntry
from shouyin.payments.errors import PaymentError
from shouyin.payments.journal import IntentKind, IntentState, PaymentIntent
from shouyin.payments.reconcile import Outcome, ReconciliationReport, Record, Row
from shouyin.terminal.records import JournalEntry

__all__ = [
    "RECORD_COLUMNS",
    "REPORT_COLUMNS",
    "ReconcileInputError",
    "read_ledger_json",
    "read_records_csv",
    "read_report_csv",
    "record_from_intent",
    "record_from_ledger",
    "record_from_terminal",
    "write_records_csv",
    "write_report_csv",
]

logger = logging.getLogger(__name__)

RECORD_COLUMNS: Final = Record._fields
REPORT_COLUMNS: Final = Row._fields
_OPEN: Final = frozenset({"pending", "sent", "unknown", "in_progress"})
_BOOKKEEPING: Final = frozenset({"void", "reversal"})


class ReconcileInputError(PaymentError):
    """An input file cannot be read: names the file, the line and what is wrong."""


def _state(value: str) -> str:
    if value in _OPEN:
        return "unknown"
    return "approved" if value == "settled" else value


def _kind(card: bool, wallet: str | None) -> str:
    if card:
        return "card"
    return wallet or "qr"


def record_from_intent(intent: PaymentIntent) -> Record:
    """The lane journal's record of one payment attempt."""
    return Record(
        intent.ecr_ref,
        intent.batch,
        intent.trace,
        intent.rrn,
        intent.amount.fen,
        _kind(intent.tender_kind.value == "card", intent.wallet.value if intent.wallet else None),
        _state(IntentState(intent.state).value),
        "refund" if intent.kind is IntentKind.REFUND else "sale",
    )


def record_from_terminal(entry: JournalEntry) -> Record:
    """The terminal batch's record of one transaction."""
    acquirer = entry.acquirer
    wallet = entry.wallet or (acquirer.wallet if acquirer is not None else None)
    return Record(
        entry.ecr_ref,
        entry.batch,
        entry.trace or (acquirer.trace if acquirer is not None else None),
        acquirer.rrn if acquirer is not None else None,
        entry.amount,
        _kind(entry.payment_kind.value == "card", wallet.value if wallet else None),
        _state(entry.state.value),
        "refund" if entry.kind.value == "refund" else "sale",
    )


def record_from_ledger(entry: LedgerEntry) -> Record | None:
    """The acquirer's record of one transaction; None for void and reversal rows."""
    if entry.kind.value in _BOOKKEEPING:
        return None
    return Record(
        None,
        f"{entry.batch:06d}",
        f"{entry.trace:06d}",
        entry.rrn,
        entry.amount,
        _kind(entry.wallet is None, entry.wallet.value if entry.wallet else None),
        _state(entry.status.value),
        "refund" if entry.kind.value == "refund" else "sale",
    )


def read_ledger_json(path: Path) -> list[Record]:
    """The acquirer ledger from a JSON file: a list of entries, or the control channel's answer
    ``{"ok": true, "entries": [...]}``.

    Raises:
        ReconcileInputError: unreadable, not JSON, or an entry that is not a ledger entry.
    """
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReconcileInputError(f"{path}: cannot read the ledger JSON ({error})") from error
    if isinstance(data, Mapping):
        data = data.get("entries")
    if not isinstance(data, list):
        raise ReconcileInputError(f"{path}: expected a list of ledger entries")
    records: list[Record] = []
    for number, item in enumerate(data, 1):
        try:
            record = record_from_ledger(LedgerEntry.model_validate(item))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ReconcileInputError(f"{path}: entry {number}: {where}: {first['msg']}") from error
        if record is not None:
            records.append(record)
    return records


def _optional(value: str) -> str | None:
    return value or None


def read_records_csv(path: Path) -> list[Record]:
    """Records from a CSV with the header :data:`RECORD_COLUMNS` (empty cell: unknown).

    Raises:
        ReconcileInputError: unreadable, a missing column, or a bad amount (line named).
    """
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(header[: len(RECORD_COLUMNS)]) != RECORD_COLUMNS:
                raise ReconcileInputError(
                    f"{path}: line 1: expected the columns {','.join(RECORD_COLUMNS)}"
                )
            return list(_parse_records(path, reader))
    except (OSError, UnicodeDecodeError) as error:
        raise ReconcileInputError(f"{path}: cannot read ({error})") from error


def _parse_records(path: Path, rows: Iterable[list[str]]) -> Iterator[Record]:
    for line, cells in enumerate(rows, 2):
        if len(cells) < len(RECORD_COLUMNS):
            raise ReconcileInputError(f"{path}: line {line}: {len(cells)} columns, expected 8")
        ecr_ref, batch, trace, rrn, amount, kind, state, operation = cells[:8]
        try:
            fen = int(amount)
        except ValueError:
            raise ReconcileInputError(
                f"{path}: line {line}: amount must be whole fen, got {amount[:20]!r}"
            ) from None
        if not kind or not state:
            raise ReconcileInputError(f"{path}: line {line}: kind and state are required")
        yield Record(
            _optional(ecr_ref),
            _optional(batch),
            _optional(trace),
            _optional(rrn),
            fen,
            kind,
            state,
            operation or "sale",
        )


def write_records_csv(path: Path, records: Iterable[Record]) -> int:
    """Write records (one side) as CSV; return how many."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RECORD_COLUMNS)
        for record in records:
            writer.writerow(["" if v is None else v for v in record])
            count += 1
    return count


def write_report_csv(path: Path, report: ReconciliationReport) -> int:
    """Write every row of the report (matched first, then the rest); return how many."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for row in report.rows():
            writer.writerow(["" if v is None else v for v in row])
            count += 1
    logger.info("wrote %d reconciliation rows to %s", count, path)
    return count


def _int(value: str) -> int | None:
    return int(value) if value else None


def _parse_row(c: list[str]) -> Row:
    return Row(
        Outcome(c[0]),
        c[1],
        c[2],
        _optional(c[3]),
        _optional(c[4]),
        _optional(c[5]),
        _optional(c[6]),
        _int(c[7]),
        _int(c[8]),
        _int(c[9]),
        _optional(c[10]),
        _optional(c[11]),
        _optional(c[12]),
    )


def read_report_csv(path: Path) -> list[Row]:
    """Read back a report written by :func:`write_report_csv`.

    Raises:
        ReconcileInputError: not such a file.
    """
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            if tuple(next(reader, ())) != REPORT_COLUMNS:
                raise ReconcileInputError(f"{path}: line 1: not a reconciliation report")
            rows = []
            for line, c in enumerate(reader, 2):
                try:
                    rows.append(_parse_row(c))
                except (ValueError, IndexError) as error:
                    raise ReconcileInputError(f"{path}: line {line}: {error}") from error
            return rows
    except (OSError, UnicodeDecodeError) as error:
        raise ReconcileInputError(f"{path}: cannot read ({error})") from error
