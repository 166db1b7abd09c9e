"""Terminal health rules: pure functions from health samples to alert conditions (no I/O).

A terminal reports a :class:`~shouyin.link.values.TerminalHealth` in every heartbeat answer and
diagnosis; :class:`HealthSample` is that report with its terminal and time. :func:`evaluate` turns
the latest sample (and the samples of the last few minutes, for rising counters) into the set of
:class:`Condition` that hold *now*; :func:`changes` compares them with the alerts already active,
so that an alert is raised once when its condition starts and cleared once when it ends.

The thresholds (:class:`HealthPolicy`), following DESIGN.md section 7:

* no heartbeat for 60 s -> ``no_heartbeat``;
* paper low / out -> ``paper_low`` / ``paper_out`` (out is critical: no slips);
* on battery at or below 20 % -> ``battery_low``;
* CRC errors or retransmissions rising (by at least 3 within 5 minutes) -> ``check_cable``: a
  loose or damaged serial cable shows as noise long before the link drops;
* firmware other than the configured expected version -> ``firmware_outdated``;
* the terminal's TLS certificate expiring within 30 days (or expired) -> ``certificate_expiring``;
* hotter than 70 C -> ``overheating``.

:class:`~shouyin.fleet.health_monitor.HealthMonitor` does the I/O around these rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shouyin.link.values import PaperState, PowerSource, TerminalHealth

__all__ = [
    "AlertKind",
    "Condition",
    "HealthPolicy",
    "HealthSample",
    "Severity",
    "changes",
    "evaluate",
]


class AlertKind(StrEnum):
    """What an alert is about (stable names: stored, and shown in the admin page)."""

    NO_HEARTBEAT = "no_heartbeat"
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    BATTERY_LOW = "battery_low"
    CHECK_CABLE = "check_cable"
    FIRMWARE_OUTDATED = "firmware_outdated"
    CERTIFICATE_EXPIRING = "certificate_expiring"
    OVERHEATING = "overheating"
    COVER_OPEN = "cover_open"  # a lane receipt printer's cover (shouyin.web.devices)


class Severity(StrEnum):
    """How urgent: a warning can wait for the end of the shift, a critical alert cannot."""

    WARNING = "warning"
    CRITICAL = "critical"


class HealthSample(BaseModel):
    """One health report of one terminal, flattened for storage and rules.

    Attributes:
        terminal_id: the 终端号.
        at: when the cashier system received it.
        power, battery_percent, paper, temperature_c, firmware: as reported (None: not reported).
        crc_errors, retransmissions: the link's cumulative error counters (None: not reported).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    terminal_id: str
    at: AwareDatetime
    power: PowerSource | None = None
    battery_percent: int | None = None
    paper: PaperState | None = None
    temperature_c: int | None = None
    firmware: str | None = None
    crc_errors: int | None = None
    retransmissions: int | None = None

    @classmethod
    def from_health(cls, terminal_id: str, at: datetime, health: TerminalHealth) -> HealthSample:
        """The sample of a heartbeat or diagnosis answer."""
        link = health.link
        return cls(
            terminal_id=terminal_id,
            at=at,
            power=health.power,
            battery_percent=health.battery_percent,
            paper=health.paper,
            temperature_c=health.temperature_c,
            firmware=health.firmware,
            crc_errors=link.crc_errors if link else None,
            retransmissions=link.retransmissions if link else None,
        )


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """The thresholds (defaults from DESIGN.md section 7 and the simulator's own limits)."""

    heartbeat_timeout: timedelta = timedelta(seconds=60)
    battery_low_percent: int = 20
    hot_c: int = 70
    cable_window: timedelta = timedelta(minutes=5)
    cable_errors: int = 3
    expected_firmware: str | None = None
    certificate_warning: timedelta = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Condition:
    """An alert condition that holds now."""

    kind: AlertKind
    severity: Severity
    message: str


