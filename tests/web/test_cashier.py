"""The cashier API without a terminal: shift, scanning, cash, hold/recall, void, return,
receipts and reports, over HTTP against a real app and database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shouyin.domain.barcodes import Nomenclature
from shouyin.domain.money import Money
from shouyin.web.app import create_app
from shouyin.web.runtime import LaneRuntime
from tests.web import CASHIER, SUPERVISOR, login, make_runtime, open_sale

COLA = "6901234567892"
RICE = "6909876543212"
APPROVER = {"username": SUPERVISOR[0], "password": SUPERVISOR[1]}


@pytest.fixture
def runtime(lane_url: str) -> LaneRuntime:
    return make_runtime(lane_url)


@pytest.fixture
def client(runtime: LaneRuntime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        login(client, CASHIER)
        yield client


def scan(client: TestClient, sale_id: str, code: str) -> dict[str, Any]:
    response = client.post(f"/api/sales/{sale_id}/scan", json={"code": code})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_scan_answers_with_its_line_and_the_priced_sale(client: TestClient) -> None:
    sale_id = open_sale(client)
    first = scan(client, sale_id, COLA)
    assert first["line"]["name"] == "可口可乐 500ml"
    assert first["line"]["net"] == {"fen": 350, "text": "¥3.50"}
    second = scan(client, sale_id, COLA)
    sale = second["sale"]
    assert sale["total"]["fen"] == 350 + 175  # 第二件半价
    assert [p["name"] for p in sale["promotions"]] == ["饮料第二件半价"]
    assert sale["item_count"] == 2


def test_a_scale_label_sells_the_weighed_amount(client: TestClient) -> None:
    sale_id = open_sale(client)
    label = Nomenclature.default().formats[0].encode("10001", amount=Money(1_563))
    line = scan(client, sale_id, label)["line"]
    assert line["sku"] == "A1" and line["net"]["fen"] == 1_563


def test_a_plu_with_a_weight_sells_by_the_kilo(client: TestClient) -> None:
    sale_id = open_sale(client)
    response = client.post(f"/api/sales/{sale_id}/scan", json={"plu": "10001", "grams": 500})
    assert response.status_code == 200
    assert response.json()["line"]["net"]["fen"] == 649  # 12.98/kg * 0.5 kg
    missing = client.post(f"/api/sales/{sale_id}/scan", json={"plu": "10001"})
    assert missing.status_code == 422 and missing.json()["error"] == "weight_required"


def test_an_unknown_barcode_is_a_clear_404_and_changes_nothing(client: TestClient) -> None:
    sale_id = open_sale(client)
    response = client.post(f"/api/sales/{sale_id}/scan", json={"code": "6900000000007"})
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_product"
    assert response.json()["message"] == "没有这个商品"
    assert client.get(f"/api/sales/{sale_id}").json()["lines"] == []


def test_a_malformed_barcode_is_422(client: TestClient) -> None:
    sale_id = open_sale(client)
    response = client.post(f"/api/sales/{sale_id}/scan", json={"code": "12ab"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_barcode"


def test_selling_needs_an_open_shift(client: TestClient) -> None:
    response = client.post("/api/sales")
    assert response.status_code == 409
    assert response.json()["error"] == "shift_error"


def test_quantity_change_and_line_removal(client: TestClient) -> None:
    sale_id = open_sale(client)
    scan(client, sale_id, RICE)
    sale = client.put(f"/api/sales/{sale_id}/lines/1", json={"quantity": 3}).json()
    assert sale["total"]["fen"] == 3 * 5990
    sale = client.delete(f"/api/sales/{sale_id}/lines/1").json()
    assert sale["lines"][0]["voided"] is True and sale["total"]["fen"] == 0


def test_cash_with_change_completes_the_sale_and_returns_the_receipt(client: TestClient) -> None:
    sale_id = open_sale(client)
    scan(client, sale_id, RICE)
    response = client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 10_000})
    assert response.status_code == 200
    body = response.json()
    assert body["completed"] is True and body["change"] == 10_000 - 5990
    assert "大米 5kg" in body["receipt_text"] and "59.90" in body["receipt_text"]
    assert client.get(f"/api/sales/{sale_id}/receipt").json()["text"] == body["receipt_text"]
    reprint = client.post(f"/api/sales/{sale_id}/reprint").json()["text"]
    assert "重印" in reprint


def test_part_cash_leaves_the_rest_to_pay(client: TestClient) -> None:
    sale_id = open_sale(client)
    scan(client, sale_id, RICE)
    body = client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 2_000}).json()
    assert body["completed"] is False
    assert body["sale"]["remaining"]["fen"] == 3_990


def test_card_without_a_terminal_says_take_cash(client: TestClient) -> None:
    sale_id = open_sale(client)
    scan(client, sale_id, RICE)
    response = client.post(f"/api/sales/{sale_id}/card", json={})
    assert response.status_code == 409
    assert response.json()["error"] == "no_terminal"


def test_hold_and_recall(client: TestClient) -> None:
    sale_id = open_sale(client)
    scan(client, sale_id, COLA)
    assert client.post(f"/api/sales/{sale_id}/hold").json()["state"] == "held"
    held = client.get("/api/sales/held").json()
    assert [h["sale_id"] for h in held] == [sale_id]
    assert client.get("/api/lane").json()["held"][0]["sale_id"] == sale_id
    assert client.post(f"/api/sales/{sale_id}/recall").json()["state"] == "open"
    assert client.get("/api/sales/held").json() == []


def test_void_needs_a_supervisors_password(client: TestClient) -> None:
    sale_id = open_sale(client)
    scan(client, sale_id, COLA)
    wrong = {"approver": {"username": "wang", "password": "nope-nope"}, "reason": "顾客不要了"}
    assert client.post(f"/api/sales/{sale_id}/void", json=wrong).status_code == 401
    cashier = {"approver": {"username": "li", "password": "472913"}, "reason": "顾客不要了"}
    assert client.post(f"/api/sales/{sale_id}/void", json=cashier).status_code == 403
    ok = {"approver": APPROVER, "reason": "顾客不要了"}
    response = client.post(f"/api/sales/{sale_id}/void", json=ok)
    assert response.status_code == 200 and response.json()["state"] == "voided"


def test_a_cash_return_with_approval_against_a_receipt_number(client: TestClient) -> None:
    sale_id = open_sale(client)
    scan(client, sale_id, RICE)
    scan(client, sale_id, COLA)
    paid = client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 10_000}).json()
    receipt_no = paid["sale"]["receipt_no"]
    found = client.get(f"/api/sales/by-receipt/{receipt_no}").json()
    assert found["sale_id"] == sale_id
    body = {
        "sale_id": sale_id,
        "items": [{"line_no": 1}],
        "approver": APPROVER,
        "reason": "包装破损",
    }
    response = client.post("/api/returns", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["return"]["refund"]["fen"] == 5990
    again = client.post("/api/returns", json=body)
    assert again.status_code == 422 and again.json()["error"] == "return_error"


def test_shift_close_reports_the_variance_and_the_x_report(client: TestClient) -> None:
    sale_id = open_sale(client, float_fen=50_000)
    scan(client, sale_id, RICE)
    client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 5_990})
    assert "X" in client.get("/api/shift/x-report").json()["text"]
    response = client.post("/api/shift/close", json={"counted_cash_fen": 55_000})
    assert response.status_code == 200
    shift = response.json()["shift"]
    assert shift["state"] == "closed"
    assert shift["expected_cash"]["fen"] == 55_990
    assert shift["variance"]["fen"] == -990
    assert response.json()["report_text"]


def test_the_lane_state_finds_the_unfinished_sale_after_a_reload(client: TestClient) -> None:
    sale_id = open_sale(client)
    scan(client, sale_id, COLA)
    lane = client.get("/api/lane").json()
    assert lane["current_sale"]["sale_id"] == sale_id
    assert lane["terminal"] == {"present": False, "ready": False, "recovered": False}
    assert client.get("/api/lane/terminal").json() == lane["terminal"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/shift", {"opening_float_fen": -1}),
        ("/api/shift", {"opening_float_fen": "lots"}),
        ("/api/sales/x/scan", {"code": ""}),
        ("/api/sales/x/scan", {"code": "1", "plu": "2"}),
        ("/api/sales/x/cash", {"amount_fen": 0}),
        ("/api/sales/x/cash", {"amount_fen": 10**13}),
    ],
)
def test_bad_input_is_a_422_in_the_error_shape(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert set(response.json()) >= {"error", "message", "message_en"}


def test_a_whole_day_at_the_lane_on_each_database(db_url: str) -> None:
    """Sign in, open the shift, sell with a promotion, take cash, return, close: on SQLite and
    on PostgreSQL."""
    with TestClient(create_app(make_runtime(db_url))) as client:
        login(client, CASHIER)
        sale_id = open_sale(client, float_fen=10_000)
        scan(client, sale_id, COLA)
        sale = scan(client, sale_id, COLA)["sale"]
        assert sale["total"]["fen"] == 525
        paid = client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 1_000}).json()
        assert paid["completed"] and paid["change"] == 475
        returned = client.post(
            "/api/returns",
            json={
                "sale_id": sale_id,
                "items": [{"line_no": 2}],
                "approver": APPROVER,
                "reason": "退",
            },
        )
        assert returned.status_code == 200, returned.text
        closed = client.post("/api/shift/close", json={"counted_cash_fen": 10_000}).json()
        assert (
            closed["shift"]["expected_cash"]["fen"]
            == 10_000 + 525 - returned.json()["return"]["refund"]["fen"]
        )


def test_only_the_shifts_cashier_or_a_supervisor_closes_it(runtime: LaneRuntime) -> None:
    from tests.web import OTHER_CASHIER

    with TestClient(create_app(runtime)) as client:
        login(client, CASHIER)
        open_sale(client)
        client.delete("/api/session")
        login(client, OTHER_CASHIER, "L01")  # another cashier at the same lane
        refused = client.post("/api/shift/close", json={"counted_cash_fen": 0})
        assert refused.status_code == 403, refused.text
        assert client.get("/api/lane").json()["shift"] is not None  # still open, no variance
        client.delete("/api/session")
        login(client, SUPERVISOR, "L01")
        closed = client.post("/api/shift/close", json={"counted_cash_fen": 50_000})
        assert closed.status_code == 200, closed.text
