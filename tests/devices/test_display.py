"""Customer display (客显): what the customer sees for an item, the total and the change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shouyin.devices.display import (
    COLUMNS,
    DisplayDecoder,
    change_screen,
    encode_screen,
    init_bytes,
    item_screen,
    total_screen,
)
from shouyin.devices.display_sim import VirtualDisplay
from shouyin.devices.errors import DisplayError
from shouyin.devices.lane import LaneDevices
from shouyin.devices.receipt import display_width
from shouyin.domain.money import Money


@pytest.fixture
def display() -> Iterator[VirtualDisplay]:
    with VirtualDisplay() as sim:
        yield sim


def test_item_screen_shows_name_then_unit_price_flush_right() -> None:
    assert item_screen("可口可乐 330ml", Money(250)) == (
        "可口可乐 330ml",
        "单价" + " " * 10 + "￥2.50",
    )


def test_long_names_are_cut_to_twenty_columns_without_splitting_a_hanzi() -> None:
    name, _ = item_screen("金龙鱼 黄金比例食用植物调和油 5L", Money(6990))
    assert name == "金龙鱼 黄金比例食用"
    assert display_width(name) <= COLUMNS


def test_change_screen_shows_paid_and_change() -> None:
    paid, change = change_screen(Money(10000), Money(1796))
    assert paid.startswith("收款") and paid.endswith("￥100.00")
    assert change.startswith("找零") and change.endswith("￥17.96")
    assert display_width(paid) == display_width(change) == COLUMNS


def test_decoder_follows_clear_and_cursor_moves() -> None:
    decoder = DisplayDecoder()
    decoder.feed(init_bytes() + encode_screen(("first", "second")))
    decoder.feed(b"\x1f$\x03\x01XY")  # column 3, row 1
    assert decoder.lines() == ("fiXYt", "second")
    decoder.feed(b"\x0c")
    assert decoder.lines() == ("", "")


def test_decoder_reassembles_a_hanzi_split_across_reads() -> None:
    data = encode_screen(("合计", ""))
    decoder = DisplayDecoder()
    for byte in data:
        decoder.feed(bytes([byte]))
    assert decoder.lines() == ("合计", "")


def test_lane_shows_item_total_and_change_over_a_serial_line(display: VirtualDisplay) -> None:
    devices = LaneDevices(display_port=display.path)
    try:
        devices.show_item("西红柿", Money(839))
        assert display.wait_for(item_screen("西红柿", Money(839))) == (
            "西红柿",
            "单价" + " " * 10 + "￥8.39",
        )
        devices.show_total(Money(8204))
        assert display.wait_for(total_screen(Money(8204)))[1].endswith("￥82.04")
        devices.show_change(Money(10000), Money(1796))
        assert display.wait_for(change_screen(Money(10000), Money(1796)))[1].endswith("￥17.96")
        devices.clear_display()
        assert display.wait_for(("", "")) == ("", "")
    finally:
        devices.close()


def test_missing_display_port_raises_a_typed_error() -> None:
    devices = LaneDevices(display_port="/dev/shouyin-no-such-display")
    with pytest.raises(DisplayError) as raised:
        devices.show_total(Money(100))
    assert "客显" in raised.value.user_message()


def test_lane_without_a_display_ignores_display_calls() -> None:
    LaneDevices().show_total(Money(100))  # nothing to show it on: not an error


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_never_raises_and_never_grows_past_two_rows(data: bytes) -> None:
    decoder = DisplayDecoder()
    decoder.feed(data)
    first, second = decoder.lines()
    assert display_width(first) <= COLUMNS
    assert display_width(second) <= COLUMNS


def test_overwriting_half_a_hanzi_blanks_its_other_half() -> None:
    decoder = DisplayDecoder()
    decoder.feed(encode_screen(("合计", "")) + b"\x1f$\x02\x01x")
    assert decoder.lines() == (" x计", "")


def test_ascii_display_gets_english_labels_and_no_yuan_sign() -> None:
    assert item_screen("Cola 330ml", Money(250), encoding="ascii") == (
        "Cola 330ml",
        "PRICE" + " " * 11 + "2.50",
    )
    assert total_screen(Money(8204), encoding="ascii") == ("TOTAL" + " " * 15, " " * 15 + "82.04")
    assert change_screen(Money(10000), Money(1796), encoding="ascii") == (
        "PAID" + " " * 10 + "100.00",
        "CHANGE" + " " * 9 + "17.96",
    )


def test_lane_shows_an_ascii_display_without_question_marks() -> None:
    item = ("Cola", "PRICE" + " " * 8 + "2.50 x3")
    change = ("PAID" + " " * 10 + "100.00", "CHANGE" + " " * 9 + "17.96")
    with VirtualDisplay(encoding="ascii") as sim:
        devices = LaneDevices(display_port=sim.path, display_encoding="ascii")
        try:
            devices.show_item("Cola", Money(250), 3)
            assert sim.wait_for(item) == item
            devices.show_change(Money(10000), Money(1796))
            assert sim.wait_for(change) == change
        finally:
            devices.close()


def test_a_hanzi_name_on_an_ascii_display_takes_one_cell_per_character() -> None:
    # The display shows "?" for each Hanzi it lacks: one cell each, so the line still fits.
    name, _ = item_screen("可口可乐" * 6, Money(250), encoding="ascii")
    decoder = DisplayDecoder("ascii")
    decoder.feed(encode_screen((name, ""), "ascii"))
    assert decoder.lines() == ("?" * COLUMNS, "")
