"""A cashier's shift (班次) on a lane, and the cash in its drawer.

A shift opens with a float (备用金) and records every movement of cash through the drawer:

* ``SALE``: cash taken for a completed sale, net of change (card/QR sales move no cash);
* ``REFUND``: cash paid back for a return (negative);
* ``PAID_IN`` / ``PAID_OUT``: cash added (more coins) or taken out (a delivery paid from the
  till), each with a supervisor's approval and a reason;

and counts no-sale drawer opens (each approved by a supervisor). The expected cash is the float
plus the movements. Closing (交班) takes the counted cash and reports the variance
(``counted - expected``: negative is a shortage). A closed shift accepts nothing more.

Cash that would make the expected drawer negative (a paid-out or cash refund over what the
drawer should hold) is refused: it cannot physically happen and points to a keying error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shouyin.domain.errors import InvalidAmount, ShiftError
from shouyin.domain.money import Money, total
from shouyin.domain.returns import Return
from shouyin.domain.sale_lines import TenderKind
from shouyin.domain.sale_states import SaleState
from shouyin.domain.sale_view import SaleView
from shouyin.domain.users import Action, Approval

__all__ = [
    "CashMovement",
    "MovementKind",
    "NoSale",
    "Shift",
    "ShiftClose",
    "ShiftClosed",
    "ShiftEvent",
    "ShiftOpened",
    "ShiftState",
]


class ShiftState(StrEnum):
    """A shift is open until its cash is counted."""

    OPEN = "open"
    CLOSED = "closed"


class MovementKind(StrEnum):
    """Why cash went in or out of the drawer."""

    SALE = "sale"
    REFUND = "refund"
    PAID_IN = "paid_in"
    PAID_OUT = "paid_out"


@dataclass(frozen=True, slots=True)
class CashMovement:
    """Cash into (positive) or out of (negative) the drawer.

    Attributes:
        kind: why.
        amount: signed amount.
        reference: the sale or return id, or the reason for a paid-in/out.
        at: when.
        approver_id: the approving supervisor, for paid-in/out.
    """

    kind: MovementKind
    amount: Money
    reference: str
    at: datetime
    approver_id: str | None = None


@dataclass(frozen=True, slots=True)
class NoSale:
    """A drawer opened without a sale (to give change for a note, ...)."""

    at: datetime
    approver_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ShiftClose:
    """The outcome of closing a shift: ``variance = counted - expected`` (negative: short)."""

    expected: Money
    counted: Money
    variance: Money


@dataclass(frozen=True, slots=True)
class ShiftEvent:
    """Base of the shift's events."""

    shift_id: str


@dataclass(frozen=True, slots=True)
class ShiftOpened(ShiftEvent):
    """A shift started with a float."""

    cashier_id: str
    opening_float: Money
    at: datetime


@dataclass(frozen=True, slots=True)
class ShiftClosed(ShiftEvent):
    """A shift was counted and closed."""

    close: ShiftClose
    at: datetime


