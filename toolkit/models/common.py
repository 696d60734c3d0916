"""Messages of ``sigstore_common.proto`` shared by bundles and trust roots."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from toolkit.errors import FormatError
from toolkit.models._base import Reader, compact, enum_value, format_time, to_b64

__all__ = [
    "DistinguishedName",
    "HashAlgorithm",
    "HashOutput",
    "LogId",
    "MessageSignature",
    "PublicKey",
    "PublicKeyDetails",
    "PublicKeyIdentifier",
    "RFC3161SignedTimestamp",
    "TimeRange",
    "X509Certificate",
    "X509CertificateChain",
]

#: Upper bound on certificates in one chain; real chains have at most a handful.
MAX_CHAIN_CERTIFICATES = 16


class HashAlgorithm(enum.StrEnum):
    """``dev.sigstore.common.v1.HashAlgorithm`` (the unspecified value is refused)."""

    SHA2_256 = "SHA2_256"
    SHA2_384 = "SHA2_384"
    SHA2_512 = "SHA2_512"
    SHA3_256 = "SHA3_256"
    SHA3_384 = "SHA3_384"

    @property
    def digest_size(self) -> int:
        """Length in bytes of a digest of this algorithm."""
        return {"SHA2_256": 32, "SHA2_384": 48, "SHA2_512": 64, "SHA3_256": 32, "SHA3_384": 48}[
            self.value
        ]


class PublicKeyDetails(enum.StrEnum):
    """``dev.sigstore.common.v1.PublicKeyDetails``: key type plus signature scheme."""

    PKCS1_RSA_PKCS1V5 = "PKCS1_RSA_PKCS1V5"
    PKCS1_RSA_PSS = "PKCS1_RSA_PSS"
    PKIX_RSA_PKCS1V5 = "PKIX_RSA_PKCS1V5"
    PKIX_RSA_PSS = "PKIX_RSA_PSS"
    PKIX_RSA_PKCS1V15_2048_SHA256 = "PKIX_RSA_PKCS1V15_2048_SHA256"
    PKIX_RSA_PKCS1V15_3072_SHA256 = "PKIX_RSA_PKCS1V15_3072_SHA256"
    PKIX_RSA_PKCS1V15_4096_SHA256 = "PKIX_RSA_PKCS1V15_4096_SHA256"
    PKIX_RSA_PSS_2048_SHA256 = "PKIX_RSA_PSS_2048_SHA256"
    PKIX_RSA_PSS_3072_SHA256 = "PKIX_RSA_PSS_3072_SHA256"
    PKIX_RSA_PSS_4096_SHA256 = "PKIX_RSA_PSS_4096_SHA256"
    PKIX_ECDSA_P256_HMAC_SHA_256 = "PKIX_ECDSA_P256_HMAC_SHA_256"
    PKIX_ECDSA_P256_SHA_256 = "PKIX_ECDSA_P256_SHA_256"
    PKIX_ECDSA_P384_SHA_384 = "PKIX_ECDSA_P384_SHA_384"
    PKIX_ECDSA_P521_SHA_512 = "PKIX_ECDSA_P521_SHA_512"
    PKIX_ED25519 = "PKIX_ED25519"
    PKIX_ED25519_PH = "PKIX_ED25519_PH"
    PKIX_ECDSA_P384_SHA_256 = "PKIX_ECDSA_P384_SHA_256"
    PKIX_ECDSA_P521_SHA_256 = "PKIX_ECDSA_P521_SHA_256"
    LMS_SHA256 = "LMS_SHA256"
    LMOTS_SHA256 = "LMOTS_SHA256"
    ML_DSA_65 = "ML_DSA_65"
    ML_DSA_87 = "ML_DSA_87"


@dataclass(frozen=True)
class TimeRange:
    """A closed validity interval ``[start, end]``; ``end`` is open-ended when None.

    airseal fails closed: ``start`` is required, although the proto marks it optional.
    """

    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or (self.end is not None and self.end.tzinfo is None):
            raise FormatError("validity times must be timezone-aware")
        if self.end is not None and self.end < self.start:
            raise FormatError("validity ends before it starts")

    def contains(self, moment: datetime) -> bool:
        """Return True when ``moment`` lies inside the closed interval."""
        return self.start <= moment and (self.end is None or moment <= self.end)

    @classmethod
    def from_dict(cls, data: Any, path: str = "validFor") -> TimeRange:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        start = r.timestamp("start", required=True)
        end = r.timestamp("end")
        r.finish()
        assert start is not None
        return r.build(cls, start=start, end=end)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact(
            {
                "start": format_time(self.start),
                "end": format_time(self.end) if self.end is not None else None,
            }
        )


@dataclass(frozen=True)
class HashOutput:
    """A digest and the algorithm that produced it."""

    algorithm: HashAlgorithm
    digest: bytes

    def __post_init__(self) -> None:
        if len(self.digest) != self.algorithm.digest_size:
            raise FormatError(
                f"{self.algorithm.value} digest must be {self.algorithm.digest_size} bytes, "
                f"got {len(self.digest)}"
            )

    @classmethod
    def from_dict(cls, data: Any, path: str = "messageDigest") -> HashOutput:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        algorithm = r.enum("algorithm", HashAlgorithm)
        digest = r.bytes_("digest", required=True)
        return r.build(cls, algorithm=algorithm, digest=digest)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"algorithm": enum_value(self.algorithm), "digest": to_b64(self.digest)}


@dataclass(frozen=True)
class MessageSignature:
    """A signature over an artifact, with the artifact's digest as a hint."""

    signature: bytes
    message_digest: HashOutput | None = None

    def __post_init__(self) -> None:
        if not self.signature:
            raise FormatError("signature must not be empty")

    @classmethod
    def from_dict(cls, data: Any, path: str = "messageSignature") -> MessageSignature:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        message_digest = r.opt_message("messageDigest", HashOutput.from_dict)
        signature = r.bytes_("signature", required=True)
        return r.build(cls, signature=signature, message_digest=message_digest)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact(
            {
                "messageDigest": self.message_digest.to_dict() if self.message_digest else None,
                "signature": to_b64(self.signature),
            }
        )


