"""Test cards and test payment codes: what the acquirer simulator answers to each.

Both the acquirer simulator and the terminal simulator (and tests) use this table; the numbers
are Luhn-valid but belong to no real account. The decline, insufficient and expired
``622848...`` numbers carry their response code in the two digits before the check digit
(``...0005`` + ``9`` declines ``05``).

============================  =====================  ======================================
name                          PAN                    behaviour
============================  =====================  ======================================
approve                       6228480000000000018    approve
decline                       6228480000000000059    ``05`` do not honour
insufficient                  6228480000000000513    ``51`` insufficient funds
expired                       6228480000000000547    ``54`` expired card (expiry 2001)
pin                           6228480000000000554    PIN required: ``00`` with PIN 123456,
                                                     ``55`` with a wrong or missing PIN
slow                          6228480000000000919    approve after ``delay_s`` (20 s,
                                                     ``--slow-ms`` overrides)
no_answer                     6228480000000000968    approved, but the answer never comes:
                                                     the terminal must reverse (0400)
invalid                       6228480000000000125    ``14`` invalid card number
issuer_unavailable            6228480000000010918    ``91`` issuer unavailable
quickpass / debit / unionpay  6258070000000000011,   approve
                              6217000000000000038,
                              6212345678901232
visa / visa_decline /         4111111111111111,      approve / ``05`` / ``54``
visa_expired                  4000000000000002,
                              4000000000000069
mastercard / mc_insufficient  5555555555554444,      approve / ``51`` /
/ mc_pin                      5105105105105100,      PIN required
                              2223000000000023
============================  =====================  ======================================

Any other Luhn-valid number is approved; a number failing the Luhn check gets ``14``. When a
PIN block comes with any card it is checked against the card's PIN (``55`` if wrong).

Payment codes (付款码): the wallet is recognised by DESIGN.md section 6's rules
(:func:`recognise_wallet`); the **last two digits** choose the outcome (:func:`qr_behaviour`):

======  =======================================================================
ends    outcome
======  =======================================================================
91      USERPAYING (``09``), then SUCCESS once the customer has "entered the password"
92      USERPAYING (``09``), then PAYERROR (``05``): the customer gave up
93      SYSTEMERROR (``96``): outcome unknown; the order was in fact paid (query finds it)
94      insufficient balance (``51``)
95      expired payment code (``54``)
96      USERPAYING forever: the terminal has to revoke it
other   SUCCESS (``00``)
======  =======================================================================

A code no wallet rule recognises gets ``14``. :func:`qr_code` builds a code for a wallet and
outcome. Merchant-presented QR orders (precreate) are paid by the customer after the host's
USERPAYING delay, except when the amount in fen ends in ``96`` (never paid).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from shouyin.acquirer.codes import Wallet
from shouyin.acquirer.pan import mask_pan

__all__ = [
    "DEFAULT_PIN",
    "DEFAULT_WALLET_RULES",
    "QR_SUFFIXES",
    "TEST_CARDS",
    "CardBehaviour",
    "Cvm",
    "QrBehaviour",
    "TestCard",
    "WalletRule",
    "card_by_name",
    "card_by_pan",
    "qr_behaviour",
    "qr_code",
    "recognise_wallet",
    "scheme_of",
]

DEFAULT_PIN: Final = "123456"


class CardBehaviour(StrEnum):
    """How the simulated issuer treats a card."""

    APPROVE = "approve"
    DECLINE = "decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED = "expired"
    PIN_REQUIRED = "pin_required"
    SLOW = "slow"
    NO_ANSWER = "no_answer"
    INVALID = "invalid"
    ISSUER_UNAVAILABLE = "issuer_unavailable"


class Cvm(StrEnum):
    """How the card asks the cardholder to be verified (values as the terminal's)."""

    ONLINE_PIN = "online_pin"
    SIGNATURE = "signature"
    NO_CVM = "no_cvm"


@dataclass(frozen=True, slots=True, repr=False)
class TestCard:
    """One test card (``repr`` shows the masked number only).

    Attributes:
        name: short name (``approve``, ``pin``...).
        pan: Luhn-valid card number.
        scheme: ``UnionPay``, ``Visa`` or ``Mastercard``.
        behaviour: what the issuer does.
        expiry: ``YYMM``.
        cvm: how the terminal verifies the cardholder.
        pin: the correct PIN.
        delay_s: seconds the issuer takes (``SLOW`` cards).
        service_code: track-2 service code (``2xx``: chip card).
    """

    __test__ = False  # not a pytest class, despite the name

    name: str
    pan: str
    scheme: str
    behaviour: CardBehaviour
    expiry: str = "3012"
    cvm: Cvm = Cvm.SIGNATURE
    pin: str = DEFAULT_PIN
    delay_s: float = 0.0
    service_code: str = "220"

    @property
    def masked_pan(self) -> str:
        """First 6 + ``*`` + last 4."""
        return mask_pan(self.pan)

    @property
    def pin_required(self) -> bool:
        """Whether the issuer approves only with the right PIN block."""
        return self.behaviour is CardBehaviour.PIN_REQUIRED

    def track2(self) -> str:
        """Track-2 equivalent data: ``PAN=YYMM`` + service code + discretionary data."""
        return f"{self.pan}={self.expiry}{self.service_code}0000000000"

    def __repr__(self) -> str:
        return f"TestCard({self.name!r}, {self.masked_pan}, {self.behaviour.value})"


_B = CardBehaviour
_UP, _VISA, _MC = "UnionPay", "Visa", "Mastercard"

TEST_CARDS: Final[tuple[TestCard, ...]] = (
    TestCard("approve", "6228480000000000018", _UP, _B.APPROVE),
    TestCard("decline", "6228480000000000059", _UP, _B.DECLINE),
    TestCard("insufficient", "6228480000000000513", _UP, _B.INSUFFICIENT_FUNDS, cvm=Cvm.ONLINE_PIN),
    TestCard("expired", "6228480000000000547", _UP, _B.EXPIRED, expiry="2001"),
    TestCard("pin", "6228480000000000554", _UP, _B.PIN_REQUIRED, cvm=Cvm.ONLINE_PIN),
    TestCard("slow", "6228480000000000919", _UP, _B.SLOW, delay_s=20.0),
    TestCard("no_answer", "6228480000000000968", _UP, _B.NO_ANSWER),
    TestCard("invalid", "6228480000000000125", _UP, _B.INVALID),
    TestCard("issuer_unavailable", "6228480000000010918", _UP, _B.ISSUER_UNAVAILABLE),
    TestCard("quickpass", "6258070000000000011", _UP, _B.APPROVE, cvm=Cvm.NO_CVM),
    TestCard("debit", "6217000000000000038", _UP, _B.APPROVE, cvm=Cvm.ONLINE_PIN),
    TestCard("unionpay", "6212345678901232", _UP, _B.APPROVE),
    TestCard("visa", "4111111111111111", _VISA, _B.APPROVE),
    TestCard("visa_decline", "4000000000000002", _VISA, _B.DECLINE),
    TestCard("visa_expired", "4000000000000069", _VISA, _B.EXPIRED, expiry="2212"),
    TestCard("mastercard", "5555555555554444", _MC, _B.APPROVE),
    TestCard("mc_insufficient", "5105105105105100", _MC, _B.INSUFFICIENT_FUNDS),
    TestCard("mc_pin", "2223000000000023", _MC, _B.PIN_REQUIRED, cvm=Cvm.ONLINE_PIN),
)
"""Every test card (see the module table)."""

_BY_PAN: Final = {card.pan: card for card in TEST_CARDS}
_BY_NAME: Final = {card.name: card for card in TEST_CARDS}


def card_by_pan(pan: str) -> TestCard | None:
    """The test card with this number, if any.

    Args:
        pan: a card number.

    Returns:
        The card, or ``None``.
    """
    return _BY_PAN.get(pan)


def card_by_name(name: str) -> TestCard:
    """The test card called ``name``.

    Args:
        name: a name from the table.

    Returns:
        The card.

    Raises:
        KeyError: no such card.
    """
    return _BY_NAME[name]


def scheme_of(pan: str) -> str:
    """The card scheme of a number by its prefix (for slips and logs).

    Args:
        pan: a card number.

    Returns:
        ``UnionPay``, ``Visa``, ``Mastercard`` or ``Unknown``.
    """
    if pan.startswith("62"):
        return _UP
    if pan.startswith("4"):
        return _VISA
    if re.match(r"^(5[1-5]|2[2-7])", pan):
        return _MC
    return "Unknown"


# -- payment codes (付款码) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WalletRule:
    """A payment code matching ``pattern`` (full match) belongs to ``wallet``."""

    wallet: Wallet
    pattern: str

    def matches(self, code: str) -> bool:
        """Whether ``code`` matches this rule."""
        return re.fullmatch(self.pattern, code) is not None


DEFAULT_WALLET_RULES: Final[tuple[WalletRule, ...]] = (
    WalletRule(Wallet.WECHAT, r"1[0-5]\d{16}"),
    WalletRule(Wallet.ALIPAY, r"2[5-9]\d{14,22}"),  # Huabei uses the same codes
    WalletRule(Wallet.ALIPAY, r"30\d{14,22}"),
    WalletRule(Wallet.UNIONPAY, r"62\d{17}"),  # 云闪付, and some JD codes
)
"""DESIGN.md section 6, checked in order."""


def recognise_wallet(
    code: str, rules: Sequence[WalletRule] = DEFAULT_WALLET_RULES
) -> Wallet | None:
    """The wallet of a payment code.

    Args:
        code: the scanned 付款码.
        rules: the recognition rules, in order.

    Returns:
        The wallet of the first matching rule, or ``None``.
    """
    return next((rule.wallet for rule in rules if rule.matches(code)), None)


class QrBehaviour(StrEnum):
    """What happens to a micropay order, chosen by the code's last two digits."""

    SUCCESS = "success"
    USERPAYING_SUCCESS = "userpaying_success"
    USERPAYING_FAIL = "userpaying_fail"
    SYSTEM_ERROR = "system_error"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    EXPIRED_CODE = "expired_code"
    USERPAYING_FOREVER = "userpaying_forever"


QR_SUFFIXES: Final[dict[QrBehaviour, str]] = {
    QrBehaviour.SUCCESS: "00",
    QrBehaviour.USERPAYING_SUCCESS: "91",
    QrBehaviour.USERPAYING_FAIL: "92",
    QrBehaviour.SYSTEM_ERROR: "93",
    QrBehaviour.INSUFFICIENT_BALANCE: "94",
    QrBehaviour.EXPIRED_CODE: "95",
    QrBehaviour.USERPAYING_FOREVER: "96",
}
"""The last two digits that select each behaviour (any unlisted ending means SUCCESS)."""

_BY_SUFFIX: Final = {suffix: behaviour for behaviour, suffix in QR_SUFFIXES.items()}
_QR_BASES: Final = {
    Wallet.WECHAT: "1345678901234567",  # + 2 = 18 digits
    Wallet.ALIPAY: "2845678901234567",  # + 2 = 18 digits
    Wallet.UNIONPAY: "62845678901234567",  # + 2 = 19 digits
}


def qr_behaviour(code: str) -> QrBehaviour:
    """The outcome the simulator gives a payment code.

    Args:
        code: the scanned 付款码.

    Returns:
        The behaviour selected by its last two digits.
    """
    return _BY_SUFFIX.get(code[-2:], QrBehaviour.SUCCESS)


def qr_code(wallet: Wallet, behaviour: QrBehaviour = QrBehaviour.SUCCESS) -> str:
    """A test payment code of ``wallet`` that produces ``behaviour``.

    Args:
        wallet: the wallet.
        behaviour: the wanted outcome.

    Returns:
        The code (recognised as ``wallet`` by the default rules).
    """
    return _QR_BASES[wallet] + QR_SUFFIXES[behaviour]
