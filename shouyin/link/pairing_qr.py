"""The pairing QR code: where to connect, the one-time code, and the store CA's fingerprint.

When the admin registers a terminal, the cashier system shows the 8-digit pairing code and a QR
code holding a :class:`PairingPayload`. Scanning it saves typing the address and the code, and
lets the terminal check the store CA it receives at the end of pairing against a fingerprint it
got out of band (on top of the PAKE's own MAC over that certificate).

Text encoding, version 1 (what the QR code contains)::

    shouyin-pair:v1?a=<address>&p=<port>&c=<code>&f=<fingerprint>

    a  IPv4 address, IPv6 address (compressed form, no brackets, no zone id) or an ASCII host
       name (letters, digits, hyphens, dots; lower case; the last label not all digits, so that
       "10.1.1" can never be mistaken for an address); the only percent-encoded character is "%"
    p  TCP port, 1-65535, decimal without leading zeros
    c  the pairing code: exactly 8 ASCII digits
    f  SHA-256 fingerprint of the store CA certificate (DER): 64 lowercase hex digits, see
       :func:`shouyin.link.pki.certificate_fingerprint`

The writer always emits the keys in this order, so one payload has exactly one text. The reader
accepts them in any order, but each exactly once, and refuses unknown keys: a new field means a
new version (``v2``), which a v1 reader refuses with a clear "unsupported version" error rather
than half-understanding it. A typical payload is about 120 ASCII characters: a version 6 QR code
(41 x 41 modules) at error correction level M.

The pairing code is a secret for its ten minutes of life: ``repr`` of the payload hides it and
parse errors never quote it; the QR code itself is shown only on the admin's screen.
"""

from __future__ import annotations

import io
import ipaddress
import re
from typing import Any

import segno
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shouyin.link.errors import LinkError

__all__ = [
    "PAYLOAD_PREFIX",
    "PAYLOAD_SCHEME",
    "PairingPayload",
    "PairingPayloadError",
    "encode_payload",
    "make_qr",
    "parse_payload",
    "to_png_bytes",
    "to_terminal_text",
]

PAYLOAD_SCHEME = "shouyin-pair"
"""The scheme every pairing QR text starts with."""
PAYLOAD_PREFIX = f"{PAYLOAD_SCHEME}:v1?"
"""The exact start of a version 1 payload text."""

