"""Staged rollouts: who is selected, progress in SQL (SQLite and PostgreSQL), audit entries.

Rolling out to real simulated terminals over the link: ``tests/e2e/test_updates.py``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from shouyin.fleet.registry import Terminal, TerminalState
from shouyin.fleet.updates import (
    DEFAULT_MODEL,
    Package,
    PackageKind,
    Progress,
    UnknownRollout,
    classify_answer,
    new_rollout,
    rollout_bucket,
    rollout_status,
    run_rollout,
    select_terminals,
)
from shouyin.fleet.updates.store import SqlRolloutStore, rollout_progress
from shouyin.link import AdminResponse, ErrorCondition, Result
from shouyin.link.aio import LinkEndpoint
from shouyin.store.audit_repo import SqlAuditLog
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import make_session_factory

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
FLEET = [f"T{n:04d}" for n in range(1, 201)]
PACKAGE = Package(
    target="firmware-SHOUYIN-SIM-SIM-1.1.0.bin",
    version="SIM-1.1.0",
    kind=PackageKind.FIRMWARE,
    model=DEFAULT_MODEL,
    length=1100,
    sha256="ab" * 32,
)
URL = "http://127.0.0.1:8584"


def test_buckets_are_stable_and_differ_between_versions() -> None:
    assert rollout_bucket("T0001", "1.1") == rollout_bucket("T0001", "1.1")
    buckets = {rollout_bucket(t, "1.1") for t in FLEET}
    assert min(buckets) >= 0 and max(buckets) <= 99
    assert [rollout_bucket(t, "1.1") for t in FLEET] != [rollout_bucket(t, "1.2") for t in FLEET]


def test_a_wider_percentage_only_adds_terminals() -> None:
    previous: set[str] = set()
    for percent in (0, 10, 25, 50, 100):
        chosen = set(select_terminals(FLEET, "1.1", percent=percent))
        assert previous <= chosen
        previous = chosen
    assert previous == set(FLEET)


def test_a_percentage_selects_about_that_share() -> None:
    chosen = select_terminals(FLEET, "1.1", percent=25)
    assert 30 <= len(chosen) <= 70  # 50 expected of 200


def test_named_terminals_are_always_in() -> None:
    assert select_terminals(FLEET, "1.1", named=["T0007", "T0003"]) == ["T0003", "T0007"]
    with_share = select_terminals(FLEET, "1.1", percent=10, named=["T0007"])
    assert "T0007" in with_share


@pytest.mark.parametrize("percent", [-1, 101])
def test_a_percentage_outside_0_100_is_refused(percent: int) -> None:
    with pytest.raises(ValueError, match="percent"):
        select_terminals(FLEET, "1.1", percent=percent)


@pytest.fixture
def store(engine: Engine) -> SqlRolloutStore:
    return SqlRolloutStore(engine, actor="admin", source="test")


def test_progress_is_recorded_and_widening_keeps_what_was_done(
    engine: Engine, store: SqlRolloutStore
) -> None:
    first = new_rollout(PACKAGE, URL, named=["T0001"], now=NOW)
    store.save_rollout(first, ["T0001"])
    store.set_progress(
        first.rollout_id, "T0001", Progress.INSTALLED, firmware_version="SIM-1.1.0", at=NOW
    )
    wider = new_rollout(PACKAGE, URL, percent=100, now=NOW + timedelta(hours=1))
    store.save_rollout(wider, ["T0001", "T0002"])
    status = store.status(first.rollout_id)
    assert status is not None
    assert status.rollout.percent == 100 and status.rollout.named == ("T0001",)
    assert status.rollout.url == f"{URL}/targets/{PACKAGE.target}"
    assert [(p.terminal_id, p.state) for p in status.terminals] == [
        ("T0001", Progress.INSTALLED),
        ("T0002", Progress.PENDING),
    ]
    assert status.counts[Progress.INSTALLED] == 1 and not status.complete
    assert [s.rollout.rollout_id for s in rollout_progress(engine)] == [first.rollout_id]


def test_final_outcomes_are_audited(engine: Engine, store: SqlRolloutStore) -> None:
    rollout = new_rollout(PACKAGE, URL, percent=100, now=NOW)
    store.save_rollout(rollout, ["T0001", "T0002"])
    store.set_progress(rollout.rollout_id, "T0001", Progress.DOWNLOADING, at=NOW)
    store.set_progress(rollout.rollout_id, "T0001", Progress.ROLLED_BACK, at=NOW, message="自检")
    with make_session_factory(engine)() as session:
        mine = [
            e.event
            for e in SqlAuditLog(session).entries()
            if e.event.action == "update.installed" and e.event.at == NOW
        ]
    assert [(e.target, e.outcome.value, e.details["progress"]) for e in mine] == [
        ("terminal:T0001", "failure", "rolled_back")
    ]


class Unreachable:
    """Links to terminals that never connect (the rollout's own timeout path)."""

    async def wait_ready(self, terminal_id: str, timeout: float) -> LinkEndpoint:
        raise TimeoutError(terminal_id)


def test_terminals_that_never_connect_fail_and_are_tried_again(store: SqlRolloutStore) -> None:
    rollout = new_rollout(PACKAGE, URL, percent=100, now=NOW)
    store.save_rollout(rollout, ["T0001", "T0002"])
    seen: list[tuple[str, Progress]] = []
    status = asyncio.run(
        run_rollout(
            rollout,
            store,
            Unreachable(),
            timeout=0.01,
            on_progress=lambda p: seen.append((p.terminal_id, p.state)),
            now=lambda: NOW,
        )
    )
    assert {p.state for p in status.terminals} == {Progress.FAILED}
    assert seen == [
        ("T0001", Progress.DOWNLOADING),
        ("T0001", Progress.FAILED),
        ("T0002", Progress.DOWNLOADING),
        ("T0002", Progress.FAILED),
    ]
    assert all(p.message == "no answer (not connected?)" for p in status.terminals)


def test_running_a_rollout_that_was_never_saved_is_a_typed_error(
    store: SqlRolloutStore,
) -> None:
    rollout = new_rollout(PACKAGE, URL, percent=100, now=NOW)
    with pytest.raises(UnknownRollout) as raised:
        asyncio.run(run_rollout(rollout, store, Unreachable(), timeout=0.01, now=lambda: NOW))
    assert raised.value.version == PACKAGE.version
    assert store.status(rollout.rollout_id) is None  # nothing was recorded


def test_the_status_of_an_unsaved_rollout_is_a_typed_error(store: SqlRolloutStore) -> None:
    # What `update rollout` reads right after saving (it asserted before).
    rollout = new_rollout(PACKAGE, URL, percent=100, now=NOW)
    with pytest.raises(UnknownRollout, match=r"SIM-1\.1\.0"):
        rollout_status(store, rollout)
    store.save_rollout(rollout, ["T0001"])
    assert rollout_status(store, rollout).terminals[0].terminal_id == "T0001"


@pytest.mark.parametrize(
    ("result", "condition", "running", "expected"),
    [
        (Result.SUCCESS, None, "SIM-1.1.0", Progress.INSTALLED),
        (Result.FAILURE, ErrorCondition.REFUSAL, "SIM-1.1.0", Progress.CURRENT),
        (Result.FAILURE, ErrorCondition.REFUSAL, "SIM-2.0.0", Progress.CURRENT),
        (Result.FAILURE, ErrorCondition.INCOMPATIBLE, "SIM-1.0.0", Progress.ROLLED_BACK),
        (Result.FAILURE, ErrorCondition.REFUSAL, "SIM-1.0.0", Progress.FAILED),
        (Result.FAILURE, ErrorCondition.UNREACHABLE_HOST, None, Progress.FAILED),
    ],
)
def test_terminal_answers_are_classified(
    result: Result, condition: ErrorCondition | None, running: str | None, expected: Progress
) -> None:
    answer = AdminResponse(
        service_id="S1",
        result=result,
        error_condition=condition,
        firmware_version=running,
        message=None if result is Result.SUCCESS else "why",
    )
    assert classify_answer(answer, "SIM-1.1.0")[0] is expected


def test_the_registry_records_the_firmware_a_terminal_reports(
    engine: Engine, store: SqlRolloutStore
) -> None:
    with SqlTerminalUnitOfWork(make_session_factory(engine)) as uow:
        uow.terminals.add(
            Terminal(
                terminal_id="10000001",
                lane_id="L01",
                display_name="一号机",
                link_url=None,
                state=TerminalState.PAIRED,
                registered_at=NOW,
            )
        )
        uow.commit()
    rollout = new_rollout(PACKAGE, URL, named=["10000001"], now=NOW)
    store.save_rollout(rollout, ["10000001"])
    store.set_progress(
        rollout.rollout_id, "10000001", Progress.INSTALLED, firmware_version="SIM-1.1.0", at=NOW
    )
    with SqlTerminalUnitOfWork(make_session_factory(engine)) as uow:
        found = uow.terminals.get("10000001")
    assert found is not None and found.firmware_version == "SIM-1.1.0"
