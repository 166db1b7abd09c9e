"""The store's own certificate authority (CA), sans-I/O: x509 with ``cryptography``.

Every store runs its own tiny CA, created by ``shouyin init``. It issues exactly two kinds of
certificates:

* the **server certificate** of the cashier system (ECR): ``serverAuth``, with a SAN per DNS name
  and IP address the terminals may dial (``127.0.0.1``, ``::1``, the store LAN address, a name);
* one **terminal certificate** per paired terminal (POI), issued at the end of pairing
  (:mod:`shouyin.link.pairing`): ``clientAuth``, ``CN`` = the terminal id, and the same id in a SAN
  URI ``urn:shouyin:terminal:<id>`` (the SAN is what :func:`terminal_id_from_certificate` trusts;
  the CN must agree with it).

Design choices, and why:

* **EC P-256 keys, ECDSA-SHA256**: small certificates and fast handshakes on terminal-class CPUs.
  The CA is ``CA:TRUE, pathlen:0`` (it can sign leaves but no intermediate CA) with ``keyCertSign``
  and ``cRLSign`` only; leaves are ``CA:FALSE`` with ``digitalSignature`` and one extended key
  usage, so a terminal certificate cannot act as the server and the server certificate cannot act
  as a terminal (OpenSSL checks the purpose during the handshake).
* **The terminal pins the store CA**, nothing else: the TLS contexts built in
  :mod:`shouyin.link.keystore` load no system roots. :func:`certificate_fingerprint` (SHA-256 of
  the DER certificate, 64 lowercase hex digits) of the *CA certificate* is what the pairing QR
  code carries (:mod:`shouyin.link.pairing_qr`), so a terminal can check the CA it receives at the
  end of pairing against what it scanned.
* **Revocation** is a set of serial numbers (:class:`RevocationList`, a tiny CRL serialised as
  JSON), checked by the server after each handshake with :func:`is_revoked` /
  :func:`authenticate_terminal_certificate`. Serial numbers are random 159-bit integers, so they
  never collide; re-pairing a terminal issues a new certificate and revokes the old serial.
* **Pure**: no file access and no clock. ``now`` (an aware :class:`~datetime.datetime`) is passed
  in; validity starts 5 minutes before ``now`` to tolerate clock skew between machines, and a leaf
  never outlives its CA. Key generation and serial numbers use the operating system's CSPRNG.

Private keys live in objects whose ``repr`` hides them (:class:`CaBundle`, :class:`CertifiedKey`);
nothing here logs key bytes. PEM helpers encrypt private keys with a passphrase when one is given.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from shouyin.link.errors import LinkError, RemoteProtocolError
from shouyin.link.pairing import CertificateIssuer

__all__ = [
    "CA_VALID_DAYS",
    "CLOCK_SKEW",
    "LEAF_VALID_DAYS",
    "TERMINAL_URI_PREFIX",
    "CaBundle",
    "CertificateProblem",
    "CertificateRejected",
    "CertifiedKey",
    "PkiDecodeError",
    "PkiError",
    "PrivateKey",
    "PublicKey",
    "RevocationList",
    "RevokedCertificate",
    "authenticate_terminal_certificate",
    "certificate_fingerprint",
    "certificate_from_der",
    "certificate_from_pem",
    "certificate_to_pem",
    "create_ca",
    "csr_from_pem",
    "csr_to_pem",
    "generate_private_key",
    "is_revoked",
    "issue_server_certificate",
    "issue_terminal_certificate",
    "make_csr",
    "pairing_certificate_issuer",
    "private_key_from_pem",
    "private_key_to_pem",
    "public_keys_equal",
    "store_ca_name",
    "terminal_id_from_certificate",
    "verify_issued_by",
]

logger = logging.getLogger(__name__)

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
"""Private key types accepted for the CA, the server and terminals."""
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
"""Public key types accepted in certificates and CSRs."""

CA_VALID_DAYS = 3650
"""Default lifetime of the store CA (10 years)."""
LEAF_VALID_DAYS = 825
"""Default lifetime of server and terminal certificates (the CA/Browser Forum's old maximum)."""
CLOCK_SKEW = timedelta(minutes=5)
"""Certificates are valid from ``now - CLOCK_SKEW`` so that a slightly slow peer accepts them."""
TERMINAL_URI_PREFIX = "urn:shouyin:terminal:"
"""Prefix of the SAN URI carrying a terminal's id."""

_TERMINAL_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")  # the link's ``Ident`` type
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_CN_MAX = 64  # RFC 5280 ub-common-name / ub-organization-name
_ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1)
_MIN_RSA_BITS = 2048


