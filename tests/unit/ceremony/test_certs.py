"""Ceremony certificates: profiles, pkilint, the throwaway-key lint certificate, re-verification."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ceremony import certs
from ceremony.certs import (
    MAX_SERIAL,
    CertificateProfile,
    build_certificate,
    check_profile,
    lint_certificate,
    random_serial,
)
from ceremony.errors import (
    CeremonyError,
    LintError,
    ProfileError,
    SignatureCheckError,
    TbsMismatchError,
)
from toolkit.signing._api import PrivateKey, PublicKey, Scheme, Signer
from toolkit.signing._api import Signer as SignerProtocol

from ._pki import (
    INSIDE,
    LEAF_END,
    ROOT_END,
    T0,
    ForgingEcKey,
    LocalSigner,
    Pki,
    ProxySigner,
    build_pki,
    code_signing_leaf,
    name,
)

ROOT_NAME = name("Airseal Test Root CA")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return build_pki()


def _issue(
    profile: CertificateProfile,
    issuer_signer: Signer,
    *,
    subject_key: PublicKey | None = None,
    subject: x509.Name | None = None,
    issuer_key: PublicKey | None = None,
    not_before: datetime = T0,
    not_after: datetime = LEAF_END,
    serial: int | None = None,
) -> certs.IssuedCertificate:
    if subject_key is None:
        subject_key = (
            issuer_signer.public_key
            if profile is CertificateProfile.ROOT
            else ec.generate_private_key(ec.SECP256R1()).public_key()
        )
    return build_certificate(
        profile,
        subject=subject
        if subject is not None
        else (ROOT_NAME if profile is CertificateProfile.ROOT else name(profile)),
        subject_key=subject_key,
        issuer=ROOT_NAME,
        issuer_key=issuer_key or issuer_signer.public_key,
        issuer_signer=issuer_signer,
        not_before=not_before,
        not_after=not_after,
        serial=serial if serial is not None else random_serial(),
    )


# --- profiles -----------------------------------------------------------------------


def test_local_signer_satisfies_the_protocol() -> None:
    assert isinstance(LocalSigner.generate(Scheme.ED25519), SignerProtocol)


def test_every_profile_builds_lints_clean_and_passes_its_own_check(pki: Pki) -> None:
    root = pki.root.certificate
    for issued, issuer in ((pki.root, root), (pki.intermediate, root), (pki.tsa, root)):
        assert not [f for f in issued.findings if f.startswith(("ERROR", "FATAL"))]
        # Findings keep their severity; pkilint notes the SKI method as INFO.
        assert any(
            f.startswith("INFO pkix.subject_key_identifier_method_1") for f in issued.findings
        )
        assert check_profile(issued.profile, issued.certificate, issuer) == []
        assert issued.tbs_sha256 == certs._sha256(issued.certificate.tbs_certificate_bytes)


def test_root_profile(pki: Pki) -> None:
    cert = pki.root.certificate
    assert cert.subject == cert.issuer == ROOT_NAME
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha384"
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length is None
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert not ski.critical
    # The root names itself as its authority (see ceremony.certs on pkilint).
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert not aki.critical and aki.value.key_identifier == ski.value.digest


def test_intermediate_profile(pki: Pki) -> None:
    cert = pki.intermediate.certificate
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical and list(eku.value) == [ExtendedKeyUsageOID.CODE_SIGNING]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    root_ski = pki.root.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.value.key_identifier == root_ski.value.digest


def test_tsa_profile(pki: Pki) -> None:
    cert = pki.tsa.certificate
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_random_serial_is_positive_and_fits_20_octets() -> None:
    serials = {random_serial() for _ in range(200)}
    assert len(serials) == 200
    assert all(0 < s < MAX_SERIAL for s in serials)
    # The largest serial still encodes in 20 octets (a positive DER INTEGER).
    signer = LocalSigner.generate(Scheme.ECDSA_P384_SHA384)
    cert = _issue(CertificateProfile.ROOT, signer, serial=MAX_SERIAL - 1).certificate
    assert cert.serial_number == MAX_SERIAL - 1
    assert check_profile(CertificateProfile.ROOT, cert, cert) == []


# --- interoperability -----------------------------------------------------------------


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    return subprocess.run([openssl, *args], capture_output=True, text=True, check=False, timeout=60)


def _write(path: Path, *items: x509.Certificate) -> str:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in items))
    return str(path)


def test_openssl_accepts_the_intermediate_and_tsa_chains(pki: Pki, tmp_path: Path) -> None:
    at = str(int(INSIDE.timestamp()))
    root = _write(tmp_path / "root.pem", pki.root.certificate)
    intermediate = _write(tmp_path / "intermediate.pem", pki.intermediate.certificate)
    tsa = _write(tmp_path / "tsa.pem", pki.tsa.certificate)
    leaf = _write(tmp_path / "leaf.pem", code_signing_leaf(pki))

    result = _openssl("verify", "-attime", at, "-CAfile", root, intermediate)
    assert result.returncode == 0, result.stderr + result.stdout
    result = _openssl("verify", "-attime", at, "-CAfile", root, "-untrusted", intermediate, leaf)
    assert result.returncode == 0, result.stderr + result.stdout
    # OpenSSL's timestampsign purpose demands the critical, sole timeStamping EKU.
    result = _openssl("verify", "-attime", at, "-purpose", "timestampsign", "-CAfile", root, tsa)
    assert result.returncode == 0, result.stderr + result.stdout
    # And it refuses a code-signing CA for time stamping, so the purpose check is real.
    result = _openssl(
        "verify", "-attime", at, "-purpose", "timestampsign", "-CAfile", root, intermediate
    )
    assert result.returncode != 0
    assert "unsuitable certificate purpose" in result.stdout + result.stderr


def test_pkilint_chain_validators_accept_the_signed_certificates(pki: Pki) -> None:
    # pkilint's issuer/subject chain validators (name chaining, SKI/AKI, signature)
    # on the final certificates, which carry the real signatures.
    from pkilint import loader
    from pkilint.bin import lint_pkix_signer_signee_cert_chain as chain

    der = serialization.Encoding.DER
    for issued in (pki.root, pki.intermediate, pki.tsa):
        docs: dict[str, object] = {}
        issuer = loader.load_der_certificate(
            pki.root.certificate.public_bytes(der), "issuer", None, docs
        )
        docs["issuer"] = issuer
        subject = loader.load_der_certificate(
            issued.certificate.public_bytes(der), "subject", None, docs
        )
        docs["subject"] = subject
        results = chain.create_decoder_validation_container().validate(issuer.root)
        results += chain.create_decoder_validation_container().validate(subject.root)
        results += chain.create_issuer_validation_container().validate(issuer.root)
        results += chain.create_subject_validation_container().validate(subject.root)
        severities = {d.finding.severity.name for r in results for d in r.finding_descriptions}
        assert not severities & {"ERROR", "FATAL"}


# --- the lint certificate and TBS equality -------------------------------------------------


@pytest.mark.parametrize(
    "scheme",
    [
        Scheme.ECDSA_P384_SHA384,
        Scheme.ECDSA_P256_SHA256,
        Scheme.ED25519,
        Scheme.RSA_PSS_3072_SHA256,
        Scheme.RSA_PKCS1V15_3072_SHA256,
    ],
)
def test_throwaway_key_gives_the_same_tbs(scheme: Scheme) -> None:
    issuer = LocalSigner.generate(scheme)
    subject_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issued = _issue(CertificateProfile.TSA, issuer, subject_key=subject_key)
    final = issued.certificate
    # Rebuild the same TBS and sign it with another throwaway key of the same kind:
    # the TBS bytes are identical, only the signature (outside the TBS) differs.
    builder = certs._tbs_builder(
        CertificateProfile.TSA,
        subject=final.subject,
        subject_key=subject_key,
        issuer=ROOT_NAME,
        issuer_key=issuer.public_key,
        not_before=T0,
        not_after=LEAF_END,
        serial=final.serial_number,
    )
    lint = certs._sign(builder, certs._throwaway_key(scheme, issuer.public_key), scheme)
    assert lint.tbs_certificate_bytes == final.tbs_certificate_bytes
    assert lint.signature != final.signature
    assert lint.signature_algorithm_oid == final.signature_algorithm_oid
    # Splicing the real signature onto the lint certificate's TBS reproduces the
    # final certificate: the signature value is the only difference.
    assert final.public_bytes(serialization.Encoding.DER).endswith(final.signature)
    final.verify_directly_issued_by(_self_signed_stub(issuer, final.issuer))


def _self_signed_stub(signer: LocalSigner, subject: x509.Name) -> x509.Certificate:
    """A certificate of the issuer key, only so cryptography can verify with it."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(signer.public_key)
        .serial_number(1)
        .not_valid_before(T0)
        .not_valid_after(ROOT_END)
        .sign(signer.private_key(), certs._sha2(signer.scheme))
    )


