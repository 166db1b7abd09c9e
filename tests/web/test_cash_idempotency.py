"""A cash tender is taken once per tender id: the same request delivered twice (a double Enter,
a retry after a lost answer) adds one tender, and the repeat is answered with the sale as it
stands; on a lane without a terminal and on one with the terminal simulator. A sale whose items
cost nothing is completed without payment (``POST /api/sales/{id}/complete``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.store.catalog_import import write_products
from shouyin.web.app import create_app
from shouyin.web.runtime import LaneRuntime
from tests.payments import TerminalRig
from tests.terminal import LoopClock, run_virtual
from tests.web import CASHIER, AsyncLane, login, make_runtime, open_sale
from tests.web.test_payments import new_sale, sign_in

RICE = "6909876543212"  # ¥59.90
FREE_BAG = Product(sku="BAG", name="购物袋(赠)", price=Money(0), barcodes=("6900000000014",))


@pytest.fixture
def runtime(lane_url: str) -> LaneRuntime:
    runtime = make_runtime(lane_url)
    with runtime.engine.begin() as conn:
        write_products(conn, [FREE_BAG])
    return runtime


@pytest.fixture
def client(runtime: LaneRuntime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        login(client, CASHIER)
        yield client


def sale_with(client: TestClient, *codes: str) -> str:
    sale_id = open_sale(client)
    for code in codes:
        assert client.post(f"/api/sales/{sale_id}/scan", json={"code": code}).is_success
    return sale_id


def cash(client: TestClient, sale_id: str, fen: int, **extra: Any) -> httpx.Response:
    headers = extra.pop("headers", None)
    response: httpx.Response = client.post(
        f"/api/sales/{sale_id}/cash", json={"amount_fen": fen, **extra}, headers=headers
    )
    return response


def test_the_same_cash_request_twice_takes_the_cash_once(client: TestClient) -> None:
    sale_id = sale_with(client, RICE)
    first = cash(client, sale_id, 3000, tender_id="t-1")
    second = cash(client, sale_id, 3000, tender_id="t-1")
    assert first.status_code == second.status_code == 200, second.text
    assert first.json() == second.json()
    assert second.json()["completed"] is False
    assert second.json()["sale"]["remaining"]["fen"] == 2990
    assert len(client.get(f"/api/sales/{sale_id}").json()["tenders"]) == 1
    # the next tender has its own id: the sale completes with the right change
    last = cash(client, sale_id, 3000, tender_id="t-2").json()
    assert last["completed"] is True and last["change"] == 10


def test_a_repeat_after_completion_answers_the_completed_sale(client: TestClient) -> None:
    sale_id = sale_with(client, RICE)
    headers = {"Idempotency-Key": "key-1"}
    first = cash(client, sale_id, 10000, headers=headers).json()
    again = cash(client, sale_id, 10000, headers=headers)
    assert again.status_code == 200, again.text  # not 409: the sale is completed already
    body = again.json()
    assert body["completed"] is True and body["change"] == first["change"] == 4010
    assert body["receipt_text"] == first["receipt_text"]
    assert len(client.get(f"/api/sales/{sale_id}").json()["tenders"]) == 1


def test_a_tender_id_of_another_sale_is_refused(client: TestClient) -> None:
    first = sale_with(client, RICE)
    assert cash(client, first, 1000, tender_id="t-9").status_code == 200
    cash(client, first, 5000, tender_id="t-10")  # completes the first sale
    other = sale_with(client, RICE)
    refused = cash(client, other, 1000, tender_id="t-9")
    assert refused.status_code == 409 and refused.json()["error"] == "tender_id_reused"
    assert client.get(f"/api/sales/{other}").json()["tenders"] == []


def test_a_refused_tender_records_no_id(client: TestClient) -> None:
    sale_id = sale_with(client)  # no items yet
    assert cash(client, sale_id, 1000, tender_id="t-3").json()["error"] == "empty_sale"
    client.post(f"/api/sales/{sale_id}/scan", json={"code": RICE})
    taken = cash(client, sale_id, 1000, tender_id="t-3").json()  # the retry is a first time
    assert taken["sale"]["remaining"]["fen"] == 4990


def test_without_an_id_two_cash_tenders_are_two(client: TestClient) -> None:
    sale_id = sale_with(client, RICE)
    cash(client, sale_id, 3000)
    done = cash(client, sale_id, 3000).json()  # split cash: two hand-overs
    assert done["completed"] is True and done["change"] == 10


def test_a_sale_with_nothing_due_is_completed_without_payment(client: TestClient) -> None:
    sale_id = sale_with(client, "6900000000014")
    refused = cash(client, sale_id, 100)
    assert refused.status_code == 409 and refused.json()["error"] == "nothing_due"
    assert refused.json()["message_en"] != "The sale has no items"
    done = client.post(f"/api/sales/{sale_id}/complete")
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["completed"] is True and body["change"] == 0 and body["receipt_text"]
    assert body["sale"]["state"] == "completed" and body["sale"]["tenders"] == []
    again = client.post(f"/api/sales/{sale_id}/complete")  # a repeat: the same answer
    assert again.status_code == 200 and again.json() == body
    shift = client.get("/api/lane").json()["shift"]
    assert shift is not None and client.get("/api/lane").json()["current_sale"] is None


def test_a_sale_with_something_due_is_not_completed_without_payment(client: TestClient) -> None:
    sale_id = sale_with(client, RICE)
    refused = client.post(f"/api/sales/{sale_id}/complete")
    assert refused.status_code == 409, refused.text
    assert client.get(f"/api/sales/{sale_id}").json()["state"] == "open"


def test_an_empty_sale_still_cannot_be_completed(client: TestClient) -> None:
    sale_id = sale_with(client)
    refused = client.post(f"/api/sales/{sale_id}/complete")
    assert refused.status_code == 409 and refused.json()["error"] == "empty_sale"


def test_the_same_cash_request_twice_on_a_terminal_lane(tmp_path: Path, lane_url: str) -> None:
    async def main() -> None:
        async with TerminalRig(tmp_path) as rig:
            runtime = make_runtime(
                lane_url, terminals={"L01": rig.cashier}, offload=False, clock=LoopClock().now
            )
            async with AsyncLane(runtime) as client:
                await runtime.wait_recovered(30)
                await sign_in(client)
                sale_id = await new_sale(client, RICE)
                body = {"amount_fen": 3000, "tender_id": "t-1"}
                first = await client.post(f"/api/sales/{sale_id}/cash", json=body)
                second = await client.post(f"/api/sales/{sale_id}/cash", json=body)
                assert first.status_code == second.status_code == 200, second.text
                assert first.json() == second.json()
                sale = (await client.get(f"/api/sales/{sale_id}")).json()
                assert len(sale["tenders"]) == 1 and sale["remaining"]["fen"] == 2990

    run_virtual(main)
