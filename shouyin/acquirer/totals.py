"""Batch totals (field 63 of 0500/0510): counts and amounts of sales and refunds per kind."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shouyin.acquirer.codes import TotalsKind
from shouyin.acquirer.errors import IsoFormatError
from shouyin.acquirer.fieldmap import Fen

__all__ = ["BatchTotals", "KindTotals"]


class KindTotals(BaseModel):
    """Counts and amounts (fen) of sales and refunds of one payment kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sale_count: Annotated[int, Field(ge=0, le=999_999)] = 0
    sale_amount: Fen = 0
    refund_count: Annotated[int, Field(ge=0, le=999_999)] = 0
    refund_amount: Fen = 0


_GROUP = 2 + 6 + 12 + 6 + 12


class BatchTotals(BaseModel):
    """Batch totals per payment kind: field 63 is, for each kind in :class:`TotalsKind` order,
    ``TAG(2) sale count(6) sale amount(12) refund count(6) refund amount(12)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by_kind: dict[TotalsKind, KindTotals] = Field(default_factory=dict)

    @field_validator("by_kind")
    @classmethod
    def _every_kind(cls, value: dict[TotalsKind, KindTotals]) -> dict[TotalsKind, KindTotals]:
        # Every kind present, zeros included, in TotalsKind order: equal totals compare equal.
        return {kind: value.get(kind, KindTotals()) for kind in TotalsKind}

    def of(self, kind: TotalsKind) -> KindTotals:
        """The totals of ``kind`` (zeros when there were none)."""
        return self.by_kind[kind]

    @property
    def sale_amount(self) -> int:
        """Sales of every kind, in fen."""
        return sum(totals.sale_amount for totals in self.by_kind.values())

    @property
    def refund_amount(self) -> int:
        """Refunds of every kind, in fen."""
        return sum(totals.refund_amount for totals in self.by_kind.values())

    def encode(self) -> str:
        """Field 63 text (all four kinds, zeros included)."""
        return "".join(
            f"{kind.value}{t.sale_count:06d}{t.sale_amount:012d}"
            f"{t.refund_count:06d}{t.refund_amount:012d}"
            for kind, t in self.by_kind.items()
        )

    @classmethod
    def decode(cls, text: str) -> BatchTotals:
        """Parse field 63 text.

        Raises:
            IsoFormatError: a group of the wrong size, an unknown kind or non-digits.
        """
        if len(text) % _GROUP:
            raise IsoFormatError("63", "totals are groups of 38 characters")
        by_kind: dict[TotalsKind, KindTotals] = {}
        for offset in range(0, len(text), _GROUP):
            group = text[offset : offset + _GROUP]
            digits = group[2:]
            if group[:2] not in TotalsKind._value2member_map_ or not digits.isdigit():
                raise IsoFormatError("63", f"bad totals group at offset {offset}")
            by_kind[TotalsKind(group[:2])] = KindTotals(
                sale_count=int(digits[0:6]),
                sale_amount=int(digits[6:18]),
                refund_count=int(digits[18:24]),
                refund_amount=int(digits[24:36]),
            )
        return cls(by_kind=by_kind)
