"""Every test card and payment code does what the table says, at the host."""

from __future__ import annotations

import pytest

from shouyin.acquirer import (
    TEST_CARDS,
    CardBehaviour,
    EntryMode,
    FinancialResponse,
    HostConfig,
    QrBehaviour,
    TestCard,
    Wallet,
    card_by_name,
    card_by_pan,
    luhn_valid,
    mask_pan,
    qr_behaviour,
    qr_code,
    recognise_wallet,
)
from shouyin.acquirer.pan import luhn_check_digit

from . import Pair

EXPECTED = {
    CardBehaviour.APPROVE: "00",
    CardBehaviour.DECLINE: "05",
    CardBehaviour.INSUFFICIENT_FUNDS: "51",
    CardBehaviour.EXPIRED: "54",
    CardBehaviour.PIN_REQUIRED: "55",  # without a PIN
    CardBehaviour.SLOW: "00",
    CardBehaviour.INVALID: "14",
    CardBehaviour.ISSUER_UNAVAILABLE: "91",
}


def test_every_test_pan_is_luhn_valid_and_unique() -> None:
    assert all(luhn_valid(card.pan) for card in TEST_CARDS)
    assert len({card.pan for card in TEST_CARDS}) == len(TEST_CARDS)
    assert {card.pan[0] for card in TEST_CARDS} >= {"6", "4", "5"}


def test_the_unionpay_numbers_carry_their_response_code() -> None:
    for name in ("decline", "insufficient", "expired"):
        card = card_by_name(name)
        assert card.pan[-3:-1] == EXPECTED[card.behaviour]


@pytest.mark.parametrize(
    "card", [card for card in TEST_CARDS if card.behaviour is not CardBehaviour.NO_ANSWER], ids=repr
)
def test_each_card_gets_its_answer(card: TestCard) -> None:
    pair = Pair.create()
    answer = pair.sale(1000, card.pan, expiry=card.expiry)
    assert isinstance(answer, FinancialResponse)
    assert answer.response_code == EXPECTED[card.behaviour]
    assert (answer.auth_code is not None) == answer.approved
    [entry] = pair.host.ledger.export()
    assert entry.masked_pan == card.masked_pan
    assert entry.status == ("approved" if answer.approved else "declined")


def test_the_pin_card_is_approved_with_its_pin() -> None:
    pair = Pair.create()
    card = card_by_name("pin")
    block = pair.session.pin_block("123456", card.pan)
    answer = pair.sale(1000, card.pan, expiry=card.expiry, pin_block=block)
    assert answer.response_code == "00"


def test_a_wrong_pin_is_declined_55_on_any_card() -> None:
    pair = Pair.create()
    for name in ("pin", "approve"):
        card = card_by_name(name)
        block = pair.session.pin_block("000000", card.pan)
        assert pair.sale(1000, card.pan, pin_block=block).response_code == "55"


def test_the_slow_card_is_answered_after_its_delay() -> None:
    pair = Pair.create()
    pair.sale(1000, card_by_name("slow").pan)
    assert pair.delays[-1] == 20.0
    pair.host.config = HostConfig(slow_issuer_s=0.25)
    pair.sale(1000, card_by_name("slow").pan)
    assert pair.delays[-1] == 0.25


def test_the_no_answer_card_is_approved_but_never_answered() -> None:
    pair = Pair.create()
    card = card_by_name("no_answer")
    request = pair.session.card_sale(
        trace=pair.next_trace(), batch=1, amount=700, now=pair.now, pan=card.pan
    )
    assert pair.send(request) is None
    [entry] = pair.host.ledger.export()
    assert (entry.status, entry.amount) == ("approved", 700)


def test_an_expired_expiry_is_declined_54_on_any_card() -> None:
    pair = Pair.create()
    assert pair.sale(100, card_by_name("approve").pan, expiry="2510").response_code == "54"
    assert pair.sale(100, card_by_name("approve").pan, expiry="2511").response_code == "00"


