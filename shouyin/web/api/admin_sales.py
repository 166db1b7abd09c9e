"""Admin API, part 3: the sales journal, sales by hour, reconciliation (对账) and the logs.

Supervisors read the journal and the hourly sales of their lane (admins: any lane, or all);
reconciliation and the server's logs are for admins (``RECONCILIATION``, ``VIEW_LOGS``). Card
numbers appear only masked (first 6 + last 4), and log lines were card-scrubbed before they were
kept.

Reconciliation matches the lane journal (this database) with the terminal batch and the
acquirer ledger, which the admin uploads as files (records CSV; the ledger also as the acquirer's
JSON export), exactly as ``shouyin reconcile`` does; the last result stays in memory for the
page to show.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, UploadFile

from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import Action
from shouyin.lane import services
from shouyin.payments.reconcile import Outcome, ReconciliationReport, Record, reconcile
from shouyin.payments.reconcile_io import (
    ReconcileInputError,
    read_ledger_json,
    read_records_csv,
    record_from_intent,
)
from shouyin.web.admin_queries import MAX_JOURNAL_ROWS, sales_by_hour, sales_journal
from shouyin.web.admin_schemas import (
    HourOut,
    JournalSaleOut,
    LogLineOut,
    ReconciliationOut,
    SalesByHourOut,
    TenderOut,
)
from shouyin.web.admin_state import AdminStateDep
from shouyin.web.api.admin import LaneQuery, visible_lane
from shouyin.web.api.admin_store import DayQuery, business_day
from shouyin.web.auth import Principal, RuntimeDep, SupervisorUser, require
from shouyin.web.errors import ApiError

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/admin", tags=["admin"])

Reconciler = Annotated[Principal, Depends(require(Action.RECONCILIATION))]
LogReader = Annotated[Principal, Depends(require(Action.VIEW_LOGS))]

MAX_UPLOAD: Final = 50 * 1024 * 1024
"""The largest reconciliation file accepted (bytes): a busy store's month fits easily."""
_SHOWN_DISCREPANCIES: Final = 500


# -- journal and sales by hour ---------------------------------------------------------------------
@router.get("/journal", response_model=list[JournalSaleOut], summary="Sales journal (流水)")
def journal(
    *,
    user: SupervisorUser,
    runtime: RuntimeDep,
    day: DayQuery = None,
    lane_id: LaneQuery = None,
    state: SaleState | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_JOURNAL_ROWS)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[JournalSaleOut]:
    """The sales opened on a business day, newest first, with tenders (masked card only)."""
    lane = visible_lane(user, lane_id)
    with runtime.engine.connect() as conn:
        found = sales_journal(
            conn,
            business_day(runtime, day),
            services.STORE_TZ,
            lane_id=lane,
            state=state,
            limit=limit,
            offset=offset,
        )
    return [
        JournalSaleOut(
            sale_id=s.sale_id,
            receipt_no=s.receipt_no,
            lane_id=s.lane_id,
            cashier_id=s.cashier_id,
            cashier_name=s.cashier_name,
            state=s.state,
            opened_at=s.opened_at,
            completed_at=s.completed_at,
            total_fen=s.total_due,
            tenders=[
                TenderOut(
                    tender_no=t.tender_no,
                    kind=t.kind,
                    amount_fen=t.amount,
                    voided=t.voided,
                    ecr_ref=t.ecr_ref,
                    rrn=t.rrn,
                    masked_pan=t.masked_pan,
                    wallet=t.wallet,
                )
                for t in s.tenders
            ],
        )
        for s in found
    ]


@router.get("/sales-by-hour", response_model=SalesByHourOut, summary="Sales by hour (分时销售)")
def hourly_sales(
    user: SupervisorUser, runtime: RuntimeDep, day: DayQuery = None, lane_id: LaneQuery = None
) -> SalesByHourOut:
    """Completed sales of a business day per local hour (by completion time), in fen."""
    lane = visible_lane(user, lane_id)
    the_day = business_day(runtime, day)
    with runtime.engine.connect() as conn:
        buckets = sales_by_hour(conn, the_day, services.STORE_TZ, lane_id=lane)
    return SalesByHourOut(
        day=the_day.isoformat(),
        lane_id=lane,
        time_zone=services.STORE_TZ.key,
        total_fen=sum(b.amount for b in buckets),
        sales_count=sum(b.sales_count for b in buckets),
        hours=[
            HourOut(
                hour=b.start.hour, start=b.start, sales_count=b.sales_count, amount_fen=b.amount
            )
            for b in buckets
        ],
    )


