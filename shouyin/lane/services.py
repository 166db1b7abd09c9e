"""Lane use cases: accounts, shifts, selling with cash, and X/Z reports.

Each service is a plain function taking a unit of work: it loads aggregates, calls the domain,
saves and commits once. Nothing is committed when the domain refuses (a typed error propagates
and the unit of work rolls back), so bad input never leaves half-written data. Time and ids are
passed in or drawn from :class:`Context`, so tests control both.

Card and QR payments go through the terminal orchestrator (``shouyin.payments``); this module
takes cash and records tenders that were already approved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome, DetailValue
from shouyin.domain.barcodes import Nomenclature
from shouyin.domain.carddata import scrub
from shouyin.domain.catalogue import lookup
from shouyin.domain.errors import (
    AccountLocked,
    AuthError,
    InvalidCredentials,
    PermissionDenied,
    ShiftError,
)
from shouyin.domain.money import Money, total
from shouyin.domain.promotions import Promotion
from shouyin.domain.reports import Report, x_report, z_report
from shouyin.domain.returns import RefundTender, Return, ReturnItem
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import SaleLine, TenderKind
from shouyin.domain.shift import NoSale, Shift
from shouyin.domain.users import (
    AUTH_FAILED,
    Action,
    Approval,
    PasswordHasher,
    Role,
    User,
    authorise,
    check_sign_in,
    failed_sign_in,
    signed_in,
)
from shouyin.store.uow import AbstractUnitOfWork

STORE_TZ = ZoneInfo("Asia/Shanghai")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Context:
    """Where and when a service runs: the lane, the clock and the id source (injectable)."""

    lane_id: str
    nomenclature: Nomenclature = field(default_factory=Nomenclature.default)
    promotions: tuple[Promotion, ...] = ()
    clock: Callable[[], datetime] = _utcnow
    new_id: Callable[[], str] = _new_id
    tz: ZoneInfo = STORE_TZ


def _audit(
    uow: AbstractUnitOfWork,
    ctx: Context,
    action: AuditAction,
    actor: str,
    target: str,
    *,
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
    **details: DetailValue,
) -> None:
    """Append an audit entry (issue 7) in the caller's transaction: it commits with the action."""
    uow.audit.append(
        AuditEvent(action, outcome, actor, f"lane:{ctx.lane_id}", target, ctx.clock(), details)
    )


class UserExists(AuthError):
    """An account with that user name already exists."""


class UnknownSale(ShiftError):
    """No sale with that id on this lane."""


# -- accounts ---------------------------------------------------------------------------------
def create_user(
    uow: AbstractUnitOfWork,
    hasher: PasswordHasher,
    ctx: Context,
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str,
) -> User:
    """Create an account (password rules checked by the domain).

    Raises:
        UserExists: if the user name is taken.
        WeakPassword: if the password breaks the rules for the role.
    """
    with uow:
        if uow.users.get_by_username(username) is not None:
            raise UserExists(f"user {username!r} already exists")
        user = User.create(
            user_id=ctx.new_id(),
            username=username,
            display_name=display_name,
            role=role,
            password=password,
            hasher=hasher,
        )
        uow.users.add(user)
        _audit(uow, ctx, AuditAction.USER_CREATED, "admin", f"user:{username}", role=role.value)
        uow.commit()
        return user


def _check_password(
    uow: AbstractUnitOfWork, hasher: PasswordHasher, user: User, password: str, now: datetime
) -> AuthError | None:
    """Check ``user``'s password and record the outcome in ``uow`` (not committed); return the
    error to raise, or ``None`` on success.

    A failure is counted atomically in the store (:meth:`count_failed_login`), not by saving
    the user read before the (slow) password check, so that concurrent wrong passwords each
    count; a success is written only if concurrent failures have not locked the account
    meanwhile. The rules (how many failures, how long a lock) stay in the domain.
    """
    try:
        if check_sign_in(user, password, hasher, now):
            signed_in(user, password, hasher, now)
            if uow.users.record_sign_in(user, now):
                return None
            # Concurrent failures locked the account (or it was disabled) meanwhile.
            fresh = uow.users.get(user.user_id)
            if fresh is not None and fresh.is_locked(now):
                return AccountLocked(f"account locked until {fresh.locked_until:%Y-%m-%d %H:%M}")
            return InvalidCredentials(AUTH_FAILED)
        error = failed_sign_in(user, uow.users.count_failed_login(user.user_id, now), now)
        if isinstance(error, AccountLocked) and user.locked_until is not None:
            uow.users.lock_until(user.user_id, user.locked_until)
        return error
    except AuthError as refused:  # locked or disabled: nothing to count
        return refused


