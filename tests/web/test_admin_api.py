"""The admin API with real sessions on a temporary SQLite lane: every admin route answers an
admin, a cashier is refused on every one (the list comes from the app's own routers, so a new
admin route cannot escape the check), a supervisor sees only their lane and never the admin-only
routes, cookie requests without the CSRF header are refused, and each section does its job."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import update
from sqlalchemy.orm import Session

from shouyin.devices.lane import LaneDevices
from shouyin.devices.printer import PrinterConfig
from shouyin.devices.printer_sim import ThreadedPrinter, VirtualPrinter
from shouyin.domain.audit import AuditAction, AuditEntry, AuditOutcome
from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.users import Role
from shouyin.fleet.health import HealthSample
from shouyin.fleet.health_monitor import HealthMonitor
from shouyin.fleet.updates.package import PackageKind
from shouyin.fleet.updates.repository import Package
from shouyin.fleet.updates.rollout import Progress, new_rollout
from shouyin.fleet.updates.store import SqlRolloutStore
from shouyin.lane import services
from shouyin.link.values import PaperState, PowerSource
from shouyin.store.audit_repo import AuditFilter, CheckpointStore, SqlAuditLog, verify_audit_log
from shouyin.store.tables import SaleTenderRow
from shouyin.web.app import api_routers
from shouyin.web.auth import CSRF_HEADER
from shouyin.web.devices import DevicesHook

from .test_admin_support import PASSWORDS, Staff, admin_app

COLA = Product(sku="C1", name="可口可乐", price=Money(350), barcodes=("6901234567892",))
PAN = "6228480402564890018"  # Luhn-valid test card number
TRACK2 = f"{PAN}=49121201234567890"

ADMIN_ROUTES = sorted(
    (method, route.path)
    for router in api_routers()
    for route in router.routes
    if isinstance(route, APIRoute) and route.path.startswith("/api/admin")
    for method in route.methods or ()
)
"""Every admin route of the app, as the app itself finds them."""
ADMIN_ONLY = {
    ("GET", "/api/admin/users"),
    ("POST", "/api/admin/users"),
    ("POST", "/api/admin/users/{user_id}/unlock"),
    ("PUT", "/api/admin/products/{sku}/price"),
    ("POST", "/api/admin/terminals"),
    ("POST", "/api/admin/terminals/{terminal_id}/revoke"),
    ("POST", "/api/admin/terminals/{terminal_id}/pairing"),
    ("GET", "/api/admin/terminals/{terminal_id}/pairing"),
    ("GET", "/api/admin/terminals/{terminal_id}/pairing/qr.png"),
    ("DELETE", "/api/admin/terminals/{terminal_id}/pairing"),
    ("POST", "/api/admin/reconciliation"),
    ("GET", "/api/admin/reconciliation"),
    ("GET", "/api/admin/logs"),
    ("GET", "/api/admin/updates"),
}
PATH_VALUES = {
    "terminal_id": "10000001",
    "sku": "C1",
    "user_id": "nobody",
    "lane_id": "L01",
    "number": "1",
}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)


def product_query(path: str) -> str:
    return path + "?q=C1" if path.endswith("/products") else path


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Staff]:
    """One app for the tests that only read or are refused."""
    with admin_app(tmp_path_factory.mktemp("admin")) as staff:
        yield staff


@pytest.fixture
def staff(tmp_path: Path) -> Iterator[Staff]:
    with admin_app(tmp_path) as staff:
        yield staff


def test_the_admin_api_has_the_expected_sections() -> None:
    paths = {path for _, path in ADMIN_ROUTES}
    for section in (
        "lanes",
        "terminals",
        "products",
        "users",
        "shifts",
        "reports/x",
        "journal",
        "sales-by-hour",
        "reconciliation",
        "logs",
    ):
        assert f"/api/admin/{section}" in paths
    assert set(ADMIN_ROUTES) >= ADMIN_ONLY


# -- who may do what -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_a_cashier_is_refused_on_every_admin_route(shared: Staff, method: str, path: str) -> None:
    response = shared.cashier.request(method, product_query(concrete(path)))
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize(("method", "path"), sorted(ADMIN_ONLY))
def test_a_supervisor_is_refused_on_admin_only_routes(
    shared: Staff, method: str, path: str
) -> None:
    response = shared.supervisor.request(method, concrete(path))
    assert response.status_code == 403, response.text


@pytest.mark.parametrize(
    ("method", "path"), [r for r in ADMIN_ROUTES if r[0] in {"POST", "PUT", "DELETE"}]
)
def test_cookie_requests_without_the_csrf_header_are_refused(
    shared: Staff, method: str, path: str
) -> None:
    token = shared.admin.headers.pop(CSRF_HEADER)
    try:
        response = shared.admin.request(method, concrete(path))
    finally:
        shared.admin.headers[CSRF_HEADER] = token
    assert response.status_code == 403
    assert response.json()["error"] == "csrf"


@pytest.mark.parametrize("path", [p for m, p in ADMIN_ROUTES if m == "GET"])
def test_every_admin_read_answers_an_admin_without_a_server_error(shared: Staff, path: str) -> None:
    response = shared.admin.get(product_query(concrete(path)))
    assert response.status_code < 500, response.text
    assert response.status_code != 403


def test_a_supervisor_reads_only_their_own_lane(shared: Staff) -> None:
    assert shared.supervisor.get("/api/admin/journal?lane_id=L01").status_code == 200
    other = shared.supervisor.get("/api/admin/journal?lane_id=L02")
    assert other.status_code == 403 and other.json()["error"] == "other_lane"
    assert shared.supervisor.get("/api/admin/sales-by-hour?lane_id=L02").status_code == 403
    lanes = shared.supervisor.get("/api/admin/lanes").json()
    assert [lane["lane_id"] for lane in lanes] == ["L01"]
    assert shared.admin.get("/api/admin/journal?lane_id=L02").status_code == 200


# -- users -----------------------------------------------------------------------------------------


def test_users_are_listed_without_password_hashes(shared: Staff) -> None:
    response = shared.admin.get("/api/admin/users")
    assert response.status_code == 200
    body = response.json()
    assert {u["username"]: u["role"] for u in body} == {
        "boss": "admin",
        "li": "cashier",
        "wang": "supervisor",
    }
    assert "argon2" not in response.text and "password" not in response.text


def test_an_admin_adds_a_user_who_can_then_sign_in(staff: Staff) -> None:
    response = staff.admin.post(
        "/api/admin/users",
        json={"username": "zhao", "display_name": "赵", "role": "cashier", "password": "582046"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["role"] == Role.CASHIER
    login = staff.cashier.post("/api/session", json={"username": "zhao", "password": "582046"})
    assert login.status_code == 200
    again = staff.admin.post(
        "/api/admin/users",
        json={"username": "zhao", "display_name": "赵", "role": "cashier", "password": "582046"},
    )
    assert again.status_code == 409 and again.json()["error"] == "user_exists"
    weak = staff.admin.post(
        "/api/admin/users",
        json={"username": "qian", "display_name": "钱", "role": "admin", "password": "123456"},
    )
    assert weak.status_code == 422 and weak.json()["error"] == "weak_password"


def test_an_admin_unlocks_a_locked_account(staff: Staff) -> None:
    for _ in range(5):
        staff.cashier.post("/api/session", json={"username": "li", "password": "000000"})
    locked = staff.cashier.post(
        "/api/session", json={"username": "li", "password": PASSWORDS["li"]}
    )
    assert locked.status_code == 423
    listed = {u["username"]: u for u in staff.admin.get("/api/admin/users").json()}
    assert listed["li"]["locked"] is True
    response = staff.admin.post(f"/api/admin/users/{staff.user_ids['li']}/unlock")
    assert response.status_code == 200, response.text
    assert response.json()["locked"] is False and response.json()["failed_logins"] == 0
    [entry] = audit_entries(staff, AuditAction.USER_UNLOCKED)
    assert entry.event.target == "user:li" and entry.event.actor == staff.user_ids["boss"]
    again = staff.cashier.post("/api/session", json={"username": "li", "password": PASSWORDS["li"]})
    assert again.status_code == 200
    assert staff.admin.post("/api/admin/users/nobody/unlock").status_code == 404


# -- catalogue and prices --------------------------------------------------------------------------


def test_catalogue_search_by_sku_barcode_and_name(staff: Staff) -> None:
    staff.runtime.catalogue.save(COLA)
    for query in ("C1", "6901234567892", "可口"):
        found = staff.supervisor.get("/api/admin/products", params={"q": query}).json()
        assert [p["sku"] for p in found] == ["C1"], query
        assert found[0]["price_fen"] == 350


def audit_entries(staff: Staff, action: str) -> list[AuditEntry]:
    """The audit log's entries of ``action``, newest first."""
    with Session(staff.runtime.engine) as session:
        return SqlAuditLog(session).list(AuditFilter(action=action))


