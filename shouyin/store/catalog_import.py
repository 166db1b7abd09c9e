"""Bulk catalogue import from CSV: validate every row, keep the good ones, report the bad ones.

The file is UTF-8 (a BOM is accepted, as Excel writes one) with a header row; columns:

=============  ========  =================================================================
column         required  meaning
=============  ========  =================================================================
sku            yes       the store's own product code, unique
name           yes       display name (Chinese), as printed on receipts
price          yes       price in yuan, at most two decimals ("12.30"); per kg if weighed
barcodes       no        GTINs separated by ``|`` (EAN-13, EAN-8 or UPC-A)
unit           no        ``each`` (default) or ``kg``
category       no        category name (default 其他)
tax_rate       no        VAT in percent, e.g. ``13`` or ``9`` (default 13)
member_price   no        member price in yuan
plu            no        scale item code (digits), for weighed goods
mnemonic       no        助记码, e.g. ``kkkl``
active         no        ``1``/``0``, ``true``/``false`` (default active)
=============  ========  =================================================================

Rows are upserted by SKU in batches. A bad row (missing field, bad price, invalid barcode, a
barcode or PLU that another product already has) is reported with its line number and skipped;
every other row of its batch is still imported. A batch is written inside a savepoint and, only
when it hits a conflict, replayed row by row to find the culprits, so the common case stays fast.
"""

from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, Index, func, select
from sqlalchemy.exc import IntegrityError

from shouyin.domain.barcodes import normalise_gtin, normalise_plu
from shouyin.domain.errors import DomainError
from shouyin.domain.money import Money
from shouyin.domain.product import DEFAULT_CATEGORY, Product, Unit
from shouyin.store.tables import BarcodeRow, ProductRow, table

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("sku", "name", "price")
KNOWN_COLUMNS = (
    *REQUIRED_COLUMNS,
    "barcodes",
    "unit",
    "category",
    "tax_rate",
    "member_price",
    "plu",
    "mnemonic",
    "active",
)
BATCH_SIZE = 5_000
_TRUE = {"", "1", "true", "yes", "y", "是"}
_FALSE = {"0", "false", "no", "n", "否"}


class CatalogueFileError(DomainError):
    """The file as a whole cannot be imported (unreadable, no header, missing columns)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One rejected row: its 1-based line number in the file (the header is line 1)."""

    line: int
    message: str


@dataclass(slots=True)
class ImportReport:
    """What an import did: rows imported and rows rejected with reasons."""

    imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Number of rejected rows."""
        return len(self.errors)


@functools.lru_cache(maxsize=64)  # a catalogue uses a handful of rates a million times
def parse_tax_rate(text: str) -> int:
    """Parse a VAT rate in percent ("13", "9", "6.5") into basis points, exactly."""
    rate = Money.parse(text.rstrip("%")).fen  # two decimals of a percent = basis points
    if not 0 <= rate <= 10_000:
        raise ValueError(f"tax rate out of range: {text!r}")
    return rate


def product_from_row(row: dict[str, str]) -> Product:
    """Build a validated :class:`Product` from one CSV row.

    Raises:
        ValueError: with a message naming the bad field (domain errors are ValueErrors too).
    """
    sku = (row.get("sku") or "").strip()
    if not sku:
        raise ValueError("sku is empty")
    name = (row.get("name") or "").strip()
    if not name:
        raise ValueError("name is empty")
    price = Money.parse(row.get("price") or "")
    unit_text = (row.get("unit") or "each").strip().lower() or "each"
    try:
        unit = Unit(unit_text)
    except ValueError:
        raise ValueError(f"unit must be 'each' or 'kg', got {unit_text!r}") from None
    barcodes = tuple(
        normalise_gtin(code) for code in (row.get("barcodes") or "").split("|") if code.strip()
    )
    if len(set(barcodes)) != len(barcodes):
        raise ValueError("the same barcode is listed twice")
    member_text = (row.get("member_price") or "").strip()
    tax_text = (row.get("tax_rate") or "").strip()
    plu_text = (row.get("plu") or "").strip()
    plu = normalise_plu(plu_text) if plu_text else None  # scale codes carry it zero-padded
    active_text = (row.get("active") or "").strip().lower()
    if active_text not in _TRUE | _FALSE:
        raise ValueError(f"active must be 1/0 or true/false, got {active_text!r}")
    return Product(
        sku=sku,
        name=name,
        price=price,
        unit=unit,
        barcodes=barcodes,
        plu=plu,
        category=(row.get("category") or "").strip() or DEFAULT_CATEGORY,
        tax_rate_bp=parse_tax_rate(tax_text) if tax_text else 1300,
        member_price=Money.parse(member_text) if member_text else None,
        mnemonic=(row.get("mnemonic") or "").strip().lower(),
        active=active_text in _TRUE,
    )


def product_values(product: Product) -> dict[str, object]:
    """The ``products`` row values of a product."""
    return {
        "sku": product.sku,
        "name": product.name,
        "price": product.price.fen,
        "unit": product.unit.value,
        "plu": product.plu,
        "category": product.category,
        "tax_rate_bp": product.tax_rate_bp,
        "member_price": None if product.member_price is None else product.member_price.fen,
        "mnemonic": product.mnemonic,
        "active": product.active,
    }


def count_data_lines(path: Path) -> int:
    """Count the lines after the header, cheaply, for a progress bar's total."""
    lines = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
    return max(lines - 1, 0)


