"""The cashier API, part 1: the lane, the shift and building a sale (thin routes over
:mod:`shouyin.lane.services`). Tenders, voids and returns are in
:mod:`shouyin.web.api.cashier_pay`.

Every route needs a user who may sell (:data:`~shouyin.web.api._common.Seller`) and works on the
session's lane only: a sale of another lane is answered 404, exactly like a sale that does not
exist. Every answer that changes a sale carries the whole sale (:class:`SaleOut`), so the page
renders a scan from its response with no second request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, model_validator

from shouyin.devices.report_layout import render_report
from shouyin.domain.errors import InactiveProduct, UnknownProduct
from shouyin.domain.money import Money
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import SaleLine
from shouyin.lane import services
from shouyin.store.uow import AbstractUnitOfWork
from shouyin.web.api._common import (
    Amount,
    SaleId,
    Seller,
    device_call,
    load_sale,
    unknown_sale,
)
from shouyin.web.auth import RuntimeDep
from shouyin.web.errors import ApiError
from shouyin.web.runtime import LaneRuntime
from shouyin.web.schemas import (
    FEN_LIMIT,
    LineOut,
    SaleOut,
    SaleSummary,
    ShiftOut,
    of_sale,
    of_shift,
    summary_of,
)

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["cashier"])

RETURN_LOOKBACK = timedelta(days=90)
"""How far back a receipt number is looked up for a return."""


# -- schemas ---------------------------------------------------------------------------------
class TerminalOut(BaseModel):
    """The lane's payment terminal as the cashier sees it."""

    present: bool
    ready: bool
    recovered: bool


class LaneOut(BaseModel):
    """Everything the cashier page needs at start."""

    lane_id: str
    store_name: str
    terminal: TerminalOut
    shift: ShiftOut | None
    current_sale: SaleOut | None
    held: list[SaleSummary]


class OpenShiftIn(BaseModel):
    """Open a shift with the counted float (备用金)."""

    opening_float_fen: int = Field(ge=0, le=FEN_LIMIT)


class CloseShiftIn(BaseModel):
    """Close the shift (交班) with the counted cash."""

    counted_cash_fen: int = Field(ge=0, le=FEN_LIMIT)


class ShiftCloseOut(BaseModel):
    """The closed shift and the day's X report text so far."""

    shift: ShiftOut
    report_text: str


class ReportOut(BaseModel):
    """An X report as printed."""

    text: str


class ScanIn(BaseModel):
    """A scanned or typed code: a barcode (GTIN, scale label) in ``code``, or a PLU in ``plu``
    with ``grams`` for weighed goods or ``quantity`` for pieces."""

    code: str | None = Field(default=None, min_length=1, max_length=64)
    plu: str | None = Field(default=None, min_length=1, max_length=16, pattern=r"^[0-9A-Za-z]+$")
    grams: int | None = Field(default=None, ge=1, le=100_000)
    quantity: int = Field(default=1, ge=1, le=9999)

    @model_validator(mode="after")
    def _one_code(self) -> ScanIn:
        if (self.code is None) == (self.plu is None):
            raise ValueError("give either code or plu")
        return self


class ScanOut(BaseModel):
    """The line just added and the whole sale after it."""

    line: LineOut
    sale: SaleOut


class QuantityIn(BaseModel):
    """A line's new quantity (pieces only)."""

    quantity: int = Field(ge=1, le=9999)


# -- helpers ---------------------------------------------------------------------------------
def _current_sale(runtime: LaneRuntime, lane_id: str) -> SaleOut | None:
    uow = runtime.uow()
    with uow:
        shift = uow.shifts.open_for_lane(lane_id)
        if shift is None:
            return None
        unfinished = uow.sales.unfinished(shift.shift_id)  # oldest first
    return of_sale(unfinished[-1]) if unfinished else None


def _sale_out(runtime: LaneRuntime, sale: Sale) -> SaleOut:
    """The API form of a changed sale; the customer display shows it too (in the background:
    a slow or broken display must not slow down scanning; its problems arrive as events)."""
    if sale.lane_id in runtime.devices:
        runtime.spawn(device_call(runtime, sale.lane_id, lambda d: d.sale_changed(sale)))
    return of_sale(sale)


