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
from typing import Final

from shouyin.link.values import Wallet
from shouyin.link.wallets import DEFAULT_WALLET_RULES, WalletRule
from shouyin.link.wallets import recognise_wallet as match_wallet
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
    wallet = match_wallet(code, rules)
    if wallet is None:
        raise UnrecognisedPaymentCode(code_tail(code))
    return wallet


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