class PkiError(LinkError):
    """Root of the certificate and key errors of :mod:`shouyin.link.pki`."""


class CertificateProblem(StrEnum):
    """Why a certificate or a certificate signing request was refused."""

    MALFORMED = "malformed"
    NOT_ISSUED_BY_CA = "not_issued_by_ca"
    NOT_A_CA = "not_a_ca"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    WRONG_USAGE = "wrong_usage"
    NO_TERMINAL_ID = "no_terminal_id"
    TERMINAL_ID_MISMATCH = "terminal_id_mismatch"
    BAD_SIGNATURE = "bad_signature"
    WEAK_KEY = "weak_key"
    KEY_MISMATCH = "key_mismatch"
    FINGERPRINT_MISMATCH = "fingerprint_mismatch"


class CertificateRejected(PkiError, RemoteProtocolError):
    """A certificate or CSR presented by a peer is not acceptable.

    Attributes:
        problem: the :class:`CertificateProblem`.
        detail: a short explanation (names and serial numbers, never key bytes).
    """

    def __init__(self, problem: CertificateProblem, detail: str = "") -> None:
        text = f"certificate refused: {problem.value}"
        super().__init__(f"{text} ({detail})" if detail else text)
        self.problem = problem
        self.detail = detail


class PkiDecodeError(PkiError):
    """PEM or JSON data could not be loaded: malformed, of the wrong kind, or a wrong passphrase.

    Attributes:
        what: ``"certificate"``, ``"private key"``, ``"csr"`` or ``"revocation list"``.
        reason: a short explanation (never the data).
    """

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"cannot load {what}: {reason}")
        self.what = what
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CaBundle:
    """The store CA: its certificate and its private key (hidden from ``repr``)."""

    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the CA certificate (see :func:`certificate_fingerprint`)."""
        return certificate_fingerprint(self.certificate)


@dataclass(frozen=True, slots=True)
class CertifiedKey:
    """A certificate with its private key (hidden from ``repr``), e.g. the server's."""

    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)


# --------------------------------------------------------------------------- helpers


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (e.g. datetime.now(UTC))")
    return now.astimezone(UTC)


def _fit(text: str) -> str:
    # cryptography counts the 64-character X.509 limit in UTF-8 bytes: cut on a character edge.
    return text.encode("utf-8")[:_CN_MAX].decode("utf-8", "ignore")


def _check_terminal_id(terminal_id: str) -> str:
    if not _TERMINAL_ID.fullmatch(terminal_id):
        raise ValueError("a terminal id is 1-64 characters among A-Z a-z 0-9 . _ : -")
    return terminal_id


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    # Ed25519 signs the message itself; the others sign a SHA-256 digest.
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _check_public_key(key: object) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, _ALLOWED_CURVES):
            return key
        raise CertificateRejected(CertificateProblem.WEAK_KEY, f"curve {key.curve.name}")
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size >= _MIN_RSA_BITS:
            return key
        raise CertificateRejected(CertificateProblem.WEAK_KEY, f"RSA {key.key_size} bits")
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise CertificateRejected(CertificateProblem.WEAK_KEY, f"unsupported key {type(key).__name__}")


