"""Trust roots (``dev.sigstore.trustroot.v1.TrustedRoot``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.errors import Check, FormatError
from toolkit.models._base import (
    Reader,
    compact,
    dump_document,
    enum_value,
    load_document,
    read_media_type,
    tag_errors,
)
from toolkit.models.common import (
    DistinguishedName,
    HashAlgorithm,
    LogId,
    PublicKey,
    TimeRange,
    X509CertificateChain,
)

__all__ = [
    "TRUSTED_ROOT_MEDIA_TYPE",
    "CertificateAuthority",
    "TransparencyLogInstance",
    "TrustedRoot",
]

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"

#: Upper bound on entries in one list of a trust document.
MAX_ENTRIES = 256


@dataclass(frozen=True)
class TransparencyLogInstance:
    """A transparency log or CT log: where it lives and the key it signs with."""

    base_url: str
    hash_algorithm: HashAlgorithm
    public_key: PublicKey
    log_id: LogId
    checkpoint_key_id: LogId | None = None
    operator: str = ""

    def __post_init__(self) -> None:
        if not self.base_url:
            raise FormatError("baseUrl must not be empty")
        if not self.public_key.raw_bytes:
            raise FormatError("publicKey.rawBytes must not be empty")
        if self.public_key.valid_for is None:
            # Fail closed: a key without a validity start could back-date anything.
            raise FormatError("publicKey.validFor.start is required")

    @classmethod
    def from_dict(cls, data: Any, path: str = "tlogs[]") -> TransparencyLogInstance:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        base_url = r.string("baseUrl", required=True)
        hash_algorithm = r.enum("hashAlgorithm", HashAlgorithm)
        public_key = r.message("publicKey", PublicKey.from_dict)
        log_id = r.message("logId", LogId.from_dict)
        checkpoint_key_id = r.opt_message("checkpointKeyId", LogId.from_dict)
        operator = r.string("operator")
        return r.build(
            cls,
            base_url=base_url,
            hash_algorithm=hash_algorithm,
            public_key=public_key,
            log_id=log_id,
            checkpoint_key_id=checkpoint_key_id,
            operator=operator,
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact(
            {
                "baseUrl": self.base_url,
                "hashAlgorithm": enum_value(self.hash_algorithm),
                "publicKey": self.public_key.to_dict(),
                "logId": self.log_id.to_dict(),
                "checkpointKeyId": (
                    self.checkpoint_key_id.to_dict() if self.checkpoint_key_id else None
                ),
                "operator": self.operator or None,
            }
        )


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA (or TSA) chain, leaf or intermediate first and root last."""

    subject: DistinguishedName
    cert_chain: X509CertificateChain
    valid_for: TimeRange
    uri: str = ""
    operator: str = ""

    def __post_init__(self) -> None:
        if not self.cert_chain.certificates:
            raise FormatError("certChain must hold at least one certificate")

    @classmethod
    def from_dict(cls, data: Any, path: str = "certificateAuthorities[]") -> CertificateAuthority:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        subject = r.opt_message("subject", DistinguishedName.from_dict) or DistinguishedName()
        uri = r.string("uri")
        chain = r.message("certChain", X509CertificateChain.from_dict)
        valid_for = r.message("validFor", TimeRange.from_dict)
        operator = r.string("operator")
        return r.build(
            cls, subject=subject, cert_chain=chain, valid_for=valid_for, uri=uri, operator=operator
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact(
            {
                "subject": self.subject.to_dict(),
                "uri": self.uri or None,
                "certChain": self.cert_chain.to_dict(),
                "validFor": self.valid_for.to_dict(),
                "operator": self.operator or None,
            }
        )


@dataclass(frozen=True)
class TrustedRoot:
    """Everything a verifier trusts: logs, CT logs, CAs and TSAs with validity windows."""

    tlogs: tuple[TransparencyLogInstance, ...] = ()
    certificate_authorities: tuple[CertificateAuthority, ...] = ()
    ctlogs: tuple[TransparencyLogInstance, ...] = ()
    timestamp_authorities: tuple[CertificateAuthority, ...] = ()
    media_type: str = TRUSTED_ROOT_MEDIA_TYPE

    def __post_init__(self) -> None:
        if self.media_type != TRUSTED_ROOT_MEDIA_TYPE:
            raise FormatError(
                f"unsupported trusted root media type {self.media_type[:80]!r} "
                f"(expected {TRUSTED_ROOT_MEDIA_TYPE!r})"
            )

    @classmethod
    @tag_errors(Check.TRUST_ROOT_PARSE)
    def from_dict(cls, data: Any, path: str = "") -> TrustedRoot:
        """Parse from proto3 JSON.

        Raises:
            FormatError: with check ``trust-root.parse``.
        """
        r = Reader(data, path)
        media_type = read_media_type(r, TRUSTED_ROOT_MEDIA_TYPE, "trusted root")
        tlogs = r.repeated("tlogs", TransparencyLogInstance.from_dict, max_items=MAX_ENTRIES)
        cas = r.repeated(
            "certificateAuthorities", CertificateAuthority.from_dict, max_items=MAX_ENTRIES
        )
        ctlogs = r.repeated("ctlogs", TransparencyLogInstance.from_dict, max_items=MAX_ENTRIES)
        tsas = r.repeated(
            "timestampAuthorities", CertificateAuthority.from_dict, max_items=MAX_ENTRIES
        )
        return r.build(
            cls,
            tlogs=tlogs,
            certificate_authorities=cas,
            ctlogs=ctlogs,
            timestamp_authorities=tsas,
            media_type=media_type,
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> TrustedRoot:
        """Parse a trusted root from JSON text (check ``trust-root.parse`` on errors)."""
        return cls.from_dict(load_document(data, "trusted root"))

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {
            "mediaType": self.media_type,
            "tlogs": [t.to_dict() for t in self.tlogs],
            "certificateAuthorities": [c.to_dict() for c in self.certificate_authorities],
            "ctlogs": [t.to_dict() for t in self.ctlogs],
            "timestampAuthorities": [t.to_dict() for t in self.timestamp_authorities],
        }

    def to_json(self) -> str:
        """Serialise to the indented JSON airseal publishes (stable byte for byte)."""
        return dump_document(self.to_dict())
