"""Promotions and manual discounts: plain, immutable descriptions that the pricing engine applies.

Three kinds of automatic price reduction exist in a Chinese supermarket, and this module names them:

* **member price** (会员价): not a class here; it is :attr:`Product.member_price`, used whenever the
  sale has a member;
* :class:`MultiBuy` (第二件半价, 买三付二): in every group of ``every`` units of the *same SKU*,
  ``discounted_units`` of them are ``off_bp`` basis points off;
* :class:`Threshold` (满减, 每满100减20): once the eligible subtotal reaches ``threshold``, take
  ``off`` off (once, or once per full threshold when ``repeat``), spread over the eligible lines.

Manual discounts (:class:`ManualDiscount`) are typed in by staff, on one line or on the whole order,
as an amount or a percentage, always with a reason for the audit trail.

Everything here is data: the order and arithmetic of application live in :mod:`pricing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from shouyin.domain.errors import PromotionError
from shouyin.domain.money import BASIS_POINTS, Money

__all__ = [
    "DiscountKind",
    "ManualDiscount",
    "MultiBuy",
    "Promotion",
    "Scope",
    "Threshold",
    "promotion_from_dict",
    "promotion_to_dict",
]


@dataclass(frozen=True, slots=True)
class Scope:
    """Which lines a promotion looks at: named SKUs and/or categories; empty means everything.

    Attributes:
        skus: SKUs covered.
        categories: category names covered (:attr:`Product.category`).
    """

    skus: frozenset[str] = field(default_factory=frozenset)
    categories: frozenset[str] = field(default_factory=frozenset)

    @property
    def everything(self) -> bool:
        """True when the scope names nothing and so covers every line."""
        return not self.skus and not self.categories

    def covers(self, sku: str, category: str) -> bool:
        """Return whether a line with this SKU and category is in scope."""
        return self.everything or sku in self.skus or category in self.categories


@dataclass(frozen=True, slots=True)
class MultiBuy:
    """Every ``every`` units of one SKU, ``discounted_units`` units are ``off_bp`` off.

    Units of *the same SKU* are counted together, even across several lines; two different SKUs in
    scope never make a group together. When a group's units have different prices (a price
    override), the cheapest units are the discounted ones, which is what shoppers expect.

    Examples:
        ``MultiBuy("第二件半价", every=2, off_bp=5000)``;
        ``MultiBuy.buy_n_pay_m("买三付二", 3, 2)``.

    Attributes:
        name: shown on screen and receipt.
        every: size of a group, at least 2.
        off_bp: reduction of each discounted unit, in basis points (10000 = free).
        discounted_units: discounted units per group, fewer than ``every``.
        scope: which SKUs take part.
    """

    name: str
    every: int
    off_bp: int
    discounted_units: int = 1
    scope: Scope = field(default_factory=Scope)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise PromotionError("a promotion needs a name")
        if self.every < 2:
            raise PromotionError(f"{self.name}: a multi-buy group needs at least 2 units")
        if not 1 <= self.discounted_units < self.every:
            raise PromotionError(f"{self.name}: discounted units must be 1..{self.every - 1}")
        if not 1 <= self.off_bp <= BASIS_POINTS:
            raise PromotionError(f"{self.name}: reduction must be 1..10000 bp, got {self.off_bp}")

    @classmethod
    def buy_n_pay_m(cls, name: str, n: int, m: int, scope: Scope | None = None) -> MultiBuy:
        """Build "buy ``n``, pay ``m``": ``n - m`` units of every ``n`` are free.

        Raises:
            PromotionError: unless ``0 < m < n``.
        """
        if not 0 < m < n:
            raise PromotionError(f"{name}: buy {n} pay {m} makes no sense")
        return cls(
            name, every=n, off_bp=BASIS_POINTS, discounted_units=n - m, scope=scope or Scope()
        )


@dataclass(frozen=True, slots=True)
class Threshold:
    """满减: when the eligible subtotal reaches ``threshold``, take ``off`` off.

    The eligible subtotal is the sum of the in-scope lines' nets after member price, multi-buy and
    line discounts. With ``repeat`` the reduction is taken once per full threshold (每满100减20:
    250 yuan gives 40 off), at most ``max_times`` times when that is set.

    Attributes:
        name: shown on screen and receipt.
        threshold: the amount to reach, positive.
        off: the reduction, positive and not more than ``threshold``.
        repeat: once per full threshold rather than once.
        max_times: cap on repetitions (封顶), ``None`` for no cap.
        scope: which lines count and share the reduction.
    """

    name: str
    threshold: Money
    off: Money
    repeat: bool = False
    max_times: int | None = None
    scope: Scope = field(default_factory=Scope)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise PromotionError("a promotion needs a name")
        if self.threshold.fen <= 0 or self.off.fen <= 0:
            raise PromotionError(f"{self.name}: threshold and reduction must be positive")
        if self.off > self.threshold:
            raise PromotionError(f"{self.name}: the reduction exceeds the threshold")
        if self.max_times is not None and self.max_times < 1:
            raise PromotionError(f"{self.name}: max_times must be at least 1")

    def reduction(self, eligible: Money) -> Money:
        """Return the reduction earned by an eligible subtotal (zero below the threshold)."""
        times = eligible.fen // self.threshold.fen
        if not self.repeat:
            times = min(times, 1)
        if self.max_times is not None:
            times = min(times, self.max_times)
        return self.off * times


Promotion = MultiBuy | Threshold


class DiscountKind(StrEnum):
    """A manual discount is an amount in fen or a percentage in basis points."""

    AMOUNT = "amount"
    PERCENT = "percent"


@dataclass(frozen=True, slots=True)
class ManualDiscount:
    """A discount typed in by staff on one line or on the order, with a reason for the audit trail.

    Attributes:
        kind: amount or percentage.
        value: fen for :attr:`DiscountKind.AMOUNT`, basis points (1..10000) for ``PERCENT``.
        reason: why (damaged packaging, price match, ...); never empty.
    """

    kind: DiscountKind
    value: int
    reason: str

    def __post_init__(self) -> None:
        if type(self.value) is not int or self.value <= 0:
            raise PromotionError(f"a manual discount must be positive, got {self.value!r}")
        if self.kind is DiscountKind.PERCENT and self.value > BASIS_POINTS:
            raise PromotionError(f"a percentage discount is at most 10000 bp, got {self.value}")
        if not self.reason.strip():
            raise PromotionError("a manual discount needs a reason")

    @classmethod
    def amount_off(cls, amount: Money, reason: str) -> ManualDiscount:
        """Build a discount of a fixed ``amount``."""
        return cls(DiscountKind.AMOUNT, amount.fen, reason)

    @classmethod
    def percent_off(cls, basis_points: int, reason: str) -> ManualDiscount:
        """Build a discount of ``basis_points``/10000 of what it applies to (1000 = 10% off)."""
        return cls(DiscountKind.PERCENT, basis_points, reason)

    def requested(self, base: Money) -> Money:
        """Return the discount this asks for on ``base``, before any cap."""
        if self.kind is DiscountKind.AMOUNT:
            return Money(self.value)
        return base.percent(self.value)

    def apply_to(self, base: Money) -> Money:
        """Return the discount on ``base``, capped so that it never exceeds ``base``."""
        return min(self.requested(base), max(base, Money.zero()))


# -- plain-data form, for storage (JSON columns) and configuration files -------------------------
def _scope_to_dict(scope: Scope) -> dict[str, list[str]]:
    return {"skus": sorted(scope.skus), "categories": sorted(scope.categories)}


def _scope_from(data: object) -> Scope:
    if data is None:
        return Scope()
    if not isinstance(data, Mapping):
        raise PromotionError(f"a scope must be a mapping, got {data!r}")
    return Scope(
        skus=frozenset(str(s) for s in data.get("skus", ())),
        categories=frozenset(str(c) for c in data.get("categories", ())),
    )


def _int(data: Mapping[str, object], key: str) -> int:
    value = data.get(key)
    if type(value) is not int:
        raise PromotionError(f"promotion field {key!r} must be an integer, got {value!r}")
    return value


def promotion_to_dict(promotion: Promotion) -> dict[str, object]:
    """Return a promotion as JSON-ready plain data (money in fen), with a ``type`` key.

    The inverse of :func:`promotion_from_dict`.
    """
    if isinstance(promotion, MultiBuy):
        return {
            "type": "multi_buy",
            "name": promotion.name,
            "every": promotion.every,
            "off_bp": promotion.off_bp,
            "discounted_units": promotion.discounted_units,
            "scope": _scope_to_dict(promotion.scope),
        }
    return {
        "type": "threshold",
        "name": promotion.name,
        "threshold_fen": promotion.threshold.fen,
        "off_fen": promotion.off.fen,
        "repeat": promotion.repeat,
        "max_times": promotion.max_times,
        "scope": _scope_to_dict(promotion.scope),
    }


def promotion_from_dict(data: Mapping[str, object]) -> Promotion:
    """Build a promotion from the plain data made by :func:`promotion_to_dict`.

    Raises:
        PromotionError: for an unknown ``type``, a missing or mistyped field, or a rule broken.
    """
    kind, name = data.get("type"), str(data.get("name", ""))
    if kind == "multi_buy":
        return MultiBuy(
            name=name,
            every=_int(data, "every"),
            off_bp=_int(data, "off_bp"),
            discounted_units=_int(data, "discounted_units"),
            scope=_scope_from(data.get("scope")),
        )
    if kind == "threshold":
        max_times = data.get("max_times")
        if max_times is not None and type(max_times) is not int:
            raise PromotionError(f"max_times must be an integer or null, got {max_times!r}")
        return Threshold(
            name=name,
            threshold=Money(_int(data, "threshold_fen")),
            off=Money(_int(data, "off_fen")),
            repeat=bool(data.get("repeat", False)),
            max_times=max_times,
            scope=_scope_from(data.get("scope")),
        )
    raise PromotionError(f"unknown promotion type {kind!r}")