def _rise(samples: Sequence[HealthSample], field: str, since: datetime) -> int:
    """How much a cumulative counter rose over the samples since ``since`` (resets ignored)."""
    values = [(s.at, v) for s in samples if s.at >= since and (v := getattr(s, field)) is not None]
    values.sort(key=lambda pair: pair[0])
    return sum(max(0, b - a) for (_, a), (_, b) in itertools.pairwise(values))


def evaluate(
    latest: HealthSample | None,
    recent: Sequence[HealthSample],
    *,
    now: datetime,
    policy: HealthPolicy,
    last_heartbeat_at: datetime | None,
    certificate_expires_at: datetime | None = None,
) -> dict[AlertKind, Condition]:
    """The alert conditions that hold now for one terminal.

    Args:
        latest: the terminal's latest sample (None: never heard from).
        recent: its samples of at least the last ``policy.cable_window`` (any order).
        now: the current time (aware).
        policy: the thresholds.
        last_heartbeat_at: when the terminal last answered (None: never).
        certificate_expires_at: its TLS client certificate's expiry (None: none, e.g. serial).

    Returns:
        Every condition that holds, by kind.
    """
    found: list[Condition] = []
    if last_heartbeat_at is not None and now - last_heartbeat_at > policy.heartbeat_timeout:
        silent = int((now - last_heartbeat_at).total_seconds())
        found.append(
            Condition(AlertKind.NO_HEARTBEAT, Severity.CRITICAL, f"no heartbeat for {silent} s")
        )
    if latest is not None:
        found.extend(_sample_conditions(latest, recent, now, policy))
    if certificate_expires_at is not None:
        left = certificate_expires_at - now
        if left <= policy.certificate_warning:
            days = left.days
            text = "certificate expired" if days < 0 else f"certificate expires in {days} days"
            severity = Severity.CRITICAL if days < 7 else Severity.WARNING
            found.append(Condition(AlertKind.CERTIFICATE_EXPIRING, severity, text))
    return {c.kind: c for c in found}


def _sample_conditions(
    latest: HealthSample, recent: Sequence[HealthSample], now: datetime, policy: HealthPolicy
) -> list[Condition]:
    found: list[Condition] = []
    if latest.paper is PaperState.OUT:
        found.append(Condition(AlertKind.PAPER_OUT, Severity.CRITICAL, "paper out"))
    elif latest.paper is PaperState.LOW:
        found.append(Condition(AlertKind.PAPER_LOW, Severity.WARNING, "paper low"))
    on_battery = latest.power is PowerSource.BATTERY
    battery = latest.battery_percent
    if on_battery and battery is not None and battery <= policy.battery_low_percent:
        found.append(Condition(AlertKind.BATTERY_LOW, Severity.WARNING, f"battery {battery}%"))
    if latest.temperature_c is not None and latest.temperature_c > policy.hot_c:
        text = f"temperature {latest.temperature_c} C"
        found.append(Condition(AlertKind.OVERHEATING, Severity.WARNING, text))
    since = now - policy.cable_window
    crc = _rise(recent, "crc_errors", since)
    resent = _rise(recent, "retransmissions", since)
    if crc + resent >= policy.cable_errors:
        minutes = int(policy.cable_window.total_seconds() // 60)
        text = f"check the cable: {crc} CRC errors, {resent} retransmissions in {minutes} min"
        found.append(Condition(AlertKind.CHECK_CABLE, Severity.WARNING, text))
    expected = policy.expected_firmware
    if expected and latest.firmware is not None and latest.firmware != expected:
        text = f"firmware {latest.firmware}, expected {expected}"
        found.append(Condition(AlertKind.FIRMWARE_OUTDATED, Severity.WARNING, text))
    return found


def changes(
    active: Mapping[AlertKind, object], conditions: Mapping[AlertKind, Condition]
) -> tuple[list[Condition], list[AlertKind]]:
    """What to raise (conditions not active yet) and what to clear (active, no longer holding)."""
    raise_ = [c for kind, c in conditions.items() if kind not in active]
    clear = [kind for kind in active if kind not in conditions]
    return raise_, clear
