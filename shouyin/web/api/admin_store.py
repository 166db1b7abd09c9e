"""Admin API, part 2: catalogue and prices, staff accounts, shifts and X/Z reports.

Who may do what follows the permission table of :mod:`shouyin.domain.users`: supervisors and
admins search the catalogue, list shifts and read X reports of their lane (admins: any lane);
closing a day (Z report) needs ``Z_REPORT``; changing a price and managing accounts are for
admins only (``MANAGE_USERS``, ``UNLOCK_USER``). Every price change is recorded for the audit
trail with who, from where, and the old and new price.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query, Request

from shouyin.devices.report_layout import render_report
from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome
from shouyin.domain.reports import Report
from shouyin.domain.users import Action, User, unlock
from shouyin.lane import services
from shouyin.store.audit_repo import CheckpointStore
from shouyin.web.admin_catalogue import InvalidPrice, UnknownProduct, change_price, find_products
from shouyin.web.admin_queries import shift_summaries
from shouyin.web.admin_schemas import (
    PriceChangeIn,
    PriceChangeOut,
    ProductOut,
    ReportOut,
    ShiftOut,
    UserIn,
    UserOut,
)
from shouyin.web.api.admin import LaneQuery, shift_out, visible_lane
from shouyin.web.auth import AdminUser, Principal, RuntimeDep, SupervisorUser, require
from shouyin.web.errors import ApiError
from shouyin.web.runtime import LaneRuntime

__all__ = ["router"]

router = APIRouter(prefix="/api/admin", tags=["admin"])

UserAdmin = Annotated[Principal, Depends(require(Action.MANAGE_USERS))]
ZReporter = Annotated[Principal, Depends(require(Action.Z_REPORT))]
DayQuery = Annotated[date | None, Query(description="business day (default: today)")]


FIRST_DAY: Final = date(2000, 1, 1)
LAST_DAY: Final = date(2199, 12, 31)


def business_day(runtime: LaneRuntime, day: date | None) -> date:
    """``day``, or today in the store's time zone.

    Raises:
        ApiError: 422 for a day outside 2000-2199 (no store has data there; the bounds also
            keep the day's UTC limits representable).
    """
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise ApiError(
            422,
            "invalid_day",
            "营业日超出范围（2000-2199 年）",
            "Business day out of range (2000-2199)",
        )
    return day or runtime.clock().astimezone(services.STORE_TZ).date()


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


# -- catalogue -------------------------------------------------------------------------------------
@router.get("/products", response_model=list[ProductOut], summary="Search the catalogue")
def products(
    user: SupervisorUser,
    runtime: RuntimeDep,
    q: Annotated[str, Query(min_length=1, max_length=64, description="SKU, barcode or name")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[ProductOut]:
    """Products by exact SKU or barcode, then by name or 助记码 prefix."""
    return [
        ProductOut(
            sku=p.sku,
            name=p.name,
            price_fen=p.price.fen,
            member_price_fen=p.member_price.fen if p.member_price is not None else None,
            unit=p.unit.value,
            barcodes=list(p.barcodes),
            category=p.category,
            active=p.active,
        )
        for p in find_products(runtime.catalogue, q, limit)
    ]


@router.put("/products/{sku}/price", response_model=PriceChangeOut, summary="Change a price (改价)")
def set_price(
    sku: str, body: PriceChangeIn, user: AdminUser, runtime: RuntimeDep, request: Request
) -> PriceChangeOut:
    """Set the price (and optionally the member price) in fen; recorded for the audit trail."""
    try:
        change = change_price(
            runtime.engine,
            sku,
            body.price_fen,
            member_price=body.member_price_fen,
            changed_by=user.user.user_id,
            source=_client(request),
            now=runtime.clock(),
            checkpoints=CheckpointStore(runtime.settings.keys_dir),
        )
    except InvalidPrice as error:
        raise ApiError(422, "invalid_price", error.message("zh"), error.message("en")) from error
    except UnknownProduct as error:
        raise ApiError(404, "unknown_product", error.message("zh"), error.message("en")) from error
    return PriceChangeOut(
        sku=change.sku,
        name=change.name,
        old_price_fen=change.old_price,
        new_price_fen=change.new_price,
        old_member_price_fen=change.old_member_price,
        new_member_price_fen=change.new_member_price,
        changed_by=change.changed_by,
        at=change.at,
    )


# -- users -----------------------------------------------------------------------------------------
def _user_out(user: User, runtime: LaneRuntime) -> UserOut:
    return UserOut(
        user_id=user.user_id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        active=user.active,
        locked=user.is_locked(runtime.clock()),
        locked_until=user.locked_until,
        failed_logins=user.failed_logins,
        last_login_at=user.last_login_at,
    )


@router.get("/users", response_model=list[UserOut], summary="Staff accounts")
def users(user: UserAdmin, runtime: RuntimeDep) -> list[UserOut]:
    """Every account with its role and lock (never a password hash)."""
    uow = runtime.uow()
    with uow:
        found = uow.users.list()
    return [_user_out(u, runtime) for u in sorted(found, key=lambda u: u.username)]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add an account")
async def add_user(body: UserIn, user: UserAdmin, runtime: RuntimeDep) -> UserOut:
    """Create an account (password rules per role: 6-digit PIN or 8+ characters)."""

    def create() -> User:
        return services.create_user(
            runtime.uow(),
            runtime.hasher,
            runtime.context(user.lane_id),
            username=body.username,
            display_name=body.display_name,
            role=body.role,
            password=body.password,
        )

    try:
        created = await asyncio.to_thread(create)  # argon2: off the event loop
    except services.UserExists as error:
        raise ApiError(
            409, "user_exists", "用户名已存在", "That user name is already taken"
        ) from error
    return _user_out(created, runtime)


@router.post("/users/{user_id}/unlock", response_model=UserOut, summary="Unlock an account")
def unlock_user(
    user_id: str,
    user: Annotated[Principal, Depends(require(Action.UNLOCK_USER))],
    runtime: RuntimeDep,
    request: Request,
) -> UserOut:
    """Unlock a locked account early and reset its failure counter (audited)."""
    uow = runtime.uow()
    uow.checkpoints = CheckpointStore(runtime.settings.keys_dir)
    with uow:
        target = uow.users.get(user_id)
        if target is None:
            raise ApiError(404, "unknown_user", "没有这个用户", "No such user")
        unlock(target, by=user.user)
        uow.users.save(target)
        uow.audit.append(
            AuditEvent(
                AuditAction.USER_UNLOCKED,
                AuditOutcome.SUCCESS,
                user.user.user_id,
                _client(request),
                f"user:{target.username}",
                runtime.clock(),
            )
        )
        uow.commit()
    return _user_out(target, runtime)


# -- shifts and reports ----------------------------------------------------------------------------
@router.get("/shifts", response_model=list[ShiftOut], summary="Shifts of a day (班次)")
def shifts(
    user: SupervisorUser, runtime: RuntimeDep, day: DayQuery = None, lane_id: LaneQuery = None
) -> list[ShiftOut]:
    """The shifts opened on a business day (a supervisor: their lane)."""
    lane = visible_lane(user, lane_id)
    with runtime.engine.connect() as conn:
        found = shift_summaries(conn, business_day(runtime, day), services.STORE_TZ, lane_id=lane)
    return [shift_out(s) for s in found]


def _report_out(report: Report, runtime: LaneRuntime) -> ReportOut:
    uow = runtime.uow()
    with uow:
        names = {u.user_id: u.display_name for u in uow.users.list()}
    return ReportOut(
        kind=report.kind.value,
        number=report.number,
        business_day=report.business_day.isoformat() if report.business_day else None,
        generated_at=report.generated_at,
        sales_count=report.sales_count,
        returns_count=report.returns_count,
        voids_count=report.voids_count,
        gross_fen=report.gross.fen,
        discounts_fen=report.discounts.fen,
        net_sales_fen=report.net_sales.fen,
        refunds_fen=report.refunds.fen,
        net_fen=report.net.fen,
        by_tender_fen={kind.value: t.net.fen for kind, t in report.by_tender.items()},
        cash_expected_fen=report.cash_expected.fen,
        cash_counted_fen=report.cash_counted.fen if report.cash_counted is not None else None,
        lines=render_report(report, runtime.settings.store_name, cashier_names=names),
    )


def _report_lane(user: Principal, lane_id: str | None) -> str:
    return visible_lane(user, lane_id) or user.lane_id


@router.get("/reports/x", response_model=ReportOut, summary="X report (中间报表)")
def x_report(
    user: SupervisorUser, runtime: RuntimeDep, day: DayQuery = None, lane_id: LaneQuery = None
) -> ReportOut:
    """The X report of a lane's business day so far; changes nothing."""
    lane = _report_lane(user, lane_id)
    the_day = business_day(runtime, day)
    report = services.build_x_report(runtime.uow(), runtime.context(lane), the_day)
    return _report_out(report, runtime)


@router.post("/reports/z", response_model=ReportOut, status_code=201, summary="Z report (日结)")
def z_report(
    user: ZReporter, runtime: RuntimeDep, day: DayQuery = None, lane_id: LaneQuery = None
) -> ReportOut:
    """Close a lane's business day: build, number and store its Z report.

    Refused (409) while a shift is open or a sale unfinished.
    """
    lane = _report_lane(user, lane_id)
    report = services.close_day(runtime.uow(), runtime.context(lane), business_day(runtime, day))
    return _report_out(report, runtime)


@router.get("/reports/z/{lane_id}/{number}", response_model=ReportOut, summary="A stored Z report")
def stored_z_report(
    lane_id: Annotated[str, Path(max_length=32)],
    number: Annotated[int, Path(ge=1, le=2_000_000_000)],
    user: SupervisorUser,
    runtime: RuntimeDep,
) -> ReportOut:
    """A Z report as it was printed (for a reprint)."""
    lane = _report_lane(user, lane_id)
    uow = runtime.uow()
    with uow:
        report = uow.z_reports.get(lane, number)
    if report is None:
        raise ApiError(404, "unknown_report", "没有这份日结报表", "No such Z report")
    return _report_out(report, runtime)
