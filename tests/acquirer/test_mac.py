"""MACs, key exchange at sign-in, PIN blocks: good ones pass, bad ones are refused and never
processed."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shouyin.acquirer import (
    HostRefused,
    Ledger,
    MacError,
    NotSignedIn,
    ResponseCode,
    TerminalSession,
    card_by_name,
    derive_tmk,
)
from shouyin.acquirer.iso import pack, unpack
from shouyin.acquirer.mac import (
    WorkingKeys,
    check_value,
    cmac_aes,
    decrypt_pin_block,
    encrypt_pin_block,
    sign,
    unwrap_key,
    verify,
    wrap_key,
)
from shouyin.acquirer.messages import FinancialResponse, SignInResponse

from . import MID, NOW, TID, Pair

APPROVE = card_by_name("approve")


def test_cmac_matches_the_rfc_4493_vectors() -> None:
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    assert cmac_aes(key, b"").hex() == "bb1d6929e95937287fa37d129b756746"
    message = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert cmac_aes(key, message).hex() == "070a16b46b4d4144f79bdd9dd04a287c"


def test_a_signed_message_verifies() -> None:
    packed = sign({"t": "0800", "11": "000001"}, b"m" * 16)
    assert verify(packed, b"m" * 16)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_changed_byte_breaks_the_mac(data: st.DataObject) -> None:
    packed = bytearray(sign({"t": "0200", "4": "000000001234", "11": "000007"}, b"m" * 16))
    index = data.draw(st.integers(0, len(packed) - 1))
    packed[index] ^= data.draw(st.integers(1, 255))
    assert not verify(bytes(packed), b"m" * 16)


def test_a_message_without_mac_does_not_verify() -> None:
    assert not verify(pack({"t": "0800", "11": "000001"}), b"m" * 16)


def test_the_wrong_key_does_not_verify() -> None:
    assert not verify(sign({"t": "0800"}, b"m" * 16), b"n" * 16)


def test_key_wrap_round_trips_and_refuses_the_wrong_kek() -> None:
    wrapped = wrap_key(b"k" * 16, b"s" * 16)
    assert len(wrapped) == 24
    assert unwrap_key(b"k" * 16, wrapped) == b"s" * 16
    with pytest.raises(Exception, match="unwrap"):
        unwrap_key(b"x" * 16, wrapped)


def test_each_terminal_has_its_own_tmk() -> None:
    assert derive_tmk(TID) == derive_tmk(TID)
    assert derive_tmk(TID) != derive_tmk("T0000002")
    assert derive_tmk(TID) != derive_tmk(TID, master=b"\x01" * 16)


# -- sign-in ----------------------------------------------------------------------------------


def test_sign_in_delivers_keys_wrapped_under_the_tmk_with_check_values() -> None:
    pair = Pair.create(signed_in=False)
    answer = pair.run(pair.session.sign_in(trace=1, batch=1, now=NOW))
    assert isinstance(answer, SignInResponse)
    assert answer.approved
    keys = pair.session.keys
    assert keys is not None
    assert answer.mak_wrapped is not None
    assert unwrap_key(derive_tmk(TID), answer.mak_wrapped) == keys.mak
    assert (answer.mak_kcv, answer.pik_kcv) == (check_value(keys.mak), check_value(keys.pik))
    assert pair.host.working_keys(TID) == keys


def test_a_terminal_with_another_tmk_cannot_use_the_keys() -> None:
    pair = Pair.create(signed_in=False)
    pair.session = TerminalSession(TID, MID, derive_tmk("T9999999"))
    with pytest.raises(MacError, match="unwrap"):
        pair.run(pair.session.sign_in(trace=1, batch=1, now=NOW))
    assert pair.session.keys is None


def test_a_tampered_check_value_is_refused() -> None:
    pair = Pair.create(signed_in=False)
    request = pair.session.sign_in(trace=1, batch=1, now=NOW)
    message = pair.send(request)
    assert message is not None
    fields = unpack(message)
    answer = SignInResponse.from_fields(fields)
    forged = answer.model_copy(update={"mak_kcv": "000000"})
    with pytest.raises(MacError, match="check value"):
        pair.session.decode(request, pack({**forged.to_fields(), "64": fields["64"]}))


def test_a_new_sign_in_replaces_the_keys() -> None:
    pair = Pair.create()
    first = pair.session.keys
    pair.host._random = lambda size: bytes(reversed(range(size)))
    pair.run(pair.session.sign_in(trace=pair.next_trace(), batch=1, now=NOW))
    assert pair.session.keys != first
    assert pair.run(pair.session.echo(trace=pair.next_trace(), batch=1, now=NOW)).approved


def test_keys_survive_a_host_restart(tmp_path: object) -> None:
    path = f"{tmp_path}/ledger.sqlite3"
    pair = Pair.create(Ledger(path))
    pair.host.ledger.close()
    reopened = Pair.create(Ledger(path), signed_in=False)
    reopened.session = pair.session
    assert reopened.run(pair.session.echo(trace=9, batch=1, now=NOW)).approved


# -- refusals --------------------------------------------------------------------------------


def test_a_bad_mac_is_answered_a0_logged_and_not_processed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="shouyin.acquirer")
    pair = Pair.create()
    request = pair.session.card_sale(
        trace=2, batch=1, amount=100, now=NOW, pan=APPROVE.pan, expiry=APPROVE.expiry
    )
    packed = bytearray(pair.session.encode(request))
    packed[-1] ^= 0x01
    answer = pair.host.handle(bytes(packed), NOW).message
    assert answer is not None
    fields = unpack(answer)
    assert (fields["t"], fields["39"], fields["11"]) == ("0210", "A0", "000002")
    assert "64" not in fields
    assert pair.host.ledger.export() == []
    assert "MAC error" in caplog.text
    with pytest.raises(HostRefused) as refused:
        pair.session.decode(request, answer)
    assert refused.value.response_code == "A0"


def test_a_missing_mac_is_answered_a0() -> None:
    pair = Pair.create()
    request = pair.session.echo(trace=2, batch=1, now=NOW)
    answer = pair.host.handle(pack(request.to_fields()), NOW).message
    assert answer is not None
    assert unpack(answer)["39"] == ResponseCode.MAC_ERROR


def test_a_terminal_that_never_signed_in_is_told_to() -> None:
    pair = Pair.create(signed_in=False)
    pair.session.keys = WorkingKeys(b"x" * 16, b"y" * 16)  # keys the host never issued
    request = pair.session.echo(trace=2, batch=1, now=NOW)
    with pytest.raises(HostRefused) as refused:
        pair.run(request)
    assert refused.value.response_code == ResponseCode.SIGN_IN_AGAIN


def test_an_answer_with_a_bad_mac_is_not_believed() -> None:
    pair = Pair.create()
    request = pair.session.card_sale(
        trace=2, batch=1, amount=100, now=NOW, pan=APPROVE.pan, expiry=APPROVE.expiry
    )
    message = pair.send(request)
    assert message is not None
    forged = bytearray(message)
    forged[-3] ^= 0x10
    with pytest.raises(MacError):
        pair.session.decode(request, bytes(forged))
    assert isinstance(pair.session.decode(request, message), FinancialResponse)


def test_a_mac_request_before_sign_in_is_a_local_error() -> None:
    session = TerminalSession(TID, MID, derive_tmk(TID))
    with pytest.raises(NotSignedIn):
        session.encode(session.echo(trace=1, batch=1, now=NOW))


def test_a_format_error_is_answered_30_with_a_mac() -> None:
    pair = Pair.create()
    keys = pair.session.keys
    assert keys is not None
    fields = {"t": "0200", "3": "000000", "11": "000005", "41": TID, "42": MID}  # no amount
    answer = pair.host.handle(sign(fields, keys.mak), NOW).message
    assert answer is not None
    assert unpack(answer)["39"] == ResponseCode.FORMAT_ERROR
    assert verify(answer, keys.mak)


def test_undecodable_bytes_get_no_answer() -> None:
    pair = Pair.create()
    assert pair.host.handle(b"\x00garbage", NOW).message is None


# -- PIN blocks -------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.from_regex(r"\A[0-9]{4,12}\Z"), st.from_regex(r"\A[0-9]{12,19}\Z"))
def test_pin_blocks_round_trip(pin: str, pan: str) -> None:
    block = encrypt_pin_block(pin, pan, b"p" * 16)
    assert len(block) == 16
    assert decrypt_pin_block(block, pan, b"p" * 16) == pin


def test_a_pin_block_is_bound_to_its_card_and_key() -> None:
    block = encrypt_pin_block("123456", APPROVE.pan, b"p" * 16)
    assert decrypt_pin_block(block, APPROVE.pan, b"q" * 16) is None
    assert decrypt_pin_block(block, card_by_name("decline").pan, b"p" * 16) is None


def test_the_same_pin_gives_a_different_block_each_time() -> None:
    assert encrypt_pin_block("1234", APPROVE.pan, b"p" * 16) != encrypt_pin_block(
        "1234", APPROVE.pan, b"p" * 16
    )


def test_working_keys_repr_shows_check_values_only() -> None:
    keys = WorkingKeys(b"m" * 16, b"p" * 16)
    assert "6d6d" not in repr(keys).lower()
    assert check_value(keys.mak) in repr(keys)
    assert replace(keys) == keys
