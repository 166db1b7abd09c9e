"""Which wallet a scanned payment code (付款码) belongs to: configurable rules, checked in order.

The default rules are DESIGN.md section 6's public ones. Lengths vary between wallets and over
time, so the rules are no stricter than that table; a store configures its own list (for
instance to add a wallet its acquirer supports) with :func:`rules_from_config`.

A payment code is a one-time bearer credential: whoever holds it can take money from the
customer's wallet until it expires (about a minute). The lane therefore never stores or logs it:
the journal keeps only the recognised wallet and :func:`code_tail` (its last four digits), which
is what a cashier or an auditor needs to tell two attempts apart. The full code travels only in
the Payment request to the terminal, inside the link's AEAD envelope.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from shouyin.link.values import Wallet
from shouyin.payments.errors import UnrecognisedPaymentCode

__all__ = [
    "DEFAULT_WALLET_RULES",
    "WalletRule",
    "code_tail",
    "normalise_code",
    "recognise_wallet",
    "rules_from_config",
]

_CODE_CHARS: Final = re.compile(r"^[0-9]{10,32}$")  # the link's AuthCode: what a terminal takes


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


def normalise_code(scanned: str) -> str:
    """The code as the scanner typed it, without surrounding whitespace or Enter.

    Raises:
        UnrecognisedPaymentCode: not 10-32 ASCII digits (no terminal would take it).
    """
    code = scanned.strip()
    if not code.isascii() or _CODE_CHARS.fullmatch(code) is None:
        raise UnrecognisedPaymentCode(code_tail(code))
    return code


def code_tail(code: str) -> str:
    """The last four characters of a payment code: all the lane ever keeps of it."""
    return code.strip()[-4:]


def recognise_wallet(scanned: str, rules: Sequence[WalletRule] = DEFAULT_WALLET_RULES) -> Wallet:
    """The wallet of a scanned payment code, by the first matching rule.

    Args:
        scanned: what the scanner typed (surrounding whitespace is ignored).
        rules: the rules, checked in order.

    Returns:
        The wallet.

    Raises:
        UnrecognisedPaymentCode: no rule matches ("unrecognised payment code").
    """
    code = normalise_code(scanned)
    for rule in rules:
        if rule.matches(code):
            return rule.wallet
    raise UnrecognisedPaymentCode(code_tail(code))


def rules_from_config(entries: Iterable[Mapping[str, str]]) -> tuple[WalletRule, ...]:
    """Rules from configuration: ``[{"wallet": "wechat", "pattern": "1[0-5]\\d{16}"}, ...]``.

    Raises:
        ValueError: an unknown wallet, a missing key or a bad pattern.
    """
    rules = []
    for index, entry in enumerate(entries):
        try:
            wallet, pattern = entry["wallet"], entry["pattern"]
        except KeyError as error:
            raise ValueError(f"wallet rule {index}: missing {error.args[0]!r}") from None
        try:
            rules.append(WalletRule(Wallet(wallet), pattern))
        except ValueError as error:
            raise ValueError(f"wallet rule {index}: {error}") from None
    return tuple(rules)