def _common_name(cert: x509.Certificate | x509.CertificateSigningRequest) -> str | None:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else None


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _extended_usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def _leaf_builder(
    ca: CaBundle,
    *,
    subject: x509.Name,
    public_key: PublicKey,
    now: datetime,
    valid_days: int,
    usage: x509.ObjectIdentifier,
) -> x509.CertificateBuilder:
    if valid_days < 1:
        raise ValueError("valid_days must be at least 1")
    now = _utc(now)
    not_after = min(now + timedelta(days=valid_days), ca.certificate.not_valid_after_utc)
    if not_after <= now:
        raise PkiError("the store CA has expired: create a new one and pair the terminals again")
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )


# --------------------------------------------------------------------------- issuing


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """Generate a fresh EC P-256 private key (the kind used everywhere in shouyin).

    Returns:
        The new key.
    """
    return ec.generate_private_key(ec.SECP256R1())


def store_ca_name(store_name: str) -> x509.Name:
    """The subject of a store's CA: ``CN=shouyin store CA <store_name>, O=<store_name>``.

    Each attribute is cut to the 64 bytes of UTF-8 that X.509 tooling allows.

    Args:
        store_name: the store's name.

    Returns:
        The name.
    """
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _fit(f"shouyin store CA {store_name}")),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _fit(store_name)),
        ]
    )


def create_ca(store_name: str, now: datetime, valid_days: int = CA_VALID_DAYS) -> CaBundle:
    """Create the store's self-signed CA with a new EC P-256 key.

    Args:
        store_name: the store's name; the subject is ``CN=shouyin store CA <store_name>,
            O=<store_name>`` (each cut to the 64 bytes of UTF-8 that X.509 tooling allows).
        now: the current time (aware datetime).
        valid_days: lifetime in days.

    Returns:
        The CA certificate and key.

    Raises:
        ValueError: empty store name, naive ``now`` or a non-positive lifetime.
    """
    if not store_name.strip():
        raise ValueError("store_name must not be empty")
    if valid_days < 1:
        raise ValueError("valid_days must be at least 1")
    now = _utc(now)
    key = generate_private_key()
    name = store_ca_name(store_name)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    logger.info(
        "created store CA %r, fingerprint %s", store_name, certificate_fingerprint(certificate)
    )
    return CaBundle(certificate, key)


def _general_names(
    names: Iterable[str | ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        general: x509.GeneralName
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            host = str(name).rstrip(".").lower()
            labels = host.split(".")
            if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
                raise ValueError(f"not an IP address or an ASCII host name: {name!r}") from None
            general = x509.DNSName(host)
        else:
            if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
                raise ValueError(f"an IPv6 zone id has no place in a certificate: {name!r}")
            general = x509.IPAddress(address)
        if general not in result:
            result.append(general)
    if not result:
        raise ValueError("a server certificate needs at least one host name or IP address")
    return result


def issue_server_certificate(
    ca: CaBundle,
    names: Iterable[str | ipaddress.IPv4Address | ipaddress.IPv6Address],
    now: datetime,
    valid_days: int = LEAF_VALID_DAYS,
    key: PrivateKey | None = None,
) -> CertifiedKey:
    """Issue the cashier system's TLS server certificate (``serverAuth``).

    Args:
        ca: the store CA.
        names: DNS names and IP addresses terminals may dial (``"127.0.0.1"``, ``"::1"``,
            ``"pos.example.lan"``); each becomes a SAN, the first one is also the CN.
        now: the current time (aware datetime).
        valid_days: lifetime in days (never beyond the CA's own expiry).
        key: the server key; a new P-256 key when ``None``.

    Returns:
        The certificate and its key.

    Raises:
        ValueError: no names, a name that is neither an IP address nor a host name, naive ``now``.
        PkiError: the CA has expired.
    """
    general = _general_names(names)
    key = key if key is not None else generate_private_key()
    public_key = _check_public_key(key.public_key())
    first = general[0].value
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _fit(str(first)))])
    certificate = (
        _leaf_builder(
            ca,
            subject=subject,
            public_key=public_key,
            now=now,
            valid_days=valid_days,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
        )
        .add_extension(x509.SubjectAlternativeName(general), critical=False)
        .sign(ca.key, _signature_hash(ca.key))
    )
    logger.info(
        "issued server certificate for %s, serial %x",
        ", ".join(str(g.value) for g in general),
        certificate.serial_number,
    )
    return CertifiedKey(certificate, key)