def test_a_price_change_is_stored_in_fen_and_recorded_for_audit(staff: Staff) -> None:
    staff.runtime.catalogue.save(COLA)
    response = staff.admin.put("/api/admin/products/C1/price", json={"price_fen": 399})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["old_price_fen"], body["new_price_fen"]) == (350, 399)
    assert body["changed_by"] == staff.user_ids["boss"]
    product = staff.runtime.catalogue.by_sku("C1")
    assert product is not None and product.price == Money(399)
    [entry] = audit_entries(staff, AuditAction.PRICE_CHANGE)
    event = entry.event
    assert event.outcome is AuditOutcome.SUCCESS and event.actor == staff.user_ids["boss"]
    assert event.target == "product:C1" and event.source == "testclient"
    assert (event.details["old_fen"], event.details["new_fen"]) == (350, 399)
    with Session(staff.runtime.engine) as session:
        assert verify_audit_log(session, CheckpointStore(staff.settings.keys_dir)).ok


def test_a_refused_price_change_is_audited_as_a_failure(staff: Staff) -> None:
    staff.runtime.catalogue.save(COLA)
    assert (
        staff.admin.put("/api/admin/products/C1/price", json={"price_fen": -5}).status_code == 422
    )
    [entry] = audit_entries(staff, AuditAction.PRICE_CHANGE)
    assert entry.event.outcome is AuditOutcome.FAILURE and "negative" in str(entry.event.details)


