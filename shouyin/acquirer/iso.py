"""The ISO 8583 (1987) dialect spoken between the simulated terminal and the acquirer simulator.

Encoding is done by ``pyiso8583`` (module :mod:`iso8583`) with :data:`SPEC`, which starts from
``iso8583.specs.default_ascii`` and changes what a Chinese POS host expects to be binary:

* MTI: 4 ASCII digits; primary bitmap: **8 binary bytes** (a secondary bitmap is refused: every
  field we use is below 64, and the MAC must be the last field);
* fields in ASCII, numeric fields zero-padded, variable fields with ASCII length prefixes
  (``LL``/``LLL``);
* field 52 (PIN block) **16 binary bytes** (an AES ISO 9564 format-4 block; the 1987 standard
  has 8 for DES) and field 64 (MAC) **8 binary bytes**.

Fields used (``n`` numeric, ``an`` alphanumeric, ``z`` track, ``b`` binary bytes)::

     2 PAN                    n..19  LLVAR   card sale (or in track 2 only)
     3 processing code        n6             see shouyin.acquirer.codes
     4 amount                 n12            fen, zero padded (12.34 yuan = 000000001234)
    11 trace (STAN)           n6             terminal's trace number (凭证号)
    12 local time             n6             hhmmss of the terminal
    13 local date             n4             MMDD of the terminal
    14 expiry                 n4             YYMM
    22 POS entry mode         n3             01x manual 02x swipe 03x QR 05x chip 07x contactless;
                                             x = 1 PIN block included, 2 no PIN
    25 POS condition code     n2             00 normal
    35 track 2                z..37  LLVAR   PAN=YYMM + service code + discretionary data
    37 RRN                    an12           host's retrieval reference number (参考号)
    38 auth code              an6            host's approval code (授权码)
    39 response code          an2            shouyin.acquirer.codes.ResponseCode
    41 terminal id            ans8           (终端号)
    42 merchant id            ans15          (商户号)
    48 additional data        ans..512 LLLVAR  tag-length-value, see :func:`tlv_encode`
    49 currency               n3             156 (CNY)
    52 PIN block              b16            AES format 4 under the PIN key (PIK)
    60 batch [+ net code]     n6[+n3] LLLVAR  batch number (批次号), then the 0800 net code
    61 original data          n12[+n4] LLLVAR original batch + trace [+ MMDD] (void, refund)
    62 working keys           ans..512 LLLVAR TLV in 0810: wrapped MAK/PIK and check values
    63 batch totals           ans..512 LLLVAR see shouyin.acquirer.messages.BatchTotals
    64 MAC                    b8             AES-CMAC, see shouyin.acquirer.mac

Field 48 and 62 carry ``TAG(2) LEN(3) VALUE`` items; tags used:

    AC customer payment code (付款码)   WL wallet           WS wallet order status
    OI wallet order id                  QP QR payload to show ST ledger status (query)
    RC original response code (query)   KD original kind      MP masked PAN (query)
    MK MAK wrapped under TMK (hex)      MC MAK check value    PK PIK wrapped   PC PIK check value

On the TCP link each message travels as ``LEN(2, big-endian) | TPDU(5) | message``
(see :mod:`shouyin.acquirer.framing`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, Final

import iso8583
from iso8583.specs import default_ascii

from shouyin.acquirer.errors import IsoFormatError, LocalAcquirerError

__all__ = [
    "MAC_FIELD",
    "SPEC",
    "USED_FIELDS",
    "pack",
    "tlv_decode",
    "tlv_encode",
    "unpack",
]

MAC_FIELD: Final = "64"


def _fixed_binary(length: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": length, "desc": desc}


def _lllvar(max_len: int, desc: str) -> dict[str, Any]:
    return {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 3,
        "max_len": max_len,
        "desc": desc,
    }


def _build_spec() -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = copy.deepcopy(dict(default_ascii))
    spec["p"] = _fixed_binary(8, "Bitmap, Primary")
    spec["1"] = _fixed_binary(8, "Bitmap, Secondary")
    spec["48"] = _lllvar(512, "Additional Data - Private (TLV)")
    spec["52"] = _fixed_binary(16, "PIN Block (AES, ISO 9564 format 4)")
    spec["60"] = _lllvar(9, "Batch Number [+ Network Management Code]")
    spec["61"] = _lllvar(16, "Original Batch + Trace [+ Date]")
    spec["62"] = _lllvar(512, "Working Keys (TLV)")
    spec["63"] = _lllvar(512, "Batch Totals")
    spec["64"] = _fixed_binary(8, "MAC (AES-CMAC, truncated)")
    return spec


SPEC: Final[dict[str, dict[str, Any]]] = _build_spec()
"""The pyiso8583 specification of this dialect (see the module docstring)."""

USED_FIELDS: Final = frozenset(
    str(number) for number in (2, 3, 4, 11, 12, 13, 14, 22, 25, 35, 37, 38, 39, 41, 42, 48, 49)
) | frozenset(str(number) for number in (52, 60, 61, 62, 63, 64))
"""The data fields this dialect knows; any other field is a format error."""

_NUMERIC_FIELDS: Final = frozenset(["2", "3", "4", "11", "12", "13", "14", "22", "25", "49"])
_DIGITS = re.compile(r"^[0-9]*$")


def pack(fields: Mapping[str, str]) -> bytes:
    """Encode a message given as ``{"t": MTI, "3": ..., ...}`` (values as decoded strings,
    binary fields as hex).

    Args:
        fields: the MTI under ``"t"`` and data fields by number; field 64, if present, should be
            a placeholder the caller overwrites (see :func:`shouyin.acquirer.mac.sign`).

    Returns:
        The encoded message (MTI, bitmap, fields), without framing.

    Raises:
        LocalAcquirerError: a field unknown to the dialect or a value that does not fit.
    """
    unknown = set(fields) - USED_FIELDS - {"t"}
    if unknown:
        raise LocalAcquirerError(f"fields not in the dialect: {sorted(unknown, key=int)}")
    try:
        data, _ = iso8583.encode(dict(fields), SPEC)
    except iso8583.EncodeError as error:
        raise LocalAcquirerError(
            f"cannot encode field {error.field}: {error.msg}"
        ) from None  # the original carries the values
    return bytes(data)


def unpack(data: bytes) -> dict[str, str]:
    """Decode one message into ``{"t": MTI, "3": ..., ...}`` (binary fields as upper-case hex).

    Args:
        data: one message, without framing.

    Returns:
        The fields by number, plus ``"t"``; the bitmap is not included.

    Raises:
        IsoFormatError: undecodable, a secondary bitmap, an unknown field, or a numeric field
            holding something else than digits.
    """
    try:
        decoded, _ = iso8583.decode(data, SPEC)
    except iso8583.DecodeError as error:
        # error.s and error.doc_dec hold the raw message: never chain them into a traceback.
        raise IsoFormatError(error.field, error.msg, error.pos) from None
    if "1" in decoded:
        raise IsoFormatError("1", "secondary bitmap not allowed")
    fields = {key: value for key, value in decoded.items() if key != "p"}
    unknown = set(fields) - USED_FIELDS - {"t"}
    if unknown:
        raise IsoFormatError(str(min(int(key) for key in unknown)), "field not in the dialect")
    if not fields["t"].isdigit():
        raise IsoFormatError("t", "MTI must be 4 digits")
    for key in _NUMERIC_FIELDS & fields.keys():
        if not _DIGITS.fullmatch(fields[key]):
            raise IsoFormatError(key, "numeric field holds non-digits")
    return fields


_TAG = re.compile(r"^[A-Z0-9]{2}$")


def tlv_encode(items: Mapping[str, str]) -> str:
    """Encode private-field items as ``TAG(2) LEN(3) VALUE`` repeated, in the given order.

    Args:
        items: tag (2 upper-case letters or digits) to printable ASCII value (at most 999).

    Returns:
        The field value.

    Raises:
        LocalAcquirerError: a bad tag or a value too long or not printable ASCII.
    """
    parts: list[str] = []
    for tag, value in items.items():
        if not _TAG.fullmatch(tag):
            raise LocalAcquirerError(f"bad TLV tag {tag!r}")
        if len(value) > 999 or not (value.isascii() and value.isprintable()):
            raise LocalAcquirerError(f"TLV value of {tag} is too long or not printable ASCII")
        parts.append(f"{tag}{len(value):03d}{value}")
    return "".join(parts)


def tlv_decode(text: str, field: str = "48") -> dict[str, str]:
    """Decode a ``TAG(2) LEN(3) VALUE`` field.

    Args:
        text: the field value.
        field: the field number, for error reports.

    Returns:
        Values by tag (a repeated tag keeps its last value).

    Raises:
        IsoFormatError: a truncated item, a bad tag or a bad length.
    """
    items: dict[str, str] = {}
    position = 0
    while position < len(text):
        head = text[position : position + 5]
        if len(head) < 5 or not _TAG.fullmatch(head[:2]) or not head[2:].isdigit():
            raise IsoFormatError(field, f"bad TLV item header at offset {position}")
        length = int(head[2:])
        value = text[position + 5 : position + 5 + length]
        if len(value) != length:
            raise IsoFormatError(field, f"truncated TLV item {head[:2]}")
        items[head[:2]] = value
        position += 5 + length
    return items
