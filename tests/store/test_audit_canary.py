"""Card-data canary for the audit log: card numbers, track 2 and CVVs typed into free text that
the log records (user names, void reasons, payment details) never reach the database file, the
signed checkpoint or ``shouyin audit list``; and ``shouyin audit list`` / ``shouyin health``
show what the admin needs."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shouyin.cli import app
from shouyin.domain.audit import AuditEvent, AuditOutcome
from shouyin.domain.errors import InvalidCredentials
from shouyin.domain.users import PasswordHasher
from shouyin.fleet.health import HealthSample
from shouyin.fleet.health_monitor import HealthMonitor
from shouyin.lane import services
from shouyin.link.values import PaperState
from shouyin.store.audit_repo import CheckpointStore, append_audit
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.uow import SqlUnitOfWork, make_session_factory

PANS = ("6222021234567890128", "4111111111111111")
TRACK2 = "4111111111111111=25121010000012300000"
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOUYIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHOUYIN_LANGUAGE", "en")
    monkeypatch.setenv("COLUMNS", "300")
    return tmp_path


def test_card_data_never_reaches_the_audit_log(data: Path) -> None:
    engine = make_engine(f"sqlite:///{data / 'shouyin.db'}")
    upgrade(engine)
    checkpoints = CheckpointStore(data / "keys")
    uow = SqlUnitOfWork(make_session_factory(engine))
    uow.checkpoints = checkpoints
    ctx = services.Context(lane_id="L01")
    for typed in (*PANS, TRACK2):  # a card swiped into the user name field
        with contextlib.suppress(InvalidCredentials):
            services.login(uow, HASHER, ctx, typed, "000000")
    append_audit(
        engine,
        AuditEvent(
            "payment.refund",
            AuditOutcome.FAILURE,
            actor=f"cashier {PANS[1]}",
            source="lane:L01",
            target=f"sale:{PANS[0]}",
            at=datetime.now(UTC),
            details={"reason": f"card {TRACK2} cvv 123", "note": PANS[1]},
        ),
        checkpoints,
    )
    engine.dispose()
    listing = CliRunner().invoke(app, ["audit", "list"], catch_exceptions=False)
    assert listing.exit_code == 0, listing.output
    assert "user.login" in listing.output and "622202" in listing.output
    stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    for secret in (*PANS, TRACK2, "=25121010000012300000"):
        assert secret.encode() not in stored
        assert secret not in listing.output


def test_audit_list_filters_failures(data: Path) -> None:
    engine = make_engine(f"sqlite:///{data / 'shouyin.db'}")
    upgrade(engine)
    uow = SqlUnitOfWork(make_session_factory(engine))
    ctx = services.Context(lane_id="L01")
    with contextlib.suppress(InvalidCredentials):
        services.login(uow, HASHER, ctx, "nobody", "x")
    append_audit(
        engine,
        AuditEvent(
            "report.z", AuditOutcome.SUCCESS, "system", "lane:L01", "z:1", datetime.now(UTC)
        ),
    )
    engine.dispose()
    result = CliRunner().invoke(app, ["audit", "list", "--failures"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "user:nobody" in result.output and "report.z" not in result.output
    bad = CliRunner().invoke(app, ["audit", "list", "--since", "yesterday"])
    assert bad.exit_code != 0
    assert "--since takes a date" in bad.output


def test_health_prints_each_terminal_with_its_alerts(data: Path) -> None:
    engine = make_engine(f"sqlite:///{data / 'shouyin.db'}")
    upgrade(engine)
    monitor = HealthMonitor(engine)
    now = datetime.now(UTC)
    monitor.record_health(HealthSample(terminal_id="10000001", at=now, paper=PaperState.OUT))
    monitor.record_health(HealthSample(terminal_id="10000002", at=now, paper=PaperState.OK))
    engine.dispose()
    result = CliRunner().invoke(app, ["health", "--history", "5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "10000001" in result.output and "paper out" in result.output
    assert "10000002" in result.output and "OK" in result.output
    assert "Alert history" in result.output
