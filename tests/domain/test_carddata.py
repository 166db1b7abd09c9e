"""Card-data hygiene: Luhn, masking and scrubbing of free text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shouyin.domain.carddata import contains_card_data, luhn_valid, mask_pan, scrub


def complete(partial: str) -> str:
    return next(partial + d for d in "0123456789" if luhn_valid(partial + d))


pans = st.integers(min_value=12, max_value=18).flatmap(
    lambda n: st.text("0123456789", min_size=n, max_size=n).map(complete)
)


def test_known_test_card_passes_luhn_and_a_changed_digit_fails() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("４１１１")  # full-width digits are not card digits


def test_mask_keeps_first_six_and_last_four_only() -> None:
    assert mask_pan("6228480012345671") == "622848******5671"


def test_mask_refuses_what_is_not_a_card_number_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="not a 13-19 digit") as caught:
        mask_pan("12345")
    assert "12345" not in str(caught.value)


@given(pans, st.text(max_size=20), st.text(max_size=20))
def test_scrub_never_leaves_a_luhn_valid_number_in_free_text(
    pan: str, before: str, after: str
) -> None:
    assert pan not in scrub(f"{before} {pan} {after}")


def test_scrub_masks_a_number_in_a_sentence() -> None:
    assert scrub("顾客卡号 6228480012345671 退款") == "顾客卡号 622848******5671 退款"


@given(pans)
def test_track_two_is_reduced_to_the_masked_pan(pan: str) -> None:
    assert scrub(f"{pan}=28121010000000000") == f"{mask_pan(pan)}=****"


def test_numbers_typed_with_spaces_are_caught() -> None:
    assert contains_card_data("4111 1111 1111 1111")
    assert not contains_card_data("receipt L01-000123 total 12.30")


def test_a_hex_id_with_a_luhn_valid_digit_run_is_left_whole() -> None:
    # A real uuid4 hex seen corrupted in the audit trail before ids were exempt.
    sale_id = "35debd20e481457288846355189dfd66"
    assert luhn_valid("481457288846355189")
    assert scrub(f"sale:{sale_id}") == f"sale:{sale_id}"
    assert not contains_card_data(sale_id)


def test_a_card_number_next_to_a_hex_id_is_still_masked() -> None:
    sale_id = "35debd20e481457288846355189dfd66"
    text = f"sale {sale_id} card 6228480402564890018 again {sale_id}"
    assert scrub(text) == f"sale {sale_id} card 622848*********0018 again {sale_id}"
    # Glued to letters it is not an id: the run inside is masked as before.
    assert scrub("x" + sale_id) != "x" + sale_id
