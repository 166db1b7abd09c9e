"""The health monitor: link events in, samples and alerts out (raised once, cleared, kept)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shouyin.fleet.health import AlertKind, Condition, HealthPolicy, Severity
from shouyin.fleet.health_monitor import HealthMonitor, terminal_health
from shouyin.fleet.health_store import SqlHealthRepository, SqlHealthUnitOfWork
from shouyin.fleet.registry import register_terminal
from shouyin.link.events import HealthReported, MessageReceived
from shouyin.link.messages import EventNotification
from shouyin.link.values import (
    LinkCounters,
    NotificationKind,
    PaperState,
    PowerSource,
    TerminalHealth,
)
from shouyin.store.engine import make_engine
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import make_session_factory
from tests.terminal import LoopClock, run_virtual

T1 = "10000001"
START = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated SQLite database (the monitor's SQL is plain; the store tests cover PostgreSQL)."""
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


def health(**fields: object) -> HealthReported:
    base: dict[str, object] = {
        "power": PowerSource.MAINS,
        "battery_percent": 100,
        "paper": PaperState.OK,
        "temperature_c": 38,
        "firmware": "SIM-1.0.0",
        "link": LinkCounters(),
    }
    base.update(fields)
    return HealthReported(TerminalHealth.model_validate(base))


def active(engine: Engine, terminal_id: str = T1) -> set[AlertKind]:
    with SqlHealthUnitOfWork(engine) as uow:
        return set(uow.health.active_alerts(terminal_id))


def test_an_alert_is_raised_once_and_cleared_when_its_condition_ends(engine: Engine) -> None:
    clock = Clock()
    monitor = HealthMonitor(engine, clock=clock)
    monitor.on_link_event(T1, health(paper=PaperState.LOW))
    clock.advance(10)
    monitor.on_link_event(T1, health(paper=PaperState.LOW))  # still low: no second alert
    assert active(engine) == {AlertKind.PAPER_LOW}
    clock.advance(10)
    monitor.on_link_event(T1, health(paper=PaperState.OK))
    assert active(engine) == set()
    with SqlHealthUnitOfWork(engine) as uow:
        history = uow.health.history(T1)
    assert [(a.kind, a.raised_at, a.cleared_at) for a in history] == [
        (AlertKind.PAPER_LOW, START, START + timedelta(seconds=20))
    ]


def test_an_event_notification_changes_the_snapshot_but_is_not_a_heartbeat(
    engine: Engine,
) -> None:
    clock = Clock()
    monitor = HealthMonitor(engine, clock=clock)
    monitor.on_link_event(T1, health())
    clock.advance(30)
    monitor.on_link_event(T1, MessageReceived(EventNotification(event=NotificationKind.PAPER_OUT)))
    assert active(engine) == {AlertKind.PAPER_OUT}
    [view] = terminal_health(engine, now=clock.now)
    assert view.sample is not None
    assert view.sample.paper is PaperState.OUT
    assert view.last_heartbeat_at == START


def test_silence_raises_no_heartbeat_and_the_next_heartbeat_clears_it(engine: Engine) -> None:
    clock = Clock()
    monitor = HealthMonitor(engine, clock=clock)
    monitor.on_link_event(T1, health())
    clock.advance(60)
    assert monitor.check() == []
    clock.advance(1)
    [raised] = monitor.check()
    assert raised.kind is AlertKind.NO_HEARTBEAT
    assert not terminal_health(engine, now=clock.now)[0].online
    monitor.on_link_event(T1, health())
    assert active(engine) == set()
    assert terminal_health(engine, now=clock.now)[0].online


def test_rising_crc_errors_raise_check_the_cable_until_they_stop(engine: Engine) -> None:
    clock = Clock()
    monitor = HealthMonitor(engine, clock=clock)
    monitor.on_link_event(T1, health(link=LinkCounters(crc_errors=0)))
    clock.advance(10)
    monitor.on_link_event(T1, health(link=LinkCounters(crc_errors=5, retransmissions=2)))
    assert active(engine) == {AlertKind.CHECK_CABLE}
    for _ in range(6):  # the counters stop rising; 5 minutes later the window holds no rise
        clock.advance(60)
        monitor.on_link_event(T1, health(link=LinkCounters(crc_errors=5, retransmissions=2)))
    assert active(engine) == set()


