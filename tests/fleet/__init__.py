"""Tests of the terminal registry, the key ring, pairing and the ``shouyin fleet`` commands, and the
helpers they share with ``tests/e2e/test_pairing_cli.py``: settings in a temporary data
directory, an initialised store CA, and a terminal that pairs in-process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from shouyin.config import Settings
from shouyin.fleet.keys import TerminalKeyRing
from shouyin.fleet.pairing import PairingInvitation
from shouyin.link import Paired
from shouyin.link.keystore import KeyStore, TerminalKeyStore
from shouyin.link.peer import peer_capabilities
from shouyin.link.server import pair_terminal
from shouyin.link.transport import LinkAddress, connect_tls, pairing_ssl_context

T = TypeVar("T")
TERMINAL_ID = "10000001"
OTHER_ID = "10000002"
TIMEOUT = 5.0
"""Upper bound of any single wait in these tests."""
FAST_SCRYPT = 1 << 10
"""scrypt cost for passphrase tests (production uses 2**15)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the link port must be a real one: ge=1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_settings(tmp_path: Path, *, port: int | None = None, lane_id: str = "L01") -> Settings:
    """Settings for one test: data in ``tmp_path``, loopback only, a free link port."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=None,
        lane_id=lane_id,
        listen_addresses=["127.0.0.1"],
        allowed_networks=["127.0.0.0/8"],
        server_names=["localhost", "127.0.0.1"],
        link_port=port or free_port(),
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``SHOUYIN_*`` variables that give a child process the same settings."""
    return {
        "SHOUYIN_DATA_DIR": str(settings.data_dir),
        "SHOUYIN_LANE_ID": settings.lane_id,
        "SHOUYIN_LISTEN_ADDRESSES": '["127.0.0.1"]',
        "SHOUYIN_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "SHOUYIN_SERVER_NAMES": '["localhost", "127.0.0.1"]',
        "SHOUYIN_LINK_PORT": str(settings.link_port),
        "SHOUYIN_LANGUAGE": "en",
    }


def init_store(settings: Settings) -> KeyStore:
    """What ``shouyin init`` does for keys: the store CA and the server certificate."""
    keystore = KeyStore(settings.keys_dir)
    keystore.init(settings.store_name, settings.server_names, datetime.now(UTC))
    return keystore


def keyring(settings: Settings, passphrase: bytes | None = None) -> TerminalKeyRing:
    """The key ring in the settings' key store directory."""
    return TerminalKeyRing(settings.keys_dir, passphrase=passphrase, scrypt_n=FAST_SCRYPT)


async def pair_as_terminal(
    invitation: PairingInvitation,
    directory: Path,
    *,
    terminal_id: str = TERMINAL_ID,
    code: str | None = None,
    with_csr: bool = True,
) -> tuple[TerminalKeyStore, Paired]:
    """Pair over TLS as the terminal would, with the code the admin was shown, and install the
    certificate it brings back (checking the CA against the QR code's fingerprint)."""
    terminal = TerminalKeyStore(directory)
    address = LinkAddress.parse(invitation.where[0])
    transport = await connect_tls(address, pairing_ssl_context())
    paired = await pair_terminal(
        transport,
        terminal_id=terminal_id,
        capabilities=peer_capabilities(),
        code=code or invitation.code.digits,
        csr=terminal.make_csr(terminal_id) if with_csr else None,
        timeout=TIMEOUT,
    )
    if paired.certificate is not None and paired.ca_certificate is not None:
        fingerprint = invitation.payload.fingerprint if invitation.payload else None
        terminal.install(
            paired.certificate,
            paired.ca_certificate,
            datetime.now(UTC),
            expected_ca_fingerprint=fingerprint,
        )
    return terminal, paired


def run(coroutine: Coroutine[Any, Any, T], limit: float = 20.0) -> T:
    """Run a test scenario with an overall bound."""
    return asyncio.run(asyncio.wait_for(coroutine, limit))
