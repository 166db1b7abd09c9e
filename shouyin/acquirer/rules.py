"""The simulated issuers' and wallets' decisions (pure functions of the request and ``now``).

:func:`card_decision` applies, in order: Luhn check (``14``), expiry against ``now`` (``54``),
the PIN block if any (``55`` when wrong; ``55`` too when the card requires one and none came),
then the test card's behaviour (:mod:`shouyin.acquirer.testcards`). :func:`qr_decision` maps
a payment code to its wallet and outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shouyin.acquirer.codes import ResponseCode, Wallet, WalletStatus
from shouyin.acquirer.mac import decrypt_pin_block
from shouyin.acquirer.pan import luhn_valid
from shouyin.acquirer.testcards import (
    DEFAULT_PIN,
    CardBehaviour,
    QrBehaviour,
    card_by_pan,
    qr_behaviour,
    recognise_wallet,
)

__all__ = ["CardDecision", "QrDecision", "card_decision", "expired", "qr_decision"]

_RC = ResponseCode
_BEHAVIOUR_CODES: dict[CardBehaviour, ResponseCode] = {
    CardBehaviour.DECLINE: _RC.DO_NOT_HONOUR,
    CardBehaviour.INSUFFICIENT_FUNDS: _RC.INSUFFICIENT_FUNDS,
    CardBehaviour.EXPIRED: _RC.EXPIRED_CARD,
    CardBehaviour.INVALID: _RC.INVALID_CARD,
    CardBehaviour.ISSUER_UNAVAILABLE: _RC.ISSUER_UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class CardDecision:
    """The issuer's answer to a card sale.

    Attributes:
        code: the response code.
        delay_s: how long the issuer takes.
        silent: the answer never comes (the transaction is still recorded as decided).
    """

    code: ResponseCode
    delay_s: float = 0.0
    silent: bool = False


def expired(expiry: str | None, now: datetime) -> bool:
    """Whether a ``YYMM`` expiry is before ``now``'s month (a card is valid through its month).

    Args:
        expiry: ``YYMM`` or ``None`` (not known: not expired).
        now: the current time.

    Returns:
        ``True`` when expired.
    """
    if expiry is None or len(expiry) != 4 or not expiry.isdigit():
        return False
    return (int(expiry[:2]), int(expiry[2:])) < (now.year % 100, now.month)


def card_decision(  # noqa: PLR0911 - one return per rule reads best
    pan: str,
    expiry: str | None,
    pin_block: bytes | None,
    pik: bytes,
    now: datetime,
    *,
    slow_issuer_s: float | None = None,
) -> CardDecision:
    """Decide a card sale.

    Args:
        pan: the full card number (never kept).
        expiry: ``YYMM`` from field 14 or track 2.
        pin_block: field 52, if any.
        pik: the terminal's PIN key.
        now: the current time.
        slow_issuer_s: overrides the slow cards' own delay.

    Returns:
        The decision.
    """
    if not luhn_valid(pan):
        return CardDecision(_RC.INVALID_CARD)
    card = card_by_pan(pan)
    behaviour = card.behaviour if card is not None else CardBehaviour.APPROVE
    if expired(expiry, now) or behaviour is CardBehaviour.EXPIRED:
        return CardDecision(_RC.EXPIRED_CARD)
    right_pin = card.pin if card is not None else DEFAULT_PIN
    if pin_block is not None and decrypt_pin_block(pin_block, pan, pik) != right_pin:
        return CardDecision(_RC.INCORRECT_PIN)
    if behaviour is CardBehaviour.PIN_REQUIRED and pin_block is None:
        return CardDecision(_RC.INCORRECT_PIN)
    if behaviour is CardBehaviour.SLOW:
        delay = slow_issuer_s if slow_issuer_s is not None else card.delay_s if card else 0.0
        return CardDecision(_RC.APPROVED, delay_s=delay)
    if behaviour is CardBehaviour.NO_ANSWER:
        return CardDecision(_RC.APPROVED, silent=True)
    return CardDecision(_BEHAVIOUR_CODES.get(behaviour, _RC.APPROVED))


@dataclass(frozen=True, slots=True)
class QrDecision:
    """A wallet's answer to a micropay order.

    Attributes:
        wallet: the recognised wallet (``None``: unrecognised code, ``14``).
        answer: the response code the terminal hears now.
        status: the order's wallet status now.
        truth: the response code of the order as it really is (differs for SYSTEMERROR).
        final_code: for USERPAYING orders, the code they resolve to (``None``: never).
    """

    wallet: Wallet | None
    answer: ResponseCode
    status: WalletStatus | None
    truth: ResponseCode
    final_code: ResponseCode | None = None


_WS = WalletStatus
_QR_OUTCOMES: dict[
    QrBehaviour, tuple[ResponseCode, WalletStatus, ResponseCode, ResponseCode | None]
] = {
    # behaviour: (answer now, wallet status now, the truth, what USERPAYING resolves to)
    QrBehaviour.SUCCESS: (_RC.APPROVED, _WS.SUCCESS, _RC.APPROVED, None),
    QrBehaviour.USERPAYING_SUCCESS: (
        _RC.IN_PROGRESS,
        _WS.USERPAYING,
        _RC.IN_PROGRESS,
        _RC.APPROVED,
    ),
    QrBehaviour.USERPAYING_FAIL: (
        _RC.IN_PROGRESS,
        _WS.USERPAYING,
        _RC.IN_PROGRESS,
        _RC.DO_NOT_HONOUR,
    ),
    QrBehaviour.USERPAYING_FOREVER: (_RC.IN_PROGRESS, _WS.USERPAYING, _RC.IN_PROGRESS, None),
    QrBehaviour.SYSTEM_ERROR: (_RC.SYSTEM_ERROR, _WS.SYSTEMERROR, _RC.APPROVED, None),
    QrBehaviour.INSUFFICIENT_BALANCE: (
        _RC.INSUFFICIENT_FUNDS,
        _WS.PAYERROR,
        _RC.INSUFFICIENT_FUNDS,
        None,
    ),
    QrBehaviour.EXPIRED_CODE: (_RC.EXPIRED_CARD, _WS.PAYERROR, _RC.EXPIRED_CARD, None),
}


def qr_decision(code: str) -> QrDecision:
    """Decide a micropay order by the code's wallet and last two digits.

    Args:
        code: the customer's payment code.

    Returns:
        The decision.
    """
    wallet = recognise_wallet(code)
    if wallet is None:
        return QrDecision(None, _RC.INVALID_CARD, None, _RC.INVALID_CARD)
    return QrDecision(wallet, *_QR_OUTCOMES[qr_behaviour(code)])
