"""The lane peripherals joined to the running server (issues 7 and 8 in the web app): the
virtual ESC/POS printer (``shouyin.devices.printer_sim``, real TCP) and the customer display on a
pty. Printer status is read in the background and after each print; paper out, near end and an
open cover are alerts in the terminals' alert store, and a persistent warning on the cashier
page; drawer openings go to the hash-chained audit log; a supervised no-sale opens the drawer;
the customer display shows an item's unit price."""

from __future__ import annotations

import os
import pty
import select
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shouyin.config import Settings
from shouyin.devices.display import DisplayDecoder, Screen, item_screen
from shouyin.devices.lane import LaneDevices
from shouyin.devices.printer import PrinterConfig
from shouyin.devices.printer_sim import ThreadedPrinter, VirtualPrinter
from shouyin.domain.audit import AuditAction, AuditEntry, AuditOutcome
from shouyin.domain.money import Money
from shouyin.domain.users import Role
from shouyin.fleet.health import AlertKind
from shouyin.fleet.health_store import AlertRecord, SqlHealthUnitOfWork
from shouyin.store.audit_repo import AuditFilter, CheckpointStore, SqlAuditLog, verify_audit_log
from shouyin.web.app import create_app
from shouyin.web.devices import DevicesHook, hook_from_settings
from shouyin.web.events import Subscription, WebEvent
from shouyin.web.runtime import LaneRuntime
from tests.web import CASHIER, COLA, LANE, RICE, SUPERVISOR, login, make_runtime, open_sale

WAIT = 5.0


@pytest.fixture
def printer() -> Iterator[VirtualPrinter]:
    with ThreadedPrinter(VirtualPrinter(None, png=False)) as sim:
        yield sim


def settings_for(tmp_path: Path, lane_url: str, printer: VirtualPrinter) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=lane_url,
        lane_id=LANE,
        printer_url=f"tcp://127.0.0.1:{printer.port}",
    )


@dataclass
class Lane:
    runtime: LaneRuntime
    client: TestClient
    hook: DevicesHook
    settings: Settings


@pytest.fixture
def lane(tmp_path: Path, lane_url: str, printer: VirtualPrinter) -> Iterator[Lane]:
    """A lane server whose peripherals come from its settings, as ``shouyin serve`` builds them."""
    settings = settings_for(tmp_path, lane_url, printer)
    runtime = make_runtime(lane_url, settings=settings)
    hook = hook_from_settings(settings, runtime.engine)
    assert hook is not None
    runtime.devices[LANE] = hook
    with TestClient(create_app(runtime)) as client:
        login(client, CASHIER)
        yield Lane(runtime, client, hook, settings)


def until(check: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def printer_alerts(runtime: LaneRuntime) -> list[AlertRecord]:
    with SqlHealthUnitOfWork(runtime.engine) as uow:
        return uow.health.history("PRN-L01")


def audit_entries(runtime: LaneRuntime, action: AuditAction) -> list[AuditEntry]:
    with Session(runtime.engine) as session:  # a fresh session per look: sees new commits
        return SqlAuditLog(session).list(AuditFilter(action=action))


def sell_rice_for_cash(client: TestClient) -> dict[str, Any]:
    sale_id = open_sale(client)
    client.post(f"/api/sales/{sale_id}/scan", json={"code": RICE.barcodes[0]})
    response = client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 10_000})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- drawer audit ---------------------------------------------------------------------------------
def test_a_cash_sale_records_the_drawer_opening_in_the_verified_audit_chain(
    lane: Lane, printer: VirtualPrinter
) -> None:
    assert sell_rice_for_cash(lane.client)["device_warning"] is None
    assert printer.wait_for_kicks(1)
    [entry] = until(lambda: audit_entries(lane.runtime, AuditAction.DRAWER_OPEN))
    checkpoints = CheckpointStore(lane.settings.keys_dir)
    with Session(lane.runtime.engine) as session:
        report = verify_audit_log(session, checkpoints)
    assert entry.event.outcome is AuditOutcome.SUCCESS
    assert entry.event.target.startswith("receipt:")
    assert report.ok, report
    assert checkpoints.load() is not None  # the head is also kept outside the database


