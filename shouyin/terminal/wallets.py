"""Which wallet a customer's payment code (付款码) belongs to, by configurable rules.

The default rules are the public ones of DESIGN.md section 6, checked in order; lengths vary
between wallets and over time, so they are no stricter than that. Anything else is refused as
an unrecognised payment code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shouyin.link.values import Wallet

__all__ = ["DEFAULT_WALLET_RULES", "WalletRule", "recognise_wallet"]


@dataclass(frozen=True, slots=True)
class WalletRule:
    """A code matching ``pattern`` (full match) belongs to ``wallet``."""

    wallet: Wallet
    pattern: str

    def matches(self, code: str) -> bool:
        """Whether ``code`` matches this rule."""
        return re.fullmatch(self.pattern, code) is not None


DEFAULT_WALLET_RULES: tuple[WalletRule, ...] = (
    WalletRule(Wallet.WECHAT, r"1[0-5]\d{16}"),
    WalletRule(Wallet.ALIPAY, r"2[5-9]\d{14,22}"),  # Huabei uses the same codes
    WalletRule(Wallet.ALIPAY, r"30\d{14,22}"),
    WalletRule(Wallet.UNIONPAY, r"62\d{17}"),  # 云闪付, and some JD codes
)
"""DESIGN.md section 6, in order."""


def recognise_wallet(
    code: str, rules: Sequence[WalletRule] = DEFAULT_WALLET_RULES
) -> Wallet | None:
    """The wallet of a payment code, or ``None`` when no rule matches."""
    return next((rule.wallet for rule in rules if rule.matches(code)), None)