def test_a_swiped_card_is_read_from_track_2() -> None:
    pair = Pair.create()
    card = card_by_name("visa")
    request = pair.session.card_sale(
        trace=pair.next_trace(), batch=1, amount=100, now=pair.now,
        entry=EntryMode.SWIPE, track2=card.track2(),
    )  # fmt: skip
    assert request.entry_mode == "022"
    assert pair.run(request).response_code == "00"
    assert pair.host.ledger.export()[0].masked_pan == "411111******1111"


def test_any_other_luhn_valid_number_is_approved_and_an_invalid_one_refused() -> None:
    pair = Pair.create()
    other = "621700123456789" + luhn_check_digit("621700123456789")
    assert pair.sale(100, other).response_code == "00"
    assert pair.sale(100, other[:-1] + str((int(other[-1]) + 1) % 10)).response_code == "14"


def test_cards_are_found_by_number_and_name() -> None:
    card = card_by_name("visa")
    assert card_by_pan(card.pan) is card
    assert card_by_pan("4111111111111112") is None
    assert "4111111111111111" not in repr(card)


def test_mask_pan_keeps_first_six_and_last_four() -> None:
    assert mask_pan("6228480000000000018") == "622848*********0018"
    assert mask_pan("4111111111111111") == "411111******1111"
    with pytest.raises(ValueError, match="card number"):
        mask_pan("12345")


# -- payment codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "wallet"),
    [
        ("134567890123456700", Wallet.WECHAT),
        ("104567890123456789", Wallet.WECHAT),
        ("284567890123456700", Wallet.ALIPAY),
        ("2545678901234567", Wallet.ALIPAY),
        ("301234567890123456789012", Wallet.ALIPAY),
        ("6284567890123456700", Wallet.UNIONPAY),
        ("164567890123456700", None),
        ("13456789012345670", None),
        ("628456789012345670", None),
    ],
)
def test_wallets_are_recognised_by_the_design_rules(code: str, wallet: Wallet | None) -> None:
    assert recognise_wallet(code) == wallet


@pytest.mark.parametrize("wallet", list(Wallet))
@pytest.mark.parametrize("behaviour", list(QrBehaviour))
def test_test_codes_have_their_wallet_and_behaviour(wallet: Wallet, behaviour: QrBehaviour) -> None:
    code = qr_code(wallet, behaviour)
    assert recognise_wallet(code) == wallet
    assert qr_behaviour(code) == behaviour


QR_FIRST = {
    QrBehaviour.SUCCESS: ("00", "approved", "SUCCESS"),
    QrBehaviour.USERPAYING_SUCCESS: ("09", "pending", "USERPAYING"),
    QrBehaviour.USERPAYING_FAIL: ("09", "pending", "USERPAYING"),
    QrBehaviour.USERPAYING_FOREVER: ("09", "pending", "USERPAYING"),
    QrBehaviour.SYSTEM_ERROR: ("96", "approved", "SYSTEMERROR"),
    QrBehaviour.INSUFFICIENT_BALANCE: ("51", "declined", "PAYERROR"),
    QrBehaviour.EXPIRED_CODE: ("54", "declined", "PAYERROR"),
}


@pytest.mark.parametrize("behaviour", list(QrBehaviour))
def test_each_code_gets_its_first_answer(behaviour: QrBehaviour) -> None:
    pair = Pair.create()
    _, answer = pair.qr(880, qr_code(Wallet.ALIPAY, behaviour))
    assert isinstance(answer, FinancialResponse)
    code, status, wallet_status = QR_FIRST[behaviour]
    assert (answer.response_code, answer.wallet_status) == (code, wallet_status)
    assert answer.wallet == Wallet.ALIPAY
    [entry] = pair.host.ledger.export()
    assert entry.status == status
    assert entry.kind == "qr"


def test_an_unrecognised_code_is_refused_14() -> None:
    pair = Pair.create()
    _, answer = pair.qr(880, "99999999999999999999")
    assert answer.response_code == "14"