def make_csr(private_key: PrivateKey, terminal_id: str) -> x509.CertificateSigningRequest:
    """Make a terminal's certificate signing request (CN and SAN URI carry the terminal id).

    Args:
        private_key: the terminal's own key (it never leaves the terminal).
        terminal_id: the terminal's id (the link's ``Ident`` syntax).

    Returns:
        The signed CSR.

    Raises:
        ValueError: the terminal id is not valid.
    """
    _check_terminal_id(terminal_id)
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, terminal_id)]))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(TERMINAL_URI_PREFIX + terminal_id)]
            ),
            critical=False,
        )
        .sign(private_key, _signature_hash(private_key))
    )


def issue_terminal_certificate(
    ca: CaBundle,
    terminal_id: str,
    subject: PublicKey | x509.CertificateSigningRequest,
    now: datetime,
    valid_days: int = LEAF_VALID_DAYS,
) -> x509.Certificate:
    """Issue a paired terminal's TLS client certificate (``clientAuth``).

    Only the public key is taken from a CSR; its requested extensions are ignored (the CA decides
    what a terminal certificate says). A CSR must be validly self-signed and, if it names a CN,
    name this very terminal.

    Args:
        ca: the store CA.
        terminal_id: the terminal's id; becomes the CN and the SAN URI
            ``urn:shouyin:terminal:<id>``.
        subject: the terminal's public key, or its CSR (see :func:`make_csr`).
        now: the current time (aware datetime).
        valid_days: lifetime in days (never beyond the CA's own expiry).

    Returns:
        The terminal certificate.

    Raises:
        ValueError: invalid terminal id, naive ``now``.
        CertificateRejected: the CSR's signature is bad, it names another terminal, or the key is
            weak or of an unsupported kind.
        PkiError: the CA has expired.
    """
    _check_terminal_id(terminal_id)
    if isinstance(subject, x509.CertificateSigningRequest):
        if not subject.is_signature_valid:
            raise CertificateRejected(CertificateProblem.BAD_SIGNATURE, "CSR signature")
        requested = subject.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if requested and _common_name(subject) != terminal_id:
            raise CertificateRejected(
                CertificateProblem.TERMINAL_ID_MISMATCH, f"CSR is not for terminal {terminal_id!r}"
            )
        public_key = _check_public_key(subject.public_key())
    else:
        public_key = _check_public_key(subject)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, terminal_id)])
    certificate = (
        _leaf_builder(
            ca,
            subject=name,
            public_key=public_key,
            now=now,
            valid_days=valid_days,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(TERMINAL_URI_PREFIX + terminal_id)]
            ),
            critical=False,
        )
        .sign(ca.key, _signature_hash(ca.key))
    )
    logger.info(
        "issued terminal certificate for %r, serial %x", terminal_id, certificate.serial_number
    )
    return certificate


