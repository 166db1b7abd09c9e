"""Money as integer fen (分), with exact arithmetic and explicit rounding.

There is no float anywhere in money. Amounts are :class:`Money` values holding an ``int`` of fen;
multiplying by a fractional quantity (grams of produce, a percentage) always goes through
:func:`round_half_up` on an exact integer ratio, so the same inputs give the same fen on every
machine. Rounding rule: half up (away from zero for positive amounts), to the fen, which is how
Chinese retail prices weighed goods and percentage discounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from shouyin.domain.errors import InvalidAmount

FEN_PER_YUAN: Final = 100
GRAMS_PER_KG: Final = 1000
BASIS_POINTS: Final = 10_000  # 100% expressed in basis points (1 bp = 0.01%)

_YUAN_TEXT = re.compile(r"^(?P<sign>-?)(?P<yuan>\d+)(?:\.(?P<frac>\d{1,2}))?$", re.ASCII)


def round_half_up(numerator: int, denominator: int) -> int:
    """Divide two integers and round half away from zero.

    Args:
        numerator: the exact dividend.
        denominator: a positive divisor.

    Returns:
        ``numerator / denominator`` rounded to the nearest integer, halves away from zero.

    Raises:
        InvalidAmount: if ``denominator`` is not positive.
    """
    if denominator <= 0:
        raise InvalidAmount(f"rounding denominator must be positive, got {denominator}")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount in fen. Immutable, hashable, ordered; arithmetic only with other ``Money``.

    ``Money(1230)`` is twelve yuan thirty. Use :meth:`parse` for text such as ``"12.30"``.
    """

    fen: int

    def __post_init__(self) -> None:
        # bool is an int subclass; True fen is always a bug.
        if type(self.fen) is not int:
            raise InvalidAmount(f"money must be an int of fen, got {type(self.fen).__name__}")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def zero(cls) -> Money:
        """Return nothing, in fen."""
        return cls(0)

    @classmethod
    def yuan(cls, yuan: int, fen: int = 0) -> Money:
        """Build an amount from whole yuan plus fen: ``Money.yuan(12, 30)``."""
        return cls(yuan * FEN_PER_YUAN + fen)

    @classmethod
    def parse(cls, text: str) -> Money:
        """Parse a decimal yuan string such as ``"12.3"``, ``"12.30"``, ``"-0.05"`` or ``"¥8"``.

        Raises:
            InvalidAmount: for anything that is not a plain decimal with at most two decimals.
        """
        cleaned = text.strip().replace(",", "")
        # format() writes the sign before the symbol ("-¥12.30"): keep it, drop the symbol.
        sign = "-" if cleaned.startswith("-") else ""
        cleaned = sign + cleaned.removeprefix("-").lstrip("¥￥").strip()
        match = _YUAN_TEXT.match(cleaned)
        if match is None:
            raise InvalidAmount(f"not an amount in yuan: {text!r}")
        frac = (match["frac"] or "").ljust(2, "0")
        fen = int(match["yuan"]) * FEN_PER_YUAN + int(frac)
        return cls(-fen if match["sign"] else fen)

    # -- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.fen + other.fen)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.fen - other.fen)

    def __neg__(self) -> Money:
        return Money(-self.fen)

    def __mul__(self, count: int) -> Money:
        if type(count) is not int:
            return NotImplemented
        return Money(self.fen * count)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return self.fen != 0

    def times_grams(self, grams: int) -> Money:
        """Price ``grams`` of goods sold at ``self`` per kilogram, rounded half up to the fen."""
        return Money(round_half_up(self.fen * grams, GRAMS_PER_KG))

    def percent(self, basis_points: int) -> Money:
        """Return ``basis_points``/10000 of this amount, rounded half up (5000 bp = 50%)."""
        return Money(round_half_up(self.fen * basis_points, BASIS_POINTS))

    def allocate(self, weights: list[int]) -> list[Money]:
        """Split this amount in proportion to non-negative integer ``weights``, exactly.

        Largest-remainder method: the parts always sum to ``self``; ties go to earlier weights.
        Used to spread an order discount over lines so returns and category totals stay exact.

        Raises:
            InvalidAmount: if weights are empty, negative, or all zero while the amount is not.
        """
        if not weights or any(w < 0 for w in weights):
            raise InvalidAmount(f"allocation weights must be non-negative and non-empty: {weights}")
        total = sum(weights)
        if total == 0:
            if self.fen != 0:
                raise InvalidAmount("cannot allocate a non-zero amount over zero weights")
            return [Money(0) for _ in weights]
        sign = -1 if self.fen < 0 else 1
        amount = abs(self.fen)
        floors = [amount * w // total for w in weights]
        remainders = [amount * w % total for w in weights]
        short = amount - sum(floors)
        order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
        for i in order[:short]:
            floors[i] += 1
        return [Money(sign * f) for f in floors]

    # -- presentation -------------------------------------------------------------------------
    def format(self, symbol: str = "¥") -> str:
        """Format as ``¥12.30`` (receipts pass ``symbol="￥"``, the full-width sign)."""
        sign = "-" if self.fen < 0 else ""
        yuan, fen = divmod(abs(self.fen), FEN_PER_YUAN)
        return f"{sign}{symbol}{yuan}.{fen:02d}"

    def plain(self) -> str:
        """Format without a currency sign: ``12.30``; the inverse of :meth:`parse`."""
        return self.format(symbol="")

    def __str__(self) -> str:
        return self.format()


def total(amounts: list[Money] | tuple[Money, ...]) -> Money:
    """Sum amounts exactly (``sum()`` would need an int start value)."""
    return Money(sum(m.fen for m in amounts))