PRODUCT_COLUMNS = (
    "sku",
    "name",
    "price",
    "unit",
    "plu",
    "category",
    "tax_rate_bp",
    "member_price",
    "mnemonic",
    "active",
)


def _statements(connection: Connection) -> tuple[str, str, str]:
    """Upsert, barcode delete and barcode insert in the driver's own parameter style.

    Bulk import goes straight to the DB-API ``executemany`` with tuples: SQLAlchemy's
    per-row parameter processing was half the cost of importing a million products. The
    ``ON CONFLICT ... DO UPDATE SET col = excluded.col`` upsert is the same on SQLite and
    PostgreSQL.
    """
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(PRODUCT_COLUMNS)
    marks = ", ".join([mark] * len(PRODUCT_COLUMNS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in PRODUCT_COLUMNS[1:])
    # Built only from the constant column names and the driver's placeholder; values are bound.
    return (
        f"INSERT INTO products ({columns}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT (sku) DO UPDATE SET {updates}",
        f"DELETE FROM product_barcodes WHERE sku = {mark}",  # noqa: S608
        f"INSERT INTO product_barcodes (barcode, sku) VALUES ({mark}, {mark})",  # noqa: S608
    )


def _row(p: Product) -> tuple[object, ...]:
    member = None if p.member_price is None else p.member_price.fen
    return (
        p.sku,
        p.name,
        p.price.fen,
        p.unit.value,
        p.plu,
        p.category,
        p.tax_rate_bp,
        member,
        p.mnemonic,
        p.active,
    )


def write_products(
    connection: Connection,
    products: list[Product],
    *,
    replace_barcodes_of: Collection[str] | None = None,
) -> None:
    """Upsert products and their barcodes. Raises IntegrityError on a conflict.

    Args:
        connection: a connection inside a transaction.
        products: validated products with distinct SKUs.
        replace_barcodes_of: SKUs whose stored barcodes are deleted first; ``None`` (default)
            means every product's. A fresh import passes only SKUs it has already written.
    """
    if not products:
        return
    upsert, delete_codes, insert_code = _statements(connection)
    connection.exec_driver_sql(upsert, [_row(p) for p in products])
    if replace_barcodes_of is None:
        replace_barcodes_of = [p.sku for p in products]
    stale = [(sku,) for sku in replace_barcodes_of]
    if stale:
        connection.exec_driver_sql(delete_codes, stale)
    codes = [(code, p.sku) for p in products for code in p.barcodes]
    if codes:
        connection.exec_driver_sql(insert_code, codes)


def _describe_conflict(error: IntegrityError) -> str:
    text = str(error.orig).lower()
    if "barcode" in text:
        return "barcode already belongs to another product"
    if "plu" in text:
        return "PLU already belongs to another product"
    return "conflicts with an existing product"


class _BatchWriter:
    """Writes validated rows in batches, replaying a failed batch row by row.

    On a fresh import (no product in the table when it started) old barcodes need deleting only
    for SKUs this import already wrote, which are remembered; otherwise every SKU's are.
    """

    def __init__(self, connection: Connection, report: ImportReport) -> None:
        self._connection = connection
        self._report = report
        count = connection.execute(select(func.count()).select_from(ProductRow)).scalar_one()
        self._written: set[str] | None = set() if count == 0 else None
        self.batch: list[tuple[int, Product]] = []
        self._skus: set[str] = set()

    @property
    def fresh(self) -> bool:
        """True when the catalogue was empty as this import began."""
        return self._written is not None

    def add(self, line: int, product: Product) -> None:
        if product.sku in self._skus:
            self.flush()  # a SKU twice in one upsert statement would be ambiguous
        self.batch.append((line, product))
        self._skus.add(product.sku)

    def _stale(self, products: list[Product]) -> list[str] | None:
        if self._written is None:
            return None
        return [p.sku for p in products if p.sku in self._written]

    def flush(self) -> None:
        batch, self.batch, self._skus = self.batch, [], set()
        products = [p for _, p in batch]
        try:
            with self._connection.begin_nested():
                write_products(
                    self._connection, products, replace_barcodes_of=self._stale(products)
                )
            self._report.imported += len(batch)
            self._remember(products)
            return
        except IntegrityError:
            logger.debug("batch conflict; replaying %d rows one by one", len(batch))
        for line, product in batch:
            try:
                with self._connection.begin_nested():
                    write_products(self._connection, [product])
                self._report.imported += 1
                self._remember([product])
            except IntegrityError as error:
                self._report.errors.append(RowError(line, _describe_conflict(error)))

    def _remember(self, products: list[Product]) -> None:
        if self._written is not None:
            self._written.update(p.sku for p in products)


def _secondary_indexes() -> list[Index]:
    return [
        index
        for model in (ProductRow, BarcodeRow)
        for index in sorted(table(model).indexes, key=lambda i: str(i.name))
        if not index.unique
    ]


def read_rows(handle: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` from CSV text, checking the header first.

    Raises:
        CatalogueFileError: when the header is missing or lacks a required column.
    """
    reader = csv.DictReader(handle)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        raise CatalogueFileError("the file is empty: expected a header row")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CatalogueFileError(f"missing required column(s): {', '.join(missing)}")
    reader.fieldnames = header
    for row in reader:
        yield reader.line_num, row


def import_catalogue(
    engine: Engine,
    path: Path,
    *,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import a catalogue CSV into the database.

    Args:
        engine: the database.
        path: the CSV file (see the module docstring for columns).
        on_progress: called with the number of data rows read so far, once per batch.
        batch_size: rows per database batch.

    Returns:
        An :class:`ImportReport` with the imported count and every rejected row.

    Raises:
        CatalogueFileError: when the file cannot be read as a catalogue at all; nothing is written.
    """
    report = ImportReport()
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise CatalogueFileError(f"cannot open {path}: {error.strerror}") from error
    with handle, engine.begin() as connection:
        writer = _BatchWriter(connection, report)
        # Loading into an empty catalogue: build the lookup-only indexes once at the end (a
        # sort) instead of updating them row by row; unique ones stay to catch conflicts.
        deferred = _secondary_indexes() if writer.fresh else []
        for index in deferred:
            index.drop(connection)
        rows_read = 0
        try:
            for line, row in read_rows(handle):
                rows_read += 1
                try:
                    writer.add(line, product_from_row(row))
                except ValueError as error:
                    report.errors.append(RowError(line, str(error)))
                    continue
                if len(writer.batch) >= batch_size:
                    writer.flush()
                    if on_progress is not None:
                        on_progress(rows_read)
        except UnicodeDecodeError as error:
            raise CatalogueFileError(f"{path} is not UTF-8 text: {error.reason}") from error
        except csv.Error as error:
            raise CatalogueFileError(f"{path} is not valid CSV: {error}") from error
        writer.flush()
        for index in deferred:
            index.create(connection)
        if on_progress is not None:
            on_progress(rows_read)
    logger.info("catalogue import: %d imported, %d rejected", report.imported, report.rejected)
    return report
