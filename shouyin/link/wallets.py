"""Which wallet a customer's payment code (付款码) belongs to, by configurable rules.

The default rules are the public ones of DESIGN.md section 6, checked in order; lengths vary
between wallets and over time, so they are no stricter than that. Both ends of the link use
them: the cashier system to refuse an unrecognised code before anything is sent, the terminal
to route a scanned code to its wallet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from shouyin.link.values import Wallet

__all__ = ["DEFAULT_WALLET_RULES", "WalletRule", "recognise_wallet"]


@dataclass(frozen=True, slots=True)
class WalletRule:
    """A code that fully matches ``pattern`` belongs to ``wallet``.

    Raises:
        ValueError: from the constructor, for a pattern that is not a valid regular expression.
    """

    wallet: Wallet
    pattern: str
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = re.compile(self.pattern)
        except re.error as error:
            raise ValueError(f"wallet rule for {self.wallet}: bad pattern ({error})") from None
        object.__setattr__(self, "_compiled", compiled)

    def matches(self, code: str) -> bool:
        """Whether ``code`` matches this rule (a full match)."""
        return self._compiled.fullmatch(code) is not None


DEFAULT_WALLET_RULES: Final[tuple[WalletRule, ...]] = (
    WalletRule(Wallet.WECHAT, r"1[0-5]\d{16}"),  # 18 digits, 10-15
    WalletRule(Wallet.ALIPAY, r"2[5-9]\d{14,22}"),  # 16-24 digits, 25-29; Huabei too
    WalletRule(Wallet.ALIPAY, r"30\d{14,22}"),  # 16-24 digits, 30
    WalletRule(Wallet.UNIONPAY, r"62\d{17}"),  # 19 digits: 云闪付, and some JD codes
)
"""DESIGN.md section 6, in the order they are checked."""


def recognise_wallet(
    code: str, rules: Sequence[WalletRule] = DEFAULT_WALLET_RULES
) -> Wallet | None:
    """The wallet of the first rule ``code`` matches, or ``None`` when none does."""
    return next((rule.wallet for rule in rules if rule.matches(code)), None)
