"""``shouyin update`` as an admin runs it: init, publish, rollout over TLS to a paired simulator.

The store is initialised (CA), the terminal registered and paired (a real ``shouyin terminal sim``
given the pairing QR code's text and the store's TUF root), then ``shouyin update rollout``
starts the lane's link server, waits for the terminal to dial in with its certificate, and tells
it to install the package, which it fetches from the repository served on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shouyin.config import Settings
from shouyin.fleet.cli import fleet_app
from shouyin.fleet.keys import TerminalKeyRing
from shouyin.fleet.pairing import PairingSession
from shouyin.fleet.updates import RepositoryServer, UpdateRepository
from shouyin.fleet.updates.cli import update_app, updates_dir
from shouyin.link.pairing_qr import encode_payload
from tests.e2e.sim_helpers import ProcessGroup, TerminalProcess
from tests.fleet import TERMINAL_ID, init_store, make_settings, settings_env

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = make_settings(tmp_path)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHOUYIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("SHOUYIN_KEY_PASSPHRASE", raising=False)
    return settings


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(tmp_path)
    yield group
    group.close()


def invoke(*args: str) -> str:
    result = runner.invoke(update_app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.mark.slow
def test_rollout_command_updates_a_paired_terminal_over_tls(
    settings: Settings, tmp_path: Path, processes: ProcessGroup
) -> None:
    init_store(settings)
    added = runner.invoke(fleet_app, ["add", TERMINAL_ID, "--name", "一号机"])
    assert added.exit_code == 0, added.output
    invoke("init")
    image = tmp_path / "sim-1.1.0.bin"
    image.write_bytes(b"SIM 1.1.0\n" * 1000)
    invoke("publish", str(image), "--version", "SIM-1.1.0")
    root = tmp_path / "root.json"
    root.write_bytes(UpdateRepository.load(updates_dir(settings)).root_json())
    terminal = TerminalProcess(
        processes,
        [
            *("--state-dir", str(tmp_path / "poi"), "--terminal-id", TERMINAL_ID),
            *("--update-root", str(root), "--log-level", "INFO"),
        ],
    )

    async def pair() -> None:
        ring = TerminalKeyRing(settings.keys_dir)
        async with PairingSession(settings, TERMINAL_ID, keyring=ring) as session:
            payload = session.invitation.payload
            assert payload is not None
            waiting = asyncio.create_task(session.wait(20.0))
            await terminal.start("--pair-qr", encode_payload(payload))
            await terminal.expect("paired", timeout=20.0)
            await waiting

    async def firmware() -> dict[str, object]:
        slots: dict[str, object] = (await terminal.status())["status"]["firmware"]
        return slots

    asyncio.run(asyncio.wait_for(pair(), 30.0))
    with RepositoryServer(updates_dir(settings) / "repository") as server:
        output = invoke(
            *("rollout", "--version", "SIM-1.1.0", "--percent", "100"),
            *("--repository-url", server.url, "--timeout", "30"),
        )
    assert "Rollout SIM-1.1.0: 1 updated, 0 failed, 0 waiting" in output
    assert asyncio.run(firmware())["b"] == "SIM-1.1.0"
    status = invoke("status")
    assert TERMINAL_ID in status and "installed" in status
