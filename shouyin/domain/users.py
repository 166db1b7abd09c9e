"""Staff accounts: roles and permissions, password hashing, login lockout and supervisor approval.

Permissions
    One table, :data:`PERMISSIONS`, maps each :class:`Role` to the :class:`Action` values it may
    perform. :func:`can` is the only way to ask it. A cashier may sell and correct their own open
    sale; voids of whole sales, refunds, no-sale drawer opens, price overrides, manual discounts
    and paid-in/paid-out need a supervisor (or admin); store administration needs an admin.

Approval
    Operations that need a supervisor take an :class:`Approval`: an immutable proof that a given
    approver, having just typed their password, allowed one action at one time. :func:`approve`
    is the only place that makes one, after checking the password and the approver's role.
    **Self-approval is allowed**: a supervisor working a lane approves their own void, as real
    stores do, because their own role already permits the action; the audit trail still records
    operator and approver separately. A cashier can never approve, not even someone else.
    An approval is valid for one kind of action and for :data:`APPROVAL_MAX_AGE` after it was given.

Passwords and PINs
    Supervisors and admins need a password of at least 8 characters (PCI DSS 8.3.6 asks for 12
    where the system supports it; 8 is its floor for legacy systems, and a store can raise
    :data:`MIN_PASSWORD_LENGTH`). Cashiers may instead use a 6-digit PIN, as is usual on checkout
    keypads, or a password of at least 8 characters; trivially guessable PINs (one repeated digit,
    straight ascending or descending runs) are refused. The PIN's weakness is offset by the lockout.

Lockout (PCI DSS 8.3.4)
    After :data:`MAX_FAILED_LOGINS` consecutive failures the account is locked for
    :data:`LOCKOUT` (30 minutes); while locked, the password is not even checked (no oracle). A
    success resets the counter; an admin may unlock early with :func:`unlock`.

Hashing is argon2id via ``argon2-cffi``; :class:`PasswordHasher` takes the cost parameters so that
tests can run with tiny costs.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shouyin.domain.carddata import contains_card_data
from shouyin.domain.errors import (
    AccountLocked,
    CardDataError,
    InvalidCredentials,
    PermissionDenied,
    WeakPassword,
)

__all__ = [
    "APPROVAL_MAX_AGE",
    "AUTH_FAILED",
    "LOCKOUT",
    "MAX_FAILED_LOGINS",
    "MIN_PASSWORD_LENGTH",
    "PERMISSIONS",
    "Action",
    "Approval",
    "PasswordHasher",
    "Role",
    "User",
    "approve",
    "authenticate",
    "authorise",
    "can",
    "check_password_rules",
    "check_sign_in",
    "failed_sign_in",
    "lock_deadline",
    "signed_in",
    "unlock",
]

logger = logging.getLogger(__name__)

MAX_FAILED_LOGINS: Final = 5
LOCKOUT: Final = timedelta(minutes=30)
MIN_PASSWORD_LENGTH: Final = 8
MAX_PASSWORD_LENGTH: Final = 128  # argon2 takes any length; a cap stops hashing megabytes
PIN_LENGTH: Final = 6
APPROVAL_MAX_AGE: Final = timedelta(minutes=5)
AUTH_FAILED: Final = "wrong user name or password"
"""The one message of every refused password check: unknown user, wrong password, disabled
account. It must never say which, or sign-in becomes an oracle for which user names exist."""


class Role(StrEnum):
    """What a member of staff is."""

    CASHIER = "cashier"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Action(StrEnum):
    """Everything the permission table controls."""

    SELL = "sell"
    VOID_LINE = "void_line"
    VOID_SALE = "void_sale"
    REFUND = "refund"
    NO_SALE = "no_sale"
    PRICE_OVERRIDE = "price_override"
    MANUAL_DISCOUNT = "manual_discount"
    PAID_IN_OUT = "paid_in_out"
    X_REPORT = "x_report"
    Z_REPORT = "z_report"
    UNLOCK_USER = "unlock_user"
    MANAGE_USERS = "manage_users"
    MANAGE_TERMINALS = "manage_terminals"
    SETTLEMENT = "settlement"
    RECONCILIATION = "reconciliation"
    VIEW_LOGS = "view_logs"


_CASHIER: Final = frozenset({Action.SELL, Action.VOID_LINE, Action.X_REPORT})
_SUPERVISOR: Final = _CASHIER | frozenset(
    {
        Action.VOID_SALE,
        Action.REFUND,
        Action.NO_SALE,
        Action.PRICE_OVERRIDE,
        Action.MANUAL_DISCOUNT,
        Action.PAID_IN_OUT,
        Action.Z_REPORT,
    }
)

PERMISSIONS: Final[dict[Role, frozenset[Action]]] = {
    Role.CASHIER: _CASHIER,
    Role.SUPERVISOR: _SUPERVISOR,
    # A store admin can do anything, selling included (small stores have one person for all).
    Role.ADMIN: frozenset(Action),
}


def can(role: Role, action: Action) -> bool:
    """Return whether ``role`` may perform ``action`` (the single permission check)."""
    return action in PERMISSIONS[role]


class PasswordHasher:
    """argon2id password hashing with configurable cost.

    The defaults are argon2-cffi's (RFC 9106 low-memory profile); tests pass
    ``time_cost=1, memory_cost=8`` to stay fast.
    """

    def __init__(
        self,
        time_cost: int = argon2.DEFAULT_TIME_COST,
        memory_cost: int = argon2.DEFAULT_MEMORY_COST,
        parallelism: int = argon2.DEFAULT_PARALLELISM,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )

    def hash(self, password: str) -> str:
        """Hash ``password`` with a fresh random salt.

        Returns:
            The PHC-format string (``$argon2id$v=19$m=...``) to store.
        """
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """Check ``password`` against ``stored_hash``.

        Returns:
            True on a match; False on a mismatch or an unreadable hash (logged: data corruption).
        """
        try:
            return self._hasher.verify(stored_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            logger.warning("unreadable or failing password hash; treated as a mismatch")
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Return whether ``stored_hash`` was made with other parameters than this hasher's."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True


def _trivial_pin(pin: str) -> bool:
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in itertools.pairwise(digits)}
    return steps in ({0}, {1}, {-1})


def check_password_rules(role: Role, password: str) -> None:
    """Check a new password or PIN against the rules for ``role`` (see the module docstring).

    Raises:
        WeakPassword: naming the rule broken (never echoing the password).
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password longer than {MAX_PASSWORD_LENGTH} characters")
    is_pin = len(password) == PIN_LENGTH and password.isascii() and password.isdigit()
    if role is Role.CASHIER and is_pin:
        if _trivial_pin(password):
            raise WeakPassword("PIN too easy to guess (repeated or consecutive digits)")
        return
    if len(password) < MIN_PASSWORD_LENGTH:
        kinds = "a 6-digit PIN or " if role is Role.CASHIER else ""
        raise WeakPassword(f"use {kinds}a password of at least {MIN_PASSWORD_LENGTH} characters")