def test_tbs_depends_on_the_issuer_public_key_not_the_signing_key() -> None:
    # Why the builder takes the issuer's *public* key: the AKI comes from it. An
    # AKI computed from the throwaway key would change the TBS.
    issuer = LocalSigner.generate(Scheme.ECDSA_P384_SHA384)
    throwaway = certs._throwaway_key(issuer.scheme, issuer.public_key)
    subject_key = ec.generate_private_key(ec.SECP256R1()).public_key()

    def builder(issuer_key: PublicKey) -> x509.CertificateBuilder:
        return certs._tbs_builder(
            CertificateProfile.TSA,
            subject=name("tsa"),
            subject_key=subject_key,
            issuer=ROOT_NAME,
            issuer_key=issuer_key,
            not_before=T0,
            not_after=LEAF_END,
            serial=7,
        )

    real = builder(issuer.public_key)
    wrong = builder(throwaway.public_key())
    a = certs._sign(real, throwaway, issuer.scheme)
    b = certs._sign(real, issuer.private_key(), issuer.scheme)
    c = certs._sign(wrong, throwaway, issuer.scheme)
    assert a.tbs_certificate_bytes == b.tbs_certificate_bytes
    assert c.tbs_certificate_bytes != b.tbs_certificate_bytes
    # The curve of the signing key does not enter the TBS either: the
    # AlgorithmIdentifier (ecdsa-with-SHA384) has no key parameters.
    p256 = ec.generate_private_key(ec.SECP256R1())
    assert certs._sign(real, p256, issuer.scheme).tbs_certificate_bytes == b.tbs_certificate_bytes


