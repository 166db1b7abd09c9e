"""Card and QR payments through the web API against the real terminal simulator
(:class:`tests.payments.TerminalRig`: the real ``TerminalApp`` behind a real link), on the
virtual-time loop: approval, decline, QR, split tender, cash refused while a card payment is
open, voiding a card payment, a refund to the card, and live progress events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from shouyin.terminal.cards import ReaderRule
from tests.payments import WECHAT_CODE, TerminalRig
from tests.terminal import LoopClock, run_virtual
from tests.web import CASHIER, SUPERVISOR, AsyncLane, make_runtime

RICE = "6909876543212"
APPROVER = {"username": SUPERVISOR[0], "password": SUPERVISOR[1]}

Scenario = Callable[[httpx.AsyncClient, TerminalRig], Awaitable[None]]


def run(
    tmp_path: Path, lane_url: str, scenario: Scenario, rules: tuple[ReaderRule, ...] = ()
) -> None:
    """Run ``scenario`` with a signed-in cashier on a lane whose terminal is the simulator."""

    async def main() -> None:
        async with TerminalRig(tmp_path, rules=rules) as rig:
            runtime = make_runtime(
                lane_url, terminals={"L01": rig.cashier}, offload=False, clock=LoopClock().now
            )
            async with AsyncLane(runtime) as client:
                await runtime.wait_recovered(30)
                await sign_in(client)
                await scenario(client, rig)

    run_virtual(main)


async def sign_in(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/session", json={"username": CASHIER[0], "password": CASHIER[1]}
    )
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


async def new_sale(client: httpx.AsyncClient, *codes: str) -> str:
    if (await client.get("/api/lane")).json()["shift"] is None:
        await client.post("/api/shift", json={"opening_float_fen": 10_000})
    sale_id: str = (await client.post("/api/sales")).json()["sale_id"]
    for code in codes:
        assert (await client.post(f"/api/sales/{sale_id}/scan", json={"code": code})).is_success
    return sale_id


def test_a_card_payment_is_approved_and_completes_the_sale(tmp_path: Path, lane_url: str) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        response = await client.post(f"/api/sales/{sale_id}/card", json={})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["approved"] and body["completed"]
        assert body["payment"]["masked_pan"].count("*") >= 6
        assert body["message"].startswith("支付成功")
        masked = body["payment"]["masked_pan"]
        assert masked[:6] in body["receipt_text"] and masked[-4:] in body["receipt_text"]
        assert rig.sales_booked() == 1

    run(tmp_path, lane_url, scenario)


def test_a_declined_card_leaves_the_sale_payable(tmp_path: Path, lane_url: str) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        body = (await client.post(f"/api/sales/{sale_id}/card", json={})).json()
        assert not body["approved"] and not body["completed"]
        assert body["payment"]["state"] == "declined"
        assert body["sale"]["remaining"]["fen"] == 5990
        assert body["message"] and body["message_en"]

    run(tmp_path, lane_url, scenario, rules=(ReaderRule(card="decline"),))


def test_a_split_tender_cash_then_card(tmp_path: Path, lane_url: str) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        cash = (await client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 2000})).json()
        assert cash["completed"] is False
        card = (await client.post(f"/api/sales/{sale_id}/card", json={})).json()
        assert card["completed"] and card["payment"]["amount"]["fen"] == 3990
        kinds = [t["kind"] for t in card["sale"]["tenders"]]
        assert kinds == ["cash", "card"]

    run(tmp_path, lane_url, scenario)


def test_a_qr_payment_with_the_customers_code(tmp_path: Path, lane_url: str) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        response = await client.post(f"/api/sales/{sale_id}/qr", json={"auth_code": WECHAT_CODE})
        body = response.json()
        assert body["approved"] and body["completed"], body
        assert body["payment"]["wallet"] == "wechat"
        bad = await client.post(f"/api/sales/{sale_id}/qr", json={"auth_code": "999"})
        assert bad.status_code in (409, 422)

    run(tmp_path, lane_url, scenario)


def test_an_unrecognised_payment_code_is_refused_before_anything_is_sent(
    tmp_path: Path, lane_url: str
) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        response = await client.post(f"/api/sales/{sale_id}/qr", json={"auth_code": "999999"})
        assert response.status_code == 422
        assert response.json()["error"] == "unrecognised_code"
        assert (await client.get(f"/api/sales/{sale_id}/payments")).json() == []

    run(tmp_path, lane_url, scenario)


def test_cash_is_refused_while_a_card_payment_of_the_sale_is_open(
    tmp_path: Path, lane_url: str
) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        card = asyncio.ensure_future(client.post(f"/api/sales/{sale_id}/card", json={}))
        for _ in range(200):  # bounded: until the payment is on the terminal
            journal = (await client.get(f"/api/sales/{sale_id}/payments")).json()
            if journal:
                break
            await asyncio.sleep(0.05)
        cash = await client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 5990})
        assert cash.status_code == 409
        assert cash.json()["error"] == "payment_in_progress"
        assert (await card).json()["completed"] is True
        assert rig.sales_booked() == 1

    # the card comes after 10 s: the payment is open long enough to try cash meanwhile
    run(tmp_path, lane_url, scenario, rules=(ReaderRule(delay=10.0),))


def test_the_cashier_can_abort_a_card_payment_waiting_for_the_card(
    tmp_path: Path, lane_url: str
) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        card = asyncio.ensure_future(client.post(f"/api/sales/{sale_id}/card", json={}))
        accepted = False
        for _ in range(200):
            await asyncio.sleep(0.05)
            accepted = (await client.post(f"/api/sales/{sale_id}/abort")).json()["accepted"]
            if accepted:
                break
        assert accepted
        body = (await card).json()
        assert not body["approved"] and body["sale"]["remaining"]["fen"] == 5990
        assert rig.sales_booked() == 0

    run(tmp_path, lane_url, scenario, rules=(ReaderRule(present=False),))


def test_a_supervisor_voids_a_card_payment_then_the_sale(tmp_path: Path, lane_url: str) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        await client.post(f"/api/sales/{sale_id}/cash", json={"amount_fen": 1000})
        card = (await client.post(f"/api/sales/{sale_id}/card", json={"amount_fen": 2000})).json()
        ecr_ref = card["payment"]["ecr_ref"]
        blocked = await client.post(
            f"/api/sales/{sale_id}/void", json={"approver": APPROVER, "reason": "顾客不要了"}
        )
        assert blocked.json()["error"] == "tenders_outstanding"
        voided = await client.post(
            f"/api/sales/{sale_id}/payments/{ecr_ref}/void", json={"approver": APPROVER}
        )
        assert voided.json()["approved"] is True, voided.text
        sale = await client.post(
            f"/api/sales/{sale_id}/void", json={"approver": APPROVER, "reason": "顾客不要了"}
        )
        assert sale.json()["state"] == "voided"

    run(tmp_path, lane_url, scenario)


def test_a_return_refunded_to_the_original_card(tmp_path: Path, lane_url: str) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        assert (await client.post(f"/api/sales/{sale_id}/card", json={})).json()["completed"]
        response = await client.post(
            "/api/returns",
            json={
                "sale_id": sale_id,
                "items": [{"line_no": 1}],
                "approver": APPROVER,
                "reason": "质量问题",
                "method": "original",
            },
        )
        body = response.json()
        assert body["approved"] is True, body
        assert body["return"]["refund"]["fen"] == 5990
        assert body["payment"]["kind"] == "refund"

    run(tmp_path, lane_url, scenario)


def test_payment_progress_reaches_the_lanes_event_stream(tmp_path: Path, lane_url: str) -> None:
    async def scenario(client: httpx.AsyncClient, rig: TerminalRig) -> None:
        sale_id = await new_sale(client, RICE)
        events: list[tuple[str, dict[str, Any]]] = []

        async def listen() -> None:
            async with client.stream("GET", "/api/events", params={"lifetime": 30}) as stream:
                kind = ""
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        events.append((kind, json.loads(line[6:])))
                        if kind == "payment.outcome":
                            return

        listener = asyncio.ensure_future(listen())
        for _ in range(100):  # bounded: until the stream is subscribed
            if events:
                break
            await asyncio.sleep(0.01)
        await client.post(f"/api/sales/{sale_id}/card", json={})
        await asyncio.wait_for(listener, 60)
        kinds = [k for k, _ in events]
        assert kinds[0] == "hello"
        assert "payment.progress" in kinds and kinds[-1] == "payment.outcome"
        steps = [d["zh"] for k, d in events if k == "payment.progress"]
        assert any("刷卡" in s for s in steps), steps

    run(tmp_path, lane_url, scenario)
