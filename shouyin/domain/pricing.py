"""The pricing engine: from lines, promotions and manual discounts to exact per-line nets.

:func:`price` is a pure, deterministic function. It applies reductions in this fixed order, each
step working on the nets the previous step left:

1. **member price** (会员价) — when the sale has a member, a line priced per piece or per kg uses
   the product's ``member_price`` if that is lower. Price-embedded scale lines (the amount is
   printed in the barcode) keep their printed amount.
2. **multi-buy** (第二件半价, 买三付二) — per SKU, units of every line of that SKU are counted
   together (per-piece lines only; weighed goods are not counted in units). When several
   multi-buys cover a SKU they do not stack: the one giving the customer most wins, ties going to
   the earliest in the promotion list. The cheapest units are the discounted ones; each discounted
   unit is reduced by ``unit price × off_bp`` rounded half up to the fen.
3. **line manual discounts** — on the line's net so far, capped at that net.
4. **thresholds** (满减) — in promotion-list order, each on the nets left by the previous one; the
   reduction is capped at the eligible subtotal and spread over the eligible lines in proportion to
   their nets with :meth:`Money.allocate`.
5. **order manual discount** — on the total so far, capped at it, allocated like a threshold.

Because order-level reductions are allocated back to lines, every :class:`PricedLine` knows its
exact ``net``; the nets sum to the total to the fen, which returns (refund a line's net) and
category reports rely on. No step can push a net below zero: each reduction is capped at what it
reduces, and a largest-remainder allocation of ``d <= sum(w)`` never gives a part above its weight.

Prices are VAT-inclusive (as everywhere in Chinese retail); :func:`tax_included` extracts the tax.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from shouyin.domain.errors import InvalidAmount
from shouyin.domain.money import BASIS_POINTS, Money, round_half_up, total
from shouyin.domain.promotions import ManualDiscount, MultiBuy, Promotion, Threshold

__all__ = [
    "AdjustmentKind",
    "AppliedPromotion",
    "LineAdjustment",
    "PricedLine",
    "PricedSale",
    "PricingLine",
    "price",
    "tax_included",
]


def tax_included(gross: Money, rate_bp: int) -> Money:
    """Return the VAT contained in a VAT-inclusive amount, rounded half up to the fen.

    ``tax = gross × rate / (1 + rate)``, i.e. ``round_half_up(fen × bp / (10000 + bp))``.

    Args:
        gross: the VAT-inclusive amount (may be negative for refunds).
        rate_bp: the VAT rate in basis points (1300 = 13%).

    Returns:
        The tax part of ``gross``.
    """
    return Money(round_half_up(gross.fen * rate_bp, BASIS_POINTS + rate_bp))


class AdjustmentKind(StrEnum):
    """What reduced a line; also the order in which reductions are applied."""

    MEMBER_PRICE = "member_price"
    MULTI_BUY = "multi_buy"
    LINE_DISCOUNT = "line_discount"
    THRESHOLD = "threshold"
    ORDER_DISCOUNT = "order_discount"


MEMBER_PRICE_NAME = "会员价"


@dataclass(frozen=True, slots=True)
class PricingLine:
    """One active line as the pricing engine sees it.

    Exactly one of three pricing modes applies: ``fixed_amount`` (an amount printed in a scale
    barcode), ``grams`` (weighed: ``unit_price`` is per kg) or per piece (``unit_price × qty``).

    Attributes:
        line_no: the line's number in its sale, unique there.
        sku: product SKU (multi-buy groups by it).
        category: product category (promotion scopes, reports).
        tax_rate_bp: VAT rate of the product.
        unit_price: list price per piece, or per kg for weighed goods.
        quantity: pieces; 1 for weighed and price-embedded lines.
        grams: net weight for weighed goods, else ``None``.
        fixed_amount: amount printed in a price-embedded scale barcode, else ``None``.
        member_price: member price per piece or per kg, if any.
        discount: manual discount on this line, if any.
    """

    line_no: int
    sku: str
    category: str
    tax_rate_bp: int
    unit_price: Money
    quantity: int = 1
    grams: int | None = None
    fixed_amount: Money | None = None
    member_price: Money | None = None
    discount: ManualDiscount | None = None

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise InvalidAmount(f"line {self.line_no}: quantity must be at least 1")
        if self.grams is not None and self.grams < 1:
            raise InvalidAmount(f"line {self.line_no}: weight must be at least 1 g")
        if self.unit_price.fen < 0 or (self.fixed_amount is not None and self.fixed_amount.fen < 0):
            raise InvalidAmount(f"line {self.line_no}: price must not be negative")

    @property
    def per_piece(self) -> bool:
        """True for lines counted in pieces (the only ones multi-buy counts)."""
        return self.fixed_amount is None and self.grams is None

    def amount_at(self, unit_price: Money) -> Money:
        """Return the line amount at ``unit_price`` (per piece or per kg)."""
        if self.fixed_amount is not None:
            return self.fixed_amount
        if self.grams is not None:
            return unit_price.times_grams(self.grams)
        return unit_price * self.quantity

    @property
    def gross(self) -> Money:
        """The line at list price, before any reduction."""
        return self.amount_at(self.unit_price)

    def effective_unit_price(self, member: bool) -> Money:
        """The unit price after member pricing (the lower of list and member price)."""
        if member and self.member_price is not None and self.fixed_amount is None:
            return min(self.unit_price, self.member_price)
        return self.unit_price


@dataclass(frozen=True, slots=True)
class LineAdjustment:
    """One reduction of one line: its kind, the promotion or discount name, and the amount."""

    kind: AdjustmentKind
    name: str
    amount: Money


@dataclass(frozen=True, slots=True)
class PricedLine:
    """A line after pricing.

    Attributes:
        line_no, sku, category, tax_rate_bp, quantity, grams: copied from the input line.
        gross: the line at list price.
        adjustments: every reduction, in application order.
        net: what the customer pays for this line: ``gross - discount``, never negative.
    """

    line_no: int
    sku: str
    category: str
    tax_rate_bp: int
    quantity: int
    grams: int | None
    gross: Money
    adjustments: tuple[LineAdjustment, ...]
    net: Money

    @property
    def discount(self) -> Money:
        """The sum of all reductions on this line."""
        return total([a.amount for a in self.adjustments])

    @property
    def tax(self) -> Money:
        """VAT contained in the line's net."""
        return tax_included(self.net, self.tax_rate_bp)