def test_tbs_mismatch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A lint key of another kind changes the signature AlgorithmIdentifier in the
    # TBS; the guard must catch it even though both signatures are fine.
    issuer = LocalSigner.generate(Scheme.RSA_PKCS1V15_3072_SHA256)

    def other_kind(scheme: Scheme, key: PublicKey) -> PrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    monkeypatch.setattr(certs, "_throwaway_key", other_kind)
    with pytest.raises(TbsMismatchError, match="TBS differs from the linted one"):
        _issue(CertificateProfile.TSA, issuer)


# --- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("corrupt", [False, True], ids=["other-key", "flipped-bit"])
def test_a_faulty_signer_is_rejected_before_use(corrupt: bool) -> None:
    real = LocalSigner.generate(Scheme.ECDSA_P384_SHA384)
    key = real.private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    forging = ForgingEcKey(key, corrupt=corrupt)
    faulty = ProxySigner(real, forging)
    with pytest.raises(SignatureCheckError, match="does not verify with the issuer's public key"):
        _issue(CertificateProfile.INTERMEDIATE, faulty)
    assert forging.signatures == 1


def test_pkilint_errors_stop_before_the_issuer_signs() -> None:
    real = LocalSigner.generate(Scheme.ECDSA_P384_SHA384)
    watched = ProxySigner(real, real.private_key())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "tsa"),
            # pkilint: an e-mail address in the subject must also be in a SAN.
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "tsa@example.org"),
        ]
    )
    with pytest.raises(LintError, match=r"ERROR pkix\.subject_email_address_not_in_san") as info:
        _issue(CertificateProfile.TSA, watched, subject=subject)
    assert isinstance(info.value, CeremonyError)
    assert watched.private_key_calls == 0


def test_lint_certificate_reports_findings_with_severity(pki: Pki) -> None:
    findings = lint_certificate(pki.intermediate.certificate)
    assert findings
    assert all(f.severity in {"WARNING", "NOTICE", "INFO"} for f in findings)
    assert str(findings[0]).startswith(findings[0].severity + " ")


def test_a_non_p384_root_is_refused() -> None:
    signer = LocalSigner.generate(Scheme.ECDSA_P256_SHA256)
    with pytest.raises(ProfileError, match="root key must be ECDSA P-384"):
        _issue(CertificateProfile.ROOT, signer)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"serial": 0}, "serial number must be positive"),
        ({"serial": MAX_SERIAL}, "serial number must be positive and below 2\\*\\*159"),
        ({"not_after": T0}, "is not before not_after"),
        ({"not_before": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"subject": x509.Name([])}, "subject name must not be empty"),
        ({"issuer_key": "other"}, "is not the issuer key"),
    ],
)
def test_bad_arguments_are_refused(changes: dict[str, object], message: str) -> None:
    signer = LocalSigner.generate(Scheme.ECDSA_P384_SHA384)
    kwargs: dict[str, object] = dict(changes)
    if kwargs.get("issuer_key") == "other":
        kwargs["issuer_key"] = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(ProfileError, match=message):
        _issue(CertificateProfile.INTERMEDIATE, signer, **kwargs)  # type: ignore[arg-type]


