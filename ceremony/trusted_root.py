"""Assemble the Sigstore ``trusted_root.json`` a ceremony publishes.

The trusted root names one certificate authority (the intermediate chain),
one timestamp authority (the TSA chain), one transparency log and one CT log,
each with a validity window. It is written with the toolkit's own
:mod:`toolkit.models.trustroot` dataclasses, so the bytes are exactly what the
offline verifier parses.

Log ids follow what Sigstore clients look up:

* a transparency log's ``logId`` is its checkpoint key id in full:
  SHA-256(SPKI) for an ECDSA key, and for an Ed25519 (Rekor v2) key
  SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key) with the log's note name, as Sigstore's
  own trusted roots carry it and :mod:`toolkit.verify` matches entries by it;
* a CT log's ``logId`` is SHA-256(SPKI) (RFC 6962 §3.2).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from ceremony.errors import TrustedRootError
from toolkit.errors import FormatError
from toolkit.models.common import (
    DistinguishedName,
    HashAlgorithm,
    LogId,
    PublicKey,
    PublicKeyDetails,
    TimeRange,
    X509Certificate,
    X509CertificateChain,
)
from toolkit.models.trustroot import CertificateAuthority, TransparencyLogInstance, TrustedRoot
from toolkit.note import ECDSANoteVerifier, Ed25519NoteVerifier
from toolkit.signing._api import PublicKey as CryptoPublicKey
from toolkit.signing._api import spki_der
from toolkit.verify._trust import note_name

__all__ = [
    "Validity",
    "build_trusted_root",
    "check_trusted_root",
    "ctlog_id",
    "key_details",
    "tlog_id",
]

#: A validity window: start, and end or None for open-ended.
Validity = tuple[datetime, datetime | None]

#: Minimum chain lengths: a CA chain is intermediate + root, and
#: sigstore-python refuses TSA chains shorter than leaf + root.
_MIN_CHAIN = 2


def key_details(key: CryptoPublicKey) -> PublicKeyDetails:
    """The Sigstore ``keyDetails`` of a log key.

    Raises:
        TrustedRootError: For keys a Sigstore log cannot use.
    """
    if isinstance(key, ed25519.Ed25519PublicKey):
        return PublicKeyDetails.PKIX_ED25519
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return PublicKeyDetails.PKIX_ECDSA_P256_SHA_256
        if isinstance(key.curve, ec.SECP384R1):
            return PublicKeyDetails.PKIX_ECDSA_P384_SHA_384
    raise TrustedRootError(
        f"a {_describe_key(key)} key cannot be a Sigstore log key "
        "(use Ed25519, ECDSA P-256 or ECDSA P-384)"
    )


def tlog_id(key: CryptoPublicKey, url: str) -> bytes:
    """The trusted-root ``logId`` of a transparency log: its full checkpoint key id.

    Raises:
        TrustedRootError: The key or URL gives no usable note key.
    """
    name = note_name(url)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            return Ed25519NoteVerifier(name, key).full_key_id
        if isinstance(key, ec.EllipticCurvePublicKey):
            return ECDSANoteVerifier(name, key).full_key_id
    except ValueError as exc:
        raise TrustedRootError(f"transparency log URL {url!r} gives no log name: {exc}") from None
    raise TrustedRootError(f"a {_describe_key(key)} key cannot sign log checkpoints")


def ctlog_id(key: CryptoPublicKey) -> bytes:
    """The RFC 6962 log id of a CT log: SHA-256 of its DER SubjectPublicKeyInfo."""
    return hashlib.sha256(spki_der(key)).digest()


def build_trusted_root(
    *,
    ca_chain: Sequence[x509.Certificate],
    tsa_chain: Sequence[x509.Certificate],
    tlog_key: CryptoPublicKey,
    ctlog_key: CryptoPublicKey,
    ca_url: str,
    tsa_url: str,
    tlog_url: str,
    ctlog_url: str,
    ca_valid: Validity,
    tsa_valid: Validity,
    tlog_valid: Validity,
    ctlog_valid: Validity,
) -> bytes:
    """Build ``trusted_root.json`` (Sigstore TrustedRoot v0.1).

    Args:
        ca_chain: The issuing CA chain, intermediate first and root last.
        tsa_chain: The TSA chain, leaf first and root last.
        tlog_key: The transparency log's public key (Ed25519 or ECDSA).
        ctlog_key: The CT log's public key (ECDSA).
        ca_url: Base URL of the CA service.
        tsa_url: URL of the timestamp authority.
        tlog_url: Base URL of the transparency log.
        ctlog_url: Base URL of the CT log.
        ca_valid: Validity window of the CA entry (start, end or None).
        tsa_valid: Validity window of the TSA entry.
        tlog_valid: Validity window of the transparency log key.
        ctlog_valid: Validity window of the CT log key.

    Returns:
        The UTF-8 JSON document, ending in a newline.

    Raises:
        TrustedRootError: A chain is out of order or broken, a key is unusable
            or a validity window is invalid.
    """
    if key_details(ctlog_key) is PublicKeyDetails.PKIX_ED25519:
        raise TrustedRootError("the CT log key must be ECDSA: RFC 6962 SCTs cannot use Ed25519")
    _check_chain("CA", ca_chain)
    _check_chain("TSA", tsa_chain)
    try:
        root = TrustedRoot(
            tlogs=(
                _log(
                    "transparency log", tlog_key, tlog_url, tlog_valid, tlog_id(tlog_key, tlog_url)
                ),
            ),
            certificate_authorities=(_authority("CA", ca_chain, ca_url, ca_valid),),
            ctlogs=(_log("CT log", ctlog_key, ctlog_url, ctlog_valid, ctlog_id(ctlog_key)),),
            timestamp_authorities=(_authority("TSA", tsa_chain, tsa_url, tsa_valid),),
        )
    except FormatError as exc:
        raise TrustedRootError(f"cannot build the trusted root: {exc.message}") from None
    return root.to_json().encode("utf-8")


def check_trusted_root(
    data: bytes,
    *,
    ca_chain: Sequence[x509.Certificate],
    tsa_chain: Sequence[x509.Certificate],
    tlog_key: CryptoPublicKey,
    ctlog_key: CryptoPublicKey,
) -> list[str]:
    """Check a published trusted root against the ceremony's certificates and keys.

    Args:
        data: The ``trusted_root.json`` bytes.
        ca_chain: The CA chain it must carry (intermediate, root).
        tsa_chain: The TSA chain it must carry (leaf, root).
        tlog_key: The transparency log key it must carry.
        ctlog_key: The CT log key it must carry.

    Returns:
        One line per discrepancy; empty when the document parses, the offline
        verifier accepts it, and it holds exactly these chains and keys with
        the right key details and log ids.
    """
    try:
        root = TrustedRoot.from_json(data)
    except FormatError as exc:
        return [f"does not parse as a trusted root: {exc.message}"]
    problems: list[str] = []
    try:
        from toolkit.verify import Verifier

        Verifier(root)
    except FormatError as exc:
        problems.append(f"the offline verifier rejects it: {exc.message}")

    problems.extend(_check_logs("tlogs", root.tlogs, tlog_key, tlog=True))
    problems.extend(_check_logs("ctlogs", root.ctlogs, ctlog_key, tlog=False))
    problems.extend(
        _check_authorities("certificateAuthorities", root.certificate_authorities, ca_chain)
    )
    problems.extend(
        _check_authorities("timestampAuthorities", root.timestamp_authorities, tsa_chain)
    )
    return problems


# --- building -----------------------------------------------------------------


def _check_chain(what: str, chain: Sequence[x509.Certificate]) -> None:
    if len(chain) < _MIN_CHAIN:
        raise TrustedRootError(
            f"the {what} chain needs at least {_MIN_CHAIN} certificates (leaf first, root last), "
            f"got {len(chain)}"
        )
    for i, (cert, issuer) in enumerate(itertools.pairwise(chain)):
        if not _issued_by(cert, issuer):
            raise TrustedRootError(
                f"the {what} chain is not leaf first: certificate {i} "
                f"({cert.subject.rfc4514_string()!r}) is not issued by certificate {i + 1} "
                f"({issuer.subject.rfc4514_string()!r})"
            )
    root = chain[-1]
    if not _issued_by(root, root):
        raise TrustedRootError(
            f"the {what} chain does not end in a self-signed root "
            f"(last: {root.subject.rfc4514_string()!r})"
        )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``cert`` and the names chain."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        # ValueError/TypeError: the names do not chain, or the key cannot
        # check this signature; for the chain it all means "not issued by".
        return False
    return True


def _time_range(what: str, valid: Validity) -> TimeRange:
    start, end = valid
    try:
        return TimeRange(start=start, end=end)
    except FormatError as exc:
        raise TrustedRootError(f"{what} validity: {exc.message}") from None


def _log(
    what: str, key: CryptoPublicKey, url: str, valid: Validity, log_id: bytes
) -> TransparencyLogInstance:
    return TransparencyLogInstance(
        base_url=url,
        hash_algorithm=HashAlgorithm.SHA2_256,
        public_key=PublicKey(
            key_details=key_details(key),
            raw_bytes=spki_der(key),
            valid_for=_time_range(what, valid),
        ),
        log_id=LogId(key_id=log_id),
    )


def _authority(
    what: str, chain: Sequence[x509.Certificate], url: str, valid: Validity
) -> CertificateAuthority:
    # The entity that signs (the issuing intermediate, the TSA leaf) names the
    # authority, as Sigstore's public trusted roots do.
    signer = chain[0].subject
    return CertificateAuthority(
        subject=DistinguishedName(
            organization=_attribute(signer, NameOID.ORGANIZATION_NAME),
            common_name=_attribute(signer, NameOID.COMMON_NAME),
        ),
        cert_chain=X509CertificateChain(
            certificates=tuple(X509Certificate(raw_bytes=_der(c)) for c in chain)
        ),
        valid_for=_time_range(what, valid),
        uri=url,
    )


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _describe_key(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    return type(key).__name__


# --- checking -------------------------------------------------------------------


def _check_logs(
    where: str,
    logs: Sequence[TransparencyLogInstance],
    key: CryptoPublicKey,
    *,
    tlog: bool,
) -> list[str]:
    if len(logs) != 1:
        return [f"{where}: expected exactly 1 entry, found {len(logs)}"]
    log = logs[0]
    problems: list[str] = []
    if log.public_key.raw_bytes != spki_der(key):
        problems.append(f"{where}[0].publicKey is not the ceremony's key")
    try:
        expected_details = key_details(key)
        expected_id = tlog_id(key, log.base_url) if tlog else ctlog_id(key)
    except TrustedRootError as exc:
        return [*problems, f"{where}[0]: {exc.message}"]
    if log.public_key.key_details is not expected_details:
        problems.append(
            f"{where}[0].publicKey.keyDetails is {log.public_key.key_details}, "
            f"expected {expected_details}"
        )
    if log.log_id.key_id != expected_id:
        problems.append(f"{where}[0].logId does not match the key")
    if log.hash_algorithm is not HashAlgorithm.SHA2_256:
        problems.append(f"{where}[0].hashAlgorithm is {log.hash_algorithm}, expected SHA2_256")
    return problems


def _check_authorities(
    where: str, authorities: Sequence[CertificateAuthority], chain: Sequence[x509.Certificate]
) -> list[str]:
    if len(authorities) != 1:
        return [f"{where}: expected exactly 1 entry, found {len(authorities)}"]
    found = [c.raw_bytes for c in authorities[0].cert_chain.certificates]
    expected = [_der(c) for c in chain]
    if found == expected:
        return []
    if sorted(found) == sorted(expected):
        return [f"{where}[0].certChain holds the ceremony's certificates in the wrong order"]
    return [
        f"{where}[0].certChain does not hold the ceremony's certificates "
        f"({len(found)} found, {len(expected)} expected)"
    ]
