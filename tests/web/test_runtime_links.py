"""The lane runtime's terminal links from the fleet registry, end to end with real processes:
a network terminal (the simulator process, with the acquirer simulator) is registered, the lane
server starts without it, the admin pairs it, ``refresh_terminals`` starts the runtime's TLS
link server, the terminal dials in, and a card payment made through the web API is approved by
the real terminal and booked by the acquirer.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shouyin.config import Settings
from shouyin.fleet.pairing import PairingSession
from shouyin.fleet.registry import register_terminal
from shouyin.link.keystore import KeyStore
from shouyin.link.pairing_qr import encode_payload
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import make_session_factory
from shouyin.terminal.records import TerminalConfig
from shouyin.terminal.state import TerminalState
from tests.e2e.sim_helpers import AcquirerProcess, ProcessGroup, TerminalProcess
from tests.web import CASHIER, AsyncLane, make_runtime

TID = "10000001"
RICE = "6909876543212"
WAIT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow
def test_a_paired_network_terminal_takes_a_card_payment_through_the_web_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOUYIN_KEY_PASSPHRASE", raising=False)
    settings = Settings(
        data_dir=tmp_path / "lane",
        lane_id="L01",
        link_port=free_port(),
        listen_addresses=["127.0.0.1"],
        allowed_networks=["127.0.0.0/8"],
        server_names=["127.0.0.1"],
    )
    url = settings.resolved_database_url()
    engine = make_engine(url)
    upgrade(engine)
    KeyStore(settings.keys_dir).init("测试超市", ["127.0.0.1"], datetime.now(UTC))
    uow = SqlTerminalUnitOfWork(make_session_factory(engine))
    register_terminal(uow, TID, lane_id="L01", now=datetime.now(UTC))
    engine.dispose()
    state = tmp_path / "terminal"
    TerminalState(state, TerminalConfig(terminal_id=TID, progress_interval=0.3)).close()
    group = ProcessGroup(tmp_path)

    async def scenario() -> None:
        acquirer = await AcquirerProcess(group, tmp_path / "acquirer").start()
        terminal = TerminalProcess(group, ["--state-dir", str(state), "--acquirer", acquirer.url])
        runtime = make_runtime(url, settings=settings, terminals=None)
        async with AsyncLane(runtime) as client:
            assert runtime.terminal_status("L01")["present"] is False  # registered, not paired
            async with PairingSession(settings, TID) as pairing:  # as the admin does it
                payload = pairing.invitation.payload
                assert payload is not None
                await terminal.start("--pair-qr", encode_payload(payload))
                await terminal.expect("paired", timeout=WAIT)
                await pairing.wait(WAIT)
            # The terminal keeps dialling the address it paired with: the lane's server now.
            assert await runtime.refresh_terminals() == ["L01"]
            for _ in range(600):  # bounded: until the terminal has logged in
                if runtime.terminal_status("L01") == {
                    "present": True,
                    "ready": True,
                    "recovered": True,
                }:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"terminal never ready: {runtime.terminal_status('L01')}")
            signed = await client.post(
                "/api/session", json={"username": CASHIER[0], "password": CASHIER[1]}
            )
            client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
            assert (await client.get("/api/lane")).json()["terminal"]["ready"] is True
            await client.post("/api/shift", json={"opening_float_fen": 10_000})
            sale_id = (await client.post("/api/sales")).json()["sale_id"]
            await client.post(f"/api/sales/{sale_id}/scan", json={"code": RICE})
            paid = (await client.post(f"/api/sales/{sale_id}/card", json={})).json()
            assert paid["approved"] and paid["completed"], paid
        assert [e.amount for e in await acquirer.ledger(TID)] == [5990]
        assert await terminal.stop() == 0
        await acquirer.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 120))
    finally:
        group.close()
