"""Helpers shared by the admin API tests (no tests here): a lane server on a temporary SQLite
database with an admin, a supervisor and a cashier, signed in through the real session API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from shouyin.config import Settings
from shouyin.domain.users import PasswordHasher, Role
from shouyin.lane import services
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.payment_repo import SqlPaymentUnitOfWork
from shouyin.store.uow import make_session_factory
from shouyin.web.app import create_app
from shouyin.web.auth import CSRF_HEADER
from shouyin.web.runtime import LaneRuntime
from tests.fleet import make_settings

HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {
    "boss": "admin-secret-1",
    "wang": "supervisor-secret-1",
    "li": "472913",
}
ROLES = {"boss": Role.ADMIN, "wang": Role.SUPERVISOR, "li": Role.CASHIER}


@dataclass
class Staff:
    """Signed-in clients of one app, by role."""

    admin: TestClient
    supervisor: TestClient
    cashier: TestClient
    runtime: LaneRuntime
    settings: Settings
    user_ids: dict[str, str]


def create_staff(settings: Settings) -> dict[str, str]:
    """The three accounts in the settings' database (migrated first); their ids by name."""
    engine = make_engine(settings.resolved_database_url())
    try:
        upgrade(engine)
        uow = SqlPaymentUnitOfWork(make_session_factory(engine))
        ctx = services.Context(lane_id=settings.lane_id)
        ids = {}
        for name, role in ROLES.items():
            user = services.create_user(
                uow,
                HASHER,
                ctx,
                username=name,
                display_name=name.title(),
                role=role,
                password=PASSWORDS[name],
            )
            ids[name] = user.user_id
        return ids
    finally:
        engine.dispose()


def sign_in(client: TestClient, username: str) -> TestClient:
    """Sign ``client`` in with the cookie, and send the CSRF header on every request."""
    response = client.post(
        "/api/session", json={"username": username, "password": PASSWORDS[username]}
    )
    assert response.status_code == 200, response.text
    client.headers[CSRF_HEADER] = response.json()["csrf_token"]
    return client


@contextmanager
def admin_app(
    tmp_path: Path, *, settings: Settings | None = None, **runtime_args: Any
) -> Iterator[Staff]:
    """A started app with an admin, a supervisor and a cashier signed in (three clients)."""
    settings = settings or make_settings(tmp_path)
    ids = create_staff(settings)
    runtime_args.setdefault("terminals", {})
    runtime = LaneRuntime(settings, hasher=HASHER, **runtime_args)
    app = create_app(runtime)
    with TestClient(app) as admin:
        supervisor = TestClient(app)
        cashier = TestClient(app)
        yield Staff(
            admin=sign_in(admin, "boss"),
            supervisor=sign_in(supervisor, "wang"),
            cashier=sign_in(cashier, "li"),
            runtime=runtime,
            settings=settings,
            user_ids=ids,
        )