def login(
    uow: AbstractUnitOfWork, hasher: PasswordHasher, ctx: Context, username: str, password: str
) -> User:
    """Check a password; failures are counted (and may lock the account) even though they raise.

    Concurrent wrong passwords each count (see :func:`_check_password`).

    Raises:
        InvalidCredentials: wrong user name or password (the message does not say which).
        AccountLocked: too many failures.
    """
    with uow:
        user = uow.users.get_by_username(username)
        failed = AuditOutcome.FAILURE
        if user is None:
            # Spend one hash anyway so that timing does not reveal which user names exist.
            hasher.hash(password)
            _audit(uow, ctx, AuditAction.LOGIN, username, f"user:{username}", outcome=failed)
            uow.commit()
            raise InvalidCredentials(AUTH_FAILED)
        error = _check_password(uow, hasher, user, password, ctx.clock())
        if error is None:
            uow.commit()
            return user
        _audit(
            uow,
            ctx,
            AuditAction.LOGIN,
            username,
            f"user:{username}",
            outcome=failed,
            why=type(error).__name__,
        )
        uow.commit()  # the failure counter and lock must persist
        raise error


def supervisor_approval(
    uow: AbstractUnitOfWork,
    hasher: PasswordHasher,
    ctx: Context,
    *,
    username: str,
    password: str,
    action: Action,
) -> Approval:
    """A supervisor types their password at the lane to approve one action.

    Failed attempts count towards the approver's lockout and are committed even though this
    raises, exactly like a failed login. They are audited like one too: a ``user.login``
    failure (so that ``audit list --action user.login --failures`` shows every wrong password,
    wherever it was typed) with ``purpose="approval"`` and the action that was to be approved,
    plus ``why`` (the error's name) when the user exists.

    Raises:
        InvalidCredentials, AccountLocked: for a wrong name or password.
        PermissionDenied: if the approver's role may not approve ``action`` (every cashier).
    """
    with uow:
        approver = uow.users.get_by_username(username)
        failed = AuditOutcome.FAILURE
        target = f"user:{username}"
        if approver is None:
            hasher.hash(password)
            _audit(
                uow,
                ctx,
                AuditAction.LOGIN,
                username,
                target,
                outcome=failed,
                purpose="approval",
                approving=action.value,
            )
            uow.commit()
            raise InvalidCredentials(AUTH_FAILED)
        # The password is checked like a login's (concurrent wrong passwords each count; see
        # _check_password), then the role.
        now = ctx.clock()
        error = _check_password(uow, hasher, approver, password, now)
        if error is None:
            try:
                approval = authorise(approver, action, now)
            except AuthError as refused:
                error = refused
            else:
                uow.commit()
                return approval
        _audit(
            uow,
            ctx,
            AuditAction.LOGIN,
            username,
            target,
            outcome=failed,
            why=type(error).__name__,
            purpose="approval",
            approving=action.value,
        )
        uow.commit()
        raise error


# -- shifts -----------------------------------------------------------------------------------
def open_shift(uow: AbstractUnitOfWork, ctx: Context, cashier: User, opening_float: Money) -> Shift:
    """Open the lane's shift for a cashier with the counted float.

    Raises:
        ShiftError: if the lane already has an open shift.
    """
    with uow:
        current = uow.shifts.open_for_lane(ctx.lane_id)
        if current is not None:
            raise ShiftError(f"lane {ctx.lane_id} already has an open shift ({current.shift_id})")
        shift = Shift.open(
            shift_id=ctx.new_id(),
            lane_id=ctx.lane_id,
            cashier_id=cashier.user_id,
            opening_float=opening_float,
            now=ctx.clock(),
        )
        uow.shifts.save(shift)
        target = f"shift:{shift.shift_id}"
        float_fen = opening_float.fen
        _audit(uow, ctx, AuditAction.SHIFT_OPENED, cashier.user_id, target, float_fen=float_fen)
        uow.commit()
        return shift


