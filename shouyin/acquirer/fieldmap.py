"""How typed messages map to ISO 8583 fields: the :class:`F` marker, the :class:`IsoMessage`
base with its generic ``to_fields``/``from_fields``, and the constrained scalar types.

Each model declares where its attributes live with :class:`F` metadata: a whole field
(``F("4", 12)``: field 4, an int zero-padded to 12 digits), a slice of a composite field
(``F("60", 3, start=6)``), or a tag of a TLV field (``F("48", tag="AC")``). Constant fields (the
processing code of a request kind, currency 156, condition code 00) are class-level
``CONSTANTS``. The dictionaries are those of :mod:`shouyin.acquirer.iso`; field 64 (MAC) is added
and checked by :mod:`shouyin.acquirer.mac`, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shouyin.acquirer.codes import EntryMode
from shouyin.acquirer.errors import IsoFormatError
from shouyin.acquirer.iso import tlv_decode, tlv_encode

__all__ = [
    "ApprovalCode",
    "Batch",
    "Code2",
    "Date4",
    "F",
    "Fen",
    "IsoMessage",
    "Kcv",
    "MerchantId",
    "Proc",
    "Rrn",
    "TerminalId",
    "Time6",
    "Trace",
    "entry_mode",
    "local_stamp",
]


@dataclass(frozen=True, slots=True)
class F:
    """Where a model attribute lives in the ISO message.

    Attributes:
        field: the field number.
        width: digits of a zero-padded int, or the width of a slice.
        start: offset of a slice in a composite field (60, 61).
        tag: TLV tag in field 48 or 62.
        binary: bytes carried as hex (fields 52, 62 wrapped keys).
        parser: turns the field text into the attribute value (field 63 totals).
        encoder: turns the attribute value into the field text (field 63 totals).
    """

    field: str
    width: int | None = None
    start: int | None = None
    tag: str | None = None
    binary: bool = False
    parser: Callable[[str], Any] | None = None
    encoder: Callable[[Any], str] | None = None

    def encode(self, value: object) -> str:
        """The field text of an attribute value."""
        if self.encoder is not None:
            return self.encoder(value)
        if isinstance(value, bytes):
            return value.hex().upper()
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:0{self.width}d}" if self.width else str(value)
        return str(value)

    def decode(self, text: str) -> object:
        """The raw attribute value of a field text (pydantic validates it further)."""
        if self.parser is not None:
            return self.parser(text)
        if self.binary:
            try:
                return bytes.fromhex(text)
            except ValueError:
                raise IsoFormatError(self.field, "not hex") from None
        return text


def local_stamp(now: datetime) -> tuple[str, str]:
    """Fields 12 and 13 for ``now``.

    Args:
        now: the local time.

    Returns:
        ``(hhmmss, MMDD)``.
    """
    return now.strftime("%H%M%S"), now.strftime("%m%d")


def entry_mode(mode: EntryMode, with_pin: bool) -> str:
    """Field 22 for an entry mode.

    Args:
        mode: how the card or code was read.
        with_pin: whether field 52 carries a PIN block.

    Returns:
        Three digits.
    """
    return mode.value + ("1" if with_pin else "2")


Trace = Annotated[int, Field(ge=0, le=999_999)]
Batch = Annotated[int, Field(ge=0, le=999_999)]
Fen = Annotated[int, Field(ge=0, le=999_999_999_999)]
Time6 = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
Date4 = Annotated[str, Field(pattern=r"^[0-9]{4}$")]
TerminalId = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{8}$")]
MerchantId = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{15}$")]
Rrn = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{12}$")]
ApprovalCode = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{6}$")]
Code2 = Annotated[str, Field(pattern=r"^[0-9A-Z]{2}$")]
Proc = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
Kcv = Annotated[str, Field(pattern=r"^[0-9A-F]{6}$")]


class IsoMessage(BaseModel):
    """Base of every message: immutable; attributes mapped to fields by :class:`F` metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    MTI: ClassVar[str]
    CONSTANTS: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def _places(cls) -> list[tuple[str, F]]:
        places = []
        for name, info in cls.model_fields.items():
            place = next((item for item in info.metadata if isinstance(item, F)), None)
            if place is not None:
                places.append((name, place))
        return places

    def to_fields(self) -> dict[str, str]:
        """The message as ``{"t": MTI, field: text}`` (no field 64).

        Returns:
            The fields, ready for :func:`shouyin.acquirer.mac.sign` or
            :func:`shouyin.acquirer.iso.pack`.
        """
        fields: dict[str, str] = {"t": str(self.MTI)}
        fields.update((number, str(value)) for number, value in self.CONSTANTS.items())
        slices: dict[str, list[tuple[int, str]]] = {}
        tagged: dict[str, dict[str, str]] = {}
        for name, place in self._places():
            value = getattr(self, name)
            if value is None:
                continue
            text = place.encode(value)
            if place.tag is not None:
                tagged.setdefault(place.field, {})[place.tag] = text
            elif place.start is not None:
                slices.setdefault(place.field, []).append((place.start, text))
            else:
                fields[place.field] = text
        for number, parts in slices.items():
            fields[number] = "".join(text for _, text in sorted(parts))
        for number, items in tagged.items():
            fields[number] = tlv_encode(items)
        return dict(sorted(fields.items(), key=lambda item: -1 if item[0] == "t" else int(item[0])))

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Self:
        """Build the model from decoded fields.

        Args:
            fields: as returned by :func:`shouyin.acquirer.iso.unpack` (field 64 is ignored).

        Returns:
            The validated message.

        Raises:
            IsoFormatError: wrong MTI, a constant field with another value, a missing mandatory
                field or an invalid value (the error names the field, never the value).
        """
        if fields.get("t") != cls.MTI:
            raise IsoFormatError("t", f"expected MTI {cls.MTI}")
        for number, expected in cls.CONSTANTS.items():
            if fields.get(number) != expected:
                raise IsoFormatError(number, f"expected {expected}")
        values: dict[str, object] = {}
        tlvs: dict[str, dict[str, str]] = {}
        field_of: dict[str, str] = {}
        for name, place in cls._places():
            field_of[name] = place.field
            text = fields.get(place.field)
            if text is None:
                continue
            if place.tag is not None:
                if place.field not in tlvs:
                    tlvs[place.field] = tlv_decode(text, place.field)
                text = tlvs[place.field].get(place.tag)
            elif place.start is not None:
                text = text[place.start : place.start + (place.width or len(text))] or None
            if text is not None:
                values[name] = place.decode(text)
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            first = error.errors(include_input=False, include_url=False)[0]
            name = str(first["loc"][0]) if first["loc"] else ""
            raise IsoFormatError(field_of.get(name, ""), f"{name}: {first['msg']}") from None
