"""The three certificates a ceremony issues: root CA, intermediate CA and TSA.

Each certificate is built once as a to-be-signed (TBS) structure and signed
twice. The first signature comes from a throwaway software key of the same
kind as the issuer's key; that *lint certificate* is checked by pkilint's
RFC 5280 validators and by airseal's own profile rules before the HSM is asked
for anything. Only then does the issuer's real key sign the same builder. The
result is verified with the issuer's public key and its TBS bytes must equal
the lint certificate's, so what was linted is exactly what was signed.

Why the TBS bytes agree: the TBS holds the serial, the names, the validity,
the subject key, the extensions and the signature AlgorithmIdentifier. The
authority key identifier is computed from the issuer's *real* public key (it
is an argument, not derived from the signing key), and the AlgorithmIdentifier
depends only on the key type, the hash and the RSA padding, never on the key
itself. Only the signature value outside the TBS differs.

Profiles (DESIGN.md §3): the root is self-signed, CA:TRUE (critical),
keyCertSign+cRLSign (critical), no EKU; the intermediate adds pathlen 0 and a
non-critical codeSigning EKU; the TSA leaf is CA:FALSE, digitalSignature
(critical) and timeStamping (critical EKU). Every certificate carries a subject
key identifier (method 1) and an authority key identifier holding only the
issuer's key id, the root's own included (see :func:`_tbs_builder` for why).

:func:`check_profile` re-checks a finished certificate against its issuer and
is what ``airseal ceremony verify`` runs on a machine without an HSM.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from ceremony.errors import LintError, ProfileError, SignatureCheckError, TbsMismatchError
from toolkit.signing._api import KeyAlgorithm, PrivateKey, PublicKey, Scheme, Signer, spki_der

__all__ = [
    "MAX_SERIAL",
    "CertificateProfile",
    "IssuedCertificate",
    "LintFinding",
    "build_certificate",
    "check_profile",
    "lint_certificate",
    "random_serial",
]

#: Serial numbers are below 2**159, so that their DER encoding (a positive
#: INTEGER, which needs a leading zero bit) fits the 20 octets RFC 5280 allows.
MAX_SERIAL: Final = 2**159

#: pkilint severities that stop the ceremony; lower ones are kept as findings.
_BLOCKING_SEVERITIES: Final = frozenset({"FATAL", "ERROR"})
#: pkilint severities that are reported (DEBUG is noise for a transcript).
_REPORTED_SEVERITIES: Final = frozenset({"FATAL", "ERROR", "WARNING", "NOTICE", "INFO"})


class CertificateProfile(enum.StrEnum):
    """The certificate profiles of a ceremony (DESIGN.md §3)."""

    ROOT = "root"
    INTERMEDIATE = "intermediate"
    TSA = "tsa"


@dataclass(frozen=True)
class LintFinding:
    """One pkilint finding.

    Attributes:
        severity: pkilint severity name (FATAL, ERROR, WARNING, NOTICE, INFO).
        code: pkilint's finding code, e.g. ``pkix.subject_key_identifier_method_1_identified``.
        path: The node of the certificate the finding is about.
        message: pkilint's optional detail.
    """

    severity: str
    code: str
    path: str
    message: str = ""

    @property
    def blocking(self) -> bool:
        """True for findings that forbid signing the certificate (ERROR, FATAL)."""
        return self.severity in _BLOCKING_SEVERITIES

    def __str__(self) -> str:
        detail = f": {self.message}" if self.message else ""
        return f"{self.severity} {self.code} at {self.path}{detail}"


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate signed by the issuer's real key, with its lint record.

    Attributes:
        profile: The profile it was built for.
        certificate: The signed certificate.
        findings: Non-blocking pkilint findings of the lint certificate
            (``"SEVERITY code at path[: message]"``).
        tbs_sha256: Hex SHA-256 of the TBS bytes, equal for the lint and the
            final certificate.
    """

    profile: CertificateProfile
    certificate: x509.Certificate
    findings: tuple[str, ...]
    tbs_sha256: str

    @property
    def der(self) -> bytes:
        """The certificate in DER."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        """The certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the DER certificate (its fingerprint)."""
        return hashlib.sha256(self.der).hexdigest()


def random_serial() -> int:
    """A random positive serial number below 2**159 (at most 20 DER octets).

    159 random bits from the operating system's CSPRNG: far more than the 64
    bits CA/Browser Forum rules ask for, and never zero.
    """
    while True:
        serial = secrets.randbits(159)
        if serial > 0:
            return serial


def build_certificate(
    profile: CertificateProfile,
    *,
    subject: x509.Name,
    subject_key: PublicKey,
    issuer: x509.Name,
    issuer_key: PublicKey,
    issuer_signer: Signer,
    not_before: datetime,
    not_after: datetime,
    serial: int,
) -> IssuedCertificate:
    """Build, lint, sign and re-verify one ceremony certificate.

    The issuer's key signs only after the lint certificate (the same TBS signed
    by a throwaway key) passed pkilint and the profile rules.

    Args:
        profile: Which certificate this is.
        subject: The subject name.
        subject_key: The subject's public key (the issuer's key for the root).
        issuer: The issuer name (the subject for the root).
        issuer_key: The issuer's public key; it fills the authority key
            identifier and verifies the final signature.
        issuer_signer: The issuer's signer; its ``private_key()`` signs and its
            ``scheme`` picks the hash and the RSA padding.
        not_before: Start of validity (timezone-aware).
        not_after: End of validity (timezone-aware).
        serial: The serial number, from :func:`random_serial`.

    Returns:
        The signed certificate with its lint findings and TBS hash.

    Raises:
        ProfileError: The arguments cannot make a certificate of this profile.
        LintError: pkilint reported ERROR or FATAL findings; nothing was signed.
        SignatureCheckError: The issuer's key did not produce a signature that
            verifies with ``issuer_key``; the certificate was discarded.
        TbsMismatchError: The signed TBS differs from the linted one.
    """
    scheme = issuer_signer.scheme
    # The arguments are checked before anything is built or linted, so a bad
    # config is reported as such and never reaches the issuer's key.
    problems: list[str] = []
    if not 0 < serial < MAX_SERIAL:
        problems.append("serial number must be positive and below 2**159")
    if not_before.tzinfo is None or not_after.tzinfo is None:
        problems.append("validity times must be timezone-aware")
    elif not not_before < not_after:
        problems.append(f"not_before {_iso(not_before)} is not before not_after {_iso(not_after)}")
    if len(subject) == 0:
        problems.append("subject name must not be empty")
    if spki_der(issuer_signer.public_key) != spki_der(issuer_key):
        problems.append(
            f"the issuer signer's key {issuer_signer.key_id[:16]}… is not the issuer key"
        )
    if _key_algorithm(issuer_key) is not scheme.key_algorithm:
        problems.append(
            f"the issuer key is not a {scheme.key_algorithm} key as scheme {scheme} needs"
        )
    if profile is CertificateProfile.ROOT:
        if subject != issuer:
            problems.append("a root certificate's issuer must be its subject")
        if spki_der(subject_key) != spki_der(issuer_key):
            problems.append("a root certificate must be signed by its own key")
    if problems:
        raise ProfileError(f"cannot build the {profile} certificate: " + "; ".join(problems))
    builder = _tbs_builder(
        profile,
        subject=subject,
        subject_key=subject_key,
        issuer=issuer,
        issuer_key=issuer_key,
        not_before=not_before,
        not_after=not_after,
        serial=serial,
    )
    lint_cert = _sign(builder, _throwaway_key(scheme, issuer_key), scheme)

    findings = lint_certificate(lint_cert)
    blocking = [f for f in findings if f.blocking]
    if blocking:
        raise LintError(
            f"pkilint rejects the {profile} certificate: " + "; ".join(map(str, blocking)),
            hint="fix the certificate's subject, validity or key in the config; "
            "nothing was signed by the issuer's key",
        )
    violations = _profile_violations(profile, lint_cert) + _aki_violations(lint_cert, issuer_key)
    if violations:
        # Unreachable unless the builder and the rules drift apart; checked so
        # that the HSM never signs a certificate verify would later reject.
        raise ProfileError(
            f"the {profile} certificate breaks its profile: " + "; ".join(violations)
        )

    try:
        cert = _sign(builder, issuer_signer.private_key(), scheme)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureCheckError(
            f"the issuer key {issuer_signer.key_id[:16]}… could not sign the {profile} "
            f"certificate: {exc}"
        ) from None
    try:
        _verify_signature(issuer_key, scheme, cert)
    except InvalidSignature:
        raise SignatureCheckError(
            f"the {profile} certificate's signature from key {issuer_signer.key_id[:16]}… "
            "does not verify with the issuer's public key; the certificate was discarded",
            hint="the token or its PKCS#11 module returned a bad signature",
        ) from None
    if cert.tbs_certificate_bytes != lint_cert.tbs_certificate_bytes:
        raise TbsMismatchError(
            f"the signed {profile} certificate's TBS differs from the linted one "
            f"(sha256 {_sha256(cert.tbs_certificate_bytes)[:16]}… vs "
            f"{_sha256(lint_cert.tbs_certificate_bytes)[:16]}…); it was discarded"
        )
    return IssuedCertificate(
        profile=profile,
        certificate=cert,
        findings=tuple(str(f) for f in findings),
        tbs_sha256=_sha256(cert.tbs_certificate_bytes),
    )


def check_profile(
    profile: CertificateProfile, cert: x509.Certificate, issuer_cert: x509.Certificate
) -> list[str]:
    """Check a finished certificate against its profile and its issuer.

    This is the offline half of the ceremony: it needs no key and no token.

    Args:
        profile: The profile the certificate claims.
        cert: The certificate.
        issuer_cert: Its issuer's certificate (``cert`` itself for the root).

    Returns:
        One line per violation; empty when the certificate is as the ceremony
        builds it: basic constraints, key usage, extended key usage (with
        criticality), subject and authority key identifiers, the issuer's
        signature and a validity inside the issuer's.
    """
    violations = _profile_violations(profile, cert)
    if profile is CertificateProfile.ROOT and issuer_cert.public_bytes(
        serialization.Encoding.DER
    ) != cert.public_bytes(serialization.Encoding.DER):
        violations.append("a root certificate must be checked against itself as its issuer")
    if cert.issuer != issuer_cert.subject:
        violations.append(
            f"issuer {cert.issuer.rfc4514_string()!r} is not the issuer certificate's "
            f"subject {issuer_cert.subject.rfc4514_string()!r}"
        )
    if profile is not CertificateProfile.ROOT:
        violations.extend(_issuer_is_ca_violations(issuer_cert))
    violations.extend(_aki_against_issuer(cert, issuer_cert))
    try:
        cert.verify_directly_issued_by(issuer_cert)
    except InvalidSignature:
        violations.append(
            "signature does not verify with the issuer's key "
            f"({issuer_cert.subject.rfc4514_string()!r})"
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        violations.append(f"signature cannot be checked against the issuer: {exc}")
    if cert.not_valid_before_utc < issuer_cert.not_valid_before_utc:
        violations.append(
            f"validity starts {_iso(cert.not_valid_before_utc)}, before the issuer's "
            f"{_iso(issuer_cert.not_valid_before_utc)}"
        )
    if cert.not_valid_after_utc > issuer_cert.not_valid_after_utc:
        violations.append(
            f"validity ends {_iso(cert.not_valid_after_utc)}, after the issuer's "
            f"{_iso(issuer_cert.not_valid_after_utc)}"
        )
    return violations


def lint_certificate(cert: x509.Certificate) -> list[LintFinding]:
    """Lint a certificate with pkilint's RFC 5280 certificate validators.

    These are the validators of pkilint's ``lint_pkix_cert`` command. They do
    not check the signature, which is why a throwaway signing key is enough.

    Args:
        cert: The certificate to lint.

    Returns:
        Every finding from INFO up, in pkilint's order.
    """
    from pkilint import loader

    document = loader.load_der_certificate(
        cert.public_bytes(serialization.Encoding.DER), "certificate"
    )
    findings: list[LintFinding] = []
    for result in _pkix_validator().validate(document.root):
        for description in result.finding_descriptions:
            severity = description.finding.severity.name
            if severity not in _REPORTED_SEVERITIES:
                continue
            findings.append(
                LintFinding(
                    severity=severity,
                    code=str(description.finding.code),
                    path=str(result.node.path),
                    message=str(description.message or ""),
                )
            )
    return findings


@cache
def _pkix_validator() -> Any:
    # pkilint ships no type information, so its objects stay ``Any`` here.
    # Building the validator tree once per process keeps each lint at a few
    # milliseconds.
    from pkilint.pkix import certificate, extension, name

    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


# --- building -----------------------------------------------------------------


def _key_algorithm(key: PublicKey) -> KeyAlgorithm | None:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyAlgorithm.ED25519
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {
            "secp256r1": KeyAlgorithm.ECDSA_P256,
            "secp384r1": KeyAlgorithm.ECDSA_P384,
        }.get(key.curve.name)
    return {3072: KeyAlgorithm.RSA_3072, 4096: KeyAlgorithm.RSA_4096}.get(key.key_size)


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class _ExtensionRule:
    value: x509.ExtensionType
    critical: bool


def _profile_extensions(profile: CertificateProfile) -> dict[x509.ObjectIdentifier, _ExtensionRule]:
    """The fixed extensions of each profile (the key identifiers come on top)."""
    if profile is CertificateProfile.ROOT:
        return {
            ExtensionOID.BASIC_CONSTRAINTS: _ExtensionRule(
                x509.BasicConstraints(ca=True, path_length=None), critical=True
            ),
            ExtensionOID.KEY_USAGE: _ExtensionRule(_key_usage(cert_sign=True), critical=True),
        }
    if profile is CertificateProfile.INTERMEDIATE:
        return {
            ExtensionOID.BASIC_CONSTRAINTS: _ExtensionRule(
                x509.BasicConstraints(ca=True, path_length=0), critical=True
            ),
            ExtensionOID.KEY_USAGE: _ExtensionRule(_key_usage(cert_sign=True), critical=True),
            # Fulcio's intermediate carries codeSigning, non-critical, so that
            # EKU-chaining verifiers accept the code-signing leaves below it.
            ExtensionOID.EXTENDED_KEY_USAGE: _ExtensionRule(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            ),
        }
    return {
        ExtensionOID.BASIC_CONSTRAINTS: _ExtensionRule(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        ),
        ExtensionOID.KEY_USAGE: _ExtensionRule(_key_usage(digital_signature=True), critical=True),
        # RFC 3161 §2.3: a TSA certificate has exactly one EKU, timeStamping,
        # and it MUST be critical.
        ExtensionOID.EXTENDED_KEY_USAGE: _ExtensionRule(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        ),
    }


def _tbs_builder(
    profile: CertificateProfile,
    *,
    subject: x509.Name,
    subject_key: PublicKey,
    issuer: x509.Name,
    issuer_key: PublicKey,
    not_before: datetime,
    not_after: datetime,
    serial: int,
) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for oid, rule in _profile_extensions(profile).items():
        assert rule.value.oid == oid
        builder = builder.add_extension(rule.value, critical=rule.critical)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False
    )
    # From the issuer's real public key, never from the signing key: this is
    # what keeps the lint certificate's TBS identical to the final one. The
    # root carries one too (its own SKI), as the CA/Browser Forum recommends:
    # RFC 5280 lets a self-signed certificate omit it, but pkilint only grants
    # that once the self-signature verifies, which a lint certificate signed
    # by a throwaway key never does.
    return builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False
    )


def _throwaway_key(scheme: Scheme, issuer_key: PublicKey) -> PrivateKey:
    """A fresh software key of the issuer key's kind, for the lint certificate."""
    if isinstance(issuer_key, ed25519.Ed25519PublicKey):
        return ed25519.Ed25519PrivateKey.generate()
    if isinstance(issuer_key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(issuer_key.curve)
    # The modulus size does not appear in the TBS; the same size keeps the
    # lint certificate's signature as long as the real one.
    return rsa.generate_private_key(public_exponent=65537, key_size=issuer_key.key_size)


def _rsa_padding(scheme: Scheme) -> padding.PSS | padding.PKCS1v15:
    if scheme.pss:
        algorithm = scheme.hash
        assert algorithm is not None
        return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PKCS1v15()


def _sign(builder: x509.CertificateBuilder, key: PrivateKey, scheme: Scheme) -> x509.Certificate:
    if isinstance(key, rsa.RSAPrivateKey):
        return builder.sign(key, _sha2(scheme), rsa_padding=_rsa_padding(scheme))
    return builder.sign(key, _sha2(scheme))


def _sha2(scheme: Scheme) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    algorithm = scheme.hash
    if algorithm is None or isinstance(algorithm, hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
        return algorithm
    raise ProfileError(f"scheme {scheme} hashes with {algorithm.name}, which X.509 cannot use")


def _verify_signature(issuer_key: PublicKey, scheme: Scheme, cert: x509.Certificate) -> None:
    """Verify ``cert``'s signature with the parameters the scheme prescribes.

    Raises:
        InvalidSignature: The signature does not verify.
    """
    data = cert.tbs_certificate_bytes
    if isinstance(issuer_key, ed25519.Ed25519PublicKey):
        issuer_key.verify(cert.signature, data)
        return
    algorithm = scheme.hash
    assert algorithm is not None
    if isinstance(issuer_key, ec.EllipticCurvePublicKey):
        issuer_key.verify(cert.signature, data, ec.ECDSA(algorithm))
    else:
        issuer_key.verify(cert.signature, data, _rsa_padding(scheme), algorithm)


# --- checking -------------------------------------------------------------------


def _profile_violations(profile: CertificateProfile, cert: x509.Certificate) -> list[str]:
    """Rules that need only the certificate itself."""
    violations: list[str] = []
    if cert.version is not x509.Version.v3:
        violations.append(f"version must be v3, is {cert.version.name}")
    if not 0 < cert.serial_number < MAX_SERIAL:
        violations.append("serial number must be positive and below 2**159")
    try:
        extensions = cert.extensions
    except ValueError as exc:
        return [*violations, f"extensions cannot be parsed: {exc}"]

    expected = _profile_extensions(profile)
    for oid, rule in expected.items():
        try:
            ext = extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound:
            violations.append(f"{_ext_name(oid)} is missing")
            continue
        if ext.value != rule.value:
            violations.append(f"{_ext_name(oid)} must be {_describe(rule.value)}, is {ext.value}")
        if ext.critical != rule.critical:
            violations.append(
                f"{_ext_name(oid)} must be {'critical' if rule.critical else 'non-critical'}"
            )

    key_ids = {ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER}
    for ext in extensions:
        if ext.oid not in expected and ext.oid not in key_ids:
            violations.append(f"unexpected extension {_ext_name(ext.oid)}")

    subject_key = cert.public_key()
    try:
        ski = extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        violations.append("SubjectKeyIdentifier is missing")
    else:
        if ski.critical:
            violations.append("SubjectKeyIdentifier must be non-critical")
        # Method 1 of RFC 5280 §4.2.1.2 (SHA-1 of the public key bits), as built.
        if ski.value != x509.SubjectKeyIdentifier.from_public_key(subject_key):
            violations.append("SubjectKeyIdentifier does not match the subject's public key")

    if profile is CertificateProfile.ROOT:
        if cert.subject != cert.issuer:
            violations.append("a root certificate must be self-issued (issuer = subject)")
        if not (
            isinstance(subject_key, ec.EllipticCurvePublicKey)
            and isinstance(subject_key.curve, ec.SECP384R1)
        ):
            violations.append("the root key must be ECDSA P-384")
    return violations


def _aki_violations(cert: x509.Certificate, issuer_key: PublicKey) -> list[str]:
    return _aki_matches(cert, x509.SubjectKeyIdentifier.from_public_key(issuer_key).digest)


def _aki_against_issuer(cert: x509.Certificate, issuer_cert: x509.Certificate) -> list[str]:
    try:
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except (x509.ExtensionNotFound, ValueError):
        return ["the issuer certificate has no SubjectKeyIdentifier to match"]
    return _aki_matches(cert, issuer_ski.value.digest)


def _aki_matches(cert: x509.Certificate, issuer_key_id: bytes) -> list[str]:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except (x509.ExtensionNotFound, ValueError):
        return ["AuthorityKeyIdentifier is missing"]
    violations: list[str] = []
    if aki.critical:
        violations.append("AuthorityKeyIdentifier must be non-critical")
    if aki.value.key_identifier != issuer_key_id:
        violations.append("AuthorityKeyIdentifier does not match the issuer's key identifier")
    if aki.value.authority_cert_issuer is not None or (
        aki.value.authority_cert_serial_number is not None
    ):
        violations.append("AuthorityKeyIdentifier must carry only a key identifier")
    return violations


def _issuer_is_ca_violations(issuer_cert: x509.Certificate) -> list[str]:
    violations: list[str] = []
    try:
        bc = issuer_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca:
            violations.append("the issuer certificate is not a CA")
    except (x509.ExtensionNotFound, ValueError):
        violations.append("the issuer certificate has no BasicConstraints")
    try:
        ku = issuer_cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.key_cert_sign:
            violations.append("the issuer certificate may not sign certificates (keyCertSign)")
    except (x509.ExtensionNotFound, ValueError):
        violations.append("the issuer certificate has no KeyUsage")
    return violations


_EXTENSION_NAMES: Final = {
    ExtensionOID.BASIC_CONSTRAINTS: "BasicConstraints",
    ExtensionOID.KEY_USAGE: "KeyUsage",
    ExtensionOID.EXTENDED_KEY_USAGE: "ExtendedKeyUsage",
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: "SubjectKeyIdentifier",
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: "AuthorityKeyIdentifier",
}


def _ext_name(oid: x509.ObjectIdentifier) -> str:
    return _EXTENSION_NAMES.get(oid, oid.dotted_string)


def _describe(value: x509.ExtensionType) -> str:
    if isinstance(value, x509.BasicConstraints):
        if not value.ca:
            return "CA:FALSE"
        return "CA:TRUE" + (
            f", pathlen {value.path_length}" if value.path_length is not None else ""
        )
    if isinstance(value, x509.KeyUsage):
        names = [
            n
            for n, on in (
                ("digitalSignature", value.digital_signature),
                ("keyCertSign", value.key_cert_sign),
                ("cRLSign", value.crl_sign),
            )
            if on
        ]
        return "exactly " + "+".join(names)
    if isinstance(value, x509.ExtendedKeyUsage):
        return "exactly " + "+".join(_eku_name(oid) for oid in value)
    return str(value)


def _eku_name(oid: x509.ObjectIdentifier) -> str:
    return {
        ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
        ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    }.get(oid, oid.dotted_string)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