# -- printer status and alerts ---------------------------------------------------------------------
def test_paper_out_is_an_alert_a_cashier_warning_and_clears_when_the_paper_is_back(
    lane: Lane, printer: VirtualPrinter
) -> None:
    assert until(lambda: lane.client.get("/api/lane/printer").json()["state"] == "ok")
    printer.set_state(paper="out")
    sale = sell_rice_for_cash(lane.client)  # the print fails and re-reads the status at once
    assert sale["completed"] and sale["device_warning"] is not None
    assert lane.client.get("/api/lane/printer").json() == {
        "present": True,
        "state": "paper_out",
        "can_print": False,
    }
    [alert] = printer_alerts(lane.runtime)
    assert (alert.kind, alert.active) == (AlertKind.PAPER_OUT, True)
    printer.set_state(paper="ok")
    assert lane.hook.refresh_printer_status() is not None  # what the background loop does
    [cleared] = printer_alerts(lane.runtime)
    assert cleared.alert_id == alert.alert_id and not cleared.active
    assert lane.client.get("/api/lane/printer").json()["state"] == "ok"


def test_near_end_and_an_open_cover_raise_their_own_alerts(
    lane: Lane, printer: VirtualPrinter
) -> None:
    until(lane.hook.printer_status)
    printer.set_state(paper="near_end")
    lane.hook.refresh_printer_status()
    printer.set_state(paper="ok", cover_open=True)
    lane.hook.refresh_printer_status()
    kinds = {(a.kind, a.active) for a in printer_alerts(lane.runtime)}
    assert kinds == {(AlertKind.PAPER_LOW, False), (AlertKind.COVER_OPEN, True)}


def test_printer_changes_reach_the_cashier_page_and_alerts_reach_supervisors_only(
    tmp_path: Path, lane_url: str, printer: VirtualPrinter
) -> None:
    settings = settings_for(tmp_path, lane_url, printer)
    runtime = make_runtime(lane_url, settings=settings)
    config = PrinterConfig(settings.printer_url, timeout=2.0)
    hook = DevicesHook(LaneDevices(printer=config))
    runtime.devices[LANE] = hook
    with TestClient(create_app(runtime)) as client:
        portal = client.portal
        assert portal is not None
        until(hook.printer_status)

        def subscribe(role: Role) -> Any:
            return portal.wrap_async_context_manager(_Subscribed(runtime, role))

        with subscribe(Role.CASHIER) as cashier, subscribe(Role.SUPERVISOR) as supervisor:
            printer.set_state(paper="out")
            hook.refresh_printer_status()
            seen_by_cashier: list[str] = []
            seen_by_supervisor: list[str] = []
            for _ in range(250):  # bounded: until the supervisor has both
                seen_by_cashier += portal.call(_kinds, cashier)
                seen_by_supervisor += portal.call(_kinds, supervisor)
                if {"printer.status", "terminal.alert"} <= set(seen_by_supervisor):
                    break
                time.sleep(0.02)
            seen_by_cashier += portal.call(_kinds, cashier)
    assert "printer.status" in seen_by_cashier and "terminal.alert" not in seen_by_cashier
    assert {"printer.status", "terminal.alert"} <= set(seen_by_supervisor)


class _Subscribed:
    """``bus.subscribe`` as an async context manager (entered on the app's loop)."""

    def __init__(self, runtime: LaneRuntime, role: Role) -> None:
        self._manager = runtime.bus.subscribe(LANE, role)

    async def __aenter__(self) -> Subscription:
        return self._manager.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self._manager.__exit__(None, None, None)


async def _kinds(subscription: Subscription) -> list[str]:
    events: list[WebEvent] = [e for _, e in subscription.pending()]
    return [e.kind for e in events]


def test_the_admin_lanes_page_never_waits_on_the_printer(
    lane: Lane, printer: VirtualPrinter
) -> None:
    until(lane.hook.printer_status)
    printer.wait_for_connections(1)
    connections = printer.connections
    supervisor = TestClient(lane.client.app)
    login(supervisor, SUPERVISOR)
    for _ in range(3):
        [served] = [x for x in supervisor.get("/api/admin/lanes").json() if x["lane_id"] == LANE]
        assert served["printer"] == "ok"
    assert printer.connections == connections  # no status query was made for the page


# -- no-sale ---------------------------------------------------------------------------------------
APPROVER = {"username": SUPERVISOR[0], "password": SUPERVISOR[1]}


