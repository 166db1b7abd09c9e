"""Admin API, part 1: lanes and payment terminals (registry, live link, pairing, revoking).

Supervisors and admins read; only admins register, pair and revoke (``MANAGE_TERMINALS``). A
supervisor sees their own lane only; a cashier is refused every admin route (403).

Pairing from the page: ``POST /api/admin/terminals/{id}/pairing`` opens a pairing (see
:mod:`shouyin.web.admin_pairing`) and answers at once with the one-time code and the QR code
(``GET .../pairing/qr.png``); the page then polls ``GET .../pairing`` (or listens for the
``admin.pairing`` event) until the phase is ``paired`` or ``failed``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from shouyin.domain.users import Action, Role
from shouyin.fleet.health_monitor import TerminalHealthView, terminal_health
from shouyin.fleet.pairing import revoke
from shouyin.fleet.registry import (
    Terminal,
    list_terminals,
    normalise_link_url,
    register_terminal,
    validate_terminal_id,
)
from shouyin.fleet.updates.store import rollout_progress
from shouyin.link.pairing_qr import to_png_bytes
from shouyin.store.audit_repo import CheckpointStore
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.web.admin_pairing import PairingBusy, PairingTicket
from shouyin.web.admin_queries import ShiftSummary, lane_summaries
from shouyin.web.admin_schemas import (
    LaneOut,
    PairingOut,
    RevokeOut,
    RolloutOut,
    RolloutTerminalOut,
    ShiftOut,
    TerminalIn,
    TerminalOut,
)
from shouyin.web.admin_state import AdminStateDep, admin_lifespan, live_link
from shouyin.web.auth import Principal, RuntimeDep, SupervisorUser, require
from shouyin.web.errors import ApiError
from shouyin.web.runtime import LaneRuntime

__all__ = ["LaneQuery", "router", "shift_out", "visible_lane"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/admin", tags=["admin"], lifespan=admin_lifespan)

TerminalAdmin = Annotated[Principal, Depends(require(Action.MANAGE_TERMINALS))]
LaneQuery = Annotated[
    str | None, Query(max_length=32, description="one lane (admins: default all lanes)")
]


def visible_lane(user: Principal, lane_id: str | None) -> str | None:
    """The lane a request may read: an admin any (``None``: all); a supervisor only theirs.

    Raises:
        ApiError: 403 when a supervisor asks for another lane.
    """
    if user.role is Role.ADMIN:
        return lane_id
    if lane_id is not None and lane_id != user.lane_id:
        raise ApiError(403, "other_lane", "不能查看其他收银台", "Not your lane")
    return user.lane_id


def shift_out(shift: ShiftSummary) -> ShiftOut:
    """The schema of a shift summary."""
    return ShiftOut(
        shift_id=shift.shift_id,
        lane_id=shift.lane_id,
        cashier_id=shift.cashier_id,
        cashier_name=shift.cashier_name,
        state=shift.state,
        opened_at=shift.opened_at,
        closed_at=shift.closed_at,
        opening_float_fen=shift.opening_float,
        counted_cash_fen=shift.counted_cash,
    )


def _registry(runtime: LaneRuntime) -> SqlTerminalUnitOfWork:
    uow = SqlTerminalUnitOfWork(runtime.session_factory)
    uow.checkpoints = CheckpointStore(runtime.settings.keys_dir)  # revocations are audited
    return uow


def _health_out(view: TerminalHealthView | None) -> dict[str, Any] | None:
    """A terminal's health for the page: latest report and active alerts (issue 7's monitor)."""
    if view is None:
        return None
    sample = view.sample
    return {
        "online": view.online,
        "last_heartbeat_at": view.last_heartbeat_at,
        "paper": sample.paper.value if sample and sample.paper else None,
        "power": sample.power.value if sample and sample.power else None,
        "battery_percent": sample.battery_percent if sample else None,
        "temperature_c": sample.temperature_c if sample else None,
        "crc_errors": sample.crc_errors if sample else None,
        "retransmissions": sample.retransmissions if sample else None,
        "alerts": [
            {"kind": a.kind.value, "severity": a.severity.value, "message": a.message}
            for a in view.alerts
        ],
    }


def _terminal_out(
    runtime: LaneRuntime, terminal: Terminal, health: TerminalHealthView | None = None
) -> TerminalOut:
    live = live_link(runtime, terminal.terminal_id)
    reported = health.sample.firmware if health and health.sample else None
    return TerminalOut(
        terminal_id=terminal.terminal_id,
        lane_id=terminal.lane_id,
        display_name=terminal.display_name,
        link=terminal.link_url or "network",
        state=terminal.state.value,
        registered_at=terminal.registered_at,
        paired_at=terminal.paired_at,
        revoked_at=terminal.revoked_at,
        key_id=terminal.key_id,
        certificate_serial=terminal.certificate_serial,
        certificate_expires_at=terminal.certificate_expires_at,
        firmware_version=live.firmware or reported or terminal.firmware_version,
        last_seen_at=max(
            (t for t in (terminal.last_seen_at, health and health.last_heartbeat_at) if t),
            default=None,
        ),
        served=live.served,
        connected=live.connected,
        link_state=live.state,
        last_down_reason=live.last_down_reason,
        link_errors=live.counters,
        health=_health_out(health),
    )


def _pairing_out(ticket: PairingTicket) -> PairingOut:
    payload = ticket.payload
    waiting = ticket.code is not None
    return PairingOut(
        terminal_id=ticket.terminal_id,
        phase=ticket.phase.value,
        code=ticket.code,
        qr_text=payload.to_text() if payload is not None else None,
        qr_png=(
            f"/api/admin/terminals/{ticket.terminal_id}/pairing/qr.png"
            if payload is not None and waiting
            else None
        ),
        address=payload.address if payload is not None else None,
        port=payload.port if payload is not None else None,
        where=list(ticket.where),
        expires_at=ticket.expires_at,
        reason=ticket.reason,
        re_paired=ticket.re_paired,
    )


def _lane_terminal(runtime: LaneRuntime, user: Principal, terminal_id: str) -> Terminal:
    terminal_id = validate_terminal_id(terminal_id)
    with _registry(runtime) as uow:
        terminal = uow.terminals.get(terminal_id)
    if terminal is None:
        raise ApiError(404, "unknown_terminal", "没有这台终端", "No such terminal")
    visible_lane(user, terminal.lane_id)
    return terminal


def _printer_state(runtime: LaneRuntime, lane_id: str) -> str | None:
    """The lane's receipt printer state as last read (``None``: no printer, or not read yet).

    Never asks the printer: the runtime reads it in the background and after each print, so
    that a printer off the network does not hold up the admin page.
    """
    hook = runtime.devices.get(lane_id)
    status = hook.printer_status() if hook is not None else None
    return status.state.value if status is not None else None


# -- lanes and terminals ---------------------------------------------------------------------------
@router.get("/lanes", response_model=list[LaneOut], summary="Lanes (收银台)")
def lanes(user: SupervisorUser, runtime: RuntimeDep) -> list[LaneOut]:
    """Every lane with terminals or shifts (a supervisor: their own), with the open shift."""
    only = visible_lane(user, None)
    with runtime.engine.connect() as conn:
        found = lane_summaries(conn, runtime.lanes)
    return [
        LaneOut(
            lane_id=lane.lane_id,
            served_here=lane.lane_id in runtime.lanes,
            terminals=lane.terminals,
            open_shift=shift_out(lane.open_shift) if lane.open_shift else None,
            printer=_printer_state(runtime, lane.lane_id),
        )
        for lane in found
        if only is None or lane.lane_id == only
    ]


@router.get("/terminals", response_model=list[TerminalOut], summary="Payment terminals (终端)")
def terminals(
    user: SupervisorUser, runtime: RuntimeDep, lane_id: LaneQuery = None
) -> list[TerminalOut]:
    """Registered terminals: state, certificate, last seen, firmware and the live link."""
    lane = visible_lane(user, lane_id)
    found = list_terminals(_registry(runtime), lane)
    health = {h.terminal_id: h for h in terminal_health(runtime.engine, now=runtime.clock())}
    return [_terminal_out(runtime, t, health.get(t.terminal_id)) for t in found]


@router.post(
    "/terminals", response_model=TerminalOut, status_code=201, summary="Register a terminal"
)
def add_terminal(body: TerminalIn, user: TerminalAdmin, runtime: RuntimeDep) -> TerminalOut:
    """Register a terminal (then pair it). ``link_url`` only for a serial terminal."""
    terminal = register_terminal(
        _registry(runtime),
        body.terminal_id,
        lane_id=body.lane_id,
        now=runtime.clock(),
        display_name=body.display_name,
        link_url=normalise_link_url(body.link_url),
    )
    return _terminal_out(runtime, terminal)


@router.post(
    "/terminals/{terminal_id}/revoke", response_model=RevokeOut, summary="Revoke a terminal"
)
async def revoke_terminal(
    terminal_id: str, user: TerminalAdmin, runtime: RuntimeDep, state: AdminStateDep
) -> RevokeOut:
    """Revoke its certificate and key and drop its connection; it must be paired again."""
    _lane_terminal(runtime, user, terminal_id)
    await state.pairing.cancel(terminal_id)
    result = await asyncio.to_thread(
        revoke,
        runtime.settings,
        terminal_id,
        registry=_registry(runtime),
        reason=f"revoked by {user.user.username} (admin page)",
        now=runtime.clock(),
    )
    links = runtime.links
    if links is not None and links.server is not None:
        links.server.disconnect(terminal_id, "revoked")
    return RevokeOut(
        terminal_id=terminal_id,
        certificate_revoked=result.certificate_revoked,
        key_deleted=result.key_deleted,
        already_revoked=result.already_revoked,
    )


@router.get("/updates", response_model=list[RolloutOut], summary="Update rollouts (固件升级)")
def updates(
    user: TerminalAdmin,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[RolloutOut]:
    """The newest staged update rollouts with each terminal's progress."""
    return [
        RolloutOut(
            rollout_id=status.rollout.rollout_id,
            version=status.rollout.package.version,
            kind=str(status.rollout.package.kind),
            model=status.rollout.package.model,
            percent=status.rollout.percent,
            named=list(status.rollout.named),
            created_at=status.rollout.created_at,
            counts={str(k): n for k, n in status.counts.items()},
            done=status.done,
            total=len(status.terminals),
            terminals=[
                RolloutTerminalOut(
                    terminal_id=t.terminal_id,
                    state=str(t.state),
                    firmware_version=t.firmware_version,
                    message=t.message,
                    updated_at=t.updated_at,
                )
                for t in status.terminals
            ],
        )
        for status in rollout_progress(runtime.engine, limit)
    ]


