"""Drawer openings reach the hash-chained audit log with who, why, approver and outcome."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from shouyin.devices.drawer_audit import drawer_audit_event, sql_drawer_audit
from shouyin.devices.lane import DrawerOpened, DrawerReason, LaneDevices
from shouyin.devices.printer import PrinterConfig
from shouyin.devices.printer_sim import VirtualPrinter
from shouyin.domain.audit import AuditAction, AuditOutcome
from shouyin.store.audit_repo import SqlAuditLog, verify_audit_log
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from tests.devices.sales import NOW, card_and_cash_sale


def test_no_sale_maps_to_drawer_no_sale_with_the_approver() -> None:
    record = DrawerOpened(DrawerReason.NO_SALE, "u1", "sup1", None, NOW, True)
    event = drawer_audit_event(record, "L01")
    assert (event.action, event.outcome, event.actor, event.source, event.target) == (
        AuditAction.DRAWER_NO_SALE,
        AuditOutcome.SUCCESS,
        "u1",
        "lane:L01",
        "drawer:L01",
    )
    assert event.details["approved_by"] == "sup1"


def test_failed_cash_sale_kick_is_a_failure_on_the_receipt() -> None:
    record = DrawerOpened(DrawerReason.CASH_SALE, "u1", None, "L01-000001", NOW, False, "offline")
    event = drawer_audit_event(record, "L01")
    assert (event.action, event.outcome, event.target) == (
        AuditAction.DRAWER_OPEN,
        AuditOutcome.FAILURE,
        "receipt:L01-000001",
    )
    assert event.details["error"] == "offline"


def test_drawer_openings_are_appended_to_the_audit_chain(
    tmp_path: Path, printer: VirtualPrinter
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'lane.db'}")
    upgrade(engine)
    devices = LaneDevices(
        printer=PrinterConfig(f"tcp://127.0.0.1:{printer.port}"),
        audit=sql_drawer_audit(engine, "L01"),
    )
    devices.print_receipt(card_and_cash_sale(), user_id="u1")
    devices.open_drawer("no_sale", user_id="u1", approved_by="sup1")
    with Session(engine) as session:
        entries = list(SqlAuditLog(session).entries())
        report = verify_audit_log(session)
    assert [(e.event.action, e.event.details.get("approved_by")) for e in entries] == [
        ("drawer.open", None),
        ("drawer.no_sale", "sup1"),
    ]
    assert report.ok
