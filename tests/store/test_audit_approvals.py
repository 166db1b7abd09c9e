"""A supervisor's password typed at the lane to approve an action is audited when it fails, like
a failed login: a ``user.login`` failure with ``purpose="approval"`` and the action to approve,
committed even though the approval raises (issue 7: failed logins are audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from shouyin.domain.audit import AuditEntry, AuditOutcome
from shouyin.domain.errors import AccountLocked, AuthError, InvalidCredentials, PermissionDenied
from shouyin.domain.users import MAX_FAILED_LOGINS, Action, PasswordHasher, Role
from shouyin.lane import services
from shouyin.store.audit_repo import CheckpointStore
from shouyin.store.uow import SqlUnitOfWork, make_session_factory

HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
def lane(engine: Engine, tmp_path: Path) -> tuple[SqlUnitOfWork, services.Context]:
    uow = SqlUnitOfWork(make_session_factory(engine))
    uow.checkpoints = CheckpointStore(tmp_path / "keys")
    ctx = services.Context(lane_id="L01", clock=lambda: T0)
    for username, role, password in (
        ("li", Role.CASHIER, "472913"),
        ("wang", Role.SUPERVISOR, "longer-secret-1"),
    ):
        services.create_user(
            uow,
            HASHER,
            ctx,
            username=username,
            display_name=username,
            role=role,
            password=password,
        )
    return uow, ctx


def after_setup(uow: SqlUnitOfWork) -> list[AuditEntry]:
    with uow:
        return [e for e in uow.audit.entries() if e.event.action != "user.created"]


def approve(uow: SqlUnitOfWork, ctx: services.Context, username: str, password: str) -> None:
    services.supervisor_approval(
        uow, HASHER, ctx, username=username, password=password, action=Action.VOID_SALE
    )


def test_a_wrong_supervisor_password_is_audited_as_a_failed_login(
    lane: tuple[SqlUnitOfWork, services.Context],
) -> None:
    uow, ctx = lane
    with pytest.raises(InvalidCredentials):
        approve(uow, ctx, "wang", "not-the-password")
    [entry] = after_setup(uow)
    event = entry.event
    assert (event.action, event.outcome, event.actor, event.target, event.source) == (
        "user.login",
        AuditOutcome.FAILURE,
        "wang",
        "user:wang",
        "lane:L01",
    )
    assert event.details == {
        "why": "InvalidCredentials",
        "purpose": "approval",
        "approving": "void_sale",
    }
    assert "not-the-password" not in str(entry)
    checkpoint = uow.checkpoints.load() if uow.checkpoints else None
    assert checkpoint is not None and checkpoint.seq == entry.seq  # signed like any commit


def test_an_unknown_approver_is_audited_too(
    lane: tuple[SqlUnitOfWork, services.Context],
) -> None:
    uow, ctx = lane
    with pytest.raises(InvalidCredentials):
        approve(uow, ctx, "nobody", "whatever-1")
    [entry] = after_setup(uow)
    assert (entry.event.action, entry.event.outcome, entry.event.target) == (
        "user.login",
        AuditOutcome.FAILURE,
        "user:nobody",
    )
    assert entry.event.details == {"purpose": "approval", "approving": "void_sale"}


def test_a_cashier_approving_is_refused_and_audited(
    lane: tuple[SqlUnitOfWork, services.Context],
) -> None:
    uow, ctx = lane
    with pytest.raises(PermissionDenied):
        approve(uow, ctx, "li", "472913")
    [entry] = after_setup(uow)
    assert entry.event.outcome is AuditOutcome.FAILURE
    assert entry.event.details["why"] == "PermissionDenied"


def test_guessing_until_locked_is_audited_every_time_and_success_is_not(
    lane: tuple[SqlUnitOfWork, services.Context],
) -> None:
    uow, ctx = lane
    approve(uow, ctx, "wang", "longer-secret-1")  # approved: recorded by the approved action
    assert after_setup(uow) == []
    for _ in range(MAX_FAILED_LOGINS):  # the last of these locks the account
        with pytest.raises(AuthError):
            approve(uow, ctx, "wang", "guess-123456")
    with pytest.raises(AccountLocked):
        approve(uow, ctx, "wang", "longer-secret-1")
    failures = after_setup(uow)
    assert len(failures) == MAX_FAILED_LOGINS + 1
    assert {e.event.outcome for e in failures} == {AuditOutcome.FAILURE}
    whys = [e.event.details["why"] for e in failures]
    assert whys[0] == "InvalidCredentials" and whys[-2:] == ["AccountLocked"] * 2
