"""The store CA: issuing, checking and revoking certificates, PEM helpers. No files, fixed clock."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from shouyin.link.errors import LinkError, RemoteProtocolError
from shouyin.link.pki import (
    CLOCK_SKEW,
    CaBundle,
    CertificateProblem,
    CertificateRejected,
    PkiDecodeError,
    RevocationList,
    authenticate_terminal_certificate,
    certificate_fingerprint,
    certificate_from_der,
    certificate_from_pem,
    certificate_to_pem,
    create_ca,
    csr_from_pem,
    csr_to_pem,
    generate_private_key,
    is_revoked,
    issue_server_certificate,
    issue_terminal_certificate,
    make_csr,
    pairing_certificate_issuer,
    private_key_from_pem,
    private_key_to_pem,
    terminal_id_from_certificate,
    verify_issued_by,
)

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
T = TypeVar("T", bound=x509.ExtensionType)


@pytest.fixture(scope="module")
def ca() -> CaBundle:
    return create_ca("示范超市", NOW)


@pytest.fixture(scope="module")
def other_ca() -> CaBundle:
    return create_ca("another store", NOW)


@pytest.fixture(scope="module")
def terminal_key() -> ec.EllipticCurvePrivateKey:
    return generate_private_key()


def _extension(cert: x509.Certificate, kind: type[T]) -> x509.Extension[T]:
    return cert.extensions.get_extension_for_class(kind)


# -- the CA ------------------------------------------------------------------------------------


def test_ca_is_a_self_signed_p256_ca_limited_to_signing_leaves(ca: CaBundle) -> None:
    cert = ca.certificate
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    assert isinstance(ca.key.curve, ec.SECP256R1)
    cert.verify_directly_issued_by(cert)
    constraints = _extension(cert, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = _extension(cert, x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature


def test_ca_subject_names_the_store(ca: CaBundle) -> None:
    names = ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [n.value for n in names] == ["shouyin store CA 示范超市"]


def test_ca_is_valid_from_slightly_before_now_for_ten_years(ca: CaBundle) -> None:
    assert ca.certificate.not_valid_before_utc == NOW - CLOCK_SKEW
    assert ca.certificate.not_valid_after_utc == NOW + timedelta(days=3650)


def test_ca_with_a_very_long_store_name_is_truncated_to_x509_limits() -> None:
    bundle = create_ca("超" * 100, NOW, valid_days=1)
    cn = bundle.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str)
    assert cn.startswith("shouyin store CA 超")
    assert 61 <= len(cn.encode()) <= 64


@pytest.mark.parametrize(
    ("store_name", "now", "days"),
    [("", NOW, 10), ("s", NOW.replace(tzinfo=None), 10), ("s", NOW, 0)],
    ids=["empty-name", "naive-now", "zero-days"],
)
def test_create_ca_refuses_bad_arguments(store_name: str, now: datetime, days: int) -> None:
    with pytest.raises(ValueError):
        create_ca(store_name, now, valid_days=days)


def test_bundle_repr_never_shows_the_private_key(ca: CaBundle) -> None:
    assert "key" not in repr(ca)
    assert "PRIVATE" not in repr(ca)


# -- server certificates ---------------------------------------------------------------------


def test_server_certificate_has_dns_and_ip_sans_and_server_auth(ca: CaBundle) -> None:
    server = issue_server_certificate(ca, ["127.0.0.1", "::1", "POS.example.lan."], NOW)
    cert = server.certificate
    verify_issued_by(cert, ca.certificate, now=NOW)
    san = _extension(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["pos.example.lan"]
    assert list(_extension(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not _extension(cert, x509.BasicConstraints).value.ca
    assert "key" not in repr(server)


def test_server_certificate_deduplicates_names(ca: CaBundle) -> None:
    cert = issue_server_certificate(
        ca, ["127.0.0.1", ipaddress.ip_address("127.0.0.1"), "a.lan", "A.lan"], NOW
    ).certificate
    san = _extension(cert, x509.SubjectAlternativeName).value
    assert len(list(san)) == 2


@pytest.mark.parametrize(
    "names",
    [
        [],
        ["bad name"],
        ["-x.lan"],
        ["a..b"],
        ["*.lan"],
        ["x" * 64 + ".lan"],
        ["收银.lan"],
        ["fe80::1%eth0"],
    ],
)
def test_server_certificate_refuses_invalid_names(ca: CaBundle, names: list[str]) -> None:
    with pytest.raises(ValueError):
        issue_server_certificate(ca, names, NOW)


def test_server_certificate_keeps_a_given_key(ca: CaBundle) -> None:
    key = generate_private_key()
    server = issue_server_certificate(ca, ["127.0.0.1"], NOW, key=key)
    assert server.key is key


# -- terminal certificates -------------------------------------------------------------------


def test_terminal_certificate_from_csr_names_the_terminal_in_cn_and_san_uri(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issue_terminal_certificate(ca, "T-0001", make_csr(terminal_key, "T-0001"), NOW)
    assert cert.subject.rfc4514_string() == "CN=T-0001"
    san = _extension(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:shouyin:terminal:T-0001"
    ]
    assert list(_extension(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert terminal_id_from_certificate(cert) == "T-0001"
    assert cert.public_key() == terminal_key.public_key()


def test_terminal_certificate_from_a_bare_public_key(ca: CaBundle) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cert = issue_terminal_certificate(ca, "T-ed", key.public_key(), NOW)
    assert terminal_id_from_certificate(cert) == "T-ed"


def test_terminal_certificate_ignores_extensions_requested_in_the_csr(ca: CaBundle) -> None:
    key = generate_private_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "T-1")]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("evil.example")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert = issue_terminal_certificate(ca, "T-1", csr, NOW)
    assert not _extension(cert, x509.BasicConstraints).value.ca
    san = _extension(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == []


def test_csr_for_another_terminal_is_refused(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    with pytest.raises(CertificateRejected) as info:
        issue_terminal_certificate(ca, "T-0001", make_csr(terminal_key, "T-9999"), NOW)
    assert info.value.problem is CertificateProblem.TERMINAL_ID_MISMATCH


def test_csr_with_a_bad_signature_is_refused(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    der = bytearray(make_csr(terminal_key, "T-1").public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # inside the signature's last integer
    tampered = x509.load_der_x509_csr(bytes(der))
    with pytest.raises(CertificateRejected) as info:
        issue_terminal_certificate(ca, "T-1", tampered, NOW)
    assert info.value.problem is CertificateProblem.BAD_SIGNATURE


@pytest.mark.parametrize(
    "key",
    [
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(),
        ec.generate_private_key(ec.SECP256K1()).public_key(),
    ],
    ids=["rsa-1024", "secp256k1"],
)
def test_weak_or_unusual_terminal_keys_are_refused(ca: CaBundle, key: object) -> None:
    with pytest.raises(CertificateRejected) as info:
        issue_terminal_certificate(ca, "T-1", key, NOW)  # type: ignore[arg-type]
    assert info.value.problem is CertificateProblem.WEAK_KEY


@pytest.mark.parametrize("terminal_id", ["", "a b", "x" * 65, "t/1", "终端"])
def test_invalid_terminal_ids_are_refused(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey, terminal_id: str
) -> None:
    with pytest.raises(ValueError, match="terminal id"):
        issue_terminal_certificate(ca, terminal_id, terminal_key.public_key(), NOW)
    with pytest.raises(ValueError, match="terminal id"):
        make_csr(terminal_key, terminal_id)


_SHARED_CA = create_ca("hypothesis", NOW)
_SHARED_KEY = generate_private_key()


@settings(max_examples=25, deadline=None)
@given(terminal_id=st.from_regex(r"[A-Za-z0-9._:\-]{1,64}", fullmatch=True))
def test_any_valid_terminal_id_round_trips_through_a_certificate(terminal_id: str) -> None:
    bundle = _SHARED_CA
    key = _SHARED_KEY
    cert = issue_terminal_certificate(bundle, terminal_id, make_csr(key, terminal_id), NOW)
    assert terminal_id_from_certificate(cert) == terminal_id
    assert terminal_id_from_certificate(certificate_from_pem(certificate_to_pem(cert))) == (
        terminal_id
    )


def test_leaf_never_outlives_its_ca(terminal_key: ec.EllipticCurvePrivateKey) -> None:
    short_ca = create_ca("short", NOW, valid_days=30)
    cert = issue_terminal_certificate(short_ca, "T-1", terminal_key.public_key(), NOW)
    assert cert.not_valid_after_utc == short_ca.certificate.not_valid_after_utc


def test_an_expired_ca_issues_nothing(terminal_key: ec.EllipticCurvePrivateKey) -> None:
    old_ca = create_ca("old", NOW - timedelta(days=20), valid_days=10)
    with pytest.raises(LinkError, match="expired"):
        issue_terminal_certificate(old_ca, "T-1", terminal_key.public_key(), NOW)


# -- checking ----------------------------------------------------------------------------------


def test_fingerprint_is_lowercase_sha256_hex_of_the_der(ca: CaBundle) -> None:
    der = ca.certificate.public_bytes(serialization.Encoding.DER)
    assert certificate_fingerprint(ca.certificate) == hashlib.sha256(der).hexdigest()
    assert ca.fingerprint == certificate_fingerprint(ca.certificate)


def test_certificate_from_another_ca_is_not_issued_by_ours(
    ca: CaBundle, other_ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    foreign = issue_terminal_certificate(other_ca, "T-1", terminal_key.public_key(), NOW)
    with pytest.raises(CertificateRejected) as info:
        verify_issued_by(foreign, ca.certificate)
    assert info.value.problem is CertificateProblem.NOT_ISSUED_BY_CA
    assert isinstance(info.value, RemoteProtocolError)


def test_a_leaf_cannot_serve_as_the_ca(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    leaf = issue_terminal_certificate(ca, "T-1", terminal_key.public_key(), NOW)
    with pytest.raises(CertificateRejected) as info:
        verify_issued_by(leaf, leaf)
    assert info.value.problem is CertificateProblem.NOT_A_CA


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        (NOW - timedelta(minutes=6), CertificateProblem.NOT_YET_VALID),
        (NOW + timedelta(days=2), CertificateProblem.EXPIRED),
    ],
)
def test_verify_issued_by_checks_dates_when_given_now(
    ca: CaBundle,
    terminal_key: ec.EllipticCurvePrivateKey,
    when: datetime,
    problem: CertificateProblem,
) -> None:
    cert = issue_terminal_certificate(ca, "T-1", terminal_key.public_key(), NOW, valid_days=1)
    verify_issued_by(cert, ca.certificate, now=NOW)
    with pytest.raises(CertificateRejected) as info:
        verify_issued_by(cert, ca.certificate, now=when)
    assert info.value.problem is problem


def test_server_certificate_carries_no_terminal_id(ca: CaBundle) -> None:
    server = issue_server_certificate(ca, ["127.0.0.1"], NOW)
    with pytest.raises(CertificateRejected) as info:
        terminal_id_from_certificate(server.certificate)
    assert info.value.problem is CertificateProblem.NO_TERMINAL_ID


def test_terminal_id_in_san_must_agree_with_cn(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    ski = _extension(ca.certificate, x509.SubjectKeyIdentifier).value
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "T-1")]))
        .issuer_name(ca.certificate.subject)
        .public_key(terminal_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier("urn:shouyin:terminal:T-2")]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    with pytest.raises(CertificateRejected) as info:
        terminal_id_from_certificate(forged)
    assert info.value.problem is CertificateProblem.TERMINAL_ID_MISMATCH


def test_authenticate_returns_the_terminal_id_of_a_good_certificate(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issue_terminal_certificate(ca, "T-7", terminal_key.public_key(), NOW)
    der = cert.public_bytes(serialization.Encoding.DER)
    revocations = RevocationList.empty(ca.certificate)
    assert authenticate_terminal_certificate(der, ca.certificate, revocations, NOW) == "T-7"


def test_authenticate_refuses_a_revoked_certificate(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issue_terminal_certificate(ca, "T-7", terminal_key.public_key(), NOW)
    revocations = RevocationList.empty(ca.certificate).revoke(cert, NOW, "stolen")
    with pytest.raises(CertificateRejected) as info:
        authenticate_terminal_certificate(cert, ca.certificate, revocations, NOW)
    assert info.value.problem is CertificateProblem.REVOKED


def test_authenticate_refuses_the_server_certificate_as_a_terminal(ca: CaBundle) -> None:
    server = issue_server_certificate(ca, ["127.0.0.1"], NOW)
    with pytest.raises(CertificateRejected) as info:
        authenticate_terminal_certificate(server.certificate, ca.certificate, set(), NOW)
    assert info.value.problem is CertificateProblem.WRONG_USAGE


def test_authenticate_refuses_garbage_der(ca: CaBundle) -> None:
    with pytest.raises(CertificateRejected) as info:
        authenticate_terminal_certificate(b"\x30\x03junk", ca.certificate, set(), NOW)
    assert info.value.problem is CertificateProblem.MALFORMED
    with pytest.raises(CertificateRejected):
        certificate_from_der(b"")


# -- revocation ------------------------------------------------------------------------------


def test_revocation_list_round_trips_through_json_with_hex_serials(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issue_terminal_certificate(ca, "T-3", terminal_key.public_key(), NOW)
    revocations = RevocationList.empty(ca.certificate).revoke(cert, NOW, "lost")
    text = revocations.to_json()
    entry = json.loads(text)["entries"][0]
    assert entry["serial"] == f"{cert.serial_number:x}"
    assert entry["terminal_id"] == "T-3"
    assert RevocationList.from_json(text) == revocations
    assert is_revoked(cert, RevocationList.from_json(text))


def test_revoking_twice_changes_nothing(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issue_terminal_certificate(ca, "T-3", terminal_key.public_key(), NOW)
    once = RevocationList.empty(ca.certificate).revoke(cert, NOW)
    assert once.revoke(cert, NOW + timedelta(days=1)) is once


def test_is_revoked_accepts_plain_serials(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issue_terminal_certificate(ca, "T-3", terminal_key.public_key(), NOW)
    assert is_revoked(cert, {cert.serial_number})
    assert is_revoked(cert.serial_number, frozenset({cert.serial_number}))
    assert not is_revoked(cert, set())


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"version": 2, "issuer_fingerprint": "' + "0" * 64 + '"}',
        '{"version": 1, "issuer_fingerprint": "xyz"}',
        '{"version": 1, "issuer_fingerprint": "'
        + "0" * 64
        + '", "entries": [{"serial": "0x12", "revoked_at": "2026-01-01T00:00:00Z"}]}',
    ],
)
def test_invalid_revocation_lists_are_refused(text: str) -> None:
    with pytest.raises(PkiDecodeError):
        RevocationList.from_json(text)


# -- PEM -----------------------------------------------------------------------------------------


def test_private_key_pem_round_trips_unencrypted() -> None:
    key = generate_private_key()
    pem = private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = private_key_from_pem(pem)
    assert loaded.public_key() == key.public_key()


def test_private_key_pem_is_encrypted_with_a_passphrase() -> None:
    key = generate_private_key()
    pem = private_key_to_pem(key, b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert private_key_from_pem(pem, b"correct horse").public_key() == key.public_key()


@pytest.mark.parametrize(
    ("encrypt_with", "load_with", "reason"),
    [
        (b"right", b"wrong", "wrong passphrase"),
        (b"right", None, "passphrase required"),
        (None, b"anything", "not encrypted"),
    ],
)
def test_private_key_pem_passphrase_mistakes_are_typed_errors(
    encrypt_with: bytes | None, load_with: bytes | None, reason: str
) -> None:
    pem = private_key_to_pem(generate_private_key(), encrypt_with)
    with pytest.raises(PkiDecodeError, match=reason):
        private_key_from_pem(pem, load_with)


def test_an_empty_passphrase_is_refused() -> None:
    with pytest.raises(ValueError, match="empty passphrase"):
        private_key_to_pem(generate_private_key(), b"")


def test_garbage_pem_is_a_typed_error() -> None:
    with pytest.raises(PkiDecodeError):
        certificate_from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(PkiDecodeError):
        csr_from_pem("hello")
    with pytest.raises(PkiDecodeError):
        private_key_from_pem(b"hello")


def test_csr_pem_round_trips(terminal_key: ec.EllipticCurvePrivateKey) -> None:
    csr = make_csr(terminal_key, "T-1")
    assert csr_from_pem(csr_to_pem(csr)) == csr


# -- the pairing hook ------------------------------------------------------------------------


def test_pairing_issuer_issues_from_the_csr_and_hands_out_the_ca(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    issued: list[tuple[str, x509.Certificate]] = []
    hook = pairing_certificate_issuer(ca, lambda: NOW, on_issued=lambda t, c: issued.append((t, c)))
    cert_pem, ca_pem = hook("T-5", csr_to_pem(make_csr(terminal_key, "T-5")))
    assert cert_pem is not None
    assert ca_pem == certificate_to_pem(ca.certificate)
    cert = certificate_from_pem(cert_pem)
    assert terminal_id_from_certificate(cert) == "T-5"
    assert issued == [("T-5", cert)]


def test_pairing_issuer_without_csr_hands_out_only_the_ca(ca: CaBundle) -> None:
    hook = pairing_certificate_issuer(ca, lambda: NOW)
    assert hook("T-5", None) == (None, certificate_to_pem(ca.certificate))


def test_pairing_issuer_refuses_a_malformed_or_foreign_csr(
    ca: CaBundle, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    hook = pairing_certificate_issuer(ca, lambda: NOW)
    with pytest.raises(CertificateRejected) as info:
        hook("T-5", "not a csr")
    assert info.value.problem is CertificateProblem.MALFORMED
    with pytest.raises(CertificateRejected) as info:
        hook("T-5", csr_to_pem(make_csr(terminal_key, "T-6")))
    assert info.value.problem is CertificateProblem.TERMINAL_ID_MISMATCH


def test_issuing_logs_names_and_serials_but_no_key_material(
    caplog: pytest.LogCaptureFixture, terminal_key: ec.EllipticCurvePrivateKey
) -> None:
    caplog.set_level(logging.DEBUG, logger="shouyin.link.pki")
    bundle = create_ca("log test", NOW)
    server = issue_server_certificate(bundle, ["127.0.0.1"], NOW)
    issue_terminal_certificate(bundle, "T-1", terminal_key.public_key(), NOW)
    text = caplog.text
    assert "T-1" in text
    for key in (bundle.key, server.key):
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        secret = key.private_numbers().private_value
        assert f"{secret:x}" not in text
        assert str(secret) not in text
    assert "PRIVATE KEY" not in text
