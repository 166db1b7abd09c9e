"""Issue 7's "done when" for operations: two simulated terminals (real ``shouyin terminal sim``
processes) are paired to the cashier system's TLS link server; diagnostics and the
test-transaction suite (in the terminals' test mode: the real batch stays untouched) run against
both; every health alert is raised and cleared by flipping
the simulators' status; then the audit log is verified and broken four ways (edit, delete,
reorder, cut-off tail), each found by ``shouyin audit verify`` with its place.

Time-based rules are driven by the monitor's clock (an offset on the real clock), so that
"no heartbeat for 60 s" and "no new link errors for 5 minutes" take no real minutes. Two alerts
are flipped on the cashier side because the simulator cannot change them at run time: firmware
out of date (the expected version is a store setting; the running version changes only by an
update, issue 7 part 4) and certificate expiry (the certificate issued at pairing is valid for
years; the warning window is widened instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import Engine, Executable, delete, update
from typer.testing import CliRunner

from shouyin.cli import app
from shouyin.config import Settings
from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome
from shouyin.domain.errors import InvalidCredentials
from shouyin.domain.money import Money
from shouyin.domain.users import PasswordHasher, Role
from shouyin.fleet.diagnostics import SUITE_STEPS, DiagnosticsReport
from shouyin.fleet.diagnostics_report import run_diagnostics
from shouyin.fleet.health import AlertKind, HealthPolicy
from shouyin.fleet.health_monitor import HealthMonitor, terminal_health
from shouyin.fleet.health_store import SqlHealthUnitOfWork
from shouyin.fleet.keys import TerminalKeyRing
from shouyin.fleet.pairing import build_link_server
from shouyin.fleet.registry import register_terminal
from shouyin.lane import services
from shouyin.link import LinkConfig
from shouyin.link.aio import LinkEndpoint
from shouyin.link.keystore import KeyStore
from shouyin.link.messages import DiagnosisRequest
from shouyin.link.pairing import PairingCode
from shouyin.link.pairing_qr import PairingPayload, encode_payload
from shouyin.link.server import LinkServer
from shouyin.store.audit_repo import CheckpointStore
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.tables import AuditEntryRow, AuditHeadRow, table
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import SqlUnitOfWork, make_session_factory
from tests.e2e.sim_helpers import WAIT, ProcessGroup, TerminalProcess, eventually
from tests.fleet import init_store, keyring, make_settings, settings_env

TERMINALS = ("10000001", "10000002")
ECR_CONFIG = LinkConfig(heartbeat_interval=0.3, dead_after=2.0, request_timeout=5.0)
LOG, HEAD = table(AuditEntryRow), table(AuditHeadRow)
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
SCENARIO_LIMIT = 110.0


class OffsetClock:
    """The real clock plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclasses.dataclass
class Store:
    """The cashier system: settings, database, key store, key ring and TLS link server."""

    settings: Settings
    engine: Engine
    keystore: KeyStore
    ring: TerminalKeyRing
    server: LinkServer

    @property
    def checkpoints(self) -> CheckpointStore:
        return CheckpointStore(self.settings.keys_dir)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A store as ``shouyin init`` leaves it; the CLI commands (and their child processes) get
    the same settings through ``SHOUYIN_*`` variables."""
    settings = make_settings(tmp_path)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "300")  # Rich tables on one line each, for the assertions
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    keystore = init_store(settings)
    ring = keyring(settings)
    server = build_link_server(
        settings,
        keys=ring,
        keystore=keystore,
        config=ECR_CONFIG,
        on_paired=lambda event: ring.put(event.key),  # what `shouyin fleet pair` keeps
    )
    yield Store(settings, engine, keystore, ring, server)
    engine.dispose()


async def pair(store: Store, terminal: TerminalProcess, terminal_id: str) -> LinkEndpoint:
    """Pair one terminal by the QR code's text and register it, audited (as ``fleet pair``)."""
    code = PairingCode.generate(time.monotonic())
    store.server.allow_pairing(code, store.keystore.certificate_issuer(lambda: datetime.now(UTC)))
    payload = PairingPayload(
        address="127.0.0.1",
        port=store.server.addresses[0].port,
        code=code.digits,
        fingerprint=store.keystore.ca_fingerprint(),
    )
    await terminal.start("--pair-qr", encode_payload(payload), "--terminal-id", terminal_id)
    await terminal.expect("paired", timeout=2 * WAIT)
    store.server.allow_pairing(None)
    endpoint = await store.server.wait_ready(terminal_id, WAIT)
    info = endpoint.transport_info
    assert info is not None and info.peer_certificate is not None
    key = store.ring.get(terminal_id)
    assert key is not None
    certificate = x509.load_der_x509_certificate(info.peer_certificate)
    uow = SqlTerminalUnitOfWork(make_session_factory(store.engine))
    uow.checkpoints = store.checkpoints
    now = datetime.now(UTC)
    record = register_terminal(uow, terminal_id, lane_id="L01", now=now).paired(
        at=now,
        key_id=key.key_id,
        certificate_serial=f"{certificate.serial_number:x}",
        certificate_expires_at=certificate.not_valid_after_utc,
    )
    with uow:
        uow.terminals.save(record)
        uow.audit.append(
            AuditEvent(
                AuditAction.TERMINAL_PAIRED,
                AuditOutcome.SUCCESS,
                "admin",
                "lane:L01",
                f"terminal:{terminal_id}",
                now,
            )
        )
        uow.commit()
    return endpoint


