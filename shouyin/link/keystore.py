"""Key stores: the files behind the store CA, the server's TLS identity and a terminal's identity.

This is the I/O side of :mod:`shouyin.link.pki` (which stays pure). Two stores:

* :class:`KeyStore`, on the cashier system (ECR), one directory::

      <dir>/            0700
        ca.crt ca.key   the store CA (created once by ``shouyin init``)
        server.crt      the TLS server certificate (SANs: the configured names and addresses)
        server.key
        revoked.json    the :class:`~shouyin.link.pki.RevocationList`
        terminals/      0700, one ``<terminal id>.crt`` per paired terminal

* :class:`TerminalKeyStore`, on a terminal (POI): ``terminal.key`` (generated on the terminal, it
  never leaves it), ``terminal.crt`` (issued at pairing) and ``ca.crt`` (the pinned store CA).

Every file is written atomically (a temporary file in the same directory, ``fsync``, ``rename``,
then ``fsync`` of the directory) with mode 0600, directories are 0700, and a private key whose file
is readable by group or others is refused, as ssh does. Private keys are encrypted on disk when the
store is given a passphrase. Nothing here logs key material; ``repr`` shows only the directory.

:func:`server_ssl_context` and :func:`client_ssl_context` build TLS 1.3-only contexts with mutual
certificate authentication that trust the store CA and nothing else (no system roots). The server
turns session tickets off, so every connection is a full handshake that re-checks the client
certificate's chain and dates. OpenSSL cannot know about revocation or pairing: after the
handshake the server passes ``getpeercert(binary_form=True)`` to :meth:`KeyStore.authenticate_peer`
and the terminal id to :meth:`shouyin.link.firewall.Firewall.check_identity`.

One writer at a time: the ECR's server process owns its :class:`KeyStore`.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import ssl
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from shouyin.link.errors import LinkError
from shouyin.link.pairing import CertificateIssuer
from shouyin.link.pki import (
    CaBundle,
    CertificateProblem,
    CertificateRejected,
    PkiDecodeError,
    PrivateKey,
    PublicKey,
    RevocationList,
    authenticate_terminal_certificate,
    certificate_fingerprint,
    certificate_from_pem,
    certificate_to_pem,
    create_ca,
    csr_to_pem,
    generate_private_key,
    issue_server_certificate,
    issue_terminal_certificate,
    make_csr,
    pairing_certificate_issuer,
    private_key_from_pem,
    private_key_to_pem,
    public_keys_equal,
    store_ca_name,
    terminal_id_from_certificate,
    verify_issued_by,
)

__all__ = [
    "RENEW_BEFORE",
    "InitReport",
    "KeyStore",
    "KeyStoreError",
    "NotInitialised",
    "TerminalKeyStore",
    "UnsafePermissions",
    "atomic_write",
    "client_ssl_context",
    "server_ssl_context",
]

logger = logging.getLogger(__name__)

RENEW_BEFORE = timedelta(days=30)
"""``KeyStore.init`` re-issues the server certificate when it expires within this margin."""

_FILE_MODE = 0o600
_DIR_MODE = 0o700
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]")


class KeyStoreError(LinkError):
    """A key store cannot be read or written.

    Attributes:
        path: the file or directory concerned.
    """

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(f"{message}: {path}")
        self.path = path


class NotInitialised(KeyStoreError):
    """The key store has not been initialised (run ``shouyin init``) or the terminal not paired."""


class UnsafePermissions(KeyStoreError):
    """A private key file is readable or writable by group or others (``chmod 600`` it)."""


# --------------------------------------------------------------------------- files


def _ensure_directory(directory: Path) -> None:
    directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    if os.name == "posix":
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode != _DIR_MODE:
            logger.warning("tightening permissions of %s from %o to 700", directory, mode)
            directory.chmod(_DIR_MODE)


def atomic_write(path: Path, data: bytes, mode: int = _FILE_MODE) -> None:
    """Write a file atomically: a temporary file in the same directory, fsync, rename, fsync dir.

    A reader sees the old content or the new one, never a mix, and a crash leaves no half-written
    key behind. The file is created with ``mode`` from the start (never briefly wider).

    Args:
        path: the destination.
        data: the complete content.
        mode: permission bits (0600 by default).

    Raises:
        OSError: the write failed (the temporary file is removed).
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # the umask may have narrowed it; never widen beyond mode
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    if os.name == "posix":
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _read_private_key(path: Path, passphrase: bytes | None) -> PrivateKey:
    if not path.exists():
        raise NotInitialised("private key missing", path)
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise UnsafePermissions("private key is accessible by group or others", path)
    try:
        return private_key_from_pem(path.read_bytes(), passphrase)
    except PkiDecodeError as error:
        raise KeyStoreError(f"cannot load private key ({error.reason})", path) from error


