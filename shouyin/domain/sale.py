"""The :class:`Sale` aggregate: one customer's purchase at a checkout lane.

The sale holds its lines, tenders, member, manual discounts and the promotions in force when it was
opened, and enforces every rule about them; it knows nothing of storage, terminals or the clock
(time comes in as ``now``, ids come in from the caller). Its state machine lives in
:mod:`sale_states` (one table, explained there); every mutating method

1. asks the table whether its command is allowed in the current state,
2. validates everything else and builds the new lines/tenders *without touching the sale*,
3. only then commits the change and records events in :attr:`Sale.events`,

so a refused operation raises a typed :class:`DomainError` and leaves the sale exactly as it was.

Amounts (see :mod:`pricing` for the order of reductions): ``subtotal`` is the list-price sum,
``discount_total`` every reduction, ``total_due`` what the customer owes; ``paid`` sums live
tenders and ``change`` is what cash over-tendered (only cash may exceed the amount due, so change
never exceeds the cash taken).

A :class:`Sale` is rebuilt from storage by calling its constructor with the persisted fields (it
checks their consistency and records no event); :meth:`Sale.open` starts a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from shouyin.domain.errors import (
    DiscountError,
    EmptySale,
    InactiveProduct,
    InvalidAmount,
    InvalidProduct,
    SaleStateError,
    TenderError,
    TendersOutstanding,
    UnknownLine,
)
from shouyin.domain.money import Money, total
from shouyin.domain.pricing import AdjustmentKind
from shouyin.domain.product import Product
from shouyin.domain.promotions import DiscountKind, ManualDiscount, Promotion
from shouyin.domain.sale_events import (
    DiscountSet,
    LineAdded,
    LineQuantityChanged,
    LineVoided,
    MemberSet,
    PriceOverridden,
    SaleCompleted,
    SaleHeld,
    SaleOpened,
    SalePaid,
    SaleRecalled,
    SaleVoided,
    TenderAdded,
    TenderVoided,
)
from shouyin.domain.sale_lines import PaymentRef, SaleLine, Tender, TenderKind
from shouyin.domain.sale_states import SaleCommand, SaleState, next_state
from shouyin.domain.sale_view import SaleView
from shouyin.domain.users import Action, Approval

__all__ = ["Sale"]

_BEFORE_LINE_DISCOUNT = (AdjustmentKind.MEMBER_PRICE, AdjustmentKind.MULTI_BUY)


class Sale(SaleView):
    """One purchase: lines, tenders, discounts, member, and the state machine over them.

    Build a new one with :meth:`open`; rebuild a stored one with the constructor (see
    :class:`SaleView` for the persisted fields).
    """

    @classmethod
    def open(
        cls,
        *,
        sale_id: str,
        receipt_no: str,
        lane_id: str,
        shift_id: str,
        cashier_id: str,
        now: datetime,
        promotions: Sequence[Promotion] = (),
    ) -> Sale:
        """Start a new, empty sale.

        Args:
            sale_id: unique id, chosen by the caller (e.g. a UUID).
            receipt_no: the receipt number (小票号) printed for this sale.
            lane_id, shift_id, cashier_id: where, in which shift and by whom.
            now: the opening time.
            promotions: the promotions in force; kept with the sale so it always prices the same.

        Returns:
            An ``OPEN`` sale with a :class:`SaleOpened` event.
        """
        sale = cls(
            sale_id=sale_id,
            receipt_no=receipt_no,
            lane_id=lane_id,
            shift_id=shift_id,
            cashier_id=cashier_id,
            opened_at=now,
            promotions=promotions,
        )
        sale.events.append(SaleOpened(sale_id, receipt_no, lane_id, shift_id, cashier_id, now))
        return sale

    # -- lines -----------------------------------------------------------------------------------
    def add_product(self, product: Product, quantity: int = 1) -> SaleLine:
        """Add ``quantity`` pieces of a product sold per piece.

        Raises:
            IllegalTransition: unless the sale is open.
            InactiveProduct: if the product is withdrawn.
            InvalidProduct: if the product is sold by weight (use :meth:`add_weighed`).
            InvalidAmount: for a quantity outside 1..9999.
        """
        next_state(self._state, SaleCommand.EDIT)
        self._check_sellable(product)
        if product.weighed:
            raise InvalidProduct(f"{product.sku} is sold by weight: weigh it")
        return self._add(self._new_line(product, quantity=quantity))

    def add_weighed(self, product: Product, grams: int) -> SaleLine:
        """Add a weighed product: its per-kg price times ``grams``, rounded half up to the fen.

        Raises:
            IllegalTransition, InactiveProduct: as :meth:`add_product`.
            InvalidProduct: if the product is not sold by weight.
            InvalidAmount: for a weight outside 1..99999 g.
        """
        next_state(self._state, SaleCommand.EDIT)
        self._check_sellable(product)
        if not product.weighed:
            raise InvalidProduct(f"{product.sku} is sold per piece, not by weight")
        return self._add(self._new_line(product, grams=grams))

    def add_priced(self, product: Product, amount: Money, grams: int | None = None) -> SaleLine:
        """Add an item whose price is printed in an in-store (scale) barcode.

        The printed amount is the line's price: member prices and multi-buys do not apply to it
        (the scale already priced it); manual discounts and order-level reductions still do.

        Raises:
            IllegalTransition, InactiveProduct: as :meth:`add_product`.
            InvalidAmount: for a non-positive amount or a weight outside 1..99999 g.
        """
        next_state(self._state, SaleCommand.EDIT)
        self._check_sellable(product)
        if amount.fen <= 0:
            raise InvalidAmount(f"a printed price must be positive, got {amount}")
        return self._add(self._new_line(product, grams=grams, fixed_amount=amount))

    def set_quantity(self, line_no: int, quantity: int) -> None:
        """Change the number of pieces on a per-piece line (use :meth:`remove_line` for zero).

        Raises:
            IllegalTransition: unless the sale is open.
            UnknownLine: for a missing or voided line.
            InvalidProduct: for weighed or price-embedded lines.
            InvalidAmount: for a quantity outside 1..9999.
        """
        next_state(self._state, SaleCommand.EDIT)
        line = self._active_line(line_no)
        if not line.per_piece:
            raise InvalidProduct(f"line {line_no} is weighed or price-embedded: re-scan it instead")
        if quantity == line.quantity:
            return
        self._replace_line(replace(line, quantity=quantity))
        self.events.append(LineQuantityChanged(self._sale_id, line_no, line.quantity, quantity))

    def remove_line(self, line_no: int, approval: Approval | None = None) -> None:
        """Void a line; it stays in :attr:`lines` marked ``voided`` for the audit trail.

        Whether a cashier needs a supervisor for this is store policy, enforced by the caller
        with the permission table (:data:`Action.VOID_LINE`); an approval given is checked and
        its approver recorded on the line.

        Raises:
            IllegalTransition: unless the sale is open.
            UnknownLine: for a missing or already voided line.
            PermissionDenied: if the approval is not for ``VOID_LINE``.
        """
        next_state(self._state, SaleCommand.EDIT)
        line = self._active_line(line_no)
        if approval is not None:
            approval.check(Action.VOID_LINE)
        approver = approval.approver_id if approval is not None else None
        self._replace_line(replace(line, voided=True, voided_by=approver, discount=None))
        self.events.append(LineVoided(self._sale_id, line_no, approver))

    def override_price(
        self, line_no: int, unit_price: Money, approval: Approval, now: datetime
    ) -> None:
        """Set a line's price (per piece, per kg, or the printed amount) with approval.

        The member price no longer applies to the line: the override is the agreed price.

        Raises:
            IllegalTransition: unless the sale is open.
            UnknownLine: for a missing or voided line.
            PermissionDenied: unless ``approval`` is a fresh ``PRICE_OVERRIDE`` approval.
            InvalidAmount: for a negative price.
        """
        next_state(self._state, SaleCommand.EDIT)
        line = self._active_line(line_no)
        approval.check(Action.PRICE_OVERRIDE, now)
        if unit_price.fen < 0:
            raise InvalidAmount(f"a price must not be negative, got {unit_price}")
        fixed = line.fixed_amount is not None
        old = line.fixed_amount if line.fixed_amount is not None else line.unit_price
        changed = replace(
            line,
            unit_price=line.unit_price if fixed else unit_price,
            fixed_amount=unit_price if fixed else None,
            member_price=None,
            price_override_by=approval.approver_id,
        )
        self._replace_line(changed)
        self.events.append(
            PriceOverridden(self._sale_id, line_no, old, unit_price, approval.approver_id)
        )

    def set_line_discount(self, line_no: int, discount: ManualDiscount | None) -> None:
        """Set (or clear, with ``None``) the manual discount of a line.

        An amount discount may not exceed the line's net after member price and multi-buy.
        Whether the operator may discount at all is checked by the caller
        (:data:`Action.MANUAL_DISCOUNT`).

        Raises:
            IllegalTransition: unless the sale is open.
            UnknownLine: for a missing or voided line.
            DiscountError: if the discount exceeds what it discounts.
        """
        next_state(self._state, SaleCommand.EDIT)
        line = self._active_line(line_no)
        if discount is not None:
            priced = self._priced.line(line_no)
            base = priced.gross - total(
                [a.amount for a in priced.adjustments if a.kind in _BEFORE_LINE_DISCOUNT]
            )
            self._check_discount(discount, base)
        self._replace_line(replace(line, discount=discount))
        self.events.append(DiscountSet(self._sale_id, line_no, discount))

    def set_order_discount(self, discount: ManualDiscount | None) -> None:
        """Set (or clear) the manual discount on the whole order.

        Raises:
            IllegalTransition: unless the sale is open.
            DiscountError: if an amount discount exceeds the total before it.
        """
        next_state(self._state, SaleCommand.EDIT)
        if discount is not None:
            base = total(
                [
                    line.net
                    + total(
                        [
                            a.amount
                            for a in line.adjustments
                            if a.kind is AdjustmentKind.ORDER_DISCOUNT
                        ]
                    )
                    for line in self._priced.lines
                ]
            )
            self._check_discount(discount, base)
        self._priced = self._price(self._lines, self._member_id, discount)
        self._order_discount = discount
        self.events.append(DiscountSet(self._sale_id, None, discount))

    def set_member(self, member_id: str | None) -> None:
        """Attach a loyalty member (enables member prices), or detach with ``None``.

        Raises:
            IllegalTransition: unless the sale is open.
            SaleStateError: for an empty member id.
        """
        next_state(self._state, SaleCommand.EDIT)
        if member_id is not None and not member_id.strip():
            raise SaleStateError("a member id must not be empty")
        self._priced = self._price(self._lines, member_id, self._order_discount)
        self._member_id = member_id
        self.events.append(MemberSet(self._sale_id, member_id))

    # -- hold / recall ---------------------------------------------------------------------------
    def hold(self) -> None:
        """Suspend the sale (挂单) to serve the next customer.

        Raises:
            IllegalTransition: unless the sale is open.
            EmptySale: if it has no active line.
        """
        new_state = next_state(self._state, SaleCommand.HOLD)
        self._require_lines()
        self._state = new_state
        self.events.append(SaleHeld(self._sale_id))

    def recall(self) -> None:
        """Bring a held sale back (取单).

        Raises:
            IllegalTransition: unless the sale is held.
        """
        self._state = next_state(self._state, SaleCommand.RECALL)
        self.events.append(SaleRecalled(self._sale_id))

    # -- tenders ---------------------------------------------------------------------------------
    def add_tender(self, kind: TenderKind, amount: Money, ref: PaymentRef | None = None) -> Tender:
        """Take a payment. Cash may exceed what is due (change); card and QR may not.

        Args:
            kind: cash, card or QR.
            amount: cash handed over, or the card/QR amount approved by the terminal.
            ref: the terminal's references (required for card/QR, with a unique ``ecr_ref``).

        Returns:
            The recorded tender.

        Raises:
            IllegalTransition: unless the sale is open or part paid.
            EmptySale: if nothing is due (complete a free sale with :meth:`complete`).
            TenderError: for a non-positive amount, a card/QR amount over the remaining due, a
                missing or reused ``ecr_ref``.
        """
        remaining = self.remaining
        command = SaleCommand.PAY_REST if amount >= remaining else SaleCommand.PAY_PART
        new_state = next_state(self._state, command)
        self._require_lines()
        if self.total_due.fen == 0:
            raise EmptySale("nothing is due: complete the sale instead")
        tender = Tender(len(self._tenders) + 1, kind, amount, ref)
        if kind.electronic and amount > remaining:
            raise TenderError(f"a {kind} payment of {amount} exceeds the {remaining} still due")
        if tender.ecr_ref is not None and tender.ecr_ref in {t.ecr_ref for t in self._tenders}:
            raise TenderError(f"ecr_ref {tender.ecr_ref} already used in this sale")
        self._tenders = (*self._tenders, tender)
        self._state = new_state
        self.events.append(
            TenderAdded(self._sale_id, tender.tender_no, kind, amount, tender.ecr_ref)
        )
        if new_state is SaleState.PAID:
            self.events.append(SalePaid(self._sale_id, self.total_due, self.paid, self.change))
        return tender

    def void_tender(self, tender_no: int) -> None:
        """Mark a tender voided: a card/QR payment voided on the terminal, or cash handed back.

        Raises:
            IllegalTransition: unless the sale is part or fully paid.
            UnknownLine: for a missing or already voided tender.
        """
        tender = next((t for t in self.live_tenders if t.tender_no == tender_no), None)
        if tender is None:
            raise UnknownLine("live tender", tender_no)
        paid_after = self.paid - tender.amount
        if paid_after.fen == 0:
            command = SaleCommand.UNPAY_ALL
        elif paid_after >= self.total_due:
            command = SaleCommand.UNPAY_STILL_PAID
        else:
            command = SaleCommand.UNPAY_PART
        new_state = next_state(self._state, command)
        self._tenders = tuple(replace(t, voided=True) if t is tender else t for t in self._tenders)
        self._state = new_state
        self.events.append(
            TenderVoided(self._sale_id, tender_no, tender.kind, tender.amount, tender.ecr_ref)
        )

    # -- ending ----------------------------------------------------------------------------------
    def complete(self, now: datetime) -> None:
        """Finish a paid sale (or one with nothing due); it is immutable afterwards.

        Raises:
            IllegalTransition: unless the sale is paid, or open with nothing due.
            EmptySale: for an open sale with no active line.
        """
        free = self._state is SaleState.OPEN and self.total_due.fen == 0
        new_state = next_state(
            self._state, SaleCommand.COMPLETE_FREE if free else SaleCommand.COMPLETE
        )
        self._require_lines()
        self._state = new_state
        self._completed_at = now
        self.events.append(
            SaleCompleted(self._sale_id, self._receipt_no, self.total_due, self.change, now)
        )

    def void(self, approval: Approval, reason: str, now: datetime) -> None:
        """Cancel the sale with a supervisor's approval; live cash tenders are handed back.

        Raises:
            IllegalTransition: unless the sale is open, held or part paid.
            PermissionDenied: unless ``approval`` is a fresh ``VOID_SALE`` approval.
            SaleStateError: for an empty reason.
            TendersOutstanding: while approved card/QR tenders are live (void them first).
        """
        new_state = next_state(self._state, SaleCommand.VOID)
        approval.check(Action.VOID_SALE, now)
        if not reason.strip():
            raise SaleStateError("a void needs a reason")
        outstanding = tuple(t.ecr_ref or "" for t in self.live_tenders if t.kind.electronic)
        if outstanding:
            raise TendersOutstanding(outstanding)
        handed_back = self.live_tenders
        self._tenders = tuple(replace(t, voided=True) if t.live else t for t in self._tenders)
        self._state = new_state
        self._voided_at = now
        self._voided_by = approval.approver_id
        self._void_reason = reason
        for t in handed_back:
            self.events.append(TenderVoided(self._sale_id, t.tender_no, t.kind, t.amount, None))
        self.events.append(SaleVoided(self._sale_id, approval.approver_id, reason, now))

    # -- internals -------------------------------------------------------------------------------
    @staticmethod
    def _check_sellable(product: Product) -> None:
        if not product.active:
            raise InactiveProduct(product.sku, product.name)

    @staticmethod
    def _check_discount(discount: ManualDiscount, base: Money) -> None:
        if discount.kind is DiscountKind.AMOUNT and discount.requested(base) > base:
            raise DiscountError(f"a discount of {discount.requested(base)} exceeds {base}")

    def _require_lines(self) -> None:
        if not self.active_lines:
            raise EmptySale("the sale has no items")

    def _active_line(self, line_no: int) -> SaleLine:
        line = self.line(line_no)
        if line.voided:
            raise UnknownLine("active line", line_no)
        return line

    def _new_line(
        self,
        product: Product,
        *,
        quantity: int = 1,
        grams: int | None = None,
        fixed_amount: Money | None = None,
    ) -> SaleLine:
        return SaleLine(
            line_no=len(self._lines) + 1,
            sku=product.sku,
            name=product.name,
            category=product.category,
            tax_rate_bp=product.tax_rate_bp,
            unit=product.unit,
            unit_price=product.price,
            quantity=quantity,
            grams=grams,
            fixed_amount=fixed_amount,
            member_price=product.member_price,
        )

    def _add(self, line: SaleLine) -> SaleLine:
        self._replace_line(line)
        self.events.append(
            LineAdded(
                self._sale_id,
                line.line_no,
                line.sku,
                line.quantity,
                line.grams,
                self._priced.line(line.line_no).gross,
            )
        )
        return line

    def _replace_line(self, line: SaleLine) -> None:
        """Put ``line`` in place of its namesake (or append it) and reprice: the commit point."""
        if line.line_no > len(self._lines):
            lines = (*self._lines, line)
        else:
            lines = tuple(line if ln.line_no == line.line_no else ln for ln in self._lines)
        self._priced = self._price(lines, self._member_id, self._order_discount)
        self._lines = lines
