"""RFC 3161 signed timestamps: parse a TimeStampResp and verify it offline.

Sigstore bundles carry ``timestampVerificationData.rfc3161Timestamps[]``: each
``signedTimestamp`` is the DER of an RFC 3161 ``TimeStampResp`` whose TSTInfo
message imprint is a hash of the bundle's signature bytes. This module is pure
and does no I/O:

* :func:`parse_timestamp_response` decodes the CMS structure once (asn1crypto)
  into a :class:`SignedTimestamp` holding exactly what verification needs.
* :class:`TimestampVerifier` is built once from the trusted root's timestamp
  authorities. It validates every authority's certificate chain up front (with
  ``cryptography.x509.verification``) and then checks tokens against them with
  one hash comparison and one signature verification each.

Certificates embedded in a token are never trusted: the signer must be the
leaf certificate of a trusted authority, named by the SignerInfo's identifier
and by the signed ESS ``signingCertificate(V2)`` attribute.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import verification as xv
from cryptography.x509.oid import ExtendedKeyUsageOID

from toolkit.errors import Check, FormatError, VerificationError

__all__ = [
    "MAX_TIMESTAMPS",
    "SignedTimestamp",
    "TimestampAuthority",
    "TimestampVerifier",
    "VerifiedTimestamp",
    "parse_timestamp_response",
]

#: Most RFC 3161 timestamps one bundle may carry (sigstore-go/-python use 32).
MAX_TIMESTAMPS: Final = 32

_OID_SIGNED_DATA: Final = "1.2.840.113549.1.7.2"
_OID_TST_INFO: Final = "1.2.840.113549.1.9.16.1.4"
_OID_CONTENT_TYPE: Final = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST: Final = "1.2.840.113549.1.9.4"
_OID_SIGNING_CERT: Final = "1.2.840.113549.1.9.16.2.12"
_OID_SIGNING_CERT_V2: Final = "1.2.840.113549.1.9.16.2.47"

# Digest algorithms accepted for the message imprint, the SignerInfo digest and
# ESSCertIDv2. SHA-1 appears only where ESSCertID (v1) defines it.
_DIGEST_OIDS: Final = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_DIGEST_SIZES: Final = {"sha256": 32, "sha384": 48, "sha512": 64}
_CRYPTO_HASHES: Final[dict[str, Callable[[], hashes.HashAlgorithm]]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

# SignerInfo.signatureAlgorithm -> (scheme, hash named by the OID or None).
_SIG_OIDS: Final[dict[str, tuple[str, str | None]]] = {
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
    "1.2.840.10045.4": ("ecdsa", None),  # plain "ecdsa"; digest from digestAlgorithm
    "1.2.840.10045.2.1": ("ecdsa", None),  # id-ecPublicKey, used by some CMS signers
    "1.2.840.113549.1.1.1": ("rsa_pkcs1", None),  # rsaEncryption
    "1.2.840.113549.1.1.11": ("rsa_pkcs1", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa_pkcs1", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa_pkcs1", "sha512"),
    "1.2.840.113549.1.1.10": ("rsa_pss", None),
    "1.3.101.112": ("ed25519", None),
}

_STATUS_NAMES: Final = {
    0: "granted",
    1: "grantedWithMods",
    2: "rejection",
    3: "waiting",
    4: "revocationWarning",
    5: "revocationNotification",
}


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 TimeStampResp; asn1crypto's own marks the token mandatory."""

    _fields = [  # noqa: RUF012 - asn1crypto's declarative spec
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _fail(detail: str) -> VerificationError:
    return VerificationError(Check.TIME_TSA, detail)


def _bad(detail: str) -> FormatError:
    return FormatError(detail, path="signedTimestamp", check=Check.TIME_TSA)


def _clip(text: str, limit: int = 80) -> str:
    """Make untrusted text safe for a one-line message."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{moment.microsecond:06d}Z" if moment.microsecond else "Z"
    )


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class TimestampAuthority:
    """One ``timestampAuthorities[]`` entry of a trusted root.

    Attributes:
        certificates: The chain, leaf (the TSA certificate) first, root last.
        valid_from: ``validFor.start`` (aware).
        valid_until: ``validFor.end`` or None; the window is a closed interval.
        name: Label used in error messages (e.g. the subject common name).
    """

    certificates: tuple[x509.Certificate, ...]
    valid_from: datetime
    valid_until: datetime | None
    name: str = ""


class VerifiedTimestamp(NamedTuple):
    """A verified genTime and the name of the authority that vouched for it."""

    time: datetime
    authority: str


@dataclass(frozen=True)
class _EssCertId:
    """One ESSCertID(v2) from a signingCertificate(V2) attribute."""

    version: int  # 1 = ESSCertID (SHA-1), 2 = ESSCertIDv2
    hash_algorithm: str  # "sha1", "sha256", ...
    cert_hash: bytes
    issuer_names: tuple[bytes, ...] | None  # DER of the issuerSerial directoryNames
    serial_number: int | None


@dataclass(frozen=True)
class _SignerInfo:
    """The parts of the single CMS SignerInfo verification uses."""

    sid_issuer: bytes | None  # DER of the issuerAndSerialNumber issuer Name
    sid_serial: int | None
    sid_ski: bytes | None
    digest_algorithm: str
    scheme: str  # "ecdsa" | "rsa_pkcs1" | "rsa_pss" | "ed25519"
    pss_salt_length: int | None
    pss_mgf_hash: str | None
    signature: bytes
    signed_attrs: bytes  # DER of the signed attributes re-tagged as SET OF (0x31)
    content_type: str  # dotted OID of the contentType attribute
    message_digest: bytes
    ess_cert_ids: tuple[_EssCertId, ...]

    @property
    def description(self) -> str:
        """The signer identifier in words (computed only for messages)."""
        if self.sid_ski is not None:
            return f"subjectKeyIdentifier {self.sid_ski.hex()}"
        try:
            issuer = _clip(a_x509.Name.load(self.sid_issuer or b"").human_friendly)
        except Exception:  # malformed name: still say something useful
            issuer = "?"
        return f"issuer {issuer}, serial {self.sid_serial or 0:#x}"


@dataclass(frozen=True)
class SignedTimestamp:
    """A parsed, not yet verified RFC 3161 TimeStampResp.

    Attributes:
        der: The TimeStampResp bytes as given.
        status: The PKIStatus (0 granted or 1 grantedWithMods).
        gen_time: TSTInfo genTime (aware UTC).
        hash_algorithm: Message imprint hash: ``sha256``, ``sha384`` or ``sha512``.
        message_imprint: The imprint's hashed message.
        serial_number: TSTInfo serialNumber.
        nonce: TSTInfo nonce, if any.
        policy: TSTInfo policy (dotted OID).
        tst_info: DER of the TSTInfo (the signed eContent); two responses with
            the same TSTInfo are the same timestamp.
    """

    der: bytes = field(repr=False)
    status: int
    gen_time: datetime
    hash_algorithm: str
    message_imprint: bytes = field(repr=False)
    serial_number: int
    nonce: int | None
    policy: str
    tst_info: bytes = field(repr=False)
    _signer: _SignerInfo = field(repr=False, compare=False)

    @property
    def signer(self) -> str:
        """The SignerInfo's identifier, for messages."""
        return self._signer.description


# --------------------------------------------------------------------------- parsing


def parse_timestamp_response(der: bytes) -> SignedTimestamp:
    """Decode an RFC 3161 TimeStampResp (DER) without verifying it.

    Args:
        der: The ``signedTimestamp`` bytes of a bundle.

    Returns:
        The parsed timestamp.

    Raises:
        FormatError: Malformed or unsupported structure (check ``time.tsa``).
        VerificationError: The response is well formed but its status is not
            granted, so it carries no timestamp (check ``time.tsa``).
    """
    if not isinstance(der, bytes | bytearray | memoryview):
        raise _bad("timestamp response is not bytes")
    der = bytes(der)
    if not der:
        raise _bad("timestamp response is empty")
    try:
        return _parse(der)
    except (FormatError, VerificationError):
        raise
    except Exception as exc:  # asn1crypto raises assorted exception types on bad input
        raise _bad(
            f"malformed timestamp response: {_clip(str(exc) or type(exc).__name__)}"
        ) from None


def _parse(der: bytes) -> SignedTimestamp:
    resp = _TimeStampResp.load(der, strict=True)
    status_info = resp["status"]
    status = int(status_info["status"])
    if status not in (0, 1):
        name = _STATUS_NAMES.get(status, str(status))
        extra = ""
        text = status_info["status_string"]
        if not isinstance(text, core.Void):
            extra = ": " + _clip("; ".join(str(s) for s in text.native))
        raise _fail(f"TSA did not grant the timestamp (status {name}){extra}")

    token = resp["time_stamp_token"]
    if isinstance(token, core.Void):
        raise _bad("granted timestamp response carries no TimeStampToken")
    if token["content_type"].dotted != _OID_SIGNED_DATA:
        raise _bad("TimeStampToken is not CMS SignedData")
    signed_data = token["content"]
    encap = signed_data["encap_content_info"]
    if encap["content_type"].dotted != _OID_TST_INFO:
        raise _bad("TimeStampToken eContentType is not id-ct-TSTInfo")
    econtent = encap["content"]
    if isinstance(econtent, core.Void):
        raise _bad("TimeStampToken has no eContent (detached TSTInfo)")
    tst_der = bytes(econtent)
    tst = tsp.TSTInfo.load(tst_der, strict=True)

    if int(tst["version"]) != 1:
        raise _bad(f"unsupported TSTInfo version {int(tst['version'])}")
    imprint = tst["message_imprint"]
    hash_algorithm = _digest_name(imprint["hash_algorithm"], "message imprint")
    hashed: bytes = imprint["hashed_message"].native
    if len(hashed) != _DIGEST_SIZES[hash_algorithm]:
        raise _bad(f"message imprint is {len(hashed)} bytes, not a {hash_algorithm} digest")
    gen_time = tst["gen_time"].native
    if not isinstance(gen_time, datetime) or gen_time.utcoffset() is None:
        raise _bad("TSTInfo genTime is not an absolute UTC time")
    gen_time = gen_time.astimezone(UTC)
    serial: int = tst["serial_number"].native
    nonce_field = tst["nonce"]
    nonce: int | None = None if isinstance(nonce_field, core.Void) else int(nonce_field.native)
    policy: str = tst["policy"].dotted

    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise _bad(f"TimeStampToken has {len(signer_infos)} SignerInfos; exactly 1 is required")
    signer = _parse_signer_info(signer_infos[0])

    return SignedTimestamp(
        der=der,
        status=status,
        gen_time=gen_time,
        hash_algorithm=hash_algorithm,
        message_imprint=hashed,
        serial_number=serial,
        nonce=nonce,
        policy=policy,
        tst_info=tst_der,
        _signer=signer,
    )


def _digest_name(algorithm: Any, what: str) -> str:
    oid: str = algorithm["algorithm"].dotted
    name = _DIGEST_OIDS.get(oid)
    if name is None:
        raise _bad(f"unsupported {what} hash algorithm {oid}")
    params = algorithm["parameters"]
    if not isinstance(params, core.Void | core.Null):
        raise _bad(f"{what} hash algorithm has unexpected parameters")
    return name


def _parse_signer_info(si: Any) -> _SignerInfo:
    sid = si["sid"]
    sid_issuer: bytes | None = None
    sid_serial: int | None = None
    sid_ski: bytes | None = None
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"]
        sid_issuer = issuer.dump()
        sid_serial = int(sid.chosen["serial_number"].native)
    else:
        sid_ski = bytes(sid.chosen.native)

    digest_algorithm = _digest_name(si["digest_algorithm"], "SignerInfo digest")

    sig_alg = si["signature_algorithm"]
    sig_oid: str = sig_alg["algorithm"].dotted
    if sig_oid not in _SIG_OIDS:
        raise _bad(f"unsupported timestamp signature algorithm {sig_oid}")
    scheme, sig_hash = _SIG_OIDS[sig_oid]
    if sig_hash is not None and sig_hash != digest_algorithm:
        raise _bad(
            f"signature algorithm uses {sig_hash} but the SignerInfo digest is {digest_algorithm}"
        )
    salt: int | None = None
    mgf_hash: str | None = None
    if scheme == "rsa_pss":
        params = sig_alg["parameters"]
        if not isinstance(params, algos.RSASSAPSSParams):
            raise _bad("RSASSA-PSS signature algorithm lacks its parameters")
        pss_hash = _digest_name(params["hash_algorithm"], "RSASSA-PSS")
        if pss_hash != digest_algorithm:
            raise _bad(
                f"RSASSA-PSS uses {pss_hash} but the SignerInfo digest is {digest_algorithm}"
            )
        mgf = params["mask_gen_algorithm"]
        if mgf["algorithm"].dotted != "1.2.840.113549.1.1.8":
            raise _bad("RSASSA-PSS mask generation function is not MGF1")
        mgf_hash = _digest_name(mgf["parameters"], "MGF1")
        salt = int(params["salt_length"].native)
        if int(params["trailer_field"]) != 1:
            raise _bad("RSASSA-PSS trailer field is not 1")

    signature = bytes(si["signature"].native)

    attrs = si["signed_attrs"]
    if isinstance(attrs, core.Void) or len(attrs) == 0:
        raise _bad("SignerInfo has no signed attributes")
    raw = attrs.dump()
    if raw[:1] != b"\xa0":
        raise _bad("signed attributes are not [0] IMPLICIT")
    signed_attrs = b"\x31" + raw[1:]

    seen: set[str] = set()
    content_type: str | None = None
    message_digest: bytes | None = None
    ess: list[_EssCertId] = []
    for attr in attrs:
        oid = attr["type"].dotted
        if oid in seen:
            raise _bad(f"signed attribute {oid} appears twice")
        seen.add(oid)
        if oid not in (
            _OID_CONTENT_TYPE,
            _OID_MESSAGE_DIGEST,
            _OID_SIGNING_CERT,
            _OID_SIGNING_CERT_V2,
        ):
            continue
        values = attr["values"]
        if len(values) != 1:
            raise _bad(f"signed attribute {oid} must have exactly one value")
        value = values[0]
        if oid == _OID_CONTENT_TYPE:
            content_type = value.dotted
        elif oid == _OID_MESSAGE_DIGEST:
            message_digest = bytes(value.native)
        elif oid == _OID_SIGNING_CERT:
            ess.append(_first_ess_cert_id(value, version=1))
        else:
            ess.append(_first_ess_cert_id(value, version=2))
    if content_type is None:
        raise _bad("signed attributes lack contentType")
    if message_digest is None:
        raise _bad("signed attributes lack messageDigest")

    return _SignerInfo(
        sid_issuer=sid_issuer,
        sid_serial=sid_serial,
        sid_ski=sid_ski,
        digest_algorithm=digest_algorithm,
        scheme=scheme,
        pss_salt_length=salt,
        pss_mgf_hash=mgf_hash,
        signature=signature,
        signed_attrs=signed_attrs,
        content_type=content_type,
        message_digest=message_digest,
        ess_cert_ids=tuple(ess),
    )


def _first_ess_cert_id(value: Any, *, version: int) -> _EssCertId:
    certs = value["certs"]
    if len(certs) == 0:
        raise _bad("signingCertificate attribute lists no certificates")
    first = certs[0]  # RFC 5035: the first ESSCertID identifies the signing certificate
    if version == 1:
        hash_algorithm = "sha1"
    else:
        hash_algorithm = _digest_name(first["hash_algorithm"], "ESSCertIDv2")
    cert_hash = bytes(first["cert_hash"].native)
    issuer_names: tuple[bytes, ...] | None = None
    serial: int | None = None
    issuer_serial = first["issuer_serial"]
    if not isinstance(issuer_serial, core.Void):
        issuer_names = tuple(
            gn.chosen.untag().dump()
            for gn in issuer_serial["issuer"]
            if gn.name == "directory_name"
        )
        serial = int(issuer_serial["serial_number"].native)
    return _EssCertId(version, hash_algorithm, cert_hash, issuer_names, serial)


# --------------------------------------------------------------------------- verification


def _eku_is_timestamping(_policy: Any, _cert: x509.Certificate, ext: Any) -> None:
    if not isinstance(ext, x509.ExtendedKeyUsage):
        raise ValueError("missing extendedKeyUsage")
    if ExtendedKeyUsageOID.TIME_STAMPING not in ext:
        raise ValueError("extendedKeyUsage lacks timeStamping")


def _ca_eku_allows_timestamping(_policy: Any, _cert: x509.Certificate, ext: Any) -> None:
    # An EKU on a CA constrains what it may issue: it must allow time stamping.
    if ext is None:
        return
    allowed = {ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    if not allowed.intersection(ext):
        raise ValueError("CA extendedKeyUsage does not allow timeStamping")


_EE_POLICY: Final = (
    xv.ExtensionPolicy.webpki_defaults_ee()
    .require_present(x509.ExtendedKeyUsage, xv.Criticality.CRITICAL, _eku_is_timestamping)
    .may_be_present(x509.SubjectAlternativeName, xv.Criticality.AGNOSTIC, None)
)
_CA_POLICY: Final = xv.ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, xv.Criticality.AGNOSTIC, _ca_eku_allows_timestamping
)


@dataclass(frozen=True)
class _Authority:
    """A trusted TSA with everything per-token checks need, computed once."""

    label: str  # for messages, e.g. "TSA 'name'"
    name: str  # TimestampAuthority.name, or "TSA #i" when empty
    valid_from: datetime
    valid_until: datetime | None
    leaf_issuer: bytes  # DER of the leaf's issuer Name
    leaf_issuer_key: str  # its RFC 5280 normalised form
    leaf_serial: int
    leaf_skis: frozenset[bytes]
    leaf_hashes: dict[str, bytes]
    public_key: Any
    not_before: datetime  # latest notBefore in the chain
    not_after: datetime  # earliest notAfter in the chain
    broken: str | None  # why the chain is unusable, or None


def _prepare(authority: TimestampAuthority, index: int) -> _Authority:
    label = f"TSA {_clip(authority.name)!r}" if authority.name else f"TSA #{index}"
    certs = authority.certificates
    if not certs:
        # Nothing can match a missing leaf; the chain reason is kept for completeness.
        return _Authority(
            label=label,
            name=authority.name or f"TSA #{index}",
            valid_from=authority.valid_from,
            valid_until=authority.valid_until,
            leaf_issuer=b"",
            leaf_issuer_key="",
            leaf_serial=-1,
            leaf_skis=frozenset(),
            leaf_hashes={},
            public_key=None,
            not_before=authority.valid_from,
            not_after=authority.valid_from,
            broken="chain is empty",
        )
    leaf = certs[0]
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    leaf_hashes = {
        name: hashlib.new(name, leaf_der).digest()
        for name in ("sha1", "sha256", "sha384", "sha512")
    }
    tbs = a_x509.Certificate.load(leaf_der)["tbs_certificate"]
    leaf_issuer: bytes = tbs["issuer"].dump()
    leaf_issuer_key: str = tbs["issuer"].hashable
    public_key = leaf.public_key()
    skis: set[bytes] = set()
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        skis.add(leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    with contextlib.suppress(TypeError, ValueError):  # RFC 5280 method 1 (SHA-1 of the key)
        skis.add(x509.SubjectKeyIdentifier.from_public_key(public_key).digest)
    not_before = max(c.not_valid_before_utc for c in certs)
    not_after = min(c.not_valid_after_utc for c in certs)
    return _Authority(
        label=label,
        name=authority.name or f"TSA #{index}",
        valid_from=authority.valid_from,
        valid_until=authority.valid_until,
        leaf_issuer=leaf_issuer,
        leaf_issuer_key=leaf_issuer_key,
        leaf_serial=leaf.serial_number,
        leaf_skis=frozenset(skis),
        leaf_hashes=leaf_hashes,
        public_key=public_key,
        not_before=not_before,
        not_after=not_after,
        broken=_chain_problem(certs, not_before, not_after),
    )


def _chain_problem(
    certs: tuple[x509.Certificate, ...], not_before: datetime, not_after: datetime
) -> str | None:
    """Validate a trusted-root TSA chain once; return why it is unusable, or None."""
    if len(certs) < 2:
        return f"chain has {len(certs)} certificate(s); at least 2 (TSA and root) are required"
    leaf = certs[0]
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return "certificate has no extendedKeyUsage (timeStamping is required)"
    except ValueError as exc:
        return f"certificate extensions are malformed: {exc}"
    if ExtendedKeyUsageOID.TIME_STAMPING not in eku.value:
        return "certificate extendedKeyUsage lacks timeStamping"
    if not eku.critical:
        return "certificate extendedKeyUsage is not critical (RFC 3161 section 2.3)"
    if not_before > not_after:
        return "chain certificates have no common validity period"
    verifier = (
        xv.PolicyBuilder()
        .store(xv.Store([certs[-1]]))
        .time(not_before)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, list(certs[1:-1]))
    except Exception as exc:  # x509 VerificationError, UnsupportedGeneralNameType, ...
        return f"chain does not verify: {_clip(str(exc), 200)}"
    return None


class TimestampVerifier:
    """Verifies RFC 3161 timestamps against a fixed set of trusted TSAs.

    Construct once per trusted root: chains are validated here, not per token.
    """

    def __init__(self, authorities: Sequence[TimestampAuthority]) -> None:
        """Prepare the authorities (parse keys, hash leaves, validate chains)."""
        self._authorities = tuple(_prepare(a, i) for i, a in enumerate(authorities))

    @property
    def problems(self) -> dict[str, str]:
        """Authorities whose chain is unusable, mapped to the reason."""
        return {a.label: a.broken for a in self._authorities if a.broken is not None}

    def verify(self, ts: SignedTimestamp, message: bytes) -> datetime:
        """Check that a trusted TSA timestamped ``message`` and return genTime.

        Args:
            ts: A parsed timestamp.
            message: The bytes that were timestamped (the bundle signature).

        Returns:
            The verified genTime (aware UTC).

        Raises:
            VerificationError: With check ``time.tsa`` and the most specific reason.
        """
        return self._verify(ts, message).time

    def _verify(self, ts: SignedTimestamp, message: bytes) -> VerifiedTimestamp:
        if hashlib.new(ts.hash_algorithm, message).digest() != ts.message_imprint:
            raise _fail("timestamp imprint does not match the signature")
        si = ts._signer
        if si.content_type != _OID_TST_INFO:
            raise _fail("signed contentType attribute is not id-ct-TSTInfo")
        if hashlib.new(si.digest_algorithm, ts.tst_info).digest() != si.message_digest:
            raise _fail("signed messageDigest attribute does not match the TSTInfo")
        if not si.ess_cert_ids:
            raise _fail("timestamp has no signingCertificate or signingCertificateV2 attribute")
        if not self._authorities:
            raise _fail("the trusted root lists no timestamp authorities")

        best_stage, best = 0, ""
        for auth in self._authorities:
            stage, reason = self._try(auth, ts)
            if reason is None:
                return VerifiedTimestamp(ts.gen_time, auth.name)
            if stage > best_stage:
                best_stage, best = stage, reason
        if best_stage == 0:  # no authority's leaf is the signer
            best = f"no trusted TSA signed this timestamp (signer: {si.description})"
        raise _fail(best)

    def verify_all(
        self, timestamps: Sequence[SignedTimestamp], message: bytes
    ) -> list[VerifiedTimestamp]:
        """Verify every timestamp of one bundle (fail closed on any bad one).

        Rejects more than :data:`MAX_TIMESTAMPS` timestamps and repeated ones (same
        TSTInfo, even if re-encoded around it), so a threshold cannot be inflated.

        Returns:
            ``(genTime, authority name)`` pairs, in input order.

        Raises:
            VerificationError: With check ``time.tsa``.
        """
        if len(timestamps) > MAX_TIMESTAMPS:
            raise _fail(f"too many timestamps: {len(timestamps)} > {MAX_TIMESTAMPS}")
        seen: set[bytes] = set()
        for i, ts in enumerate(timestamps):
            if ts.tst_info in seen:
                raise _fail(f"timestamp #{i} is a duplicate")
            seen.add(ts.tst_info)
        times = []
        for i, ts in enumerate(timestamps):
            try:
                times.append(self._verify(ts, message))
            except VerificationError as exc:
                raise _fail(f"timestamp #{i}: {exc.detail}") from None
        return times

    @staticmethod
    def _try(auth: _Authority, ts: SignedTimestamp) -> tuple[int, str | None]:
        """Check ``ts`` against one authority: (stage reached, failure or None).

        Stage 0 means the authority's leaf is not the signer; later stages are
        ever more specific failures of a matching authority.
        """
        si = ts._signer
        if si.sid_ski is not None:
            if si.sid_ski not in auth.leaf_skis:
                return 0, ""
        elif si.sid_serial != auth.leaf_serial or not _is_leaf_issuer(si.sid_issuer, auth):
            return 0, ""
        if auth.broken is not None:
            return 1, f"{auth.label} is not usable: {auth.broken}"
        for ess in si.ess_cert_ids:
            what = "signingCertificate" if ess.version == 1 else "signingCertificateV2"
            if auth.leaf_hashes.get(ess.hash_algorithm) != ess.cert_hash:
                return 2, f"{what} attribute does not name the {auth.label} certificate"
            if ess.serial_number is not None and (
                ess.serial_number != auth.leaf_serial
                or not any(_is_leaf_issuer(n, auth) for n in ess.issuer_names or ())
            ):
                return 2, f"{what} issuerSerial does not match the {auth.label} certificate"
        if not _signature_ok(auth.public_key, si):
            return 3, f"timestamp signature does not verify with the {auth.label} key"
        when = ts.gen_time
        if not auth.not_before <= when <= auth.not_after:
            return 4, (
                f"genTime {_utc(when)} is outside the {auth.label} certificate validity "
                f"[{_utc(auth.not_before)}, {_utc(auth.not_after)}]"
            )
        if when < auth.valid_from or (auth.valid_until is not None and when > auth.valid_until):
            end = _utc(auth.valid_until) if auth.valid_until is not None else "open"
            return 4, (
                f"genTime {_utc(when)} is outside the {auth.label} validFor "
                f"[{_utc(auth.valid_from)}, {end}]"
            )
        return 5, None


def _is_leaf_issuer(name_der: bytes | None, auth: _Authority) -> bool:
    """Compare a Name with the leaf's issuer: bytes first, then RFC 5280 normalised."""
    if name_der is None:
        return False
    if name_der == auth.leaf_issuer:
        return True
    try:
        key: str = a_x509.Name.load(name_der).hashable
    except Exception:  # malformed name: no match
        return False
    return key == auth.leaf_issuer_key


def _signature_ok(key: Any, si: _SignerInfo) -> bool:
    data = si.signed_attrs
    try:
        if si.scheme == "ecdsa":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return False
            key.verify(si.signature, data, ec.ECDSA(_CRYPTO_HASHES[si.digest_algorithm]()))
        elif si.scheme in ("rsa_pkcs1", "rsa_pss"):
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            algorithm = _CRYPTO_HASHES[si.digest_algorithm]()
            if si.scheme == "rsa_pkcs1":
                pad: padding.AsymmetricPadding = padding.PKCS1v15()
            else:
                assert si.pss_mgf_hash is not None and si.pss_salt_length is not None
                pad = padding.PSS(
                    mgf=padding.MGF1(_CRYPTO_HASHES[si.pss_mgf_hash]()),
                    salt_length=si.pss_salt_length,
                )
            key.verify(si.signature, data, pad, algorithm)
        elif si.scheme == "ed25519":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False
            key.verify(si.signature, data)
        else:  # pragma: no cover - parse only produces the schemes above
            return False
    except (InvalidSignature, ValueError, OverflowError):
        return False
    return True
