"""Key stores on disk and TLS 1.3 with mutual certificates over real loopback sockets.

OpenSSL checks certificate dates against the real clock, so these tests use ``datetime.now``.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from shouyin.link.firewall import Firewall, FirewallPolicy
from shouyin.link.keystore import (
    InitReport,
    KeyStore,
    KeyStoreError,
    NotInitialised,
    TerminalKeyStore,
    UnsafePermissions,
    atomic_write,
    client_ssl_context,
)
from shouyin.link.pairing import PairingClient, PairingCode, PairingServer
from shouyin.link.pairing_qr import PairingPayload, parse_payload
from shouyin.link.pki import (
    CertificateProblem,
    CertificateRejected,
    certificate_fingerprint,
    certificate_to_pem,
    csr_from_pem,
    generate_private_key,
    issue_terminal_certificate,
    private_key_to_pem,
)

NAMES = ["127.0.0.1", "::1", "localhost"]


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    keystore = KeyStore(tmp_path / "ecr")
    keystore.init("测试超市", NAMES, now())
    return keystore


def pair(store: KeyStore, terminal: TerminalKeyStore, terminal_id: str) -> str:
    """Issue a certificate from the terminal's CSR and install it (pairing without the PAKE)."""
    csr = csr_from_pem(terminal.make_csr(terminal_id))
    cert = store.issue_terminal_certificate(terminal_id, csr, now())
    return terminal.install(
        certificate_to_pem(cert),
        certificate_to_pem(store.ca_certificate()),
        now(),
        expected_ca_fingerprint=store.ca_fingerprint(),
    )


@pytest.fixture
def terminal(tmp_path: Path, store: KeyStore) -> TerminalKeyStore:
    keystore = TerminalKeyStore(tmp_path / "poi")
    pair(store, keystore, "T-0001")
    return keystore


# -- a real handshake --------------------------------------------------------------------------


@dataclass
class Outcome:
    server_error: BaseException | None = None
    client_error: BaseException | None = None
    peer_der: bytes | None = None
    version: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.server_error is None and self.client_error is None

    @property
    def refused(self) -> bool:
        return self.server_error is not None and self.client_error is not None


@pytest.fixture
def socket_pair(request: pytest.FixtureRequest) -> Iterator[tuple[socket.socket, socket.socket]]:
    if getattr(request, "param", "unix") == "tcp":
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.create_connection(listener.getsockname(), timeout=5)
            server, _ = listener.accept()
    else:
        server, client = socket.socketpair()
    for sock in (server, client):
        sock.settimeout(5)
    yield server, client
    server.close()
    client.close()


def handshake(
    pair_: tuple[socket.socket, socket.socket],
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    server_hostname: str | None = "127.0.0.1",
) -> Outcome:
    """Run a TLS handshake, then one byte each way (TLS 1.3 reports client-certificate failures
    to the client only after its side of the handshake, on the first read)."""
    server_sock, client_sock = pair_
    outcome = Outcome()

    def serve() -> None:
        try:
            with server_context.wrap_socket(server_sock, server_side=True) as tls:
                outcome.peer_der = tls.getpeercert(binary_form=True)
                outcome.version = tls.version()
                tls.sendall(b"k")
                tls.recv(1)
        except (ssl.SSLError, OSError) as error:
            outcome.server_error = error

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_context.wrap_socket(client_sock, server_hostname=server_hostname) as tls:
            if tls.recv(1) != b"k":
                raise ConnectionError("closed by the server")
            tls.sendall(b"k")
    except (ssl.SSLError, OSError) as error:
        outcome.client_error = error
    finally:
        thread.join(10)
    assert not thread.is_alive()
    return outcome


