"""The catalogue in the database: the :class:`CatalogueReader` the lane scans against.

Lookups are single indexed reads written in SQLAlchemy Core (no ORM identity map on the hot path),
so a scan costs tens of microseconds with a million products loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, Engine, RowMapping, func, select

from shouyin.domain.money import Money
from shouyin.domain.product import Product, Unit
from shouyin.store.catalog_import import write_products
from shouyin.store.tables import BarcodeRow, ProductRow, table

_P = table(ProductRow).c
_B = table(BarcodeRow).c
_PRODUCT_COLUMNS = (
    _P.sku,
    _P.name,
    _P.price,
    _P.unit,
    _P.plu,
    _P.category,
    _P.tax_rate_bp,
    _P.member_price,
    _P.mnemonic,
    _P.active,
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlCatalogue:
    """Read and write products in the database.

    Args:
        engine: the lane's or store server's database engine.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @staticmethod
    def _product(m: RowMapping, barcodes: Sequence[str]) -> Product:
        member = m["member_price"]
        return Product(
            sku=m["sku"],
            name=m["name"],
            price=Money(m["price"]),
            unit=Unit(m["unit"]),
            barcodes=tuple(barcodes),
            plu=m["plu"],
            category=m["category"],
            tax_rate_bp=m["tax_rate_bp"],
            member_price=None if member is None else Money(member),
            mnemonic=m["mnemonic"],
            active=bool(m["active"]),
        )

    def _one(self, where: ColumnElement[bool]) -> Product | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(*_PRODUCT_COLUMNS).where(where)).first()
            if row is None:
                return None
            return self._product(row._mapping, self._barcodes(conn, row.sku))

    @staticmethod
    def _barcodes(conn: Connection, sku: str) -> list[str]:
        return list(
            conn.execute(select(_B.barcode).where(_B.sku == sku).order_by(_B.barcode)).scalars()
        )

    def by_sku(self, sku: str) -> Product | None:
        """The product with this SKU, or None."""
        return self._one(_P.sku == sku)

    def by_barcode(self, gtin: str) -> Product | None:
        """The product carrying this normalised GTIN, or None."""
        stmt = (
            select(*_PRODUCT_COLUMNS).join(BarcodeRow, _B.sku == _P.sku).where(_B.barcode == gtin)
        )
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
            if row is None:
                return None
            return self._product(row._mapping, self._barcodes(conn, row.sku))

    def by_plu(self, plu: str) -> Product | None:
        """The product with this scale PLU, or None."""
        return self._one(_P.plu == plu)

    def search(self, prefix: str, limit: int = 20) -> list[Product]:
        """Active products whose name or 助记码 starts with ``prefix``, by name then SKU."""
        text = prefix.strip()
        if not text:
            return []
        pattern = _escape_like(text) + "%"
        stmt = (
            select(*_PRODUCT_COLUMNS)
            .where(
                _P.active.is_(True),
                _P.name.like(pattern, escape="\\") | _P.mnemonic.like(pattern.lower(), escape="\\"),
            )
            .order_by(_P.name, _P.sku)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                self._product(row._mapping, self._barcodes(conn, row.sku))
                for row in conn.execute(stmt)
            ]

    def save(self, product: Product) -> None:
        """Insert or replace one product and its barcodes (IntegrityError on a taken barcode)."""
        with self._engine.begin() as conn:
            write_products(conn, [product])

    def count(self) -> int:
        """Number of products in the catalogue."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ProductRow)).scalar_one())


__all__ = ["SqlCatalogue"]
