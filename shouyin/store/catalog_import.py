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
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, Executable, delete
from sqlalchemy.dialects import postgresql, sqlite
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


def _upsert_products(connection: Connection, values: list[dict[str, object]]) -> None:
    products = table(ProductRow)
    dialect = connection.dialect.name
    if dialect == "sqlite":
        lite = sqlite.insert(products)
        updates = {c: lite.excluded[c] for c in KNOWN_PRODUCT_COLUMNS if c != "sku"}
        upsert: Executable = lite.on_conflict_do_update(index_elements=["sku"], set_=updates)
    elif dialect == "postgresql":
        pg = postgresql.insert(products)
        updates = {c: pg.excluded[c] for c in KNOWN_PRODUCT_COLUMNS if c != "sku"}
        upsert = pg.on_conflict_do_update(index_elements=["sku"], set_=updates)
    else:  # pragma: no cover - we ship SQLite and PostgreSQL only
        raise CatalogueFileError(f"unsupported database {dialect}")
    connection.execute(upsert, values)


KNOWN_PRODUCT_COLUMNS = tuple(c.name for c in table(ProductRow).columns)


def write_products(connection: Connection, products: list[Product]) -> None:
    """Upsert products and replace their barcodes. Raises IntegrityError on a conflict.

    Args:
        connection: a connection inside a transaction.
        products: validated products with distinct SKUs.
    """
    if not products:
        return
    _upsert_products(connection, [product_values(p) for p in products])
    skus = [p.sku for p in products]
    for start in range(0, len(skus), 500):
        connection.execute(delete(BarcodeRow).where(BarcodeRow.sku.in_(skus[start : start + 500])))
    barcode_rows = [{"barcode": code, "sku": p.sku} for p in products for code in p.barcodes]
    if barcode_rows:
        connection.execute(table(BarcodeRow).insert(), barcode_rows)


def _describe_conflict(error: IntegrityError) -> str:
    text = str(error.orig).lower()
    if "barcode" in text:
        return "barcode already belongs to another product"
    if "plu" in text:
        return "PLU already belongs to another product"
    return "conflicts with an existing product"


def _write_batch(
    connection: Connection, batch: list[tuple[int, Product]], report: ImportReport
) -> None:
    try:
        with connection.begin_nested():
            write_products(connection, [p for _, p in batch])
        report.imported += len(batch)
        return
    except IntegrityError:
        logger.debug("batch conflict; replaying %d rows one by one", len(batch))
    for line, product in batch:
        try:
            with connection.begin_nested():
                write_products(connection, [product])
            report.imported += 1
        except IntegrityError as error:
            report.errors.append(RowError(line, _describe_conflict(error)))


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
        batch: list[tuple[int, Product]] = []
        seen_in_batch: set[str] = set()
        rows_read = 0
        try:
            for line, row in read_rows(handle):
                rows_read += 1
                try:
                    product = product_from_row(row)
                except ValueError as error:
                    report.errors.append(RowError(line, str(error)))
                    continue
                if product.sku in seen_in_batch:
                    # A repeated SKU inside one batch would make the upsert ambiguous.
                    _write_batch(connection, batch, report)
                    batch, seen_in_batch = [], set()
                batch.append((line, product))
                seen_in_batch.add(product.sku)
                if len(batch) >= batch_size:
                    _write_batch(connection, batch, report)
                    batch, seen_in_batch = [], set()
                    if on_progress is not None:
                        on_progress(rows_read)
        except UnicodeDecodeError as error:
            raise CatalogueFileError(f"{path} is not UTF-8 text: {error.reason}") from error
        except csv.Error as error:
            raise CatalogueFileError(f"{path} is not valid CSV: {error}") from error
        _write_batch(connection, batch, report)
        if on_progress is not None:
            on_progress(rows_read)
    logger.info("catalogue import: %d imported, %d rejected", report.imported, report.rejected)
    return report
