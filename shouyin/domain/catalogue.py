"""The product catalogue: lookups by SKU, barcode and PLU, prefix search, and scan-to-product.

:class:`CatalogueReader` is the read interface the lane needs; :class:`Catalogue` is the
in-memory implementation (the SQL catalogue in :mod:`shouyin.store` implements the same protocol).

The in-memory catalogue is sized for a million products. Exact lookups are dictionaries. Prefix
search (on the name and on the 助记码 mnemonic, case-insensitively) bisects sorted key lists. Those
lists are built lazily at the first search after a bulk load, so loading a million products costs
no sorting until somebody searches; after that, a change is applied in place by bisection (one
``list.insert``, a memmove of about a millisecond at a million products). Past
:data:`_IN_PLACE_LIMIT` changes since the last build, the lists are dropped and rebuilt at the
next search instead, because one sort is then cheaper than many memmoves (a nightly price sync).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Final, Protocol

from shouyin.domain.barcodes import (
    Nomenclature,
    ScaleScan,
    Scan,
    normalise_gtin,
    normalise_plu,
    parse_scan,
)
from shouyin.domain.errors import InactiveProduct, InvalidBarcode, InvalidProduct, UnknownProduct
from shouyin.domain.money import Money
from shouyin.domain.product import Product

__all__ = ["DEFAULT_SEARCH_LIMIT", "Catalogue", "CatalogueReader", "ScanResult", "lookup"]

DEFAULT_SEARCH_LIMIT: Final = 20
# Above this many in-place changes since the last sort, rebuilding at the next search is cheaper.
_IN_PLACE_LIMIT: Final = 1000


class CatalogueReader(Protocol):
    """What the lane reads from a catalogue; in memory here, SQL-backed in :mod:`shouyin.store`.

    Parameters are positional-only so implementations may name them as they like.
    """

    def by_sku(self, sku: str, /) -> Product | None:
        """Return the product with this SKU, active or not, or None."""
        ...

    def by_barcode(self, gtin: str, /) -> Product | None:
        """Return the product carrying this normalised GTIN (see ``normalise_gtin``), or None."""
        ...

    def by_plu(self, plu: str, /) -> Product | None:
        """Return the product with this canonical PLU (see ``normalise_plu``), or None."""
        ...

    def search(self, prefix: str, limit: int, /) -> Sequence[Product]:
        """Return up to ``limit`` active products whose name or mnemonic starts with ``prefix``.

        Case-insensitive; ordered by the matching key, then SKU; each product once; an empty
        prefix finds nothing.
        """
        ...


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What a scan resolved to.

    Attributes:
        product: the active product.
        grams: the weight printed in a scale barcode, if any.
        amount: the price printed in a scale barcode, if any (pricing decides whether to use it).
        scan: the parsed code.
    """

    product: Product
    grams: int | None
    amount: Money | None
    scan: Scan


def lookup(code: str, catalogue: CatalogueReader, nomenclature: Nomenclature) -> ScanResult:
    """Resolve a scanned code to a sellable product: the hot path of "scan to cart".

    Args:
        code: the scanner's digits.
        catalogue: where to look the product up.
        nomenclature: the store's scale-barcode formats.

    Returns:
        The product with the weight and amount a scale barcode carries.

    Raises:
        InvalidBarcode: if the code is malformed (see :func:`~shouyin.domain.barcodes.parse_scan`).
        UnknownProduct: if no product has the barcode (GTIN) or the PLU (scale code).
        InactiveProduct: if the product is no longer sold.
    """
    scan = parse_scan(code, nomenclature)
    if type(scan) is ScaleScan:
        product = catalogue.by_plu(scan.plu)
        grams, amount = scan.grams, scan.amount
    else:
        product = catalogue.by_barcode(scan.code)
        grams = amount = None
    if product is None:
        raise UnknownProduct(code.strip())
    if not product.active:
        raise InactiveProduct(product.sku, product.name)
    return ScanResult(product, grams, amount, scan)