def _sell_plu(uow: AbstractUnitOfWork, sale_id: str, body: ScanIn) -> SaleLine:
    """Add a product by PLU (typed by the cashier for loose produce)."""
    assert body.plu is not None
    with uow:
        sale = services.get_sale(uow, sale_id)
        product = uow.products.by_plu(body.plu)
        if product is None:
            raise UnknownProduct(body.plu)
        if not product.active:
            raise InactiveProduct(product.sku, product.name)
        if product.weighed:
            if body.grams is None:
                raise ApiError(422, "weight_required", "请输入重量（克）", "Enter the weight (g)")
            line = sale.add_weighed(product, body.grams)
        else:
            line = sale.add_product(product, body.quantity)
        uow.sales.save(sale)
        uow.commit()
        return line


# -- lane and shift --------------------------------------------------------------------------
@router.get("/lane", response_model=LaneOut, summary="The lane's state (page start)")
async def lane(user: Seller, runtime: RuntimeDep) -> LaneOut:
    """The lane, its terminal, the open shift, the unfinished sale and the held sales."""
    ctx = runtime.context(user.lane_id)
    uow = runtime.uow()
    with uow:
        shift = uow.shifts.open_for_lane(user.lane_id)
    held = services.held_sales(runtime.uow(), ctx)
    return LaneOut(
        lane_id=user.lane_id,
        store_name=runtime.settings.store_name,
        terminal=TerminalOut(**runtime.terminal_status(user.lane_id)),
        shift=of_shift(shift) if shift else None,
        current_sale=_current_sale(runtime, user.lane_id),
        held=[summary_of(s) for s in held],
    )


@router.get("/lane/terminal", response_model=TerminalOut, summary="The lane's terminal state")
async def lane_terminal(user: Seller, runtime: RuntimeDep) -> TerminalOut:
    """Whether the lane has a terminal, it is logged in, and its journal is settled (the page
    polls this to show the terminal's state)."""
    return TerminalOut(**runtime.terminal_status(user.lane_id))


@router.post("/shift", response_model=ShiftOut, status_code=201, summary="Open the shift (开班)")
async def open_shift(body: OpenShiftIn, user: Seller, runtime: RuntimeDep) -> ShiftOut:
    """Open the lane's shift for the signed-in cashier with the counted float."""
    ctx = runtime.context(user.lane_id)
    shift = services.open_shift(runtime.uow(), ctx, user.user, Money(body.opening_float_fen))
    return of_shift(shift)


def _x_text(runtime: LaneRuntime, lane_id: str) -> str:
    report = services.build_x_report(runtime.uow(), runtime.context(lane_id))
    uow = runtime.uow()
    with uow:
        names = {}
        for cashier_id in report.by_cashier:
            found = uow.users.get(cashier_id)
            names[cashier_id] = found.display_name if found else cashier_id
    return "\n".join(render_report(report, runtime.settings.store_name, cashier_names=names))


@router.get("/shift/x-report", response_model=ReportOut, summary="X report so far (X 报表)")
async def x_report(user: Seller, runtime: RuntimeDep) -> ReportOut:
    """The X report of the lane's business day so far, as printed."""
    return ReportOut(text=_x_text(runtime, user.lane_id))


@router.post("/shift/close", response_model=ShiftCloseOut, summary="Close the shift (交班)")
async def close_shift(body: CloseShiftIn, user: Seller, runtime: RuntimeDep) -> ShiftCloseOut:
    """Close the lane's shift with the counted cash; the answer has the variance."""
    ctx = runtime.context(user.lane_id)
    shift = services.close_shift(runtime.uow(), ctx, Money(body.counted_cash_fen), by=user.user)
    return ShiftCloseOut(shift=of_shift(shift), report_text=_x_text(runtime, user.lane_id))


# -- sales -----------------------------------------------------------------------------------
@router.post("/sales", response_model=SaleOut, status_code=201, summary="Start a sale")
async def start_sale(user: Seller, runtime: RuntimeDep) -> SaleOut:
    """Open a new sale in the lane's shift."""
    sale = services.start_sale(runtime.uow(), runtime.context(user.lane_id), user.user)
    return of_sale(sale)