@dataclass(frozen=True)
class LogId:
    """The identity of a log: a hash of its key (32 bytes for every Sigstore log)."""

    key_id: bytes

    def __post_init__(self) -> None:
        if not self.key_id:
            raise FormatError("keyId must not be empty")

    @classmethod
    def from_dict(cls, data: Any, path: str = "logId") -> LogId:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        key_id = r.bytes_("keyId", required=True)
        return r.build(cls, key_id=key_id)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"keyId": to_b64(self.key_id)}


@dataclass(frozen=True)
class RFC3161SignedTimestamp:
    """A DER-encoded RFC 3161 ``TimeStampResp``."""

    signed_timestamp: bytes

    def __post_init__(self) -> None:
        if not self.signed_timestamp:
            raise FormatError("signedTimestamp must not be empty")

    @classmethod
    def from_dict(cls, data: Any, path: str = "rfc3161Timestamps[]") -> RFC3161SignedTimestamp:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        value = r.bytes_("signedTimestamp", required=True)
        return r.build(cls, signed_timestamp=value)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"signedTimestamp": to_b64(self.signed_timestamp)}


@dataclass(frozen=True)
class PublicKey:
    """A DER SubjectPublicKeyInfo with its signature scheme and validity."""

    key_details: PublicKeyDetails
    raw_bytes: bytes = b""
    valid_for: TimeRange | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str = "publicKey") -> PublicKey:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        raw = r.bytes_("rawBytes")
        details = r.enum("keyDetails", PublicKeyDetails)
        valid_for = r.opt_message("validFor", TimeRange.from_dict)
        r.finish()
        return cls(key_details=details, raw_bytes=raw, valid_for=valid_for)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact(
            {
                "rawBytes": to_b64(self.raw_bytes) if self.raw_bytes else None,
                "keyDetails": enum_value(self.key_details),
                "validFor": self.valid_for.to_dict() if self.valid_for else None,
            }
        )


@dataclass(frozen=True)
class PublicKeyIdentifier:
    """An unauthenticated hint naming an out-of-band key (managed-key bundles)."""

    hint: str = ""

    @classmethod
    def from_dict(cls, data: Any, path: str = "publicKey") -> PublicKeyIdentifier:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        hint = r.string("hint")
        r.finish()
        return cls(hint=hint)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"hint": self.hint} if self.hint else {}


@dataclass(frozen=True)
class X509Certificate:
    """One DER-encoded certificate."""

    raw_bytes: bytes

    def __post_init__(self) -> None:
        if not self.raw_bytes:
            raise FormatError("rawBytes must not be empty")

    @classmethod
    def from_dict(cls, data: Any, path: str = "certificate") -> X509Certificate:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        raw = r.bytes_("rawBytes", required=True)
        return r.build(cls, raw_bytes=raw)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"rawBytes": to_b64(self.raw_bytes)}


@dataclass(frozen=True)
class X509CertificateChain:
    """A list of DER certificates (leaf first where order matters)."""

    certificates: tuple[X509Certificate, ...]

    @classmethod
    def from_dict(cls, data: Any, path: str = "x509CertificateChain") -> X509CertificateChain:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        certs = r.repeated(
            "certificates", X509Certificate.from_dict, max_items=MAX_CHAIN_CERTIFICATES
        )
        r.finish()
        return cls(certificates=certs)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"certificates": [c.to_dict() for c in self.certificates]}


@dataclass(frozen=True)
class DistinguishedName:
    """The organisation and common name describing a CA or TSA."""

    organization: str = ""
    common_name: str = ""

    @classmethod
    def from_dict(cls, data: Any, path: str = "subject") -> DistinguishedName:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        organization = r.string("organization")
        common_name = r.string("commonName")
        r.finish()
        return cls(organization=organization, common_name=common_name)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"organization": self.organization, "commonName": self.common_name}