def current_shift(uow: AbstractUnitOfWork, ctx: Context) -> Shift:
    """The lane's open shift.

    Raises:
        ShiftError: when no shift is open (selling needs one).
    """
    shift = uow.shifts.open_for_lane(ctx.lane_id)
    if shift is None:
        raise ShiftError(f"lane {ctx.lane_id} has no open shift: open one first")
    return shift


def close_shift(
    uow: AbstractUnitOfWork, ctx: Context, counted_cash: Money, *, by: User | None = None
) -> Shift:
    """Close the lane's shift with the counted cash; the variance is on the returned shift.

    ``by`` (the signed-in user, when there is one) must be the shift's own cashier or a
    supervisor/admin: the cash count is the cashier's accountability, another cashier must not
    close it (and set its variance) for them.

    Raises:
        ShiftError: no open shift.
        PermissionDenied: ``by`` is another cashier.
    """
    with uow:
        shift = current_shift(uow, ctx)
        if by is not None and by.user_id != shift.cashier_id and by.role is Role.CASHIER:
            raise PermissionDenied(f"{by.username} may not close another cashier's shift")
        shift.close(counted_cash, ctx.clock())
        uow.shifts.save(shift)
        target = f"shift:{shift.shift_id}"
        counted = counted_cash.fen
        actor = by.user_id if by is not None else shift.cashier_id
        _audit(uow, ctx, AuditAction.SHIFT_CLOSED, actor, target, counted_fen=counted)
        uow.commit()
        return shift


def no_sale(uow: AbstractUnitOfWork, ctx: Context, approval: Approval, reason: str) -> NoSale:
    """Record a drawer opening without a sale (无销售开钱箱) on the lane's shift, approved by a
    supervisor. The caller opens the drawer after this returns (nothing is recorded if refused).

    Raises:
        ShiftError: no open shift, or an empty reason.
        PermissionDenied: unless a fresh ``NO_SALE`` approval is given.
    """
    reason = scrub(reason)  # free text is stored and printed: never a card number
    with uow:
        shift = current_shift(uow, ctx)
        record = shift.no_sale(approval, reason, ctx.clock())
        uow.shifts.save(shift)
        _audit(
            uow,
            ctx,
            AuditAction.DRAWER_NO_SALE,
            shift.cashier_id,
            f"shift:{shift.shift_id}",
            approver=approval.approver_id,
            reason=reason,
        )
        uow.commit()
        return record


# -- selling ----------------------------------------------------------------------------------
def start_sale(uow: AbstractUnitOfWork, ctx: Context, cashier: User) -> Sale:
    """Open a new sale in the current shift, with the next receipt number."""
    with uow:
        shift = current_shift(uow, ctx)
        sale = Sale.open(
            sale_id=ctx.new_id(),
            receipt_no=uow.receipts.next(ctx.lane_id),
            lane_id=ctx.lane_id,
            shift_id=shift.shift_id,
            cashier_id=cashier.user_id,
            now=ctx.clock(),
            promotions=ctx.promotions,
        )
        uow.sales.save(sale)
        uow.commit()
        return sale


def get_sale(uow: AbstractUnitOfWork, sale_id: str) -> Sale:
    """Load a sale by id (inside an open unit of work).

    Raises:
        UnknownSale: if there is none.
    """
    sale = uow.sales.get(sale_id)
    if sale is None:
        raise UnknownSale(f"no sale {sale_id}")
    return sale


def scan(uow: AbstractUnitOfWork, ctx: Context, sale_id: str, code: str) -> SaleLine:
    """Add the product behind a scanned code (GTIN or scale barcode) to the sale.

    Raises:
        InvalidBarcode, UnknownProduct, InactiveProduct: for a bad or unknown code.
    """
    return scan_into(uow, ctx, sale_id, code)[1]


