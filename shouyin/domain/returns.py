"""Returns (退货): giving money back for goods of an earlier, completed sale.

A :class:`Return` is an immutable record made by :meth:`Return.create`, which checks every rule:

* the original sale is ``COMPLETED``; the return is approved by a supervisor
  (:data:`Action.REFUND`, fresh at ``now``);
* per line, no more than sold minus what earlier returns of that sale already took back; weighed
  and price-embedded lines go back whole;
* the refund of a line is its **net** (after member price, promotions and discounts), split per
  unit with :meth:`Money.allocate`: unit ``i`` of a line always refunds the same amount, whichever
  return it is in, so returning every unit of a line — at once or over several returns — refunds
  exactly its net, and the smaller unit shares go first;
* the refund tenders sum exactly to the refund. Cash is always possible; card/QR refunds go back
  to a live card/QR tender of the original sale (``original_ecr_ref``), each for no more than that
  tender minus what earlier returns already refunded to it, and carry their own new ``ecr_ref``
  (the refund's own unique number, retried with the same number).

Earlier returns of the same sale are passed in (``prior_returns``): the domain keeps no global
state, so the caller loads them from storage in the same unit of work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shouyin.domain.errors import ReturnError
from shouyin.domain.money import Money, total
from shouyin.domain.pricing import PricedLine
from shouyin.domain.sale_lines import PaymentRef, SaleLine, TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.sale_view import SaleView
from shouyin.domain.users import Action, Approval

__all__ = ["RefundTender", "Return", "ReturnItem", "ReturnLine", "unit_refunds"]


@dataclass(frozen=True, slots=True)
class ReturnItem:
    """What the customer brings back: a line of the original sale and how many pieces.

    Attributes:
        line_no: the line in the original sale.
        quantity: pieces to return; ``None`` means everything still returnable on the line
            (required for weighed and price-embedded lines, which go back whole).
    """

    line_no: int
    quantity: int | None = None


@dataclass(frozen=True, slots=True)
class ReturnLine:
    """One returned line, with what it refunds.

    Attributes:
        line_no: the line in the original sale.
        sku, name, category, tax_rate_bp: copied from the sale line (reports need them).
        quantity: pieces returned (1 for weighed and price-embedded lines).
        grams: the weight returned, for weighed lines.
        amount: the refund for this line.
    """

    line_no: int
    sku: str
    name: str
    category: str
    tax_rate_bp: int
    quantity: int
    grams: int | None
    amount: Money


@dataclass(frozen=True, slots=True)
class RefundTender:
    """How part of a refund is paid back.

    Attributes:
        kind: cash, card or QR.
        amount: positive.
        ref: for card/QR, the refund's own terminal references (its own ``ecr_ref``).
        original_ecr_ref: for card/QR, the ``ecr_ref`` of the original payment refunded.
    """

    kind: TenderKind
    amount: Money
    ref: PaymentRef | None = None
    original_ecr_ref: str | None = None

    def __post_init__(self) -> None:
        if self.amount.fen <= 0:
            raise ReturnError(f"a refund tender must be positive, got {self.amount}")
        if self.kind.electronic and (self.ref is None or not self.original_ecr_ref):
            raise ReturnError(f"a {self.kind} refund needs its own ref and the original ecr_ref")
        if not self.kind.electronic and (self.ref is not None or self.original_ecr_ref):
            raise ReturnError("a cash refund has no payment reference")


def unit_refunds(line: PricedLine) -> list[Money]:
    """Split a line's net into the refund of each returnable unit, smallest first.

    Weighed and price-embedded lines are a single unit. The parts sum exactly to the net.
    """
    units = line.quantity if line.grams is None else 1
    return sorted(line.net.allocate([1] * units))


@dataclass(frozen=True, slots=True)
class Return:
    """A completed return against an earlier sale. Rebuild from storage with the constructor.

    Attributes (all persisted):
        return_id: unique id, chosen by the caller.
        sale_id: the original sale.
        lane_id, shift_id, cashier_id: where, in which shift and by whom the return was made.
        approver_id: the supervisor who approved it.
        reason: why (faulty, wrong item, ...).
        created_at: when.
        lines: returned lines with their refunds.
        tenders: how the refund was paid.
    """

    return_id: str
    sale_id: str
    lane_id: str
    shift_id: str
    cashier_id: str
    approver_id: str
    reason: str
    created_at: datetime
    lines: tuple[ReturnLine, ...]
    tenders: tuple[RefundTender, ...]

    def __post_init__(self) -> None:
        if not self.lines:
            raise ReturnError("a return needs at least one line")
        if self.refund_total != total([t.amount for t in self.tenders]):
            raise ReturnError(
                f"refund tenders sum to {total([t.amount for t in self.tenders])}, "
                f"the refund is {self.refund_total}"
            )

    @property
    def refund_total(self) -> Money:
        """The sum of the returned lines' refunds."""
        return total([line.amount for line in self.lines])

    def refunded_by_kind(self) -> dict[TenderKind, Money]:
        """The refund per tender kind."""
        amounts = {kind: Money.zero() for kind in TenderKind}
        for tender in self.tenders:
            amounts[tender.kind] += tender.amount
        return amounts

    @classmethod
    def create(
        cls,
        *,
        return_id: str,
        sale: SaleView,
        items: Sequence[ReturnItem],
        tenders: Sequence[RefundTender],
        approval: Approval,
        lane_id: str,
        shift_id: str,
        cashier_id: str,
        reason: str,
        now: datetime,
        prior_returns: Sequence[Return] = (),
    ) -> Return:
        """Check a return against its sale and earlier returns, and record it.

        Args:
            return_id: unique id of this return.
            sale: the original sale (must be completed).
            items: what comes back.
            tenders: how the refund is paid; must sum to the refund (see :meth:`refund_for`).
            approval: a supervisor's ``REFUND`` approval, fresh at ``now``.
            lane_id, shift_id, cashier_id: where and by whom.
            reason: why the goods come back.
            now: the current time.
            prior_returns: every earlier return of this sale.

        Returns:
            The return record.

        Raises:
            ReturnError: for any broken rule above.
            PermissionDenied: for a wrong or stale approval.
        """
        approval.check(Action.REFUND, now)
        if not reason.strip():
            raise ReturnError("a return needs a reason")
        lines = cls.refund_for(sale, items, prior_returns)
        _check_refund_tenders(sale, tenders, prior_returns)
        return cls(
            return_id=return_id,
            sale_id=sale.sale_id,
            lane_id=lane_id,
            shift_id=shift_id,
            cashier_id=cashier_id,
            approver_id=approval.approver_id,
            reason=reason,
            created_at=now,
            lines=lines,
            tenders=tuple(tenders),
        )

    @staticmethod
    def refund_for(
        sale: SaleView, items: Sequence[ReturnItem], prior_returns: Sequence[Return] = ()
    ) -> tuple[ReturnLine, ...]:
        """Work out the returned lines and their refunds, before choosing tenders.

        Raises:
            ReturnError: if the sale is not completed, a line is unknown, voided, listed twice,
                or asked for more than is left to return.
        """
        if sale.state is not SaleState.COMPLETED:
            raise ReturnError(
                f"only completed sales can be returned; {sale.sale_id} is {sale.state}"
            )
        if not items:
            raise ReturnError("nothing to return")
        if len({item.line_no for item in items}) != len(items):
            raise ReturnError("a line is listed twice")
        returned = _units_returned(sale, prior_returns)
        out = []
        for item in items:
            sale_line = _returnable_line(sale, item.line_no)
            parts = unit_refunds(sale.priced.line(item.line_no))
            done = returned[item.line_no]
            left = len(parts) - done
            wanted = left if item.quantity is None else item.quantity
            if not sale_line.per_piece and item.quantity not in (None, 1):
                raise ReturnError(
                    f"line {item.line_no} is weighed or price-embedded: return it whole"
                )
            if not 1 <= wanted <= left:
                raise ReturnError(f"line {item.line_no}: {left} left to return, asked for {wanted}")
            out.append(
                ReturnLine(
                    line_no=sale_line.line_no,
                    sku=sale_line.sku,
                    name=sale_line.name,
                    category=sale_line.category,
                    tax_rate_bp=sale_line.tax_rate_bp,
                    quantity=wanted,
                    grams=sale_line.grams,
                    amount=total(parts[done : done + wanted]),
                )
            )
        return tuple(out)


