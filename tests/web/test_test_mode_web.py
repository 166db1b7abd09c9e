"""Test mode on the web path: a network (TLS) terminal that reports test mode gets no real
payment. The lane's orchestrator is made before the terminal ever dials in, with a
:class:`~shouyin.web.terminals.ServerTerminalPort`; that port hands the orchestrator's test-mode
watch to the endpoint the link server makes when the terminal connects, so a card payment made
through the web API is refused (``TerminalInTestMode``) and nothing is sent to the terminal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shouyin.fleet.pairing import PairingSession
from shouyin.fleet.registry import register_terminal
from shouyin.link import LinkConfig
from shouyin.link.aio import LinkEndpoint
from shouyin.link.events import Event, MessageReceived
from shouyin.link.keystore import TerminalKeyStore
from shouyin.link.messages import EventNotification, PaymentRequest
from shouyin.link.peer import peer_capabilities
from shouyin.link.session import Connection
from shouyin.link.states import Role as LinkRole
from shouyin.link.transport import LinkAddress, connect_tls
from shouyin.link.values import NotificationKind
from shouyin.payments import PaymentPolicy
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import make_session_factory
from shouyin.web.terminals import ServerTerminalPort
from tests.fleet import init_store, keyring, make_settings, pair_as_terminal
from tests.web import CASHIER, AsyncLane, make_runtime

TID = "10000001"
RICE = "6909876543212"
FAST = LinkConfig(pairing_timeout=3.0, login_timeout=2.0)
WAIT = 10.0


def test_a_network_terminal_in_test_mode_gets_no_real_payment_through_the_web(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOUYIN_KEY_PASSPHRASE", raising=False)
    settings = make_settings(tmp_path)
    init_store(settings)
    url = settings.resolved_database_url()
    engine = make_engine(url)
    upgrade(engine)
    register_terminal(
        SqlTerminalUnitOfWork(make_session_factory(engine)),
        TID,
        lane_id="L01",
        now=datetime.now(UTC),
    )
    # Short payment timings: without the fix the payment goes out to a terminal that never
    # answers it, and the test fails on its status code instead of timing out.
    policy = PaymentPolicy(payment_timeout=2.0, query_timeout=1.0, query_window=2.0, link_wait=2.0)

    async def scenario() -> None:
        async with PairingSession(settings, TID, keyring=keyring(settings), config=FAST) as s:
            waiting = asyncio.create_task(s.wait(WAIT))
            await pair_as_terminal(s.invitation, tmp_path / "poi", terminal_id=TID)
            await waiting
        key = keyring(settings).get(TID)
        runtime = make_runtime(url, settings=settings, terminals=None, policy=policy)
        async with AsyncLane(runtime) as client:
            orchestrator = runtime._orchestrators["L01"]  # made before the terminal dialled in
            assert isinstance(orchestrator.channel.port, ServerTerminalPort)
            assert runtime.links is not None and runtime.links.server is not None
            assert TID not in runtime.links.server.endpoints
            terminal = LinkEndpoint(
                Connection(LinkRole.POI, TID, peer_capabilities(), long_term_key=key)
            )
            received: list[object] = []

            def on_terminal(_endpoint: LinkEndpoint, event: Event) -> None:
                if isinstance(event, MessageReceived):
                    received.append(event.message)

            terminal.add_listener(on_terminal)
            try:
                transport = await connect_tls(
                    LinkAddress.parse(f"tls://127.0.0.1:{settings.link_port}"),
                    TerminalKeyStore(tmp_path / "poi").ssl_client_context(None),
                )
                terminal.attach(transport)
                await terminal.wait_ready(WAIT)
                await runtime.wait_recovered(WAIT)
                # The server's endpoint gets this listener after the orchestrator's (which the
                # port attached when the endpoint was made): once it has heard the
                # notification, so has the orchestrator.
                heard = asyncio.Event()

                def on_lane(_endpoint: LinkEndpoint, event: Event) -> None:
                    if isinstance(event, MessageReceived) and isinstance(
                        event.message, EventNotification
                    ):
                        heard.set()

                runtime.links.server.endpoints[TID].add_listener(on_lane)
                terminal.send(EventNotification(event=NotificationKind.TEST_MODE_STARTED))
                await asyncio.wait_for(heard.wait(), WAIT)
                assert orchestrator.terminal_test_mode

                signed = await client.post(
                    "/api/session", json={"username": CASHIER[0], "password": CASHIER[1]}
                )
                client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
                await client.post("/api/shift", json={"opening_float_fen": 10_000})
                sale_id = (await client.post("/api/sales")).json()["sale_id"]
                await client.post(f"/api/sales/{sale_id}/scan", json={"code": RICE})
                refused = await client.post(f"/api/sales/{sale_id}/card", json={})
                assert refused.status_code == 409, refused.text
                assert "测试模式" in refused.text
                assert not any(isinstance(m, PaymentRequest) for m in received)
                sale = (await client.get(f"/api/sales/{sale_id}")).json()
                assert sale["state"] != "completed" and sale["tenders"] == [], sale

                # A port made once the endpoint exists listens to it too, once per event.
                late: list[object] = []
                ended = asyncio.Event()

                def on_late(_endpoint: LinkEndpoint, event: Event) -> None:
                    if isinstance(event, MessageReceived):
                        late.append(event.message)
                        ended.set()

                ServerTerminalPort(runtime.links.server, TID).add_listener(on_late)
                terminal.send(EventNotification(event=NotificationKind.TEST_MODE_ENDED))
                await asyncio.wait_for(ended.wait(), WAIT)
                assert [getattr(m, "event", None) for m in late] == [
                    NotificationKind.TEST_MODE_ENDED
                ]
                assert not orchestrator.terminal_test_mode  # heard before the later listener
            finally:
                await terminal.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        engine.dispose()
