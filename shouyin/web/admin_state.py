"""What the admin API keeps beside the lane runtime: :class:`AdminState`.

One per app, made by the admin router's lifespan (:func:`admin_lifespan`) and closed with it:

* the :class:`~shouyin.web.admin_logs.LogRing` of recent log lines;
* the :class:`~shouyin.web.admin_pairing.PairingDesk` (pairings opened from the page; its
  changes are published on the event bus as ``admin.pairing``, admins only);
* the last reconciliation result (kept in memory: it is recomputed on demand from the journal
  and the files the admin uploads).

:func:`live_link` reads what the running server knows of a terminal's link right now
(connected, state, framing error counters, firmware announced at Login); :func:`watch_links`
publishes each change of a served terminal's link as a ``terminal.state`` event, which the admin
page listens to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Request

from shouyin.fleet.keys import TerminalKeyRing, passphrase_from_env
from shouyin.link.aio import LinkEndpoint
from shouyin.link.server import LinkServer
from shouyin.payments.reconcile import ReconciliationReport
from shouyin.store.audit_repo import CheckpointStore
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.web.admin_logs import LogRing, install_log_ring
from shouyin.web.admin_pairing import PairingDesk, PairingTicket
from shouyin.web.events import ADMIN_ONLY, STAFF, WebEvent
from shouyin.web.runtime import LaneRuntime

__all__ = [
    "AdminState",
    "AdminStateDep",
    "LiveLink",
    "admin_lifespan",
    "get_admin_state",
    "link_snapshot",
    "live_link",
    "watch_links",
]

logger = logging.getLogger(__name__)

WATCH_INTERVAL: Final = 1.0
"""Seconds between looks at the terminal links (``terminal.state`` events)."""


@dataclass
class AdminState:
    """The admin API's own state (see the module docstring)."""

    runtime: LaneRuntime
    logs: LogRing
    pairing: PairingDesk
    reconciliation: ReconciliationReport | None = None
    reconciliation_meta: dict[str, Any] = field(default_factory=dict)


def _running_server(runtime: LaneRuntime) -> LinkServer | None:
    links = runtime.links
    return links.server if links is not None else None


def _keyring(runtime: LaneRuntime) -> TerminalKeyRing:
    links = runtime.links
    if links is not None:
        return links.keyring
    return TerminalKeyRing(runtime.settings.keys_dir, passphrase=passphrase_from_env())


def make_admin_state(runtime: LaneRuntime) -> AdminState:
    """The admin state of ``runtime`` (not yet bound to an app)."""

    def publish(ticket: PairingTicket) -> None:
        data = {"terminal_id": ticket.terminal_id, "phase": ticket.phase.value}
        if ticket.reason:
            data["reason"] = ticket.reason
        runtime.bus.publish(WebEvent("admin.pairing", data, roles=ADMIN_ONLY))

    def registry() -> SqlTerminalUnitOfWork:
        uow = SqlTerminalUnitOfWork(runtime.session_factory)
        uow.checkpoints = CheckpointStore(runtime.settings.keys_dir)  # pairings are audited
        return uow

    desk = PairingDesk(
        runtime.settings,
        registry=registry,
        keyring=lambda: _keyring(runtime),
        server=lambda: _running_server(runtime),
        on_change=publish,
        clock=runtime.clock,
    )
    return AdminState(runtime=runtime, logs=install_log_ring(), pairing=desk)


def link_snapshot(runtime: LaneRuntime) -> dict[str, tuple[str, bool, str | None]]:
    """Each served terminal's (lane, connected, link state) right now."""
    links = runtime.links
    if links is None:
        return {}
    snapshot = {}
    for lane_id, terminal in links.terminals.items():
        live = live_link(runtime, terminal.terminal_id)
        snapshot[terminal.terminal_id] = (lane_id, live.connected, live.state)
    return snapshot


async def watch_links(
    runtime: LaneRuntime, stop: asyncio.Event, interval: float = WATCH_INTERVAL
) -> None:
    """Publish ``terminal.state`` (supervisors and admins of the lane) whenever a served
    terminal's link comes up, goes down or changes state, until ``stop`` is set.

    The link objects live in this process, so looking at them once a second costs nothing and
    needs no hook in the link layer; the page then refreshes its terminal table at once.
    """
    known: dict[str, tuple[str, bool, str | None]] = {}
    while not stop.is_set():
        try:
            current = link_snapshot(runtime)
        except Exception:  # a link being rebuilt: look again next time
            logger.debug("terminal link snapshot failed", exc_info=True)
            current = known
        for terminal_id, (lane_id, connected, link_state) in current.items():
            if known.get(terminal_id) != (lane_id, connected, link_state):
                data = {"terminal_id": terminal_id, "connected": connected, "state": link_state}
                runtime.bus.publish(WebEvent("terminal.state", data, lane_id=lane_id, roles=STAFF))
        known = current
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


@asynccontextmanager
async def admin_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Make the app's :class:`AdminState` (after the runtime started) and watch the terminal
    links; close both at shutdown."""
    runtime = app.state.runtime
    assert isinstance(runtime, LaneRuntime)
    state = getattr(app.state, "admin", None)
    if not isinstance(state, AdminState):
        state = make_admin_state(runtime)
        app.state.admin = state
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_links(runtime, stop), name="admin link watch")
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(watcher, WATCH_INTERVAL * 5)
        await state.pairing.close()


def get_admin_state(request: Request) -> AdminState:
    """The app's :class:`AdminState` (made on first use when the lifespan did not run)."""
    state = getattr(request.app.state, "admin", None)
    if not isinstance(state, AdminState):
        state = make_admin_state(request.app.state.runtime)
        request.app.state.admin = state
    return state


AdminStateDep = Annotated[AdminState, Depends(get_admin_state)]


@dataclass(frozen=True, slots=True)
class LiveLink:
    """What the running server knows of one terminal's link right now.

    Attributes:
        served: this server runs the terminal's link (it is its lane's terminal).
        connected: logged in now.
        state: the connection state's name.
        last_down_reason: why the link last went down.
        firmware: announced by the terminal at Login.
        counters: framing error counters (CRC errors, retransmissions, resyncs, NAKs...).
    """

    served: bool
    connected: bool
    state: str | None
    last_down_reason: str | None
    firmware: str | None
    counters: dict[str, int]


_ERROR_COUNTERS = (
    "crc_errors",
    "retransmissions",
    "resyncs",
    "naks_sent",
    "naks_received",
    "ack_timeouts",
    "malformed",
)


def live_link(runtime: LaneRuntime, terminal_id: str) -> LiveLink:
    """The live link details of ``terminal_id`` (nothing when this server does not serve it)."""
    links = runtime.links
    endpoint: LinkEndpoint | None = None
    served = False
    if links is not None:
        chosen = {t.terminal_id for t in links.terminals.values()}
        served = terminal_id in chosen
        endpoint = links.endpoints.get(terminal_id)
        if endpoint is None and links.server is not None:
            endpoint = links.server.endpoints.get(terminal_id)
    if endpoint is None:
        return LiveLink(served, False, None, None, None, {})
    peer = endpoint.peer
    stats = endpoint.connection.framing_stats.as_dict()
    return LiveLink(
        served=served,
        connected=endpoint.is_ready,
        state=endpoint.state.name.lower(),
        last_down_reason=endpoint.last_down_reason,
        firmware=peer.capabilities.firmware if peer is not None else None,
        counters={name: stats.get(name, 0) for name in _ERROR_COUNTERS},
    )