def _returnable_line(sale: SaleView, line_no: int) -> SaleLine:
    try:
        line = sale.line(line_no)
    except LookupError:
        raise ReturnError(f"sale {sale.sale_id} has no line {line_no}") from None
    if line.voided:
        raise ReturnError(f"line {line_no} was voided in the sale: nothing to return")
    return line


def _units_returned(sale: SaleView, prior_returns: Sequence[Return]) -> dict[int, int]:
    returned: dict[int, int] = defaultdict(int)
    for prior in prior_returns:
        if prior.sale_id != sale.sale_id:
            raise ReturnError(f"return {prior.return_id} belongs to another sale")
        for line in prior.lines:
            returned[line.line_no] += line.quantity
    return returned


def _check_refund_tenders(
    sale: SaleView, tenders: Sequence[RefundTender], prior_returns: Sequence[Return]
) -> None:
    originals = {t.ecr_ref: t for t in sale.live_tenders if t.ecr_ref is not None}
    used_refs = {t.ecr_ref for t in sale.tenders if t.ecr_ref is not None}
    refunded: dict[str, Money] = defaultdict(Money.zero)
    for prior in prior_returns:
        for t in prior.tenders:
            if t.original_ecr_ref is not None:
                refunded[t.original_ecr_ref] += t.amount
            if t.ref is not None:
                used_refs.add(t.ref.ecr_ref)
    for t in tenders:
        if not t.kind.electronic:
            continue
        if t.ref is None or t.original_ecr_ref is None:  # RefundTender refuses this already
            raise ReturnError(f"a {t.kind} refund needs its references")
        original = originals.get(t.original_ecr_ref)
        if original is None or original.kind is not t.kind:
            raise ReturnError(f"no live {t.kind} payment {t.original_ecr_ref} in the sale")
        refunded[t.original_ecr_ref] += t.amount
        if refunded[t.original_ecr_ref] > original.amount:
            raise ReturnError(
                f"refunds to {t.original_ecr_ref} would exceed its {original.amount} payment"
            )
        if t.ref.ecr_ref in used_refs:
            raise ReturnError(f"ecr_ref {t.ref.ecr_ref} is already used; a refund needs its own")
        used_refs.add(t.ref.ecr_ref)