# -- pairing ---------------------------------------------------------------------------------------
def _no_pairing() -> ApiError:
    return ApiError(404, "no_pairing", "这台终端没有进行中的配对", "No pairing for this terminal")


@router.post(
    "/terminals/{terminal_id}/pairing",
    response_model=PairingOut,
    status_code=201,
    summary="Open a pairing (配对): one-time code and QR code",
)
async def open_pairing(
    terminal_id: str, user: TerminalAdmin, runtime: RuntimeDep, state: AdminStateDep
) -> PairingOut:
    """Open a pairing for a registered terminal; the code is valid for 10 minutes, single use."""
    _lane_terminal(runtime, user, terminal_id)
    try:
        ticket = await state.pairing.open(terminal_id)
    except PairingBusy as error:
        raise ApiError(
            409,
            "pairing_busy",
            f"终端 {error.terminal_id} 正在配对：请先完成或取消",
            f"Terminal {error.terminal_id} is being paired: finish or cancel that first",
        ) from error
    return _pairing_out(ticket)


@router.get("/terminals/{terminal_id}/pairing", response_model=PairingOut, summary="Pairing status")
def pairing_status(
    terminal_id: str, user: TerminalAdmin, runtime: RuntimeDep, state: AdminStateDep
) -> PairingOut:
    """The terminal's pairing from the page: waiting (with the code), paired or failed."""
    _lane_terminal(runtime, user, terminal_id)
    ticket = state.pairing.status(terminal_id)
    if ticket is None:
        raise ApiError(
            404, "no_pairing", "这台终端没有进行中的配对", "No pairing for this terminal"
        )
    return _pairing_out(ticket)


@router.get(
    "/terminals/{terminal_id}/pairing/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="The pairing QR code (PNG)",
)
def pairing_qr(
    terminal_id: str, user: TerminalAdmin, runtime: RuntimeDep, state: AdminStateDep
) -> Response:
    """The QR code of the waiting pairing, as a PNG image (never cached)."""
    _lane_terminal(runtime, user, terminal_id)
    ticket = state.pairing.status(terminal_id)
    if ticket is None or ticket.payload is None or ticket.code is None:
        raise ApiError(
            404, "no_pairing", "这台终端没有进行中的配对", "No pairing for this terminal"
        )
    return Response(
        to_png_bytes(ticket.payload),
        media_type="image/png",
        headers={"Cache-Control": "no-store"},
    )


@router.delete(
    "/terminals/{terminal_id}/pairing", status_code=204, summary="Cancel a waiting pairing"
)
async def cancel_pairing(
    terminal_id: str, user: TerminalAdmin, runtime: RuntimeDep, state: AdminStateDep
) -> Response:
    """Close the waiting pairing (its code dies with it)."""
    _lane_terminal(runtime, user, terminal_id)
    await state.pairing.cancel(terminal_id)
    return Response(status_code=204)
