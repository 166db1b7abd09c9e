"""Z reports in SQL, kept as printed: the totals are JSON so a reprint is identical.

The JSON holds every figure of the :class:`Report` except the columns (number, day, time);
money is integer fen, mapping keys are the enum values or, for VAT rates, basis points as text
(JSON keys are strings). Mappings keep their order, so a reprint lists lines in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import RowMapping, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shouyin.domain.money import Money
from shouyin.domain.pricing import AdjustmentKind
from shouyin.domain.reports import CashierTotals, Report, ReportKind, TenderTotals
from shouyin.domain.sale_lines import TenderKind
from shouyin.store.repositories import Conflict
from shouyin.store.rows import dumps
from shouyin.store.tables import ZReportRow, table

__all__ = ["SqlZReportRepository", "check_z_report", "report_from_json", "report_to_json"]

_Z = table(ZReportRow)
FORMAT_VERSION = 1


def _fen(amounts: Mapping[Any, Money]) -> dict[str, int]:
    return {str(key): money.fen for key, money in amounts.items()}


def report_to_json(report: Report) -> str:
    """The report's figures as JSON text (see the module docstring)."""
    data: dict[str, object] = {
        "version": FORMAT_VERSION,
        "shift_ids": list(report.shift_ids),
        "sales_count": report.sales_count,
        "returns_count": report.returns_count,
        "voids_count": report.voids_count,
        "line_voids_count": report.line_voids_count,
        "no_sales_count": report.no_sales_count,
        "suspended_count": report.suspended_count,
        "gross": report.gross.fen,
        "discounts": report.discounts.fen,
        "net_sales": report.net_sales.fen,
        "refunds": report.refunds.fen,
        "net": report.net.fen,
        "discounts_by_kind": _fen(report.discounts_by_kind),
        "discounts_by_name": _fen(report.discounts_by_name),
        "by_tender": {
            str(kind): {"sales": t.sales.fen, "refunds": t.refunds.fen}
            for kind, t in report.by_tender.items()
        },
        "by_category": _fen(report.by_category),
        "by_cashier": {
            cashier: {
                "sales_count": c.sales_count,
                "sales": c.sales.fen,
                "returns_count": c.returns_count,
                "refunds": c.refunds.fen,
                "voids_count": c.voids_count,
            }
            for cashier, c in report.by_cashier.items()
        },
        "tax_by_rate": _fen(report.tax_by_rate),
        "paid_in": report.paid_in.fen,
        "paid_out": report.paid_out.fen,
        "cash_expected": report.cash_expected.fen,
        "cash_counted": None if report.cash_counted is None else report.cash_counted.fen,
    }
    return dumps(data)


def report_from_json(text: str, row: RowMapping) -> Report:
    """Rebuild a Z report from its JSON figures and its ``z_reports`` row."""
    data = json.loads(text)
    counted = data["cash_counted"]
    return Report(
        kind=ReportKind.Z,
        number=row["number"],
        business_day=row["business_day"],
        generated_at=row["generated_at"],
        shift_ids=tuple(data["shift_ids"]),
        sales_count=data["sales_count"],
        returns_count=data["returns_count"],
        voids_count=data["voids_count"],
        line_voids_count=data["line_voids_count"],
        no_sales_count=data["no_sales_count"],
        suspended_count=data["suspended_count"],
        gross=Money(data["gross"]),
        discounts=Money(data["discounts"]),
        net_sales=Money(data["net_sales"]),
        refunds=Money(data["refunds"]),
        net=Money(data["net"]),
        discounts_by_kind={
            AdjustmentKind(k): Money(v) for k, v in data["discounts_by_kind"].items()
        },
        discounts_by_name={k: Money(v) for k, v in data["discounts_by_name"].items()},
        by_tender={
            TenderKind(k): TenderTotals(Money(v["sales"]), Money(v["refunds"]))
            for k, v in data["by_tender"].items()
        },
        by_category={k: Money(v) for k, v in data["by_category"].items()},
        by_cashier={
            k: CashierTotals(
                sales_count=v["sales_count"],
                sales=Money(v["sales"]),
                returns_count=v["returns_count"],
                refunds=Money(v["refunds"]),
                voids_count=v["voids_count"],
            )
            for k, v in data["by_cashier"].items()
        },
        tax_by_rate={int(k): Money(v) for k, v in data["tax_by_rate"].items()},
        paid_in=Money(data["paid_in"]),
        paid_out=Money(data["paid_out"]),
        cash_expected=Money(data["cash_expected"]),
        cash_counted=None if counted is None else Money(counted),
    )


def check_z_report(report: Report) -> tuple[int, date]:
    """The number and business day of a Z report.

    Raises:
        ValueError: for an X report, or a Z report without number or day.
    """
    if report.kind is not ReportKind.Z or report.number is None or report.business_day is None:
        raise ValueError("only a Z report with its number and business day can be kept")
    return report.number, report.business_day


class SqlZReportRepository:
    """:class:`~shouyin.store.repositories.ZReportRepository` on a SQLAlchemy session.

    Args:
        session: the unit of work's session; this repository never commits.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def last_number(self, lane_id: str) -> int:
        """The lane's highest Z number, 0 before the first."""
        stmt = select(func.max(_Z.c.number)).where(_Z.c.lane_id == lane_id)
        return int(self._session.connection().execute(stmt).scalar() or 0)

    def add(self, report: Report, lane_id: str) -> None:
        """Keep a Z report.

        Raises:
            ValueError: if ``report`` is not a Z report with a number and a business day.
            Conflict: if the lane already has a report with that number.
        """
        number, day = check_z_report(report)
        values = {
            "lane_id": lane_id,
            "number": number,
            "business_day": day,
            "generated_at": report.generated_at,
            "totals": report_to_json(report),
        }
        try:
            self._session.connection().execute(_Z.insert(), values)
        except IntegrityError as error:
            raise Conflict(f"lane {lane_id} already has Z report {number}") from error

    def get(self, lane_id: str, number: int) -> Report | None:
        """The lane's Z report with this number, equal to the one added, or None."""
        stmt = select(_Z).where(_Z.c.lane_id == lane_id, _Z.c.number == number)
        row = self._session.connection().execute(stmt).mappings().first()
        return None if row is None else report_from_json(row["totals"], row)