@pytest.mark.parametrize(
    ("price", "fragment"),
    [
        (-1, "negative"),
        (10_000_001, "too high"),
        (10**15, "too high"),
        (3.5, "whole number of fen"),
        ("350", "whole number of fen"),
        (True, "whole number of fen"),
        (None, "whole number of fen"),
    ],
)
def test_a_bad_price_is_refused_with_a_clear_message_and_nothing_changes(
    shared: Staff, price: object, fragment: str
) -> None:
    shared.runtime.catalogue.save(COLA)
    response = shared.admin.put("/api/admin/products/C1/price", json={"price_fen": price})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_price"
    assert fragment in body["message_en"] and body["message"]
    product = shared.runtime.catalogue.by_sku("C1")
    assert product is not None and product.price == Money(350)


def test_a_member_price_above_the_price_is_refused(shared: Staff) -> None:
    shared.runtime.catalogue.save(COLA)
    response = shared.admin.put(
        "/api/admin/products/C1/price", json={"price_fen": 300, "member_price_fen": 320}
    )
    assert response.status_code == 422 and "member price" in response.json()["message_en"]


def test_a_price_change_of_an_unknown_product_is_404(shared: Staff) -> None:
    response = shared.admin.put("/api/admin/products/NOPE/price", json={"price_fen": 1})
    assert response.status_code == 404 and response.json()["error"] == "unknown_product"


# -- shifts, reports, journal, sales by hour -------------------------------------------------------


def sell_for_cash(staff: Staff, amount_items: int = 2) -> str:
    """A completed cash sale of ``amount_items`` colas on L01 (the lane services, real DB)."""
    staff.runtime.catalogue.save(COLA)
    uow = staff.runtime.uow()
    ctx = staff.runtime.context("L01")
    with uow:
        cashier = uow.users.get(staff.user_ids["li"])
    assert cashier is not None
    if uow.shifts.open_for_lane("L01") is None:
        services.open_shift(uow, ctx, cashier, Money(50_000))
    sale = services.start_sale(uow, ctx, cashier)
    services.scan(uow, ctx, sale.sale_id, "6901234567892")
    services.set_quantity(uow, sale.sale_id, 1, amount_items)
    services.pay_cash(uow, ctx, sale.sale_id, Money(350 * amount_items))
    return sale.sale_id


