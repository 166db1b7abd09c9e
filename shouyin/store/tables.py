"""SQLAlchemy table models. Separate from the domain objects; repositories convert between them.

Money columns hold integer fen (``BigInteger``), never floats. Every schema change goes through an
Alembic migration in ``shouyin/store/migrations``; ``tests/store/test_migrations.py`` checks that
the migrations and these models agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shouyin.store.types import UTCDateTime

# Deterministic constraint names so migrations work the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the shared metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ProductRow(Base):
    """A catalogue product. ``price`` is per piece or per kg (``unit == 'kg'``)."""

    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[str] = mapped_column(String(8), default="each")
    plu: Mapped[str | None] = mapped_column(String(16), unique=True)
    category: Mapped[str] = mapped_column(String(64), index=True)
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    member_price: Mapped[int | None] = mapped_column(BigInteger)
    mnemonic: Mapped[str] = mapped_column(String(64), default="", index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (Index("ix_products_name", "name"),)


class BarcodeRow(Base):
    """One normalised GTIN of a product; a product may have several (multipacks, old labels)."""

    __tablename__ = "product_barcodes"

    barcode: Mapped[str] = mapped_column(String(18), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku", ondelete="CASCADE"), index=True)


class UserRow(Base):
    """A cashier, supervisor or admin account. Only the argon2 hash of the password is kept."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
