"""Accounts: permission table, argon2id hashing, password rules, lockout, approvals."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shouyin.domain.errors import AccountLocked, InvalidCredentials, PermissionDenied, WeakPassword
from shouyin.domain.users import (
    APPROVAL_MAX_AGE,
    LOCKOUT,
    MAX_FAILED_LOGINS,
    Action,
    Approval,
    PasswordHasher,
    Role,
    User,
    approve,
    authenticate,
    can,
    check_password_rules,
    unlock,
)

NOW = datetime(2025, 3, 1, 9, 0)
# Tiny argon2 costs keep the tests fast; production uses the library defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def make_user(role: Role = Role.SUPERVISOR, password: str = "s3cret-pass") -> User:
    return User.create(
        user_id=f"{role}-1",
        username=f"{role}1",
        display_name="王芳",
        role=role,
        password=password,
        hasher=FAST,
    )


# -- permission table ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action", [Action.VOID_SALE, Action.REFUND, Action.NO_SALE, Action.PRICE_OVERRIDE]
)
def test_cashier_cannot_do_supervisor_actions(action: Action) -> None:
    assert not can(Role.CASHIER, action)
    assert can(Role.SUPERVISOR, action)


def test_cashier_can_sell_and_void_lines_of_an_open_sale() -> None:
    assert can(Role.CASHIER, Action.SELL)
    assert can(Role.CASHIER, Action.VOID_LINE)


def test_only_admins_manage_users_and_terminals() -> None:
    for action in (Action.MANAGE_USERS, Action.MANAGE_TERMINALS, Action.SETTLEMENT):
        assert can(Role.ADMIN, action)
        assert not can(Role.SUPERVISOR, action)
        assert not can(Role.CASHIER, action)


def test_admin_may_do_everything() -> None:
    assert all(can(Role.ADMIN, action) for action in Action)


# -- hashing ------------------------------------------------------------------------------------
def test_hash_is_argon2id_and_verifies() -> None:
    stored = FAST.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert FAST.verify(stored, "correct horse")
    assert not FAST.verify(stored, "wrong horse")


def test_hashes_are_salted() -> None:
    assert FAST.hash("same password") != FAST.hash("same password")


def test_garbage_hash_is_a_mismatch_not_a_crash() -> None:
    assert not FAST.verify("not-a-hash", "anything")


def test_hash_with_other_parameters_needs_rehash() -> None:
    stored = FAST.hash("correct horse")
    assert not FAST.needs_rehash(stored)
    assert PasswordHasher(time_cost=2, memory_cost=8, parallelism=1).needs_rehash(stored)


# -- password rules -----------------------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.ADMIN])
def test_supervisors_and_admins_need_eight_characters(role: Role) -> None:
    with pytest.raises(WeakPassword):
        check_password_rules(role, "1234567")
    with pytest.raises(WeakPassword):
        check_password_rules(role, "583920")  # a PIN is not enough for them
    check_password_rules(role, "12345678x")


def test_cashier_may_use_a_six_digit_pin() -> None:
    check_password_rules(Role.CASHIER, "583920")


@pytest.mark.parametrize("pin", ["000000", "123456", "987654", "111111"])
def test_trivial_pins_are_refused(pin: str) -> None:
    with pytest.raises(WeakPassword):
        check_password_rules(Role.CASHIER, pin)


def test_cashier_short_non_pin_password_is_refused() -> None:
    with pytest.raises(WeakPassword):
        check_password_rules(Role.CASHIER, "abc12")


def test_weak_password_message_does_not_echo_the_password() -> None:
    with pytest.raises(WeakPassword) as caught:
        check_password_rules(Role.ADMIN, "hunter2")
    assert "hunter2" not in str(caught.value)


# -- authentication and lockout -----------------------------------------------------------------
def test_correct_password_authenticates_and_records_the_login() -> None:
    user = make_user()
    authenticate(user, "s3cret-pass", FAST, NOW)
    assert user.last_login_at == NOW
    assert user.failed_logins == 0


def test_wrong_password_raises_and_counts() -> None:
    user = make_user()
    with pytest.raises(InvalidCredentials):
        authenticate(user, "nope", FAST, NOW)
    assert user.failed_logins == 1


def test_success_resets_the_failure_counter() -> None:
    user = make_user()
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(InvalidCredentials):
            authenticate(user, "nope", FAST, NOW)
    authenticate(user, "s3cret-pass", FAST, NOW)
    assert user.failed_logins == 0


def lock(user: User) -> None:
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(InvalidCredentials):
            authenticate(user, "nope", FAST, NOW)
    with pytest.raises(AccountLocked):
        authenticate(user, "nope", FAST, NOW)


def test_fifth_consecutive_failure_locks_for_thirty_minutes() -> None:
    user = make_user()
    lock(user)
    assert user.locked_until == NOW + LOCKOUT
    assert timedelta(minutes=30) == LOCKOUT


def test_locked_account_refuses_even_the_right_password() -> None:
    user = make_user()
    lock(user)
    with pytest.raises(AccountLocked):
        authenticate(user, "s3cret-pass", FAST, NOW + LOCKOUT - timedelta(seconds=1))


def test_lock_expires_after_thirty_minutes() -> None:
    user = make_user()
    lock(user)
    authenticate(user, "s3cret-pass", FAST, NOW + LOCKOUT)
    assert user.locked_until is None
    assert user.failed_logins == 0


def test_admin_can_unlock_early() -> None:
    user, admin = make_user(), make_user(Role.ADMIN)
    lock(user)
    unlock(user, by=admin)
    authenticate(user, "s3cret-pass", FAST, NOW)


def test_cashier_cannot_unlock() -> None:
    user, cashier = make_user(), make_user(Role.CASHIER, "583920")
    lock(user)
    with pytest.raises(PermissionDenied):
        unlock(user, by=cashier)
    assert user.is_locked(NOW)


def test_disabled_account_cannot_log_in() -> None:
    user = make_user()
    user.active = False
    with pytest.raises(InvalidCredentials):
        authenticate(user, "s3cret-pass", FAST, NOW)


def test_login_upgrades_an_outdated_hash() -> None:
    user = make_user()
    stronger = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1)
    old_hash = user.password_hash
    authenticate(user, "s3cret-pass", stronger, NOW)
    assert user.password_hash != old_hash
    assert not stronger.needs_rehash(user.password_hash)


def test_set_password_checks_rules_and_clears_the_lock() -> None:
    user = make_user()
    lock(user)
    with pytest.raises(WeakPassword):
        user.set_password("short", FAST)
    user.set_password("a-much-better-one", FAST)
    authenticate(user, "a-much-better-one", FAST, NOW)


# -- approvals ----------------------------------------------------------------------------------
def test_supervisor_approval_records_who_what_and_when() -> None:
    supervisor = make_user()
    approval = approve(supervisor, "s3cret-pass", Action.VOID_SALE, FAST, NOW)
    assert approval == Approval(supervisor.user_id, Role.SUPERVISOR, Action.VOID_SALE, NOW)


def test_cashier_cannot_approve() -> None:
    cashier = make_user(Role.CASHIER, "583920")
    with pytest.raises(PermissionDenied):
        approve(cashier, "583920", Action.REFUND, FAST, NOW)


def test_approval_with_wrong_password_counts_as_a_failed_login() -> None:
    supervisor = make_user()
    with pytest.raises(InvalidCredentials):
        approve(supervisor, "guess", Action.NO_SALE, FAST, NOW)
    assert supervisor.failed_logins == 1


def test_supervisor_may_approve_their_own_operation() -> None:
    # Documented choice: a supervisor running a lane approves their own void.
    supervisor = make_user()
    approval = approve(supervisor, "s3cret-pass", Action.VOID_SALE, FAST, NOW)
    approval.check(Action.VOID_SALE, NOW)


def test_approval_covers_only_its_action() -> None:
    approval = Approval("s", Role.SUPERVISOR, Action.REFUND, NOW)
    with pytest.raises(PermissionDenied):
        approval.check(Action.VOID_SALE, NOW)


def test_approval_expires() -> None:
    approval = Approval("s", Role.SUPERVISOR, Action.REFUND, NOW)
    approval.check(Action.REFUND, NOW + APPROVAL_MAX_AGE)
    with pytest.raises(PermissionDenied):
        approval.check(Action.REFUND, NOW + APPROVAL_MAX_AGE + timedelta(seconds=1))


def test_hand_made_cashier_approval_is_refused() -> None:
    forged = Approval("c", Role.CASHIER, Action.VOID_SALE, NOW)
    with pytest.raises(PermissionDenied):
        forged.check(Action.VOID_SALE, NOW)
