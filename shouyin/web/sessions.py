"""Server-side web sessions in the ``web_sessions`` table (the storage half of
:mod:`shouyin.web.auth`).

A session is a random 256-bit token given to the client once (cookie or bearer); the table keeps
only its SHA-256, with the user, the lane, the CSRF token and three times: created, last seen,
expires. A session ends at ``expires_at`` (absolute lifetime) or after ``idle`` without use,
whichever comes first; ``last_seen_at`` is written at most once a minute so that a busy lane does
not write a row per scan.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from shouyin.store.tables import WebSessionRow

__all__ = ["SessionPolicy", "WebSession", "WebSessionStore", "hash_token"]

TOUCH_EVERY: Final = timedelta(minutes=1)


def hash_token(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long sessions live.

    Attributes:
        lifetime: absolute maximum (a cashier's long shift fits).
        idle: ended after this long without a request.
    """

    lifetime: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class WebSession:
    """One live session (never holds the token itself).

    Attributes:
        token_hash: the key of the row.
        user_id: who signed in.
        lane_id: the lane the session works on.
        csrf_token: what unsafe cookie requests must echo in ``X-CSRF-Token``.
        created_at, last_seen_at, expires_at: its times.
    """

    token_hash: str
    user_id: str
    lane_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def _session_from(row: WebSessionRow) -> WebSession:
    return WebSession(
        token_hash=row.token_hash,
        user_id=row.user_id,
        lane_id=row.lane_id,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )


class WebSessionStore:
    """Create, resolve and end sessions (each call is its own short transaction).

    Args:
        session_factory: the runtime's SQLAlchemy session factory.
        policy: lifetimes.
    """

    def __init__(
        self, session_factory: sessionmaker[Session], policy: SessionPolicy | None = None
    ) -> None:
        self._factory = session_factory
        self.policy = policy or SessionPolicy()

    def create(self, user_id: str, lane_id: str, now: datetime) -> tuple[str, WebSession]:
        """Start a session; return the token (give it to the client, once) and the session."""
        token = secrets.token_urlsafe(32)
        row = WebSessionRow(
            token_hash=hash_token(token),
            user_id=user_id,
            lane_id=lane_id,
            csrf_token=secrets.token_urlsafe(24),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.policy.lifetime,
        )
        with self._factory.begin() as db:
            db.add(row)
            session = _session_from(row)
        return token, session

    def resolve(self, token: str, now: datetime, *, touch: bool = True) -> WebSession | None:
        """The live session of ``token``, or ``None`` (unknown, expired, idle: an ended
        session's row is deleted). ``touch`` counts the request as activity (background polls
        of an unattended page do not, so that it still times out)."""
        key = hash_token(token)
        with self._factory.begin() as db:
            row = db.get(WebSessionRow, key)
            if row is None:
                return None
            if now >= row.expires_at or now - row.last_seen_at >= self.policy.idle:
                db.delete(row)
                return None
            if touch and now - row.last_seen_at >= TOUCH_EVERY:
                db.execute(
                    update(WebSessionRow)
                    .where(WebSessionRow.token_hash == key)
                    .values(last_seen_at=now)
                )
                row.last_seen_at = now
            return _session_from(row)

    def end(self, token_hash: str) -> None:
        """End one session (logout)."""
        with self._factory.begin() as db:
            db.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == token_hash))

    def end_for_user(self, user_id: str) -> int:
        """End every session of a user (disabled account, changed password); return how many."""
        with self._factory.begin() as db:
            result = db.execute(delete(WebSessionRow).where(WebSessionRow.user_id == user_id))
            return int(getattr(result, "rowcount", 0) or 0)

    def purge(self, now: datetime) -> int:
        """Delete expired and idle sessions; return how many."""
        idle_since = now - self.policy.idle
        with self._factory.begin() as db:
            result = db.execute(
                delete(WebSessionRow).where(
                    (WebSessionRow.expires_at <= now) | (WebSessionRow.last_seen_at <= idle_since)
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def for_user(self, user_id: str) -> list[WebSession]:
        """A user's sessions (admin view)."""
        with self._factory() as db:
            rows = db.scalars(select(WebSessionRow).where(WebSessionRow.user_id == user_id))
            return [_session_from(r) for r in rows]
