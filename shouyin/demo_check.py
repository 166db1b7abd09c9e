"""``make demo``'s non-interactive check: one card payment per lane through the API, end to end.

For each lane server: the cashier signs in (a bearer token, as an API client), waits until the
lane's terminal is logged in and its payment journal recovered, opens a shift, starts a sale,
scans a demo barcode and pays by card on the simulated terminal (TLS on one lane, the pty serial
cable on the other), which asks the acquirer simulator over ISO 8583. The sale must complete,
the terminal's own journal (its control channel) must hold the same approved transaction with
the same masked card number, and the lane's virtual printer must have printed the receipt.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Final

import httpx

from shouyin.demo_store import DEMO_USERS
from shouyin.demo_system import DemoSystem, LaneServer, RunningTerminal
from shouyin.domain.money import Money
from shouyin.domain.users import Role

__all__ = ["CheckFailed", "verify"]

READY_TIMEOUT: Final = 30.0  # seconds for a lane's terminal to be ready and recovered
PRINT_TIMEOUT: Final = 15.0  # seconds for the receipt to come out of the virtual printer
REQUEST_TIMEOUT: Final = 60.0  # a card payment waits for the terminal and the acquirer
OPENING_FLOAT: Final = Money(50_000)


class CheckFailed(Exception):
    """The demo does not work: what was expected and what came instead."""


def _cashier() -> tuple[str, str]:
    user = next(u for u in DEMO_USERS if u.role is Role.CASHIER)
    return user.username, user.password


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    response = await client.request(method, path, json=body)
    if response.status_code >= 400:
        raise CheckFailed(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


async def _terminal_journal(address: str, ecr_ref: str) -> dict[str, Any] | None:
    """The terminal's own record of ``ecr_ref`` (its control channel)."""
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10.0)
    try:
        writer.write(json.dumps({"cmd": "journal", "ecr_ref": ecr_ref}).encode() + b"\n")
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), 10.0))
    finally:
        writer.close()
    if not answer.get("ok"):
        raise CheckFailed(f"the terminal's control channel refused: {answer}")
    entry: dict[str, Any] | None = answer.get("entry")
    return entry


async def _wait_terminal_ready(client: httpx.AsyncClient) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    while True:
        terminal = (await _call(client, "GET", "/api/lane"))["terminal"]
        if terminal["ready"] and terminal["recovered"]:
            return
        if loop.time() > deadline:
            raise CheckFailed(f"the lane's terminal is not ready: {terminal}")
        await asyncio.sleep(0.2)


async def printed(directory: Path, receipt_no: str, timeout: float = PRINT_TIMEOUT) -> Path:
    """The virtual printer's job file (``job-NNNN.txt`` in ``directory``) of ``receipt_no``.

    Raises:
        CheckFailed: no such receipt came out within ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for job in sorted(directory.glob("job-*.txt")):
            if receipt_no in job.read_text(encoding="utf-8", errors="replace"):
                return job
        if loop.time() > deadline:
            raise CheckFailed(f"receipt {receipt_no} was not printed in {directory}")
        await asyncio.sleep(0.1)


async def check_lane(
    server: LaneServer,
    terminal: RunningTerminal,
    code: str,
    lang: str = "zh",
    receipts: Path | None = None,
) -> str:
    """One card sale on ``server``'s lane; a line saying what happened.

    Args:
        server: the lane's server.
        terminal: the lane's simulated terminal.
        code: a barcode to sell.
        lang: the language of the line.
        receipts: the lane's virtual printer's job directory, if it has one.

    Raises:
        CheckFailed: something did not work as a cashier expects.
    """
    username, password = _cashier()
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT) as client:
        login = await _call(
            client, "POST", "/api/session", {"username": username, "password": password}
        )
        client.headers["Authorization"] = f"Bearer {login['token']}"
        await _wait_terminal_ready(client)
        lane = await _call(client, "GET", "/api/lane")
        if lane["shift"] is None:
            await _call(client, "POST", "/api/shift", {"opening_float_fen": OPENING_FLOAT.fen})
        sale = await _call(client, "POST", "/api/sales")
        scanned = await _call(client, "POST", f"/api/sales/{sale['sale_id']}/scan", {"code": code})
        total = scanned["sale"]["total"]
        paid = await _call(client, "POST", f"/api/sales/{sale['sale_id']}/card", {})
        await _call(client, "DELETE", "/api/session")
    payment = paid["payment"]
    if not (paid["approved"] and paid["completed"]):
        raise CheckFailed(f"lane {server.lane_id}: the card payment was not approved: {paid}")
    entry = await _terminal_journal(terminal.control, payment["ecr_ref"])
    if entry is None or entry["state"] != "approved" or entry["amount"] != total["fen"]:
        raise CheckFailed(f"lane {server.lane_id}: the terminal's journal disagrees: {entry}")
    masked = (entry.get("acquirer") or {}).get("masked_pan")
    if masked != payment["masked_pan"]:
        raise CheckFailed(f"lane {server.lane_id}: card {payment['masked_pan']} vs {masked}")
    job = "" if receipts is None else f" · {(await printed(receipts, sale['receipt_no'])).name}"
    return (
        f"✓ {server.lane_id} · {terminal.spec.terminal_id} ({terminal.spec.transport}): "
        f"{scanned['line']['name']} {total['text']} · {payment['masked_pan']} · "
        f"rrn {payment['rrn']} · {paid['message_en' if lang == 'en' else 'message']}{job}"
    )


async def verify(system: DemoSystem) -> list[str]:
    """A card sale on every lane of the running demo; one line per lane.

    Raises:
        CheckFailed: a lane does not work.
    """
    codes = system.summary.samples if system.summary else ()
    if not codes:
        raise CheckFailed("the demo store has no sample barcodes")
    checks = []
    for server in system.servers:
        terminal = next(t for t in system.terminals if t.spec.lane_id == server.lane_id)
        receipts = system.receipts_dir(server.lane_id) if system.printers else None
        checks.append(check_lane(server, terminal, codes[0], system.language, receipts))
    return list(await asyncio.gather(*checks))
