"""RFC 3161 signed timestamps: parse a TimeStampResp and verify it offline.

Sigstore bundles carry ``timestampVerificationData.rfc3161Timestamps[]``: each
``signedTimestamp`` is the DER of an RFC 3161 ``TimeStampResp`` whose TSTInfo
message imprint is a hash of the bundle's signature bytes. This module is pure
and does no I/O:

* :func:`parse_timestamp_response` decodes the CMS structure once, with a small
  strict DER reader, into a :class:`SignedTimestamp` holding exactly what
  verification needs.
* :class:`TimestampVerifier` is built once from the trusted root's timestamp
  authorities. It validates every authority's certificate chain up front (with
  ``cryptography.x509.verification``) and then checks tokens against them with
  one hash comparison and one signature verification each.

Certificates embedded in a token are never trusted: the signer must be the
leaf certificate of a trusted authority, named by the SignerInfo's identifier
and by the signed ESS ``signingCertificate(V2)`` attribute.

The DER reader accepts only DER's encoding forms: low tag numbers, definite
lengths in their shortest form, every structure exactly filled (no trailing
bytes at any level), exact tags, minimal INTEGER and OBJECT IDENTIFIER
encodings and DER GeneralizedTime (``Z``, seconds present, no trailing zeros
in fractions). It descends only along the fixed path of the fields it uses, so
its depth is bounded by construction; members it does not use (embedded
certificates, CRLs, unsigned attributes, accuracy, tsa name, extensions, other
signed attributes' values) are skipped as whole TLVs after their header is
checked. It does not check the ordering of SET OF members or that DEFAULT
values are omitted: the signature covers the signed attributes exactly as
given, and real TSAs encode ESSCertIDv2's default hash algorithm explicitly.
asn1crypto is imported lazily, only to print or normalise X.500 names.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import verification as xv
from cryptography.x509.oid import ExtendedKeyUsageOID

from toolkit._der import oid_content
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


#: The DER content octets of a dotted OID (module constants only).
_oid = oid_content


_OID_SIGNED_DATA: Final = _oid("1.2.840.113549.1.7.2")
_OID_TST_INFO: Final = _oid("1.2.840.113549.1.9.16.1.4")
_OID_CONTENT_TYPE: Final = _oid("1.2.840.113549.1.9.3")
_OID_MESSAGE_DIGEST: Final = _oid("1.2.840.113549.1.9.4")
_OID_SIGNING_TIME: Final = _oid("1.2.840.113549.1.9.5")
_OID_SIGNING_CERT: Final = _oid("1.2.840.113549.1.9.16.2.12")
_OID_SIGNING_CERT_V2: Final = _oid("1.2.840.113549.1.9.16.2.47")
_OID_MGF1: Final = _oid("1.2.840.113549.1.1.8")
_SHA1_DOTTED: Final = "1.3.14.3.2.26"

# Digest algorithms accepted for the message imprint, the SignerInfo digest and
# ESSCertIDv2. SHA-1 appears only where ESSCertID (v1) defines it.
_DIGEST_OIDS: Final = {
    _oid("2.16.840.1.101.3.4.2.1"): "sha256",
    _oid("2.16.840.1.101.3.4.2.2"): "sha384",
    _oid("2.16.840.1.101.3.4.2.3"): "sha512",
}
_DIGEST_SIZES: Final = {"sha256": 32, "sha384": 48, "sha512": 64}
_HASHLIB: Final[dict[str, Callable[[bytes], Any]]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
_CRYPTO_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_ECDSA: Final = {name: ec.ECDSA(algorithm) for name, algorithm in _CRYPTO_HASHES.items()}
_PKCS1V15: Final = padding.PKCS1v15()

# SignerInfo.signatureAlgorithm -> (scheme, hash named by the OID or None).
_SIG_OIDS: Final[dict[bytes, tuple[str, str | None]]] = {
    _oid("1.2.840.10045.4.3.2"): ("ecdsa", "sha256"),
    _oid("1.2.840.10045.4.3.3"): ("ecdsa", "sha384"),
    _oid("1.2.840.10045.4.3.4"): ("ecdsa", "sha512"),
    _oid("1.2.840.10045.4"): ("ecdsa", None),  # plain "ecdsa"; digest from digestAlgorithm
    _oid("1.2.840.10045.2.1"): ("ecdsa", None),  # id-ecPublicKey, used by some CMS signers
    _oid("1.2.840.113549.1.1.1"): ("rsa_pkcs1", None),  # rsaEncryption
    _oid("1.2.840.113549.1.1.11"): ("rsa_pkcs1", "sha256"),
    _oid("1.2.840.113549.1.1.12"): ("rsa_pkcs1", "sha384"),
    _oid("1.2.840.113549.1.1.13"): ("rsa_pkcs1", "sha512"),
    _oid("1.2.840.113549.1.1.10"): ("rsa_pss", None),
    _oid("1.3.101.112"): ("ed25519", None),
}

# OIDs whose encoding is known to be valid (no need to re-check them).
_KNOWN_OIDS: Final = frozenset(
    {
        _OID_SIGNED_DATA,
        _OID_TST_INFO,
        _OID_CONTENT_TYPE,
        _OID_MESSAGE_DIGEST,
        _OID_SIGNING_TIME,
        _OID_SIGNING_CERT,
        _OID_SIGNING_CERT_V2,
        *_DIGEST_OIDS,
        *_SIG_OIDS,
    }
)
# Signed attributes read: signingCertificate(V2) map to their ESSCertID version.
_CONTENT_TYPE_ATTR: Final = -1
_MESSAGE_DIGEST_ATTR: Final = -2
_ATTRIBUTES_READ: Final = {
    _OID_CONTENT_TYPE: _CONTENT_TYPE_ATTR,
    _OID_MESSAGE_DIGEST: _MESSAGE_DIGEST_ATTR,
    _OID_SIGNING_CERT: 1,
    _OID_SIGNING_CERT_V2: 2,
}

_STATUS_NAMES: Final = {
    0: "granted",
    1: "grantedWithMods",
    2: "rejection",
    3: "waiting",
    4: "revocationWarning",
    5: "revocationNotification",
}

# DER identifier octets used here.
_BOOLEAN: Final = 0x01
_INTEGER: Final = 0x02
_BIT_STRING: Final = 0x03
_OCTET_STRING: Final = 0x04
_OBJECT_ID: Final = 0x06
_UTF8_STRING: Final = 0x0C
_GENERALIZED_TIME: Final = 0x18
_SEQUENCE: Final = 0x30
_SET: Final = 0x31
_CTX0: Final = 0xA0  # [0] constructed
_CTX1: Final = 0xA1
_CTX2: Final = 0xA2
_CTX3: Final = 0xA3
_CTX4: Final = 0xA4
_CTX0_PRIMITIVE: Final = 0x80
_NULL_TLV: Final = b"\x05\x00"
_MAX_LENGTH_OCTETS: Final = 4
# Bounds that keep numbers printable (Python refuses int -> str beyond 4300 digits)
# and far above anything legitimate (serial numbers are at most 20 octets).
_MAX_INTEGER_OCTETS: Final = 64
_MAX_OID_OCTETS: Final = 64


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


# --------------------------------------------------------------------------- DER reader


def _tlv(d: bytes, pos: int, end: int, what: str, tag: int = -1) -> tuple[int, int, int]:
    """Read the DER element starting at ``pos`` inside ``d[:end]``.

    Args:
        d: The whole input.
        pos: Where the element's identifier octet is.
        end: Where the enclosing content ends; the element must fit before it.
        what: The element's name, for messages.
        tag: The identifier octet it must have, or -1 for any.

    Returns:
        ``(identifier octet, content start, content end)``; the content end is
        also where the next element starts.

    Raises:
        FormatError: Not a DER element of the expected tag that fits.
    """
    if end - pos < 2:
        raise _bad(f"{what} is truncated")
    found = d[pos]
    if found != tag and (tag >= 0 or found & 0x1F == 0x1F):
        raise _bad_tag(what, tag, found)
    length = d[pos + 1]
    if length < 0x80:  # short form: the common case
        pos += 2
        stop = pos + length
        if stop > end:
            raise _bad(f"{what} is truncated")
        return found, pos, stop
    count = length & 0x7F
    if count == 0:
        raise _bad(f"{what} has an indefinite length (BER, not DER)")
    if count > _MAX_LENGTH_OCTETS:
        raise _bad(f"{what} length is too large")
    pos += 2
    if end - pos < count:
        raise _bad(f"{what} is truncated")
    length = int.from_bytes(d[pos : pos + count], "big")
    if length < 0x80 or d[pos] == 0:
        raise _bad(f"{what} length is not minimally encoded")
    pos += count
    if length > end - pos:
        raise _bad(f"{what} is truncated")
    return found, pos, pos + length


def _bad_tag(what: str, tag: int, found: int) -> FormatError:
    if tag >= 0:
        return _bad(f"{what}: expected tag 0x{tag:02x}, found 0x{found:02x}")
    return _bad(f"{what} uses a high tag number")


def _done(pos: int, end: int, what: str) -> None:
    if pos != end:
        raise _bad(f"unexpected data after {what}")


def _integer(d: bytes, start: int, end: int, what: str) -> int:
    """Decode the content of a DER INTEGER (minimal two's complement, bounded)."""
    if start == end:
        raise _bad(f"{what} is an empty INTEGER")
    if end - start > _MAX_INTEGER_OCTETS:
        raise _bad(f"{what} is too large")
    if end - start > 1:
        first, second = d[start], d[start + 1]
        if (first == 0 and second < 0x80) or (first == 0xFF and second >= 0x80):
            raise _bad(f"{what} is not a minimally encoded INTEGER")
    return int.from_bytes(d[start:end], "big", signed=True)


@functools.lru_cache(maxsize=128)
def _dotted(content: bytes) -> str:
    """The dotted form of OID content octets; FormatError unless DER-valid."""
    if not content or content[-1] & 0x80:
        raise _bad("malformed OBJECT IDENTIFIER")
    if len(content) > _MAX_OID_OCTETS:
        raise _bad("OBJECT IDENTIFIER is too long")
    arcs: list[int] = []
    value, fresh = 0, True
    for byte in content:
        if fresh and byte == 0x80:
            raise _bad("OBJECT IDENTIFIER is not minimally encoded")
        value = (value << 7) | (byte & 0x7F)
        fresh = byte < 0x80
        if fresh:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _object_id(d: bytes, pos: int, end: int, what: str) -> tuple[bytes, int]:
    """Read an OBJECT IDENTIFIER: (content octets, next position)."""
    _, start, stop = _tlv(d, pos, end, what, _OBJECT_ID)
    content = d[start:stop]
    if content not in _KNOWN_OIDS:
        _dotted(content)  # validates the encoding
    return content, stop


def _generalized_time(c: bytes) -> datetime:
    """Decode DER GeneralizedTime content: ``YYYYMMDDHHMMSS[.f]Z``."""
    size = len(c)
    if size < 15 or c[-1] != 0x5A or not c[:14].isdigit():
        raise _bad("TSTInfo genTime is not a DER GeneralizedTime in UTC")
    micros = 0
    if size > 15:
        fraction = c[15:-1]
        if c[14] != 0x2E or not fraction.isdigit() or len(fraction) > 6 or fraction[-1] == 0x30:
            raise _bad("TSTInfo genTime fraction is not DER (or finer than a microsecond)")
        micros = int(fraction.ljust(6, b"0"))
    try:
        return datetime(
            int(c[0:4]),
            int(c[4:6]),
            int(c[6:8]),
            int(c[8:10]),
            int(c[10:12]),
            int(c[12:14]),
            micros,
            tzinfo=UTC,
        )
    except ValueError:
        raise _bad("TSTInfo genTime is not a valid date and time") from None


def _digest_algorithm(d: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    """Read a digest AlgorithmIdentifier (parameters absent or NULL)."""
    _, start, stop = _tlv(d, pos, end, what, _SEQUENCE)
    _, oid_start, oid_end = _tlv(d, start, stop, what, _OBJECT_ID)
    oid = d[oid_start:oid_end]
    name = _DIGEST_OIDS.get(oid)
    if name is None:
        raise _bad(f"unsupported {what} hash algorithm {_dotted(oid)}")
    if oid_end != stop and d[oid_end:stop] != _NULL_TLV:
        raise _bad(f"{what} hash algorithm has unexpected parameters")
    return name, stop


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


class _EssCertId(NamedTuple):
    """One ESSCertID(v2) from a signingCertificate(V2) attribute."""

    version: int  # 1 = ESSCertID (SHA-1), 2 = ESSCertIDv2
    hash_algorithm: str  # "sha1", "sha256", ...
    cert_hash: bytes
    issuer_names: tuple[bytes, ...] | None  # DER of the issuerSerial directoryNames
    serial_number: int | None


class _SignerInfo(NamedTuple):
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
    content_type: bytes  # OID content octets of the contentType attribute
    message_digest: bytes
    ess_cert_ids: tuple[_EssCertId, ...]

    @property
    def description(self) -> str:
        """The signer identifier in words (computed only for messages)."""
        if self.sid_ski is not None:
            return f"subjectKeyIdentifier {self.sid_ski.hex()}"
        try:
            from asn1crypto import x509 as a_x509

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
    if type(der) is not bytes:
        if not isinstance(der, bytes | bytearray | memoryview):
            raise _bad("timestamp response is not bytes")
        der = bytes(der)
    if not der:
        raise _bad("timestamp response is empty")
    try:
        return _parse(der)
    except (FormatError, VerificationError):
        raise
    except Exception as exc:  # pragma: no cover - defence in depth; the fuzz test calls _parse
        raise _bad(
            f"malformed timestamp response: {_clip(str(exc) or type(exc).__name__)}"
        ) from None


def _parse(d: bytes) -> SignedTimestamp:
    """Parse a TimeStampResp; raises only FormatError or VerificationError."""
    end = len(d)
    _, start, stop = _tlv(d, 0, end, "TimeStampResp", _SEQUENCE)
    _done(stop, end, "the TimeStampResp")
    status, pos = _parse_status(d, start, stop)
    if pos == stop:
        raise _bad("granted timestamp response carries no TimeStampToken")

    # TimeStampToken ::= ContentInfo { contentType, content [0] EXPLICIT SignedData }
    _, start, token_end = _tlv(d, pos, stop, "TimeStampToken", _SEQUENCE)
    _done(token_end, stop, "the TimeStampToken")
    content_type, pos = _object_id(d, start, token_end, "TimeStampToken contentType")
    if content_type != _OID_SIGNED_DATA:
        raise _bad("TimeStampToken is not CMS SignedData")
    _, start, stop = _tlv(d, pos, token_end, "TimeStampToken content", _CTX0)
    _done(stop, token_end, "the TimeStampToken content")
    _, start, sd_end = _tlv(d, start, stop, "SignedData", _SEQUENCE)
    _done(sd_end, stop, "the SignedData")
    _, _, pos = _tlv(d, start, sd_end, "SignedData version", _INTEGER)
    _, _, pos = _tlv(d, pos, sd_end, "SignedData digestAlgorithms", _SET)

    # EncapsulatedContentInfo ::= { eContentType, eContent [0] EXPLICIT OCTET STRING }
    _, start, encap_end = _tlv(d, pos, sd_end, "encapContentInfo", _SEQUENCE)
    econtent_type, pos = _object_id(d, start, encap_end, "eContentType")
    if econtent_type != _OID_TST_INFO:
        raise _bad("TimeStampToken eContentType is not id-ct-TSTInfo")
    if pos == encap_end:
        raise _bad("TimeStampToken has no eContent (detached TSTInfo)")
    _, start, stop = _tlv(d, pos, encap_end, "eContent", _CTX0)
    _done(stop, encap_end, "the eContent")
    _, tst_start, tst_end = _tlv(d, start, stop, "eContent", _OCTET_STRING)
    _done(tst_end, stop, "the eContent octets")

    pos = encap_end
    if pos < sd_end and d[pos] == _CTX0:  # certificates: never trusted, not read
        _, _, pos = _tlv(d, pos, sd_end, "SignedData certificates", _CTX0)
    if pos < sd_end and d[pos] == _CTX1:  # crls
        _, _, pos = _tlv(d, pos, sd_end, "SignedData crls", _CTX1)
    _, start, stop = _tlv(d, pos, sd_end, "SignedData signerInfos", _SET)
    _done(stop, sd_end, "the SignedData signerInfos")
    count, pos, first = 0, start, (0, 0)
    while pos < stop:
        _, member_start, pos = _tlv(d, pos, stop, "SignerInfo", _SEQUENCE)
        if count == 0:
            first = (member_start, pos)
        count += 1

    tst = _parse_tst_info(d, tst_start, tst_end)
    if count != 1:
        raise _bad(f"TimeStampToken has {count} SignerInfos; exactly 1 is required")
    return SignedTimestamp(
        d,
        status,
        tst.gen_time,
        tst.hash_algorithm,
        tst.message_imprint,
        tst.serial_number,
        tst.nonce,
        tst.policy,
        d[tst_start:tst_end],
        _parse_signer_info(d, *first),
    )


def _parse_status(d: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read PKIStatusInfo: (status, next position); reject ungranted responses."""
    _, start, stop = _tlv(d, pos, end, "PKIStatusInfo", _SEQUENCE)
    _, int_start, at = _tlv(d, start, stop, "PKIStatus", _INTEGER)
    status = _integer(d, int_start, at, "PKIStatus")
    texts: list[str] = []
    if at < stop and d[at] == _SEQUENCE:  # statusString PKIFreeText
        _, text_pos, text_end = _tlv(d, at, stop, "PKIStatusInfo statusString", _SEQUENCE)
        while text_pos < text_end:
            _, s, text_pos = _tlv(d, text_pos, text_end, "statusString", _UTF8_STRING)
            texts.append(d[s:text_pos].decode("utf-8", "replace"))
        at = text_end
    if at < stop and d[at] == _BIT_STRING:  # failInfo
        _, _, at = _tlv(d, at, stop, "PKIStatusInfo failInfo", _BIT_STRING)
    _done(at, stop, "the PKIStatusInfo")
    if status not in (0, 1):
        name = _STATUS_NAMES.get(status, str(status))
        extra = ": " + _clip("; ".join(texts)) if texts else ""
        raise _fail(f"TSA did not grant the timestamp (status {name}){extra}")
    return status, stop


class _TstInfo(NamedTuple):
    hash_algorithm: str
    message_imprint: bytes
    serial_number: int
    gen_time: datetime
    nonce: int | None
    policy: str


def _parse_tst_info(d: bytes, pos: int, end: int) -> _TstInfo:
    _, start, stop = _tlv(d, pos, end, "TSTInfo", _SEQUENCE)
    _done(stop, end, "the TSTInfo")
    _, at, pos = _tlv(d, start, stop, "TSTInfo version", _INTEGER)
    version = _integer(d, at, pos, "TSTInfo version")
    if version != 1:
        raise _bad(f"unsupported TSTInfo version {version}")
    _, at, pos = _tlv(d, pos, stop, "TSTInfo policy", _OBJECT_ID)
    policy = _dotted(d[at:pos])

    _, at, imprint_end = _tlv(d, pos, stop, "TSTInfo messageImprint", _SEQUENCE)
    hash_algorithm, at = _digest_algorithm(d, at, imprint_end, "message imprint")
    _, at, pos = _tlv(d, at, imprint_end, "messageImprint hashedMessage", _OCTET_STRING)
    _done(pos, imprint_end, "the messageImprint")
    hashed = d[at:pos]
    if len(hashed) != _DIGEST_SIZES[hash_algorithm]:
        raise _bad(f"message imprint is {len(hashed)} bytes, not a {hash_algorithm} digest")

    _, at, pos = _tlv(d, imprint_end, stop, "TSTInfo serialNumber", _INTEGER)
    serial = _integer(d, at, pos, "TSTInfo serialNumber")
    _, at, pos = _tlv(d, pos, stop, "TSTInfo genTime", _GENERALIZED_TIME)
    gen_time = _generalized_time(d[at:pos])

    nonce: int | None = None
    if pos < stop and d[pos] == _SEQUENCE:  # accuracy
        _, _, pos = _tlv(d, pos, stop, "TSTInfo accuracy", _SEQUENCE)
    if pos < stop and d[pos] == _BOOLEAN:  # ordering
        _, at, pos = _tlv(d, pos, stop, "TSTInfo ordering", _BOOLEAN)
        if pos - at != 1 or d[at] not in (0x00, 0xFF):
            raise _bad("TSTInfo ordering is not a DER BOOLEAN")
    if pos < stop and d[pos] == _INTEGER:
        _, at, pos = _tlv(d, pos, stop, "TSTInfo nonce", _INTEGER)
        nonce = _integer(d, at, pos, "TSTInfo nonce")
    if pos < stop and d[pos] == _CTX0:  # tsa GeneralName
        _, _, pos = _tlv(d, pos, stop, "TSTInfo tsa", _CTX0)
    if pos < stop and d[pos] == _CTX1:  # extensions
        _, _, pos = _tlv(d, pos, stop, "TSTInfo extensions", _CTX1)
    _done(pos, stop, "the TSTInfo fields")
    return _TstInfo(hash_algorithm, hashed, serial, gen_time, nonce, policy)


def _parse_signer_info(d: bytes, start: int, stop: int) -> _SignerInfo:
    _, _, pos = _tlv(d, start, stop, "SignerInfo version", _INTEGER)

    sid_issuer: bytes | None = None
    sid_serial: int | None = None
    sid_ski: bytes | None = None
    tag, at, sid_end = _tlv(d, pos, stop, "SignerInfo sid")
    if tag == _SEQUENCE:  # issuerAndSerialNumber
        _, _, name_end = _tlv(d, at, sid_end, "SignerInfo sid issuer", _SEQUENCE)
        sid_issuer = d[at:name_end]
        _, at, pos = _tlv(d, name_end, sid_end, "SignerInfo sid serialNumber", _INTEGER)
        _done(pos, sid_end, "the SignerInfo sid")
        sid_serial = _integer(d, at, pos, "SignerInfo sid serialNumber")
    elif tag == _CTX0_PRIMITIVE:  # [0] IMPLICIT SubjectKeyIdentifier
        sid_ski = d[at:sid_end]
    else:
        raise _bad("SignerInfo sid is neither issuerAndSerialNumber nor subjectKeyIdentifier")

    digest_algorithm, pos = _digest_algorithm(d, sid_end, stop, "SignerInfo digest")

    if pos >= stop or d[pos] != _CTX0:
        raise _bad("SignerInfo has no signed attributes")
    _, at, attrs_end = _tlv(d, pos, stop, "SignerInfo signedAttrs", _CTX0)
    if at == attrs_end:
        raise _bad("SignerInfo has no signed attributes")
    signed_attrs = b"\x31" + d[pos + 1 : attrs_end]
    content_type, message_digest, ess = _parse_signed_attrs(d, at, attrs_end)

    _, at, alg_end = _tlv(d, attrs_end, stop, "SignerInfo signatureAlgorithm", _SEQUENCE)
    _, oid_start, at = _tlv(d, at, alg_end, "SignerInfo signatureAlgorithm", _OBJECT_ID)
    sig_oid = d[oid_start:at]
    known = _SIG_OIDS.get(sig_oid)
    if known is None:
        raise _bad(f"unsupported timestamp signature algorithm {_dotted(sig_oid)}")
    scheme, sig_hash = known
    if sig_hash is not None and sig_hash != digest_algorithm:
        raise _bad(
            f"signature algorithm uses {sig_hash} but the SignerInfo digest is {digest_algorithm}"
        )
    salt: int | None = None
    mgf_hash: str | None = None
    if scheme == "rsa_pss":
        if at == alg_end:
            raise _bad("RSASSA-PSS signature algorithm lacks its parameters")
        salt, mgf_hash = _parse_pss(d, at, alg_end, digest_algorithm)
    elif at != alg_end:
        _, _, params_end = _tlv(d, at, alg_end, "signature algorithm parameters")
        _done(params_end, alg_end, "the signature algorithm parameters")

    _, at, pos = _tlv(d, alg_end, stop, "SignerInfo signature", _OCTET_STRING)
    signature = d[at:pos]
    if pos < stop and d[pos] == _CTX1:  # unsignedAttrs
        _, _, pos = _tlv(d, pos, stop, "SignerInfo unsignedAttrs", _CTX1)
    _done(pos, stop, "the SignerInfo")

    return _SignerInfo(
        sid_issuer,
        sid_serial,
        sid_ski,
        digest_algorithm,
        scheme,
        salt,
        mgf_hash,
        signature,
        signed_attrs,
        content_type,
        message_digest,
        ess,
    )


def _parse_signed_attrs(
    d: bytes, pos: int, end: int
) -> tuple[bytes, bytes, tuple[_EssCertId, ...]]:
    """(contentType OID, messageDigest, ESS cert ids) from the signed attributes."""
    seen: set[bytes] = set()
    content_type: bytes | None = None
    message_digest: bytes | None = None
    ess: list[_EssCertId] = []
    while pos < end:
        _, at, pos = _tlv(d, pos, end, "signed attribute", _SEQUENCE)
        oid, at = _object_id(d, at, pos, "signed attribute type")
        if oid in seen:
            raise _bad(f"signed attribute {_dotted(oid)} appears twice")
        seen.add(oid)
        _, at, values_end = _tlv(d, at, pos, "signed attribute values", _SET)
        _done(values_end, pos, "the signed attribute values")
        kind = _ATTRIBUTES_READ.get(oid)
        if kind is None:
            continue
        if at == values_end:
            raise _bad(f"signed attribute {_dotted(oid)} must have exactly one value")
        tag, value_start, value_end = _tlv(d, at, values_end, "signed attribute value")
        if value_end != values_end:
            raise _bad(f"signed attribute {_dotted(oid)} must have exactly one value")
        if kind == _CONTENT_TYPE_ATTR:
            content_type, _ = _object_id(d, at, values_end, "contentType attribute")
        elif kind == _MESSAGE_DIGEST_ATTR:
            if tag != _OCTET_STRING:
                raise _bad("messageDigest attribute is not an OCTET STRING")
            message_digest = d[value_start:value_end]
        else:
            if tag != _SEQUENCE:
                raise _bad("signingCertificate attribute is not a SEQUENCE")
            ess.append(_first_ess_cert_id(d, value_start, value_end, kind))
    if content_type is None:
        raise _bad("signed attributes lack contentType")
    if message_digest is None:
        raise _bad("signed attributes lack messageDigest")
    return content_type, message_digest, tuple(ess)


def _first_ess_cert_id(d: bytes, pos: int, end: int, version: int) -> _EssCertId:
    """The first ESSCertID(v2) of a SigningCertificate(V2) SEQUENCE's content."""
    _, at, certs_end = _tlv(d, pos, end, "signingCertificate certs", _SEQUENCE)
    if certs_end < end:  # policies
        _, _, pos = _tlv(d, certs_end, end, "signingCertificate policies", _SEQUENCE)
        _done(pos, end, "the signingCertificate attribute")
    if at == certs_end:
        raise _bad("signingCertificate attribute lists no certificates")
    # RFC 5035: the first ESSCertID identifies the signing certificate.
    _, at, first_end = _tlv(d, at, certs_end, "ESSCertID", _SEQUENCE)
    pos = first_end
    while pos < certs_end:
        _, _, pos = _tlv(d, pos, certs_end, "ESSCertID", _SEQUENCE)

    if version == 1:
        hash_algorithm = "sha1"
    elif at < first_end and d[at] == _SEQUENCE:
        hash_algorithm, at = _digest_algorithm(d, at, first_end, "ESSCertIDv2")
    else:
        hash_algorithm = "sha256"  # DEFAULT {algorithm id-sha256}
    _, at, pos = _tlv(d, at, first_end, "ESSCertID certHash", _OCTET_STRING)
    cert_hash = d[at:pos]
    if pos == first_end:
        return _EssCertId(version, hash_algorithm, cert_hash, None, None)

    _, at, serial_end = _tlv(d, pos, first_end, "ESSCertID issuerSerial", _SEQUENCE)
    _done(serial_end, first_end, "the ESSCertID")
    _, at, names_end = _tlv(d, at, serial_end, "issuerSerial issuer", _SEQUENCE)
    names: list[bytes] = []
    while at < names_end:
        tag, name_start, name_end = _tlv(d, at, names_end, "issuerSerial GeneralName")
        if tag == _CTX4:  # directoryName [4] EXPLICIT Name
            _, _, inner_end = _tlv(d, name_start, name_end, "directoryName", _SEQUENCE)
            _done(inner_end, name_end, "the directoryName")
            names.append(d[name_start:name_end])
        elif tag & 0xC0 != 0x80 or tag & 0x1F > 8:
            raise _bad("issuerSerial issuer is not a GeneralName")
        at = name_end
    _, at, pos = _tlv(d, names_end, serial_end, "issuerSerial serialNumber", _INTEGER)
    _done(pos, serial_end, "the issuerSerial")
    serial = _integer(d, at, pos, "issuerSerial serialNumber")
    return _EssCertId(version, hash_algorithm, cert_hash, tuple(names), serial)


def _parse_pss(d: bytes, pos: int, end: int, digest_algorithm: str) -> tuple[int, str]:
    """RSASSA-PSS-params: (salt length, MGF1 hash); the hash must be the digest's."""
    _, at, stop = _tlv(d, pos, end, "RSASSA-PSS parameters", _SEQUENCE)
    _done(stop, end, "the RSASSA-PSS parameters")
    if at < stop and d[at] == _CTX0:
        _, inner, at = _tlv(d, at, stop, "RSASSA-PSS hashAlgorithm", _CTX0)
        pss_hash, inner = _digest_algorithm(d, inner, at, "RSASSA-PSS")
        _done(inner, at, "the RSASSA-PSS hashAlgorithm")
    else:
        raise _bad(f"unsupported RSASSA-PSS hash algorithm {_SHA1_DOTTED}")
    if pss_hash != digest_algorithm:
        raise _bad(f"RSASSA-PSS uses {pss_hash} but the SignerInfo digest is {digest_algorithm}")
    if at < stop and d[at] == _CTX1:
        _, inner, at = _tlv(d, at, stop, "RSASSA-PSS maskGenAlgorithm", _CTX1)
        _, inner, mgf_end = _tlv(d, inner, at, "RSASSA-PSS maskGenAlgorithm", _SEQUENCE)
        _done(mgf_end, at, "the RSASSA-PSS maskGenAlgorithm")
        mgf_oid, inner = _object_id(d, inner, mgf_end, "RSASSA-PSS maskGenAlgorithm")
        if mgf_oid != _OID_MGF1:
            raise _bad("RSASSA-PSS mask generation function is not MGF1")
        mgf_hash, inner = _digest_algorithm(d, inner, mgf_end, "MGF1")
        _done(inner, mgf_end, "the MGF1 parameters")
    else:
        raise _bad(f"unsupported MGF1 hash algorithm {_SHA1_DOTTED}")
    salt = 20
    if at < stop and d[at] == _CTX2:
        _, inner, at = _tlv(d, at, stop, "RSASSA-PSS saltLength", _CTX2)
        _, value, inner_end = _tlv(d, inner, at, "RSASSA-PSS saltLength", _INTEGER)
        _done(inner_end, at, "the RSASSA-PSS saltLength")
        salt = _integer(d, value, inner_end, "RSASSA-PSS saltLength")
        if salt < 0:
            raise _bad("RSASSA-PSS salt length is negative")
    if at < stop and d[at] == _CTX3:
        _, inner, at = _tlv(d, at, stop, "RSASSA-PSS trailerField", _CTX3)
        _, value, inner_end = _tlv(d, inner, at, "RSASSA-PSS trailerField", _INTEGER)
        _done(inner_end, at, "the RSASSA-PSS trailerField")
        if _integer(d, value, inner_end, "RSASSA-PSS trailerField") != 1:
            raise _bad("RSASSA-PSS trailer field is not 1")
    _done(at, stop, "the RSASSA-PSS parameters")
    return salt, mgf_hash


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
    leaf_serial: int
    leaf_skis: frozenset[bytes]
    leaf_hashes: dict[str, bytes]
    public_key: Any
    not_before: datetime  # latest notBefore in the chain
    not_after: datetime  # earliest notAfter in the chain
    broken: str | None  # why the chain is unusable, or None


def _issuer_der(cert_der: bytes) -> bytes:
    """The DER issuer Name of a certificate (already parsed by cryptography)."""
    _, at, cert_end = _tlv(cert_der, 0, len(cert_der), "certificate", _SEQUENCE)
    _, at, tbs_end = _tlv(cert_der, at, cert_end, "tbsCertificate", _SEQUENCE)
    if at < tbs_end and cert_der[at] == _CTX0:  # version
        _, _, at = _tlv(cert_der, at, tbs_end, "version", _CTX0)
    _, _, at = _tlv(cert_der, at, tbs_end, "serialNumber", _INTEGER)
    _, _, name_start = _tlv(cert_der, at, tbs_end, "signature", _SEQUENCE)
    _, _, name_end = _tlv(cert_der, name_start, tbs_end, "issuer", _SEQUENCE)
    return cert_der[name_start:name_end]


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
    leaf_hashes = {name: new(leaf_der).digest() for name, new in _HASHLIB.items()}
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
        leaf_issuer=_issuer_der(leaf_der),
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
        if _HASHLIB[ts.hash_algorithm](message).digest() != ts.message_imprint:
            raise _fail("timestamp imprint does not match the signature")
        si = ts._signer
        if si.content_type != _OID_TST_INFO:
            raise _fail("signed contentType attribute is not id-ct-TSTInfo")
        if _HASHLIB[si.digest_algorithm](ts.tst_info).digest() != si.message_digest:
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
        if len(timestamps) > 1:
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
            if auth.leaf_hashes.get(ess.hash_algorithm) != ess.cert_hash:
                what = "signingCertificate" if ess.version == 1 else "signingCertificateV2"
                return 2, f"{what} attribute does not name the {auth.label} certificate"
            if ess.serial_number is not None and (
                ess.serial_number != auth.leaf_serial
                or not any(_is_leaf_issuer(n, auth) for n in ess.issuer_names or ())
            ):
                what = "signingCertificate" if ess.version == 1 else "signingCertificateV2"
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
    key = _name_key(name_der)
    return key is not None and key == _name_key(auth.leaf_issuer)


@functools.lru_cache(maxsize=64)
def _name_key(name_der: bytes) -> str | None:
    """The RFC 5280 normalised form of a DER Name, or None if it is malformed."""
    from asn1crypto import x509 as a_x509  # rare path: names that differ in bytes

    try:
        key: str = a_x509.Name.load(name_der).hashable
    except Exception:  # malformed name: matches nothing
        return None
    return key


def _signature_ok(key: Any, si: _SignerInfo) -> bool:
    data = si.signed_attrs
    scheme = si.scheme
    try:
        if scheme == "ecdsa":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return False
            key.verify(si.signature, data, _ECDSA[si.digest_algorithm])
        elif scheme == "ed25519":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False
            key.verify(si.signature, data)
        elif scheme in ("rsa_pkcs1", "rsa_pss"):
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            if scheme == "rsa_pkcs1":
                pad: padding.AsymmetricPadding = _PKCS1V15
            else:
                assert si.pss_mgf_hash is not None and si.pss_salt_length is not None
                pad = padding.PSS(
                    mgf=padding.MGF1(_CRYPTO_HASHES[si.pss_mgf_hash]),
                    salt_length=si.pss_salt_length,
                )
            key.verify(si.signature, data, pad, _CRYPTO_HASHES[si.digest_algorithm])
        else:  # pragma: no cover - parse only produces the schemes above
            return False
    except (InvalidSignature, ValueError, OverflowError):
        return False
    return True
