"""Sign-in and approval answers that reveal nothing, and event streams that end with the session.

* A refused sign-in or approval answers the same bytes whether the user name exists or not (the
  ``detail`` used to differ: "wrong ..." for an unknown user, "invalid ..." for a known one).
* An open ``GET /api/events`` stream ends once its session is gone (signed out, account locked)
  and sends nothing queued after that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from shouyin.domain.users import LOCKOUT
from shouyin.web.app import create_app
from shouyin.web.events import WebEvent
from shouyin.web.runtime import LaneRuntime
from tests.web import CASHIER, LANE, SUPERVISOR, AsyncLane, login, make_runtime


@pytest.fixture
def runtime(lane_url: str) -> LaneRuntime:
    return make_runtime(lane_url)


@pytest.fixture
def client(runtime: LaneRuntime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


def disable(runtime: LaneRuntime, username: str) -> None:
    uow = runtime.uow()
    with uow:
        user = uow.users.get_by_username(username)
        assert user is not None
        user.active = False
        uow.users.save(user)
        uow.commit()


def lock(runtime: LaneRuntime, username: str) -> None:
    uow = runtime.uow()
    with uow:
        user = uow.users.get_by_username(username)
        assert user is not None
        user.locked_until = datetime.now(UTC) + LOCKOUT
        uow.users.save(user)
        uow.commit()


def answer(response: httpx.Response) -> tuple[int, bytes]:
    return response.status_code, response.content


def test_a_refused_sign_in_is_the_same_for_unknown_known_and_disabled_users(
    client: TestClient, runtime: LaneRuntime
) -> None:
    def sign_in(username: str) -> tuple[int, bytes]:
        return answer(
            client.post("/api/session", json={"username": username, "password": "x123456"})
        )

    unknown = sign_in("nobody")
    wrong = sign_in(CASHIER[0])
    disable(runtime, SUPERVISOR[0])
    disabled = sign_in(SUPERVISOR[0])
    assert unknown == wrong == disabled
    assert unknown[0] == 401
    assert b"detail" not in unknown[1]


def test_a_refused_approval_is_the_same_for_unknown_and_known_approvers(
    client: TestClient,
) -> None:
    login(client, CASHIER)

    def approve(username: str) -> tuple[int, bytes]:
        body = {"approver": {"username": username, "password": "not-it-123"}, "reason": "change"}
        return answer(client.post("/api/drawer/no-sale", json=body))

    unknown = approve("nobody")
    wrong = approve(SUPERVISOR[0])
    assert unknown == wrong
    assert unknown[0] == 401
    assert b"detail" not in unknown[1]


def test_a_locked_account_is_told_so_without_details(client: TestClient) -> None:
    for _ in range(5):
        client.post("/api/session", json={"username": CASHIER[0], "password": "000001"})
    response = client.post("/api/session", json={"username": CASHIER[0], "password": CASHIER[1]})
    assert response.status_code == 423
    assert response.json()["error"] == "account_locked"
    assert "detail" not in response.json()  # it named the lock's end


async def _stream_until_session_gone(runtime: LaneRuntime, end_session: str) -> str:
    async with AsyncLane(runtime) as client:
        info = (
            await client.post("/api/session", json={"username": CASHIER[0], "password": CASHIER[1]})
        ).json()
        client.headers["X-CSRF-Token"] = info["csrf_token"]
        stream = asyncio.create_task(client.get("/api/events", params={"lifetime": 60}))
        for _ in range(100_000):  # let the stream subscribe (yields to the loop, no timer)
            if runtime.bus.subscribers or stream.done():
                break
            await asyncio.sleep(0)
        assert runtime.bus.subscribers == 1
        if end_session == "logout":
            assert (await client.delete("/api/session")).status_code == 204
        else:
            await runtime.run_blocking(lambda: lock(runtime, CASHIER[0]))
        runtime.bus.publish(WebEvent("sale.completed", {"after": "gone"}, lane_id=LANE))
        # Ended by the session check, long before its 60 s lifetime.
        response = await asyncio.wait_for(stream, timeout=20)
        assert runtime.bus.subscribers == 0
        return response.text


@pytest.mark.parametrize("end_session", ["logout", "locked"])
def test_an_open_event_stream_ends_with_its_session(runtime: LaneRuntime, end_session: str) -> None:
    text = asyncio.run(_stream_until_session_gone(runtime, end_session))
    assert "event: hello" in text
    assert "gone" not in text
