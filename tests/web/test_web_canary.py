"""The card-data canary for the web API (DESIGN.md section 7; see tests/test_card_canary.py).

Luhn-valid card numbers and track-2 strings are pushed through every free-text input of the
cashier API (sign-in name, barcode, PLU, payment code, receipt number, approver name, void and
return reasons), with a real card payment on the simulator in between; afterwards every answer,
the captured logs (debug level) and the lane database file are scanned: nothing beyond first 6 +
last 4 may be found.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from tests.payments import TerminalRig
from tests.terminal import LoopClock, run_virtual
from tests.test_card_canary import PANS, TRACK2, leaks
from tests.web import CASHIER, SUPERVISOR, AsyncLane, make_runtime

RICE = "6909876543212"


def test_no_card_number_survives_the_web_api(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[str] = []
    database = tmp_path / "lane.db"

    async def main() -> None:
        async with TerminalRig(tmp_path) as rig:
            runtime = make_runtime(
                f"sqlite:///{database}",
                terminals={"L01": rig.cashier},
                offload=False,
                clock=LoopClock().now,
                migrate=True,
            )
            async with AsyncLane(runtime) as client:
                await runtime.wait_recovered(30)
                await exercise(client, answers)

    with caplog.at_level(logging.DEBUG):
        run_virtual(main)
    for blob in answers:
        assert leaks(blob) == [], blob[:300]
    # httpx logs the test client's own request lines; the server's are scrubbed (uvicorn.access)
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert leaks("\n".join(ours)) == []
    assert leaks(database.read_bytes().decode("latin-1")) == []


async def exercise(client: httpx.AsyncClient, answers: list[str]) -> None:
    async def call(method: str, path: str, body: object = None) -> httpx.Response:
        response = await client.request(method, path, json=body)
        answers.append(response.text)
        return response

    for secret in [*PANS, *TRACK2]:  # as a user name: refused, never echoed or logged
        await call("POST", "/api/session", {"username": secret, "password": secret})
    signed_in = await call("POST", "/api/session", {"username": CASHIER[0], "password": CASHIER[1]})
    client.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
    await call("POST", "/api/shift", {"opening_float_fen": 10_000})
    sale_id = (await call("POST", "/api/sales")).json()["sale_id"]
    for secret in [*PANS, *TRACK2]:
        await call("POST", f"/api/sales/{sale_id}/scan", {"code": secret})
        await call("POST", f"/api/sales/{sale_id}/scan", {"plu": secret[:16], "grams": 100})
        await call("POST", f"/api/sales/{sale_id}/qr", {"auth_code": secret})
        await call("GET", f"/api/sales/by-receipt/{secret[:32]}")
    await call("POST", f"/api/sales/{sale_id}/scan", {"code": RICE})
    paid = await call("POST", f"/api/sales/{sale_id}/card", {})
    assert paid.json()["completed"], paid.text
    approver = {"username": SUPERVISOR[0], "password": SUPERVISOR[1]}
    for secret in PANS:
        await call(
            "POST",
            "/api/returns",
            {
                "sale_id": sale_id,
                "items": [{"line_no": 1}],
                "approver": {"username": secret, "password": secret},
                "reason": secret,
            },
        )
    returned = await call(
        "POST",
        "/api/returns",
        {"sale_id": sale_id, "items": [{"line_no": 1}], "approver": approver, "reason": PANS[0]},
    )
    assert returned.status_code == 200, returned.text
    other = (await call("POST", "/api/sales")).json()["sale_id"]
    await call("POST", f"/api/sales/{other}/scan", {"code": RICE})
    voided = await call(
        "POST", f"/api/sales/{other}/void", {"approver": approver, "reason": f"卡号 {TRACK2[1]}"}
    )
    assert voided.status_code == 200, voided.text
    await call("GET", f"/api/sales/{sale_id}/receipt")
    await call("GET", f"/api/sales/{sale_id}/payments")


def test_the_servers_request_log_lines_are_scrubbed(
    lane_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from shouyin.web.app import create_app

    create_app(make_runtime(lane_url))
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logging.getLogger("uvicorn.access").info(
            '%s - "GET /api/sales/by-receipt/%s HTTP/1.1" 404', "127.0.0.1", PANS[0]
        )
    assert caplog.records and leaks(caplog.records[-1].getMessage()) == []
