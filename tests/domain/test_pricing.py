"""Pricing engine and promotions: worked examples, then properties over random baskets."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shouyin.domain.errors import InvalidAmount, PromotionError
from shouyin.domain.money import Money, total
from shouyin.domain.pricing import AdjustmentKind, PricingLine, price, tax_included
from shouyin.domain.promotions import (
    DiscountKind,
    ManualDiscount,
    MultiBuy,
    Promotion,
    Scope,
    Threshold,
    promotion_from_dict,
    promotion_to_dict,
)

SECOND_HALF = MultiBuy("第二件半价", every=2, off_bp=5000)
BUY3_PAY2 = MultiBuy.buy_n_pay_m("买三付二", 3, 2)


def piece(
    line_no: int,
    fen: int,
    qty: int = 1,
    sku: str | None = None,
    category: str = "饮料",
    member_fen: int | None = None,
    discount: ManualDiscount | None = None,
    tax: int = 1300,
) -> PricingLine:
    return PricingLine(
        line_no=line_no,
        sku=sku or f"sku{line_no}",
        category=category,
        tax_rate_bp=tax,
        unit_price=Money(fen),
        quantity=qty,
        member_price=Money(member_fen) if member_fen is not None else None,
        discount=discount,
    )


# -- base amounts -------------------------------------------------------------------------------
def test_no_promotions_total_is_sum_of_list_prices() -> None:
    priced = price([piece(1, 350, qty=2), piece(2, 1200)])
    assert priced.subtotal == Money(1900)
    assert priced.total == Money(1900)
    assert priced.discount_total == Money(0)
    assert priced.applied == ()


def test_weighed_line_is_price_per_kg_times_grams_rounded_half_up() -> None:
    line = PricingLine(1, "apple", "水果", 900, Money(1299), grams=333)
    # 12.99/kg × 0.333 kg = 4.32567 -> 4.33
    assert price([line]).total == Money(433)


def test_weighed_line_rounds_exact_half_up() -> None:
    line = PricingLine(1, "apple", "水果", 900, Money(1), grams=500)
    assert price([line]).total == Money(1)  # 0.5 fen -> 1 fen


def test_price_embedded_line_uses_the_printed_amount() -> None:
    line = PricingLine(1, "meat", "肉", 900, Money(4000), fixed_amount=Money(1234))
    assert price([line]).total == Money(1234)


def test_duplicate_line_numbers_are_refused() -> None:
    with pytest.raises(InvalidAmount):
        price([piece(1, 100), piece(1, 200)])


# -- member price -------------------------------------------------------------------------------
def test_member_price_applies_only_with_a_member() -> None:
    lines = [piece(1, 1000, qty=2, member_fen=800)]
    assert price(lines, member=False).total == Money(2000)
    priced = price(lines, member=True)
    assert priced.total == Money(1600)
    assert priced.applied[0].kind is AdjustmentKind.MEMBER_PRICE
    assert priced.applied[0].amount == Money(400)


def test_member_price_above_list_price_is_ignored() -> None:
    assert price([piece(1, 1000, member_fen=1200)], member=True).total == Money(1000)


def test_member_price_does_not_touch_price_embedded_lines() -> None:
    line = PricingLine(
        1, "meat", "肉", 900, Money(4000), fixed_amount=Money(1234), member_price=Money(1)
    )
    assert price([line], member=True).total == Money(1234)


def test_member_price_of_weighed_goods_is_per_kg() -> None:
    line = PricingLine(1, "apple", "水果", 900, Money(1000), grams=500, member_price=Money(800))
    assert price([line], member=True).total == Money(400)


# -- multi-buy ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("qty", "expected"), [(1, 1000), (2, 1500), (3, 2500), (4, 3000)])
def test_second_unit_half_price(qty: int, expected: int) -> None:
    assert price([piece(1, 1000, qty=qty)], [SECOND_HALF]).total == Money(expected)


@pytest.mark.parametrize(("qty", "expected"), [(2, 1000), (3, 1000), (6, 2000), (7, 2500)])
def test_buy_three_pay_two(qty: int, expected: int) -> None:
    assert price([piece(1, 500, qty=qty)], [BUY3_PAY2]).total == Money(expected)


def test_multi_buy_counts_units_of_one_sku_across_lines() -> None:
    lines = [piece(1, 1000, sku="cola"), piece(2, 1000, sku="cola")]
    priced = price(lines, [SECOND_HALF])
    assert priced.total == Money(1500)


def test_multi_buy_never_groups_different_skus() -> None:
    assert price([piece(1, 1000), piece(2, 1000)], [SECOND_HALF]).total == Money(2000)


def test_multi_buy_discounts_the_cheapest_units() -> None:
    lines = [piece(1, 1000, sku="cola"), piece(2, 600, sku="cola")]
    priced = price(lines, [SECOND_HALF])
    assert priced.line(2).discount == Money(300)
    assert priced.line(1).discount == Money(0)


def test_multi_buys_do_not_stack_and_the_best_for_the_customer_wins() -> None:
    priced = price([piece(1, 1000, qty=3)], [SECOND_HALF, BUY3_PAY2])
    assert priced.total == Money(2000)  # 买三付二 (10.00 off) beats 第二件半价 (5.00 off)
    assert [a.name for a in priced.applied] == ["买三付二"]


def test_multi_buy_scope_limits_skus() -> None:
    promo = MultiBuy("可乐第二件半价", 2, 5000, scope=Scope(skus=frozenset({"cola"})))
    lines = [piece(1, 1000, qty=2, sku="cola"), piece(2, 1000, qty=2, sku="tea")]
    assert price(lines, [promo]).total == Money(3500)


def test_multi_buy_works_on_member_price() -> None:
    priced = price([piece(1, 1000, qty=2, member_fen=800)], [SECOND_HALF], member=True)
    assert priced.total == Money(1200)  # 8.00 + 4.00


def test_multi_buy_ignores_weighed_lines() -> None:
    lines = [PricingLine(no, "apple", "水果", 900, Money(1000), grams=2000) for no in (1, 2)]
    assert price(lines, [SECOND_HALF]).total == Money(4000)


def test_one_multi_buy_over_two_skus_is_reported_once() -> None:
    lines = [piece(1, 1000, qty=2, sku="a"), piece(2, 800, qty=2, sku="b")]
    priced = price(lines, [SECOND_HALF])
    assert len(priced.applied) == 1
    assert priced.applied[0].amount == Money(900)
    assert priced.applied[0].line_nos == (1, 2)


# -- manual line discounts ----------------------------------------------------------------------
def test_line_percent_discount_applies_after_multi_buy() -> None:
    discount = ManualDiscount.percent_off(1000, "临期")
    priced = price([piece(1, 1000, qty=2, discount=discount)], [SECOND_HALF])
    assert priced.total == Money(1350)  # (20.00 - 5.00) × 90%


def test_line_amount_discount_is_capped_at_the_line() -> None:
    discount = ManualDiscount.amount_off(Money(5000), "破损")
    priced = price([piece(1, 1000, discount=discount), piece(2, 300)])
    assert priced.line(1).net == Money(0)
    assert priced.total == Money(300)


# -- thresholds ---------------------------------------------------------------------------------
def test_threshold_below_the_mark_gives_nothing() -> None:
    promo = Threshold("满100减20", Money(10000), Money(2000))
    assert price([piece(1, 9999)], [promo]).total == Money(9999)


def test_threshold_once_without_repeat() -> None:
    promo = Threshold("满100减20", Money(10000), Money(2000))
    assert price([piece(1, 25000)], [promo]).total == Money(23000)


def test_threshold_repeats_per_full_threshold() -> None:
    promo = Threshold("每满100减20", Money(10000), Money(2000), repeat=True)
    assert price([piece(1, 25000)], [promo]).total == Money(21000)


def test_repeating_threshold_respects_its_cap() -> None:
    promo = Threshold("每满100减20 封顶40", Money(10000), Money(2000), repeat=True, max_times=2)
    assert price([piece(1, 50000)], [promo]).total == Money(46000)


def test_threshold_is_spread_over_eligible_lines_exactly() -> None:
    promo = Threshold("满100减20", Money(10000), Money(2000))
    priced = price([piece(1, 3333), piece(2, 3333), piece(3, 3334)], [promo])
    parts = [line.discount for line in priced.lines]
    assert total(parts) == Money(2000)
    assert sorted(p.fen for p in parts) == [666, 667, 667]


def test_threshold_scope_by_category() -> None:
    promo = Threshold(
        "酒水满100减30", Money(10000), Money(3000), scope=Scope(categories=frozenset({"酒"}))
    )
    lines = [piece(1, 8000, category="酒"), piece(2, 8000, category="零食")]
    priced = price(lines, [promo])
    assert priced.total == Money(16000)  # only 80.00 of wine: not reached
    priced = price([*lines, piece(3, 3000, category="酒")], [promo])
    assert priced.total == Money(16000)  # 110.00 of wine: 30.00 off the wine lines only
    assert priced.line(2).discount == Money(0)


def test_threshold_counts_nets_after_line_discounts() -> None:
    promo = Threshold("满100减20", Money(10000), Money(2000))
    discount = ManualDiscount.amount_off(Money(100), "折扣")
    assert price([piece(1, 10000, discount=discount)], [promo]).total == Money(9900)


def test_thresholds_stack_in_list_order_on_remaining_nets() -> None:
    first = Threshold("满100减20", Money(10000), Money(2000))
    second = Threshold("满100减10", Money(10000), Money(1000))
    assert price([piece(1, 11000)], [first, second]).total == Money(9000)
    assert price([piece(1, 11000)], [second, first]).total == Money(8000)


# -- order discount -----------------------------------------------------------------------------
def test_order_percent_discount_allocated_to_lines() -> None:
    discount = ManualDiscount.percent_off(1000, "店长折扣")
    priced = price([piece(1, 1000), piece(2, 2001)], order_discount=discount)
    assert priced.total == Money(2701)  # 30.01 - 3.00
    assert total([line.net for line in priced.lines]) == priced.total
    assert priced.applied[-1].kind is AdjustmentKind.ORDER_DISCOUNT


def test_order_amount_discount_is_capped_at_the_total() -> None:
    discount = ManualDiscount.amount_off(Money(99999), "赠送")
    priced = price([piece(1, 1000), piece(2, 300)], order_discount=discount)
    assert priced.total == Money(0)
    assert all(line.net == Money(0) for line in priced.lines)


def test_applied_promotions_report_name_amount_and_lines() -> None:
    promo = Threshold("满100减20", Money(10000), Money(2000))
    priced = price([piece(1, 6000), piece(2, 6000), piece(3, 100, category="x")], [promo])
    applied = priced.applied[0]
    assert (applied.name, applied.amount, applied.line_nos) == ("满100减20", Money(2000), (1, 2, 3))


# -- tax ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("gross", "rate", "tax"), [(11300, 1300, 1300), (10900, 900, 900), (100, 1300, 12), (0, 900, 0)]
)
def test_tax_included_in_vat_inclusive_prices(gross: int, rate: int, tax: int) -> None:
    assert tax_included(Money(gross), rate) == Money(tax)


def test_tax_by_rate_is_computed_on_each_rates_net_sum() -> None:
    priced = price([piece(1, 5650, tax=1300), piece(2, 5650, tax=1300), piece(3, 10900, tax=900)])
    assert priced.tax_by_rate == ((900, Money(900)), (1300, Money(1300)))


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: MultiBuy("x", every=1, off_bp=5000),
        lambda: MultiBuy("x", every=2, off_bp=10001),
        lambda: MultiBuy("x", every=2, off_bp=5000, discounted_units=2),
        lambda: MultiBuy("", every=2, off_bp=5000),
        lambda: MultiBuy.buy_n_pay_m("x", 3, 3),
        lambda: Threshold("x", Money(100), Money(200)),
        lambda: Threshold("x", Money(0), Money(0)),
        lambda: Threshold("x", Money(100), Money(10), repeat=True, max_times=0),
        lambda: ManualDiscount(DiscountKind.PERCENT, 10001, "x"),
        lambda: ManualDiscount(DiscountKind.AMOUNT, 0, "x"),
        lambda: ManualDiscount.amount_off(Money(100), "  "),
    ],
)
def test_malformed_promotions_are_refused(build: object) -> None:
    with pytest.raises(PromotionError):
        build()  # type: ignore[operator]


# -- properties ---------------------------------------------------------------------------------
discounts = st.one_of(
    st.none(),
    st.builds(ManualDiscount.percent_off, st.integers(1, 10_000), st.just("r")),
    st.builds(ManualDiscount.amount_off, st.builds(Money, st.integers(1, 20_000)), st.just("r")),
)


@st.composite
def baskets(draw: st.DrawFn) -> list[PricingLine]:
    count = draw(st.integers(0, 8))
    lines = []
    for no in range(1, count + 1):
        sku = draw(st.sampled_from(["a", "b", "c", "d"]))
        fen = {"a": 350, "b": 1299, "c": 5000, "d": 1}[sku]
        mode = draw(st.sampled_from(["piece", "piece", "weighed", "fixed"]))
        lines.append(
            PricingLine(
                line_no=no,
                sku=sku,
                category="x" if sku in "ab" else "y",
                tax_rate_bp=900 if sku == "a" else 1300,
                unit_price=Money(fen),
                quantity=draw(st.integers(1, 7)) if mode == "piece" else 1,
                grams=draw(st.integers(1, 5000)) if mode == "weighed" else None,
                fixed_amount=Money(draw(st.integers(0, 9999))) if mode == "fixed" else None,
                member_price=draw(st.none() | st.builds(Money, st.integers(0, 6000))),
                discount=draw(discounts),
            )
        )
    return lines


scopes = st.sampled_from(
    [Scope(), Scope(skus=frozenset({"a", "c"})), Scope(categories=frozenset({"y"}))]
)
promotion_lists = st.lists(
    st.one_of(
        st.builds(
            MultiBuy,
            name=st.sampled_from(["m1", "m2"]),
            every=st.integers(2, 4),
            off_bp=st.integers(1, 10_000),
            scope=scopes,
        ),
        st.builds(
            Threshold,
            name=st.sampled_from(["t1", "t2"]),
            threshold=st.builds(Money, st.integers(1000, 20_000)),
            off=st.builds(Money, st.integers(1, 1000)),
            repeat=st.booleans(),
            scope=scopes,
        ),
    ),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(baskets(), promotion_lists, st.booleans(), discounts)
def test_pricing_invariants(
    lines: list[PricingLine],
    promotions: list[Promotion],
    member: bool,
    order_discount: ManualDiscount | None,
) -> None:
    priced = price(lines, promotions, member, order_discount)
    assert priced.total >= Money(0)
    assert total([line.net for line in priced.lines]) == priced.total
    assert priced.subtotal - priced.discount_total == priced.total
    assert total([a.amount for a in priced.applied]) == priced.discount_total
    for line in priced.lines:
        assert Money(0) <= line.net <= line.gross
        assert line.discount <= line.gross
        assert all(a.amount > Money(0) for a in line.adjustments)


@settings(max_examples=100, deadline=None)
@given(baskets(), promotion_lists, st.booleans(), discounts, st.randoms(use_true_random=False))
def test_line_order_does_not_change_the_total(
    lines: list[PricingLine],
    promotions: list[Promotion],
    member: bool,
    order_discount: ManualDiscount | None,
    rnd: random.Random,
) -> None:
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    # Scanned in another order, the lines also get other numbers.
    shuffled = [replace(line, line_no=no) for no, line in enumerate(shuffled, start=1)]
    assert (
        price(shuffled, promotions, member, order_discount).total
        == price(lines, promotions, member, order_discount).total
    )


@settings(max_examples=100, deadline=None)
@given(baskets(), promotion_lists)
def test_promotions_never_raise_the_total(
    lines: list[PricingLine], promotions: list[Promotion]
) -> None:
    assert price(lines, promotions).total <= price(lines).total


@settings(max_examples=50, deadline=None)
@given(promotion_lists)
def test_promotions_round_trip_through_plain_data(promotions: list[Promotion]) -> None:
    for promotion in promotions:
        data = promotion_to_dict(promotion)
        assert json.loads(json.dumps(data)) == data
        assert promotion_from_dict(data) == promotion


@pytest.mark.parametrize(
    "data",
    [
        {"type": "coupon", "name": "x"},
        {"type": "multi_buy", "name": "x", "every": "2", "off_bp": 5000, "discounted_units": 1},
        {"type": "threshold", "name": "x", "threshold_fen": 100, "off_fen": 200},
        {"type": "threshold", "name": "x", "threshold_fen": 100, "off_fen": 20, "max_times": 1.5},
    ],
)
def test_malformed_plain_promotions_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(PromotionError):
        promotion_from_dict(data)