def active(store: Store, terminal_id: str) -> set[AlertKind]:
    with SqlHealthUnitOfWork(store.engine) as uow:
        return set(uow.health.active_alerts(terminal_id))


async def until_alerts(store: Store, terminal_id: str, expected: set[AlertKind]) -> None:
    """Wait (bounded) until the terminal's active alerts are exactly ``expected``."""

    async def check() -> bool:
        return active(store, terminal_id) == expected

    try:
        await eventually(check, WAIT)
    except TimeoutError:
        with SqlHealthUnitOfWork(store.engine) as uow:
            latest = uow.health.latest(terminal_id)
        found = active(store, terminal_id)
        raise AssertionError(f"{terminal_id}: {found} != {expected}; latest {latest}") from None


async def flip_status_alerts(store: Store, terminal: TerminalProcess, terminal_id: str) -> None:
    """Each status-driven alert: flip the simulator's status, see it raised, flip back, cleared."""
    flips: list[tuple[dict[str, Any], AlertKind, dict[str, Any]]] = [
        ({"paper": "low"}, AlertKind.PAPER_LOW, {"paper": "ok"}),
        ({"paper": "out"}, AlertKind.PAPER_OUT, {"paper": "ok"}),
        (
            {"power": "battery", "battery_percent": 15},
            AlertKind.BATTERY_LOW,
            {"power": "mains", "battery_percent": 100},
        ),
        ({"temperature_c": 75}, AlertKind.OVERHEATING, {"temperature_c": 40}),
    ]
    for raise_, kind, clear in flips:
        await terminal.control({"cmd": "set_status", **raise_})
        await until_alerts(store, terminal_id, {kind})
        await terminal.control({"cmd": "set_status", **clear})
        await until_alerts(store, terminal_id, set())


async def cable_alert(
    store: Store, endpoint: LinkEndpoint, terminal: TerminalProcess, clock: OffsetClock
) -> None:
    """CRC errors and retransmissions rising: check the cable; quiet for 5 minutes: cleared.

    The simulator's injected line noise shows in its diagnosis answers (heartbeat answers carry
    the connection's own framing counters, which a TLS link never moves), so the admin's
    diagnosis is what reports it here.
    """
    terminal_id = TERMINALS[0]
    await terminal.control({"cmd": "set_status", "crc_errors": 4, "retransmissions": 2})
    await endpoint.request(DiagnosisRequest(service_id=endpoint.new_service_id()), timeout=WAIT)
    await until_alerts(store, terminal_id, {AlertKind.CHECK_CABLE})
    clock.offset += timedelta(minutes=6)  # no new errors for six minutes
    await until_alerts(store, terminal_id, set())
    # The cable is replaced and the counters restart from zero (a reset is not a rise).
    await terminal.control({"cmd": "set_status", "crc_errors": 0, "retransmissions": 0})