def test_shifts_journal_x_report_and_sales_by_hour_show_a_sale(staff: Staff) -> None:
    sale_id = sell_for_cash(staff)
    shifts = staff.supervisor.get("/api/admin/shifts").json()
    assert [s["state"] for s in shifts] == ["open"] and shifts[0]["opening_float_fen"] == 50_000
    journal = staff.supervisor.get("/api/admin/journal", params={"state": "completed"}).json()
    assert [s["sale_id"] for s in journal] == [sale_id]
    assert journal[0]["total_fen"] == 700 and journal[0]["tenders"][0]["kind"] == "cash"
    report = staff.supervisor.get("/api/admin/reports/x").json()
    assert report["kind"] == "x" and report["sales_count"] == 1 and report["net_fen"] == 700
    assert any("中间报表" in line for line in report["lines"])
    hourly = staff.supervisor.get("/api/admin/sales-by-hour").json()
    assert hourly["total_fen"] == 700 and hourly["sales_count"] == 1
    now_hour = datetime.now(UTC).astimezone(services.STORE_TZ).hour
    assert [h["hour"] for h in hourly["hours"] if h["amount_fen"]] == [now_hour]
    lanes = staff.admin.get("/api/admin/lanes").json()
    assert lanes[0]["open_shift"]["shift_id"] == shifts[0]["shift_id"]


def test_the_z_report_is_refused_while_a_shift_is_open_then_made_and_kept(staff: Staff) -> None:
    sell_for_cash(staff)
    refused = staff.supervisor.post("/api/admin/reports/z")
    assert refused.status_code == 409 and refused.json()["error"] == "report_error"
    uow = staff.runtime.uow()
    services.close_shift(uow, staff.runtime.context("L01"), Money(50_700))
    made = staff.supervisor.post("/api/admin/reports/z")
    assert made.status_code == 201, made.text
    assert made.json()["number"] == 1 and made.json()["cash_counted_fen"] == 50_700
    stored = staff.supervisor.get("/api/admin/reports/z/L01/1")
    assert stored.status_code == 200 and stored.json()["lines"] == made.json()["lines"]
    assert staff.supervisor.get("/api/admin/reports/z/L01/2").status_code == 404


def test_the_journal_never_shows_more_than_the_masked_card_number(staff: Staff) -> None:
    sale_id = sell_for_cash(staff)
    # A row written by faulty older code with the full number: the API still masks it.
    with staff.runtime.engine.begin() as conn:
        conn.execute(
            update(SaleTenderRow).where(SaleTenderRow.sale_id == sale_id).values(masked_pan=PAN)
        )
    response = staff.admin.get("/api/admin/journal")
    assert PAN not in response.text
    assert response.json()[0]["tenders"][0]["masked_pan"] == "622848*********0018"


# -- logs and reconciliation -----------------------------------------------------------------------


def test_logs_show_recent_lines_with_card_data_masked(shared: Staff) -> None:
    logging.getLogger("shouyin.test.admin").warning("card %s swiped, track %s", PAN, TRACK2)
    response = shared.admin.get("/api/admin/logs", params={"logger": "shouyin.test.admin"})
    assert response.status_code == 200
    lines = response.json()
    assert lines and "622848*********0018" in lines[-1]["message"]
    assert PAN not in response.text and "49121201234567890" not in response.text
    after = shared.admin.get("/api/admin/logs", params={"after": lines[-1]["seq"]}).json()
    assert all(line["seq"] > lines[-1]["seq"] for line in after)


RECORDS_HEADER = "ecr_ref,batch,trace,rrn,amount,kind,state,operation\n"