_KEYS = {"a": "address", "p": "port", "c": "code", "f": "fingerprint"}
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[1-9][0-9]{0,4}$")
_CODE = re.compile(r"^[0-9]{8}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_MAX_TEXT = 512


class PairingPayloadError(LinkError):
    """A pairing QR text (or payload field) is not valid.

    Attributes:
        field: ``"text"``, ``"version"`` or the field name (``"address"``, ``"port"``, ``"code"``,
            ``"fingerprint"``).
        reason: what is wrong (never the offending value: it might be the code).
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid pairing QR payload, {field}: {reason}")
        self.field = field
        self.reason = reason


def _normalise_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            raise ValueError("an IPv6 zone id is not allowed")
        return str(address)
    host = value.lower()
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if (
        not host
        or len(host) > 253
        or not host.isascii()
        or not all(_HOST_LABEL.fullmatch(label) for label in labels)
    ):
        raise ValueError("not an IP address or an ASCII host name")
    if labels[-1].isdigit():
        raise ValueError("a host name's last label cannot be all digits")
    return host


class PairingPayload(BaseModel):
    """What the pairing QR code says: ``{address, port, code, fingerprint}``.

    Attributes:
        address: IP address or host name of the cashier system, normalised (compressed IPv6,
            lower-case host name without a trailing dot).
        port: the link's TCP port.
        code: the one-time 8-digit pairing code (hidden from ``repr``).
        fingerprint: SHA-256 of the store CA certificate, 64 lowercase hex digits.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(max_length=253)
    port: int = Field(strict=True, ge=1, le=65535)
    code: str = Field(pattern=r"^[0-9]{8}$", repr=False)
    fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return _normalise_address(value)

    def to_text(self) -> str:
        """The version 1 text encoding (see :func:`encode_payload`)."""
        return encode_payload(self)

    @classmethod
    def from_text(cls, text: str) -> PairingPayload:
        """Parse a QR text (see :func:`parse_payload`)."""
        return parse_payload(text)


def encode_payload(payload: PairingPayload) -> str:
    """Encode a payload as ``shouyin-pair:v1?a=...&p=...&c=...&f=...``.

    Args:
        payload: the payload.

    Returns:
        The canonical text.
    """
    # Addresses and host names are [0-9a-z.:-] after validation: nothing needs escaping.
    return (
        f"{PAYLOAD_PREFIX}a={payload.address}&p={payload.port}"
        f"&c={payload.code}&f={payload.fingerprint}"
    )


def _split(text: str) -> dict[str, str]:
    if len(text) > _MAX_TEXT:
        raise PairingPayloadError("text", f"longer than {_MAX_TEXT} characters")
    head, separator, query = text.strip().partition("?")
    scheme, _, version = head.partition(":")
    if scheme.lower() != PAYLOAD_SCHEME:
        raise PairingPayloadError("text", "not a shouyin pairing code")
    if version != "v1":
        raise PairingPayloadError("version", "unsupported version (this reader knows v1)")
    if not separator or not query:
        raise PairingPayloadError("text", "no fields")
    fields: dict[str, str] = {}
    for part in query.split("&"):
        key, equals, value = part.partition("=")
        if not equals:
            raise PairingPayloadError("text", "a field without '='")
        if key not in _KEYS:
            raise PairingPayloadError("text", "unknown field")
        name = _KEYS[key]
        if name in fields:
            raise PairingPayloadError(name, "given twice")
        if "%" in value:
            raise PairingPayloadError(name, "percent-encoding is not used in v1")
        fields[name] = value
    for name in _KEYS.values():
        if name not in fields:
            raise PairingPayloadError(name, "missing")
    return fields


def parse_payload(text: str) -> PairingPayload:
    """Parse the text of a scanned pairing QR code.

    Args:
        text: the scanned text.

    Returns:
        The payload (an upper-case fingerprint is accepted and lower-cased).

    Raises:
        PairingPayloadError: not a shouyin pairing code, another version, a missing, repeated or
            unknown field, or an invalid value; ``field`` says which.
    """
    fields = _split(text)
    if not _PORT.fullmatch(fields["port"]) or not 1 <= int(fields["port"]) <= 65535:
        raise PairingPayloadError("port", "must be a decimal number 1-65535")
    if not _CODE.fullmatch(fields["code"]):
        raise PairingPayloadError("code", "must be exactly 8 digits")
    fingerprint = fields["fingerprint"].lower()
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise PairingPayloadError("fingerprint", "must be 64 hex digits")
    values: dict[str, Any] = {
        "address": fields["address"],
        "port": int(fields["port"]),
        "code": fields["code"],
        "fingerprint": fingerprint,
    }
    try:
        return PairingPayload(**values)
    except ValidationError as error:
        first = error.errors()[0]
        location = str(first["loc"][0]) if first["loc"] else "text"
        reason = str(first.get("ctx", {}).get("error", first["msg"]))
        raise PairingPayloadError(location, reason) from None


def make_qr(payload: PairingPayload) -> segno.QRCode:
    """The QR code symbol (error correction level M, or higher if it fits in the same size).

    Args:
        payload: the payload.

    Returns:
        A ``segno.QRCode``.
    """
    return segno.make_qr(encode_payload(payload), error="m")


def to_png_bytes(payload: PairingPayload, scale: int = 8, border: int = 4) -> bytes:
    """Render the pairing QR code as a PNG image (black on white).

    Args:
        payload: the payload.
        scale: pixels per module (at least 1).
        border: quiet zone in modules (the standard asks for 4).

    Returns:
        The PNG file's bytes.

    Raises:
        ValueError: ``scale`` below 1 or a negative border.
    """
    if scale < 1 or border < 0:
        raise ValueError("scale must be >= 1 and border >= 0")
    buffer = io.BytesIO()
    make_qr(payload).save(buffer, kind="png", scale=scale, border=border)
    return buffer.getvalue()


_HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


def to_terminal_text(payload: PairingPayload, border: int = 2, dark_background: bool = True) -> str:
    """Render the pairing QR code as text for a terminal, two modules per character cell.

    Each character covers one module column and two module rows with the Unicode half blocks
    ``▀ ▄ █`` and space. Scanners need dark modules on a light background: on a terminal with a
    dark background (the usual case, ``dark_background=True``) the blocks, drawn in the light
    foreground colour, therefore stand for the *light* modules and the quiet zone; on a light
    background they stand for the dark modules.

    Args:
        payload: the payload.
        border: quiet zone in modules (2 keeps it compact and scans well on screens).
        dark_background: whether the terminal draws light text on a dark background.

    Returns:
        The lines of the symbol, each ending with a newline.

    Raises:
        ValueError: a negative border.
    """
    if border < 0:
        raise ValueError("border must be >= 0")
    rows = [
        [bool(module) != dark_background for module in row]
        for row in make_qr(payload).matrix_iter(scale=1, border=border)
    ]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))  # below the symbol: background, no ink
    lines = [
        "".join(_HALF_BLOCKS[top, bottom] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(rows[0::2], rows[1::2], strict=True)
    ]
    return "".join(f"{line}\n" for line in lines)