async def heartbeat_alert(
    store: Store, monitor: HealthMonitor, terminal: TerminalProcess, clock: OffsetClock
) -> None:
    """The terminal is switched off: no heartbeat for 60 s; back on: cleared."""
    terminal_id = TERMINALS[1]
    assert await terminal.stop() == 0
    clock.offset += timedelta(seconds=61)
    raised = monitor.check()
    assert (terminal_id, AlertKind.NO_HEARTBEAT) in {(a.terminal_id, a.kind) for a in raised}
    views = {v.terminal_id: v for v in terminal_health(store.engine, now=clock())}
    assert not views[terminal_id].online
    await terminal.start("--connect", f"tls://127.0.0.1:{store.server.addresses[0].port}")
    await until_alerts(store, terminal_id, set())


async def cashier_side_alerts(store: Store, monitor: HealthMonitor, terminal_id: str) -> None:
    """Firmware and certificate: the store's expectations change (see the module docstring)."""
    policy = monitor.policy
    monitor.policy = dataclasses.replace(policy, expected_firmware="SIM-9.9.9")
    await until_alerts(store, terminal_id, {AlertKind.FIRMWARE_OUTDATED})
    monitor.policy = dataclasses.replace(policy, certificate_warning=timedelta(days=36500))
    await until_alerts(store, terminal_id, {AlertKind.CERTIFICATE_EXPIRING})
    monitor.policy = policy
    await until_alerts(store, terminal_id, set())


async def diag_cli(store: Store, group: ProcessGroup, terminal: TerminalProcess) -> None:
    """``shouyin diag`` as its own process: it takes the link port, the terminal dials back in."""
    await store.server.close()  # the lane's server hands the link port over to the command
    child = group.spawn("diag", ["diag", TERMINALS[0], "--rounds", "5", "--wait", "30"])

    async def listening() -> bool:
        return "Waiting for terminal" in child.log_path.read_text(errors="replace")

    await eventually(listening, 2 * WAIT)
    # Restarted, the terminal dials at once instead of waiting out its reconnection back-off.
    assert await terminal.stop() == 0
    await terminal.start("--connect", f"tls://127.0.0.1:{store.settings.link_port}")
    status = await child.wait_exit(60)
    assert status == 0, child.tail() + child.log_path.read_text(errors="replace")
    reports = list((store.settings.data_dir / "diagnostics").glob(f"diag-{TERMINALS[0]}-*.json"))
    assert len(reports) == 1 and reports[0].with_suffix(".html").exists()
    report = DiagnosticsReport.model_validate_json(reports[0].read_text(encoding="utf-8"))
    assert report.passed and [s.name for s in report.transactions] == list(SUITE_STEPS)


def lane_activity(store: Store) -> None:
    """Money and admin actions through the lane services, each audited in its transaction."""
    uow = SqlUnitOfWork(make_session_factory(store.engine))
    uow.checkpoints = store.checkpoints
    ctx = services.Context(lane_id="L01")
    cashier = services.create_user(
        uow, HASHER, ctx, username="li", display_name="李", role=Role.CASHIER, password="472913"
    )
    with contextlib.suppress(InvalidCredentials):
        services.login(uow, HASHER, ctx, "li", "000000")
    services.open_shift(uow, ctx, cashier, Money(10_000))
    services.close_shift(uow, ctx, Money(10_000))


def verify() -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify"], catch_exceptions=False)
    # Without the table's box drawing (U+2500..U+257F): "2 edited entry 2 ..." reads in order.
    text = "".join(" " if "\u2500" <= ch <= "\u257f" else ch for ch in result.output)
    return result.exit_code, " ".join(text.split())


