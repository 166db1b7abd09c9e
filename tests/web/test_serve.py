"""``shouyin serve`` as a real process: it migrates a fresh data directory, serves the cashier
page and the API on loopback, and stops cleanly on Ctrl-C (SIGINT), also while a signed-in page
holds its live event stream open."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import httpx
import pytest

from shouyin.domain.users import Role
from shouyin.lane import services
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.uow import SqlUnitOfWork, make_session_factory
from tests.e2e.sim_helpers import ProcessGroup
from tests.web import HASHER


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_answers_on_loopback_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOUYIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHOUYIN_LANGUAGE", "en")
    monkeypatch.delenv("SHOUYIN_DATABASE_URL", raising=False)
    port = free_port()
    data = tmp_path / "data"
    engine = make_engine(f"sqlite:///{data / 'shouyin.db'}")
    upgrade(engine)
    ctx = services.Context(lane_id="L01")
    uow = SqlUnitOfWork(make_session_factory(engine))
    services.create_user(
        uow, HASHER, ctx, username="li", display_name="李", role=Role.CASHIER, password="472913"
    )
    engine.dispose()
    group = ProcessGroup(tmp_path)
    try:
        server = group.spawn("serve", ["serve", "--port", str(port), "--log-level", "warning"])

        async def main() -> None:
            assert f"http://127.0.0.1:{port}/" in await server.line(30)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(300):  # bounded: until uvicorn listens
                    try:
                        schema = await client.get("/api/openapi.json")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"serve never answered: {server.tail()}")
                assert schema.status_code == 200 and "/api/sales/{sale_id}/scan" in schema.text
                page = await client.get("/", follow_redirects=True)
                assert page.status_code == 200 and 'data-testid="scan-input"' in page.text
                assert (await client.get("/api/lane")).status_code == 401
                signed = await client.post(
                    "/api/session", json={"username": "li", "password": "472913"}
                )
                assert signed.status_code == 200
                async with client.stream("GET", "/api/events") as events:
                    lines = events.aiter_lines()
                    assert (await anext(lines)).startswith("id: 0")  # the page is listening
                    server.signal(signal.SIGINT)
                    assert await server.wait_exit(30) == 0, server.tail()
            assert "Stopped" in (await server.line(5))

        asyncio.run(main())
    finally:
        group.close()
    assert (tmp_path / "data" / "shouyin.db").exists()


def test_serve_tls_uses_the_store_certificate_and_secure_cookies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    from typer.testing import CliRunner

    from shouyin.cli import app

    monkeypatch.setenv("SHOUYIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHOUYIN_LANGUAGE", "en")
    monkeypatch.delenv("SHOUYIN_DATABASE_URL", raising=False)
    initialised = CliRunner().invoke(app, ["init", "--password", "admin-secret-22"])
    assert initialised.exit_code == 0, initialised.output
    trust = ssl.create_default_context(cafile=str(tmp_path / "data" / "keys" / "ca.crt"))
    port = free_port()
    group = ProcessGroup(tmp_path)
    try:
        server = group.spawn("serve", ["serve", "--tls", "--port", str(port)])

        async def main() -> None:
            assert f"https://127.0.0.1:{port}/" in await server.line(30)
            async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=trust) as c:
                for _ in range(300):  # bounded: until uvicorn listens
                    try:
                        await c.get("/api/openapi.json")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"serve never answered: {server.tail()}")
                signed = await c.post(
                    "/api/session", json={"username": "admin", "password": "admin-secret-22"}
                )
                assert signed.status_code == 200, signed.text
                cookie = signed.headers["set-cookie"].lower()
                assert "secure" in cookie and "httponly" in cookie
            with pytest.raises(httpx.ConnectError):  # a client without the store CA refuses it
                async with httpx.AsyncClient(verify=True) as stranger:
                    await stranger.get(f"https://127.0.0.1:{port}/")
            server.signal(signal.SIGINT)
            assert await server.wait_exit(30) == 0, server.tail()

        asyncio.run(main())
    finally:
        group.close()
