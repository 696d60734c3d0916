"""Fulcio certificate checks: profile, identity extensions and the embedded SCT."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from cryptography import x509
from cryptography.x509.certificate_transparency import (
    LogEntryType,
    SignatureAlgorithm,
    SignedCertificateTimestamp,
)
from cryptography.x509.oid import ExtendedKeyUsageOID

from toolkit.errors import Check, VerificationError
from toolkit.models.common import HashAlgorithm, TimeRange
from toolkit.verify._keys import VerifyingKey, spki_der, verify_message

__all__ = [
    "OIDC_ISSUER_V1",
    "OIDC_ISSUER_V2",
    "SAN_OTHERNAME",
    "CTLogKey",
    "check_leaf_profile",
    "extension_text",
    "oidc_issuer",
    "san_values",
    "verify_sct",
]

OIDC_ISSUER_V1: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SAN_OTHERNAME: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
_PRECERT_SIGNING: Final = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")
# Fulcio's first extensions (.1.1 to .1.6) hold raw string bytes; later ones
# (.1.8 onwards) hold a DER UTF8String.
_RAW_STRING_ARCS: Final = frozenset(range(1, 7))
_FULCIO_ARC: Final = "1.3.6.1.4.1.57264.1."
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class CTLogKey(NamedTuple):
    """A CT log key from the trusted root, indexed by its RFC 6962 log id."""

    key: VerifyingKey
    valid_for: TimeRange
    base_url: str


def _der_utf8string(value: bytes) -> str | None:
    # A DER UTF8String: tag 0x0C, a definite length in the shortest form, the text.
    if len(value) < 2 or value[0] != 0x0C:
        return None
    first = value[1]
    if first < 0x80:
        length, offset = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            return None
        length = int.from_bytes(value[2 : 2 + count], "big")
        offset = 2 + count
        if length < 0x80 or value[2] == 0:
            return None
    if offset + length != len(value):
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def extension_text(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    """Return a Fulcio extension's text value, or None when absent.

    Raises:
        VerificationError: ``cert.profile`` when the value is not well-formed text.
    """
    try:
        ext = cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    raw = ext.value.public_bytes()
    dotted = oid.dotted_string
    arc = dotted[len(_FULCIO_ARC) :] if dotted.startswith(_FULCIO_ARC) else ""
    if arc.isdigit() and int(arc) in _RAW_STRING_ARCS:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError(
                Check.CERT_PROFILE, f"certificate extension {dotted} is not UTF-8 text"
            ) from None
    text = _der_utf8string(raw)
    if text is None:
        raise VerificationError(
            Check.CERT_PROFILE, f"certificate extension {dotted} is not a DER UTF8String"
        )
    return text


def oidc_issuer(cert: x509.Certificate) -> str:
    """Return the OIDC issuer named by the certificate (.1.8, else .1.1).

    Raises:
        VerificationError: ``identity.issuer`` when absent, ``cert.profile`` when
            the two extensions disagree or are malformed.
    """
    v2 = extension_text(cert, OIDC_ISSUER_V2)
    v1 = extension_text(cert, OIDC_ISSUER_V1)
    if v1 is not None and v2 is not None and v1 != v2:
        raise VerificationError(
            Check.CERT_PROFILE,
            f"certificate names two different OIDC issuers: {v2!r} (.1.8) and {v1!r} (.1.1)",
        )
    issuer = v2 if v2 is not None else v1
    if issuer is None:
        raise VerificationError(
            Check.IDENTITY_ISSUER, "certificate carries no OIDC issuer extension (.1.1 or .1.8)"
        )
    return issuer


def san_values(cert: x509.Certificate) -> tuple[str, ...]:
    """Return the certificate's identities: e-mail, URI and Sigstore otherName SANs.

    Raises:
        VerificationError: ``identity.san`` when the certificate has no usable SAN.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise VerificationError(
            Check.IDENTITY_SAN, "certificate has no subjectAltName extension"
        ) from None
    except (ValueError, x509.UnsupportedGeneralNameType) as exc:
        raise VerificationError(Check.CERT_PROFILE, f"malformed subjectAltName: {exc}") from None
    values: list[str] = list(san.get_values_for_type(x509.RFC822Name))
    values.extend(san.get_values_for_type(x509.UniformResourceIdentifier))
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == SAN_OTHERNAME:
            text = _der_utf8string(other.value)
            if text is not None:
                values.append(text)
    return tuple(values)