def audit_tampering(store: Store) -> None:
    """Verify, then break the chain four ways; each is found, with its entry number.

    The log holds: 1 user created, 2 failed login, 3 shift opened, 4 shift closed, 5 and 6 the
    two terminals paired, 7 the diagnostics run by ``shouyin diag``.
    """
    with store.engine.connect() as conn:
        original = [dict(row) for row in conn.execute(LOG.select().order_by(LOG.c.seq)).mappings()]
    assert [row["action"] for row in original] == [
        "user.created",
        "user.login",
        "shift.opened",
        "shift.closed",
        "terminal.paired",
        "terminal.paired",
        "terminal.diagnostics",
    ]

    def restore() -> None:
        with store.engine.begin() as conn:
            conn.execute(delete(LOG))
            conn.execute(LOG.insert(), original)
            head = original[-1]
            conn.execute(update(HEAD).values(seq=head["seq"], entry_hash=head["entry_hash"]))
        assert verify()[0] == 0

    code, output = verify()
    assert code == 0, output
    assert "Audit log intact: 7 entries" in output and "signed checkpoint #7" in output
    attacks: list[tuple[list[Executable], str]] = [
        # a failed login turned into a success
        ([update(LOG).where(LOG.c.seq == 2).values(outcome="success")], "2 edited entry 2"),
        ([delete(LOG).where(LOG.c.seq == 4)], "5 deleted entry 4 missing before entry 5"),
        (
            [  # the shift closed before it opened
                update(LOG).where(LOG.c.seq == 3).values(seq=-1),
                update(LOG).where(LOG.c.seq == 4).values(seq=3),
                update(LOG).where(LOG.c.seq == -1).values(seq=4),
            ],
            "3 reordered entry 3",
        ),
        (
            [delete(LOG).where(LOG.c.seq >= 5), update(HEAD).values(seq=4)],
            "5 tail cut off the log ends at entry 4",
        ),
    ]
    for statements, expected in attacks:
        with store.engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
        code, output = verify()
        assert code == 2, output
        assert expected in output, output
        restore()


@pytest.mark.slow
def test_two_terminals_diagnostics_alerts_and_audit(tmp_path: Path, store: Store) -> None:
    groups = [ProcessGroup(tmp_path / f"t{n}") for n in (1, 2)]
    for group in groups:
        group.directory.mkdir(parents=True, exist_ok=True)
    lane_activity(store)
    clock = OffsetClock()
    monitor = HealthMonitor(store.engine, HealthPolicy(expected_firmware="SIM-1.0.0"), clock=clock)

    async def scenario() -> None:
        await store.server.start()
        options = ["--acquirer", "memory", "--dead-after", "2", "--log-level", "INFO"]
        terminals = [
            TerminalProcess(group, ["--state-dir", str(tmp_path / f"state{n}"), *options])
            for n, group in enumerate(groups, 1)
        ]
        try:
            endpoints = [
                await pair(store, t, tid) for t, tid in zip(terminals, TERMINALS, strict=True)
            ]
            monitor.watch(store.server)
            for endpoint, terminal_id in zip(endpoints, TERMINALS, strict=True):
                report = await run_diagnostics(endpoint, terminal_id, lane_id="L01", rounds=10)
                assert report.passed, report.model_dump_json(indent=1)
                assert [s.name for s in report.transactions] == list(SUITE_STEPS)
                steps = {s.name: s for s in report.transactions}
                assert "balanced" in steps["settlement"].detail  # the test batch, settled
                assert "totals unchanged" in steps["test_mode_end"].detail
                connection = report.connection
                assert connection is not None
                assert (connection.transport, connection.tls_version) == ("tls", "TLSv1.3")
                assert connection.certificate_days_left is not None
                assert connection.certificate_days_left > 30
            for terminal in terminals:  # the suite left test mode; the real batch is open
                answer = await terminal.control({"cmd": "status"})
                assert answer["status"]["test_mode"] is False
                assert (answer["batch"], answer["last_trace"]) == ("000001", "000000")
            for terminal, terminal_id in zip(terminals, TERMINALS, strict=True):
                await until_alerts(store, terminal_id, set())
                await flip_status_alerts(store, terminal, terminal_id)
            await cable_alert(store, endpoints[0], terminals[0], clock)
            await cashier_side_alerts(store, monitor, TERMINALS[0])
            await heartbeat_alert(store, monitor, terminals[1], clock)
            await diag_cli(store, groups[0], terminals[0])
            for terminal in terminals:
                assert await terminal.stop() == 0
        finally:
            await store.server.close()
            for group in groups:
                group.close()

    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_LIMIT))
    with SqlHealthUnitOfWork(store.engine) as uow:
        alerts = uow.health.history(limit=100)
    assert [a for a in alerts if a.cleared_at is None] == []
    # Every terminal alert was raised and cleared; a printer's cover is not a terminal's.
    assert {a.kind for a in alerts} == set(AlertKind) - {AlertKind.COVER_OPEN}
    audit_tampering(store)
