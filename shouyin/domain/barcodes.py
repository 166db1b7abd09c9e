"""Barcodes: GS1 check digits, GTIN normalisation and configurable in-store scale barcodes.

A scanner types digits; :func:`parse_scan` decides what they mean. Shops use two kinds of code:

* **GTINs** printed by the manufacturer: EAN-13, EAN-8 and UPC-A (12 digits, the same number as
  the EAN-13 with a leading ``0``). They are normalised to one canonical text so the catalogue
  needs a single dictionary lookup: EAN-13 and EAN-8 stay as they are, UPC-A becomes 13 digits.
* **Scale (in-store) barcodes** printed by the store's own scales, prefix 20-29. Their digits
  follow a pattern the store configures, like a barcode nomenclature in Odoo's POS::

      FFWWWWWEEEEEC        F flag/prefix, W item code (PLU), E amount in fen, C check digit
      FFWWWWWEEEEENNNNNC   the 18-digit form with the net weight in grams (N) too

  ``X`` marks a digit to ignore (several scales put a price check digit there).

Checking order of :func:`parse_scan` (deterministic; the first failing step raises):

1. strip surrounding whitespace; refuse anything that is not ASCII digits ``0-9``;
2. a 12-digit code is read as its 13-digit EAN form (``"0" + code``) from here on, so a UPC-A
   variable-measure code (EAN prefix ``02``) can be configured like any other scale format;
3. if the length and the leading ``F`` digits match a scale format, the code *is* a scale code:
   its check digit ``C`` (GS1 mod-10 over all previous digits) must be right, or the scan is
   refused; it never falls back to being a GTIN;
4. otherwise the code must be a GTIN: 8, 12 or 13 digits with a correct check digit. An in-store
   prefix (2x) that matches no scale format is a plain store GTIN.

A nomenclature refuses two formats of one length whose prefixes overlap (``"2"`` and ``"25"``, or
``"25"`` twice), so at most one format can match a code and the order of formats never matters.

PLUs are compared in canonical form, without leading zeros (:func:`normalise_plu`): a scale
programmed with item 123 prints ``00123`` in a five-digit field and ``0123`` in a four-digit one,
and both must find the product whose PLU is ``123``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from typing import Final, TypeAlias

from shouyin.domain.errors import InvalidBarcode, InvalidNomenclature, ScaleEncodingError
from shouyin.domain.money import Money

__all__ = [
    "GTIN_LENGTHS",
    "SCALE_CODE_LENGTHS",
    "GtinScan",
    "Nomenclature",
    "ScaleFormat",
    "ScaleScan",
    "Scan",
    "gtin_check_digit",
    "has_valid_check_digit",
    "normalise_gtin",
    "normalise_plu",
    "parse_scan",
]

GTIN_LENGTHS: Final = (8, 12, 13)
SCALE_CODE_LENGTHS: Final = (13, 18)
_PATTERN_LETTERS: Final = frozenset("FWENCX")
_IN_STORE_PREFIXES: Final = frozenset(f"{n}" for n in range(20, 30))
_MAX_PREFIX_RANGE: Final = 10_000


def _is_digits(text: str) -> bool:
    # str.isdigit alone accepts "²" and full-width digits, which int() would then misread.
    return text.isascii() and text.isdigit()


# -- GTINs ------------------------------------------------------------------------------------


def gtin_check_digit(body: str) -> int:
    """Compute the GS1 mod-10 check digit for a code body of any length.

    The rightmost body digit has weight 3, the next weight 1, and so on leftwards, so the same
    function serves EAN-8, UPC-A, EAN-13, GTIN-14 and 18-digit scale codes.

    Args:
        body: the digits before the check digit.

    Returns:
        The check digit, 0-9.

    Raises:
        InvalidBarcode: if ``body`` is empty or not all ASCII digits.
    """
    if not _is_digits(body):
        raise InvalidBarcode(body, "check digit body must be one or more digits 0-9")
    return _check_digit(body)


def _check_digit(body: str) -> int:
    # Callers have checked that body is ASCII digits. Summing the bytes and subtracting 48 ("0")
    # per digit is ~3x faster than int() per character, and this runs on every scan.
    reverse = body.encode("ascii")[::-1]
    weight_3, weight_1 = reverse[0::2], reverse[1::2]
    weighted = 3 * sum(weight_3) + sum(weight_1) - 48 * (3 * len(weight_3) + len(weight_1))
    return -weighted % 10


def has_valid_check_digit(code: str) -> bool:
    """Tell whether the last digit of ``code`` is the GS1 check digit of the digits before it.

    Args:
        code: two or more ASCII digits (any GS1 length).

    Returns:
        True if the check digit is right; False otherwise, including for non-digits.
    """
    if len(code) < 2 or not _is_digits(code):
        return False
    return _check_digit(code[:-1]) == ord(code[-1]) - 48


def _checked(digits: str, original: str) -> None:
    """Refuse a wrong check digit; ``digits`` are known to be ASCII digits."""
    expected = _check_digit(digits[:-1])
    if ord(digits[-1]) - 48 != expected:
        raise InvalidBarcode(original, f"check digit should be {expected}")


def _gtin_from_digits(digits: str, original: str) -> str:
    """Validate and normalise a GTIN; ``digits`` are known to be ASCII digits."""
    length = len(digits)
    if length != 13 and length != 8 and length != 12:  # noqa: PLR1714 - cheaper than a tuple
        raise InvalidBarcode(original, f"must be 8, 12 or 13 digits, got {length}")
    _checked(digits, original)
    return "0" + digits if length == 12 else digits


def _digits_of(code: str) -> str:
    digits = code.strip()
    # isascii() first: str.isdigit alone accepts "²" and full-width digits.
    if digits.isascii() and digits.isdigit():
        return digits
    raise InvalidBarcode(code, "is empty" if not digits else "must contain only digits 0-9")


def normalise_gtin(code: str) -> str:
    """Validate a manufacturer barcode and return its canonical form.

    Args:
        code: an EAN-13, EAN-8 or UPC-A code; surrounding whitespace is ignored.

    Returns:
        The EAN-13 or EAN-8 digits unchanged; a UPC-A as its 13-digit EAN form (``"0" + code``).

    Raises:
        InvalidBarcode: for non-digits, a length other than 8, 12 or 13, or a wrong check digit;
            the reason says which (e.g. ``"check digit should be 7"``).
    """
    return _gtin_from_digits(_digits_of(code), code)


def normalise_plu(plu: str) -> str:
    """Return the canonical form of a PLU (scale item code): its digits without leading zeros.

    Args:
        plu: the item code, e.g. ``"00123"``; surrounding whitespace is ignored.

    Returns:
        The PLU without leading zeros (``"123"``); ``"0"`` for all zeros.

    Raises:
        InvalidBarcode: if the PLU is empty or not all ASCII digits.
    """
    digits = plu.strip()
    if not _is_digits(digits):
        raise InvalidBarcode(plu, "a PLU must be one or more digits 0-9")
    return digits.lstrip("0") or "0"


# -- scan results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GtinScan:
    """A scanned manufacturer or store GTIN, normalised (see :func:`normalise_gtin`)."""

    gtin: str

    @property
    def code(self) -> str:
        """The normalised code, named like :attr:`ScaleScan.code` so either scan has one."""
        return self.gtin


@dataclass(frozen=True, slots=True)
class ScaleScan:
    """A scanned in-store scale barcode.

    Attributes:
        code: the code as 13 or 18 digits (a 12-digit UPC-A scan is given its leading ``0``).
        plu: the item code in canonical form (see :func:`normalise_plu`).
        amount: the price printed into the code (``E`` digits), if the format has one.
        grams: the net weight printed into the code (``N`` digits), if the format has one.
    """

    code: str
    plu: str
    amount: Money | None
    grams: int | None


Scan: TypeAlias = GtinScan | ScaleScan


# -- scale formats ----------------------------------------------------------------------------


def _spec_prefixes(prefixes: frozenset[str]) -> str:
    """Write prefixes compactly: consecutive numbers of one width as ranges (``20-24,27``)."""
    ordered = sorted(prefixes, key=lambda p: (len(p), int(p)))
    parts: list[str] = []
    # Consecutive prefixes of one width share (width, value - position): group by that.
    for _, run_iter in groupby(enumerate(ordered), key=lambda ip: (len(ip[1]), int(ip[1]) - ip[0])):
        run = [p for _, p in run_iter]
        parts.append(run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def _group_span(pattern: str, letter: str) -> slice | None:
    """Return the slice of ``letter``'s one contiguous run in ``pattern``, or None if absent."""
    start = pattern.find(letter)
    if start < 0:
        return None
    stop = pattern.rfind(letter) + 1
    if pattern[start:stop] != letter * (stop - start):
        raise InvalidNomenclature(pattern, f"the {letter} digits must be one contiguous group")
    return slice(start, stop)


