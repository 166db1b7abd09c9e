"""Pairing a terminal from the admin API, end to end over real loopback TLS: the admin
registers the terminal, opens a pairing (code + QR code), and the terminal side (the link
library's ``pair_terminal``, as the simulator runs it) pairs with what the QR code says; then the
admin revokes it. Both ways the server may be listening are covered: no link server yet (the
pairing binds the link port, as ``shouyin fleet pair`` does) and the running lane's link server
(pairing opened on it with ``allow_pairing``)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shouyin.config import Settings
from shouyin.fleet.pairing import PairingSession
from shouyin.link import Paired
from shouyin.link.aio import LinkEndpoint
from shouyin.link.keystore import KeyStore, TerminalKeyStore
from shouyin.link.pairing_qr import parse_payload
from shouyin.link.peer import peer_capabilities
from shouyin.link.server import pair_terminal
from shouyin.link.session import Connection
from shouyin.link.states import Role
from shouyin.link.transport import LinkAddress, connect_tls, pairing_ssl_context
from tests.fleet import TERMINAL_ID, init_store, keyring, make_settings, pair_as_terminal

from .test_admin_support import Staff, admin_app

OTHER = "10000002"
WAIT = 10.0


async def terminal_pairs(qr_text: str, directory: Path, terminal_id: str) -> Paired:
    """What the simulator does with ``--pair-qr``: dial the QR code's address, run the PAKE with
    its code, and install the certificate after checking the CA against its fingerprint."""
    payload = parse_payload(qr_text)
    address = LinkAddress.parse(f"tls://{payload.address}:{payload.port}")
    keystore = TerminalKeyStore(directory)
    transport = await connect_tls(address, pairing_ssl_context())
    paired = await pair_terminal(
        transport,
        terminal_id=terminal_id,
        capabilities=peer_capabilities(),
        code=payload.code,
        csr=keystore.make_csr(terminal_id),
        timeout=WAIT,
    )
    assert paired.certificate is not None and paired.ca_certificate is not None
    keystore.install(
        paired.certificate,
        paired.ca_certificate,
        datetime.now(UTC),
        expected_ca_fingerprint=payload.fingerprint,
    )
    return paired


def wait_for_phase(client: TestClient, terminal_id: str, phase: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        body: dict[str, Any] = client.get(f"/api/admin/terminals/{terminal_id}/pairing").json()
        if body["phase"] == phase or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def register(client: TestClient, terminal_id: str) -> None:
    response = client.post(
        "/api/admin/terminals",
        json={"terminal_id": terminal_id, "lane_id": "L01", "display_name": "收银台1 POS"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "registered"


def open_pairing(client: TestClient, terminal_id: str) -> dict[str, Any]:
    response = client.post(f"/api/admin/terminals/{terminal_id}/pairing")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["phase"] == "waiting" and len(body["code"]) == 8 and body["code"].isdigit()
    assert body["qr_text"].startswith("shouyin-pair:v1?")
    assert parse_payload(body["qr_text"]).code == body["code"]
    return body


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path)
    init_store(settings)
    return settings


@pytest.fixture
def staff(tmp_path: Path, settings: Settings) -> Iterator[Staff]:
    with admin_app(tmp_path, settings=settings) as staff:
        yield staff


def test_the_api_pairs_a_terminal_that_dials_the_qr_code(
    staff: Staff, settings: Settings, tmp_path: Path
) -> None:
    register(staff.admin, TERMINAL_ID)
    body = open_pairing(staff.admin, TERMINAL_ID)
    assert body["port"] == settings.link_port and body["address"] == "127.0.0.1"
    png = staff.admin.get(body["qr_png"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.headers["cache-control"] == "no-store"

    paired = asyncio.run(terminal_pairs(body["qr_text"], tmp_path / "poi", TERMINAL_ID))

    done = wait_for_phase(staff.admin, TERMINAL_ID, "paired")
    assert done["phase"] == "paired" and done["code"] is None and done["qr_png"] is None
    assert staff.admin.get(body["qr_png"]).status_code == 404  # the code is gone
    listed = {t["terminal_id"]: t for t in staff.admin.get("/api/admin/terminals").json()}
    assert listed[TERMINAL_ID]["state"] == "paired"
    assert listed[TERMINAL_ID]["key_id"] == paired.key.key_id
    assert listed[TERMINAL_ID]["certificate_serial"]
    assert keyring(settings).get(TERMINAL_ID) == paired.key


def test_a_wrong_code_does_not_pair_and_the_admin_can_cancel(staff: Staff, tmp_path: Path) -> None:
    register(staff.admin, TERMINAL_ID)
    body = open_pairing(staff.admin, TERMINAL_ID)
    wrong = "0" * 8 if body["code"] != "0" * 8 else "1" * 8
    qr = body["qr_text"].replace(f"c={body['code']}", f"c={wrong}")
    with pytest.raises(Exception, match=r"(?i)pair|reject|code"):
        asyncio.run(terminal_pairs(qr, tmp_path / "poi", TERMINAL_ID))
    assert staff.admin.get(f"/api/admin/terminals/{TERMINAL_ID}/pairing").json()["phase"] == (
        "waiting"
    )
    register(staff.admin, OTHER)
    busy = staff.admin.post(f"/api/admin/terminals/{OTHER}/pairing")
    assert busy.status_code == 409 and busy.json()["error"] == "pairing_busy"
    assert staff.admin.delete(f"/api/admin/terminals/{TERMINAL_ID}/pairing").status_code == 204
    assert wait_for_phase(staff.admin, TERMINAL_ID, "cancelled")["phase"] == "cancelled"
    terminals = staff.admin.get("/api/admin/terminals").json()
    assert [t["state"] for t in terminals] == ["registered", "registered"]


def test_pairing_an_unregistered_terminal_is_a_404(staff: Staff) -> None:
    response = staff.admin.post(f"/api/admin/terminals/{OTHER}/pairing")
    assert response.status_code == 404 and response.json()["error"] == "unknown_terminal"
    bad = staff.admin.post("/api/admin/terminals/bad!/pairing")
    assert bad.status_code in (404, 422)


def test_revoking_from_the_api_removes_the_key_and_certificate(
    staff: Staff, settings: Settings, tmp_path: Path
) -> None:
    register(staff.admin, TERMINAL_ID)
    body = open_pairing(staff.admin, TERMINAL_ID)
    asyncio.run(terminal_pairs(body["qr_text"], tmp_path / "poi", TERMINAL_ID))
    assert wait_for_phase(staff.admin, TERMINAL_ID, "paired")["phase"] == "paired"
    response = staff.admin.post(f"/api/admin/terminals/{TERMINAL_ID}/revoke")
    assert response.status_code == 200, response.text
    assert response.json()["certificate_revoked"] and response.json()["key_deleted"]
    assert keyring(settings).get(TERMINAL_ID) is None
    listed = staff.admin.get("/api/admin/terminals").json()
    assert listed[0]["state"] == "revoked"


def test_pairing_goes_through_the_running_link_server(settings: Settings, tmp_path: Path) -> None:
    """With a network terminal paired, the lane server listens on the link port; a second
    terminal is paired through that same server while the first stays paired."""
    from tests.fleet.test_pairing import register as fleet_register

    fleet_register(settings)

    async def pair_first() -> None:
        async with PairingSession(settings, TERMINAL_ID, keyring=keyring(settings)) as session:
            waiting = asyncio.create_task(session.wait(WAIT))
            await pair_as_terminal(session.invitation, tmp_path / "poi1")
            await waiting

    asyncio.run(pair_first())
    first_key = keyring(settings).get(TERMINAL_ID)
    with admin_app(tmp_path, settings=settings, terminals=None) as staff:
        links = staff.runtime.links
        assert links is not None and links.server is not None  # the lane server listens
        register(staff.admin, OTHER)
        body = open_pairing(staff.admin, OTHER)
        assert body["where"] == [str(a) for a in links.server.addresses]
        paired = asyncio.run(terminal_pairs(body["qr_text"], tmp_path / "poi2", OTHER))
        assert wait_for_phase(staff.admin, OTHER, "paired")["phase"] == "paired"
        assert keyring(settings).get(OTHER) == paired.key
        assert keyring(settings).get(TERMINAL_ID) == first_key
        assert KeyStore(settings.keys_dir).paired_terminal_ids() == {TERMINAL_ID, OTHER}
        assert links.server is not None and not links.server._pairing_open()  # closed again


async def terminal_online(directory: Path, port: int, key: Any, leave: threading.Event) -> None:
    """A paired terminal dials in with its certificate, logs in, and stays until ``leave``."""
    transport = await connect_tls(
        LinkAddress.parse(f"tls://127.0.0.1:{port}"),
        TerminalKeyStore(directory).ssl_client_context(None),
    )
    endpoint = LinkEndpoint(
        Connection(Role.POI, TERMINAL_ID, peer_capabilities(), long_term_key=key)
    )
    endpoint.attach(transport)
    try:
        await endpoint.wait_ready(WAIT)
        deadline = time.monotonic() + WAIT
        while not leave.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await endpoint.close()


def test_the_page_hears_a_terminal_come_online_over_sse(settings: Settings, tmp_path: Path) -> None:
    from tests.fleet.test_pairing import register as fleet_register

    fleet_register(settings)

    async def pair_first() -> None:
        async with PairingSession(settings, TERMINAL_ID, keyring=keyring(settings)) as session:
            waiting = asyncio.create_task(session.wait(WAIT))
            await pair_as_terminal(session.invitation, tmp_path / "poi1")
            await waiting

    asyncio.run(pair_first())
    key = keyring(settings).get(TERMINAL_ID)
    with (
        admin_app(tmp_path, settings=settings, terminals=None) as staff,
        ThreadPoolExecutor(2) as pool,
    ):
        bus = staff.runtime.bus
        stream = pool.submit(
            staff.supervisor.get, "/api/events", params={"lifetime": 3}
        )  # the test client returns the stream's whole text once its lifetime is over
        deadline = time.monotonic() + WAIT
        while bus.subscribers < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        leave = threading.Event()
        online = pool.submit(
            asyncio.run, terminal_online(tmp_path / "poi1", settings.link_port, key, leave)
        )
        text = stream.result(timeout=WAIT).text
        leave.set()
        online.result(timeout=WAIT)
    events = [
        json.loads(block.split("data: ", 1)[1])
        for block in text.split("\n\n")
        if "event: terminal.state" in block
    ]
    assert {"terminal_id": TERMINAL_ID, "connected": True, "state": "ready"} in events
