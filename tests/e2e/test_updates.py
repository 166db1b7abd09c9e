"""Issue 7's update "done when": signed packages rolled out to two real simulated terminals.

Two ``shouyin terminal sim`` processes, each provisioned with the store's TUF root
(``--update-root``), paired and logged in over their pty serial cables. The store's repository is
served on loopback; the rollout runs over the link (:func:`run_rollout`) and records progress in
SQLite. The rollout goes to one named terminal, then to all (100 %); a build that fails its
self-test is rolled back on both; a terminal that loses power mid-install comes back on its old
slot, and the rollout, run again, finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from shouyin.fleet.updates import (
    DEFAULT_MODEL,
    SELF_TEST_FAIL_MARKER,
    Package,
    Progress,
    RepositoryServer,
    RolloutStatus,
    UpdateRepository,
    new_rollout,
    run_rollout,
    select_terminals,
)
from shouyin.fleet.updates.store import SqlRolloutStore, rollout_progress
from shouyin.link import LinkConfig
from shouyin.link.aio import LinkEndpoint
from shouyin.store.audit_repo import SqlAuditLog
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.uow import make_session_factory
from tests.e2e import ecr_capabilities
from tests.e2e.sim_helpers import ProcessGroup, SerialLane, TerminalProcess

TERMINALS = ("T0001", "T0002")
CONFIG = LinkConfig(heartbeat_interval=0.5, dead_after=2.0, request_timeout=8.0, login_timeout=3.0)
LIMIT = 90.0


class Lanes:
    """The cashier system's links to the terminals (a :class:`TerminalLinks`)."""

    def __init__(self) -> None:
        self.lanes: dict[str, SerialLane] = {}

    async def wait_ready(self, terminal_id: str, timeout: float) -> LinkEndpoint:
        endpoint = self.lanes[terminal_id].endpoint
        await endpoint.wait_ready(timeout)
        return endpoint


@pytest.fixture
def groups(tmp_path: Path) -> Iterator[dict[str, ProcessGroup]]:
    """One process group (and output directory) per terminal; finalisers kill what still runs."""
    found = {}
    for terminal_id in TERMINALS:
        (tmp_path / terminal_id).mkdir()
        found[terminal_id] = ProcessGroup(tmp_path / terminal_id)
    yield found
    for group in found.values():
        group.close()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def publish(repository: UpdateRepository, directory: Path, version: str, image: bytes) -> Package:
    source = directory / f"{version}.bin"
    source.write_bytes(image)
    return repository.publish(source, version, model=DEFAULT_MODEL)


async def roll(
    store: SqlRolloutStore,
    lanes: Lanes,
    package: Package,
    url: str,
    *,
    percent: int = 0,
    named: tuple[str, ...] = (),
) -> RolloutStatus:
    plan = new_rollout(package, url, percent=percent, named=named)
    store.save_rollout(
        plan, select_terminals(TERMINALS, package.version, percent=percent, named=named)
    )
    return await run_rollout(plan, store, lanes, timeout=15.0)


def states(status: RolloutStatus) -> dict[str, tuple[Progress, str | None]]:
    return {p.terminal_id: (p.state, p.firmware_version) for p in status.terminals}


async def firmware(terminal: TerminalProcess) -> dict[str, object]:
    answer = await terminal.status()
    slots: dict[str, object] = answer["status"]["firmware"]
    return slots


