"""Terminal health monitoring: the adapter from the link to the rules and the database.

:class:`HealthMonitor` listens to terminal links (:meth:`HealthMonitor.attach` on a
:class:`~shouyin.link.aio.LinkEndpoint`, or :meth:`HealthMonitor.watch` on a whole
:class:`~shouyin.link.server.LinkServer`): every heartbeat answer's health (``HealthReported``),
every diagnosis answer and every ``EventNotification`` (paper out, on battery...) is stored, and
the rules of :mod:`shouyin.fleet.health` decide which alerts to raise or clear, in the same
transaction. :meth:`HealthMonitor.check` runs the time-based rules (no heartbeat, certificate
expiry) for every terminal and prunes old samples; call it periodically (every few seconds).

:func:`terminal_health` is the one read function for the admin page and ``shouyin health``:
current health and active alerts of every terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shouyin.fleet.health import (
    AlertKind,
    HealthPolicy,
    HealthSample,
    Severity,
    changes,
    evaluate,
)
from shouyin.fleet.health_store import AlertRecord, SqlHealthUnitOfWork
from shouyin.link.events import Event, HealthReported, MessageReceived
from shouyin.link.messages import DiagnosisResponse, EventNotification
from shouyin.link.values import NotificationKind, PaperState, PowerSource

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shouyin.link.aio import LinkEndpoint
    from shouyin.link.server import LinkServer

__all__ = [
    "AlertView",
    "HealthMonitor",
    "TerminalHealthView",
    "terminal_health",
]

logger = logging.getLogger(__name__)

DEFAULT_RETENTION = timedelta(days=7)
"""How long samples are kept for trends."""
NOTIFICATION_HOLD = timedelta(seconds=3)
"""How long a notified state (paper, power) outranks heartbeat answers, which a terminal may
compute from a snapshot up to a second or two old: without the hold, a stale heartbeat would
raise an alert again right after the notification cleared it."""

# What each notification says about the terminal's state (the rest are informative only).
_EVENT_CHANGES: dict[NotificationKind, dict[str, object]] = {
    NotificationKind.PAPER_OUT: {"paper": PaperState.OUT},
    NotificationKind.PAPER_LOW: {"paper": PaperState.LOW},
    NotificationKind.PAPER_OK: {"paper": PaperState.OK},
    NotificationKind.ON_BATTERY: {"power": PowerSource.BATTERY},
    NotificationKind.LOW_BATTERY: {"power": PowerSource.BATTERY},
    NotificationKind.ON_MAINS: {"power": PowerSource.MAINS},
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class HealthMonitor:
    """Stores terminal health and raises/clears alerts (see the module docstring).

    Args:
        engine: the store database (migrated).
        policy: the thresholds.
        clock: the aware current time (injectable for tests).
        retention: how long samples are kept.
    """

    def __init__(
        self,
        engine: Engine,
        policy: HealthPolicy | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self.policy = policy or HealthPolicy()
        self._uow = SqlHealthUnitOfWork(engine)
        self._clock = clock
        self._retention = retention
        self._attached: set[int] = set()
        self._held: dict[str, tuple[datetime, dict[str, object]]] = {}
        self._servers: list[LinkServer] = []

    # -- link adapters --------------------------------------------------------------------------

    def attach(self, endpoint: LinkEndpoint, terminal_id: str) -> None:
        """Record what ``endpoint`` (the link to ``terminal_id``) reports; idempotent."""
        if id(endpoint) in self._attached:
            return
        self._attached.add(id(endpoint))

        def listener(_: LinkEndpoint, event: Event) -> None:
            self.on_link_event(terminal_id, event)

        endpoint.add_listener(listener)

    def watch(self, server: LinkServer) -> None:
        """Attach to every terminal endpoint of ``server``, now and at each :meth:`check`."""
        self._servers.append(server)
        self._attach_servers()

    def _attach_servers(self) -> None:
        for server in self._servers:
            for terminal_id, endpoint in list(server.endpoints.items()):
                self.attach(endpoint, terminal_id)

    def on_link_event(self, terminal_id: str, event: Event) -> None:
        """Handle one link event of ``terminal_id`` (health, diagnosis, notification).

        Storage errors are logged, never raised into the link's event loop.
        """
        try:
            if isinstance(event, HealthReported):
                self.record_health(
                    HealthSample.from_health(terminal_id, self._clock(), event.health)
                )
            elif isinstance(event, MessageReceived):
                message = event.message
                if isinstance(message, DiagnosisResponse) and message.health is not None:
                    sample = HealthSample.from_health(terminal_id, self._clock(), message.health)
                    self.record_health(sample)
                elif isinstance(message, EventNotification):
                    self.record_notification(terminal_id, message)
        except Exception:
            logger.exception("terminal %s: could not record its health", terminal_id)

    # -- recording ------------------------------------------------------------------------------

    def record_health(self, sample: HealthSample) -> list[AlertRecord]:
        """Store a heartbeat's health and apply the rules; returns the alerts raised or cleared."""
        held = self._held.get(sample.terminal_id)
        if held is not None:
            until, fields = held
            if self._clock() < until:
                sample = sample.model_copy(update=fields)
            else:
                del self._held[sample.terminal_id]
        return self._record(sample, heartbeat=True)

    def record_notification(
        self, terminal_id: str, notification: EventNotification
    ) -> list[AlertRecord]:
        """Apply an event notification to the terminal's latest snapshot, then the rules."""
        update = _EVENT_CHANGES.get(notification.event)
        if update is None:
            logger.info("terminal %s: %s", terminal_id, notification.event.value)
            return []
        with self._uow as uow:
            latest = uow.health.latest(terminal_id)
        base = latest[1] if latest else HealthSample(terminal_id=terminal_id, at=self._clock())
        now = self._clock()
        sample = base.model_copy(update={**update, "at": now})
        previous = self._held.get(terminal_id, (now, {}))[1]
        self._held[terminal_id] = (now + NOTIFICATION_HOLD, {**previous, **update})
        return self._record(sample, heartbeat=False)

    def _record(self, sample: HealthSample, *, heartbeat: bool) -> list[AlertRecord]:
        now = self._clock()
        with self._uow as uow:
            uow.health.save_sample(sample, heartbeat=heartbeat)
            result = self._apply(uow, sample.terminal_id, now)
            uow.commit()
        return result

    def check(self) -> list[AlertRecord]:
        """Run the rules for every terminal (no heartbeat, certificate expiry) and prune samples.

        Returns:
            The alerts raised or cleared.
        """
        self._attach_servers()
        now = self._clock()
        done: list[AlertRecord] = []
        with self._uow as uow:
            registry = uow.terminals.list()
            # Whatever reported and every paired terminal is watched (one that never reported
            # is silent since its pairing); a revoked one is no longer the store's concern: its
            # alerts end instead of crying "no heartbeat" for ever.
            revoked = {t.terminal_id for t in registry if t.revoked_at is not None}
            watched = set(uow.health.terminal_ids())
            watched |= {t.terminal_id for t in registry if t.paired_at}
            for terminal_id in sorted(watched - revoked):
                done.extend(self._apply(uow, terminal_id, now))
            for terminal_id in sorted(watched & revoked):
                done.extend(self._clear_all(uow, terminal_id, now))
            uow.health.prune(now - self._retention)
            uow.commit()
        return done

    async def run(self, stop: asyncio.Event, interval: float = 5.0) -> None:
        """Run :meth:`check` every ``interval`` seconds until ``stop`` is set.

        For the process that holds the link server (``monitor.watch(server)`` first). A failing
        check is logged and retried at the next interval; it never ends the loop.
        """
        while not stop.is_set():
            try:
                self.check()
            except Exception:
                logger.exception("health check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    def _apply(
        self, uow: SqlHealthUnitOfWork, terminal_id: str, now: datetime
    ) -> list[AlertRecord]:
        latest = uow.health.latest(terminal_id)
        terminal = uow.terminals.get(terminal_id)
        recent = uow.health.samples(terminal_id, now - self.policy.cable_window)
        heard_at = latest[0] if latest else (terminal.paired_at if terminal else None)
        conditions = evaluate(
            latest[1] if latest else None,
            recent,
            now=now,
            policy=self.policy,
            last_heartbeat_at=heard_at,
            certificate_expires_at=terminal.certificate_expires_at if terminal else None,
        )
        active = uow.health.active_alerts(terminal_id)
        to_raise, to_clear = changes(active, conditions)
        done: list[AlertRecord] = []
        for condition in to_raise:
            record = uow.health.raise_alert(terminal_id, condition, now)
            logger.warning(
                "terminal %s: alert %s (%s): %s",
                terminal_id,
                condition.kind.value,
                condition.severity.value,
                condition.message,
            )
            done.append(record)
        for kind in to_clear:
            record = active[kind]
            uow.health.clear_alert(record.alert_id, now)
            logger.info("terminal %s: alert %s cleared", terminal_id, kind.value)
            done.append(dataclasses.replace(record, cleared_at=now))
        return done

    def _clear_all(
        self, uow: SqlHealthUnitOfWork, terminal_id: str, now: datetime
    ) -> list[AlertRecord]:
        done: list[AlertRecord] = []
        for kind, record in uow.health.active_alerts(terminal_id).items():
            uow.health.clear_alert(record.alert_id, now)
            logger.info("terminal %s (revoked): alert %s cleared", terminal_id, kind.value)
            done.append(dataclasses.replace(record, cleared_at=now))
        return done


