"""Chinese 8-digit LED price displays (数码管客显): the ``ESC s`` / ``ESC Q A`` protocol. Pure.

Most Chinese checkouts have a one-line LED display of digits with four labelled lamps under it
(单价 price, 总计 total, 收款 paid, 找零 change). The protocol these displays share (ESC/POS
compatible, 2400 or 9600 baud 8N1):

=================  ================  ================================================
command            bytes             effect
=================  ================  ================================================
ESC @              1B 40             initialise: blank, all lamps off
CLR                0C                blank the digits
ESC s n            1B 73 n           lamp n: '0' off, '1' 单价, '2' 总计, '3' 收款, '4' 找零
ESC Q A d... CR    1B 51 41 … 0D     show digits ``d`` (0-9, '.', '-'), at most 8 digits
=================  ================  ================================================

The display shows the amount in yuan with two decimals (``12.30``); the decimal point does not
take a digit position.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from shouyin.domain.money import Money

__all__ = ["MAX_DIGITS", "LedDecoder", "LedLamp", "encode_led", "led_digits"]

MAX_DIGITS: Final = 8
_ALLOWED: Final = frozenset(b"0123456789.-")


class LedLamp(StrEnum):
    """The lamp lit under the digits (its ``ESC s`` parameter)."""

    OFF = "0"
    PRICE = "1"  # 单价
    TOTAL = "2"  # 总计
    PAID = "3"  # 收款
    CHANGE = "4"  # 找零

    @property
    def label(self) -> str:
        """The lamp's printed label."""
        return {"0": "", "1": "单价", "2": "总计", "3": "收款", "4": "找零"}[self.value]


def led_digits(amount: Money) -> str:
    """``amount`` as the display shows it: yuan with two decimals, at most 8 digits.

    Raises:
        ValueError: the amount needs more than 8 digits.
    """
    text = amount.plain()
    if sum(ch.isdigit() for ch in text) > MAX_DIGITS:
        raise ValueError(f"{text} does not fit an {MAX_DIGITS}-digit display")
    return text


def encode_led(lamp: LedLamp, amount: Money | None) -> bytes:
    """Bytes that light ``lamp`` and show ``amount`` (``None``: blank digits)."""
    digits = b"\x0c" if amount is None else b"\x1bQA" + led_digits(amount).encode() + b"\r"
    return b"\x1bs" + lamp.value.encode() + digits


class LedDecoder:
    """The LED display's side: bytes in, lamp and digits out (:meth:`lines`)."""

    def __init__(self) -> None:
        self.lamp = LedLamp.OFF
        self.digits = ""
        self._pending = bytearray()

    def lines(self) -> tuple[str, str]:
        """(lamp label, digits), as the customer reads them."""
        return self.lamp.label, self.digits

    def feed(self, data: bytes) -> None:
        """Consume bytes from the serial line (commands may be split across reads)."""
        buf = bytes(self._pending) + data
        self._pending.clear()
        pos = 0
        while pos < len(buf):
            if buf[pos] == 0x0C:
                self.digits, pos = "", pos + 1
            elif buf.startswith(b"\x1b@", pos):
                self.lamp, self.digits, pos = LedLamp.OFF, "", pos + 2
            elif buf.startswith(b"\x1bs", pos):
                if pos + 3 > len(buf):
                    break
                lamp = chr(buf[pos + 2])
                self.lamp = LedLamp(lamp) if lamp in "01234" else self.lamp
                pos += 3
            elif buf.startswith(b"\x1bQA", pos):
                end = buf.find(b"\r", pos + 3, pos + 3 + 2 * MAX_DIGITS + 2)
                if end < 0:
                    if len(buf) - pos > 2 * MAX_DIGITS + 4:  # no CR where one must be: skip
                        pos += 3
                        continue
                    break
                raw = buf[pos + 3 : end]
                self.digits = raw.decode() if set(raw) <= _ALLOWED else self.digits
                pos = end + 1
            elif buf[pos] == 0x1B and len(buf) - pos < 3:  # a command cut by the read
                break
            else:
                pos += 1  # anything else is ignored by these displays
        self._pending += buf[pos:]
