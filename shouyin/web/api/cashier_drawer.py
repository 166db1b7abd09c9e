"""The cashier API, part 3: the cash drawer and the receipt printer as the cashier page sees them.

* ``POST /api/drawer/no-sale``: open the drawer without a sale (无销售开钱箱, e.g. to change a
  note), approved by a supervisor's name and password typed at the lane, with a reason. The
  no-sale is recorded on the shift (and in the audit log) first, then the drawer is kicked
  through the printer (recorded again, success or failure, by the drawer's audit callback). A
  drawer that does not open comes back as a warning: the no-sale stays recorded.
* ``GET /api/lane/printer``: the lane printer's last known state (no printer I/O: the runtime
  reads it in the background and after each print), for the page's paper-out warning, which
  then follows the ``printer.status`` events.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from shouyin.domain.users import Action
from shouyin.lane import services
from shouyin.web.api._common import ApproverIn, DeviceWarning, Seller, approve, device_call
from shouyin.web.auth import RuntimeDep

__all__ = ["NoSaleIn", "NoSaleOut", "PrinterOut", "router"]

router = APIRouter(prefix="/api", tags=["cashier"])


class NoSaleIn(BaseModel):
    """A supervised no-sale: who approves, and why."""

    approver: ApproverIn
    reason: str = Field(min_length=1, max_length=200, description="why the drawer is opened")


class NoSaleOut(BaseModel):
    """The no-sale as recorded, and whether the drawer opened."""

    approved_by: str
    reason: str
    drawer_opened: bool = Field(description="false: no drawer here, or it could not be kicked")
    device_warning: DeviceWarning | None = None


class PrinterOut(BaseModel):
    """The lane's receipt printer as last read."""

    present: bool
    state: str | None = Field(
        None, description="ok, near_end, paper_out, cover_open, offline, unknown; null: not read"
    )
    can_print: bool | None = None


@router.post(
    "/drawer/no-sale", response_model=NoSaleOut, summary="Open the drawer (开钱箱, no sale)"
)
async def no_sale(body: NoSaleIn, user: Seller, runtime: RuntimeDep) -> NoSaleOut:
    """Record a no-sale on the open shift with a supervisor's approval, then open the drawer.

    Refused (nothing recorded, drawer shut) without an open shift or a valid approval.
    """
    approval = await approve(runtime, user, body.approver, Action.NO_SALE)
    ctx = runtime.context(user.lane_id)
    record = await runtime.run_blocking(
        lambda: services.no_sale(runtime.uow(), ctx, approval, body.reason)
    )
    hook = runtime.devices.get(user.lane_id)
    warning = await device_call(
        runtime,
        user.lane_id,
        lambda h: h.no_sale(user_id=user.user.user_id, approved_by=approval.approver_id),
    )
    return NoSaleOut(
        approved_by=record.approver_id,
        reason=record.reason,
        drawer_opened=hook is not None and warning is None,
        device_warning=warning,
    )


@router.get("/lane/printer", response_model=PrinterOut, summary="The lane's receipt printer")
async def lane_printer(user: Seller, runtime: RuntimeDep) -> PrinterOut:
    """The printer's last known state (never waits on the printer)."""
    hook = runtime.devices.get(user.lane_id)
    status = hook.printer_status() if hook is not None else None
    has_printer = bool(getattr(hook, "has_printer", status is not None))
    if status is None:
        return PrinterOut(present=has_printer)
    return PrinterOut(present=True, state=status.state.value, can_print=status.state.can_print)
