"""The issuance core: the Fulcio profile, the precertificate flow, keys and proofs."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.ca import (
    CA_NOT_AFTER,
    CA_NOT_BEFORE,
    FakeCT,
    SoftwareChain,
    csr_pem,
    github_principal,
    principal,
    proof_of_possession,
    public_key_pem,
    software_chain,
)
from toolkit.errors import UsageError
from toolkit.services._http import ProblemError
from toolkit.services.ca.issuance import (
    CertificateAuthority,
    IssuedCertificate,
    check_subject_key,
    ct_logs_from_keys,
    decode_bytes_field,
    der_utf8string,
    load_csr,
    load_public_key,
    random_serial,
    verify_proof_of_possession,
)
from toolkit.services.ca.oidc import Principal
from toolkit.signing import KeyAlgorithm
from toolkit.verify import _x509

NOW = dt.datetime(2026, 12, 3, 12, 0, 30, 123456, tzinfo=dt.UTC)
FULCIO = "1.3.6.1.4.1.57264.1."


@pytest.fixture(scope="module")
def chain() -> SoftwareChain:
    return software_chain(KeyAlgorithm.ECDSA_P256)


def make_ca(chain: SoftwareChain, ct: FakeCT | None = None, **kwargs: Any) -> CertificateAuthority:
    ct = ct or FakeCT()
    logs = ct_logs_from_keys([ct.public_key], start=CA_NOT_BEFORE)
    return CertificateAuthority(chain.signer, chain.chain, ct, logs, **kwargs)


def issue(ca: CertificateAuthority, who: Principal, key: Any = None) -> IssuedCertificate:
    key = key or ec.generate_private_key(ec.SECP256R1()).public_key()
    return asyncio.run(ca.issue(who, key, NOW))


def refused(excinfo: pytest.ExceptionInfo[ProblemError]) -> tuple[int, str]:
    return excinfo.value.status, excinfo.value.slug


# --------------------------------------------------------------------------- the profile


def test_email_certificate_has_the_fulcio_profile(chain: SoftwareChain) -> None:
    ct = FakeCT()
    ca = make_ca(chain, ct)
    subject = ec.generate_private_key(ec.SECP256R1()).public_key()
    issued = issue(ca, principal("email", "alice@example.com"), subject)
    cert = issued.certificate
    assert cert.version is x509.Version.v3
    assert cert.subject == x509.Name([])
    assert cert.issuer == chain.intermediate.subject
    assert cert.public_key() == subject
    assert cert.not_valid_before_utc == NOW.replace(microsecond=0)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(minutes=10)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    oids = [e.oid.dotted_string for e in cert.extensions]
    assert oids == [
        "2.5.29.15",  # keyUsage
        "2.5.29.37",  # extendedKeyUsage
        "2.5.29.14",  # subjectKeyIdentifier
        "2.5.29.35",  # authorityKeyIdentifier
        "2.5.29.17",  # subjectAltName
        FULCIO + "1",
        FULCIO + "8",
        "1.3.6.1.4.1.11129.2.4.2",  # the SCT list, last
    ]
    critical = {e.oid.dotted_string for e in cert.extensions if e.critical}
    assert critical == {"2.5.29.15", "2.5.29.17"}
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign and not usage.crl_sign
    assert not usage.key_encipherment and not usage.content_commitment
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CODE_SIGNING]
    # Fulcio leaves carry no basicConstraints.
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.BasicConstraints)
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(subject)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = chain.intermediate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    assert aki.key_identifier == issuer_ski.digest
    assert aki.authority_cert_issuer is None and aki.authority_cert_serial_number is None
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.RFC822Name("alice@example.com")]
    raw = {e.oid.dotted_string: e.value.public_bytes() for e in cert.extensions}
    assert raw[FULCIO + "1"] == b"https://oidc.airseal.test"
    assert raw[FULCIO + "8"] == der_utf8string("https://oidc.airseal.test")
    # The verifier's own checks agree.
    _x509.check_leaf_profile(cert)
    assert _x509.oidc_issuer(cert) == "https://oidc.airseal.test"
    assert _x509.san_values(cert) == ("alice@example.com",)
    cert.verify_directly_issued_by(chain.intermediate)
    assert issued.chain == (chain.intermediate, chain.root)
    assert ct.chains and len(ct.chains[0]) == 3


def test_serial_is_random_positive_160_bits(chain: SoftwareChain) -> None:
    ca = make_ca(chain)
    serials = {issue(ca, principal()).certificate.serial_number for _ in range(5)}
    assert len(serials) == 5
    for serial in serials:
        assert 1 << 152 <= serial < 1 << 159
    for _ in range(200):
        value = random_serial()
        assert value > 0 and value.bit_length() <= 159 and value >> 152


def test_validity_follows_the_configured_minutes(chain: SoftwareChain) -> None:
    cert = issue(make_ca(chain, validity_minutes=3), principal()).certificate
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(minutes=3)


def test_uri_san(chain: SoftwareChain) -> None:
    who = principal("uri", "https://ci.example.com/pipelines/7", challenge="ci-7")
    cert = issue(make_ca(chain), who).certificate
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert list(san.value) == [x509.UniformResourceIdentifier("https://ci.example.com/pipelines/7")]
    assert _x509.san_values(cert) == ("https://ci.example.com/pipelines/7",)


def test_username_san_is_an_othername_utf8string(chain: SoftwareChain) -> None:
    who = principal("username", "jörg@example.com", challenge="jörg")
    cert = issue(make_ca(chain), who).certificate
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    (name,) = list(san.value)
    assert isinstance(name, x509.OtherName)
    assert name.type_id.dotted_string == FULCIO + "7"
    assert name.value == der_utf8string("jörg@example.com")
    assert _x509.san_values(cert) == ("jörg@example.com",)


def test_github_extensions_are_encoded_as_fulcio_does(chain: SoftwareChain) -> None:
    who = github_principal()
    cert = issue(make_ca(chain), who).certificate
    fulcio = [e for e in cert.extensions if e.oid.dotted_string.startswith(FULCIO)]
    arcs = [int(e.oid.dotted_string[len(FULCIO) :]) for e in fulcio]
    assert arcs == [1, 2, 3, 4, 5, 6, *range(8, 23)]
    values = {e.oid.dotted_string: e.value.public_bytes() for e in fulcio}
    # .1.2-.1.6 hold raw strings, .1.8 onwards DER UTF8Strings (as the public Fulcio).
    for dotted, text in who.legacy_extensions.items():
        assert values[dotted] == text.encode()
    for dotted, text in who.extensions.items():
        assert values[dotted] == der_utf8string(text)
        assert _x509.extension_text(cert, x509.ObjectIdentifier(dotted)) == text
    assert values[FULCIO + "9"] == der_utf8string(
        "https://github.com/octo/hello/.github/workflows/release.yml@refs/heads/main"
    )
    assert all(not e.critical for e in fulcio)


def test_principal_may_not_set_the_issuer_extensions(chain: SoftwareChain) -> None:
    who = principal(extensions={FULCIO + "8": "https://evil.example"})
    with pytest.raises(UsageError):
        issue(make_ca(chain), who)


# --------------------------------------------------------------------------- precert flow


def test_precertificate_is_the_certificate_with_poison_in_the_sct_place(
    chain: SoftwareChain,
) -> None:
    ct = FakeCT()
    issued = issue(make_ca(chain, ct), principal())
    precert = x509.load_der_x509_certificate(ct.chains[0][0])
    assert precert == issued.precertificate
    assert ct.chains[0][1:] == [
        c.public_bytes(serialization.Encoding.DER) for c in (chain.intermediate, chain.root)
    ]
    precert_oids = [e.oid.dotted_string for e in precert.extensions]
    cert_oids = [e.oid.dotted_string for e in issued.certificate.extensions]
    assert precert_oids[-1] == "1.3.6.1.4.1.11129.2.4.3"
    assert precert.extensions[-1].critical
    assert precert_oids[:-1] == cert_oids[:-1]
    assert cert_oids[-1] == "1.3.6.1.4.1.11129.2.4.2"
    precert.verify_directly_issued_by(chain.intermediate)
    from toolkit.services.ct.sct import precert_tbs

    assert issued.certificate.tbs_precertificate_bytes == precert_tbs(ct.chains[0][0])
    assert precert.serial_number == issued.certificate.serial_number
    # Exactly one SCT, from the log, verifying with the verifier's code.
    scts = issued.certificate.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    ).value
    assert len(scts) == 1 and scts[0].log_id == ct.log_id
    logs = ct_logs_from_keys([ct.public_key], start=CA_NOT_BEFORE)
    stamp = _x509.verify_sct(
        issued.certificate, (issued.certificate, chain.intermediate, chain.root), logs
    )
    assert stamp == NOW.replace(microsecond=0)


def test_p384_and_ed25519_intermediates_sign(chain: SoftwareChain) -> None:
    for algorithm, hash_type in (
        (KeyAlgorithm.ECDSA_P384, hashes.SHA384),
        (KeyAlgorithm.ED25519, type(None)),
        (KeyAlgorithm.RSA_3072, hashes.SHA256),
    ):
        other = software_chain(algorithm)
        cert = issue(make_ca(other), principal()).certificate
        assert isinstance(cert.signature_hash_algorithm, hash_type)
        cert.verify_directly_issued_by(other.intermediate)


@pytest.mark.parametrize(
    ("fail", "status", "slug"),
    [
        ("down", 503, "ct-unavailable"),
        ("refuse", 502, "ct-refused"),
        ("tamper", 502, "ct-invalid-sct"),
        ("other-log", 502, "ct-invalid-sct"),
    ],
)
def test_ct_failures_give_no_certificate(
    chain: SoftwareChain, fail: Any, status: int, slug: str
) -> None:
    ct = FakeCT()
    ca = make_ca(chain, ct)
    ct.fail = fail
    with pytest.raises(ProblemError) as excinfo:
        issue(ca, principal())
    assert refused(excinfo) == (status, slug)
    if fail == "down":
        assert excinfo.value.headers.get("Retry-After")


def test_sct_outside_the_ct_keys_validity_is_refused(chain: SoftwareChain) -> None:
    ct = FakeCT()
    logs = ct_logs_from_keys([ct.public_key], start=NOW + dt.timedelta(days=1))
    ca = CertificateAuthority(chain.signer, chain.chain, ct, logs)
    with pytest.raises(ProblemError) as excinfo:
        issue(ca, principal())
    assert refused(excinfo) == (502, "ct-invalid-sct")


def test_outside_the_intermediates_validity_nothing_is_logged(chain: SoftwareChain) -> None:
    ct = FakeCT()
    ca = make_ca(chain, ct)
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    for moment in (CA_NOT_BEFORE - dt.timedelta(seconds=1), CA_NOT_AFTER - dt.timedelta(minutes=5)):
        with pytest.raises(ProblemError) as excinfo:
            asyncio.run(ca.issue(principal(), key, moment))
        assert refused(excinfo) == (503, "ca-not-valid")
    assert ct.chains == []


# --------------------------------------------------------------------------- start-up checks


def test_key_must_match_the_chain(chain: SoftwareChain) -> None:
    other = software_chain()
    ct = FakeCT()
    logs = ct_logs_from_keys([ct.public_key], start=CA_NOT_BEFORE)
    with pytest.raises(UsageError, match="does not match"):
        CertificateAuthority(other.signer, chain.chain, ct, logs)


def test_intermediate_must_be_a_code_signing_ca() -> None:
    ct = FakeCT()
    logs = ct_logs_from_keys([ct.public_key], start=CA_NOT_BEFORE)
    no_eku = software_chain(eku=False)
    with pytest.raises(UsageError, match=r"2\.5\.29\.37"):
        CertificateAuthority(no_eku.signer, no_eku.chain, ct, logs)
    not_ca = software_chain(ca=False)
    with pytest.raises(UsageError):
        CertificateAuthority(not_ca.signer, not_ca.chain, ct, logs)


def test_chain_must_link(chain: SoftwareChain) -> None:
    other = software_chain()
    ct = FakeCT()
    logs = ct_logs_from_keys([ct.public_key], start=CA_NOT_BEFORE)
    with pytest.raises(UsageError, match="does not link"):
        CertificateAuthority(chain.signer, [chain.intermediate, other.root], ct, logs)
    with pytest.raises(UsageError):
        CertificateAuthority(chain.signer, [], ct, logs)
    with pytest.raises(UsageError):
        CertificateAuthority(chain.signer, chain.chain, ct, {})


def test_pem_chain_is_leaf_first(chain: SoftwareChain) -> None:
    issued = issue(make_ca(chain), principal())
    pems = issued.pem_chain()
    assert len(pems) == 3
    loaded = [x509.load_pem_x509_certificate(p.encode()) for p in pems]
    assert loaded == [issued.certificate, chain.intermediate, chain.root]


# --------------------------------------------------------------------------- subject keys


def _keys() -> dict[str, Any]:
    return {
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "p521": ec.generate_private_key(ec.SECP521R1()),
        "rsa2048": rsa.generate_private_key(65537, 2048),
        "rsa3072": rsa.generate_private_key(65537, 3072),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


KEYS = _keys()


@pytest.mark.parametrize("name", sorted(KEYS))
def test_accepted_keys_and_their_proofs(name: str) -> None:
    key = KEYS[name]
    loaded = load_public_key(public_key_pem(key))
    assert loaded == key.public_key()
    verify_proof_of_possession(
        loaded, proof_of_possession(key, "alice@example.com"), "alice@example.com"
    )
    # The CSR path: its self-signature is the proof.
    assert load_csr(base64.b64encode(csr_pem(key)).decode()) == key.public_key()


@pytest.mark.parametrize("name", sorted(KEYS))
def test_proof_over_another_challenge_is_refused(name: str) -> None:
    key = KEYS[name]
    proof = proof_of_possession(key, "mallory@example.com")
    with pytest.raises(ProblemError) as excinfo:
        verify_proof_of_possession(key.public_key(), proof, "alice@example.com")
    assert refused(excinfo) == (400, "invalid-proof-of-possession")


@pytest.mark.parametrize("name", sorted(KEYS))
def test_proof_by_another_key_is_refused(name: str) -> None:
    key = KEYS[name]
    other = _keys()[name]
    with pytest.raises(ProblemError) as excinfo:
        verify_proof_of_possession(key.public_key(), proof_of_possession(other, "alice"), "alice")
    assert refused(excinfo) == (400, "invalid-proof-of-possession")


def test_proof_variants() -> None:
    p384, p521, rsa_key = KEYS["p384"], KEYS["p521"], KEYS["rsa2048"]
    # The curve's own hash is accepted beside Fulcio's SHA-256.
    verify_proof_of_possession(
        p384.public_key(), proof_of_possession(p384, "x", hash_name="sha384"), "x"
    )
    verify_proof_of_possession(
        p521.public_key(), proof_of_possession(p521, "x", hash_name="sha512"), "x"
    )
    # RSA-PSS as well as PKCS#1 v1.5.
    verify_proof_of_possession(
        rsa_key.public_key(), proof_of_possession(rsa_key, "x", pss=True), "x"
    )
    # Non-ASCII challenges are signed as UTF-8.
    verify_proof_of_possession(p384.public_key(), proof_of_possession(p384, "jörg"), "jörg")
    for proof in (
        b"",
        b"\x00" * 2000,
        b"not a signature",
        proof_of_possession(KEYS["p256"], "x", hash_name="sha1"),
        proof_of_possession(KEYS["p256"], "x", hash_name="sha384"),
    ):
        with pytest.raises(ProblemError) as excinfo:
            verify_proof_of_possession(KEYS["p256"].public_key(), proof, "x")
        assert refused(excinfo) == (400, "invalid-proof-of-possession")


def _pem(key: Any) -> str:
    pem: bytes = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


@pytest.mark.parametrize(
    ("make", "slug"),
    [
        (lambda: rsa.generate_private_key(65537, 1024).public_key(), "weak-key"),
        (lambda: rsa.generate_private_key(65537, 2047).public_key(), "weak-key"),
        (lambda: rsa.generate_private_key(3, 2048).public_key(), "weak-key"),
        (lambda: ec.generate_private_key(ec.SECP224R1()).public_key(), "weak-key"),
        (lambda: ec.generate_private_key(ec.SECP192R1()).public_key(), "weak-key"),
        (lambda: ec.generate_private_key(ec.SECP256K1()).public_key(), "unsupported-key"),
        (lambda: ec.generate_private_key(ec.BrainpoolP256R1()).public_key(), "unsupported-key"),
        (lambda: ed448.Ed448PrivateKey.generate().public_key(), "unsupported-key"),
        (lambda: dsa.generate_private_key(2048).public_key(), "unsupported-key"),
    ],
)
def test_weak_and_unsupported_keys_are_refused(make: Any, slug: str) -> None:
    public = make()
    with pytest.raises(ProblemError) as excinfo:
        check_subject_key(public)
    assert refused(excinfo) == (400, slug)
    with pytest.raises(ProblemError) as excinfo:
        load_public_key(_pem(public))
    assert refused(excinfo) == (400, slug)


def test_oversized_rsa_is_unsupported() -> None:
    big = rsa.RSAPublicNumbers(65537, (1 << 8200) | 1).public_key()
    with pytest.raises(ProblemError) as excinfo:
        check_subject_key(big)
    assert refused(excinfo) == (400, "unsupported-key")


def test_weak_csr_keys_are_refused_before_their_signature() -> None:
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(ProblemError) as excinfo:
        load_csr(base64.b64encode(csr_pem(weak)).decode())
    assert refused(excinfo) == (400, "weak-key")


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not pem",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "x" * 20000,
        42,
    ],
)
def test_malformed_public_keys(content: Any) -> None:
    with pytest.raises(ProblemError) as excinfo:
        load_public_key(content)
    assert excinfo.value.status == 400
    assert excinfo.value.slug in {"invalid-public-key", "invalid-request"}


def test_algorithm_field() -> None:
    p256 = public_key_pem(KEYS["p256"])
    assert load_public_key(p256, "ECDSA") == KEYS["p256"].public_key()
    assert load_public_key(p256, 2) == KEYS["p256"].public_key()
    assert load_public_key(p256, "PUBLIC_KEY_ALGORITHM_UNSPECIFIED")
    assert load_public_key(public_key_pem(KEYS["rsa2048"]), "RSA_PSS")
    assert load_public_key(public_key_pem(KEYS["ed25519"]), "ED25519")
    for algorithm in ("ED25519", "RSA_PSS", "DSA", True, 9):
        with pytest.raises(ProblemError) as excinfo:
            load_public_key(p256, algorithm)
        assert refused(excinfo) == (400, "invalid-request")


def test_csr_forms_and_refusals() -> None:
    key = KEYS["p256"]
    pem = csr_pem(key)
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    for form in (
        base64.b64encode(pem).decode(),
        base64.urlsafe_b64encode(pem).decode().rstrip("="),
        pem.decode(),
        base64.b64encode(der).decode(),
    ):
        assert load_csr(form) == key.public_key()
    with pytest.raises(ProblemError) as excinfo:
        load_csr(base64.b64encode(csr_pem(key, tamper=True)).decode())
    assert refused(excinfo) == (400, "invalid-proof-of-possession")
    for bad in (base64.b64encode(b"garbage").decode(), "-----BEGIN CERTIFICATE REQUEST-----\nAA\n"):
        with pytest.raises(ProblemError) as excinfo:
            load_csr(bad)
        assert refused(excinfo) == (400, "invalid-csr")
    for value in ("%%%", "", 12):
        with pytest.raises(ProblemError) as excinfo:
            load_csr(value)
        assert refused(excinfo) == (400, "invalid-request")


def test_csr_signed_with_a_short_hash_is_refused() -> None:
    key = rsa.generate_private_key(65537, 2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA224())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ProblemError) as excinfo:
        load_csr(base64.b64encode(pem).decode())
    assert refused(excinfo) == (400, "invalid-csr")


def test_decode_bytes_field() -> None:
    assert decode_bytes_field("AAEC", "f") == b"\x00\x01\x02"
    assert decode_bytes_field("_-8", "f") == b"\xff\xef"
    assert decode_bytes_field("/+8=", "f") == b"\xff\xef"
    for bad in ("A", "!!!!", 7, None, "A" * 30000):
        with pytest.raises(ProblemError) as excinfo:
            decode_bytes_field(bad, "f")
        assert refused(excinfo) == (400, "invalid-request")


@pytest.mark.parametrize("offload", [True, False, None])
def test_signing_in_a_worker_thread_or_inline(chain: SoftwareChain, offload: bool | None) -> None:
    ca = make_ca(chain, FakeCT(), offload_signing=offload)
    for _ in range(3):
        issued = issue(ca, principal())
        issued.certificate.verify_directly_issued_by(chain.intermediate)
    # None: decided after the first three signatures (two per certificate).
    assert ca._offload is offload if offload is not None else isinstance(ca._offload, bool)
