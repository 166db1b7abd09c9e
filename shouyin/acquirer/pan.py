"""Card-number hygiene for the acquirer: the shared helpers plus a scrubbed logger per module.

Luhn, masking and scrubbing live in :mod:`shouyin.domain.carddata` and the log filter in
:mod:`shouyin.logs`; they are re-exported here for the acquirer's modules.

The acquirer sees full card numbers (field 2) and track 2 (field 35) on the wire. Nothing
else may: the ledger keeps :func:`mask_pan` only (first 6 + ``*`` + last 4), and every logger of
this package carries :class:`PanScrubber`, which rewrites any record before it reaches a
handler:

* a track-2-like string (``PAN=YYMM...`` or ``PAN D YYMM...``) becomes ``masked=****``;
* any other 13-19 digit run that passes the Luhn check becomes its masked form.

Logger filters apply only to records logged *on that logger*, not on its children, so every
module gets its logger from :func:`get_logger`, which attaches the filter.
"""

from __future__ import annotations

import logging
from typing import Final

from shouyin.domain.carddata import luhn_valid, mask_pan, scrub
from shouyin.logs import PanScrubber

__all__ = [
    "PanScrubber",
    "get_logger",
    "luhn_check_digit",
    "luhn_valid",
    "mask_pan",
    "scrub",
]


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` Luhn-valid.

    Args:
        partial: the digits without their check digit.

    Returns:
        One digit.
    """
    return next(digit for digit in "0123456789" if luhn_valid(partial + digit))


_SCRUBBER: Final = PanScrubber()


def get_logger(name: str) -> logging.Logger:
    """The module logger ``name`` with the card-data scrubber attached (once).

    Args:
        name: the logger name (``__name__``).

    Returns:
        The logger.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(existing, PanScrubber) for existing in logger.filters):
        logger.addFilter(_SCRUBBER)
    return logger