@dataclass(frozen=True, slots=True)
class AppliedPromotion:
    """A reduction as shown to the cashier and printed on the receipt.

    Attributes:
        kind: what kind of reduction.
        name: the promotion's name, or the manual discount's reason.
        amount: the total reduction it gave.
        line_nos: the lines it reduced.
    """

    kind: AdjustmentKind
    name: str
    amount: Money
    line_nos: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PricedSale:
    """The outcome of :func:`price`.

    Attributes:
        lines: priced lines in input order.
        applied: every reduction that gave something, in application order.
        subtotal: sum of the lines' gross amounts.
        discount_total: sum of every reduction.
        total: what is due: ``subtotal - discount_total`` == sum of the lines' nets.
        tax_by_rate: VAT contained in the total, per rate (bp), computed on each rate's net sum.
    """

    lines: tuple[PricedLine, ...]
    applied: tuple[AppliedPromotion, ...]
    subtotal: Money
    discount_total: Money
    total: Money
    tax_by_rate: tuple[tuple[int, Money], ...] = field(default=())

    def line(self, line_no: int) -> PricedLine:
        """Return the priced line numbered ``line_no``.

        Raises:
            KeyError: if there is no such line.
        """
        for line in self.lines:
            if line.line_no == line_no:
                return line
        raise KeyError(line_no)


class _Ledger:
    """Mutable working state of one pricing run: each line's net and its adjustments."""

    def __init__(self, lines: Sequence[PricingLine]) -> None:
        self.lines = list(lines)
        self.net: dict[int, Money] = {line.line_no: line.gross for line in lines}
        self.adjustments: dict[int, list[LineAdjustment]] = {line.line_no: [] for line in lines}
        self.applied: list[AppliedPromotion] = []

    def reduce(self, kind: AdjustmentKind, name: str, amounts: dict[int, Money]) -> None:
        """Take ``amounts`` off their lines and report them as one applied promotion."""
        amounts = {no: amount for no, amount in amounts.items() if amount.fen > 0}
        if not amounts:
            return
        for line_no, amount in amounts.items():
            self.net[line_no] -= amount
            self.adjustments[line_no].append(LineAdjustment(kind, name, amount))
        line_nos = tuple(sorted(amounts))
        self.applied.append(AppliedPromotion(kind, name, total(list(amounts.values())), line_nos))

    def spread(self, kind: AdjustmentKind, name: str, amount: Money, line_nos: list[int]) -> None:
        """Allocate ``amount`` (at most the lines' net sum) over ``line_nos`` by their nets."""
        if amount.fen <= 0 or not line_nos:
            return
        parts = amount.allocate([self.net[no].fen for no in line_nos])
        self.reduce(kind, name, dict(zip(line_nos, parts, strict=True)))