@pytest.mark.slow
def test_rollout_to_one_then_all_with_a_rollback_and_a_power_cut(
    tmp_path: Path, groups: dict[str, ProcessGroup], database: Engine
) -> None:
    repository = UpdateRepository.create(tmp_path / "updates")
    root = tmp_path / "root.json"
    root.write_bytes(repository.root_json())
    store = SqlRolloutStore(database, actor="admin", source="test")
    lanes = Lanes()
    terminals = {
        tid: TerminalProcess(
            groups[tid],
            [
                *("--state-dir", str(tmp_path / tid / "state"), "--terminal-id", tid),
                *("--update-root", str(root), "--dead-after", "2", "--log-level", "INFO"),
            ],
        )
        for tid in TERMINALS
    }

    async def scenario(url: str) -> None:
        for tid, terminal in terminals.items():
            lanes.lanes[tid] = SerialLane(terminal, CONFIG, ecr_capabilities())
            await lanes.lanes[tid].start()
        try:
            good = publish(repository, tmp_path, "SIM-1.1.0", b"SIM 1.1.0 image\n" * 512)

            # 1. One named terminal.
            status = await roll(store, lanes, good, url, named=("T0001",))
            assert states(status) == {"T0001": (Progress.INSTALLED, "SIM-1.1.0")}
            assert (await firmware(terminals["T0001"]))["b"] == "SIM-1.1.0"
            assert (await firmware(terminals["T0002"]))["active"] == "A"

            # 2. Everyone (the same rollout, widened): T0001 is left alone.
            status = await roll(store, lanes, good, url, percent=100)
            assert states(status) == {
                "T0001": (Progress.INSTALLED, "SIM-1.1.0"),
                "T0002": (Progress.INSTALLED, "SIM-1.1.0"),
            }
            assert status.complete

            # 3. A build that fails its self-test: installed, failed, rolled back on both.
            bad = publish(repository, tmp_path, "SIM-1.2.0", SELF_TEST_FAIL_MARKER * 64)
            status = await roll(store, lanes, bad, url, percent=100)
            assert states(status) == {
                "T0001": (Progress.ROLLED_BACK, "SIM-1.1.0"),
                "T0002": (Progress.ROLLED_BACK, "SIM-1.1.0"),
            }
            for terminal in terminals.values():
                slots = await firmware(terminal)
                assert (slots["active"], slots["b"], slots["failed"]) == (
                    "B",
                    "SIM-1.1.0",
                    "SIM-1.2.0",
                )

            # 4. The power goes on T0002 while it writes the next image.
            fixed = publish(repository, tmp_path, "SIM-1.3.0", b"SIM 1.3.0 image\n" * 512)
            victim = terminals["T0002"]
            await victim.control({"cmd": "faults", "plan": {"power_loss_at": "firmware_write"}})
            lanes.lanes["T0002"].going_down()
            status = await roll(store, lanes, fixed, url, named=("T0002",))
            assert states(status)["T0002"][0] is Progress.FAILED
            assert victim.child is not None and await victim.child.wait_exit() == 137
            await lanes.lanes["T0002"].restart()
            slots = await firmware(victim)
            assert (slots["active"], slots["b"], slots["installing"]) == ("B", "SIM-1.1.0", None)

            # ... and the whole fleet gets the fix when the rollout runs again.
            status = await roll(store, lanes, fixed, url, percent=100)
            assert states(status) == {
                "T0001": (Progress.INSTALLED, "SIM-1.3.0"),
                "T0002": (Progress.INSTALLED, "SIM-1.3.0"),
            }
            for terminal in terminals.values():
                assert (await firmware(terminal))["active"] == "A"
        finally:
            for lane in lanes.lanes.values():
                with contextlib.suppress(Exception):
                    await lane.close()
            for terminal in terminals.values():
                with contextlib.suppress(Exception):
                    await terminal.stop()

    with RepositoryServer(repository.served_dir) as server:
        asyncio.run(asyncio.wait_for(scenario(server.url), LIMIT))

    # The admin page's data, newest first, and the audit trail of every outcome.
    progress = rollout_progress(database)
    assert [p.rollout.package.version for p in progress] == ["SIM-1.3.0", "SIM-1.2.0", "SIM-1.1.0"]
    with make_session_factory(database)() as session:
        audited = [
            (e.event.target, e.event.outcome.value, e.event.details["progress"])
            for e in SqlAuditLog(session).entries()
            if e.event.action == "update.installed"
        ]
    assert ("terminal:T0002", "failure", "rolled_back") in audited
    assert ("terminal:T0002", "failure", "failed") in audited
    assert audited.count(("terminal:T0001", "success", "installed")) == 2
