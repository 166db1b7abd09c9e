"""The supervised no-sale (无销售开钱箱): recorded on the shift and in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shouyin.domain.audit import AuditAction
from shouyin.domain.catalogue import Catalogue
from shouyin.domain.errors import PermissionDenied, ShiftError
from shouyin.domain.money import Money
from shouyin.domain.users import Action, Approval, PasswordHasher, Role, User
from shouyin.lane import services
from shouyin.store.fakes import FakeUnitOfWork

HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


@pytest.fixture
def ctx() -> services.Context:
    counter = iter(f"id{n}" for n in range(1, 1000))
    return services.Context(lane_id="L01", clock=lambda: NOW, new_id=lambda: next(counter))


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork(Catalogue([]))


@pytest.fixture
def cashier(uow: FakeUnitOfWork, ctx: services.Context) -> User:
    return services.create_user(
        uow, HASHER, ctx, username="li", display_name="李", role=Role.CASHIER, password="472913"
    )


@pytest.fixture
def supervisor(uow: FakeUnitOfWork, ctx: services.Context) -> User:
    return services.create_user(
        uow,
        HASHER,
        ctx,
        username="zhang",
        display_name="张",
        role=Role.SUPERVISOR,
        password="super-secret-1",
    )


def _approval(uow: FakeUnitOfWork, ctx: services.Context, action: Action) -> Approval:
    return services.supervisor_approval(
        uow, HASHER, ctx, username="zhang", password="super-secret-1", action=action
    )


def _no_sale_entries(uow: FakeUnitOfWork) -> list[tuple[str, str, dict[str, object]]]:
    with uow:
        return [
            (e.event.actor, e.event.target, dict(e.event.details))
            for e in uow.audit.entries()
            if e.event.action == AuditAction.DRAWER_NO_SALE
        ]


def test_approved_no_sale_is_recorded_on_the_shift_and_audited(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User, supervisor: User
) -> None:
    shift = services.open_shift(uow, ctx, cashier, Money(10_000))
    approval = _approval(uow, ctx, Action.NO_SALE)
    record = services.no_sale(uow, ctx, approval, "换零钱")
    assert (record.approver_id, record.reason, record.at) == (supervisor.user_id, "换零钱", NOW)
    with uow:
        assert services.current_shift(uow, ctx).no_sales == (record,)
    assert _no_sale_entries(uow) == [
        (
            cashier.user_id,
            f"shift:{shift.shift_id}",
            {"approver": supervisor.user_id, "reason": "换零钱"},
        )
    ]


def test_no_sale_with_an_approval_for_another_action_is_refused_and_not_recorded(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User, supervisor: User
) -> None:
    services.open_shift(uow, ctx, cashier, Money(10_000))
    with pytest.raises(PermissionDenied):
        services.no_sale(uow, ctx, _approval(uow, ctx, Action.REFUND), "换零钱")
    with uow:
        assert services.current_shift(uow, ctx).no_sales == ()
    assert _no_sale_entries(uow) == []


def test_no_sale_needs_an_open_shift(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User, supervisor: User
) -> None:
    with pytest.raises(ShiftError):
        services.no_sale(uow, ctx, _approval(uow, ctx, Action.NO_SALE), "换零钱")
    assert _no_sale_entries(uow) == []


def test_no_sale_reason_is_scrubbed_of_card_numbers(
    uow: FakeUnitOfWork, ctx: services.Context, cashier: User, supervisor: User
) -> None:
    services.open_shift(uow, ctx, cashier, Money(10_000))
    record = services.no_sale(
        uow, ctx, _approval(uow, ctx, Action.NO_SALE), "卡 4111111111111111 退款"
    )
    assert "4111111111111111" not in record.reason
    assert all("4111111111111111" not in str(d) for _, _, d in _no_sale_entries(uow))
