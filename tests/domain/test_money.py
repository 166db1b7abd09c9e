"""Money: integer fen, exact parsing and formatting, half-up rounding, exact allocation."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shouyin.domain.errors import InvalidAmount
from shouyin.domain.money import Money, round_half_up, total

fens = st.integers(min_value=-(10**12), max_value=10**12)
moneys = st.builds(Money, fens)


def reference_half_up(numerator: int, denominator: int) -> int:
    """Round half away from zero with exact fractions: the definition, not the implementation."""
    exact = Fraction(numerator, denominator)
    magnitude = int(abs(exact) + Fraction(1, 2))  # int() truncates, and the value is >= 0
    return magnitude if exact >= 0 else -magnitude


# -- construction -----------------------------------------------------------------------------


def test_yuan_builds_from_yuan_and_fen() -> None:
    assert Money.yuan(12, 30) == Money(1230)


def test_zero_is_falsy_and_other_amounts_truthy() -> None:
    assert not Money.zero()
    assert Money(-1)


@pytest.mark.parametrize("value", [True, 1.0, "1", None])
def test_money_refuses_anything_but_int_fen(value: Any) -> None:
    with pytest.raises(InvalidAmount):
        Money(value)


# -- parsing and formatting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("12.3", 1230),
        ("12.30", 1230),
        ("12", 1200),
        ("-0.05", -5),
        ("¥8", 800),
        ("￥8.5", 850),
        ("-¥12.30", -1230),
        ("¥-8", -800),
        ("1,234.50", 123450),
        ("  7.07\n", 707),
    ],
)
def test_parse_reads_decimal_yuan(text: str, fen: int) -> None:
    assert Money.parse(text) == Money(fen)


@pytest.mark.parametrize(
    "text", ["", "abc", "12.345", "12.", ".5", "1e3", "+5", "--5", "-¥-5", "12,3.4.5", "¥"]
)
def test_parse_refuses_non_amounts(text: str) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(text)


def test_format_pads_fen_and_puts_the_sign_first() -> None:
    assert Money(-5).format() == "-¥0.05"
    assert Money(1230).format("￥") == "￥12.30"
    assert str(Money(100)) == "¥1.00"
    assert Money(-1230).plain() == "-12.30"


@given(moneys)
def test_parse_inverts_plain(money: Money) -> None:
    assert Money.parse(money.plain()) == money


@given(moneys, st.sampled_from(["¥", "￥"]))
def test_parse_inverts_format(money: Money, symbol: str) -> None:
    assert Money.parse(money.format(symbol)) == money


# -- rounding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 10, 1), (4, 10, 0), (15, 10, 2), (-5, 10, -1), (-4, 10, 0), (-15, 10, -2), (0, 7, 0)],
)
def test_round_half_up_rounds_halves_away_from_zero(
    numerator: int, denominator: int, expected: int
) -> None:
    assert round_half_up(numerator, denominator) == expected


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(1, 10**6))
def test_round_half_up_matches_exact_fraction_reference(numerator: int, denominator: int) -> None:
    assert round_half_up(numerator, denominator) == reference_half_up(numerator, denominator)


@pytest.mark.parametrize("denominator", [0, -1])
def test_round_half_up_refuses_non_positive_denominator(denominator: int) -> None:
    with pytest.raises(InvalidAmount):
        round_half_up(1, denominator)


@pytest.mark.parametrize(
    ("price_per_kg", "grams", "expected"),
    [(1196, 500, 598), (999, 333, 333), (1, 500, 1), (1, 499, 0), (1290, 1234, 1592)],
)
def test_times_grams_prices_weight_half_up(price_per_kg: int, grams: int, expected: int) -> None:
    assert Money(price_per_kg).times_grams(grams) == Money(expected)


@pytest.mark.parametrize(
    ("fen", "basis_points", "expected"),
    [(999, 5000, 500), (-999, 5000, -500), (1000, 1300, 130), (1, 4999, 0), (12345, 10_000, 12345)],
)
def test_percent_rounds_half_up(fen: int, basis_points: int, expected: int) -> None:
    assert Money(fen).percent(basis_points) == Money(expected)


@given(fens, st.integers(min_value=0, max_value=10**6))
def test_times_grams_matches_exact_reference(fen: int, grams: int) -> None:
    assert Money(fen).times_grams(grams).fen == reference_half_up(fen * grams, 1000)


# -- allocation -------------------------------------------------------------------------------

weight_lists = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20).filter(
    lambda ws: sum(ws) > 0
)


@given(moneys, weight_lists)
def test_allocate_parts_sum_exactly_to_the_amount(money: Money, weights: list[int]) -> None:
    assert total(money.allocate(weights)) == money


@given(moneys, weight_lists)
def test_allocate_is_proportional_within_one_fen(money: Money, weights: list[int]) -> None:
    parts = money.allocate(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part.fen - Fraction(money.fen * weight, sum(weights))) < 1


def test_allocate_gives_ties_to_earlier_weights() -> None:
    assert Money(1).allocate([1, 1]) == [Money(1), Money(0)]
    assert Money(-1).allocate([1, 1]) == [Money(-1), Money(0)]


def test_allocate_gives_the_remainder_to_the_largest_remainders() -> None:
    assert Money(100).allocate([1, 1, 1]) == [Money(34), Money(33), Money(33)]
    assert Money(10).allocate([1, 2]) == [Money(3), Money(7)]


def test_allocate_zero_over_zero_weights_gives_zeros() -> None:
    assert Money(0).allocate([0, 0]) == [Money(0), Money(0)]


@pytest.mark.parametrize("weights", [[], [1, -1], [0, 0]])
def test_allocate_refuses_bad_weights(weights: list[int]) -> None:
    with pytest.raises(InvalidAmount):
        Money(100).allocate(weights)


# -- arithmetic -------------------------------------------------------------------------------


@given(moneys, moneys)
def test_addition_and_subtraction_are_exact_and_inverse(a: Money, b: Money) -> None:
    assert (a + b).fen == a.fen + b.fen
    assert a + b - b == a
    assert -a + a == Money(0)


def test_multiplying_by_a_count_works_both_ways() -> None:
    assert Money(250) * 3 == Money(750)
    assert 3 * Money(250) == Money(750)


@pytest.mark.parametrize("other", [1, 1.5, "1"])
def test_adding_a_non_money_raises_type_error(other: Any) -> None:
    with pytest.raises(TypeError):
        Money(1) + other


@pytest.mark.parametrize("factor", [1.5, True, Money(2)])
def test_multiplying_by_a_non_int_raises_type_error(factor: Any) -> None:
    with pytest.raises(TypeError):
        Money(100) * factor


def test_money_orders_and_hashes_by_fen() -> None:
    assert Money(1) < Money(2)
    assert {Money(5), Money(5)} == {Money(5)}


def test_money_never_equals_a_bare_int() -> None:
    five: object = 5
    assert Money(5) != five


def test_total_of_nothing_is_zero() -> None:
    assert total([]) == Money(0)
    assert total((Money(1), Money(2))) == Money(3)