@dataclass(slots=True)
class User:
    """A member of staff. Mutable: logins update the failure counter and the lock.

    Attributes (all persisted):
        user_id: stable identifier.
        username: login name, unique.
        display_name: shown on receipts and screens.
        role: cashier, supervisor or admin.
        password_hash: argon2id PHC string.
        failed_logins: consecutive failed logins since the last success or unlock.
        locked_until: the account refuses logins until then, if set.
        active: disabled accounts cannot log in or approve.
        last_login_at: time of the last successful authentication.
    """

    user_id: str
    username: str
    display_name: str
    role: Role
    password_hash: str
    failed_logins: int = 0
    locked_until: datetime | None = None
    active: bool = True
    last_login_at: datetime | None = None

    @classmethod
    def create(
        cls,
        *,
        user_id: str,
        username: str,
        display_name: str,
        role: Role,
        password: str,
        hasher: PasswordHasher,
    ) -> User:
        """Create an account, checking the password rules for its role.

        Raises:
            WeakPassword: if the password breaks the rules.
            CardDataError: if the name holds a card number (it would be stored and logged).
        """
        if contains_card_data(username) or contains_card_data(display_name):
            raise CardDataError("a user name must not be a card number")
        check_password_rules(role, password)
        return cls(user_id, username, display_name, role, hasher.hash(password))

    def set_password(self, password: str, hasher: PasswordHasher) -> None:
        """Replace the password (after checking the rules) and clear any lock.

        Raises:
            WeakPassword: if the password breaks the rules.
        """
        check_password_rules(self.role, password)
        self.password_hash = hasher.hash(password)
        self.failed_logins = 0
        self.locked_until = None

    def is_locked(self, now: datetime) -> bool:
        """Return whether the account is locked at ``now``."""
        return self.locked_until is not None and now < self.locked_until


def lock_deadline(failures: int, now: datetime) -> datetime | None:
    """Until when an account is locked after ``failures`` consecutive failures (this one
    included), or ``None`` while below :data:`MAX_FAILED_LOGINS`."""
    return now + LOCKOUT if failures >= MAX_FAILED_LOGINS else None


