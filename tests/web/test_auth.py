"""Signing in, sessions, CSRF, roles and lanes, over HTTP against a real app and database."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from shouyin.web.app import create_app
from shouyin.web.auth import COOKIE_NAME
from shouyin.web.runtime import LaneRuntime
from tests.web import (
    ADMIN,
    CASHIER,
    OTHER_CASHIER,
    OTHER_LANE,
    SUPERVISOR,
    login,
    make_runtime,
    open_sale,
)


@pytest.fixture
def runtime(lane_url: str) -> LaneRuntime:
    return make_runtime(lane_url)


@pytest.fixture
def client(runtime: LaneRuntime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


def test_login_sets_an_httponly_strict_cookie_and_returns_the_csrf_token(
    client: TestClient,
) -> None:
    response = client.post("/api/session", json={"username": "li", "password": "472913"})
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == "cashier" and body["lane_id"] == "L01"
    assert body["csrf_token"] and body["token"]
    cookie = response.headers["set-cookie"]
    assert f"{COOKIE_NAME}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "sell" in body["permissions"] and "manage_users" not in body["permissions"]
    assert client.get("/api/session").json()["csrf_token"] == body["csrf_token"]


def test_the_session_token_is_stored_only_as_a_hash(
    client: TestClient, runtime: LaneRuntime
) -> None:
    token = client.post("/api/session", json={"username": "li", "password": "472913"}).json()[
        "token"
    ]
    with runtime.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM web_sessions").fetchall()
    assert rows and all(token not in str(row) for row in rows)


def test_wrong_password_is_401_in_both_languages_and_logged_without_the_password(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        response = client.post("/api/session", json={"username": "li", "password": "999999x"})
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_credentials"
    assert body["message"] == "用户名或密码错误" and body["message_en"]
    assert "'li'" in caplog.text and "999999x" not in caplog.text


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(client: TestClient) -> None:
    for _ in range(5):
        client.post("/api/session", json={"username": "li", "password": "000001"})
    response = client.post("/api/session", json={"username": "li", "password": "472913"})
    assert response.status_code == 423
    assert response.json()["error"] == "account_locked"


def test_without_a_session_the_api_answers_401(client: TestClient) -> None:
    response = client.get("/api/lane")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_a_cookie_request_that_changes_something_needs_the_csrf_header(client: TestClient) -> None:
    login(client, CASHIER)
    del client.headers["X-CSRF-Token"]
    response = client.post("/api/shift", json={"opening_float_fen": 10_000})
    assert response.status_code == 403
    assert response.json()["error"] == "csrf"
    client.headers["X-CSRF-Token"] = "wrong"
    assert client.post("/api/shift", json={"opening_float_fen": 10_000}).status_code == 403
    assert client.get("/api/lane").json()["shift"] is None  # nothing happened


def test_a_bearer_request_needs_no_csrf_header(client: TestClient) -> None:
    token = client.post("/api/session", json={"username": "li", "password": "472913"}).json()[
        "token"
    ]
    client.cookies.clear()
    response = client.post(
        "/api/shift",
        json={"opening_float_fen": 10_000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201


def test_logout_ends_the_session(client: TestClient) -> None:
    login(client, CASHIER)
    assert client.delete("/api/session").status_code == 204
    assert client.get("/api/session").status_code == 401


def test_an_idle_session_expires(db_url: str) -> None:
    now = [datetime(2026, 11, 29, 8, 0, tzinfo=UTC)]
    runtime = make_runtime(db_url, clock=lambda: now[0])
    with TestClient(create_app(runtime)) as client:
        login(client, CASHIER)
        now[0] += timedelta(minutes=29)
        assert client.get("/api/session").status_code == 200
        now[0] += timedelta(minutes=31)
        assert client.get("/api/session").status_code == 401


def test_the_pages_own_status_polls_do_not_keep_an_idle_session_alive(lane_url: str) -> None:
    now = [datetime(2026, 11, 29, 8, 0, tzinfo=UTC)]
    runtime = make_runtime(lane_url, clock=lambda: now[0])
    with TestClient(create_app(runtime)) as client:
        login(client, CASHIER)
        statuses = []
        for _ in range(4):
            now[0] += timedelta(minutes=10)
            statuses.append(client.get("/api/lane/terminal").status_code)
        assert statuses == [200, 200, 401, 401]  # idle since sign-in: ends at 30 minutes


def test_a_cashier_cannot_reach_the_admin_api(client: TestClient) -> None:
    login(client, CASHIER)
    schema = client.get("/api/openapi.json").json()
    admin_gets = [
        path
        for path, methods in schema["paths"].items()
        if path.startswith("/api/admin") and "get" in methods and "{" not in path
    ]
    for path in admin_gets:
        assert client.get(path).status_code == 403, path


def test_a_cashier_cannot_see_another_lanes_sale(client: TestClient) -> None:
    login(client, OTHER_CASHIER, lane_id=OTHER_LANE)
    other_sale = open_sale(client)
    client.delete("/api/session")
    login(client, CASHIER)
    response = client.get(f"/api/sales/{other_sale}")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_sale"
    scan = client.post(f"/api/sales/{other_sale}/scan", json={"code": "6901234567892"})
    assert scan.status_code == 404


def test_an_unknown_lane_is_refused_at_login(client: TestClient) -> None:
    response = client.post(
        "/api/session", json={"username": "li", "password": "472913", "lane_id": "L99"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize("who", [SUPERVISOR, ADMIN])
def test_supervisors_and_admins_may_sell(client: TestClient, who: tuple[str, str]) -> None:
    login(client, who)
    sale_id = open_sale(client)
    assert (
        client.post(f"/api/sales/{sale_id}/scan", json={"code": "6901234567892"}).status_code == 200
    )
