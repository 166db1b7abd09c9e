"""The read side of a sale: its persisted fields, derived amounts and consistency rules.

:class:`SaleView` is the base of :class:`~shouyin.domain.sale.Sale`; it holds no command. It is
split out so that the aggregate's commands (``sale.py``) and its queries each stay readable, and
so that code which only reads sales (returns, reports, receipts) can be typed against it.

A sale is rebuilt from storage by calling the constructor with the persisted fields: it checks
them for consistency (:meth:`SaleView.check_invariants`) and records no event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shouyin.domain.errors import SaleStateError, UnknownLine
from shouyin.domain.money import Money, total
from shouyin.domain.pricing import AppliedPromotion, PricedSale, price
from shouyin.domain.promotions import ManualDiscount, Promotion
from shouyin.domain.sale_events import SaleEvent
from shouyin.domain.sale_lines import SaleLine, Tender, TenderKind
from shouyin.domain.sale_states import SaleState

__all__ = ["SaleView"]


class SaleView:
    """A sale's state and everything derived from it; :class:`Sale` adds the commands.

    Persisted fields (constructor arguments, all readable as properties): ``sale_id``,
    ``receipt_no``, ``lane_id``, ``shift_id``, ``cashier_id``, ``opened_at``, ``state``, ``lines``
    (voided ones included), ``tenders`` (voided ones included), ``member_id``, ``order_discount``,
    ``promotions`` (the snapshot priced against), ``completed_at``, ``voided_at``, ``voided_by``,
    ``void_reason``. Everything else is derived. ``events`` holds the events recorded since the
    object was built (never persisted as state).

    Raises:
        SaleStateError: from the constructor, if the persisted fields are inconsistent.
    """

    def __init__(
        self,
        *,
        sale_id: str,
        receipt_no: str,
        lane_id: str,
        shift_id: str,
        cashier_id: str,
        opened_at: datetime,
        state: SaleState = SaleState.OPEN,
        lines: Sequence[SaleLine] = (),
        tenders: Sequence[Tender] = (),
        member_id: str | None = None,
        order_discount: ManualDiscount | None = None,
        promotions: Sequence[Promotion] = (),
        completed_at: datetime | None = None,
        voided_at: datetime | None = None,
        voided_by: str | None = None,
        void_reason: str | None = None,
    ) -> None:
        self._sale_id = sale_id
        self._receipt_no = receipt_no
        self._lane_id = lane_id
        self._shift_id = shift_id
        self._cashier_id = cashier_id
        self._opened_at = opened_at
        self._state = state
        self._lines = tuple(lines)
        self._tenders = tuple(tenders)
        self._member_id = member_id
        self._order_discount = order_discount
        self._promotions = tuple(promotions)
        self._completed_at = completed_at
        self._voided_at = voided_at
        self._voided_by = voided_by
        self._void_reason = void_reason
        self._priced = self._price(self._lines, self._member_id, self._order_discount)
        self.events: list[SaleEvent] = []
        self.check_invariants()

    # -- persisted fields ------------------------------------------------------------------------
    @property
    def sale_id(self) -> str:
        """Unique id of the sale."""
        return self._sale_id

    @property
    def receipt_no(self) -> str:
        """Receipt number printed for the sale."""
        return self._receipt_no

    @property
    def lane_id(self) -> str:
        """Lane the sale was made on."""
        return self._lane_id

    @property
    def shift_id(self) -> str:
        """Shift the sale belongs to."""
        return self._shift_id

    @property
    def cashier_id(self) -> str:
        """User id of the cashier."""
        return self._cashier_id

    @property
    def opened_at(self) -> datetime:
        """When the sale was opened."""
        return self._opened_at

    @property
    def state(self) -> SaleState:
        """Current state."""
        return self._state

    @property
    def lines(self) -> tuple[SaleLine, ...]:
        """Every line, voided ones included, in line-number order."""
        return self._lines

    @property
    def tenders(self) -> tuple[Tender, ...]:
        """Every tender, voided ones included, in tender-number order."""
        return self._tenders

    @property
    def member_id(self) -> str | None:
        """Loyalty member attached to the sale, if any."""
        return self._member_id

    @property
    def order_discount(self) -> ManualDiscount | None:
        """Manual discount on the whole order, if any."""
        return self._order_discount

    @property
    def promotions(self) -> tuple[Promotion, ...]:
        """The promotions this sale is priced with."""
        return self._promotions

    @property
    def completed_at(self) -> datetime | None:
        """When the sale was completed."""
        return self._completed_at

    @property
    def voided_at(self) -> datetime | None:
        """When the sale was voided."""
        return self._voided_at

    @property
    def voided_by(self) -> str | None:
        """User id of the supervisor who approved the void."""
        return self._voided_by

    @property
    def void_reason(self) -> str | None:
        """Why the sale was voided."""
        return self._void_reason

    # -- derived amounts -------------------------------------------------------------------------
    @property
    def active_lines(self) -> tuple[SaleLine, ...]:
        """Lines not voided."""
        return tuple(line for line in self._lines if not line.voided)

    @property
    def live_tenders(self) -> tuple[Tender, ...]:
        """Tenders not voided."""
        return tuple(t for t in self._tenders if t.live)

    @property
    def priced(self) -> PricedSale:
        """The pricing of the active lines (per-line nets, applied promotions, tax)."""
        return self._priced

    @property
    def applied_promotions(self) -> tuple[AppliedPromotion, ...]:
        """Reductions to show on screen and receipt."""
        return self._priced.applied

    @property
    def subtotal(self) -> Money:
        """Sum of the active lines at list price."""
        return self._priced.subtotal

    @property
    def discount_total(self) -> Money:
        """Sum of every reduction (member price, promotions, manual discounts)."""
        return self._priced.discount_total

    @property
    def total_due(self) -> Money:
        """What the customer owes."""
        return self._priced.total

    @property
    def paid(self) -> Money:
        """Sum of live tenders (cash as handed over, before change)."""
        return total([t.amount for t in self.live_tenders])

    @property
    def remaining(self) -> Money:
        """What is still to be paid (never negative)."""
        return max(self.total_due - self.paid, Money.zero())

    @property
    def change(self) -> Money:
        """Cash to give back (never negative)."""
        return max(self.paid - self.total_due, Money.zero())

    @property
    def tax_by_rate(self) -> tuple[tuple[int, Money], ...]:
        """VAT contained in the total, per rate in basis points."""
        return self._priced.tax_by_rate

    def amount_by_kind(self) -> dict[TenderKind, Money]:
        """What each tender kind actually paid: cash net of change, card/QR as approved."""
        amounts = {kind: Money.zero() for kind in TenderKind}
        for tender in self.live_tenders:
            amounts[tender.kind] += tender.amount
        amounts[TenderKind.CASH] -= self.change
        return amounts

    def line(self, line_no: int) -> SaleLine:
        """Return line ``line_no`` (voided or not).

        Raises:
            UnknownLine: if there is none.
        """
        for line in self._lines:
            if line.line_no == line_no:
                return line
        raise UnknownLine("line", line_no)

    # -- invariants ------------------------------------------------------------------------------
    def check_invariants(self) -> None:
        """Check that the fields are consistent with each other and with the state.

        Raises:
            SaleStateError: naming the broken rule (corrupt storage, or a bug).
        """
        problems = list(self._invariant_problems())
        if problems:
            raise SaleStateError(f"sale {self._sale_id} inconsistent: {'; '.join(problems)}")

    def _invariant_problems(self) -> list[str]:
        problems = []
        state, due, paid = self._state, self.total_due, self.paid
        if [ln.line_no for ln in self._lines] != list(range(1, len(self._lines) + 1)):
            problems.append("line numbers must run 1..n")
        if [t.tender_no for t in self._tenders] != list(range(1, len(self._tenders) + 1)):
            problems.append("tender numbers must run 1..n")
        refs = [t.ecr_ref for t in self._tenders if t.ecr_ref is not None]
        if len(refs) != len(set(refs)):
            problems.append("ecr_refs must be unique")
        live = self.live_tenders
        if state in (SaleState.OPEN, SaleState.HELD, SaleState.VOIDED) and live:
            problems.append(f"a {state} sale has live tenders")
        if state is SaleState.TENDERING and not Money.zero() < paid < due:
            problems.append("a part-paid sale must have 0 < paid < total")
        if state in (SaleState.PAID, SaleState.COMPLETED) and paid < due:
            problems.append(f"a {state} sale must be fully paid")
        electronic = total([t.amount for t in live if t.kind.electronic])
        if electronic > due:
            problems.append("card/QR tenders exceed the total")
        if (state is SaleState.COMPLETED) != (self._completed_at is not None):
            problems.append("completed_at is set exactly for completed sales")
        if (state is SaleState.VOIDED) != (self._voided_at is not None):
            problems.append("voided_at is set exactly for voided sales")
        return problems

    # -- internals -------------------------------------------------------------------------------
    def _price(
        self,
        lines: Sequence[SaleLine],
        member_id: str | None,
        order_discount: ManualDiscount | None,
    ) -> PricedSale:
        active = [line.to_pricing() for line in lines if not line.voided]
        return price(active, self._promotions, member_id is not None, order_discount)
