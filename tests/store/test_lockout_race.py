"""Login lockout under concurrent attempts, on SQLite and PostgreSQL.

Each attempt reads the account, spends argon2 time, then records the outcome. Saving the whole
row read before the password check lost concurrent failures (twelve simultaneous wrong passwords
left ``failed_logins=1``). The hasher below makes every attempt wait inside the password check
until all of them are there, so the worst interleaving happens every time (no sleeps).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from shouyin.domain.errors import AccountLocked, AuthError, InvalidCredentials
from shouyin.domain.users import (
    LOCKOUT,
    MAX_FAILED_LOGINS,
    Action,
    PasswordHasher,
    Role,
    User,
)
from shouyin.lane import services
from shouyin.store.uow import SqlUnitOfWork, make_session_factory

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
PASSWORD = "correct-horse-9"
ATTEMPTS = 8  # more than MAX_FAILED_LOGINS


class MeetingHasher(PasswordHasher):
    """A cheap argon2 hasher whose ``verify`` first calls ``during_verify`` (a barrier wait,
    or a concurrent change): the attempts are all between their read and their write."""

    def __init__(self, during_verify: Callable[[], object]) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self._during_verify = during_verify

    def verify(self, stored_hash: str, password: str) -> bool:
        self._during_verify()
        return super().verify(stored_hash, password)


FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def new_uow(engine: Engine) -> Iterator[Callable[[], SqlUnitOfWork]]:
    factory = make_session_factory(engine)
    yield lambda: SqlUnitOfWork(factory)


def ctx() -> services.Context:
    return services.Context(lane_id="L01", clock=lambda: NOW)


def make_victim(new_uow: Callable[[], SqlUnitOfWork]) -> User:
    return services.create_user(
        new_uow(),
        FAST,
        ctx(),
        username="victim",
        display_name="V",
        role=Role.SUPERVISOR,
        password=PASSWORD,
    )


def stored(new_uow: Callable[[], SqlUnitOfWork]) -> User:
    uow = new_uow()
    with uow:
        user = uow.users.get_by_username("victim")
    assert user is not None
    return user


def sign_in(uow: SqlUnitOfWork, hasher: PasswordHasher, password: str) -> None:
    """The lane's login."""
    services.login(uow, hasher, ctx(), "victim", password)


def approve_void(uow: SqlUnitOfWork, hasher: PasswordHasher, password: str) -> None:
    """The supervisor-approval dialog: a login too, which must lock the same way."""
    services.supervisor_approval(
        uow, hasher, ctx(), username="victim", password=password, action=Action.VOID_SALE
    )


@pytest.mark.parametrize("typed_at", [sign_in, approve_void], ids=["login", "approval"])
def test_concurrent_wrong_passwords_each_count_and_lock(
    new_uow: Callable[[], SqlUnitOfWork],
    typed_at: Callable[[SqlUnitOfWork, PasswordHasher, str], None],
) -> None:
    make_victim(new_uow)
    barrier = threading.Barrier(ATTEMPTS, timeout=30)
    hasher = MeetingHasher(barrier.wait)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        try:
            typed_at(new_uow(), hasher, f"wrong-guess-{i}")
        except AuthError as error:
            outcome = type(error).__name__
        except Exception as error:  # a lock timeout etc. must fail the test, not vanish
            outcome = f"ERROR {type(error).__name__}: {error}"
        else:
            outcome = "signed in"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(ATTEMPTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    user = stored(new_uow)
    assert user.failed_logins == ATTEMPTS
    assert user.locked_until == NOW + LOCKOUT
    assert sorted(outcomes) == sorted(
        ["InvalidCredentials"] * (MAX_FAILED_LOGINS - 1)
        + ["AccountLocked"] * (ATTEMPTS - MAX_FAILED_LOGINS + 1)
    )
    # Locked: even the right password is refused now.
    with pytest.raises(AccountLocked):
        typed_at(new_uow(), FAST, PASSWORD)


def test_a_right_password_does_not_undo_a_lock_set_while_it_was_checked(
    new_uow: Callable[[], SqlUnitOfWork],
) -> None:
    """Concurrent failures lock the account while a right password is being verified: the
    success must not write back the counter and lock it read before."""
    make_victim(new_uow)

    def lock_meanwhile() -> None:
        for i in range(MAX_FAILED_LOGINS):
            with pytest.raises(AuthError):
                services.login(new_uow(), FAST, ctx(), "victim", f"wrong-{i}")

    with pytest.raises(AccountLocked):
        services.login(new_uow(), MeetingHasher(lock_meanwhile), ctx(), "victim", PASSWORD)
    user = stored(new_uow)
    assert user.failed_logins == MAX_FAILED_LOGINS
    assert user.locked_until == NOW + LOCKOUT


def test_counting_starts_afresh_after_a_lock_expires(
    new_uow: Callable[[], SqlUnitOfWork],
) -> None:
    make_victim(new_uow)
    for i in range(MAX_FAILED_LOGINS):
        with pytest.raises(AuthError):
            services.login(new_uow(), FAST, ctx(), "victim", f"wrong-{i}")
    later = services.Context(lane_id="L01", clock=lambda: NOW + LOCKOUT + timedelta(seconds=1))
    with pytest.raises(InvalidCredentials):
        services.login(new_uow(), FAST, later, "victim", "wrong-again")
    user = stored(new_uow)
    assert user.failed_logins == 1
    assert user.locked_until is None
    assert services.login(new_uow(), FAST, later, "victim", PASSWORD).user_id == user.user_id
    assert stored(new_uow).failed_logins == 0