def pairing_certificate_issuer(
    ca: CaBundle,
    clock: Callable[[], datetime],
    on_issued: Callable[[str, x509.Certificate], None] | None = None,
) -> CertificateIssuer:
    """Adapt the CA to :class:`~shouyin.link.pairing.PairingServer`'s ``issuer`` hook.

    The hook runs once the terminal proved it knows the pairing code. With a CSR it returns the
    terminal certificate and the CA certificate (PEM); without one only the CA certificate, which
    the terminal then pins.

    Args:
        ca: the store CA.
        clock: returns the current aware time (the pairing hook itself takes no ``now``).
        on_issued: called with ``(terminal_id, certificate)`` after issuing, e.g. to persist it
            (:meth:`shouyin.link.keystore.KeyStore.certificate_issuer` does).

    Returns:
        The hook ``(terminal_id, csr_pem) -> (certificate_pem, ca_certificate_pem)``.
    """
    ca_pem = certificate_to_pem(ca.certificate)

    def issue(terminal_id: str, csr_pem: str | None) -> tuple[str | None, str | None]:
        if csr_pem is None:
            return None, ca_pem
        try:
            csr = csr_from_pem(csr_pem)
        except PkiDecodeError as error:
            raise CertificateRejected(CertificateProblem.MALFORMED, "CSR") from error
        certificate = issue_terminal_certificate(ca, terminal_id, csr, clock())
        if on_issued is not None:
            on_issued(terminal_id, certificate)
        return certificate_to_pem(certificate), ca_pem

    return issue


