"""Shared pieces of the cashier API modules: the seller dependency, request bodies used by
several routes, sale loading with the lane check, receipts, supervisor approvals and the
peripheral hook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Path
from pydantic import BaseModel, Field

from shouyin.devices.receipt import ReceiptHeader, render_sale
from shouyin.domain.carddata import scrub
from shouyin.domain.sale import Sale
from shouyin.domain.users import Action, Approval
from shouyin.lane import services
from shouyin.web.auth import Principal, require
from shouyin.web.devices import PeripheralHook, warning_of
from shouyin.web.errors import ApiError
from shouyin.web.events import WebEvent
from shouyin.web.runtime import LaneRuntime
from shouyin.web.schemas import FEN_LIMIT

__all__ = [
    "Amount",
    "ApproverIn",
    "DeviceWarning",
    "SaleId",
    "Seller",
    "approve",
    "cashier_name",
    "device_call",
    "load_sale",
    "publish_sale",
    "receipt_text",
    "shielded",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

Seller = Annotated[Principal, Depends(require(Action.SELL))]
"""A signed-in user who may sell (cashiers, supervisors, admins)."""

SaleId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Amount = Annotated[int, Field(gt=0, le=FEN_LIMIT, description="fen")]


class DeviceWarning(BaseModel):
    """A peripheral problem to show the cashier (the sale itself went through)."""

    zh: str
    en: str


class ApproverIn(BaseModel):
    """A supervisor's name and password, typed at the lane to approve one action."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


def unknown_sale() -> ApiError:
    """The error for a sale that does not exist or is on another lane (indistinguishable)."""
    return ApiError(404, "unknown_sale", "没有这笔交易", "No such sale")


def load_sale(runtime: LaneRuntime, user: Principal, sale_id: str) -> Sale:
    """The sale, which must be on the user's lane.

    Raises:
        ApiError: 404 when there is no such sale on the lane.
    """
    uow = runtime.uow()
    with uow:
        sale = uow.sales.get(sale_id)
    if sale is None or sale.lane_id != user.lane_id:
        raise unknown_sale()
    return sale


async def approve(
    runtime: LaneRuntime, user: Principal, approver: ApproverIn, action: Action
) -> Approval:
    """Check a supervisor's password for ``action`` (argon2 off the event loop; failures count
    towards the supervisor's lockout and are logged without the password)."""
    ctx = runtime.context(user.lane_id)

    def check() -> Approval:
        return services.supervisor_approval(
            runtime.uow(),
            runtime.hasher,
            ctx,
            username=approver.username,
            password=approver.password,
            action=action,
        )

    try:
        return await runtime.run_blocking(check)
    except Exception as error:
        logger.warning(
            "approval of %s by %r refused at lane %s (%s)",
            action.value,
            scrub(approver.username[:64]),
            user.lane_id,
            type(error).__name__,
        )
        raise


def cashier_name(runtime: LaneRuntime, user_id: str) -> str:
    """The display name of a user id (for receipts), or the id when unknown."""
    uow = runtime.uow()
    with uow:
        found = uow.users.get(user_id)
    return found.display_name if found is not None else user_id


def receipt_text(runtime: LaneRuntime, sale: Sale, *, copy: bool = False) -> str:
    """The receipt of a sale as text (the printer's layout, 58 mm)."""
    header = ReceiptHeader(store_name=runtime.settings.store_name)
    lines = render_sale(
        sale,
        header,
        cashier_name=cashier_name(runtime, sale.cashier_id),
        printed_at=runtime.clock() if copy else None,
        copy_mark="重印" if copy else "",
    )
    return "\n".join(lines)


async def device_call(
    runtime: LaneRuntime, lane_id: str, call: Callable[[PeripheralHook], None]
) -> DeviceWarning | None:
    """Run a peripheral call (in a worker thread: devices block up to their timeout) when the
    lane has peripherals; a failure becomes a warning for the cashier (also published as a
    ``device.warning`` event) instead of an error: a sale stays completed when the printer is
    out of paper."""
    hook = runtime.devices.get(lane_id)
    if hook is None:
        return None
    try:
        await runtime.run_blocking(lambda: call(hook))
    except Exception as error:  # a device problem must never undo a sale
        logger.warning("lane %s device problem: %s", lane_id, error)
        zh, en = warning_of(error)
        runtime.bus.publish(WebEvent("device.warning", {"zh": zh, "en": en}, lane_id=lane_id))
        return DeviceWarning(zh=zh, en=en)
    return None


def publish_sale(runtime: LaneRuntime, kind: str, sale: Sale) -> None:
    """Tell the lane's watchers (customer display, admin dashboard) about a sale."""
    runtime.bus.publish(
        WebEvent(
            kind,
            {
                "sale_id": sale.sale_id,
                "receipt_no": sale.receipt_no,
                "state": sale.state.value,
                "total_fen": sale.total_due.fen,
            },
            lane_id=sale.lane_id,
        )
    )


async def shielded(runtime: LaneRuntime, work: Awaitable[T]) -> T:
    """Run terminal work so that a closed browser tab does not cancel it half way (the
    payment goes on and its outcome is published as an event)."""
    task = runtime.spawn(work)
    return await asyncio.shield(task)