def check_sign_in(user: User, password: str, hasher: PasswordHasher, now: datetime) -> bool:
    """Whether ``password`` is right, after the checks that come before it; counts nothing.

    A lock that has expired is cleared in ``user`` (the counter starts afresh). The caller
    counts a wrong password with :func:`failed_sign_in` (or, against concurrent attempts, with
    an atomic counter in the store: see :func:`shouyin.lane.services.login`).

    Raises:
        AccountLocked: if the account is locked (the password is not even checked).
        InvalidCredentials: for a disabled account.
    """
    if user.is_locked(now):
        raise AccountLocked(f"account locked until {user.locked_until:%Y-%m-%d %H:%M}")
    if user.locked_until is not None:
        # The lock expired: start counting afresh.
        user.locked_until = None
        user.failed_logins = 0
    if not user.active:
        raise InvalidCredentials(AUTH_FAILED)
    return hasher.verify(user.password_hash, password)


def failed_sign_in(user: User, failures: int, now: datetime) -> AccountLocked | InvalidCredentials:
    """Record in ``user`` that it now has ``failures`` consecutive failures, locking it at the
    limit; return the error to raise (:class:`AccountLocked` when this failure locks it)."""
    user.failed_logins = failures
    logger.info("failed login %d for user %s", failures, user.user_id)
    until = lock_deadline(failures, now)
    if until is None:
        return InvalidCredentials(AUTH_FAILED)
    user.locked_until = until
    logger.warning("user %s locked after %d failures", user.user_id, failures)
    return AccountLocked(f"account locked until {until:%Y-%m-%d %H:%M}")


def signed_in(user: User, password: str, hasher: PasswordHasher, now: datetime) -> None:
    """Record a successful sign-in in ``user``: reset the counter, note the time and upgrade
    a hash made with outdated parameters."""
    user.failed_logins = 0
    user.last_login_at = now
    if hasher.needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)


def authenticate(user: User, password: str, hasher: PasswordHasher, now: datetime) -> None:
    """Check a login attempt, counting failures and locking the account after too many.

    On success the counter is reset and, if the hash uses outdated parameters, it is upgraded.
    This counts in ``user`` only: a caller that saves the whole user back loses failures made
    concurrently; :func:`shouyin.lane.services.login` counts atomically in the store instead.

    Args:
        user: the account (mutated: counter, lock, hash upgrade, last login).
        password: what was typed.
        hasher: the password hasher.
        now: the current time.

    Raises:
        AccountLocked: if the account is locked, or this failure locks it.
        InvalidCredentials: on a wrong password or a disabled account.
    """
    if not check_sign_in(user, password, hasher, now):
        raise failed_sign_in(user, user.failed_logins + 1, now)
    signed_in(user, password, hasher, now)


def unlock(user: User, by: User) -> None:
    """Unlock ``user`` early and reset their failure counter.

    Raises:
        PermissionDenied: unless ``by`` is an active user allowed to unlock accounts.
    """
    if not by.active or not can(by.role, Action.UNLOCK_USER):
        raise PermissionDenied(f"{by.username} may not unlock accounts")
    user.failed_logins = 0
    user.locked_until = None


@dataclass(frozen=True, slots=True)
class Approval:
    """Proof that an approver allowed one action at one time. Made only by :func:`authorise`
    (through :func:`approve`), after the approver's password was checked.

    Attributes:
        approver_id: the approver's user id (recorded on voids, refunds, no-sales).
        approver_role: the approver's role at the time.
        action: what was approved.
        approved_at: when.
    """

    approver_id: str
    approver_role: Role
    action: Action
    approved_at: datetime

    def check(self, action: Action, now: datetime | None = None) -> None:
        """Check that this approval covers ``action`` (and, given ``now``, is still fresh).

        Raises:
            PermissionDenied: for another action, a role that may not approve it, or a stale
                or future-dated approval.
        """
        if self.action is not action or not can(self.approver_role, action):
            raise PermissionDenied(f"approval for {self.action} does not cover {action}")
        if now is not None and not (self.approved_at <= now <= self.approved_at + APPROVAL_MAX_AGE):
            raise PermissionDenied(f"approval for {action} has expired; approve again")


def approve(
    approver: User, password: str, action: Action, hasher: PasswordHasher, now: datetime
) -> Approval:
    """Have ``approver`` approve ``action`` by typing their password.

    The password is checked first (failures count towards the lockout like any login), then the
    role. Self-approval is allowed: see the module docstring.

    Raises:
        AccountLocked, InvalidCredentials: as :func:`authenticate`.
        PermissionDenied: if the approver's role may not perform ``action`` (every cashier).
    """
    authenticate(approver, password, hasher, now)
    return authorise(approver, action, now)


def authorise(approver: User, action: Action, now: datetime) -> Approval:
    """The approval of ``action`` by ``approver``, whose password has just been checked (by
    :func:`approve`, or by a service that records the check in its store atomically).

    Raises:
        PermissionDenied: if the approver's role may not perform ``action`` (every cashier).
    """
    if not can(approver.role, action):
        raise PermissionDenied(f"{approver.username} ({approver.role}) may not approve {action}")
    return Approval(approver.user_id, approver.role, action, now)
