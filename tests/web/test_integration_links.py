"""The terminal health monitor in the running server (issue 7 joined to issue 6): a paired serial
terminal on a pty cable (the link's real POI endpoint) connects; its link state reaches the lane's
pages as ``terminal.state``; its paper-out notification becomes a stored alert published as
``terminal.alert`` and ``terminal.health`` to supervisors and admins only; the link going down is
published; the monitor stops with the runtime. A network terminal is watched from its first
connection through the link server's public endpoint listener."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shouyin.domain.users import Role
from shouyin.fleet.health_store import SqlHealthUnitOfWork
from shouyin.fleet.pairing import PairingSession
from shouyin.fleet.registry import register_terminal
from shouyin.link import LinkConfig
from shouyin.link.aio import LinkEndpoint
from shouyin.link.keystore import TerminalKeyStore
from shouyin.link.messages import EventNotification
from shouyin.link.peer import peer_capabilities
from shouyin.link.security import LongTermKey
from shouyin.link.session import Connection
from shouyin.link.states import Role as LinkRole
from shouyin.link.transport import LinkAddress, PtyCable, connect_tls, open_serial
from shouyin.link.values import NotificationKind
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import make_session_factory
from shouyin.web.events import Subscription, WebEvent
from tests.fleet import init_store, keyring, make_settings, pair_as_terminal
from tests.web import make_runtime

TID = "10000001"
FAST = LinkConfig(pairing_timeout=3.0, login_timeout=2.0)
WAIT = 10.0


def poi(address: LinkAddress, key: LongTermKey | None = None) -> LinkEndpoint:
    """The terminal's side of the cable (the link's real POI role)."""
    return LinkEndpoint(
        Connection(
            LinkRole.POI,
            TID,
            peer_capabilities(),
            config=FAST,
            framer_factory=address.framer_factory(),
            long_term_key=key,
        )
    )


async def events_until(
    subscription: Subscription, wanted: Any, timeout: float = WAIT
) -> list[WebEvent]:
    """Collect the subscription's events until ``wanted(events)`` holds (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: list[WebEvent] = []
    while not wanted(seen):
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"not seen in time: {[(e.kind, dict(e.data)) for e in seen]}")
        seen += [event for _, event in await subscription.wait(min(left, 0.5))]
    return seen


def has(event_kind: str, **fields: Any) -> Any:
    def check(events: list[WebEvent]) -> bool:
        return any(
            e.kind == event_kind and all(e.data.get(k) == v for k, v in fields.items())
            for e in events
        )

    return check


def test_the_server_publishes_terminal_link_state_and_health_alerts_by_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOUYIN_KEY_PASSPHRASE", raising=False)
    settings = make_settings(tmp_path)
    init_store(settings)
    url = settings.resolved_database_url()
    engine = make_engine(url)
    upgrade(engine)

    async def scenario() -> None:
        async with PtyCable() as cable:
            register_terminal(
                SqlTerminalUnitOfWork(make_session_factory(engine)),
                TID,
                lane_id="L01",
                now=datetime.now(UTC),
                link_url=f"serial://{cable.paths[0]}?baud=115200",
            )
            address = LinkAddress.parse(f"serial://{cable.paths[1]}?baud=115200")
            async with PairingSession(settings, TID, config=FAST) as session:  # over the cable
                waiting = asyncio.create_task(session.wait(WAIT))
                pairing = poi(address)
                pairing.attach(await open_serial(address))
                paired = await pairing.pair(session.invitation.code.digits, timeout=WAIT)
                await waiting
                await pairing.close()
            terminal = poi(address, paired.key)
            runtime = make_runtime(url, settings=settings, terminals=None)
            runtime.health_interval = 0.2
            with (
                runtime.bus.subscribe(None, Role.ADMIN) as admin,
                runtime.bus.subscribe("L01", Role.SUPERVISOR) as supervisor,
                runtime.bus.subscribe("L01", Role.CASHIER) as cashier,
            ):
                await runtime.start()
                try:
                    terminal.attach(await open_serial(address))
                    up = has("terminal.state", terminal_id=TID, connected=True)
                    cashier_seen = await events_until(cashier, up)
                    await events_until(admin, up)
                    await terminal.wait_ready(WAIT)  # logged in on its side too
                    terminal.send(EventNotification(event=NotificationKind.PAPER_OUT))
                    alert = has("terminal.alert", terminal_id=TID, kind="paper_out", active=True)
                    admin_seen = await events_until(admin, alert)
                    await events_until(supervisor, alert)
                    assert has("terminal.health", terminal_id=TID, paper="out")(admin_seen)
                    with SqlHealthUnitOfWork(engine) as uow:
                        assert "paper_out" in {k.value for k in uow.health.active_alerts(TID)}

                    await terminal.close()  # the terminal goes away
                    down = has("terminal.state", terminal_id=TID, connected=False)
                    cashier_seen += await events_until(cashier, down)
                    assert not any(
                        e.kind in ("terminal.alert", "terminal.health") for e in cashier_seen
                    )
                    tasks = list(runtime._tasks)
                    assert runtime.monitor is not None and tasks
                finally:
                    await runtime.close()
                    await terminal.close()
                assert all(task.done() for task in tasks)  # the monitor stopped with the runtime
                assert runtime.monitor is None

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        engine.dispose()


def test_a_network_terminal_is_watched_from_its_first_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link server tells the runtime of a terminal's endpoint when it dials in
    (``LinkServer.add_endpoint_listener``), so its first notification is already recorded,
    long before the monitor's next periodic check would have found it."""
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

    async def scenario() -> None:
        async with PairingSession(settings, TID, keyring=keyring(settings), config=FAST) as s:
            waiting = asyncio.create_task(s.wait(WAIT))
            await pair_as_terminal(s.invitation, tmp_path / "poi", terminal_id=TID)
            await waiting
        key = keyring(settings).get(TID)
        runtime = make_runtime(url, settings=settings, terminals=None)
        runtime.health_interval = 600.0  # one check at start, none during the test
        with runtime.bus.subscribe(None, Role.ADMIN) as admin:
            await runtime.start()
            terminal = LinkEndpoint(
                Connection(LinkRole.POI, TID, peer_capabilities(), long_term_key=key)
            )
            try:
                transport = await connect_tls(
                    LinkAddress.parse(f"tls://127.0.0.1:{settings.link_port}"),
                    TerminalKeyStore(tmp_path / "poi").ssl_client_context(None),
                )
                terminal.attach(transport)
                await terminal.wait_ready(WAIT)
                await events_until(admin, has("terminal.state", terminal_id=TID, connected=True))
                terminal.send(EventNotification(event=NotificationKind.PAPER_OUT))
                await events_until(admin, has("terminal.alert", terminal_id=TID, kind="paper_out"))
            finally:
                await terminal.close()
                await runtime.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        engine.dispose()