def _read_certificate(path: Path) -> x509.Certificate:
    if not path.exists():
        raise NotInitialised("certificate missing", path)
    try:
        return certificate_from_pem(path.read_bytes())
    except PkiDecodeError as error:
        raise KeyStoreError("cannot load certificate", path) from error


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    atomic_write(path, certificate_to_pem(certificate).encode("ascii"))


def _terminal_file_name(terminal_id: str) -> str:
    # Percent-encode everything but [A-Za-z0-9_-]: no dots (".." or hidden files), no colons.
    return "".join(c if _SAFE_NAME.fullmatch(c) else f"%{ord(c):02X}" for c in terminal_id)


def _terminal_id_from_file_name(name: str) -> str:
    return re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), name)


# --------------------------------------------------------------------------- TLS contexts


def _tls13_context(protocol: ssl._SSLMethod) -> ssl.SSLContext:
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def _load_chain(
    context: ssl.SSLContext, cert: Path, key: Path, ca: Path, passphrase: bytes | None
) -> None:
    if os.name == "posix" and key.exists() and stat.S_IMODE(key.stat().st_mode) & 0o077:
        raise UnsafePermissions("private key is accessible by group or others", key)
    try:
        context.load_cert_chain(cert, key, password=passphrase)
        context.load_verify_locations(cafile=ca)
    except FileNotFoundError as error:
        raise NotInitialised("TLS file missing", Path(error.filename or cert)) from error
    except ssl.SSLError as error:
        raise KeyStoreError(f"cannot load TLS identity ({error.reason})", cert.parent) from error


def server_ssl_context(
    server_cert: Path, server_key: Path, ca_cert: Path, *, passphrase: bytes | None = None
) -> ssl.SSLContext:
    """A TLS 1.3-only server context that requires a client certificate from the store CA.

    Args:
        server_cert: PEM file of the server certificate.
        server_key: PEM file of its private key (0600).
        ca_cert: PEM file of the store CA, the only trust anchor for client certificates.
        passphrase: the key's passphrase if it is encrypted.

    Returns:
        The context (``CERT_REQUIRED``, TLS 1.3 minimum and maximum, no session tickets).

    Raises:
        NotInitialised: a file is missing.
        UnsafePermissions: the key file is readable by others.
        KeyStoreError: the files cannot be loaded (wrong passphrase, key not matching).
    """
    context = _tls13_context(ssl.PROTOCOL_TLS_SERVER)
    context.num_tickets = 0  # no resumption: every connection re-verifies the client certificate
    _load_chain(context, server_cert, server_key, ca_cert, passphrase)
    return context


