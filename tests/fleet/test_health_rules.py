"""Health rules: each threshold raises its condition, and only while it holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shouyin.fleet.health import (
    AlertKind,
    Condition,
    HealthPolicy,
    HealthSample,
    Severity,
    changes,
    evaluate,
)
from shouyin.link.values import LinkCounters, PaperState, PowerSource, TerminalHealth

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
POLICY = HealthPolicy(expected_firmware="SIM-1.0.0")


def sample(seconds_ago: float = 0, **fields: Any) -> HealthSample:
    base: dict[str, Any] = {
        "terminal_id": "10000001",
        "at": NOW - timedelta(seconds=seconds_ago),
        "power": PowerSource.MAINS,
        "battery_percent": 100,
        "paper": PaperState.OK,
        "temperature_c": 38,
        "firmware": "SIM-1.0.0",
        "crc_errors": 0,
        "retransmissions": 0,
    }
    base.update(fields)
    return HealthSample(**base)


def kinds(
    latest: HealthSample | None, recent: list[HealthSample] | None = None, **kw: Any
) -> set[str]:
    arguments: dict[str, Any] = {
        "now": NOW,
        "policy": POLICY,
        "last_heartbeat_at": latest.at if latest else None,
    }
    arguments.update(kw)
    found = evaluate(latest, recent or ([latest] if latest else []), **arguments)
    return {kind.value for kind in found}


def test_a_healthy_terminal_has_no_condition() -> None:
    assert kinds(sample()) == set()


def test_no_heartbeat_for_more_than_60_seconds() -> None:
    assert kinds(sample(), last_heartbeat_at=NOW - timedelta(seconds=60)) == set()
    assert kinds(sample(), last_heartbeat_at=NOW - timedelta(seconds=61)) == {"no_heartbeat"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"paper": PaperState.LOW}, {"paper_low"}),
        ({"paper": PaperState.OUT}, {"paper_out"}),
        ({"power": PowerSource.BATTERY, "battery_percent": 20}, {"battery_low"}),
        ({"power": PowerSource.BATTERY, "battery_percent": 21}, set()),
        ({"power": PowerSource.MAINS, "battery_percent": 5}, set()),  # charging: fine
        ({"temperature_c": 71}, {"overheating"}),
        ({"firmware": "SIM-0.9.0"}, {"firmware_outdated"}),
    ],
)
def test_sample_thresholds(fields: dict[str, Any], expected: set[str]) -> None:
    assert kinds(sample(**fields)) == expected


def test_paper_out_is_critical_and_paper_low_a_warning() -> None:
    out = evaluate(sample(paper=PaperState.OUT), [], now=NOW, policy=POLICY, last_heartbeat_at=NOW)
    low = evaluate(sample(paper=PaperState.LOW), [], now=NOW, policy=POLICY, last_heartbeat_at=NOW)
    assert out[AlertKind.PAPER_OUT].severity is Severity.CRITICAL
    assert low[AlertKind.PAPER_LOW].severity is Severity.WARNING


def test_without_an_expected_version_firmware_is_not_judged() -> None:
    found = evaluate(
        sample(firmware="X"), [], now=NOW, policy=HealthPolicy(), last_heartbeat_at=NOW
    )
    assert found == {}


def test_rising_link_errors_mean_check_the_cable() -> None:
    recent = [sample(120, crc_errors=10), sample(60, crc_errors=11), sample(0, crc_errors=12)]
    assert kinds(recent[-1], recent) == set()  # 2 in the window: below the threshold of 3
    recent.append(sample(0, crc_errors=12, retransmissions=1))
    assert kinds(recent[-1], recent) == {"check_cable"}


def test_old_errors_and_counter_resets_do_not_count() -> None:
    recent = [sample(900, crc_errors=0), sample(600, crc_errors=50), sample(0, crc_errors=2)]
    assert kinds(recent[-1], recent) == set()  # +50 was before the window; the reboot reset it


def test_certificate_expiring_within_30_days() -> None:
    latest = sample()
    assert kinds(latest, certificate_expires_at=NOW + timedelta(days=31)) == set()
    found = evaluate(
        latest,
        [],
        now=NOW,
        policy=POLICY,
        last_heartbeat_at=NOW,
        certificate_expires_at=NOW + timedelta(days=29),
    )
    assert found[AlertKind.CERTIFICATE_EXPIRING].message == "certificate expires in 29 days"
    expired = kinds(latest, certificate_expires_at=NOW - timedelta(days=1))
    assert expired == {"certificate_expiring"}


def test_changes_raise_new_conditions_and_clear_ended_ones() -> None:
    paper = Condition(AlertKind.PAPER_LOW, Severity.WARNING, "paper low")
    battery = Condition(AlertKind.BATTERY_LOW, Severity.WARNING, "battery 10%")
    to_raise, to_clear = changes(
        {AlertKind.PAPER_LOW: object(), AlertKind.OVERHEATING: object()},
        {AlertKind.PAPER_LOW: paper, AlertKind.BATTERY_LOW: battery},
    )
    assert to_raise == [battery]
    assert to_clear == [AlertKind.OVERHEATING]


def test_a_sample_is_built_from_the_link_health_report() -> None:
    health = TerminalHealth(
        power=PowerSource.BATTERY,
        battery_percent=15,
        paper=PaperState.LOW,
        temperature_c=40,
        firmware="SIM-1.0.0",
        link=LinkCounters(crc_errors=4, retransmissions=2),
    )
    built = HealthSample.from_health("10000001", NOW, health)
    assert (built.crc_errors, built.retransmissions, built.battery_percent) == (4, 2, 15)
