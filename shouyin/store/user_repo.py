"""Staff accounts in SQL."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shouyin.domain.users import Role, User
from shouyin.store.repositories import Conflict
from shouyin.store.tables import UserRow, table

__all__ = ["SqlUserRepository"]

_U = table(UserRow)


def _values(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "password_hash": user.password_hash,
        "failed_logins": user.failed_logins,
        "locked_until": user.locked_until,
        "active": user.active,
        "last_login_at": user.last_login_at,
    }


def _user_from(row: RowMapping) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        password_hash=row["password_hash"],
        failed_logins=row["failed_logins"],
        locked_until=row["locked_until"],
        active=bool(row["active"]),
        last_login_at=row["last_login_at"],
    )


class SqlUserRepository:
    """:class:`~shouyin.store.repositories.UserRepository` on a SQLAlchemy session.

    Args:
        session: the unit of work's session; this repository never commits.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def _one(self, where: ColumnElement[bool]) -> User | None:
        row = self._session.connection().execute(select(_U).where(where)).mappings().first()
        return None if row is None else _user_from(row)

    def get(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        return self._one(_U.c.user_id == user_id)

    def get_by_username(self, username: str) -> User | None:
        """The user with this login name, or None."""
        return self._one(_U.c.username == username)

    def add(self, user: User) -> None:
        """Insert a new user.

        Raises:
            Conflict: if the id or the user name is taken.
        """
        try:
            self._session.connection().execute(_U.insert(), _values(user))
        except IntegrityError as error:
            raise Conflict(f"user {user.user_id} / {user.username!r} already exists") from error

    def save(self, user: User) -> None:
        """Write back a changed user.

        Raises:
            LookupError: if the user was never added.
            Conflict: if the new user name is taken.
        """
        values = _values(user)
        del values["user_id"]
        try:
            result = self._session.connection().execute(
                update(_U).where(_U.c.user_id == user.user_id), values
            )
        except IntegrityError as error:
            raise Conflict(f"user name {user.username!r} is taken") from error
        if result.rowcount != 1:
            raise LookupError(f"no user {user.user_id} to save")

    def count_failed_login(self, user_id: str, now: datetime) -> int:
        """Count one more failed sign-in atomically and return the new count.

        One ``UPDATE ... SET failed_logins = failed_logins + 1 ... RETURNING`` (after clearing a
        lock that expired by ``now``, so that counting starts afresh), so that concurrent wrong
        passwords each count: the row lock taken by the update serialises them (PostgreSQL
        re-reads the row; SQLite takes its write lock). Whether the count locks the account is
        the domain's decision (:func:`~shouyin.domain.users.lock_deadline`), written with
        :meth:`lock_until`.

        Raises:
            LookupError: if there is no such user.
        """
        connection = self._session.connection()
        connection.execute(
            update(_U)
            .where(_U.c.user_id == user_id, _U.c.locked_until <= now)
            .values(failed_logins=0, locked_until=None)
        )
        count = connection.execute(
            update(_U)
            .where(_U.c.user_id == user_id)
            .values(failed_logins=_U.c.failed_logins + 1)
            .returning(_U.c.failed_logins)
        ).scalar_one_or_none()
        if count is None:
            raise LookupError(f"no user {user_id} to count a failure for")
        return int(count)

    def lock_until(self, user_id: str, until: datetime) -> None:
        """Lock the account until ``until`` (never shortening a lock already set)."""
        self._session.connection().execute(
            update(_U)
            .where(
                _U.c.user_id == user_id,
                (_U.c.locked_until.is_(None)) | (_U.c.locked_until < until),
            )
            .values(locked_until=until)
        )

    def record_sign_in(self, user: User, now: datetime) -> bool:
        """Write a successful sign-in (counter reset, last login, upgraded hash) unless the
        account was locked at ``now`` meanwhile (by concurrent failures); return whether it
        was written. Only these columns are written: a concurrent change of anything else
        (role, active, a lock) is not overwritten.
        """
        result = self._session.connection().execute(
            update(_U)
            .where(
                _U.c.user_id == user.user_id,
                _U.c.active.is_(True),
                (_U.c.locked_until.is_(None)) | (_U.c.locked_until <= now),
            )
            .values(
                failed_logins=0,
                locked_until=None,
                last_login_at=user.last_login_at,
                password_hash=user.password_hash,
            )
        )
        return bool(result.rowcount == 1)

    def list(self) -> builtins.list[User]:
        """Every user, by user name."""
        rows = self._session.connection().execute(select(_U).order_by(_U.c.username)).mappings()
        return [_user_from(row) for row in rows]
