"""The admin's catalogue: finding products and changing their prices, with an audit record.

Prices are integer fen. :func:`check_price` is the one validation of a price typed by the admin:
an integer (not a float, not a string, not a boolean), not negative, and at most
:data:`MAX_PRICE_FEN`: a price above that is a typing slip (an extra zero or two), not a product
a supermarket sells at a till. Each refusal names what is wrong, in Chinese and English.

:func:`change_price` reads the old price, writes the new one and appends the audit entry (who,
what, when, from where, old and new price: :mod:`shouyin.domain.audit`) in one transaction, so a
price never changes without its record; a refused change is recorded too, as a failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome, DetailValue
from shouyin.domain.barcodes import normalise_gtin
from shouyin.domain.errors import DomainError
from shouyin.domain.product import Product
from shouyin.i18n import register, t
from shouyin.store.audit_repo import CheckpointStore, SqlAuditLog, append_audit
from shouyin.store.catalogue_repo import SqlCatalogue
from shouyin.store.tables import ProductRow, table

__all__ = [
    "MAX_PRICE_FEN",
    "InvalidPrice",
    "PriceChange",
    "UnknownProduct",
    "change_price",
    "check_price",
    "find_products",
    "record_price_change_refused",
]

logger = logging.getLogger(__name__)

MAX_PRICE_FEN: Final = 10_000_000
"""The highest price the admin page accepts: 100,000.00 yuan (per piece or per kg)."""

MESSAGES: Final = {
    "admin.price.not_integer": {
        "zh": "价格必须是以分为单位的整数（例如 12.30 元填 1230）",
        "en": "The price must be a whole number of fen (12.30 yuan is 1230)",
    },
    "admin.price.negative": {"zh": "价格不能为负数", "en": "The price must not be negative"},
    "admin.price.too_high": {
        "zh": "价格过高：最多 {limit} 分（{yuan} 元），请检查是否多输了零",
        "en": "The price is too high: at most {limit} fen ({yuan} yuan); check for extra zeros",
    },
    "admin.price.member_above": {
        "zh": "会员价不能高于售价",
        "en": "The member price must not be above the price",
    },
    "admin.product.unknown": {"zh": "没有商品 {sku}", "en": "No product {sku}"},
}
register(MESSAGES)

_P = table(ProductRow).c


class InvalidPrice(DomainError, ValueError):
    """A price typed by the admin is refused.

    Attributes:
        key: the message id (:data:`MESSAGES`).
        fields: the message's fields.
    """

    def __init__(self, key: str, **fields: object) -> None:
        super().__init__(t(key, "en", **fields))
        self.key = key
        self.fields = fields

    def message(self, lang: str) -> str:
        """The refusal in ``lang``."""
        return t(self.key, lang, **self.fields)


class UnknownProduct(DomainError, LookupError):
    """No product has this SKU."""

    def __init__(self, sku: str) -> None:
        super().__init__(t("admin.product.unknown", "en", sku=sku))
        self.sku = sku

    def message(self, lang: str) -> str:
        """The refusal in ``lang``."""
        return t("admin.product.unknown", lang, sku=self.sku)


def check_price(value: object) -> int:
    """A typed price as fen, or the reason it is refused.

    Raises:
        InvalidPrice: not an integer, negative, or above :data:`MAX_PRICE_FEN`.
    """
    if type(value) is not int:  # bool is an int subclass; 12.5 fen or "1230" are slips
        raise InvalidPrice("admin.price.not_integer")
    if value < 0:
        raise InvalidPrice("admin.price.negative")
    if value > MAX_PRICE_FEN:
        raise InvalidPrice(
            "admin.price.too_high", limit=MAX_PRICE_FEN, yuan=f"{MAX_PRICE_FEN // 100:,}"
        )
    return value


@dataclass(frozen=True, slots=True)
class PriceChange:
    """One price change, as recorded for the audit trail.

    Attributes:
        sku: the product.
        name: its name.
        old_price, new_price: fen.
        old_member_price, new_member_price: fen, or ``None``.
        changed_by: the admin's user id.
        source: where the request came from (client address).
        at: when (aware UTC).
    """

    sku: str
    name: str
    old_price: int
    new_price: int
    old_member_price: int | None
    new_member_price: int | None
    changed_by: str
    source: str
    at: datetime


def find_products(catalogue: SqlCatalogue, query: str, limit: int = 20) -> list[Product]:
    """Products matching what the admin typed: an exact SKU or barcode first, then name or
    助记码 prefix matches (active products)."""
    text = query.strip()
    if not text:
        return []
    found: dict[str, Product] = {}
    exact = catalogue.by_sku(text)
    if exact is not None:
        found[exact.sku] = exact
    if text.isdigit():
        try:
            gtin = normalise_gtin(text)
        except DomainError:
            gtin = None
        by_code = catalogue.by_barcode(gtin) if gtin else None
        if by_code is not None:
            found.setdefault(by_code.sku, by_code)
    for product in catalogue.search(text, limit):
        found.setdefault(product.sku, product)
    return list(found.values())[:limit]


def _event(
    sku: str,
    outcome: AuditOutcome,
    *,
    actor: str,
    source: str,
    at: datetime,
    **details: DetailValue,
) -> AuditEvent:
    return AuditEvent(
        AuditAction.PRICE_CHANGE, outcome, actor, source, f"product:{sku}", at, details
    )


def record_price_change_refused(
    engine: Engine,
    sku: str,
    reason: str,
    *,
    changed_by: str,
    source: str,
    now: datetime,
    checkpoints: CheckpointStore | None = None,
) -> None:
    """Record a refused price change for the audit trail (PCI DSS 10.2.2: failures too)."""
    event = _event(
        sku, AuditOutcome.FAILURE, actor=changed_by, source=source, at=now, reason=reason
    )
    append_audit(engine, event, checkpoints)


def change_price(
    engine: Engine,
    sku: str,
    price: object,
    *,
    member_price: object = None,
    changed_by: str,
    source: str,
    now: datetime,
    checkpoints: CheckpointStore | None = None,
) -> PriceChange:
    """Set a product's price (and optionally its member price), then record the change.

    Args:
        engine: the catalogue's database.
        sku: the product.
        price: the new price in fen (checked by :func:`check_price`).
        member_price: the new member price in fen; ``None`` keeps the current one.
        changed_by: the admin's user id.
        source: the client's address.
        now: the current time (aware UTC).
        checkpoints: the audit log's signed checkpoint, moved forward after the change.

    Returns:
        What changed.

    Raises:
        InvalidPrice: a price is refused; nothing is changed (the refusal is audited).
        UnknownProduct: no product has this SKU (the refusal is audited).
    """
    try:
        new_price = check_price(price)
        new_member = None if member_price is None else check_price(member_price)
        with Session(engine) as session, session.begin():
            conn = session.connection()
            row = conn.execute(
                select(_P.name, _P.price, _P.member_price).where(_P.sku == sku)
            ).first()
            if row is None:
                raise UnknownProduct(sku)
            old_member = None if row.member_price is None else int(row.member_price)
            member_after = new_member if new_member is not None else old_member
            if member_after is not None and member_after > new_price:
                raise InvalidPrice("admin.price.member_above")
            conn.execute(
                update(ProductRow)
                .where(_P.sku == sku)
                .values(price=new_price, member_price=member_after)
            )
            change = PriceChange(
                sku=sku,
                name=str(row.name),
                old_price=int(row.price),
                new_price=new_price,
                old_member_price=old_member,
                new_member_price=member_after,
                changed_by=changed_by,
                source=source,
                at=now,
            )
            # The audit entry commits with the change itself: one never exists without the other.
            entry = SqlAuditLog(session).append(
                _event(
                    sku,
                    AuditOutcome.SUCCESS,
                    actor=changed_by,
                    source=source,
                    at=now,
                    old_fen=change.old_price,
                    new_fen=change.new_price,
                    old_member_fen=change.old_member_price,
                    new_member_fen=change.new_member_price,
                )
            )
    except (InvalidPrice, UnknownProduct) as error:
        record_price_change_refused(
            engine,
            sku,
            str(error),
            changed_by=changed_by,
            source=source,
            now=now,
            checkpoints=checkpoints,
        )
        raise
    if checkpoints is not None:
        checkpoints.advance(entry.seq, entry.entry_hash)
    logger.info(
        "price of %s changed from %d to %d fen by %s from %s",
        sku,
        change.old_price,
        change.new_price,
        changed_by,
        source,
    )
    return change