def test_firmware_and_certificate_from_policy_and_registry(engine: Engine) -> None:
    clock = Clock()
    registry = SqlTerminalUnitOfWork(make_session_factory(engine))
    terminal = register_terminal(registry, T1, lane_id="L01", now=START)
    with registry:
        paired = terminal.paired(
            at=START,
            key_id="0a1b2c3d",
            certificate_serial="ab",
            certificate_expires_at=START + timedelta(days=20),
        )
        registry.terminals.save(paired)
        registry.commit()
    monitor = HealthMonitor(engine, HealthPolicy(expected_firmware="SIM-2.0.0"), clock=clock)
    monitor.on_link_event(T1, health())
    assert active(engine) == {AlertKind.FIRMWARE_OUTDATED, AlertKind.CERTIFICATE_EXPIRING}
    monitor.on_link_event(T1, health(firmware="SIM-2.0.0"))
    assert active(engine) == {AlertKind.CERTIFICATE_EXPIRING}
    [view] = terminal_health(engine, now=clock.now)
    assert (view.lane_id, [a.kind for a in view.alerts]) == (
        "L01",
        [AlertKind.CERTIFICATE_EXPIRING],
    )


def test_samples_are_kept_for_trends_within_the_retention(engine: Engine) -> None:
    clock = Clock()
    monitor = HealthMonitor(engine, clock=clock, retention=timedelta(hours=1))
    for _ in range(5):
        monitor.on_link_event(T1, health())
        clock.advance(30 * 60)
    monitor.check()
    with SqlHealthUnitOfWork(engine) as uow:
        kept = uow.health.samples(T1, START)
    assert [s.at for s in kept] == [
        START + timedelta(minutes=m) for m in (90, 120)
    ]  # check at 150 min


def test_a_storage_failure_never_reaches_the_link(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import text

    monitor = HealthMonitor(engine)
    with engine.begin() as conn:  # the storage breaks under the monitor
        conn.execute(text("DROP TABLE health_samples"))
    monitor.on_link_event(T1, health())  # returns: the link's event loop goes on
    failures = [r for r in caplog.records if "could not record its health" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None


def test_the_monitor_loop_checks_until_stopped(engine: Engine) -> None:
    async def main() -> None:
        clock = LoopClock(START)
        monitor = HealthMonitor(engine, clock=clock.now)
        monitor.on_link_event(T1, health())
        stop = asyncio.Event()
        task = asyncio.ensure_future(monitor.run(stop, interval=5.0))
        await asyncio.sleep(70)  # virtual seconds: the terminal has been silent for 70 s
        assert active(engine) == {AlertKind.NO_HEARTBEAT}
        stop.set()
        await asyncio.wait_for(task, 1)

    run_virtual(main)


def test_the_database_keeps_one_active_alert_per_kind(engine: Engine) -> None:
    condition = Condition(AlertKind.PAPER_OUT, Severity.CRITICAL, "paper out")
    with Session(engine) as session, session.begin():
        repo = SqlHealthRepository(session)
        first = repo.raise_alert(T1, condition, START)
        with pytest.raises(IntegrityError), session.begin_nested():  # a second monitor, at once
            repo.raise_alert(T1, condition, START)
        repo.clear_alert(first.alert_id, START)
        repo.raise_alert(T1, condition, START)  # once cleared, it may be raised anew
    assert active(engine) == {AlertKind.PAPER_OUT}


def _set_terminal(engine: Engine, terminal_id: str, **values: object) -> None:
    from sqlalchemy import update

    from shouyin.store.tables import TerminalRow

    with engine.begin() as conn:
        conn.execute(
            update(TerminalRow).where(TerminalRow.terminal_id == terminal_id).values(**values)
        )


def test_a_revoked_terminal_stops_raising_and_its_alerts_end(engine: Engine) -> None:
    clock = Clock()
    register_terminal(
        SqlTerminalUnitOfWork(make_session_factory(engine)), T1, lane_id="L01", now=START
    )
    _set_terminal(engine, T1, paired_at=START, state="paired")
    monitor = HealthMonitor(engine, clock=clock)
    monitor.on_link_event(T1, health(paper=PaperState.OUT))
    clock.advance(5 * 60)
    monitor.check()
    assert active(engine) == {AlertKind.PAPER_OUT, AlertKind.NO_HEARTBEAT}
    _set_terminal(engine, T1, revoked_at=clock.now, state="revoked")
    clock.advance(60)
    cleared = monitor.check()
    assert {r.kind for r in cleared} == {AlertKind.PAPER_OUT, AlertKind.NO_HEARTBEAT}
    assert active(engine) == set()
    clock.advance(3600)
    assert monitor.check() == []  # never again


def test_a_paired_terminal_that_never_reports_raises_no_heartbeat(engine: Engine) -> None:
    clock = Clock()
    register_terminal(
        SqlTerminalUnitOfWork(make_session_factory(engine)), T1, lane_id="L01", now=START
    )
    _set_terminal(engine, T1, paired_at=START, state="paired")
    monitor = HealthMonitor(engine, clock=clock)
    clock.advance(30)
    assert monitor.check() == []  # within the heartbeat timeout of its pairing
    clock.advance(60)
    assert [r.kind for r in monitor.check()] == [AlertKind.NO_HEARTBEAT]