class Shift:
    """One cashier's shift on one lane. Rebuild from storage with the constructor.

    Persisted fields (constructor arguments, readable as attributes/properties): ``shift_id``,
    ``lane_id``, ``cashier_id``, ``opened_at``, ``opening_float``, ``state``, ``movements``,
    ``no_sales``, ``closed_at``, ``counted_cash``.
    """

    def __init__(
        self,
        *,
        shift_id: str,
        lane_id: str,
        cashier_id: str,
        opened_at: datetime,
        opening_float: Money,
        state: ShiftState = ShiftState.OPEN,
        movements: Sequence[CashMovement] = (),
        no_sales: Sequence[NoSale] = (),
        closed_at: datetime | None = None,
        counted_cash: Money | None = None,
    ) -> None:
        if opening_float.fen < 0:
            raise InvalidAmount(f"the opening float must not be negative: {opening_float}")
        if (state is ShiftState.CLOSED) != (closed_at is not None and counted_cash is not None):
            raise ShiftError(f"shift {shift_id}: closed_at and counted_cash go with CLOSED")
        self.shift_id = shift_id
        self.lane_id = lane_id
        self.cashier_id = cashier_id
        self.opened_at = opened_at
        self.opening_float = opening_float
        self._state = state
        self._movements = tuple(movements)
        self._no_sales = tuple(no_sales)
        self._closed_at = closed_at
        self._counted_cash = counted_cash
        self.events: list[ShiftEvent] = []

    @classmethod
    def open(
        cls, *, shift_id: str, lane_id: str, cashier_id: str, opening_float: Money, now: datetime
    ) -> Shift:
        """Open a shift with a float.

        Raises:
            InvalidAmount: for a negative float.
        """
        shift = cls(
            shift_id=shift_id,
            lane_id=lane_id,
            cashier_id=cashier_id,
            opened_at=now,
            opening_float=opening_float,
        )
        shift.events.append(ShiftOpened(shift_id, cashier_id, opening_float, now))
        return shift

    @property
    def state(self) -> ShiftState:
        """Open or closed."""
        return self._state

    @property
    def movements(self) -> tuple[CashMovement, ...]:
        """Every cash movement, oldest first."""
        return self._movements

    @property
    def no_sales(self) -> tuple[NoSale, ...]:
        """Every no-sale drawer open."""
        return self._no_sales

    @property
    def closed_at(self) -> datetime | None:
        """When the shift was closed."""
        return self._closed_at

    @property
    def counted_cash(self) -> Money | None:
        """Cash counted at close."""
        return self._counted_cash

    @property
    def expected_cash(self) -> Money:
        """The float plus every movement: what the drawer should hold."""
        return self.opening_float + total([m.amount for m in self._movements])

    @property
    def closing(self) -> ShiftClose | None:
        """Expected, counted and variance of a closed shift."""
        if self._counted_cash is None:
            return None
        expected = self.expected_cash
        return ShiftClose(expected, self._counted_cash, self._counted_cash - expected)

    def total_of(self, kind: MovementKind) -> Money:
        """The sum of the movements of one kind (refunds and paid-outs are negative)."""
        return total([m.amount for m in self._movements if m.kind is kind])

    def ensure_open(self) -> None:
        """Check that the shift can take sales and cash.

        Raises:
            ShiftError: if the shift is closed.
        """
        if self._state is not ShiftState.OPEN:
            raise ShiftError(f"shift {self.shift_id} is closed")

    def record_sale(self, sale: SaleView) -> CashMovement | None:
        """Record a completed sale's cash (net of change) in the drawer.

        Returns:
            The movement, or ``None`` when the sale took no cash.

        Raises:
            ShiftError: if the shift is closed, the sale is not completed or belongs to another
                shift, or its cash was already recorded.
        """
        self.ensure_open()
        if sale.state is not SaleState.COMPLETED or sale.completed_at is None:
            raise ShiftError(f"sale {sale.sale_id} is {sale.state}, not completed")
        if sale.shift_id != self.shift_id:
            raise ShiftError(f"sale {sale.sale_id} belongs to shift {sale.shift_id}")
        cash = sale.amount_by_kind()[TenderKind.CASH]
        if cash.fen == 0:
            return None
        self._check_not_recorded(MovementKind.SALE, sale.sale_id)
        return self._move(MovementKind.SALE, cash, sale.sale_id, sale.completed_at)

    def record_return(self, ret: Return) -> CashMovement | None:
        """Record the cash paid back for a return.

        Returns:
            The movement, or ``None`` when nothing was refunded in cash.

        Raises:
            ShiftError: if the shift is closed, the return belongs to another shift, was already
                recorded, or would need more cash than the drawer should hold.
        """
        self.ensure_open()
        if ret.shift_id != self.shift_id:
            raise ShiftError(f"return {ret.return_id} belongs to shift {ret.shift_id}")
        cash = ret.refunded_by_kind()[TenderKind.CASH]
        if cash.fen == 0:
            return None
        self._check_not_recorded(MovementKind.REFUND, ret.return_id)
        self._check_enough_cash(cash)
        return self._move(MovementKind.REFUND, -cash, ret.return_id, ret.created_at)

    def paid_in(
        self, amount: Money, reason: str, approval: Approval, now: datetime
    ) -> CashMovement:
        """Record cash put into the drawer outside a sale.

        Raises:
            ShiftError: if the shift is closed or the reason is empty.
            InvalidAmount: for a non-positive amount.
            PermissionDenied: unless a fresh ``PAID_IN_OUT`` approval is given.
        """
        self._check_cash_operation(amount, reason, approval, now)
        return self._move(MovementKind.PAID_IN, amount, reason, now, approval.approver_id)

    def paid_out(
        self, amount: Money, reason: str, approval: Approval, now: datetime
    ) -> CashMovement:
        """Record cash taken out of the drawer outside a sale.

        Raises:
            ShiftError: if the shift is closed, the reason is empty, or the drawer should not
                hold that much.
            InvalidAmount: for a non-positive amount.
            PermissionDenied: unless a fresh ``PAID_IN_OUT`` approval is given.
        """
        self._check_cash_operation(amount, reason, approval, now)
        self._check_enough_cash(amount)
        return self._move(MovementKind.PAID_OUT, -amount, reason, now, approval.approver_id)

    def no_sale(self, approval: Approval, reason: str, now: datetime) -> NoSale:
        """Record a drawer open without a sale.

        Raises:
            ShiftError: if the shift is closed or the reason is empty.
            PermissionDenied: unless a fresh ``NO_SALE`` approval is given.
        """
        self.ensure_open()
        approval.check(Action.NO_SALE, now)
        if not reason.strip():
            raise ShiftError("a no-sale needs a reason")
        record = NoSale(now, approval.approver_id, reason)
        self._no_sales = (*self._no_sales, record)
        return record

    def close(self, counted_cash: Money, now: datetime) -> ShiftClose:
        """Close the shift with the counted cash (交班).

        Args:
            counted_cash: the cash counted in the drawer, float included.
            now: the closing time.

        Returns:
            Expected, counted and variance.

        Raises:
            ShiftError: if the shift is already closed or ``now`` is before it opened.
            InvalidAmount: for a negative count.
        """
        self.ensure_open()
        if counted_cash.fen < 0:
            raise InvalidAmount(f"counted cash must not be negative: {counted_cash}")
        if now < self.opened_at:
            raise ShiftError("a shift cannot close before it opened")
        self._counted_cash = counted_cash
        self._closed_at = now
        self._state = ShiftState.CLOSED
        result = self.closing
        if result is None:  # unreachable: counted cash was just set
            raise ShiftError("closing failed")
        self.events.append(ShiftClosed(self.shift_id, result, now))
        return result

    def _check_cash_operation(
        self, amount: Money, reason: str, approval: Approval, now: datetime
    ) -> None:
        self.ensure_open()
        approval.check(Action.PAID_IN_OUT, now)
        if amount.fen <= 0:
            raise InvalidAmount(f"a paid-in/out must be positive, got {amount}")
        if not reason.strip():
            raise ShiftError("a paid-in/out needs a reason")

    def _check_not_recorded(self, kind: MovementKind, reference: str) -> None:
        if any(m.kind is kind and m.reference == reference for m in self._movements):
            raise ShiftError(f"{kind} {reference} is already recorded in shift {self.shift_id}")

    def _check_enough_cash(self, amount: Money) -> None:
        if amount > self.expected_cash:
            raise ShiftError(f"the drawer should hold only {self.expected_cash}, not {amount}")

    def _move(
        self,
        kind: MovementKind,
        amount: Money,
        reference: str,
        at: datetime,
        approver_id: str | None = None,
    ) -> CashMovement:
        movement = CashMovement(kind, amount, reference, at, approver_id)
        self._movements = (*self._movements, movement)
        return movement