def test_a_root_must_be_self_issued_and_self_signed() -> None:
    signer = LocalSigner.generate(Scheme.ECDSA_P384_SHA384)
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(ProfileError, match="signed by its own key"):
        _issue(CertificateProfile.ROOT, signer, subject_key=other)
    with pytest.raises(ProfileError, match="issuer must be its subject"):
        _issue(CertificateProfile.ROOT, signer, subject=name("someone else"))


def test_a_scheme_that_does_not_fit_the_key_is_refused() -> None:
    real = LocalSigner.generate(Scheme.ECDSA_P384_SHA384)
    confused = LocalSigner(real.private_key(), Scheme.ECDSA_P256_SHA256)
    with pytest.raises(ProfileError, match="is not a ecdsa-p256 key"):
        _issue(CertificateProfile.INTERMEDIATE, confused)


# --- check_profile (the offline verify) ------------------------------------------------------


def _tamper_signature(cert: x509.Certificate) -> x509.Certificate:
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last octet of the ECDSA signature's s
    return x509.load_der_x509_certificate(bytes(der))


def test_check_profile_names_a_tampered_signature(pki: Pki) -> None:
    root = pki.root.certificate
    for issued in (pki.intermediate, pki.tsa):
        bad = _tamper_signature(issued.certificate)
        assert check_profile(issued.profile, bad, root) == [
            f"signature does not verify with the issuer's key ({root.subject.rfc4514_string()!r})"
        ]
    bad_root = _tamper_signature(root)
    violations = check_profile(CertificateProfile.ROOT, bad_root, bad_root)
    assert any("signature does not verify" in v for v in violations)


def test_check_profile_names_profile_violations(pki: Pki) -> None:
    root = pki.root.certificate
    violations = check_profile(CertificateProfile.TSA, pki.intermediate.certificate, root)
    assert "BasicConstraints must be CA:FALSE, is " in violations[0]
    assert any(v.startswith("KeyUsage must be exactly digitalSignature") for v in violations)
    assert any(v.startswith("ExtendedKeyUsage must be exactly timeStamping") for v in violations)
    assert "ExtendedKeyUsage must be critical" in violations

    violations = check_profile(CertificateProfile.INTERMEDIATE, pki.tsa.certificate, root)
    assert any(v.startswith("BasicConstraints must be CA:TRUE, pathlen 0") for v in violations)
    assert "ExtendedKeyUsage must be non-critical" in violations

    violations = check_profile(CertificateProfile.ROOT, pki.intermediate.certificate, root)
    assert "unexpected extension ExtendedKeyUsage" in violations
    assert "a root certificate must be self-issued (issuer = subject)" in violations
    assert "a root certificate must be checked against itself as its issuer" in violations


def test_check_profile_names_a_wrong_issuer(pki: Pki) -> None:
    # The TSA checked against the intermediate as its issuer.
    violations = check_profile(
        CertificateProfile.TSA, pki.tsa.certificate, pki.intermediate.certificate
    )
    assert any(v.startswith("issuer 'CN=Airseal Test Root CA") for v in violations)
    assert "AuthorityKeyIdentifier does not match the issuer's key identifier" in violations
    assert any("cannot be checked against the issuer" in v for v in violations)
    # And against a TSA, which is no CA.
    violations = check_profile(CertificateProfile.TSA, pki.tsa.certificate, pki.tsa.certificate)
    assert "the issuer certificate is not a CA" in violations
    assert "the issuer certificate may not sign certificates (keyCertSign)" in violations


def test_check_profile_names_validity_outside_the_issuer(pki: Pki) -> None:
    late = _issue(
        CertificateProfile.INTERMEDIATE,
        pki.root_signer,
        not_before=T0 - timedelta(days=1),
        not_after=ROOT_END + timedelta(days=1),
    ).certificate
    violations = check_profile(CertificateProfile.INTERMEDIATE, late, pki.root.certificate)
    assert violations == [
        "validity starts 2025-12-31T00:00:00Z, before the issuer's 2026-01-01T00:00:00Z",
        "validity ends 2036-01-02T00:00:00Z, after the issuer's 2036-01-01T00:00:00Z",
    ]


def test_check_profile_names_a_wrong_ski() -> None:
    signer = LocalSigner.generate(Scheme.ECDSA_P384_SHA384)
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(ROOT_NAME)
        .issuer_name(ROOT_NAME)
        .public_key(signer.public_key)
        .serial_number(5)
        .not_valid_before(T0)
        .not_valid_after(datetime(2030, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
        .add_extension(certs._key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(other), critical=False)
        .sign(signer.private_key(), certs._sha2(signer.scheme))
    )
    assert check_profile(CertificateProfile.ROOT, cert, cert) == [
        "BasicConstraints must be critical",
        "SubjectKeyIdentifier does not match the subject's public key",
        "AuthorityKeyIdentifier is missing",
    ]