def scan_into(
    uow: AbstractUnitOfWork, ctx: Context, sale_id: str, code: str, *, lane_id: str | None = None
) -> tuple[Sale, SaleLine]:
    """:func:`scan`, returning the changed sale too (one load per scan: the web lane answers a
    scan with the whole sale), and refusing a sale of another lane when ``lane_id`` is given.

    Raises:
        UnknownSale: no such sale (on ``lane_id``).
        InvalidBarcode, UnknownProduct, InactiveProduct: for a bad or unknown code.
    """
    with uow:
        sale = get_sale(uow, sale_id)
        if lane_id is not None and sale.lane_id != lane_id:
            raise UnknownSale(f"no sale {sale_id} on lane {lane_id}")
        found = lookup(code, uow.products, ctx.nomenclature)
        if found.amount is not None:
            line = sale.add_priced(found.product, found.amount, found.grams)
        elif found.grams is not None:
            line = sale.add_weighed(found.product, found.grams)
        else:
            line = sale.add_product(found.product)
        uow.sales.save(sale)
        uow.commit()
        return sale, line


def _edit_sale(uow: AbstractUnitOfWork, sale_id: str, change: Callable[[Sale], object]) -> Sale:
    """Load a sale, apply ``change`` (a domain command), save and commit; nothing on error."""
    with uow:
        sale = get_sale(uow, sale_id)
        change(sale)
        uow.sales.save(sale)
        uow.commit()
        return sale


def set_quantity(uow: AbstractUnitOfWork, sale_id: str, line_no: int, quantity: int) -> Sale:
    """Change a line's quantity (pieces only)."""
    return _edit_sale(uow, sale_id, lambda sale: sale.set_quantity(line_no, quantity))


def remove_line(
    uow: AbstractUnitOfWork, sale_id: str, line_no: int, approval: Approval | None = None
) -> Sale:
    """Void one line; it stays on the sale, marked voided, for the audit trail."""
    return _edit_sale(uow, sale_id, lambda sale: sale.remove_line(line_no, approval))


def hold_sale(uow: AbstractUnitOfWork, sale_id: str) -> Sale:
    """Suspend a sale (挂单) to serve the next customer."""
    return _edit_sale(uow, sale_id, Sale.hold)


def recall_sale(uow: AbstractUnitOfWork, sale_id: str) -> Sale:
    """Bring back a held sale (取单)."""
    return _edit_sale(uow, sale_id, Sale.recall)


def held_sales(uow: AbstractUnitOfWork, ctx: Context) -> list[Sale]:
    """The lane's held sales, oldest first."""
    with uow:
        return list(uow.sales.held(ctx.lane_id))


def pay_cash(
    uow: AbstractUnitOfWork,
    ctx: Context,
    sale_id: str,
    tendered: Money,
    guard: Callable[[Sale], None] | None = None,
) -> Sale:
    """Take cash; when the sale is fully paid it is completed and the shift's cash updated.

    Args:
        guard: called with the sale inside the same transaction, before the cash is taken; it
            raises to refuse (the payment orchestrator refuses cash while a card/QR payment of
            the sale is still open: ``PaymentOrchestrator.pay_cash``).

    Raises:
        TenderError: for a zero or negative amount.
    """
    with uow:
        sale = get_sale(uow, sale_id)
        if guard is not None:
            guard(sale)
        sale.add_tender(TenderKind.CASH, tendered)
        if not sale.remaining:
            complete_paid_sale(uow, ctx, sale)
        uow.sales.save(sale)
        uow.commit()
        return sale


def complete_paid_sale(uow: AbstractUnitOfWork, ctx: Context, sale: Sale) -> None:
    """Complete a fully paid sale: count it into its shift and queue it for the store server.

    Called inside the caller's unit of work (cash here, card/QR by the payment orchestrator),
    so that the sale's completion commits together with the payment that completed it.

    Raises:
        DomainError: the sale cannot be completed, or its shift is closed or missing.
    """
    sale.complete(ctx.clock())
    shift = uow.shifts.get(sale.shift_id)
    if shift is None:  # a sale always has its shift, unless storage was tampered with
        raise ShiftError(f"sale {sale.sale_id} refers to a missing shift {sale.shift_id}")
    shift.record_sale(sale)
    uow.shifts.save(shift)
    uow.outbox.add("sale.completed", {"sale_id": sale.sale_id, "lane_id": sale.lane_id})
    target, paid = f"sale:{sale.sale_id}", sale.total_due.fen
    _audit(uow, ctx, AuditAction.SALE_COMPLETED, sale.cashier_id, target, total_fen=paid)