@router.get("/sales/held", response_model=list[SaleSummary], summary="Held sales (挂单)")
async def held(user: Seller, runtime: RuntimeDep) -> list[SaleSummary]:
    """The lane's held sales, oldest first."""
    return [
        summary_of(s) for s in services.held_sales(runtime.uow(), runtime.context(user.lane_id))
    ]


@router.get(
    "/sales/by-receipt/{receipt_no}", response_model=SaleOut, summary="Find a sale by receipt no."
)
async def by_receipt(
    receipt_no: Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")],
    user: Seller,
    runtime: RuntimeDep,
) -> SaleOut:
    """A sale of this lane by its receipt number (for a return), looked up over the last 90
    days."""
    uow = runtime.uow()
    with uow:
        sale = uow.sales.by_receipt(user.lane_id, receipt_no)
    if sale is None or sale.opened_at < runtime.clock() - RETURN_LOOKBACK:
        raise ApiError(404, "unknown_sale", "没有这笔交易", "No such sale")
    return of_sale(sale)


@router.get("/sales/{sale_id}", response_model=SaleOut, summary="A sale")
async def get_sale(sale_id: SaleId, user: Seller, runtime: RuntimeDep) -> SaleOut:
    """A sale of this lane."""
    return of_sale(load_sale(runtime, user, sale_id))


@router.post("/sales/{sale_id}/scan", response_model=ScanOut, summary="Scan (扫码) or PLU")
async def scan(sale_id: SaleId, body: ScanIn, user: Seller, runtime: RuntimeDep) -> ScanOut:
    """Add the product behind a barcode (GTIN, scale label) or a PLU to the sale."""
    if body.code is not None:
        ctx = runtime.context(user.lane_id)
        try:  # one load per scan: the scan is the cashier's hottest path
            sale, line = services.scan_into(
                runtime.uow(), ctx, sale_id, body.code, lane_id=user.lane_id
            )
        except services.UnknownSale:
            raise unknown_sale() from None
    else:
        load_sale(runtime, user, sale_id)
        line = _sell_plu(runtime.uow(), sale_id, body)
        sale = load_sale(runtime, user, sale_id)
    out = _sale_out(runtime, sale)
    added = next(x for x in out.lines if x.line_no == line.line_no)
    return ScanOut(line=added, sale=out)


@router.put("/sales/{sale_id}/lines/{line_no}", response_model=SaleOut, summary="Change a quantity")
async def set_quantity(
    sale_id: SaleId,
    line_no: Annotated[int, Path(ge=1, le=100_000)],
    body: QuantityIn,
    user: Seller,
    runtime: RuntimeDep,
) -> SaleOut:
    """Change a line's quantity (pieces only)."""
    load_sale(runtime, user, sale_id)
    sale = services.set_quantity(runtime.uow(), sale_id, line_no, body.quantity)
    return _sale_out(runtime, sale)


@router.delete("/sales/{sale_id}/lines/{line_no}", response_model=SaleOut, summary="Remove a line")
async def remove_line(
    sale_id: SaleId,
    line_no: Annotated[int, Path(ge=1, le=100_000)],
    user: Seller,
    runtime: RuntimeDep,
) -> SaleOut:
    """Void one line (it stays on the sale, marked voided, for the audit trail)."""
    load_sale(runtime, user, sale_id)
    sale = services.remove_line(runtime.uow(), sale_id, line_no)
    return _sale_out(runtime, sale)


@router.post("/sales/{sale_id}/hold", response_model=SaleOut, summary="Hold (挂单)")
async def hold(sale_id: SaleId, user: Seller, runtime: RuntimeDep) -> SaleOut:
    """Suspend the sale to serve the next customer."""
    load_sale(runtime, user, sale_id)
    return of_sale(services.hold_sale(runtime.uow(), sale_id))


@router.post("/sales/{sale_id}/recall", response_model=SaleOut, summary="Recall (取单)")
async def recall(sale_id: SaleId, user: Seller, runtime: RuntimeDep) -> SaleOut:
    """Bring back a held sale."""
    load_sale(runtime, user, sale_id)
    return _sale_out(runtime, services.recall_sale(runtime.uow(), sale_id))


_ = Amount  # re-exported for the tender module's schemas
