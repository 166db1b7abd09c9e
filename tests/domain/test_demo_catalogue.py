"""Demo and synthetic products: deterministic, realistic, valid and loadable."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from shouyin.domain.barcodes import Nomenclature, has_valid_check_digit, normalise_gtin
from shouyin.domain.catalogue import Catalogue, lookup
from shouyin.domain.demo_catalogue import (
    DEMO_CATEGORIES,
    demo_product_count,
    demo_products,
    synthetic_products,
)
from shouyin.domain.product import Product, Unit

WEIGHED = {"生鲜蔬果", "肉禽蛋"}
NON_FOOD = {"日用百货", "个人护理", "清洁用品"}
DEMO = demo_products()


def test_demo_has_400_products_by_default() -> None:
    assert len(DEMO) == 400


def test_demo_is_deterministic_for_a_seed() -> None:
    assert demo_products(seed=7) == demo_products(seed=7)


def test_demo_differs_between_seeds() -> None:
    assert demo_products(seed=1) != demo_products(seed=2)


def test_smaller_demo_is_part_of_the_larger_one() -> None:
    assert set(demo_products(50)) <= set(DEMO)


def test_demo_covers_every_department() -> None:
    assert {p.category for p in demo_products(len(DEMO_CATEGORIES))} == set(DEMO_CATEGORIES)


def test_demo_skus_names_barcodes_and_plus_are_unique() -> None:
    everything = demo_products(demo_product_count())
    barcodes = [b for p in everything for b in p.barcodes]
    plus = [p.plu for p in everything if p.plu is not None]
    for values in ([p.sku for p in everything], [p.name for p in everything], barcodes, plus):
        assert len(values) == len(set(values)), Counter(values).most_common(3)


def test_packaged_goods_have_one_chinese_ean13() -> None:
    for product in DEMO:
        if product.category not in WEIGHED:
            (barcode,) = product.barcodes
            assert normalise_gtin(barcode) == barcode
            assert len(barcode) == 13
            assert 690 <= int(barcode[:3]) <= 699


def test_fresh_goods_are_weighed_per_kg_with_a_five_digit_plu() -> None:
    for product in DEMO:
        if product.category in WEIGHED:
            assert product.unit is Unit.KG
            assert product.barcodes == ()
            assert product.plu is not None
            assert len(product.plu) <= 5
        else:
            assert product.unit is Unit.EACH
            assert product.plu is None


def test_food_pays_9_percent_and_non_food_13() -> None:
    for product in DEMO:
        assert product.tax_rate_bp == (1300 if product.category in NON_FOOD else 900)


def test_about_15_percent_have_a_lower_member_price() -> None:
    members = [p for p in DEMO if p.member_price is not None]
    assert 0.10 <= len(members) / len(DEMO) <= 0.20
    assert all(p.member_price is not None and p.member_price < p.price for p in members)


def test_prices_are_plausible() -> None:
    assert all(50 <= p.price.fen <= 200_000 for p in DEMO)


def test_names_are_brand_style() -> None:
    names = {p.name for p in demo_products(demo_product_count())}
    assert {"农夫山泉 饮用天然水 550ml", "金龙鱼 大豆油 5L", "红富士苹果"} <= names


def test_mnemonics_are_lowercase_letters() -> None:
    assert all(re.fullmatch(r"[a-z]+", p.mnemonic) for p in DEMO)


def test_mnemonic_search_finds_the_brand() -> None:
    found = Catalogue(DEMO).search("nfsq", 100)
    assert found
    assert all(p.name.startswith("农夫山泉") for p in found)


def test_every_demo_product_is_found_by_its_scan() -> None:
    catalogue = Catalogue(demo_products(demo_product_count()))
    nomenclature = Nomenclature.default()
    weighed_label = nomenclature.formats[0]
    for product in catalogue:
        code = (
            product.barcodes[0]
            if product.barcodes
            else weighed_label.encode(product.plu or "", amount=product.price)
        )
        assert lookup(code, catalogue, nomenclature).product is product


@pytest.mark.parametrize("count", [-1, demo_product_count() + 1])
def test_demo_refuses_counts_beyond_its_tables(count: int) -> None:
    with pytest.raises(ValueError, match="count must be between"):
        demo_products(count)


def test_demo_of_zero_is_empty() -> None:
    assert demo_products(0) == []


# -- synthetic products -----------------------------------------------------------------------


def test_synthetic_products_are_distinct_and_load_into_a_catalogue() -> None:
    products = list(synthetic_products(20_000))
    catalogue = Catalogue(products)
    assert len(catalogue) == 20_000
    assert catalogue.by_barcode(products[12_345].barcodes[0]) is products[12_345]


@pytest.mark.parametrize("start", [0, 999, 999_990, 123_456_789, 999_999_000])
def test_synthetic_barcodes_are_valid_ean13_across_digit_chunks(start: int) -> None:
    for product in synthetic_products(1000, start=start):
        (barcode,) = product.barcodes
        assert len(barcode) == 13
        assert barcode.startswith("699")
        assert has_valid_check_digit(barcode)


def test_synthetic_start_continues_the_sequence() -> None:
    assert list(synthetic_products(5, start=10)) == list(synthetic_products(15))[10:]


def test_every_20th_synthetic_product_is_weighed_with_a_plu() -> None:
    products: list[Product] = list(synthetic_products(100))
    weighed = [p for p in products if p.unit is Unit.KG]
    assert [p.plu for p in weighed] == ["1", "2", "3", "4", "5"]


def test_synthetic_products_stop_giving_plus_beyond_five_digits() -> None:
    (product,) = synthetic_products(1, start=20 * 100_000)
    assert product.plu is None


@pytest.mark.parametrize(("count", "start"), [(-1, 0), (1, -1), (2, 10**9 - 1)])
def test_synthetic_refuses_ranges_outside_nine_digits(count: int, start: int) -> None:
    with pytest.raises(ValueError, match="numbered"):
        synthetic_products(count, start)
