"""The cashier API with the lane's peripherals (the virtual ESC/POS printer of
``shouyin.devices.printer_sim`` on a real TCP socket): a cash sale prints its receipt and opens
the drawer; a reprint prints a copy; a printer out of paper is reported to the cashier in both
languages, and as a ``device.warning`` event, without undoing the sale."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shouyin.devices.lane import LaneDevices
from shouyin.devices.printer import PrinterConfig
from shouyin.devices.printer_sim import ThreadedPrinter, VirtualPrinter
from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.sale import Sale
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


class SlowDisplay(LaneDevices):
    """A customer display that takes 50 ms per write (a slow serial line), recording what it
    showed; the rest of LaneDevices is real."""

    def __init__(self) -> None:
        super().__init__(display_port="/dev/null-slow-display")
        self.shown: list[Money] = []
        self.writers = 0
        self.most_writers = 0
        self._count = threading.Lock()

    def show_item(self, name: str, price: Money, quantity: int = 1) -> None:
        with self._count:
            self.writers += 1
            self.most_writers = max(self.most_writers, self.writers)
        time.sleep(0.05)  # the slow device itself, not synchronisation
        with self._count:
            self.writers -= 1

    def show_total(self, total: Money) -> None:
        self.shown.append(total)


def test_a_slow_customer_display_shows_the_newest_state_without_queueing_every_scan() -> None:
    display = SlowDisplay()
    hook = DevicesHook(display)
    sales = []
    for count in range(1, 21):
        sale = Sale.open(
            sale_id="S1",
            receipt_no="L01-000001",
            lane_id="L01",
            shift_id="shift1",
            cashier_id="u1",
            now=datetime.now(UTC),
        )
        for _ in range(count):
            sale.add_product(Product(sku="C1", name="可乐", price=Money(350)))
        sales.append(sale)
    threads = [threading.Thread(target=hook.sale_changed, args=(s,)) for s in sales]
    for thread in threads:
        thread.start()
        time.sleep(0.005)  # scans arriving faster than the display writes
    for thread in threads:
        thread.join(10)
    assert display.most_writers == 1  # one writer at a time, never a queue of threads
    assert len(display.shown) < len(sales)  # intermediate states were skipped
    assert display.shown[-1] == Money(350 * 20)  # the newest state is what the customer sees
