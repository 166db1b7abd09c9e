"""The AEAD envelope, session keys and the replay window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shouyin.link import (
    ENVELOPE_OVERHEAD,
    HEADER_SIZE,
    Direction,
    LongTermKey,
    Refusal,
    ReplayWindow,
    SecureChannel,
    SecurityError,
    derive_session_keys,
    transcript_hash,
)

from .helpers import ECR_ID, TERMINAL_ID, long_term_key


def channels(
    key: LongTermKey | None = None, *, ecr_nonce: bytes = b"\x01" * 32, window: int = 1
) -> tuple[SecureChannel, SecureChannel]:
    keys = derive_session_keys(
        key or long_term_key(),
        ecr_nonce=ecr_nonce,
        poi_nonce=b"\x02" * 32,
        transcript=transcript_hash([b"request", b"response"]),
    )
    return (
        SecureChannel(keys, Direction.ECR_TO_POI, ReplayWindow(window)),
        SecureChannel(keys, Direction.POI_TO_ECR, ReplayWindow(window)),
    )


def refusal_of(channel: SecureChannel, body: bytes) -> Refusal:
    with pytest.raises(SecurityError) as caught:
        channel.open(body)
    return caught.value.refusal


def test_sealed_layout_is_version_direction_key_id_seq_then_ciphertext_and_tag() -> None:
    ecr, _poi = channels()
    body = ecr.seal(b"hello")
    assert body[0] == 0x01
    assert body[1] == Direction.ECR_TO_POI
    assert body[2:6] == ecr.key_id
    assert body[6:14] == (0).to_bytes(8, "big")
    assert len(body) == HEADER_SIZE + len(b"hello") + 16 == len(b"hello") + ENVELOPE_OVERHEAD
    assert b"hello" not in body


def test_seal_then_open_round_trips_both_ways() -> None:
    ecr, poi = channels()
    assert poi.open(ecr.seal(b"to terminal")) == b"to terminal"
    assert ecr.open(poi.seal(b"to cashier")) == b"to cashier"


@given(st.lists(st.binary(max_size=600), min_size=1, max_size=10))
def test_envelopes_round_trip_in_order(plaintexts: list[bytes]) -> None:
    ecr, poi = channels()
    assert [poi.open(ecr.seal(p)) for p in plaintexts] == plaintexts


def test_sequence_numbers_increase_per_direction() -> None:
    ecr, poi = channels()
    seqs = [int.from_bytes(ecr.seal(b"x")[6:14], "big") for _ in range(3)]
    assert seqs == [0, 1, 2]
    assert int.from_bytes(poi.seal(b"y")[6:14], "big") == 0


def test_every_single_bit_flip_of_a_sealed_body_is_refused() -> None:
    ecr, poi = channels()
    body = ecr.seal(b'{"type":"payment_request","amount":12345}')
    for bit in range(len(body) * 8):
        flipped = bytearray(body)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SecurityError):
            poi.open(bytes(flipped))
    assert poi.open(body)  # the original still opens: nothing moved the window


def test_replay_is_refused() -> None:
    ecr, poi = channels()
    body = ecr.seal(b"once")
    poi.open(body)
    assert refusal_of(poi, body) is Refusal.REPLAYED


def test_seq_must_strictly_increase_on_in_order_transports() -> None:
    ecr, poi = channels()
    first, second = ecr.seal(b"1"), ecr.seal(b"2")
    poi.open(second)
    assert refusal_of(poi, first) is Refusal.TOO_OLD  # delayed or reordered: refused


def test_a_wider_window_accepts_out_of_order_once() -> None:
    ecr, poi = channels(window=64)
    first, second = ecr.seal(b"1"), ecr.seal(b"2")
    poi.open(second)
    assert poi.open(first) == b"1"
    assert refusal_of(poi, first) is Refusal.REPLAYED


def test_too_old_seq_is_refused() -> None:
    ecr, poi = channels(window=64)
    old = ecr.seal(b"old")
    for _ in range(64):
        ecr.seal(b"skipped")
    poi.open(ecr.seal(b"new"))  # seq 65
    assert refusal_of(poi, old) is Refusal.TOO_OLD


def test_too_far_ahead_seq_is_refused() -> None:
    ecr, poi = channels()
    ecr.next_seq = 5000
    assert refusal_of(poi, ecr.seal(b"jump")) is Refusal.TOO_FAR_AHEAD


def test_reflected_body_is_refused() -> None:
    ecr, _poi = channels()
    assert refusal_of(ecr, ecr.seal(b"mine")) is Refusal.WRONG_DIRECTION


def test_body_under_other_session_keys_is_refused_as_wrong_key() -> None:
    ecr_old, _ = channels(ecr_nonce=b"\x09" * 32)
    _, poi_new = channels()
    assert refusal_of(poi_new, ecr_old.seal(b"stale")) is Refusal.WRONG_KEY


def test_body_under_another_long_term_key_is_refused() -> None:
    mallory = LongTermKey(b"\xee" * 32, ecr_id=ECR_ID, terminal_id=TERMINAL_ID)
    ecr_forged, _ = channels(mallory)
    _, poi = channels()
    assert refusal_of(poi, ecr_forged.seal(b"forged")) is Refusal.WRONG_KEY


def test_forged_body_with_right_key_id_fails_the_tag_and_does_not_move_the_window() -> None:
    ecr, poi = channels()
    genuine = ecr.seal(b"genuine")
    forged = genuine[:6] + (900).to_bytes(8, "big") + genuine[14:]
    assert refusal_of(poi, forged) is Refusal.BAD_TAG
    assert poi.window.highest == -1
    assert poi.open(genuine) == b"genuine"


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (b'{"type":"payment_response"}', Refusal.UNSEALED),
        (b"", Refusal.UNKNOWN_VERSION),
        (b"\x02" + b"\x00" * 40, Refusal.UNKNOWN_VERSION),
        (b"\x01\x01\x00", Refusal.TRUNCATED),
    ],
)
def test_malformed_envelopes_are_refused(body: bytes, refusal: Refusal) -> None:
    _, poi = channels()
    assert refusal_of(poi, body) is refusal


def test_key_material_never_appears_in_repr() -> None:
    key = long_term_key(b"\xab" * 32)
    ecr, _ = channels(key)
    texts = [repr(key), str(key), repr(ecr), repr(ecr.keys), str(ecr.keys)]
    for text in texts:
        assert "abab" not in text
        assert key.secret_bytes().hex() not in text
    assert key.key_id in repr(key)


def test_session_keys_depend_on_both_nonces_and_the_transcript() -> None:
    key = long_term_key()
    base = {"ecr_nonce": b"\x01" * 32, "poi_nonce": b"\x02" * 32, "transcript": b"\x03" * 32}
    ids = {derive_session_keys(key, **base).key_id}
    for name in base:
        ids.add(derive_session_keys(key, **{**base, name: b"\x07" * 32}).key_id)
    assert len(ids) == 4


def test_replay_window_slides() -> None:
    window = ReplayWindow(size=4)
    for seq in (0, 1, 2, 3, 10):
        window.check(seq)
        window.commit(seq)
    window.check(8)  # within the 4 below 10, never seen
    for seq, refusal in ((10, Refusal.REPLAYED), (6, Refusal.TOO_OLD), (3, Refusal.TOO_OLD)):
        with pytest.raises(SecurityError) as caught:
            window.check(seq)
        assert caught.value.refusal is refusal