def client_ssl_context(
    client_cert: Path,
    client_key: Path,
    ca_cert: Path,
    server_hostname: str | None,
    *,
    passphrase: bytes | None = None,
) -> ssl.SSLContext:
    """A TLS 1.3-only client context presenting the terminal's certificate, pinning the store CA.

    No system root is loaded: only a server certificate issued by the store CA (with
    ``serverAuth``, which terminal certificates lack) is accepted.

    Args:
        client_cert: PEM file of the terminal certificate.
        client_key: PEM file of its private key (0600).
        ca_cert: PEM file of the pinned store CA.
        server_hostname: the name or IP address the terminal dials. When given, hostname checking
            is on and the caller must pass the same value as ``server_hostname`` to
            ``wrap_socket`` / ``asyncio.open_connection``. ``None`` turns hostname checking off
            (the address is not in the server certificate, e.g. behind NAT): the CA pin and the
            ``serverAuth`` usage still authenticate the server.
        passphrase: the key's passphrase if it is encrypted.

    Returns:
        The context.

    Raises:
        ValueError: ``server_hostname`` is empty.
        NotInitialised: a file is missing.
        UnsafePermissions: the key file is readable by others.
        KeyStoreError: the files cannot be loaded.
    """
    if server_hostname is not None and not server_hostname.strip():
        raise ValueError("server_hostname must not be empty (pass None to skip the check)")
    context = _tls13_context(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = server_hostname is not None
    _load_chain(context, client_cert, client_key, ca_cert, passphrase)
    return context


# --------------------------------------------------------------------------- ECR side


@dataclass(frozen=True, slots=True)
class InitReport:
    """What :meth:`KeyStore.init` did."""

    created_ca: bool
    issued_server_certificate: bool
    ca_fingerprint: str


class KeyStore:
    """The cashier system's keys and certificates in one directory (see the module docstring).

    Args:
        directory: where the files live; created 0700 by :meth:`init`.
        passphrase: encrypts the CA and server keys on disk when given (and is then needed to
            load them).
        renew_before: :meth:`init` re-issues the server certificate when it expires within this.
    """

    CA_CERT = "ca.crt"
    CA_KEY = "ca.key"
    SERVER_CERT = "server.crt"
    SERVER_KEY = "server.key"
    REVOCATIONS = "revoked.json"
    TERMINALS = "terminals"

    def __init__(
        self,
        directory: Path | str,
        *,
        passphrase: bytes | None = None,
        renew_before: timedelta = RENEW_BEFORE,
    ) -> None:
        self.directory = Path(directory)
        self._passphrase = passphrase
        self._renew_before = renew_before

    def __repr__(self) -> str:
        return f"KeyStore({str(self.directory)!r})"

    def _path(self, name: str) -> Path:
        return self.directory / name

    # ----- setup

    def is_initialised(self) -> bool:
        """Whether the CA and the server certificate exist."""
        return all(
            self._path(name).exists()
            for name in (self.CA_CERT, self.CA_KEY, self.SERVER_CERT, self.SERVER_KEY)
        )

    def init(
        self,
        store_name: str,
        hostnames: Iterable[str | ipaddress.IPv4Address | ipaddress.IPv6Address],
        now: datetime,
    ) -> InitReport:
        """Create the CA and the server certificate on first run; keep them afterwards.

        Idempotent: an existing CA is never replaced (that would unpair every terminal), even when
        ``store_name`` differs (a warning is logged). The server certificate is re-issued (same
        CA, new key) only when it is missing, does not cover ``hostnames``, or expires within
        ``renew_before``.

        Args:
            store_name: the store's name, in the CA's subject.
            hostnames: DNS names and IP addresses terminals dial, e.g. ``["127.0.0.1", "::1",
                "192.168.1.10"]``.
            now: the current time (aware datetime).

        Returns:
            What was created.

        Raises:
            ValueError: no or invalid host names.
            KeyStoreError: an existing file cannot be loaded (wrong passphrase, corrupt), or only
                one of the CA certificate and the CA key exists.
        """
        names = list(hostnames)
        _ensure_directory(self.directory)
        _ensure_directory(self._path(self.TERMINALS))
        created_ca = False
        have_cert, have_key = self._path(self.CA_CERT).exists(), self._path(self.CA_KEY).exists()
        if have_cert != have_key:
            # Never paper over half a CA: a new one would silently unpair every terminal.
            missing = self._path(self.CA_KEY if have_cert else self.CA_CERT)
            raise KeyStoreError("the store CA is incomplete (restore it from a backup)", missing)
        if have_cert:
            ca = self.ca_bundle()
            if ca.certificate.subject != store_ca_name(store_name):
                logger.warning("keeping the existing store CA (made for another store name)")
        else:
            ca = create_ca(store_name, now)
            atomic_write(self._path(self.CA_KEY), private_key_to_pem(ca.key, self._passphrase))
            _write_certificate(self._path(self.CA_CERT), ca.certificate)
            self._write_revocations(RevocationList.empty(ca.certificate))
            created_ca = True
        issued = False
        if created_ca or self._server_needs_renewal(ca, names, now):
            server = issue_server_certificate(ca, names, now)
            atomic_write(
                self._path(self.SERVER_KEY), private_key_to_pem(server.key, self._passphrase)
            )
            _write_certificate(self._path(self.SERVER_CERT), server.certificate)
            issued = True
        if not self._path(self.REVOCATIONS).exists():
            self._write_revocations(RevocationList.empty(ca.certificate))
        report = InitReport(created_ca, issued, ca.fingerprint)
        logger.info(
            "key store %s ready (new CA: %s, new server certificate: %s, CA fingerprint %s)",
            self.directory,
            created_ca,
            issued,
            report.ca_fingerprint,
        )
        return report

    def _server_needs_renewal(
        self,
        ca: CaBundle,
        names: list[str | ipaddress.IPv4Address | ipaddress.IPv6Address],
        now: datetime,
    ) -> bool:
        if not (self._path(self.SERVER_CERT).exists() and self._path(self.SERVER_KEY).exists()):
            return True
        certificate = self.server_certificate()
        try:
            verify_issued_by(certificate, ca.certificate, now=now + self._renew_before)
        except CertificateRejected:
            return True
        wanted = {
            str(ipaddress.ip_address(name)) if _is_ip(name) else str(name).rstrip(".").lower()
            for name in names
        }
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return True
        have = {str(v) for v in san.value.get_values_for_type(x509.IPAddress)}
        have |= set(san.value.get_values_for_type(x509.DNSName))
        return not wanted <= have

    # ----- reading

    def ca_certificate(self) -> x509.Certificate:
        """The store CA certificate.

        Raises:
            NotInitialised: :meth:`init` was not run.
        """
        return _read_certificate(self._path(self.CA_CERT))

    def ca_fingerprint(self) -> str:
        """The CA certificate's SHA-256 fingerprint (for the pairing QR code)."""
        return certificate_fingerprint(self.ca_certificate())

    def ca_bundle(self) -> CaBundle:
        """The CA certificate and key (needs the passphrase if the key is encrypted).

        Raises:
            NotInitialised: :meth:`init` was not run.
            UnsafePermissions: the key file is readable by others.
            KeyStoreError: the key cannot be loaded.
        """
        key = _read_private_key(self._path(self.CA_KEY), self._passphrase)
        return CaBundle(self.ca_certificate(), key)

    def server_certificate(self) -> x509.Certificate:
        """The TLS server certificate."""
        return _read_certificate(self._path(self.SERVER_CERT))

    def ssl_server_context(self) -> ssl.SSLContext:
        """The TLS 1.3 mutual-authentication server context (see :func:`server_ssl_context`)."""
        return server_ssl_context(
            self._path(self.SERVER_CERT),
            self._path(self.SERVER_KEY),
            self._path(self.CA_CERT),
            passphrase=self._passphrase,
        )

    # ----- terminals

    def _terminal_path(self, terminal_id: str) -> Path:
        return self._path(self.TERMINALS) / f"{_terminal_file_name(terminal_id)}.crt"

    def issue_terminal_certificate(
        self,
        terminal_id: str,
        subject: PublicKey | x509.CertificateSigningRequest,
        now: datetime,
    ) -> x509.Certificate:
        """Issue, store and return a terminal certificate; a previous one is revoked (re-pairing).

        Args:
            terminal_id: the terminal's id.
            subject: its public key or CSR.
            now: the current time (aware datetime).

        Returns:
            The new certificate.

        Raises:
            NotInitialised: :meth:`init` was not run.
            CertificateRejected: the CSR is refused (see
                :func:`shouyin.link.pki.issue_terminal_certificate`).
        """
        certificate = issue_terminal_certificate(self.ca_bundle(), terminal_id, subject, now)
        self._store_terminal(terminal_id, certificate, now)
        return certificate

    def _store_terminal(
        self, terminal_id: str, certificate: x509.Certificate, now: datetime
    ) -> None:
        previous = self.terminal_certificate(terminal_id)
        _ensure_directory(self._path(self.TERMINALS))
        _write_certificate(self._terminal_path(terminal_id), certificate)
        if previous is not None and previous.serial_number != certificate.serial_number:
            self._write_revocations(self.revocations().revoke(previous, now, "re-paired"))
            logger.info("terminal %r re-paired: previous certificate revoked", terminal_id)

    def certificate_issuer(self, clock: Callable[[], datetime]) -> CertificateIssuer:
        """The :class:`~shouyin.link.pairing.PairingServer` ``issuer`` hook, storing what it issues.

        Args:
            clock: returns the current aware time.

        Returns:
            The hook (see :func:`shouyin.link.pki.pairing_certificate_issuer`).
        """

        def store(terminal_id: str, certificate: x509.Certificate) -> None:
            self._store_terminal(terminal_id, certificate, clock())

        return pairing_certificate_issuer(self.ca_bundle(), clock, on_issued=store)

    def terminal_certificate(self, terminal_id: str) -> x509.Certificate | None:
        """The current certificate of a paired terminal, or ``None``."""
        path = self._terminal_path(terminal_id)
        return _read_certificate(path) if path.exists() else None

    def paired_terminal_ids(self) -> frozenset[str]:
        """The ids of the terminals holding a current (non-revoked) certificate."""
        folder = self._path(self.TERMINALS)
        if not folder.is_dir():
            return frozenset()
        return frozenset(
            _terminal_id_from_file_name(path.stem)
            for path in folder.glob("*.crt")
            if not path.name.startswith(".")
        )

    def revoke_terminal(self, terminal_id: str, now: datetime, reason: str = "") -> bool:
        """Revoke a terminal: its certificate's serial joins the list and it is unpaired.

        Args:
            terminal_id: the terminal.
            now: the current time (aware datetime).
            reason: a short human reason, kept in the list.

        Returns:
            ``True`` if the terminal was paired, ``False`` if there was nothing to revoke.
        """
        certificate = self.terminal_certificate(terminal_id)
        if certificate is None:
            return False
        self._write_revocations(self.revocations().revoke(certificate, now, reason))
        self._terminal_path(terminal_id).unlink()
        logger.info(
            "terminal %r revoked (serial %x)%s",
            terminal_id,
            certificate.serial_number,
            f": {reason}" if reason else "",
        )
        return True

    def revocations(self) -> RevocationList:
        """The revocation list (empty if none was written yet).

        Raises:
            KeyStoreError: the file is corrupt.
        """
        path = self._path(self.REVOCATIONS)
        if not path.exists():
            return RevocationList.empty(self.ca_certificate())
        try:
            return RevocationList.from_json(path.read_bytes())
        except PkiDecodeError as error:
            raise KeyStoreError("corrupt revocation list", path) from error

    def _write_revocations(self, revocations: RevocationList) -> None:
        atomic_write(self._path(self.REVOCATIONS), revocations.to_json().encode("utf-8"))

    def authenticate_peer(self, certificate_der: bytes, now: datetime) -> str:
        """Check a TLS peer's certificate after the handshake; return its terminal id.

        Args:
            certificate_der: ``ssl_socket.getpeercert(binary_form=True)``.
            now: the current time (aware datetime).

        Returns:
            The terminal id (then ask the firewall whether it is paired).

        Raises:
            CertificateRejected: not from the store CA, out of date, revoked, not a terminal
                certificate.
        """
        return authenticate_terminal_certificate(
            certificate_der, self.ca_certificate(), self.revocations(), now
        )


def _is_ip(name: object) -> bool:
    try:
        ipaddress.ip_address(str(name))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- POI side


class TerminalKeyStore:
    """A terminal's own key, its certificate and the pinned store CA, in one directory.

    The key is generated on the terminal (:meth:`make_csr`) and never leaves it; pairing brings
    back the certificate and the CA, which :meth:`install` checks before storing.

    Args:
        directory: where the files live (created 0700).
        passphrase: encrypts the terminal key on disk when given.
    """

    KEY = "terminal.key"
    CERT = "terminal.crt"
    CA_CERT = "ca.crt"

    def __init__(self, directory: Path | str, *, passphrase: bytes | None = None) -> None:
        self.directory = Path(directory)
        self._passphrase = passphrase

    def __repr__(self) -> str:
        return f"TerminalKeyStore({str(self.directory)!r})"

    def _path(self, name: str) -> Path:
        return self.directory / name

    def private_key(self) -> PrivateKey:
        """The terminal's key, generated (P-256) and stored on first use.

        Raises:
            UnsafePermissions: the key file is readable by others.
            KeyStoreError: the key cannot be loaded.
        """
        path = self._path(self.KEY)
        if not path.exists():
            _ensure_directory(self.directory)
            atomic_write(path, private_key_to_pem(generate_private_key(), self._passphrase))
            logger.info("generated the terminal key in %s", self.directory)
        return _read_private_key(path, self._passphrase)

    def make_csr(self, terminal_id: str) -> str:
        """A PEM CSR for pairing (:class:`~shouyin.link.pairing.PairingClient` ``csr=``).

        Args:
            terminal_id: this terminal's id.

        Returns:
            The CSR as PEM text.
        """
        return csr_to_pem(make_csr(self.private_key(), terminal_id))

    def install(
        self,
        certificate_pem: str,
        ca_certificate_pem: str,
        now: datetime,
        *,
        expected_ca_fingerprint: str | None = None,
    ) -> str:
        """Check and store what pairing brought back; return this terminal's id.

        Args:
            certificate_pem: the terminal certificate issued by the store.
            ca_certificate_pem: the store CA certificate, to pin.
            now: the current time (aware datetime).
            expected_ca_fingerprint: the fingerprint from the pairing QR code, when one was
                scanned; the CA must match it.

        Returns:
            The terminal id in the certificate.

        Raises:
            CertificateRejected: the CA does not match the scanned fingerprint, the certificate is
                not for this terminal's key, not issued by that CA, out of date, or has no id.
            PkiDecodeError: malformed PEM.
        """
        ca = certificate_from_pem(ca_certificate_pem)
        certificate = certificate_from_pem(certificate_pem)
        if expected_ca_fingerprint is not None and not hmac.compare_digest(
            certificate_fingerprint(ca), expected_ca_fingerprint.lower()
        ):
            raise CertificateRejected(
                CertificateProblem.FINGERPRINT_MISMATCH, "the CA is not the one in the QR code"
            )
        verify_issued_by(certificate, ca, now=now)
        public_key = certificate.public_key()
        if not isinstance(public_key, PublicKey) or not public_keys_equal(
            public_key, self.private_key().public_key()
        ):
            raise CertificateRejected(CertificateProblem.KEY_MISMATCH, "not this terminal's key")
        terminal_id = terminal_id_from_certificate(certificate)
        _write_certificate(self._path(self.CA_CERT), ca)
        _write_certificate(self._path(self.CERT), certificate)
        logger.info(
            "installed certificate for terminal %r, pinned store CA %s",
            terminal_id,
            certificate_fingerprint(ca),
        )
        return terminal_id

    def is_paired(self) -> bool:
        """Whether a certificate and a pinned CA are installed."""
        return all(self._path(n).exists() for n in (self.KEY, self.CERT, self.CA_CERT))

    def terminal_id(self) -> str:
        """This terminal's id, from its certificate.

        Raises:
            NotInitialised: not paired yet.
        """
        return terminal_id_from_certificate(_read_certificate(self._path(self.CERT)))

    def ca_certificate(self) -> x509.Certificate:
        """The pinned store CA.

        Raises:
            NotInitialised: not paired yet.
        """
        return _read_certificate(self._path(self.CA_CERT))

    def ssl_client_context(self, server_hostname: str | None) -> ssl.SSLContext:
        """The TLS 1.3 client context (see :func:`client_ssl_context`).

        Args:
            server_hostname: the name or address dialled, or ``None`` to rely on the CA pin only.

        Returns:
            The context.

        Raises:
            NotInitialised: not paired yet.
        """
        return client_ssl_context(
            self._path(self.CERT),
            self._path(self.KEY),
            self._path(self.CA_CERT),
            server_hostname,
            passphrase=self._passphrase,
        )
