"""``shouyin fleet pair`` as an admin runs it, against a terminal in another process.

The pair command runs as its own process (``python -m shouyin.fleet.cli``, the sub-app the main
CLI mounts as ``shouyin fleet``) with a temporary data directory and a free loopback port; the
terminal is ``python -m shouyin.link.peer``. It pairs with the code the command prints, then logs
in over mutual TLS with its new certificate to the lane's link server (built from the same
settings and key ring); after ``shouyin fleet revoke`` its next connection is refused. Three
wrong codes burn the code and the command fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner

from shouyin.config import Settings
from shouyin.fleet.cli import fleet_app
from shouyin.fleet.keys import TerminalKeyRing
from shouyin.fleet.pairing import build_link_server
from shouyin.fleet.registry import TerminalState, get_terminal
from shouyin.link import DisplayRequest, PairingFailed, Result
from shouyin.link.keystore import KeyStore
from shouyin.link.peer import peer_capabilities
from shouyin.link.server import pair_terminal
from shouyin.link.transport import LinkAddress, connect_tls, pairing_ssl_context
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from tests.fleet import TERMINAL_ID, init_store, make_settings, settings_env

from . import FAST, TIMEOUT, PeerProcess

T = TypeVar("T")
CODE_LINE = re.compile(r"Pairing code: (\d{4}) (\d{4})")
FINGERPRINT_LINE = re.compile(r"Store CA fingerprint: ([0-9a-f]{64})")
PEER_TIMERS = ("--dead-after", "2.0")
REVOKED = "certificate refused (revoked)"

runner = CliRunner()


def run(coroutine: Coroutine[Any, Any, T], limit: float = 30.0) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, limit))


class PairCommand:
    """``python -m shouyin.fleet.cli pair ...`` in its own process, its stdout followed by line."""

    def __init__(self, settings: Settings, *args: str) -> None:
        self.env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
        self.env.pop("SHOUYIN_DATABASE_URL", None)
        self.env.pop("SHOUYIN_KEY_PASSPHRASE", None)
        self.args = args
        self.process: asyncio.subprocess.Process | None = None
        self.output: list[str] = []

    async def start(self) -> PairCommand:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shouyin.fleet.cli",
            "pair",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
        )
        return self

    async def expect(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """Read lines until one matches ``pattern``."""
        process = self.process
        assert process is not None and process.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            while True:
                raw = await process.stdout.readline()
                if not raw:
                    raise AssertionError("pair exited early:\n" + "".join(self.output))
                line = raw.decode("utf-8", errors="replace")
                self.output.append(line)
                if match := pattern.search(line):
                    return match

    async def finish(self) -> tuple[int, str]:
        """Wait for the command to exit; its status and everything it printed."""
        process = self.process
        assert process is not None and process.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            rest = await process.stdout.read()
            status = await process.wait()
        self.output.append(rest.decode("utf-8", errors="replace"))
        return status, "".join(self.output)

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def registered(settings: Settings) -> Settings:
    """The store CA exists (``shouyin init``) and the terminal is registered (``fleet add``)."""
    init_store(settings)
    env = settings_env(settings)
    result = runner.invoke(fleet_app, ["add", TERMINAL_ID, "--name", "一号机"], env=env)
    assert result.exit_code == 0, result.output
    return settings


def terminal_state(settings: Settings) -> TerminalState:
    uow = SqlTerminalUnitOfWork.open(settings.resolved_database_url())
    try:
        return get_terminal(uow, TERMINAL_ID).state
    finally:
        uow.dispose()


async def wait_for_refusal(refusals: Any, reason: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while refusals[reason] < 1:
            await asyncio.sleep(0.02)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("SHOUYIN_KEY_PASSPHRASE", raising=False)
    return registered(make_settings(tmp_path))


def test_pair_command_pairs_a_terminal_that_then_logs_in_until_it_is_revoked(
    settings: Settings, tmp_path: Path
) -> None:
    qr_png = tmp_path / "pair.png"
    poi = tmp_path / "poi"
    terminal = [
        "--connect",
        f"tls://127.0.0.1:{settings.link_port}",
        "--terminal-id",
        TERMINAL_ID,
        "--keystore",
        str(poi),
        "--key-file",
        str(poi / "link.key"),
        *PEER_TIMERS,
    ]

    async def scenario() -> None:
        command = await PairCommand(
            settings, TERMINAL_ID, "--timeout", "20", "--qr-png", str(qr_png)
        ).start()
        try:
            code = "".join((await command.expect(CODE_LINE)).groups())
            fingerprint = (await command.expect(FINGERPRINT_LINE)).group(1)
            assert fingerprint == KeyStore(settings.keys_dir).ca_fingerprint()
            pairing = [*terminal, "--pair", code, "--ca-fingerprint", fingerprint]
            async with PeerProcess(pairing, tmp_path / "peer-pair.log") as peer:
                paired = await peer.expect("paired")
                status, printed = await command.finish()
        finally:
            await command.stop()
        assert status == 0, printed
        assert f"Terminal {TERMINAL_ID} paired: key {paired['key_id']}" in printed
        assert code not in printed.replace(f"{code[:4]} {code[4:]}", "")  # shown grouped only
        assert qr_png.read_bytes().startswith(b"\x89PNG")
        assert stat.S_IMODE(qr_png.stat().st_mode) == 0o600
        assert terminal_state(settings) is TerminalState.PAIRED

        # The lane's link server, from the same settings and key ring: the terminal (restarted,
        # no more code) logs in over mutual TLS with the certificate pairing gave it.
        keys = TerminalKeyRing(settings.keys_dir)
        server = build_link_server(
            settings, keys=keys, keystore=KeyStore(settings.keys_dir), config=FAST
        )
        async with server, PeerProcess(terminal, tmp_path / "peer-login.log") as peer:
            await peer.expect("logged_in")
            ecr = await server.wait_ready(TERMINAL_ID, TIMEOUT)
            info = ecr.transport_info
            assert info is not None and info.tls_version == "TLSv1.3"
            assert info.peer_certificate is not None
            request = DisplayRequest(service_id=ecr.new_service_id(), lines=("欢迎光临",))
            assert (await ecr.request(request, timeout=TIMEOUT)).result is Result.SUCCESS

            revoked = runner.invoke(fleet_app, ["revoke", TERMINAL_ID], env=settings_env(settings))
            assert revoked.exit_code == 0, revoked.output
            assert "certificate revoked, key deleted" in revoked.output
            server.disconnect(TERMINAL_ID, "revoked")  # what the lane service does on revocation
            await wait_for_refusal(server.refusals, REVOKED)  # its next connection
            assert not ecr.is_ready
        assert keys.get(TERMINAL_ID) is None
        assert terminal_state(settings) is TerminalState.REVOKED

    run(scenario())


def test_three_wrong_codes_burn_the_code_and_the_pair_command_fails(
    settings: Settings, tmp_path: Path
) -> None:
    async def attempt(code: str) -> None:
        transport = await connect_tls(
            LinkAddress.parse(f"tls://127.0.0.1:{settings.link_port}"), pairing_ssl_context()
        )
        await pair_terminal(
            transport,
            terminal_id=TERMINAL_ID,
            capabilities=peer_capabilities(),
            code=code,
            timeout=TIMEOUT,
        )

    async def scenario() -> None:
        command = await PairCommand(settings, TERMINAL_ID, "--timeout", "20").start()
        try:
            code = "".join((await command.expect(CODE_LINE)).groups())
            wrong = f"{(int(code) + 1) % 100_000_000:08d}"
            for _ in range(3):
                with pytest.raises(PairingFailed):
                    await attempt(wrong)
            status, printed = await command.finish()  # at once, not after the 20 s
        finally:
            await command.stop()
        assert status == 1, printed
        assert "Three wrong codes burnt the pairing code" in printed

    run(scenario())
    assert terminal_state(settings) is TerminalState.REGISTERED
    assert TerminalKeyRing(settings.keys_dir).get(TERMINAL_ID) is None
    assert KeyStore(settings.keys_dir).paired_terminal_ids() == frozenset()
