"""The lane server keeps the audit log's signed checkpoint at the chain head, so that
``shouyin audit verify`` finds a cut-off tail of what the web API recorded; and ``audit verify``
fails when the log has entries but the checkpoint is gone."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from shouyin.cli import app
from shouyin.config import Settings
from shouyin.domain.audit import GENESIS_HASH
from shouyin.store.audit_repo import CheckpointStore, SqlAuditLog, verify_audit_log
from shouyin.store.tables import AuditEntryRow, AuditHeadRow, table
from shouyin.web.app import create_app
from shouyin.web.runtime import LaneRuntime
from tests.web import CASHIER, LANE, login, make_runtime, open_sale

LOG = table(AuditEntryRow)
HEAD = table(AuditHeadRow)


@pytest.fixture
def settings(lane_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The lane's settings, also seen by ``shouyin audit verify`` through the environment."""
    data = tmp_path / "data"
    monkeypatch.setenv("SHOUYIN_DATA_DIR", str(data))
    monkeypatch.setenv("SHOUYIN_DATABASE_URL", lane_url)
    monkeypatch.setenv("SHOUYIN_LANGUAGE", "en")
    return Settings(database_url=lane_url, lane_id=LANE, data_dir=data)


def head_of(runtime: LaneRuntime) -> tuple[int, str]:
    with runtime.uow() as uow:
        return uow.audit.head()


def checkpoint_of(settings: Settings) -> tuple[int, str] | None:
    checkpoint = CheckpointStore(settings.keys_dir).load()
    return None if checkpoint is None else (checkpoint.seq, checkpoint.entry_hash)


def sell_for_cash(runtime: LaneRuntime) -> None:
    """A login, a shift and a cash sale, through the web API."""
    with TestClient(create_app(runtime)) as client:
        login(client, CASHIER)
        sale = open_sale(client)
        assert client.post(f"/api/sales/{sale}/scan", json={"code": "6901234567892"}).is_success
        paid = client.post(f"/api/sales/{sale}/cash", json={"amount_fen": 1000})
        assert paid.json()["completed"] is True, paid.text


def verify(*options: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify", *options], catch_exceptions=False)
    # Without the table's box drawing (U+2500..U+257F), so that a row reads in order.
    text = "".join(" " if "\u2500" <= ch <= "\u257f" else ch for ch in result.output)
    return result.exit_code, " ".join(text.split())


def test_web_actions_move_the_signed_checkpoint_to_the_chain_head(
    lane_url: str, settings: Settings
) -> None:
    runtime = make_runtime(lane_url, settings=settings)
    created = head_of(runtime)  # the staff accounts, created through runtime.uow() too
    assert created[0] > 0 and checkpoint_of(settings) == created
    sell_for_cash(runtime)
    head = head_of(runtime)
    with Session(runtime.engine) as session:
        actions = [e.event.action for e in SqlAuditLog(session).entries(created[0] + 1)]
        report = verify_audit_log(session, runtime.checkpoints)
    assert actions == ["shift.opened", "sale.completed"]
    assert checkpoint_of(settings) == head
    assert report.ok and report.checkpoint is not None and report.checkpoint.seq == head[0]


def test_a_scan_does_not_touch_the_checkpoint(lane_url: str, settings: Settings) -> None:
    runtime = make_runtime(lane_url, settings=settings)
    with TestClient(create_app(runtime)) as client:
        login(client, CASHIER)
        sale = open_sale(client)
        written = runtime.checkpoints.path.stat().st_mtime_ns
        for _ in range(3):
            assert client.post(f"/api/sales/{sale}/scan", json={"code": "6901234567892"}).is_success
    assert runtime.checkpoints.path.stat().st_mtime_ns == written
    assert checkpoint_of(settings) == head_of(runtime)


def test_audit_verify_finds_a_cut_off_tail_of_the_web_log(
    lane_url: str, settings: Settings
) -> None:
    runtime = make_runtime(lane_url, settings=settings)
    sell_for_cash(runtime)
    code, output = verify()
    assert code == 0, output
    assert "Audit log intact" in output
    last = head_of(runtime)[0]
    with runtime.engine.begin() as conn:  # a careful attacker: the head row moved back too
        conn.execute(delete(LOG).where(LOG.c.seq == last))
        kept = conn.execute(select(LOG.c.entry_hash).where(LOG.c.seq == last - 1)).scalar_one()
        conn.execute(update(HEAD).values(seq=last - 1, entry_hash=kept))
    runtime.engine.dispose()
    code, output = verify()
    assert code == 2, output
    assert f"tail cut off the log ends at entry {last - 1}" in output


def test_audit_verify_fails_without_a_checkpoint_unless_told(
    lane_url: str, settings: Settings
) -> None:
    runtime = make_runtime(lane_url, settings=settings)
    sell_for_cash(runtime)
    runtime.engine.dispose()
    runtime.checkpoints.path.unlink()  # removing the checkpoint must not hide a cut-off tail
    code, output = verify()
    assert code == 2, output
    assert "no signed checkpoint" in output and "--no-checkpoint-ok" in output
    assert "intact" not in output
    code, output = verify("--no-checkpoint-ok")
    assert code == 0, output
    assert "Audit log intact" in output


def test_audit_verify_fails_when_the_checkpoint_key_is_left_but_the_log_was_emptied(
    lane_url: str, settings: Settings
) -> None:
    runtime = make_runtime(lane_url, settings=settings)
    with runtime.engine.begin() as conn:  # everything gone, the head row reset
        conn.execute(delete(LOG))
        conn.execute(update(HEAD).values(seq=0, entry_hash=GENESIS_HASH))
    runtime.engine.dispose()
    runtime.checkpoints.path.unlink()
    code, output = verify()
    assert code == 2, output


def test_a_fresh_database_without_entries_verifies(settings: Settings) -> None:
    code, output = verify()
    assert code == 0, output
