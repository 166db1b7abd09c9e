"""Catalogue: indexes by SKU, barcode and PLU, prefix search, and scan lookup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from shouyin.domain import catalogue as catalogue_module
from shouyin.domain.barcodes import GtinScan, Nomenclature, ScaleScan, gtin_check_digit
from shouyin.domain.catalogue import Catalogue, CatalogueReader, ScanResult, lookup
from shouyin.domain.errors import InactiveProduct, InvalidBarcode, InvalidProduct, UnknownProduct
from shouyin.domain.money import Money
from shouyin.domain.product import Product, Unit

NOMENCLATURE = Nomenclature.default()
PRICE_13, PRICE_WEIGHT_18 = NOMENCLATURE.formats


def ean(body: str) -> str:
    return body + str(gtin_check_digit(body))


COLA = Product(
    sku="YL0001",
    name="可口可乐 500ml",
    price=Money(300),
    barcodes=(ean("690123456789"),),
    mnemonic="kkkl",
    category="饮料",
)
WATER = Product(
    sku="YL0002",
    name="农夫山泉 饮用天然水 550ml",
    price=Money(200),
    barcodes=(ean("690987654321"), ean("690987654322")),
    mnemonic="nfsqyytrs",
)
APPLES = Product(
    sku="SG0001",
    name="红富士苹果",
    price=Money(1196),
    unit=Unit.KG,
    plu="1001",
    mnemonic="hfspg",
)


@pytest.fixture
def shop() -> Catalogue:
    return Catalogue([COLA, WATER, APPLES])


# -- exact lookups ----------------------------------------------------------------------------


def test_products_are_found_by_sku_barcode_and_plu(shop: Catalogue) -> None:
    assert shop.by_sku("YL0001") is COLA
    assert shop.by_barcode(WATER.barcodes[1]) is WATER
    assert shop.by_plu("1001") is APPLES


def test_lookups_of_unknown_codes_return_none(shop: Catalogue) -> None:
    assert shop.by_sku("nope") is None
    assert shop.by_barcode(ean("699999999999")) is None
    assert shop.by_barcode("garbage") is None
    assert shop.by_plu("9999") is None
    assert shop.by_plu("x") is None


def test_zero_padded_plu_finds_the_product(shop: Catalogue) -> None:
    assert shop.by_plu("01001") is APPLES


def test_catalogue_counts_iterates_and_contains_by_sku(shop: Catalogue) -> None:
    assert len(shop) == 3
    assert list(shop) == [COLA, WATER, APPLES]
    assert "SG0001" in shop


# -- adding -----------------------------------------------------------------------------------


def test_add_stores_upca_barcodes_as_ean13() -> None:
    catalogue = Catalogue()
    stored = catalogue.add(replace(COLA, barcodes=("036000291452",)))
    assert stored.barcodes == ("0036000291452",)
    assert catalogue.by_barcode("036000291452") is stored


def test_add_stores_plu_without_leading_zeros() -> None:
    catalogue = Catalogue()
    stored = catalogue.add(replace(APPLES, plu="001001"))
    assert stored.plu == "1001"


def test_add_keeps_a_well_formed_product_as_is() -> None:
    assert Catalogue().add(COLA) is COLA


def test_add_refuses_a_duplicate_sku_and_changes_nothing(shop: Catalogue) -> None:
    with pytest.raises(InvalidProduct, match="SKU YL0001 already exists"):
        shop.add(replace(COLA, barcodes=(ean("690000000001"),), name="别的"))
    assert shop.by_barcode(ean("690000000001")) is None
    assert shop.by_sku("YL0001") is COLA


def test_add_refuses_a_barcode_of_another_product_and_changes_nothing(shop: Catalogue) -> None:
    clash = replace(WATER, sku="NEW1", barcodes=(ean("690000000001"), WATER.barcodes[1]))
    with pytest.raises(
        InvalidProduct, match=f"barcode {WATER.barcodes[1]} already belongs to YL0002"
    ):
        shop.add(clash)
    assert shop.by_sku("NEW1") is None
    assert shop.by_barcode(ean("690000000001")) is None


def test_add_refuses_a_plu_of_another_product_and_changes_nothing(shop: Catalogue) -> None:
    with pytest.raises(InvalidProduct, match="PLU 1001 already belongs to SG0001"):
        shop.add(replace(APPLES, sku="SG0002", name="苹果", plu="01001"))
    assert len(shop) == 3


@pytest.mark.parametrize("barcode", ["6901234567890", "12345", "69012345678a"])
def test_add_refuses_an_invalid_barcode(barcode: str) -> None:
    with pytest.raises(InvalidProduct, match="is invalid"):
        Catalogue().add(replace(COLA, barcodes=(barcode,)))


def test_add_refuses_one_barcode_listed_twice() -> None:
    with pytest.raises(InvalidProduct, match="listed twice"):
        Catalogue().add(replace(COLA, barcodes=("036000291452", "0036000291452")))


@pytest.mark.parametrize("plu", ["", "12a", "１２"])
def test_add_refuses_a_non_digit_plu(plu: str) -> None:
    with pytest.raises(InvalidProduct, match="PLU"):
        Catalogue().add(replace(APPLES, plu=plu))


# -- upsert and remove ------------------------------------------------------------------------


def test_upsert_replaces_by_sku_and_reindexes_barcodes(shop: Catalogue) -> None:
    new_code = ean("690555555555")
    newer = replace(WATER, price=Money(250), barcodes=(new_code,))
    shop.upsert(newer)
    assert shop.by_sku("YL0002") is newer
    assert shop.by_barcode(new_code) is newer
    assert shop.by_barcode(WATER.barcodes[0]) is None
    assert len(shop) == 3


def test_upsert_lets_a_product_keep_its_own_codes(shop: Catalogue) -> None:
    cheaper = replace(APPLES, price=Money(999))
    shop.upsert(cheaper)
    assert shop.by_plu("1001") is cheaper


def test_upsert_adds_a_new_sku(shop: Catalogue) -> None:
    fresh = replace(COLA, sku="YL0009", barcodes=(ean("690000000009"),))
    shop.upsert(fresh)
    assert shop.by_sku("YL0009") is fresh


def test_upsert_refuses_a_barcode_of_another_sku_and_changes_nothing(shop: Catalogue) -> None:
    with pytest.raises(InvalidProduct, match="already belongs to YL0001"):
        shop.upsert(replace(WATER, barcodes=COLA.barcodes))
    assert shop.by_sku("YL0002") is WATER
    assert shop.by_barcode(COLA.barcodes[0]) is COLA


def test_remove_drops_the_product_from_every_index(shop: Catalogue) -> None:
    assert shop.remove("SG0001") is APPLES
    assert shop.by_sku("SG0001") is None
    assert shop.by_plu("1001") is None
    assert shop.search("hfspg") == []


def test_remove_of_an_unknown_sku_raises(shop: Catalogue) -> None:
    with pytest.raises(UnknownProduct):
        shop.remove("nope")


# -- search -----------------------------------------------------------------------------------


def test_search_finds_by_mnemonic_case_insensitively(shop: Catalogue) -> None:
    assert shop.search("KKKL") == [COLA]


def test_search_finds_by_chinese_name_prefix(shop: Catalogue) -> None:
    assert shop.search("农夫") == [WATER]


def test_search_finds_latin_names_case_insensitively() -> None:
    rio = Product(sku="JS1", name="RIO 微醺 鸡尾酒 330ml", price=Money(690), mnemonic="riowxjwj")
    assert Catalogue([rio]).search("Rio") == [rio]


def test_search_orders_by_key_then_sku_and_respects_the_limit() -> None:
    products = [
        Product(sku=sku, name=name, price=Money(100), mnemonic="")
        for sku, name in [("B", "可乐 b"), ("A", "可乐 b"), ("C", "可乐 a"), ("D", "可乐 c")]
    ]
    found = Catalogue(products).search("可乐", 3)
    assert [p.sku for p in found] == ["C", "A", "B"]


def test_search_returns_a_product_matching_twice_once() -> None:
    both = Product(sku="X", name="abc", price=Money(1), mnemonic="abc")
    assert Catalogue([both]).search("ab") == [both]


def test_search_leaves_out_inactive_products_unless_asked(shop: Catalogue) -> None:
    shop.upsert(replace(COLA, active=False))
    assert shop.search("kkkl") == []
    assert [p.sku for p in shop.search("kkkl", 20, include_inactive=True)] == ["YL0001"]


@pytest.mark.parametrize(("prefix", "limit"), [("", 20), ("   ", 20), ("kkkl", 0)])
def test_search_with_empty_prefix_or_no_limit_finds_nothing(
    shop: Catalogue, prefix: str, limit: int
) -> None:
    assert shop.search(prefix, limit) == []


def test_search_sees_products_added_after_the_first_search(shop: Catalogue) -> None:
    assert shop.search("kk") == [COLA]
    zero = replace(COLA, sku="YL0003", name="可口可乐 零度 500ml", barcodes=(), mnemonic="kkklld")
    shop.add(zero)
    assert shop.search("kk") == [COLA, zero]


def test_in_place_changes_keep_equal_names_ordered_by_sku(shop: Catalogue) -> None:
    shop.search("x")  # build the index, so later changes are applied in place
    for sku in ["C", "A", "D", "B"]:
        shop.add(Product(sku=sku, name="同名", price=Money(1)))
    shop.remove("C")
    assert [p.sku for p in shop.search("同名", 2)] == ["A", "B"]


def test_search_rebuilds_after_many_changes(
    shop: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue_module, "_IN_PLACE_LIMIT", 2)
    shop.search("x")
    extra = [Product(sku=f"Z{i}", name=f"新品 {i}", price=Money(1)) for i in range(5)]
    for product in extra:
        shop.add(product)
    assert shop.search("新品") == extra


# -- a model-based check of every index -------------------------------------------------------

SKUS = st.sampled_from(["A", "B", "C", "D", "E"])
BARCODES = st.lists(st.sampled_from([ean(f"69000000000{d}") for d in "12345"]), max_size=2)
NAMES = st.text(alphabet="ab可乐", min_size=1, max_size=3).filter(lambda s: s.strip() != "")
MNEMONICS = st.text(alphabet="abAB", max_size=3)


class CatalogueMachine(RuleBasedStateMachine):
    """Random adds, upserts and removes against a plain dict of the products it should hold."""

    def __init__(self) -> None:
        super().__init__()
        self.catalogue = Catalogue()
        self.model: dict[str, Product] = {}

    def _clashes(self, product: Product) -> bool:
        return any(
            other.sku != product.sku
            and (
                set(other.barcodes) & set(product.barcodes)
                or (other.plu is not None and other.plu == product.plu)
            )
            for other in self.model.values()
        )

    @rule(
        sku=SKUS,
        name=NAMES,
        mnemonic=MNEMONICS,
        barcodes=BARCODES,
        plu=st.none() | st.sampled_from(["1", "2", "3"]),
        active=st.booleans(),
        upsert=st.booleans(),
    )
    def put(
        self,
        sku: str,
        name: str,
        mnemonic: str,
        barcodes: list[str],
        plu: str | None,
        active: bool,
        upsert: bool,
    ) -> None:
        product = Product(
            sku=sku,
            name=name,
            price=Money(100),
            barcodes=tuple(dict.fromkeys(barcodes)),
            plu=plu,
            mnemonic=mnemonic,
            active=active,
        )
        refused = self._clashes(product) or (not upsert and sku in self.model)
        if refused:
            with pytest.raises(InvalidProduct):
                self.catalogue.upsert(product) if upsert else self.catalogue.add(product)
        else:
            self.catalogue.upsert(product) if upsert else self.catalogue.add(product)
            self.model[sku] = product

    @rule(sku=SKUS)
    def remove(self, sku: str) -> None:
        if sku in self.model:
            assert self.catalogue.remove(sku) is self.model.pop(sku)
        else:
            with pytest.raises(UnknownProduct):
                self.catalogue.remove(sku)

    @rule(prefix=st.text(alphabet="abAB可", min_size=1, max_size=2), limit=st.integers(1, 4))
    def search(self, prefix: str, limit: int) -> None:
        needle = prefix.casefold()

        def rank(p: Product) -> tuple[str, str] | None:
            keys = [k for k in (p.name.casefold(), p.mnemonic.casefold()) if k.startswith(needle)]
            return (min(keys), p.sku) if keys and p.active else None

        ranked = sorted((r, p) for p in self.model.values() if (r := rank(p)) is not None)
        expected = [p.sku for _, p in ranked[:limit]]
        assert [p.sku for p in self.catalogue.search(prefix, limit)] == expected

    @invariant()
    def indexes_agree_with_the_model(self) -> None:
        assert len(self.catalogue) == len(self.model)
        for sku, product in self.model.items():
            assert self.catalogue.by_sku(sku) is product
            for code in product.barcodes:
                assert self.catalogue.by_barcode(code) is product
            if product.plu is not None:
                assert self.catalogue.by_plu(product.plu) is product
        owned = {code for p in self.model.values() for code in p.barcodes}
        for d in "12345":
            code = ean(f"69000000000{d}")
            if code not in owned:
                assert self.catalogue.by_barcode(code) is None


def test_catalogue_behaves_like_its_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tiny in-place limit makes the runs cross both the in-place and the rebuild paths.
    monkeypatch.setattr(catalogue_module, "_IN_PLACE_LIMIT", 3)
    run_state_machine_as_test(
        CatalogueMachine, settings=settings(max_examples=60, stateful_step_count=30, deadline=None)
    )


# -- lookup -----------------------------------------------------------------------------------


def test_lookup_of_a_gtin_gives_the_product_without_weight(shop: Catalogue) -> None:
    assert lookup(COLA.barcodes[0], shop, NOMENCLATURE) == ScanResult(
        COLA, None, None, GtinScan(COLA.barcodes[0])
    )


def test_lookup_of_a_price_label_gives_the_product_and_amount(shop: Catalogue) -> None:
    code = PRICE_13.encode("1001", amount=Money(897))
    result = lookup(code, shop, NOMENCLATURE)
    assert (result.product, result.amount, result.grams) == (APPLES, Money(897), None)
    assert isinstance(result.scan, ScaleScan)


def test_lookup_of_an_18_digit_label_gives_amount_and_weight(shop: Catalogue) -> None:
    code = PRICE_WEIGHT_18.encode("1001", amount=Money(897), grams=750, prefix="28")
    result = lookup(code, shop, NOMENCLATURE)
    assert (result.product, result.amount, result.grams) == (APPLES, Money(897), 750)


def test_lookup_of_an_unknown_gtin_raises_unknown_product(shop: Catalogue) -> None:
    with pytest.raises(UnknownProduct) as caught:
        lookup(ean("690000000077"), shop, NOMENCLATURE)
    assert caught.value.code == ean("690000000077")


def test_lookup_of_an_unknown_plu_raises_unknown_product(shop: Catalogue) -> None:
    with pytest.raises(UnknownProduct):
        lookup(PRICE_13.encode("4242", amount=Money(1)), shop, NOMENCLATURE)


def test_lookup_of_an_inactive_product_raises_inactive_product(shop: Catalogue) -> None:
    shop.upsert(replace(COLA, active=False))
    with pytest.raises(InactiveProduct) as caught:
        lookup(COLA.barcodes[0], shop, NOMENCLATURE)
    assert caught.value.sku == "YL0001"


def test_lookup_of_a_malformed_code_raises_invalid_barcode(shop: Catalogue) -> None:
    with pytest.raises(InvalidBarcode):
        lookup("6901234567890", shop, NOMENCLATURE)


class DictReader:
    """The smallest CatalogueReader: what a store-backed catalogue must provide."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.products = products

    def by_sku(self, sku: str, /) -> Product | None:
        return next((p for p in self.products if p.sku == sku), None)

    def by_barcode(self, code: str, /) -> Product | None:
        return next((p for p in self.products if code in p.barcodes), None)

    def by_plu(self, plu: str, /) -> Product | None:
        return next((p for p in self.products if p.plu == plu), None)

    def search(self, prefix: str, limit: int, /) -> list[Product]:
        return [p for p in self.products if p.name.startswith(prefix)][:limit]


def test_lookup_works_with_any_catalogue_reader() -> None:
    reader: CatalogueReader = DictReader([COLA, APPLES])
    assert lookup(PRICE_13.encode("1001", amount=Money(5)), reader, NOMENCLATURE).product is APPLES