class AlertView(BaseModel):
    """An alert as the admin page shows it."""

    model_config = ConfigDict(frozen=True)

    kind: AlertKind
    severity: Severity
    message: str
    raised_at: AwareDatetime
    cleared_at: AwareDatetime | None = None


class TerminalHealthView(BaseModel):
    """One terminal's current health and active alerts (the admin page's row).

    Attributes:
        terminal_id, lane_id, display_name: from the registry (lane and name empty when the
            terminal reported but is not registered here).
        online: a heartbeat within the policy's timeout.
        last_heartbeat_at: when it last answered (None: never).
        sample: its latest health (None: never reported).
        alerts: its active alerts, most severe first.
    """

    model_config = ConfigDict(frozen=True)

    terminal_id: str
    lane_id: str = ""
    display_name: str = ""
    online: bool = False
    last_heartbeat_at: AwareDatetime | None = None
    sample: HealthSample | None = None
    alerts: tuple[AlertView, ...] = ()


def terminal_health(
    engine: Engine, *, now: datetime | None = None, policy: HealthPolicy | None = None
) -> list[TerminalHealthView]:
    """Current health and active alerts of every paired or reporting terminal, by terminal id.

    This is what the admin page and ``shouyin health`` show. It only reads: alerts are raised
    and cleared by the :class:`HealthMonitor`.

    Args:
        engine: the store database (migrated).
        now: the current time (default: now).
        policy: for the online threshold (default: :class:`HealthPolicy`).
    """
    at = now or _utcnow()
    timeout = (policy or HealthPolicy()).heartbeat_timeout
    views: list[TerminalHealthView] = []
    with SqlHealthUnitOfWork(engine) as uow:
        registered = {t.terminal_id: t for t in uow.terminals.list() if not t.revoked_at}
        for terminal_id in sorted(set(registered) | set(uow.health.terminal_ids())):
            latest = uow.health.latest(terminal_id)
            terminal = registered.get(terminal_id)
            alerts = sorted(
                uow.health.active_alerts(terminal_id).values(),
                key=lambda a: (a.severity is not Severity.CRITICAL, a.raised_at),
            )
            views.append(
                TerminalHealthView(
                    terminal_id=terminal_id,
                    lane_id=terminal.lane_id if terminal else "",
                    display_name=terminal.display_name if terminal else "",
                    online=latest is not None and at - latest[0] <= timeout,
                    last_heartbeat_at=latest[0] if latest else None,
                    sample=latest[1] if latest else None,
                    alerts=tuple(
                        AlertView(
                            kind=a.kind,
                            severity=a.severity,
                            message=a.message,
                            raised_at=a.raised_at,
                        )
                        for a in alerts
                    ),
                )
            )
    return views