def test_a_supervised_no_sale_opens_the_drawer_and_is_audited(
    lane: Lane, printer: VirtualPrinter
) -> None:
    open_sale(lane.client)
    response = lane.client.post(
        "/api/drawer/no-sale", json={"approver": APPROVER, "reason": "换零钱"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["drawer_opened"] is True and body["device_warning"] is None
    assert body["reason"] == "换零钱"
    assert printer.wait_for_kicks(1)
    # one entry from the lane services (the approval), one from the drawer (the kick)
    kicks = until(
        lambda: [
            e
            for e in audit_entries(lane.runtime, AuditAction.DRAWER_NO_SALE)
            if e.event.target == f"drawer:{LANE}"
        ]
    )
    assert kicks and kicks[0].event.outcome is AuditOutcome.SUCCESS
    assert kicks[0].event.details["approved_by"] is not None
    with Session(lane.runtime.engine) as session:
        assert verify_audit_log(session, CheckpointStore(lane.settings.keys_dir)).ok


@pytest.mark.parametrize(
    ("approver", "status"),
    [
        ({"username": SUPERVISOR[0], "password": "wrong-password-1"}, 401),
        ({"username": CASHIER[0], "password": CASHIER[1]}, 403),  # may not approve a no-sale
    ],
)
def test_a_no_sale_without_a_valid_approval_opens_nothing(
    lane: Lane, printer: VirtualPrinter, approver: dict[str, str], status: int
) -> None:
    open_sale(lane.client)
    response = lane.client.post(
        "/api/drawer/no-sale", json={"approver": approver, "reason": "换零钱"}
    )
    assert response.status_code == status, response.text
    assert audit_entries(lane.runtime, AuditAction.DRAWER_NO_SALE) == []
    assert printer.drawer_kicks == []


def test_a_no_sale_needs_an_open_shift(lane: Lane, printer: VirtualPrinter) -> None:
    response = lane.client.post(
        "/api/drawer/no-sale", json={"approver": APPROVER, "reason": "换零钱"}
    )
    assert response.status_code == 409, response.text
    assert "班" in response.json()["message"]
    assert printer.drawer_kicks == []


def test_a_no_sale_with_the_paper_out_still_opens_the_drawer(
    lane: Lane, printer: VirtualPrinter
) -> None:
    open_sale(lane.client)
    printer.set_state(paper="out")
    body = lane.client.post(
        "/api/drawer/no-sale", json={"approver": APPROVER, "reason": "换零钱"}
    ).json()
    assert body["drawer_opened"] is True
    assert printer.wait_for_kicks(1)


# -- customer display ------------------------------------------------------------------------------
def screens_on(master: int, timeout: float) -> list[Screen]:
    """Every screen a display on ``master``'s pty would have shown, in order."""
    decoder = DisplayDecoder()
    seen: list[Screen] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([master], [], [], min(left, 0.1))
        if not ready:
            if seen:
                break
            continue
        for byte in os.read(master, 4096):  # byte by byte: keep every intermediate screen
            decoder.feed(bytes([byte]))
            screen = decoder.lines()
            if not seen or seen[-1] != screen:
                seen.append(screen)
    return seen


def test_the_customer_display_shows_the_unit_price_times_the_quantity(
    lane_url: str,
) -> None:
    master, slave = pty.openpty()
    for fd in (master, slave):
        tty.setraw(fd)
    runtime = make_runtime(lane_url)
    devices = LaneDevices(display_port=os.ttyname(slave))
    runtime.devices[LANE] = DevicesHook(devices)
    try:
        with TestClient(create_app(runtime)) as client:
            login(client, CASHIER)
            sale_id = open_sale(client)
            line = client.post(f"/api/sales/{sale_id}/scan", json={"code": COLA.barcodes[0]})
            screens_on(master, WAIT)
            line_no = line.json()["line"]["line_no"]
            response = client.put(f"/api/sales/{sale_id}/lines/{line_no}", json={"quantity": 3})
            assert response.status_code == 200, response.text
            shown = screens_on(master, WAIT)
    finally:
        devices.close()
        os.close(master)
        os.close(slave)
    want = item_screen(COLA.name, Money(350), 3)
    assert (want[0].rstrip(), want[1].rstrip()) in shown  # 单价 ￥3.50 x3, not the line total