def check_leaf_profile(cert: x509.Certificate) -> None:
    """Check the leaf is a Fulcio code-signing leaf: not a CA, KU and EKU right.

    Raises:
        VerificationError: ``cert.profile`` naming the first rule broken.
    """
    if cert.version is not x509.Version.v3:
        raise VerificationError(Check.CERT_PROFILE, "signing certificate is not X.509 v3")
    try:
        extensions = cert.extensions
    except ValueError as exc:
        raise VerificationError(
            Check.CERT_PROFILE, f"signing certificate has malformed extensions: {exc}"
        ) from None
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            raise VerificationError(
                Check.CERT_PROFILE, "signing certificate is a CA certificate, not a leaf"
            )
    except x509.ExtensionNotFound:
        pass
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise VerificationError(
            Check.CERT_PROFILE, "signing certificate has no keyUsage extension"
        ) from None
    if not usage.digital_signature:
        raise VerificationError(
            Check.CERT_PROFILE, "signing certificate keyUsage lacks digitalSignature"
        )
    if usage.key_cert_sign:
        raise VerificationError(
            Check.CERT_PROFILE, "signing certificate keyUsage allows certificate signing"
        )
    try:
        eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise VerificationError(
            Check.CERT_PROFILE, "signing certificate has no extendedKeyUsage extension"
        ) from None
    if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise VerificationError(
            Check.CERT_PROFILE, "signing certificate extendedKeyUsage lacks codeSigning"
        )


def verify_sct(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    ctlogs: Mapping[bytes, Sequence[CTLogKey]],
    key_hashes: Mapping[x509.Certificate, bytes] | None = None,
) -> datetime:
    """Verify the one SCT embedded in a leaf certificate (RFC 6962 §3.2).

    Args:
        cert: The leaf.
        chain: The verified chain, leaf first.
        ctlogs: CT log keys by RFC 6962 log id (SHA-256 of the DER SPKI); a log
            listed more than once is matched on the window holding the SCT time.
        key_hashes: Precomputed SHA-256 hashes of CA certificates' SPKIs (an
            optimisation; missing entries are computed).

    Returns:
        The SCT timestamp.

    Raises:
        VerificationError: ``cert.sct`` naming what did not verify.
    """
    try:
        scts = cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound:
        raise VerificationError(Check.CERT_SCT, "signing certificate has no embedded SCT") from None
    except ValueError as exc:
        raise VerificationError(Check.CERT_SCT, f"malformed SCT list: {exc}") from None
    if len(scts) != 1:
        raise VerificationError(
            Check.CERT_SCT, f"expected exactly one embedded SCT, found {len(scts)}"
        )
    sct: SignedCertificateTimestamp = scts[0]
    if sct.entry_type != LogEntryType.PRE_CERTIFICATE:
        raise VerificationError(Check.CERT_SCT, "embedded SCT is not for a precertificate")
    candidates = ctlogs.get(sct.log_id, ())
    if not candidates:
        raise VerificationError(
            Check.CERT_SCT, f"SCT is from CT log {sct.log_id.hex()}, which is not trusted"
        )
    stamp = sct.timestamp.replace(tzinfo=UTC)
    logs = [log for log in candidates if log.valid_for.contains(stamp)]
    if not logs:
        raise VerificationError(
            Check.CERT_SCT,
            f"SCT time {stamp.isoformat()} is outside the validity of CT log "
            f"{candidates[0].base_url}",
        )
    if len(chain) < 2:
        raise VerificationError(Check.CERT_SCT, "no issuer certificate to bind the SCT to")
    issuer = chain[1]
    if _is_preissuer(issuer):
        if len(chain) < 3:
            raise VerificationError(Check.CERT_SCT, "precertificate issuer has no parent")
        issuer = chain[2]
    issuer_key_hash = (key_hashes or {}).get(issuer) or spki_hash(issuer)
    try:
        tbs = cert.tbs_precertificate_bytes
    except ValueError as exc:
        raise VerificationError(Check.CERT_SCT, f"cannot rebuild precertificate: {exc}") from None
    if len(tbs) >= 1 << 24:
        raise VerificationError(Check.CERT_SCT, "precertificate is too large")
    millis = (stamp - _EPOCH) // timedelta(milliseconds=1)
    extensions = sct.extension_bytes
    signed = b"".join(
        (
            struct.pack(">BBQH", 0, 0, millis, 1),
            issuer_key_hash,
            len(tbs).to_bytes(3, "big"),
            tbs,
            struct.pack(">H", len(extensions)),
            extensions,
        )
    )
    if sct.signature_hash_algorithm is None or sct.signature_hash_algorithm.name != "sha256":
        raise VerificationError(Check.CERT_SCT, "SCT is not signed with SHA-256")
    if sct.signature_algorithm not in (SignatureAlgorithm.ECDSA, SignatureAlgorithm.RSA):
        raise VerificationError(Check.CERT_SCT, "SCT signature algorithm is not ECDSA or RSA")
    for log in logs:
        if verify_message(log.key, sct.signature, signed, HashAlgorithm.SHA2_256):
            return stamp
    raise VerificationError(
        Check.CERT_SCT, f"SCT signature does not verify with CT log {logs[0].base_url}"
    )


def spki_hash(cert: x509.Certificate) -> bytes:
    """SHA-256 of a certificate's DER SubjectPublicKeyInfo (RFC 6962 issuer_key_hash)."""
    return hashlib.sha256(spki_der(cert.public_key())).digest()


def _is_preissuer(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return _PRECERT_SIGNING in eku