# --------------------------------------------------------------------------- checking


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, as 64 lowercase hex digits without colons.

    Args:
        certificate: any certificate (the store CA's goes in the pairing QR code).

    Returns:
        The fingerprint.
    """
    return certificate.fingerprint(hashes.SHA256()).hex()


def public_keys_equal(a: PublicKey, b: PublicKey) -> bool:
    """Whether two public keys are the same key (compared as DER SubjectPublicKeyInfo)."""
    encoding, fmt = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(encoding, fmt) == b.public_bytes(encoding, fmt)


def verify_issued_by(
    certificate: x509.Certificate, ca_certificate: x509.Certificate, *, now: datetime | None = None
) -> None:
    """Check that ``certificate`` was signed by the store CA (and, given ``now``, is in date).

    Args:
        certificate: the certificate to check.
        ca_certificate: the store CA certificate.
        now: when given, both certificates must be valid at that time.

    Raises:
        CertificateRejected: ``NOT_A_CA`` if ``ca_certificate`` is not a CA, ``NOT_ISSUED_BY_CA``,
            ``EXPIRED`` or ``NOT_YET_VALID``.
    """
    try:
        constraints = ca_certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        is_ca = constraints.value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertificateRejected(CertificateProblem.NOT_A_CA)
    try:
        certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature) as error:
        raise CertificateRejected(
            CertificateProblem.NOT_ISSUED_BY_CA, f"serial {certificate.serial_number:x}"
        ) from error
    if now is not None:
        moment = _utc(now)
        for cert in (ca_certificate, certificate):
            if moment < cert.not_valid_before_utc:
                raise CertificateRejected(
                    CertificateProblem.NOT_YET_VALID, f"serial {cert.serial_number:x}"
                )
            if moment > cert.not_valid_after_utc:
                raise CertificateRejected(
                    CertificateProblem.EXPIRED, f"serial {cert.serial_number:x}"
                )


def terminal_id_from_certificate(certificate: x509.Certificate) -> str:
    """The terminal id a terminal certificate was issued for.

    The id is read from the SAN URI ``urn:shouyin:terminal:<id>`` (exactly one), and the CN must
    say the same.

    Args:
        certificate: a terminal certificate.

    Returns:
        The terminal id.

    Raises:
        CertificateRejected: ``NO_TERMINAL_ID`` (no or several such URIs, or an invalid id) or
            ``TERMINAL_ID_MISMATCH`` (the CN disagrees).
    """
    san = _san(certificate)
    uris = [] if san is None else san.get_values_for_type(x509.UniformResourceIdentifier)
    ids = [uri[len(TERMINAL_URI_PREFIX) :] for uri in uris if uri.startswith(TERMINAL_URI_PREFIX)]
    if len(ids) != 1 or not _TERMINAL_ID.fullmatch(ids[0]):
        raise CertificateRejected(
            CertificateProblem.NO_TERMINAL_ID, f"serial {certificate.serial_number:x}"
        )
    if _common_name(certificate) != ids[0]:
        raise CertificateRejected(
            CertificateProblem.TERMINAL_ID_MISMATCH, f"serial {certificate.serial_number:x}"
        )
    return ids[0]


def authenticate_terminal_certificate(
    certificate: x509.Certificate | bytes,
    ca_certificate: x509.Certificate,
    revocations: RevocationList | Collection[int],
    now: datetime,
) -> str:
    """Every check the server makes on a terminal's certificate after the TLS handshake.

    OpenSSL already verified the chain during the handshake; this repeats it (defence in depth,
    and for adapters that hand over the DER from ``SSLSocket.getpeercert(binary_form=True)``) and
    adds what OpenSSL cannot know: the revocation list and the terminal id.

    Args:
        certificate: the peer certificate, parsed or DER bytes.
        ca_certificate: the store CA certificate.
        revocations: the revoked serial numbers.
        now: the current time (aware datetime).

    Returns:
        The authenticated terminal id (then check it with
        :meth:`shouyin.link.firewall.Firewall.check_identity`).

    Raises:
        CertificateRejected: malformed, not from the store CA, out of date, not a ``clientAuth``
            leaf, revoked, or without a terminal id.
    """
    if isinstance(certificate, bytes):
        certificate = certificate_from_der(certificate)
    verify_issued_by(certificate, ca_certificate, now=now)
    try:
        leaf_is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        leaf_is_ca = False
    if leaf_is_ca or ExtendedKeyUsageOID.CLIENT_AUTH not in _extended_usages(certificate):
        raise CertificateRejected(
            CertificateProblem.WRONG_USAGE, f"serial {certificate.serial_number:x}"
        )
    if is_revoked(certificate, revocations):
        raise CertificateRejected(
            CertificateProblem.REVOKED, f"serial {certificate.serial_number:x}"
        )
    return terminal_id_from_certificate(certificate)


# --------------------------------------------------------------------------- revocation


class RevokedCertificate(BaseModel):
    """One entry of the :class:`RevocationList`. ``serial`` is written as lowercase hex in JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: int = Field(ge=1, lt=2**160)
    terminal_id: str | None = Field(default=None, max_length=64)
    revoked_at: datetime
    reason: str = Field(default="", max_length=256)

    @field_validator("serial", mode="before")
    @classmethod
    def _parse_hex(cls, value: object) -> object:
        if isinstance(value, str):
            if not re.fullmatch(r"[0-9a-f]{1,40}", value):
                raise ValueError("serial must be 1-40 lowercase hex digits")
            return int(value, 16)
        return value

    @field_serializer("serial")
    def _write_hex(self, serial: int) -> str:
        return f"{serial:x}"


class RevocationList(BaseModel):
    """A tiny CRL: the serial numbers of revoked certificates of one store CA, as JSON.

    It is immutable; :meth:`revoke` returns a new list. The server checks it after every handshake
    (:func:`authenticate_terminal_certificate`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    issuer_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    entries: tuple[RevokedCertificate, ...] = ()

    @classmethod
    def empty(cls, ca_certificate: x509.Certificate) -> RevocationList:
        """An empty list for the given CA."""
        return cls(issuer_fingerprint=certificate_fingerprint(ca_certificate))

    @property
    def serials(self) -> frozenset[int]:
        """The revoked serial numbers."""
        return frozenset(entry.serial for entry in self.entries)

    def revoke(
        self, certificate: x509.Certificate, now: datetime, reason: str = ""
    ) -> RevocationList:
        """Add a certificate (idempotent: an already revoked serial is kept as it was).

        Args:
            certificate: the certificate to revoke; its terminal id is recorded when it has one.
            now: the time of revocation (aware datetime).
            reason: a short human reason ("terminal stolen", "re-paired").

        Returns:
            The new list.
        """
        try:
            terminal_id: str | None = terminal_id_from_certificate(certificate)
        except CertificateRejected:
            terminal_id = None
        return self.revoke_serial(certificate.serial_number, now, terminal_id, reason)

    def revoke_serial(
        self, serial: int, now: datetime, terminal_id: str | None = None, reason: str = ""
    ) -> RevocationList:
        """Add a serial number (idempotent).

        Args:
            serial: the certificate serial number.
            now: the time of revocation (aware datetime).
            terminal_id: the terminal it belonged to, if known.
            reason: a short human reason.

        Returns:
            The new list.
        """
        if serial in self.serials:
            return self
        entry = RevokedCertificate(
            serial=serial, terminal_id=terminal_id, revoked_at=_utc(now), reason=reason
        )
        return self.model_copy(update={"entries": (*self.entries, entry)})

    def to_json(self) -> str:
        """The list as indented JSON text."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> RevocationList:
        """Load a list written by :meth:`to_json`.

        Raises:
            PkiDecodeError: the text is not a valid revocation list.
        """
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            raise PkiDecodeError(
                "revocation list", f"{error.error_count()} invalid field(s)"
            ) from error


def is_revoked(
    certificate: x509.Certificate | int, revocations: RevocationList | Collection[int]
) -> bool:
    """Whether a certificate (or a serial number) is revoked.

    Args:
        certificate: the certificate, or its serial number.
        revocations: a :class:`RevocationList` or a plain collection of serial numbers.

    Returns:
        ``True`` if its serial is in the list.
    """
    serial = certificate if isinstance(certificate, int) else certificate.serial_number
    serials = revocations.serials if isinstance(revocations, RevocationList) else revocations
    return serial in serials


# --------------------------------------------------------------------------- PEM


def certificate_to_pem(certificate: x509.Certificate) -> str:
    """A certificate as PEM text."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_from_pem(data: str | bytes) -> x509.Certificate:
    """Load one PEM certificate.

    Raises:
        PkiDecodeError: not a PEM certificate.
    """
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    try:
        return x509.load_pem_x509_certificate(raw)
    except ValueError as error:
        raise PkiDecodeError("certificate", "not a PEM certificate") from error


def certificate_from_der(data: bytes) -> x509.Certificate:
    """Load one DER certificate (as given by ``getpeercert(binary_form=True)``).

    Raises:
        CertificateRejected: ``MALFORMED``.
    """
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise CertificateRejected(CertificateProblem.MALFORMED, "DER certificate") from error


def csr_to_pem(csr: x509.CertificateSigningRequest) -> str:
    """A CSR as PEM text."""
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def csr_from_pem(data: str | bytes) -> x509.CertificateSigningRequest:
    """Load one PEM certificate signing request.

    Raises:
        PkiDecodeError: not a PEM CSR.
    """
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    try:
        return x509.load_pem_x509_csr(raw)
    except ValueError as error:
        raise PkiDecodeError("csr", "not a PEM certificate signing request") from error


def private_key_to_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """A private key as PKCS#8 PEM, encrypted when a passphrase is given.

    Args:
        key: the key.
        passphrase: encrypt with it (PBES2, AES-256-CBC) when given; it must not be empty.

    Returns:
        The PEM bytes (treat as secret even when encrypted).

    Raises:
        ValueError: an empty passphrase.
    """
    if passphrase is not None and not passphrase:
        raise ValueError("an empty passphrase is no passphrase: pass None")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def private_key_from_pem(data: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Load a PEM private key, decrypting it with the passphrase when it is encrypted.

    Args:
        data: the PEM bytes.
        passphrase: the passphrase, or ``None`` for an unencrypted key.

    Returns:
        The key.

    Raises:
        PkiDecodeError: malformed, a wrong or missing passphrase, a passphrase for an
            unencrypted key, or an unsupported key type.
    """
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as error:
        reason = "passphrase required" if passphrase is None else "key is not encrypted"
        raise PkiDecodeError("private key", reason) from error
    except ValueError as error:
        raise PkiDecodeError("private key", "malformed, or wrong passphrase") from error
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    ):
        raise PkiDecodeError("private key", f"unsupported key type {type(key).__name__}")
    return key