# -- reconciliation --------------------------------------------------------------------------------
async def _records(upload: UploadFile, side: str, *, ledger_json: bool) -> list[Record]:
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ApiError(413, "file_too_large", "文件太大", "File too large")
    name = (upload.filename or side).lower()
    as_json = ledger_json and name.endswith(".json")
    with tempfile.TemporaryDirectory(prefix="shouyin-reconcile-") as folder:
        path = Path(folder) / (f"{side}.json" if as_json else f"{side}.csv")
        path.write_bytes(data)
        try:
            return read_ledger_json(path) if as_json else read_records_csv(path)
        except ReconcileInputError as error:
            raise ApiError(
                422,
                "reconcile_input",
                f"{side} 文件无法读取：{str(error).replace(str(path), upload.filename or side)}",
                f"Cannot read the {side} file: "
                f"{str(error).replace(str(path), upload.filename or side)}",
            ) from error


def _reconciliation_out(report: ReconciliationReport, meta: dict[str, Any]) -> ReconciliationOut:
    def side(totals: Any) -> dict[str, int]:
        return {
            "count": totals.count,
            "amount_fen": totals.amount,
            "refund_count": totals.refund_count,
            "refund_amount_fen": totals.refund_amount,
        }

    return ReconciliationOut(
        balanced=report.balanced,
        matched=report.matched,
        counts={outcome.value: report.count(outcome) for outcome in Outcome},
        totals=[
            {
                "kind": k.kind,
                "lane": side(k.lane),
                "terminal": side(k.terminal),
                "acquirer": side(k.acquirer),
                "matched": k.matched,
                "discrepancies": k.discrepancies,
            }
            for k in report.totals
        ],
        discrepancies=[
            {**row._asdict(), "outcome": row.outcome.value}
            for row in report.discrepancies[:_SHOWN_DISCREPANCIES]
        ],
        lane_id=meta.get("lane_id"),
        source=meta,
        at=meta["at"],
    )


@router.post("/reconciliation", response_model=ReconciliationOut, summary="Reconcile (对账)")
async def run_reconciliation(
    *,
    user: Reconciler,
    runtime: RuntimeDep,
    state: AdminStateDep,
    terminal: UploadFile,
    acquirer: UploadFile,
    lane_id: Annotated[str | None, Query(max_length=32)] = None,
) -> ReconciliationOut:
    """Match this database's payment journal with an uploaded terminal batch (records CSV)
    and acquirer ledger (records CSV or JSON export)."""
    terminal_records = await _records(terminal, "terminal", ledger_json=False)
    acquirer_records = await _records(acquirer, "acquirer", ledger_json=True)
    uow = runtime.uow()
    with uow:
        lane_records = [record_from_intent(i) for i in uow.payments.journal(lane_id)]
    report = reconcile(lane_records, terminal_records, acquirer_records)
    meta: dict[str, Any] = {
        "lane_id": lane_id,
        "terminal_file": terminal.filename,
        "acquirer_file": acquirer.filename,
        "records": [len(lane_records), len(terminal_records), len(acquirer_records)],
        "by": user.user.username,
        "at": runtime.clock(),
    }
    state.reconciliation, state.reconciliation_meta = report, meta
    logger.info(
        "reconciliation by %s: %d matched, %d discrepancies",
        user.user.username,
        report.matched,
        len(report.discrepancies),
    )
    return _reconciliation_out(report, meta)


@router.get("/reconciliation", response_model=ReconciliationOut, summary="The last reconciliation")
def last_reconciliation(user: Reconciler, state: AdminStateDep) -> ReconciliationOut:
    """The last reconciliation run on this server (404 before the first)."""
    if state.reconciliation is None:
        raise ApiError(404, "no_reconciliation", "还没有对账结果", "No reconciliation yet")
    return _reconciliation_out(state.reconciliation, state.reconciliation_meta)


# -- logs ------------------------------------------------------------------------------------------
@router.get("/logs", response_model=list[LogLineOut], summary="Recent server logs (日志)")
def logs(
    *,
    user: LogReader,
    state: AdminStateDep,
    after: Annotated[int, Query(ge=0)] = 0,
    level: Annotated[str, Query(pattern="^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")] = "INFO",
    logger_name: Annotated[str, Query(alias="logger", max_length=100)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[LogLineOut]:
    """The newest log lines (card data masked), oldest first; ``after`` for only newer ones."""
    lines = state.logs.lines(
        after=after,
        min_level=logging.getLevelName(level),
        logger_prefix=logger_name,
        contains=q,
        limit=limit,
    )
    return [
        LogLineOut(seq=ln.seq, at=ln.at, level=ln.level, logger=ln.logger, message=ln.message)
        for ln in lines
    ]
