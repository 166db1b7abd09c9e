"""Barcodes: GS1 check digits, GTIN normalisation, scale formats, nomenclatures, parse_scan."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shouyin.domain.barcodes import (
    GtinScan,
    Nomenclature,
    ScaleFormat,
    ScaleScan,
    gtin_check_digit,
    has_valid_check_digit,
    normalise_gtin,
    normalise_plu,
    parse_scan,
)
from shouyin.domain.errors import InvalidBarcode, InvalidNomenclature, ScaleEncodingError
from shouyin.domain.money import Money

IN_STORE = frozenset(str(n) for n in range(20, 30))
DEFAULT = Nomenclature.default()
PRICE_13, PRICE_WEIGHT_18 = DEFAULT.formats


def reference_check_digit(body: str) -> int:
    """GS1 mod 10 written out plainly: weights 3, 1, 3, ... from the rightmost body digit."""
    weighted = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - weighted % 10) % 10


def with_check_digit(body: str) -> str:
    return body + str(reference_check_digit(body))


def digit_strings(length: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=length, max_size=length)


# -- check digits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ("400638133393", 1),  # EAN-13 4006381333931
        ("9638507", 4),  # EAN-8 96385074
        ("03600029145", 2),  # UPC-A 036000291452
        ("200123400599", 9),  # a 13-digit scale code
        ("21012340059901234", 8),  # an 18-digit scale code
    ],
)
def test_check_digit_matches_published_examples(body: str, check: int) -> None:
    assert gtin_check_digit(body) == check


@given(st.integers(min_value=1, max_value=30).flatmap(digit_strings))
def test_check_digit_matches_reference_for_any_length(body: str) -> None:
    assert gtin_check_digit(body) == reference_check_digit(body)


@pytest.mark.parametrize("body", ["", "12a4", "１２３", "12 3"])
def test_check_digit_refuses_non_digit_body(body: str) -> None:
    with pytest.raises(InvalidBarcode):
        gtin_check_digit(body)


@given(st.integers(min_value=1, max_value=17).flatmap(digit_strings))
def test_appending_the_check_digit_always_validates(body: str) -> None:
    assert has_valid_check_digit(body + str(gtin_check_digit(body)))


@given(st.integers(min_value=2, max_value=18).flatmap(digit_strings), st.data())
def test_changing_any_one_digit_always_fails_the_check(body: str, data: st.DataObject) -> None:
    code = with_check_digit(body)
    position = data.draw(st.integers(min_value=0, max_value=len(code) - 1))
    new_digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != code[position]))
    assert not has_valid_check_digit(code[:position] + new_digit + code[position + 1 :])


@pytest.mark.parametrize("code", ["", "7", "12a4", "4006381333932"])
def test_has_valid_check_digit_is_false_for_bad_codes(code: str) -> None:
    assert not has_valid_check_digit(code)


# -- GTIN normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "gtin"),
    [
        ("4006381333931", "4006381333931"),
        ("96385074", "96385074"),
        ("036000291452", "0036000291452"),
        (" 6901234567892\r\n", "6901234567892"),
    ],
)
def test_normalise_gtin_accepts_ean13_ean8_and_upca(code: str, gtin: str) -> None:
    assert normalise_gtin(code) == gtin


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("4006381333932", "check digit should be 1"),
        ("40063813339", "must be 8, 12 or 13 digits, got 11"),
        ("40063813339310", "must be 8, 12 or 13 digits, got 14"),
        ("400638133393A", "must contain only digits 0-9"),
        ("４００６３８１３３３９３１", "must contain only digits 0-9"),
        ("   ", "is empty"),
    ],
)
def test_normalise_gtin_refuses_with_a_clear_reason(code: str, reason: str) -> None:
    with pytest.raises(InvalidBarcode) as caught:
        normalise_gtin(code)
    assert caught.value.reason == reason
    assert caught.value.code == code


@given(st.sampled_from([7, 11, 12]).flatmap(digit_strings))
def test_normalise_gtin_accepts_every_body_with_its_check_digit(body: str) -> None:
    code = with_check_digit(body)
    assert normalise_gtin(code).endswith(code)


@given(st.sampled_from([7, 11, 12]).flatmap(digit_strings), st.data())
def test_normalise_gtin_refuses_every_single_digit_change(body: str, data: st.DataObject) -> None:
    code = with_check_digit(body)
    position = data.draw(st.integers(min_value=0, max_value=len(code) - 1))
    new_digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != code[position]))
    with pytest.raises(InvalidBarcode):
        normalise_gtin(code[:position] + new_digit + code[position + 1 :])


@pytest.mark.parametrize(("plu", "canonical"), [("00123", "123"), ("123", "123"), ("000", "0")])
def test_normalise_plu_drops_leading_zeros(plu: str, canonical: str) -> None:
    assert normalise_plu(plu) == canonical


@pytest.mark.parametrize("plu", ["", "12a", "-1", "１２"])
def test_normalise_plu_refuses_non_digits(plu: str) -> None:
    with pytest.raises(InvalidBarcode):
        normalise_plu(plu)


# -- scale formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "prefixes", "reason"),
    [
        ("FFWWWWWEEEEE", IN_STORE, "must be 13 or 18 letters"),
        ("FFWWWWWEEEEZC", IN_STORE, "unknown letters Z"),
        ("ffwwwwweeeeec", IN_STORE, "unknown letters"),
        ("FFWWWWWEEEEEE", IN_STORE, "exactly one C"),
        ("FFWWWWWEEEECC", IN_STORE, "exactly one C"),
        ("FFWWWWCEEEEEC", IN_STORE, "exactly one C"),
        ("WWWWWWWEEEEEC", IN_STORE, "must start with the F"),
        ("WFFWWWWEEEEEC", IN_STORE, "must start with the F"),
        ("FWFWWWWEEEEEC", IN_STORE, "F digits must be one contiguous group"),
        ("FFEEEEEEEEEEC", IN_STORE, "needs W digits"),
        ("FFWWWWWXXXXXC", IN_STORE, "needs E (amount) or N (weight)"),
        ("FFWWEWWEEEEEC", IN_STORE, "W digits must be one contiguous group"),
        ("FFWWWWWEENNEC", IN_STORE, "E digits must be one contiguous group"),
        ("FFWWWWWEEEEEC", frozenset(), "needs at least one prefix"),
        ("FFWWWWWEEEEEC", frozenset({"2"}), "must be 2 digits"),
        ("FFWWWWWEEEEEC", frozenset({"200"}), "must be 2 digits"),
        ("FFWWWWWEEEEEC", frozenset({"2a"}), "must be 2 digits"),
    ],
)
def test_scale_format_refuses_bad_patterns(
    pattern: str, prefixes: frozenset[str], reason: str
) -> None:
    with pytest.raises(InvalidNomenclature, match=reason.replace("(", r"\(").replace(")", r"\)")):
        ScaleFormat(pattern, prefixes)


@pytest.mark.parametrize("name", ["a;b", "a:b", " padded"])
def test_scale_format_refuses_names_that_break_the_spec(name: str) -> None:
    with pytest.raises(InvalidNomenclature, match="name"):
        ScaleFormat("FFWWWWWEEEEEC", IN_STORE, name)


def test_scale_format_names_itself_by_its_spec_by_default() -> None:
    assert (
        ScaleFormat("FFWWWWWNNNNNC", frozenset({"25", "26", "28"})).name == "25-26,28:FFWWWWWNNNNNC"
    )


def test_scale_format_encode_builds_the_code_a_scale_prints() -> None:
    assert PRICE_13.encode("1234", amount=Money(599)) == "2001234005999"
    assert (
        PRICE_WEIGHT_18.encode("1234", amount=Money(599), grams=1234, prefix="21")
        == "210123400599012348"
    )


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        (PRICE_13, {"plu": "123456", "amount": Money(1)}),  # PLU wider than 5 W digits
        (PRICE_13, {"plu": "12a", "amount": Money(1)}),
        (PRICE_13, {"plu": "1", "amount": Money(100_000)}),  # over 5 E digits
        (PRICE_13, {"plu": "1", "amount": Money(-1)}),
        (PRICE_13, {"plu": "1"}),  # amount missing
        (PRICE_13, {"plu": "1", "amount": Money(1), "grams": 5}),  # no N digits
        (PRICE_13, {"plu": "1", "amount": Money(1), "prefix": "30"}),
        (PRICE_WEIGHT_18, {"plu": "1", "amount": Money(1)}),  # weight missing
        (PRICE_WEIGHT_18, {"plu": "1", "amount": Money(1), "grams": True}),
    ],
)
def test_scale_format_encode_refuses_values_that_do_not_fit(
    fmt: ScaleFormat, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ScaleEncodingError):
        fmt.encode(**kwargs)


# -- nomenclatures ----------------------------------------------------------------------------


def test_default_nomenclature_has_13_and_18_digit_formats_for_prefixes_20_to_29() -> None:
    assert [(f.pattern, f.prefixes) for f in DEFAULT.formats] == [
        ("FFWWWWWEEEEEC", IN_STORE),
        ("FFWWWWWEEEEENNNNNC", IN_STORE),
    ]


def test_from_spec_reads_prefix_ranges_and_patterns() -> None:
    nomenclature = Nomenclature.from_spec(
        "20-24:FFWWWWWEEEEEC;25-29:FFWWWWWNNNNNC;20-29:FFWWWWWEEEEENNNNNC"
    )
    assert [(f.pattern, sorted(f.prefixes)) for f in nomenclature.formats] == [
        ("FFWWWWWEEEEEC", ["20", "21", "22", "23", "24"]),
        ("FFWWWWWNNNNNC", ["25", "26", "27", "28", "29"]),
        ("FFWWWWWEEEEENNNNNC", [str(n) for n in range(20, 30)]),
    ]


def test_from_spec_reads_lists_names_and_spaces() -> None:
    nomenclature = Nomenclature.from_spec(" 20, 22-23 : FFWWWWWEEEEEC : 称重价格 ; ")
    (fmt,) = nomenclature.formats
    assert (fmt.prefixes, fmt.name) == (frozenset({"20", "22", "23"}), "称重价格")


def test_from_spec_keeps_the_width_of_zero_padded_ranges() -> None:
    (fmt,) = Nomenclature.from_spec("02-04:FFWWWWWEEEEEC").formats
    assert fmt.prefixes == frozenset({"02", "03", "04"})


def test_empty_spec_means_no_scale_formats() -> None:
    assert Nomenclature.from_spec("  ").formats == ()


def test_to_spec_of_default_names_both_formats() -> None:
    assert DEFAULT.to_spec() == (
        "20-29:FFWWWWWEEEEEC:ean13-price;20-29:FFWWWWWEEEEENNNNNC:ean18-price-weight"
    )


@pytest.mark.parametrize(
    "spec",
    [
        "20-29:FFWWWWWEEEEEC:ean13-price;20-29:FFWWWWWEEEEENNNNNC:ean18-price-weight",
        "20-24:FFWWWWWEEEEEC;25-29:FFWWWWWNNNNNC;20-29:FFWWWWWEEEEENNNNNC",
        "20,22,24-25:FFWWWWWXEEEEC;2:FWWWWWWNNNNNEEEEEC:weight-first",
        "",
    ],
)
def test_spec_round_trips(spec: str) -> None:
    nomenclature = Nomenclature.from_spec(spec)
    assert nomenclature.to_spec() == spec
    assert Nomenclature.from_spec(nomenclature.to_spec()) == nomenclature


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("20-24", "must be PREFIXES:PATTERN"),
        ("20:FFWWWWWEEEEEC:a:b", "must be PREFIXES:PATTERN"),
        ("24-20:FFWWWWWEEEEEC", "runs backwards"),
        ("2-24:FFWWWWWEEEEEC", "equal-width"),
        ("2x:FFWWWWWEEEEEC", "must be digits"),
        (":FFWWWWWEEEEEC", "must be digits"),
        ("20:FFWW", "must be 13 or 18 letters"),
        ("20:FFWWWWWEEEEEC;2:FWWWWWWEEEEEC", "both match 13-digit codes starting '2'"),
        ("21-22:FFWWWWWEEEEEC;22:FFWWWWWNNNNNC", "both match 13-digit codes starting '22'"),
        ("0000-9999,10000-99999:FFWWWWWEEEEEC", "over 10000 prefixes"),
    ],
)
def test_from_spec_refuses_bad_entries_with_a_reason(spec: str, reason: str) -> None:
    with pytest.raises(InvalidNomenclature) as caught:
        Nomenclature.from_spec(spec)
    assert reason in caught.value.reason


def test_nomenclature_refuses_two_formats_for_one_prefix_and_length() -> None:
    with pytest.raises(InvalidNomenclature, match="both match"):
        Nomenclature(
            (
                ScaleFormat("FFWWWWWEEEEEC", frozenset({"20", "21"})),
                ScaleFormat("FFWWWWWNNNNNC", frozenset({"21", "22"})),
            )
        )


def test_nomenclature_allows_one_prefix_in_formats_of_different_lengths() -> None:
    assert len(DEFAULT.formats) == 2  # both use 20-29: 13 and 18 digits never collide


# -- parse_scan -------------------------------------------------------------------------------


def test_13_digit_scale_code_gives_plu_and_amount() -> None:
    assert parse_scan("2001234005999", DEFAULT) == ScaleScan(
        code="2001234005999", plu="1234", amount=Money(599), grams=None
    )


def test_18_digit_scale_code_gives_plu_amount_and_weight() -> None:
    assert parse_scan("210123400599012348", DEFAULT) == ScaleScan(
        code="210123400599012348", plu="1234", amount=Money(599), grams=1234
    )


def test_weight_format_gives_grams_and_no_amount() -> None:
    weight = Nomenclature.from_spec("25-29:FFWWWWWNNNNNC")
    code = weight.formats[0].encode("42", grams=750, prefix="27")
    assert parse_scan(code, weight) == ScaleScan(code=code, plu="42", amount=None, grams=750)


def test_scale_code_with_bad_check_digit_is_refused_not_read_as_gtin() -> None:
    with pytest.raises(InvalidBarcode) as caught:
        parse_scan("2001234005998", DEFAULT)
    assert caught.value.reason == "check digit should be 9"
    assert caught.value.code == "2001234005998"


def test_in_store_prefix_without_a_format_is_a_plain_store_gtin() -> None:
    only_20_24 = Nomenclature.from_spec("20-24:FFWWWWWEEEEEC")
    code = with_check_digit("250000012345")
    assert parse_scan(code, only_20_24) == GtinScan(code)


def test_empty_nomenclature_reads_every_code_as_gtin() -> None:
    assert parse_scan("2001234005999", Nomenclature()) == GtinScan("2001234005999")


def test_manufacturer_ean13_is_a_gtin_scan() -> None:
    scan = parse_scan("6901234567892", DEFAULT)
    assert scan == GtinScan("6901234567892")
    assert scan.code == "6901234567892"


def test_upca_scan_is_normalised_to_ean13() -> None:
    assert parse_scan("036000291452", DEFAULT) == GtinScan("0036000291452")


def test_ean8_with_in_store_prefix_is_a_gtin() -> None:
    code = with_check_digit("2012345")
    assert parse_scan(code, DEFAULT) == GtinScan(code)


def test_upca_variable_measure_code_matches_a_02_format() -> None:
    upc_scale = Nomenclature.from_spec("02:FFWWWWWEEEEEC")
    upca = with_check_digit("21234500599")  # the scanner sends 12 digits, no leading 0
    assert parse_scan(upca, upc_scale) == ScaleScan(
        code="0" + upca, plu="12345", amount=Money(599), grams=None
    )


def test_ignored_x_digit_does_not_change_the_reading() -> None:
    nomenclature = Nomenclature.from_spec("20:FFWWWWWXEEEEC")
    first = with_check_digit("200012330599")
    second = with_check_digit("200012370599")
    assert parse_scan(first, nomenclature) == ScaleScan(first, "123", Money(599), None)
    assert parse_scan(second, nomenclature) == ScaleScan(second, "123", Money(599), None)


def test_18_digit_code_outside_the_formats_is_refused() -> None:
    with pytest.raises(InvalidBarcode, match="must be 8, 12 or 13 digits, got 18"):
        parse_scan(with_check_digit("69012345678901234"), DEFAULT)


@pytest.mark.parametrize("code", ["", "abc", "20012340059 9", "２００１２３４００５９９９"])
def test_parse_scan_refuses_non_digits(code: str) -> None:
    with pytest.raises(InvalidBarcode):
        parse_scan(code, DEFAULT)


def test_parse_scan_ignores_the_scanners_enter() -> None:
    assert parse_scan("6901234567892\r\n", DEFAULT) == GtinScan("6901234567892")


# -- round trips of scale codes ---------------------------------------------------------------


@given(
    fmt=st.sampled_from(DEFAULT.formats),
    prefix=st.sampled_from(sorted(IN_STORE)),
    plu=st.integers(min_value=0, max_value=99_999),
    fen=st.integers(min_value=0, max_value=99_999),
    grams=st.integers(min_value=0, max_value=99_999),
)
def test_default_scale_codes_parse_back_exactly(
    fmt: ScaleFormat, prefix: str, plu: int, fen: int, grams: int
) -> None:
    weighs = fmt.length == 18
    code = fmt.encode(str(plu), amount=Money(fen), grams=grams if weighs else None, prefix=prefix)
    assert parse_scan(code, DEFAULT) == ScaleScan(
        code=code, plu=str(plu), amount=Money(fen), grams=grams if weighs else None
    )


@st.composite
def scale_formats(draw: st.DrawFn) -> ScaleFormat:
    """Any valid pattern: F digits, then W, E, N and X groups in any order and widths, then C."""
    length = draw(st.sampled_from([13, 18]))
    flag_width = draw(st.integers(min_value=1, max_value=3))
    letters = draw(
        st.sampled_from(["WE", "WN", "WEN", "WEX", "WNX", "WENX"]).flatmap(st.permutations)
    )
    free = length - 1 - flag_width - len(letters)  # digits beyond one per group
    cuts = sorted(
        draw(st.lists(st.integers(0, free), min_size=len(letters) - 1, max_size=len(letters) - 1))
    )
    widths = [b - a + 1 for a, b in zip([0, *cuts], [*cuts, free], strict=True)]
    pattern = "F" * flag_width + "".join(c * w for c, w in zip(letters, widths, strict=True)) + "C"
    prefixes = draw(st.frozensets(digit_strings(flag_width), min_size=1, max_size=5))
    return ScaleFormat(pattern, prefixes)


@given(scale_formats(), st.data())
def test_any_valid_format_parses_its_own_codes_back(fmt: ScaleFormat, data: st.DataObject) -> None:
    def value(letter: str) -> int | None:
        width = fmt.pattern.count(letter)
        return data.draw(st.integers(0, 10**width - 1)) if width else None

    plu, fen, grams = value("W"), value("E"), value("N")
    assert plu is not None  # every pattern has W digits
    prefix = data.draw(st.sampled_from(sorted(fmt.prefixes)))
    amount = None if fen is None else Money(fen)
    code = fmt.encode(str(plu), amount=amount, grams=grams, prefix=prefix)
    assert parse_scan(code, Nomenclature((fmt,))) == ScaleScan(code, str(plu), amount, grams)


@given(scale_formats())
def test_any_valid_format_round_trips_through_its_spec(fmt: ScaleFormat) -> None:
    nomenclature = Nomenclature((fmt,))
    assert Nomenclature.from_spec(nomenclature.to_spec()) == nomenclature