def price(
    lines: Sequence[PricingLine],
    promotions: Iterable[Promotion] = (),
    member: bool = False,
    order_discount: ManualDiscount | None = None,
) -> PricedSale:
    """Price a sale: member price, multi-buy, line discounts, thresholds, order discount.

    Args:
        lines: the active lines (voided lines are left out by the caller); line numbers unique.
        promotions: the promotions in force; their order decides threshold stacking and ties.
        member: whether the sale has a member (enables member prices).
        order_discount: manual discount on the whole order, if any.

    Returns:
        The priced sale; per-line nets sum exactly to its total.

    Raises:
        InvalidAmount: if two lines share a line number.
    """
    if len({line.line_no for line in lines}) != len(lines):
        raise InvalidAmount("line numbers must be unique")
    promotions = tuple(promotions)
    ledger = _Ledger(lines)

    _apply_member_prices(ledger, member)
    _apply_multi_buys(ledger, [p for p in promotions if isinstance(p, MultiBuy)], member)
    for line in lines:
        if line.discount is not None:
            amount = line.discount.apply_to(ledger.net[line.line_no])
            ledger.reduce(
                AdjustmentKind.LINE_DISCOUNT, line.discount.reason, {line.line_no: amount}
            )
    for promo in promotions:
        if isinstance(promo, Threshold):
            _apply_threshold(ledger, promo)
    if order_discount is not None:
        line_nos = [line.line_no for line in lines]
        amount = order_discount.apply_to(total([ledger.net[no] for no in line_nos]))
        ledger.spread(AdjustmentKind.ORDER_DISCOUNT, order_discount.reason, amount, line_nos)

    return _result(ledger)


def _apply_member_prices(ledger: _Ledger, member: bool) -> None:
    if not member:
        return
    amounts = {
        line.line_no: line.gross - line.amount_at(line.effective_unit_price(member))
        for line in ledger.lines
    }
    ledger.reduce(AdjustmentKind.MEMBER_PRICE, MEMBER_PRICE_NAME, amounts)


def _multi_buy_amounts(promo: MultiBuy, group: list[PricingLine], member: bool) -> dict[int, Money]:
    """Reductions per line that ``promo`` gives one SKU's per-piece lines."""
    units = sum(line.quantity for line in group)
    left = units // promo.every * promo.discounted_units
    amounts: dict[int, Money] = {}

    # Cheapest units first; ties are broken by the line's content, not its number, so that the
    # total does not depend on scan order (a manual discount's rounding depends on which line
    # got the multi-buy). Lines tied on all of these are interchangeable.
    def key(line: PricingLine) -> tuple[int, int, str, int, int]:
        discount = line.discount
        kind, value = (discount.kind.value, discount.value) if discount else ("", 0)
        return (line.effective_unit_price(member).fen, line.quantity, kind, value, line.line_no)

    for line in sorted(group, key=key):
        if left == 0:
            break
        taken = min(left, line.quantity)
        left -= taken
        amounts[line.line_no] = line.effective_unit_price(member).percent(promo.off_bp) * taken
    return amounts


def _apply_multi_buys(ledger: _Ledger, multi_buys: list[MultiBuy], member: bool) -> None:
    groups: dict[str, list[PricingLine]] = defaultdict(list)
    for line in ledger.lines:
        if line.per_piece:
            groups[line.sku].append(line)
    # Per SKU, the best multi-buy wins; a promotion's wins over all SKUs are then reported once.
    won: dict[int, dict[int, Money]] = defaultdict(dict)
    for group in groups.values():
        best: tuple[int, dict[int, Money]] | None = None
        for index, promo in enumerate(multi_buys):
            covered = [ln for ln in group if promo.scope.covers(ln.sku, ln.category)]
            if not covered:
                continue
            amounts = _multi_buy_amounts(promo, covered, member)
            if best is None or total(list(amounts.values())) > total(list(best[1].values())):
                best = (index, amounts)
        if best is not None:
            won[best[0]].update(best[1])
    for index, promo in enumerate(multi_buys):
        ledger.reduce(AdjustmentKind.MULTI_BUY, promo.name, won.get(index, {}))


def _apply_threshold(ledger: _Ledger, promo: Threshold) -> None:
    line_nos = [
        line.line_no
        for line in ledger.lines
        if promo.scope.covers(line.sku, line.category) and ledger.net[line.line_no].fen > 0
    ]
    eligible = total([ledger.net[no] for no in line_nos])
    amount = min(promo.reduction(eligible), eligible)
    ledger.spread(AdjustmentKind.THRESHOLD, promo.name, amount, line_nos)


def _result(ledger: _Ledger) -> PricedSale:
    priced = tuple(
        PricedLine(
            line_no=line.line_no,
            sku=line.sku,
            category=line.category,
            tax_rate_bp=line.tax_rate_bp,
            quantity=line.quantity,
            grams=line.grams,
            gross=line.gross,
            adjustments=tuple(ledger.adjustments[line.line_no]),
            net=ledger.net[line.line_no],
        )
        for line in ledger.lines
    )
    net_by_rate: dict[int, Money] = defaultdict(Money.zero)
    for line in priced:
        net_by_rate[line.tax_rate_bp] += line.net
    subtotal = total([line.gross for line in priced])
    grand_total = total([line.net for line in priced])
    return PricedSale(
        lines=priced,
        applied=tuple(ledger.applied),
        subtotal=subtotal,
        discount_total=subtotal - grand_total,
        total=grand_total,
        tax_by_rate=tuple(
            (rate, tax_included(net, rate)) for rate, net in sorted(net_by_rate.items())
        ),
    )
