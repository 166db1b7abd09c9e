"""Wallet recognition of a scanned 付款码: DESIGN.md section 6's rules, in order, configurable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shouyin.link.values import Wallet
from shouyin.payments import (
    UnrecognisedPaymentCode,
    WalletRule,
    code_tail,
    recognise_wallet,
    rules_from_config,
)


@pytest.mark.parametrize(
    ("code", "wallet"),
    [
        ("134567890123456789", Wallet.WECHAT),  # 18 digits, 13
        ("104567890123456789", Wallet.WECHAT),  # 10
        ("154567890123456789", Wallet.WECHAT),  # 15
        ("2845678901234567", Wallet.ALIPAY),  # 16 digits, 28
        ("284567890123456789012345", Wallet.ALIPAY),  # 24 digits
        ("2545678901234567", Wallet.ALIPAY),  # 25
        ("3045678901234567", Wallet.ALIPAY),  # 30
        ("6284567890123456789", Wallet.UNIONPAY),  # 19 digits, 62
    ],
)
def test_design_table_codes_are_recognised(code: str, wallet: Wallet) -> None:
    assert recognise_wallet(code) is wallet


@pytest.mark.parametrize(
    "code",
    [
        "164567890123456789",  # 16 is nobody's
        "13456789012345678",  # WeChat is 18 digits
        "284567890123456",  # Alipay is at least 16
        "2845678901234567890123456",  # and at most 24
        "628456789012345678",  # UnionPay is 19 digits
        "4111111111111111",  # a card number is not a payment code
        "abc",
        "",
    ],
)
def test_anything_else_is_refused_as_unrecognised(code: str) -> None:
    with pytest.raises(UnrecognisedPaymentCode, match="unrecognised payment code"):
        recognise_wallet(code)


def test_refusal_names_only_the_last_four_digits() -> None:
    with pytest.raises(UnrecognisedPaymentCode) as refused:
        recognise_wallet("164567890123456789")
    assert refused.value.tail == "6789"
    assert "16456789012" not in str(refused.value)


def test_scanner_whitespace_and_enter_are_ignored() -> None:
    assert recognise_wallet(" 134567890123456789\r\n") is Wallet.WECHAT


def test_rules_are_checked_in_order() -> None:
    rules = (WalletRule(Wallet.UNIONPAY, r"1\d{17}"), WalletRule(Wallet.WECHAT, r"1[0-5]\d{16}"))
    assert recognise_wallet("134567890123456789", rules) is Wallet.UNIONPAY


def test_rules_come_from_configuration() -> None:
    rules = rules_from_config([{"wallet": "unionpay", "pattern": r"88\d{16}"}])
    assert recognise_wallet("884567890123456789", rules) is Wallet.UNIONPAY
    with pytest.raises(UnrecognisedPaymentCode):
        recognise_wallet("134567890123456789", rules)


@pytest.mark.parametrize(
    "entry",
    [
        {"wallet": "paypal", "pattern": r"\d+"},
        {"wallet": "wechat"},
        {"wallet": "wechat", "pattern": "("},
    ],
)
def test_bad_configuration_is_a_clear_error(entry: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="wallet rule 0"):
        rules_from_config([entry])


def test_only_the_last_four_digits_are_kept() -> None:
    assert code_tail("134567890123456789") == "6789"


@given(st.integers(min_value=10, max_value=15), st.text("0123456789", min_size=16, max_size=16))
def test_every_wechat_shaped_code_is_wechat(prefix: int, rest: str) -> None:
    assert recognise_wallet(f"{prefix}{rest}") is Wallet.WECHAT


@given(st.text("0123456789", min_size=10, max_size=32))
def test_recognition_never_fails_otherwise_than_with_the_typed_error(code: str) -> None:
    try:
        wallet = recognise_wallet(code)
    except UnrecognisedPaymentCode as refused:
        assert refused.tail == code[-4:]
    else:
        assert wallet in (Wallet.WECHAT, Wallet.ALIPAY, Wallet.UNIONPAY)