def write_identity(
    directory: Path, cert_pem: str, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    directory.mkdir(mode=0o700, exist_ok=True)
    cert_path, key_path = directory / "c.crt", directory / "c.key"
    atomic_write(cert_path, cert_pem.encode())
    atomic_write(key_path, private_key_to_pem(key))
    return cert_path, key_path


@pytest.mark.parametrize("socket_pair", ["unix", "tcp"], indirect=True)
def test_mutual_tls13_handshake_authenticates_the_paired_terminal(
    store: KeyStore, terminal: TerminalKeyStore, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    outcome = handshake(
        socket_pair, store.ssl_server_context(), terminal.ssl_client_context("127.0.0.1")
    )
    assert outcome.succeeded, outcome
    assert outcome.version == "TLSv1.3"
    assert outcome.peer_der is not None
    assert store.authenticate_peer(outcome.peer_der, now()) == "T-0001"


def test_client_certificate_from_another_ca_is_refused(
    tmp_path: Path, store: KeyStore, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    other = KeyStore(tmp_path / "other")
    other.init("other store", NAMES, now())
    key = generate_private_key()
    foreign = issue_terminal_certificate(other.ca_bundle(), "T-0001", key.public_key(), now())
    cert_path, key_path = write_identity(tmp_path / "foreign", certificate_to_pem(foreign), key)
    client = client_ssl_context(cert_path, key_path, store.directory / "ca.crt", "127.0.0.1")
    outcome = handshake(socket_pair, store.ssl_server_context(), client)
    assert outcome.refused
    assert "certificate verify failed" in str(outcome.server_error)


def test_expired_client_certificate_is_refused(
    tmp_path: Path, store: KeyStore, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    key = generate_private_key()
    expired = issue_terminal_certificate(
        store.ca_bundle(), "T-0001", key.public_key(), now() - timedelta(days=10), valid_days=1
    )
    cert_path, key_path = write_identity(tmp_path / "expired", certificate_to_pem(expired), key)
    client = client_ssl_context(cert_path, key_path, store.directory / "ca.crt", "127.0.0.1")
    outcome = handshake(socket_pair, store.ssl_server_context(), client)
    assert outcome.refused
    assert "expired" in str(outcome.server_error)


def test_revoked_terminal_passes_tls_but_is_refused_after_the_handshake(
    store: KeyStore, terminal: TerminalKeyStore, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    assert store.revoke_terminal("T-0001", now(), "stolen")
    outcome = handshake(
        socket_pair, store.ssl_server_context(), terminal.ssl_client_context("127.0.0.1")
    )
    assert outcome.succeeded  # OpenSSL knows nothing of our revocation list...
    assert outcome.peer_der is not None
    with pytest.raises(CertificateRejected) as info:  # ...the check after the handshake does
        store.authenticate_peer(outcome.peer_der, now())
    assert info.value.problem is CertificateProblem.REVOKED


def test_client_without_a_certificate_is_refused(
    store: KeyStore, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cafile=store.directory / "ca.crt")
    outcome = handshake(socket_pair, store.ssl_server_context(), client)
    assert outcome.refused
    assert "did not return a certificate" in str(outcome.server_error)


def test_tls12_client_is_refused(
    store: KeyStore, terminal: TerminalKeyStore, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.load_verify_locations(cafile=store.directory / "ca.crt")
    client.load_cert_chain(terminal.directory / "terminal.crt", terminal.directory / "terminal.key")
    outcome = handshake(socket_pair, store.ssl_server_context(), client)
    assert outcome.refused
    assert "protocol" in str(outcome.server_error).lower()


def test_a_terminal_certificate_cannot_impersonate_the_server(
    store: KeyStore, terminal: TerminalKeyStore, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    impostor = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    impostor.load_cert_chain(
        terminal.directory / "terminal.crt", terminal.directory / "terminal.key"
    )
    outcome = handshake(socket_pair, impostor, terminal.ssl_client_context(None), None)
    assert outcome.client_error is not None
    assert "unsuitable certificate purpose" in str(outcome.client_error)


def test_the_client_checks_the_hostname_it_was_given(
    store: KeyStore, terminal: TerminalKeyStore, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    context = terminal.ssl_client_context("pos.elsewhere.lan")
    outcome = handshake(socket_pair, store.ssl_server_context(), context, "pos.elsewhere.lan")
    assert outcome.client_error is not None
    assert "Hostname mismatch" in str(outcome.client_error)


def test_pin_only_client_accepts_the_store_server_under_any_address(
    store: KeyStore, terminal: TerminalKeyStore, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    outcome = handshake(
        socket_pair, store.ssl_server_context(), terminal.ssl_client_context(None), None
    )
    assert outcome.succeeded, outcome


def test_contexts_are_tls13_only_and_trust_only_the_store_ca(
    store: KeyStore, terminal: TerminalKeyStore
) -> None:
    server = store.ssl_server_context()
    client = terminal.ssl_client_context("127.0.0.1")
    for context in (server, client):
        assert context.minimum_version is ssl.TLSVersion.TLSv1_3
        assert context.maximum_version is ssl.TLSVersion.TLSv1_3
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert [int(str(ca["serialNumber"]), 16) for ca in context.get_ca_certs()] == [
            store.ca_certificate().serial_number
        ]
    assert server.num_tickets == 0
    assert client.check_hostname


def test_empty_server_hostname_is_a_caller_error(terminal: TerminalKeyStore) -> None:
    with pytest.raises(ValueError, match="server_hostname"):
        terminal.ssl_client_context(" ")


# -- the ECR key store -------------------------------------------------------------------------


def test_init_creates_private_files_in_a_private_directory(tmp_path: Path) -> None:
    keystore = KeyStore(tmp_path / "ecr")
    report = keystore.init("s", NAMES, now())
    assert report == InitReport(True, True, keystore.ca_fingerprint())
    assert stat.S_IMODE(keystore.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((keystore.directory / "terminals").stat().st_mode) == 0o700
    files = sorted(p.name for p in keystore.directory.iterdir() if p.is_file())
    assert files == ["ca.crt", "ca.key", "revoked.json", "server.crt", "server.key"]
    for name in files:
        assert stat.S_IMODE((keystore.directory / name).stat().st_mode) == 0o600


def test_init_again_keeps_the_ca_and_the_server_certificate(store: KeyStore) -> None:
    fingerprint = store.ca_fingerprint()
    server = store.server_certificate()
    report = store.init("测试超市", NAMES, now())
    assert report == InitReport(False, False, fingerprint)
    assert store.server_certificate() == server


def test_init_with_another_store_name_keeps_the_ca_and_warns(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    fingerprint = store.ca_fingerprint()
    assert store.init("renamed", NAMES, now()).ca_fingerprint == fingerprint
    assert "keeping the existing store CA" in caplog.text


def test_init_with_a_new_address_reissues_only_the_server_certificate(store: KeyStore) -> None:
    fingerprint = store.ca_fingerprint()
    report = store.init("测试超市", [*NAMES, "192.168.1.10"], now())
    assert report == InitReport(False, True, fingerprint)
    assert "192.168.1.10" in str(store.server_certificate().extensions)


def test_init_renews_a_server_certificate_close_to_expiry(store: KeyStore) -> None:
    later = now() + timedelta(days=800)
    assert store.init("测试超市", NAMES, later).issued_server_certificate


def test_encrypted_keystore_needs_its_passphrase(tmp_path: Path) -> None:
    locked = KeyStore(tmp_path / "ecr", passphrase=b"s3cret")
    locked.init("s", NAMES, now())
    assert (tmp_path / "ecr" / "ca.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED")
    locked.ssl_server_context()
    locked.ca_bundle()
    with pytest.raises(KeyStoreError, match="passphrase required"):
        KeyStore(tmp_path / "ecr").ca_bundle()
    with pytest.raises(KeyStoreError):
        KeyStore(tmp_path / "ecr", passphrase=b"wrong").ssl_server_context()


def test_a_private_key_readable_by_others_is_refused(store: KeyStore) -> None:
    (store.directory / "ca.key").chmod(0o644)
    with pytest.raises(UnsafePermissions):
        store.ca_bundle()
    (store.directory / "server.key").chmod(0o640)
    with pytest.raises(UnsafePermissions):
        store.ssl_server_context()


def test_init_refuses_to_replace_half_a_ca(store: KeyStore) -> None:
    (store.directory / "ca.key").unlink()
    with pytest.raises(KeyStoreError, match="incomplete"):
        store.init("测试超市", NAMES, now())
    assert store.ca_certificate()  # the certificate was left alone


def test_an_uninitialised_store_says_so(tmp_path: Path) -> None:
    keystore = KeyStore(tmp_path / "nothing")
    assert not keystore.is_initialised()
    with pytest.raises(NotInitialised):
        keystore.ca_bundle()
    with pytest.raises(NotInitialised):
        keystore.ssl_server_context()


def test_reissuing_a_terminal_revokes_its_previous_certificate(store: KeyStore) -> None:
    key = generate_private_key()
    first = store.issue_terminal_certificate("T-1", key.public_key(), now())
    second = store.issue_terminal_certificate("T-1", key.public_key(), now())
    assert store.terminal_certificate("T-1") == second
    assert store.revocations().serials == {first.serial_number}
    assert store.paired_terminal_ids() == {"T-1"}


def test_revoking_a_terminal_unpairs_it(store: KeyStore) -> None:
    key = generate_private_key()
    cert = store.issue_terminal_certificate("T-1", key.public_key(), now())
    assert store.revoke_terminal("T-1", now(), "stolen")
    assert store.paired_terminal_ids() == frozenset()
    assert cert.serial_number in store.revocations().serials
    assert not store.revoke_terminal("T-1", now())


@pytest.mark.parametrize("terminal_id", ["..", ".hidden", "lane:01", "a.b-c_d"])
def test_terminal_ids_with_dots_and_colons_are_stored_safely(
    store: KeyStore, terminal_id: str
) -> None:
    store.issue_terminal_certificate(terminal_id, generate_private_key().public_key(), now())
    assert store.paired_terminal_ids() == {terminal_id}
    names = [p.name for p in (store.directory / "terminals").iterdir()]
    assert len(names) == 1
    assert not names[0].startswith(".")
    assert ":" not in names[0]


def test_corrupt_revocation_list_is_a_keystore_error(store: KeyStore) -> None:
    atomic_write(store.directory / "revoked.json", b"{")
    with pytest.raises(KeyStoreError, match="revocation"):
        store.revocations()


def test_nothing_logged_contains_key_material(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keystore = KeyStore(tmp_path / "ecr")
    keystore.init("s", NAMES, now())
    terminal = TerminalKeyStore(tmp_path / "poi")
    pair(keystore, terminal, "T-1")
    keystore.revoke_terminal("T-1", now())
    secrets = [keystore.ca_bundle().key, terminal.private_key()]
    assert "T-1" in caplog.text
    assert "PRIVATE KEY" not in caplog.text
    for key in secrets:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert f"{key.private_numbers().private_value:x}" not in caplog.text
    assert repr(keystore) == f"KeyStore({str(tmp_path / 'ecr')!r})"


# -- atomic writes -----------------------------------------------------------------------------


def test_atomic_write_creates_0600_files_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        atomic_write(tmp_path / "f", b"one")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_a_failed_atomic_write_keeps_the_old_content_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    atomic_write(tmp_path / "f", b"old")

    def broken(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "f", b"new")
    assert (tmp_path / "f").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


# -- the terminal key store --------------------------------------------------------------------


def test_terminal_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    terminal = TerminalKeyStore(tmp_path / "poi")
    first = terminal.private_key()
    assert terminal.private_key().public_key() == first.public_key()
    assert stat.S_IMODE((tmp_path / "poi" / "terminal.key").stat().st_mode) == 0o600
    assert not terminal.is_paired()


def test_install_refuses_a_ca_other_than_the_scanned_one(store: KeyStore, tmp_path: Path) -> None:
    terminal = TerminalKeyStore(tmp_path / "poi")
    cert = store.issue_terminal_certificate("T-1", csr_from_pem(terminal.make_csr("T-1")), now())
    with pytest.raises(CertificateRejected) as info:
        terminal.install(
            certificate_to_pem(cert),
            certificate_to_pem(store.ca_certificate()),
            now(),
            expected_ca_fingerprint="0" * 64,
        )
    assert info.value.problem is CertificateProblem.FINGERPRINT_MISMATCH
    assert not terminal.is_paired()


def test_install_refuses_a_certificate_for_another_key(store: KeyStore, tmp_path: Path) -> None:
    terminal = TerminalKeyStore(tmp_path / "poi")
    terminal.private_key()
    cert = store.issue_terminal_certificate("T-1", generate_private_key().public_key(), now())
    with pytest.raises(CertificateRejected) as info:
        terminal.install(
            certificate_to_pem(cert), certificate_to_pem(store.ca_certificate()), now()
        )
    assert info.value.problem is CertificateProblem.KEY_MISMATCH


def test_install_refuses_an_expired_certificate(store: KeyStore, tmp_path: Path) -> None:
    terminal = TerminalKeyStore(tmp_path / "poi")
    cert = issue_terminal_certificate(
        store.ca_bundle(),
        "T-1",
        terminal.private_key().public_key(),
        now() - timedelta(days=10),
        valid_days=1,
    )
    with pytest.raises(CertificateRejected) as info:
        terminal.install(
            certificate_to_pem(cert), certificate_to_pem(store.ca_certificate()), now()
        )
    assert info.value.problem is CertificateProblem.EXPIRED


def test_unpaired_terminal_has_no_client_context(tmp_path: Path) -> None:
    terminal = TerminalKeyStore(tmp_path / "poi")
    terminal.private_key()
    with pytest.raises(NotInitialised):
        terminal.ssl_client_context("127.0.0.1")
    with pytest.raises(NotInitialised):
        terminal.terminal_id()


# -- end to end: QR, PAKE pairing, certificates, TLS, firewall ---------------------------------


def test_pairing_by_qr_code_provisions_a_terminal_that_then_passes_tls_and_the_firewall(
    store: KeyStore, tmp_path: Path, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    code = PairingCode.generate(0.0)
    shown = PairingPayload(
        address="127.0.0.1", port=8583, code=code.digits, fingerprint=store.ca_fingerprint()
    ).to_text()
    scanned = parse_payload(shown)

    terminal = TerminalKeyStore(tmp_path / "poi")
    server = PairingServer("lane-01", code, issuer=store.certificate_issuer(now))
    client = PairingClient("T-42", scanned.code, csr=terminal.make_csr("T-42"))
    challenge = server.receive_request(client.start(), 1.0)
    server.receive_confirm(client.receive_challenge(challenge))
    outcome = client.receive_complete(server.complete())
    assert outcome.certificate is not None
    assert outcome.ca_certificate is not None
    assert (
        terminal.install(
            outcome.certificate,
            outcome.ca_certificate,
            now(),
            expected_ca_fingerprint=scanned.fingerprint,
        )
        == "T-42"
    )
    assert certificate_fingerprint(terminal.ca_certificate()) == store.ca_fingerprint()
    assert store.paired_terminal_ids() == {"T-42"}

    tls = handshake(
        socket_pair, store.ssl_server_context(), terminal.ssl_client_context(None), None
    )
    assert tls.succeeded, tls
    assert tls.peer_der is not None
    terminal_id = store.authenticate_peer(tls.peer_der, now())
    firewall = Firewall(FirewallPolicy())
    assert firewall.check_identity(terminal_id, store.paired_terminal_ids()).allowed