class _PrefixIndex:
    """Products sorted by a text key (ties by SKU), searched by prefix with :mod:`bisect`.

    ``keys[i]`` is the key of ``products[i]``; parallel lists keep the keys a plain ``list[str]``
    for bisect and avoid one tuple per product.
    """

    __slots__ = ("_changes", "_key", "_keys", "_products", "built")

    def __init__(self, key: Callable[[Product], str]) -> None:
        self._key = key
        self._keys: list[str] = []
        self._products: list[Product] = []
        self._changes = 0
        self.built = False

    def build(self, products: Iterable[Product]) -> None:
        key = self._key
        # Parallel lists of strings, not (key, product) tuples: a million tuples would be
        # tracked by the garbage collector, whose passes then cost as much as the sort.
        keys: list[str] = []
        items: list[Product] = []
        for product in products:
            k = key(product)
            if k:
                keys.append(k)
                items.append(product)
        # Sorting indices by one string per product ("key NUL sku": ties by SKU) is about twice
        # as fast as sorting (key, sku, product) tuples.
        tie_broken = [k + "\0" + p.sku for k, p in zip(keys, items, strict=True)]
        order = sorted(range(len(keys)), key=tie_broken.__getitem__)
        del tie_broken
        self._keys = [keys[i] for i in order]
        self._products = [items[i] for i in order]
        self._changes = 0
        self.built = True

    def invalidate(self) -> None:
        self._keys, self._products = [], []
        self.built = False

    def _position(self, key: str, sku: str) -> int:
        i = bisect.bisect_left(self._keys, key)
        while i < len(self._keys) and self._keys[i] == key and self._products[i].sku < sku:
            i += 1
        return i

    def _note_change(self) -> bool:
        """Count a change; return False (and drop the lists) once rebuilding is cheaper."""
        if not self.built:
            return False
        self._changes += 1
        if self._changes > _IN_PLACE_LIMIT:
            self.invalidate()
            return False
        return True

    def insert(self, product: Product) -> None:
        if not self.built:  # a bulk load: the next search sorts everything once
            return
        key = self._key(product)
        if key and self._note_change():
            i = self._position(key, product.sku)
            self._keys.insert(i, key)
            self._products.insert(i, product)

    def discard(self, product: Product) -> None:
        if not self.built:
            return
        key = self._key(product)
        if key and self._note_change():
            i = self._position(key, product.sku)
            del self._keys[i]
            del self._products[i]

    def matches(
        self, needle: str, limit: int, include_inactive: bool
    ) -> list[tuple[str, str, Product]]:
        keys, products = self._keys, self._products
        found: list[tuple[str, str, Product]] = []
        i = bisect.bisect_left(keys, needle)
        while i < len(keys) and len(found) < limit and keys[i].startswith(needle):
            product = products[i]
            if include_inactive or product.active:
                found.append((keys[i], product.sku, product))
            i += 1
        return found


def _name_key(product: Product) -> str:
    return product.name.casefold()


def _mnemonic_key(product: Product) -> str:
    return product.mnemonic.strip().casefold()