def void_sale(
    uow: AbstractUnitOfWork, ctx: Context, sale_id: str, approval: Approval, reason: str
) -> Sale:
    """Void (作废) an unfinished sale with a supervisor's approval; it is kept for the audit trail.

    Raises:
        TendersOutstanding: while card/QR payments on it are still live (void them first).
        PermissionDenied: if the approval is not for voiding a sale.
    """
    reason = scrub(reason)  # free text is stored and printed: never a card number

    def void(sale: Sale) -> None:
        sale.void(approval, reason, ctx.clock())
        _audit(
            uow,
            ctx,
            AuditAction.SALE_VOIDED,
            sale.cashier_id,
            f"sale:{sale_id}",
            approver=approval.approver_id,
            reason=reason,
        )

    return _edit_sale(uow, sale_id, void)


def return_for_cash(
    uow: AbstractUnitOfWork,
    ctx: Context,
    cashier: User,
    *,
    sale_id: str,
    items: Sequence[ReturnItem],
    approval: Approval,
    reason: str,
) -> Return:
    """Take goods back against an earlier sale and refund them in cash from the drawer.

    Card and QR refunds go back to the original payment through the terminal orchestrator.

    Raises:
        ReturnError: more than was sold (minus earlier returns), or the sale is not completed.
        ShiftError: no open shift, or not enough cash in the drawer.
    """
    with uow:
        shift = current_shift(uow, ctx)
        sale = get_sale(uow, sale_id)
        prior = uow.returns.for_sale(sale_id)
        refund = total([line.amount for line in Return.refund_for(sale, items, prior)])
        ret = Return.create(
            return_id=ctx.new_id(),
            sale=sale,
            items=items,
            tenders=[RefundTender(TenderKind.CASH, refund)],
            approval=approval,
            lane_id=ctx.lane_id,
            shift_id=shift.shift_id,
            cashier_id=cashier.user_id,
            reason=scrub(reason),
            now=ctx.clock(),
            prior_returns=prior,
        )
        shift.record_return(ret)
        uow.returns.add(ret)
        uow.shifts.save(shift)
        uow.outbox.add("return.created", {"return_id": ret.return_id, "sale_id": sale_id})
        _audit(
            uow,
            ctx,
            AuditAction.RETURN_CASH,
            cashier.user_id,
            f"sale:{sale_id}",
            refund_fen=refund.fen,
            approver=approval.approver_id,
            return_id=ret.return_id,
        )
        uow.commit()
        return ret


# -- reports ----------------------------------------------------------------------------------
def business_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC start and end of a local business day."""
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def _day_shifts(uow: AbstractUnitOfWork, ctx: Context, day: date) -> Sequence[Shift]:
    start, end = business_day_bounds(day, ctx.tz)
    return uow.shifts.list_for_day(ctx.lane_id, start, end)


def build_x_report(uow: AbstractUnitOfWork, ctx: Context, day: date | None = None) -> Report:
    """The X report of a business day so far (default: today); reads only."""
    with uow:
        now = ctx.clock()
        shifts = _day_shifts(uow, ctx, day or now.astimezone(ctx.tz).date())
        ids = [s.shift_id for s in shifts]
        return x_report(shifts, uow.sales.list_by_shift(ids), uow.returns.list_by_shift(ids), now)


def close_day(uow: AbstractUnitOfWork, ctx: Context, day: date | None = None) -> Report:
    """Build, number and store the Z report of a business day (default: today).

    Raises:
        ReportError: while a shift is open or a sale unfinished, or with no shift at all.
    """
    with uow:
        now = ctx.clock()
        business_day = day or now.astimezone(ctx.tz).date()
        shifts = _day_shifts(uow, ctx, business_day)
        ids = [s.shift_id for s in shifts]
        report = z_report(
            number=uow.z_reports.last_number(ctx.lane_id) + 1,
            business_day=business_day,
            shifts=shifts,
            sales=uow.sales.list_by_shift(ids),
            returns=uow.returns.list_by_shift(ids),
            now=now,
        )
        uow.z_reports.add(report, ctx.lane_id)
        target = f"z:{ctx.lane_id}:{report.number}"
        _audit(uow, ctx, AuditAction.Z_REPORT, "system", target, day=business_day.isoformat())
        uow.commit()
        return report