def test_reconciliation_matches_uploaded_files_and_keeps_the_result(shared: Staff) -> None:
    assert shared.admin.get("/api/admin/reconciliation").status_code in (200, 404)
    terminal = RECORDS_HEADER + "L01-1,000001,000001,R1,1000,card,approved,sale\n"
    acquirer = RECORDS_HEADER + ",000001,000001,R1,1000,card,approved,sale\n"
    response = shared.admin.post(
        "/api/admin/reconciliation",
        files={
            "terminal": ("batch.csv", terminal.encode(), "text/csv"),
            "acquirer": ("ledger.csv", acquirer.encode(), "text/csv"),
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # The lane journal is empty: the terminal's approved sale is missing on the lane side.
    assert body["balanced"] is False and body["counts"]["missing"] == 1
    assert body["discrepancies"][0]["rrn"] == "R1"
    assert shared.admin.get("/api/admin/reconciliation").json() == body


def test_a_bad_reconciliation_file_is_a_clear_422(shared: Staff) -> None:
    response = shared.admin.post(
        "/api/admin/reconciliation",
        files={
            "terminal": ("batch.csv", b"nonsense\n", "text/csv"),
            "acquirer": ("ledger.csv", RECORDS_HEADER.encode(), "text/csv"),
        },
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "reconcile_input" and "batch.csv" in body["message_en"]
    assert "/tmp" not in response.text  # the server's temporary path is not shown


# -- update rollouts and lane printers -------------------------------------------------------------


def test_update_rollouts_show_each_terminals_progress(staff: Staff) -> None:
    package = Package("fw/sim-2.0.1.bin", "2.0.1", PackageKind.FIRMWARE, "SIM", 1024, "ab" * 32)
    rollout = new_rollout(package, "http://127.0.0.1:9/repo", percent=50, named=["10000001"])
    store = SqlRolloutStore(staff.runtime.engine)
    store.save_rollout(rollout, ["10000001", "10000002"])
    at = datetime.now(UTC)
    store.set_progress(
        rollout.rollout_id, "10000001", Progress.INSTALLED, firmware_version="2.0.1", at=at
    )
    response = staff.admin.get("/api/admin/updates")
    assert response.status_code == 200, response.text
    [found] = response.json()
    assert (found["version"], found["percent"], found["total"], found["done"]) == (
        "2.0.1",
        50,
        2,
        1,
    )
    assert found["counts"]["installed"] == 1 and found["counts"]["pending"] == 1
    states = {t["terminal_id"]: t["state"] for t in found["terminals"]}
    assert states == {"10000001": "installed", "10000002": "pending"}


def test_lanes_show_the_receipt_printer_state(tmp_path: Path) -> None:
    with ThreadedPrinter(VirtualPrinter(None, png=False)) as printer:
        printer.set_state(paper="out")
        config = PrinterConfig(f"tcp://127.0.0.1:{printer.port}", timeout=2.0)
        hook = DevicesHook(LaneDevices(printer=config))
        with admin_app(tmp_path, devices={"L01": hook}) as staff:
            for _ in range(200):  # bounded: the runtime reads the printer in the background
                [lane] = staff.supervisor.get("/api/admin/lanes").json()
                if lane["printer"] is not None:
                    break
                time.sleep(0.02)
    assert lane["printer"] == "paper_out"


@pytest.mark.parametrize(
    "path",
    [
        "/api/admin/journal?day=0001-01-01",
        "/api/admin/sales-by-hour?day=9999-12-31",
        "/api/admin/shifts?day=1999-12-31",
        "/api/admin/reports/x?day=2200-01-01",
    ],
)
def test_a_day_out_of_range_is_a_clear_422(shared: Staff, path: str) -> None:
    response = shared.admin.get(path)
    assert response.status_code == 422 and response.json()["error"] == "invalid_day"


def test_terminals_show_their_health_and_active_alerts(staff: Staff) -> None:
    created = staff.admin.post(
        "/api/admin/terminals", json={"terminal_id": "10000001", "lane_id": "L01"}
    )
    assert created.status_code == 201 and created.json()["health"] is None
    monitor = HealthMonitor(staff.runtime.engine)
    monitor.record_health(
        HealthSample(
            terminal_id="10000001",
            at=datetime.now(UTC),
            power=PowerSource.BATTERY,
            battery_percent=15,
            paper=PaperState.OUT,
            firmware="sim 2.0.1",
            crc_errors=4,
        )
    )
    [terminal] = staff.supervisor.get("/api/admin/terminals").json()
    health = terminal["health"]
    assert health["online"] is True and health["paper"] == "out" and health["power"] == "battery"
    assert health["battery_percent"] == 15 and health["crc_errors"] == 4
    assert {a["kind"] for a in health["alerts"]} >= {"paper_out", "battery_low"}
    assert terminal["firmware_version"] == "sim 2.0.1" and terminal["last_seen_at"]
