"""Pairing, re-pairing and revoking, in-process: the terminal side is the link library's own
``pair_terminal`` over real loopback TLS (and a pty serial cable)."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shouyin.config import Settings
from shouyin.fleet.keys import TerminalKeyRing, WrongPassphrase
from shouyin.fleet.pairing import (
    ListenFailed,
    PairingFailure,
    PairingInvitation,
    PairingNotCompleted,
    PairingResult,
    PairingSession,
    StoreNotInitialised,
    WrongLane,
    listen_urls,
    pair_terminal_interactively,
    qr_address,
    revoke,
)
from shouyin.fleet.registry import (
    Terminal,
    TerminalState,
    UnknownTerminal,
    get_terminal,
    register_terminal,
)
from shouyin.link import LinkConfig, Paired, PairingFailed
from shouyin.link.aio import LinkEndpoint
from shouyin.link.keystore import KeyStore, TerminalKeyStore
from shouyin.link.peer import peer_capabilities
from shouyin.link.pki import certificate_from_pem
from shouyin.link.session import Connection
from shouyin.link.states import Role
from shouyin.link.transport import LinkAddress, PtyCable, connect_tls, open_serial
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork

from . import (
    OTHER_ID,
    TERMINAL_ID,
    TIMEOUT,
    init_store,
    keyring,
    make_settings,
    pair_as_terminal,
    run,
)

FAST = LinkConfig(pairing_timeout=3.0, login_timeout=2.0)
NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def registry(settings: Settings) -> SqlTerminalUnitOfWork:
    return SqlTerminalUnitOfWork.open(settings.resolved_database_url())


def register(settings: Settings, terminal_id: str = TERMINAL_ID, **fields: str) -> Terminal:
    uow = registry(settings)
    try:
        lane = fields.pop("lane_id", settings.lane_id)
        return register_terminal(uow, terminal_id, lane_id=lane, now=NOW, **fields)
    finally:
        uow.dispose()


def stored(settings: Settings, terminal_id: str = TERMINAL_ID) -> Terminal:
    uow = registry(settings)
    try:
        return get_terminal(uow, terminal_id)
    finally:
        uow.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path)
    init_store(settings)
    register(settings)
    return settings


async def pair_over_tls(
    settings: Settings, directory: Path, *, terminal_id: str = TERMINAL_ID, with_csr: bool = True
) -> tuple[PairingResult, Paired]:
    """Run one pairing session and pair with it as the terminal would."""
    async with PairingSession(settings, TERMINAL_ID, keyring=keyring(settings), config=FAST) as s:
        waiting = asyncio.create_task(s.wait(TIMEOUT))
        _, paired = await pair_as_terminal(
            s.invitation, directory, terminal_id=terminal_id, with_csr=with_csr
        )
        return await waiting, paired


# -- success ---------------------------------------------------------------------------------------


def test_pairing_keeps_the_key_sealed_and_records_the_certificate(
    settings: Settings, tmp_path: Path
) -> None:
    result, paired = run(pair_over_tls(settings, tmp_path / "poi"))
    assert paired.certificate is not None
    certificate = certificate_from_pem(paired.certificate)
    terminal = result.terminal
    assert terminal.state is TerminalState.PAIRED and not result.re_paired
    assert terminal.key_id == paired.key.key_id
    assert terminal.certificate_serial == f"{certificate.serial_number:x}"
    assert terminal.certificate_expires_at == certificate.not_valid_after_utc
    assert stored(settings) == terminal
    assert keyring(settings).get(TERMINAL_ID) == paired.key
    assert paired.key.ecr_id == settings.lane_id  # the identity the lane's Login will present
    assert KeyStore(settings.keys_dir).paired_terminal_ids() == {TERMINAL_ID}


def test_the_invitation_carries_address_port_code_and_ca_fingerprint(settings: Settings) -> None:
    async def scenario() -> None:
        async with PairingSession(settings, TERMINAL_ID, keyring=keyring(settings)) as session:
            invitation = session.invitation
            payload = invitation.payload
            assert payload is not None
            assert payload.address == "127.0.0.1" and payload.port == settings.link_port
            assert payload.code == invitation.code.digits and len(payload.code) == 8
            assert payload.fingerprint == KeyStore(settings.keys_dir).ca_fingerprint()
            assert invitation.where == (f"tls://127.0.0.1:{settings.link_port}",)
            assert invitation.code.digits not in repr(invitation)

    run(scenario())


def test_re_pairing_replaces_the_key_and_revokes_the_old_certificate(
    settings: Settings, tmp_path: Path
) -> None:
    first, _ = run(pair_over_tls(settings, tmp_path / "poi"))
    second, paired = run(pair_over_tls(settings, tmp_path / "poi2"))
    assert second.re_paired
    assert second.previous_key_id == first.terminal.key_id
    assert second.previous_certificate_serial == first.terminal.certificate_serial
    assert second.terminal.certificate_serial != first.terminal.certificate_serial
    assert keyring(settings).get(TERMINAL_ID) == paired.key
    revoked = KeyStore(settings.keys_dir).revocations().serials
    assert int(str(first.terminal.certificate_serial), 16) in revoked
    assert int(str(second.terminal.certificate_serial), 16) not in revoked


def test_redialling_paired_terminals_do_not_lock_their_address_out_of_re_pairing(
    settings: Settings, tmp_path: Path
) -> None:
    run(pair_over_tls(settings, tmp_path / "poi"))
    terminal = TerminalKeyStore(tmp_path / "poi")
    policy_failures = settings.firewall_policy().max_failures

    async def scenario() -> Paired:
        async with PairingSession(settings, TERMINAL_ID, keyring=keyring(settings)) as session:
            waiting = asyncio.create_task(session.wait(TIMEOUT))
            address = LinkAddress.parse(session.invitation.where[0])
            for _ in range(policy_failures + 1):  # the terminal's own redial loop, refused
                transport = await connect_tls(address, terminal.ssl_client_context(None))
                assert await asyncio.wait_for(transport.read(), TIMEOUT) == b""
            _, paired = await pair_as_terminal(session.invitation, tmp_path / "poi2")
            await waiting
            return paired

    paired = run(scenario())
    assert keyring(settings).get(TERMINAL_ID) == paired.key


def test_a_revoked_terminal_can_be_paired_again(settings: Settings, tmp_path: Path) -> None:
    run(pair_over_tls(settings, tmp_path / "poi"))
    revoke(settings, TERMINAL_ID)
    result, paired = run(pair_over_tls(settings, tmp_path / "poi2"))
    assert result.terminal.state is TerminalState.PAIRED
    assert keyring(settings).get(TERMINAL_ID) == paired.key


def test_pair_terminal_interactively_shows_the_invitation_first(
    settings: Settings, tmp_path: Path
) -> None:
    async def scenario() -> PairingResult:
        shown: asyncio.Queue[PairingInvitation] = asyncio.Queue()
        pairing = asyncio.create_task(
            pair_terminal_interactively(
                settings, TERMINAL_ID, TIMEOUT, on_invitation=shown.put_nowait, config=FAST
            )
        )
        invitation = await asyncio.wait_for(shown.get(), TIMEOUT)
        await pair_as_terminal(invitation, tmp_path / "poi")
        return await pairing

    assert run(scenario()).terminal.state is TerminalState.PAIRED


# -- no success ------------------------------------------------------------------------------------


def test_a_terminal_claiming_another_id_gets_no_certificate_and_nothing_is_kept(
    settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(PairingNotCompleted) as refused:
        run(pair_over_tls(settings, tmp_path / "poi", terminal_id=OTHER_ID))
    assert refused.value.reason is PairingFailure.WRONG_TERMINAL
    assert KeyStore(settings.keys_dir).paired_terminal_ids() == frozenset()
    assert keyring(settings).terminal_ids() == frozenset()
    assert stored(settings).state is TerminalState.REGISTERED


def test_a_network_terminal_without_a_certificate_request_is_not_paired(
    settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(PairingNotCompleted) as refused:
        run(pair_over_tls(settings, tmp_path / "poi", with_csr=False))
    assert refused.value.reason is PairingFailure.NO_CERTIFICATE
    assert keyring(settings).get(TERMINAL_ID) is None


def test_three_wrong_codes_burn_the_code_and_end_the_wait_at_once(
    settings: Settings, tmp_path: Path
) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with PairingSession(settings, TERMINAL_ID, keyring=keyring(settings)) as session:
            waiting = asyncio.create_task(session.wait(TIMEOUT))
            wrong = f"{(int(session.invitation.code.digits) + 1) % 100_000_000:08d}"
            for _ in range(3):
                with pytest.raises(PairingFailed):
                    await pair_as_terminal(session.invitation, tmp_path / "poi", code=wrong)
            burnt_at = loop.time()
            with pytest.raises(PairingNotCompleted) as refused:
                await waiting
            assert refused.value.reason is PairingFailure.BURNT
            assert loop.time() - burnt_at < 1.0

    run(scenario())
    assert stored(settings).state is TerminalState.REGISTERED


def test_waiting_ends_after_the_timeout(settings: Settings) -> None:
    async def scenario() -> None:
        async with PairingSession(settings, TERMINAL_ID, keyring=keyring(settings)) as session:
            with pytest.raises(PairingNotCompleted) as refused:
                await session.wait(0.3)
            assert refused.value.reason is PairingFailure.TIMED_OUT

    run(scenario())


def test_an_unregistered_terminal_is_refused(settings: Settings) -> None:
    with pytest.raises(UnknownTerminal):
        run(pair_terminal_interactively(settings, OTHER_ID, TIMEOUT))


def test_a_terminal_of_another_lane_is_paired_on_that_lane_only(settings: Settings) -> None:
    register(settings, OTHER_ID, lane_id="L02")
    with pytest.raises(WrongLane) as refused:
        run(pair_terminal_interactively(settings, OTHER_ID, TIMEOUT))
    assert (refused.value.lane_id, refused.value.here) == ("L02", "L01")


def test_pairing_needs_the_store_ca(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    register(settings)
    with pytest.raises(StoreNotInitialised):
        run(pair_terminal_interactively(settings, TERMINAL_ID, TIMEOUT))


def test_a_wrong_passphrase_fails_before_a_code_is_made(settings: Settings) -> None:
    keyring(settings, b"the right one").unlock()
    shown: list[object] = []
    with pytest.raises(WrongPassphrase):
        run(
            pair_terminal_interactively(
                settings,
                TERMINAL_ID,
                TIMEOUT,
                on_invitation=shown.append,
                keyring=keyring(settings, b"a wrong one"),
            )
        )
    assert not shown


def test_a_busy_link_port_is_reported(settings: Settings) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", settings.link_port))
        busy.listen()
        with pytest.raises(ListenFailed) as refused:
            run(pair_terminal_interactively(settings, TERMINAL_ID, TIMEOUT))
    assert str(settings.link_port) in refused.value.where


def test_the_code_is_never_logged(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> str:
        async with PairingSession(settings, TERMINAL_ID, keyring=keyring(settings)) as session:
            waiting = asyncio.create_task(session.wait(TIMEOUT))
            _, paired = await pair_as_terminal(session.invitation, tmp_path / "poi")
            await waiting
            return session.invitation.code.digits + " " + paired.key.secret_bytes().hex()

    with caplog.at_level(logging.DEBUG):
        code, secret = run(scenario()).split()
    assert code not in caplog.text and secret not in caplog.text


# -- serial ----------------------------------------------------------------------------------------


async def pair_over_serial(settings: Settings, cable: PtyCable, keys: TerminalKeyRing) -> Paired:
    async with PairingSession(settings, TERMINAL_ID, keyring=keys, config=FAST) as session:
        assert session.invitation.payload is None  # no QR code on a cable
        waiting = asyncio.create_task(session.wait(TIMEOUT))
        address = LinkAddress.parse(f"serial://{cable.paths[1]}?baud=115200")
        terminal = LinkEndpoint(
            Connection(
                Role.POI,
                TERMINAL_ID,
                peer_capabilities(),
                config=FAST,
                framer_factory=address.framer_factory(),
            )
        )
        terminal.attach(await open_serial(address))
        try:
            paired = await terminal.pair(session.invitation.code.digits, timeout=TIMEOUT)
            await waiting
            return paired
        finally:
            await terminal.close()


def test_a_serial_terminal_pairs_over_its_cable(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with PtyCable() as cable:
            settings = make_settings(tmp_path)
            keystore = init_store(settings)
            register(settings, link_url=f"serial://{cable.paths[0]}?baud=115200")
            old_key = TerminalKeyStore(tmp_path / "old").private_key().public_key()
            old = keystore.issue_terminal_certificate(TERMINAL_ID, old_key, datetime.now(UTC))
            keys = keyring(settings)
            paired = await pair_over_serial(settings, cable, keys)
            assert paired.certificate is None and paired.ca_certificate is not None
            assert keys.get(TERMINAL_ID) == paired.key
            terminal = stored(settings)
            assert terminal.state is TerminalState.PAIRED and terminal.key_id == paired.key.key_id
            assert terminal.certificate_serial is None
            # a certificate from an earlier pairing does not outlive the key it was issued with
            assert keystore.paired_terminal_ids() == frozenset()
            assert old.serial_number in keystore.revocations().serials

    run(scenario())


# -- revoking --------------------------------------------------------------------------------------


def test_revoke_revokes_the_certificate_deletes_the_key_and_records_it(
    settings: Settings, tmp_path: Path
) -> None:
    result, _ = run(pair_over_tls(settings, tmp_path / "poi"))
    done = revoke(settings, TERMINAL_ID, keyring=keyring(settings))
    assert done.certificate_revoked and done.key_deleted and not done.already_revoked
    assert done.terminal is not None and done.terminal.state is TerminalState.REVOKED
    assert stored(settings).state is TerminalState.REVOKED
    assert keyring(settings).get(TERMINAL_ID) is None
    keystore = KeyStore(settings.keys_dir)
    assert keystore.paired_terminal_ids() == frozenset()
    assert int(str(result.terminal.certificate_serial), 16) in keystore.revocations().serials


def test_revoking_twice_only_checks_that_nothing_is_left(
    settings: Settings, tmp_path: Path
) -> None:
    run(pair_over_tls(settings, tmp_path / "poi"))
    revoke(settings, TERMINAL_ID)
    again = revoke(settings, TERMINAL_ID)
    assert again.already_revoked and not again.certificate_revoked and not again.key_deleted


def test_revoking_an_unknown_terminal_fails(settings: Settings) -> None:
    with pytest.raises(UnknownTerminal):
        revoke(settings, OTHER_ID)


def test_a_terminal_of_another_lane_is_revoked_on_that_lane_only(settings: Settings) -> None:
    register(settings, OTHER_ID, lane_id="L02")
    with pytest.raises(WrongLane):
        revoke(settings, OTHER_ID)
    assert stored(settings, OTHER_ID).state is TerminalState.REGISTERED


# -- settings --------------------------------------------------------------------------------------


def test_the_qr_address_is_the_first_name_a_terminal_can_reach(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).model_copy(
        update={"server_names": ["localhost", "::1", "0.0.0.0", "192.168.1.10", "pos.shop"]}
    )
    assert qr_address(settings) == "192.168.1.10"
    named = settings.model_copy(update={"server_names": ["127.0.0.1", "Kasse-1.Shop."]})
    assert qr_address(named) == "kasse-1.shop"


def test_a_loopback_only_install_puts_127_0_0_1_in_the_qr_code(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).model_copy(update={"server_names": ["localhost", "::1"]})
    assert qr_address(settings) == "127.0.0.1"


def test_listen_urls_bracket_ipv6(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, port=8583).model_copy(
        update={"listen_addresses": ["127.0.0.1", "::1"]}
    )
    assert listen_urls(settings) == ["tls://127.0.0.1:8583", "tls://[::1]:8583"]
