"""The 8-digit LED price display (ESC s lamp + ESC Q A digits): price, total and change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shouyin.devices.display_led import LedDecoder, LedLamp, encode_led, led_digits
from shouyin.devices.display_sim import VirtualDisplay
from shouyin.devices.lane import LaneDevices
from shouyin.domain.money import Money


def test_change_lights_the_change_lamp_and_shows_yuan_with_two_decimals() -> None:
    assert encode_led(LedLamp.CHANGE, Money(1796)) == b"\x1bs4\x1bQA17.96\r"


def test_amount_over_eight_digits_is_refused() -> None:
    assert led_digits(Money(99_999_999)) == "999999.99"
    with pytest.raises(ValueError, match="8-digit"):
        led_digits(Money(100_000_000))


def test_decoder_reads_commands_split_at_every_byte() -> None:
    data = b"\x1b@" + encode_led(LedLamp.TOTAL, Money(8204))
    for cut in range(1, len(data)):
        decoder = LedDecoder()
        decoder.feed(data[:cut])
        decoder.feed(data[cut:])
        assert decoder.lines() == ("总计", "82.04"), cut


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_decoder_never_raises_and_shows_only_digits(data: bytes) -> None:
    decoder = LedDecoder()
    decoder.feed(data)
    assert set(decoder.digits) <= set("0123456789.-")


def test_lane_drives_an_led_display_over_a_serial_line() -> None:
    with VirtualDisplay(protocol="led") as display:
        devices = LaneDevices(display_port=display.path, display_protocol="led")
        try:
            devices.show_item("西红柿", Money(839))
            assert display.wait_for(("单价", "8.39")) == ("单价", "8.39")
            devices.show_total(Money(8204))
            assert display.wait_for(("总计", "82.04")) == ("总计", "82.04")
            devices.show_change(Money(10000), Money(1796))
            assert display.wait_for(("找零", "17.96")) == ("找零", "17.96")
            devices.clear_display()
            assert display.wait_for(("", "")) == ("", "")
        finally:
            devices.close()


@given(st.integers(min_value=-9_999_999, max_value=99_999_999))
def test_led_digits_are_the_amount_in_plain_yuan(fen: int) -> None:
    assert led_digits(Money(fen)) == Money(fen).plain()