class Catalogue:
    """An in-memory catalogue indexed by SKU, barcode, PLU, name and mnemonic.

    Barcodes are stored normalised (UPC-A as EAN-13) and PLUs in canonical form, so the stored
    product may be a normalised copy of the one added; :meth:`add` and :meth:`upsert` return it.
    Iterating yields the products in insertion order.
    """

    __slots__ = ("_by_barcode", "_by_plu", "_by_sku", "_mnemonics", "_names")

    def __init__(self, products: Iterable[Product] = ()) -> None:
        """Build a catalogue.

        Args:
            products: products to :meth:`add`, in order.

        Raises:
            InvalidProduct: as :meth:`add` does.
        """
        self._by_sku: dict[str, Product] = {}
        self._by_barcode: dict[str, Product] = {}
        self._by_plu: dict[str, Product] = {}
        self._names = _PrefixIndex(_name_key)
        self._mnemonics = _PrefixIndex(_mnemonic_key)
        for product in products:
            self.add(product)

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_sku)

    def __iter__(self) -> Iterator[Product]:
        return iter(self._by_sku.values())

    def __contains__(self, sku: object) -> bool:
        return sku in self._by_sku

    def by_sku(self, sku: str) -> Product | None:
        """Return the product with this SKU, active or not, or None."""
        return self._by_sku.get(sku)

    def by_barcode(self, gtin: str) -> Product | None:
        """Return the product carrying this GTIN, or None.

        Args:
            gtin: a normalised GTIN; an un-normalised one (UPC-A, spaces) is also understood.
        """
        product = self._by_barcode.get(gtin)
        if product is None:
            # Only misses pay for normalising; hits (the scan path) are one dict lookup.
            try:
                product = self._by_barcode.get(normalise_gtin(gtin))
            except InvalidBarcode:
                return None
        return product

    def by_plu(self, plu: str) -> Product | None:
        """Return the product with this PLU, or None.

        Args:
            plu: a canonical PLU (``"123"``); a zero-padded one (``"00123"``) is also understood.
        """
        product = self._by_plu.get(plu)
        if product is None:
            try:
                product = self._by_plu.get(normalise_plu(plu))
            except InvalidBarcode:
                return None
        return product

    def search(
        self,
        prefix: str,
        limit: int = DEFAULT_SEARCH_LIMIT,
        *,
        include_inactive: bool = False,
    ) -> list[Product]:
        """Find products whose name or mnemonic (助记码) starts with ``prefix``.

        Args:
            prefix: the text typed, e.g. ``"kkkl"`` or ``"可口"``; case-insensitive, stripped.
            limit: the most products to return.
            include_inactive: also return products no longer sold (for the admin pages).

        Returns:
            Up to ``limit`` products, ordered by the matching key then SKU, each once; nothing
            for an empty prefix or a limit below 1.
        """
        needle = prefix.strip().casefold()
        if not needle or limit < 1:
            return []
        for index in (self._names, self._mnemonics):
            if not index.built:
                index.build(self._by_sku.values())
        found = self._names.matches(needle, limit, include_inactive)
        found += self._mnemonics.matches(needle, limit, include_inactive)
        # Each list holds its own first `limit` matches, so the merged first `limit` distinct
        # products are the overall first ones, even when a product matched in both lists.
        found.sort(key=itemgetter(0, 1))
        result: dict[str, Product] = {}
        for _, sku, product in found:
            result.setdefault(sku, product)
            if len(result) == limit:
                break
        return list(result.values())

    # -- writing ------------------------------------------------------------------------------
    def add(self, product: Product) -> Product:
        """Add a new product.

        Args:
            product: the product; its barcodes must be valid GTINs and its PLU digits.

        Returns:
            The stored product (barcodes normalised, PLU canonical).

        Raises:
            InvalidProduct: for an invalid barcode or PLU, or if the SKU, a barcode or the PLU
                already belongs to a product; the message names the conflict. The catalogue is
                then unchanged.
        """
        stored = self._normalised(product)
        existing = self._by_sku.get(stored.sku)
        if existing is not None:
            raise InvalidProduct(f"SKU {stored.sku} already exists: {existing.name}")
        self._check_codes_free(stored)
        self._index(stored)
        return stored

    def upsert(self, product: Product) -> Product:
        """Add a product, or replace the product with the same SKU (re-indexing its codes).

        Args:
            product: the new version.

        Returns:
            The stored product (barcodes normalised, PLU canonical).

        Raises:
            InvalidProduct: for an invalid barcode or PLU, or if a barcode or the PLU belongs
                to a product with another SKU. The catalogue is then unchanged.
        """
        stored = self._normalised(product)
        self._check_codes_free(stored)
        old = self._by_sku.get(stored.sku)
        if old is not None:
            self._unindex(old)
        self._index(stored)
        return stored

    def remove(self, sku: str) -> Product:
        """Remove a product and its barcodes and PLU.

        Args:
            sku: the product's SKU.

        Returns:
            The removed product.

        Raises:
            UnknownProduct: if no product has this SKU.
        """
        old = self._by_sku.get(sku)
        if old is None:
            raise UnknownProduct(sku)
        self._unindex(old)
        return old

    # -- internals ----------------------------------------------------------------------------
    @staticmethod
    def _normalised(product: Product) -> Product:
        barcodes: list[str] = []
        for code in product.barcodes:
            try:
                gtin = normalise_gtin(code)
            except InvalidBarcode as e:
                raise InvalidProduct(
                    f"product {product.sku}: barcode {code!r} is invalid: {e.reason}"
                ) from e
            if gtin in barcodes:
                raise InvalidProduct(f"product {product.sku}: barcode {gtin} is listed twice")
            barcodes.append(gtin)
        plu = product.plu
        if plu is not None:
            try:
                plu = normalise_plu(plu)
            except InvalidBarcode as e:
                raise InvalidProduct(
                    f"product {product.sku}: PLU {product.plu!r} is invalid: {e.reason}"
                ) from e
        if plu == product.plu and tuple(barcodes) == product.barcodes:
            return product  # the common case: no copy for a million well-formed products
        return replace(product, barcodes=tuple(barcodes), plu=plu)

    def _check_codes_free(self, product: Product) -> None:
        """Refuse barcodes or a PLU owned by another SKU (the same SKU may keep its own)."""
        for code in product.barcodes:
            owner = self._by_barcode.get(code)
            if owner is not None and owner.sku != product.sku:
                raise InvalidProduct(
                    f"product {product.sku}: barcode {code} already belongs to "
                    f"{owner.sku} {owner.name}"
                )
        if product.plu is not None:
            owner = self._by_plu.get(product.plu)
            if owner is not None and owner.sku != product.sku:
                raise InvalidProduct(
                    f"product {product.sku}: PLU {product.plu} already belongs to "
                    f"{owner.sku} {owner.name}"
                )

    def _index(self, product: Product) -> None:
        self._by_sku[product.sku] = product
        for code in product.barcodes:
            self._by_barcode[code] = product
        if product.plu is not None:
            self._by_plu[product.plu] = product
        self._names.insert(product)
        self._mnemonics.insert(product)

    def _unindex(self, product: Product) -> None:
        del self._by_sku[product.sku]
        for code in product.barcodes:
            del self._by_barcode[code]
        if product.plu is not None:
            del self._by_plu[product.plu]
        self._names.discard(product)
        self._mnemonics.discard(product)