@dataclass(frozen=True, slots=True)
class ScaleFormat:
    """One scale-barcode layout and the prefixes that select it.

    Pattern letters: ``F`` flag/prefix digits (leading), ``W`` item code (PLU), ``E`` amount in
    fen, ``N`` net weight in grams, ``X`` a digit to ignore, ``C`` the GS1 check digit over all
    previous digits (exactly one, last). Patterns are 13 or 18 letters long, need ``W`` and at
    least one of ``E``/``N``; ``F``, ``W``, ``E`` and ``N`` each form one contiguous group.

    Attributes:
        pattern: e.g. ``"FFWWWWWEEEEEC"``.
        prefixes: the values of the ``F`` digits that select this format, e.g. ``"20"``..``"29"``.
        name: a label for logs and the admin page; defaults to the format's spec text.

    Raises:
        InvalidNomenclature: at construction, if the pattern, prefixes or name break a rule.
    """

    pattern: str
    prefixes: frozenset[str]
    name: str = ""
    _flag_width: int = field(init=False, repr=False, compare=False)
    _plu: slice = field(init=False, repr=False, compare=False)
    _amount: slice | None = field(init=False, repr=False, compare=False)
    _grams: slice | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = self.pattern
        if len(pattern) not in SCALE_CODE_LENGTHS:
            raise InvalidNomenclature(pattern, f"must be 13 or 18 letters, got {len(pattern)}")
        unknown = sorted(set(pattern) - _PATTERN_LETTERS)
        if unknown:
            raise InvalidNomenclature(
                pattern, f"unknown letters {''.join(unknown)}; use F, W, E, N, X and C"
            )
        if pattern.count("C") != 1 or pattern[-1] != "C":
            raise InvalidNomenclature(pattern, "needs exactly one C (check digit), at the end")
        flags = _group_span(pattern, "F")
        if flags is None or flags.start != 0:
            raise InvalidNomenclature(pattern, "must start with the F (prefix) digits")
        plu = _group_span(pattern, "W")
        if plu is None:
            raise InvalidNomenclature(pattern, "needs W digits (the item code)")
        amount = _group_span(pattern, "E")
        grams = _group_span(pattern, "N")
        if amount is None and grams is None:
            raise InvalidNomenclature(pattern, "needs E (amount) or N (weight) digits, or both")

        prefixes = frozenset(self.prefixes)  # accept any set-like given at run time
        if not prefixes:
            raise InvalidNomenclature(pattern, "needs at least one prefix")
        width = flags.stop
        for prefix in sorted(prefixes):
            if len(prefix) != width or not _is_digits(prefix):
                raise InvalidNomenclature(
                    pattern, f"prefix {prefix!r} must be {width} digits, one per F"
                )
        if any(c in self.name for c in ":;") or self.name != self.name.strip():
            raise InvalidNomenclature(
                pattern, f"name {self.name!r} must not contain ':' or ';' or surrounding spaces"
            )

        object.__setattr__(self, "prefixes", prefixes)
        if not self.name:
            object.__setattr__(self, "name", self.default_name())
        object.__setattr__(self, "_flag_width", width)
        object.__setattr__(self, "_plu", plu)
        object.__setattr__(self, "_amount", amount)
        object.__setattr__(self, "_grams", grams)

    @property
    def length(self) -> int:
        """Number of digits in codes of this format (13 or 18)."""
        return len(self.pattern)

    @property
    def flag_width(self) -> int:
        """Number of leading prefix (``F``) digits."""
        return self._flag_width

    def default_name(self) -> str:
        """Return the name used when none is given: the format's spec text, ``20-29:FF...C``."""
        return f"{_spec_prefixes(self.prefixes)}:{self.pattern}"

    def to_spec(self) -> str:
        """Return this format as one entry of a spec (see :meth:`Nomenclature.from_spec`)."""
        default = self.default_name()
        return default if self.name == default else f"{default}:{self.name}"

    def decode(self, code: str) -> ScaleScan:
        """Read a code already known to be ASCII digits of this format's length and prefixes.

        Args:
            code: the 13 or 18 digits.

        Returns:
            The scale scan with PLU, amount and weight as the pattern defines.

        Raises:
            InvalidBarcode: if the check digit is wrong.
        """
        _checked(code, code)
        amount = self._amount
        grams = self._grams
        return ScaleScan(
            code=code,
            plu=code[self._plu].lstrip("0") or "0",
            amount=None if amount is None else Money(int(code[amount])),
            grams=None if grams is None else int(code[grams]),
        )

    def encode(
        self,
        plu: str,
        *,
        amount: Money | None = None,
        grams: int | None = None,
        prefix: str | None = None,
    ) -> str:
        """Build a code of this format, as a scale would print it.

        Args:
            plu: the item code; zero-padded to the ``W`` width.
            amount: the price to print; required exactly when the pattern has ``E`` digits.
            grams: the net weight to print; required exactly when the pattern has ``N`` digits.
            prefix: which of :attr:`prefixes` to use; the smallest by default.

        Returns:
            The digits, ending in the right check digit; ``X`` digits are ``0``.

        Raises:
            ScaleEncodingError: if a value is missing, not expected, negative or too wide.
        """
        chosen = min(self.prefixes) if prefix is None else prefix
        if chosen not in self.prefixes:
            raise ScaleEncodingError(f"{self.name}: prefix {chosen!r} is not one of this format's")
        try:
            canonical_plu = normalise_plu(plu)
        except InvalidBarcode as e:
            raise ScaleEncodingError(f"{self.name}: {e.reason}") from e
        chars = ["0"] * len(self.pattern)
        chars[: self._flag_width] = chosen
        chars[self._plu] = self._fit("PLU", int(canonical_plu), self._plu)
        fen = None if amount is None else amount.fen
        for what, value, span in (("amount", fen, self._amount), ("weight", grams, self._grams)):
            if span is None:
                if value is not None:
                    raise ScaleEncodingError(f"{self.name}: the pattern has no {what} digits")
                continue
            if value is None:
                raise ScaleEncodingError(f"{self.name}: the pattern needs a {what}")
            chars[span] = self._fit(what, value, span)
        body = "".join(chars[:-1])
        return body + str(gtin_check_digit(body))

    def _fit(self, what: str, value: int, span: slice) -> str:
        width = span.stop - span.start
        if type(value) is not int or not 0 <= value < 10**width:
            raise ScaleEncodingError(f"{self.name}: {what} {value!r} does not fit {width} digits")
        return f"{value:0{width}d}"


