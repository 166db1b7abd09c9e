"""The cashier API with the lane's peripherals (the virtual ESC/POS printer of
``shouyin.devices.printer_sim`` on a real TCP socket): a cash sale prints its receipt and opens
the drawer; a reprint prints a copy; a printer out of paper is reported to the cashier in both
languages, and as a ``device.warning`` event, without undoing the sale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shouyin.devices.lane import LaneDevices
from shouyin.devices.printer import PrinterConfig
from shouyin.devices.printer_sim import ThreadedPrinter, VirtualPrinter
from shouyin.web.app import create_app
from shouyin.web.devices import DevicesHook
from tests.web import CASHIER, login, make_runtime, open_sale

RICE = "6909876543212"


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[VirtualPrinter]:
    with ThreadedPrinter(VirtualPrinter(None, png=False)) as sim:
        yield sim


@pytest.fixture
def client(lane_url: str, printer: VirtualPrinter) -> Iterator[TestClient]:
    devices = LaneDevices(printer=PrinterConfig(f"tcp://127.0.0.1:{printer.port}", timeout=2.0))
    runtime = make_runtime(lane_url)
    runtime.devices["L01"] = DevicesHook(devices)
    with TestClient(create_app(runtime)) as client:
        login(client, CASHIER)
        yield client


def test_a_cash_sale_prints_its_receipt_and_opens_the_drawer(
    client: TestClient, printer: VirtualPrinter
) -> None:
    sale_id = open_sale(client)
    client.post(f"/api/sales/{sale_id}/scan", json={"code": RICE})
    body = client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 10_000}).json()
    assert body["completed"] and body["device_warning"] is None
    (job,) = printer.wait_for_jobs(1)
    assert any("大米 5kg" in line for line in job.lines)
    assert printer.wait_for_kicks(1)
    reprint = client.post(f"/api/sales/{sale_id}/reprint").json()
    assert reprint["device_warning"] is None
    second = printer.wait_for_jobs(2)[1]
    assert any("重印" in line for line in second.lines)
    assert len(printer.drawer_kicks) == 1  # a reprint never opens the drawer


def test_a_printer_out_of_paper_is_reported_and_the_sale_stands(
    client: TestClient, printer: VirtualPrinter
) -> None:
    printer.set_state(paper="out")
    sale_id = open_sale(client)
    client.post(f"/api/sales/{sale_id}/scan", json={"code": RICE})
    body = client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 5_990}).json()
    assert body["completed"] is True
    warning = body["device_warning"]
    assert warning is not None and "纸" in warning["zh"] and "paper" in warning["en"].lower()
    assert client.get(f"/api/sales/{sale_id}").json()["state"] == "completed"
    assert printer.wait_for_kicks(1)  # the drawer opens for the cash all the same
