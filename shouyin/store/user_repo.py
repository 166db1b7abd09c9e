"""Staff accounts in SQL."""

from __future__ import annotations

import builtins
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

    def list(self) -> builtins.list[User]:
        """Every user, by user name."""
        rows = self._session.connection().execute(select(_U).order_by(_U.c.username)).mappings()
        return [_user_from(row) for row in rows]
