"""The audit log in SQL: it commits with the action, never forks under concurrent writers, and
``verify_audit_log`` finds tampering done directly in the database, with the signed checkpoint."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome, ProblemKind
from shouyin.store.audit_repo import (
    AuditFilter,
    CheckpointInvalid,
    CheckpointStore,
    append_audit,
    verify_audit_log,
)
from shouyin.store.fakes import FakeUnitOfWork
from shouyin.store.tables import AuditEntryRow, AuditHeadRow, table
from shouyin.store.uow import SqlUnitOfWork, make_session_factory

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
LOG = table(AuditEntryRow)
HEAD = table(AuditHeadRow)


def event(
    n: int, actor: str = "cashier1", outcome: AuditOutcome = AuditOutcome.SUCCESS
) -> AuditEvent:
    return AuditEvent(
        action=AuditAction.SALE_COMPLETED,
        outcome=outcome,
        actor=actor,
        source="lane:L01",
        target=f"sale:{n}",
        at=T0 + timedelta(seconds=n),
        details={"total_fen": n},
    )


def fill(engine: Engine, count: int, checkpoints: CheckpointStore | None = None) -> None:
    uow = SqlUnitOfWork(make_session_factory(engine))
    uow.checkpoints = checkpoints
    for n in range(1, count + 1):
        with uow:
            uow.audit.append(event(n))
            uow.commit()


def report_of(engine: Engine, checkpoints: CheckpointStore | None = None) -> list[tuple[int, str]]:
    with Session(engine) as session:
        report = verify_audit_log(session, checkpoints)
    return [(p.seq, p.kind.value) for p in report.problems]


def test_an_entry_commits_with_its_transaction_or_not_at_all(engine: Engine) -> None:
    uow = SqlUnitOfWork(make_session_factory(engine))
    with uow:
        uow.audit.append(event(1))  # left without commit: rolled back
    with uow:
        assert uow.audit.head()[0] == 0
        entry = uow.audit.append(event(2))
        uow.commit()
    with uow:
        assert uow.audit.head() == (1, entry.entry_hash)
        assert [e.event.target for e in uow.audit.entries()] == ["sale:2"]


def test_list_filters_newest_first(engine: Engine) -> None:
    fill(engine, 5)
    append_audit(engine, event(6, actor="boss", outcome=AuditOutcome.FAILURE))
    uow = SqlUnitOfWork(make_session_factory(engine))
    with uow:
        assert [e.seq for e in uow.audit.list(AuditFilter(limit=3))] == [6, 5, 4]
        failed = uow.audit.list(AuditFilter(outcome=AuditOutcome.FAILURE))
        assert [(e.seq, e.event.actor) for e in failed] == [(6, "boss")]
        since = uow.audit.list(AuditFilter(since=T0 + timedelta(seconds=5), action="sale."))
        assert [e.seq for e in since] == [6, 5]


def test_the_fake_log_chains_exactly_like_the_sql_one(engine: Engine) -> None:
    fake = FakeUnitOfWork()
    with fake:
        fake_entries = [fake.audit.append(event(n)) for n in (1, 2, 3)]
        fake.commit()
    fill(engine, 3)
    uow = SqlUnitOfWork(make_session_factory(engine))
    with uow:
        assert list(uow.audit.entries()) == fake_entries


def test_concurrent_writers_never_fork_the_chain(engine: Engine) -> None:
    per_thread, errors = 15, []

    def writer(name: str) -> None:
        uow = SqlUnitOfWork(make_session_factory(engine))
        try:
            for n in range(per_thread):
                with uow:
                    uow.audit.append(event(n, actor=name))
                    uow.commit()
        except Exception as error:  # reported below; a thread must not swallow it
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert report_of(engine) == []
    with engine.connect() as conn:
        seqs = conn.execute(select(LOG.c.seq).order_by(LOG.c.seq)).scalars().all()
        head = conn.execute(select(HEAD.c.seq)).scalar_one()
    assert seqs == list(range(1, 3 * per_thread + 1))
    assert head == 3 * per_thread


@pytest.mark.postgres
def test_a_second_writer_waits_for_the_first_on_postgresql(pg_url: str) -> None:
    from shouyin.store.engine import make_engine

    engine = make_engine(pg_url)
    try:
        first = SqlUnitOfWork(make_session_factory(engine))
        second_done = threading.Event()

        def second() -> None:
            uow = SqlUnitOfWork(make_session_factory(engine))
            with uow:
                uow.audit.append(event(2))
                uow.commit()
            second_done.set()

        with first:
            first.audit.append(event(1))  # holds the head row lock until commit
            thread = threading.Thread(target=second)
            thread.start()
            assert not second_done.wait(0.5), "the second writer must wait for the head lock"
            first.commit()
        assert second_done.wait(10)
        thread.join(10)
        assert report_of(engine) == []
    finally:
        engine.dispose()


def test_tampering_in_the_database_is_found_and_placed(engine: Engine, tmp_path: Path) -> None:
    checkpoints = CheckpointStore(tmp_path / "keys")
    fill(engine, 12, checkpoints)
    assert report_of(engine, checkpoints) == []
    with engine.begin() as conn:
        conn.execute(update(LOG).where(LOG.c.seq == 3).values(actor="mallory"))
        conn.execute(delete(LOG).where(LOG.c.seq == 7))
    assert report_of(engine, checkpoints) == [(3, "edited"), (8, "deleted")]


def test_reordered_rows_are_reported(engine: Engine) -> None:
    fill(engine, 8)
    with engine.begin() as conn:  # swap entries 4 and 5 by renumbering them
        conn.execute(update(LOG).where(LOG.c.seq == 4).values(seq=-1))
        conn.execute(update(LOG).where(LOG.c.seq == 5).values(seq=4))
        conn.execute(update(LOG).where(LOG.c.seq == -1).values(seq=5))
    found = report_of(engine)
    assert found[0] == (4, "reordered")
    assert {kind for _, kind in found} == {"reordered"}


def test_a_cut_off_tail_is_found_through_the_signed_checkpoint(
    engine: Engine, tmp_path: Path
) -> None:
    checkpoints = CheckpointStore(tmp_path / "keys")
    fill(engine, 6, checkpoints)
    with engine.begin() as conn:  # the head row moved back too: the chain alone looks intact
        conn.execute(delete(LOG).where(LOG.c.seq >= 5))
        kept = conn.execute(select(LOG.c.entry_hash).where(LOG.c.seq == 4)).scalar_one()
        conn.execute(update(HEAD).values(seq=4, entry_hash=kept))
    assert report_of(engine) == []
    assert report_of(engine, checkpoints) == [(5, ProblemKind.TRUNCATED.value)]


def test_a_cut_off_tail_is_found_through_the_head_row_without_a_checkpoint(
    engine: Engine,
) -> None:
    fill(engine, 6)
    with engine.begin() as conn:  # the head row still records entry 6
        conn.execute(delete(LOG).where(LOG.c.seq >= 5))
    assert report_of(engine) == [(5, ProblemKind.TRUNCATED.value)]


def test_a_head_row_that_is_not_the_last_entry_is_reported(engine: Engine) -> None:
    fill(engine, 4)
    with engine.begin() as conn:  # the head moved back: the next append would fork the chain
        conn.execute(update(HEAD).values(seq=3))
    assert report_of(engine) == [(3, ProblemKind.BROKEN_LINK.value)]
    with engine.begin() as conn:  # right number, wrong hash
        conn.execute(update(HEAD).values(seq=4, entry_hash="f" * 64))
    assert report_of(engine) == [(4, ProblemKind.BROKEN_LINK.value)]


def test_a_forged_checkpoint_is_refused(engine: Engine, tmp_path: Path) -> None:
    checkpoints = CheckpointStore(tmp_path / "keys")
    fill(engine, 3, checkpoints)
    text = checkpoints.path.read_text().replace('"seq": 3', '"seq": 2')
    checkpoints.path.write_text(text)
    with pytest.raises(CheckpointInvalid, match="signature"):
        checkpoints.load()


def test_the_checkpoint_only_moves_forward(tmp_path: Path) -> None:
    checkpoints = CheckpointStore(tmp_path / "keys")
    assert checkpoints.advance(5, "a" * 64, T0)
    assert not checkpoints.advance(4, "b" * 64, T0)
    loaded = checkpoints.load()
    assert loaded is not None
    assert (loaded.seq, loaded.entry_hash) == (5, "a" * 64)
    key = tmp_path / "keys" / "audit-checkpoint.key"
    assert key.stat().st_mode & 0o077 == 0