def _parse_prefix_list(text: str) -> frozenset[str]:
    """Read ``"20-24,27"`` into its prefixes; a range keeps its ends' width (``"02-05"``)."""
    prefixes: set[str] = set()
    for raw in text.split(","):
        item = raw.strip()
        low, sep, high = item.partition("-")
        low, high = low.strip(), (high.strip() if sep else low.strip())
        if not (_is_digits(low) and _is_digits(high)) or len(low) != len(high):
            raise InvalidNomenclature(
                text, f"prefix {item!r} must be digits or a range of equal-width digits"
            )
        if int(low) > int(high):
            raise InvalidNomenclature(text, f"prefix range {item!r} runs backwards")
        if int(high) - int(low) >= _MAX_PREFIX_RANGE:
            # A typo such as "0000000-9999999" must not expand into millions of prefixes.
            raise InvalidNomenclature(
                text, f"prefix range {item!r} is over {_MAX_PREFIX_RANGE} prefixes"
            )
        prefixes.update(f"{n:0{len(low)}d}" for n in range(int(low), int(high) + 1))
    return frozenset(prefixes)


@dataclass(frozen=True, slots=True)
class Nomenclature:
    """The store's set of scale-barcode formats (see the module docs for the checking order).

    Attributes:
        formats: the formats; no two of one length may have overlapping prefixes.

    Raises:
        InvalidNomenclature: at construction, if two formats could match the same code.
    """

    formats: tuple[ScaleFormat, ...] = ()
    # length -> ((flag width, prefix -> format), ...): a code needs one dict lookup per width.
    _index: dict[int, tuple[tuple[int, dict[str, ScaleFormat]], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        formats = tuple(self.formats)
        object.__setattr__(self, "formats", formats)
        for i, first in enumerate(formats):
            for second in formats[i + 1 :]:
                if first.length != second.length:
                    continue
                # Prefixes overlap when the longer one starts with the shorter one.
                short, long = sorted((first, second), key=lambda f: f.flag_width)
                shared = {p[: short.flag_width] for p in long.prefixes} & short.prefixes
                if shared:
                    raise InvalidNomenclature(
                        self.to_spec(),
                        f"formats {first.name!r} and {second.name!r} both match "
                        f"{first.length}-digit codes starting {min(shared)!r}",
                    )
        by_width: dict[int, dict[int, dict[str, ScaleFormat]]] = {}
        for fmt in formats:
            table = by_width.setdefault(fmt.length, {}).setdefault(fmt.flag_width, {})
            table.update(dict.fromkeys(fmt.prefixes, fmt))
        index = {length: tuple(sorted(tables.items())) for length, tables in by_width.items()}
        object.__setattr__(self, "_index", index)

    @classmethod
    def default(cls) -> Nomenclature:
        """Return the common Chinese scale set-up for prefixes 20-29.

        Returns:
            ``FFWWWWWEEEEEC`` (price, 13 digits) and ``FFWWWWWEEEEENNNNNC`` (price and weight,
            18 digits).
        """
        return cls(
            (
                ScaleFormat("FFWWWWWEEEEEC", _IN_STORE_PREFIXES, "ean13-price"),
                ScaleFormat("FFWWWWWEEEEENNNNNC", _IN_STORE_PREFIXES, "ean18-price-weight"),
            )
        )

    @classmethod
    def from_spec(cls, text: str) -> Nomenclature:
        """Parse the compact config form, e.g. ``"20-24:FFWWWWWEEEEEC;25-29:FFWWWWWNNNNNC"``.

        Entries are separated by ``;``. Each is ``PREFIXES:PATTERN`` or ``PREFIXES:PATTERN:NAME``,
        where PREFIXES is a comma list of prefixes and equal-width ranges (``20-24,27``).
        Whitespace around parts is ignored; an empty spec means "no scale barcodes".

        Args:
            text: the spec.

        Returns:
            The nomenclature, formats in spec order.

        Raises:
            InvalidNomenclature: naming the bad entry and what is wrong with it.
        """
        formats: list[ScaleFormat] = []
        for raw in text.split(";"):
            entry = raw.strip()
            if not entry:
                continue
            parts = [part.strip() for part in entry.split(":")]
            if len(parts) not in (2, 3):
                raise InvalidNomenclature(
                    text, f"entry {entry!r} must be PREFIXES:PATTERN or PREFIXES:PATTERN:NAME"
                )
            try:
                prefixes = _parse_prefix_list(parts[0])
                formats.append(ScaleFormat(parts[1], prefixes, parts[2] if len(parts) == 3 else ""))
            except InvalidNomenclature as e:
                raise InvalidNomenclature(text, f"entry {entry!r}: {e.reason}") from e
        return cls(tuple(formats))

    def to_spec(self) -> str:
        """Return the compact config form; ``Nomenclature.from_spec(n.to_spec()) == n``."""
        return ";".join(fmt.to_spec() for fmt in self.formats)

    def format_for(self, digits: str) -> ScaleFormat | None:
        """Return the format whose length and prefix match ``digits``, or None.

        Args:
            digits: a code of ASCII digits (13-digit form for UPC-A).
        """
        for width, table in self._index.get(len(digits), ()):
            fmt = table.get(digits[:width])
            if fmt is not None:
                return fmt
        return None


def parse_scan(code: str, nomenclature: Nomenclature) -> Scan:
    """Decide what a scanned code is: a scale barcode of the store's nomenclature, or a GTIN.

    The checking order is in the module docs: digits only; 12 digits read as 13; a length and
    prefix match makes it a scale code (whose check digit must be right); else a GTIN.

    Args:
        code: the scanner's digits; surrounding whitespace (the scanner's Enter) is ignored.
        nomenclature: the store's scale-barcode formats.

    Returns:
        A :class:`ScaleScan` or a :class:`GtinScan` with the normalised GTIN.

    Raises:
        InvalidBarcode: for non-digits, a wrong length or a wrong check digit.
    """
    digits = _digits_of(code)
    ean = "0" + digits if len(digits) == 12 else digits
    fmt = nomenclature.format_for(ean)
    if fmt is not None:
        try:
            return fmt.decode(ean)
        except InvalidBarcode as e:
            raise InvalidBarcode(code, e.reason) from None
    return GtinScan(_gtin_from_digits(digits, code))
