"""Card-data hygiene (DESIGN.md section 7): Luhn check, masking and scrubbing of free text.

shouyin never stores or logs a full card number (PAN), track data, PIN or CVV; the only card
number form kept anywhere is first 6 + ``*`` + last 4. Card numbers arrive masked from the
terminal, and the sale refuses a full one; this module covers what people type: a card number
typed into a user name is refused, and one typed into a free-text reason is masked.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["contains_card_data", "luhn_valid", "mask_pan", "scrub"]

_PAN: Final = re.compile(r"^[0-9]{13,19}$")
# Track 2: PAN, separator (= or D), expiry YYMM, then service code and discretionary data.
_TRACK2: Final = re.compile(r"(?<![0-9])([0-9]{13,19})[=D][0-9]{4}[0-9A-Za-z]*")
# A run of 13-19 digits; then the same grouped by single spaces or dashes as people type them.
# Contiguous runs go first, so that grouping cannot merge a card number with a neighbouring
# number into one long run that fails the Luhn check and slips through.
_DIGIT_RUN: Final = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")
_GROUPED_RUN: Final = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")
# shouyin's own ids (sale, payment, ecr_ref...) are uuid4 hex: 32 lowercase hex characters. About
# one in 200 holds a Luhn-valid run of 13+ digits by chance ("…e481457288846355189d…"); masking
# it would corrupt the id in the audit trail and the logs. A whole 32-character hex token can
# never be a card number (at most 19 digits), so such tokens are left as they are.
_HEX_ID: Final = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z])")


def luhn_valid(number: str) -> bool:
    """Whether ``number`` (ASCII digits only) passes the Luhn (mod 10) check."""
    if not number.isascii() or not number.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def mask_pan(pan: str) -> str:
    """First 6 + one ``*`` per hidden digit + last 4, e.g. ``622848*********0018``.

    Raises:
        ValueError: ``pan`` is not 13-19 ASCII digits (the value is not echoed).
    """
    if not _PAN.fullmatch(pan):
        raise ValueError("not a 13-19 digit card number")
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def _digits(run: str) -> str:
    return run.replace(" ", "").replace("-", "")


def _mask_run(match: re.Match[str]) -> str:
    digits = _digits(match.group(0))
    return mask_pan(digits) if luhn_valid(digits) else match.group(0)


def scrub(text: str) -> str:
    """Mask card data in free text: track-2 strings and Luhn-valid 13-19 digit numbers (but
    never inside one of shouyin's 32-character hex ids).

    Returns:
        ``text`` with each card number replaced by its masked form and each track 2 by its
        masked PAN followed by ``=****``.
    """
    if _HEX_ID.search(text):
        pieces = _HEX_ID.split(text)
        ids = _HEX_ID.findall(text)
        return "".join(
            _scrub_piece(piece) + (ids[i] if i < len(ids) else "") for i, piece in enumerate(pieces)
        )
    return _scrub_piece(text)


def _scrub_piece(text: str) -> str:
    text = _TRACK2.sub(lambda m: mask_pan(m.group(1)) + "=****", text)
    text = _DIGIT_RUN.sub(_mask_run, text)
    return _GROUPED_RUN.sub(_mask_run, text)


def contains_card_data(text: str) -> bool:
    """Whether ``text`` holds a track-2 string or a Luhn-valid 13-19 digit number."""
    return scrub(text) != text
