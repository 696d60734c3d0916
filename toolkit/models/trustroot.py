"""Trust roots and service configuration (``dev.sigstore.trustroot.v1``)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from toolkit.encoding import load_json
from toolkit.errors import Check, FormatError
from toolkit.models._base import Reader, compact, enum_value
from toolkit.models.common import (
    DistinguishedName,
    HashAlgorithm,
    LogId,
    PublicKey,
    TimeRange,
    X509CertificateChain,
)

__all__ = [
    "CLIENT_TRUST_CONFIG_MEDIA_TYPE",
    "SIGNING_CONFIG_MEDIA_TYPE",
    "TRUSTED_ROOT_MEDIA_TYPE",
    "CertificateAuthority",
    "ClientTrustConfig",
    "Service",
    "ServiceConfiguration",
    "ServiceSelector",
    "SigningConfig",
    "TransparencyLogInstance",
    "TrustedRoot",
]

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
SIGNING_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"

#: Trust documents larger than this are refused (real ones are < 64 KiB).
MAX_TRUST_DOCUMENT_BYTES = 4 << 20
_MAX_ENTRIES = 256


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
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
        r.finish()
        with r.constructing():
            return cls(
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


@dataclass(frozen=True, slots=True)
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
        r.finish()
        with r.constructing():
            return cls(
                subject=subject, cert_chain=chain, valid_for=valid_for, uri=uri, operator=operator
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


@dataclass(frozen=True, slots=True)
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
    def from_dict(cls, data: Any, path: str = "") -> TrustedRoot:
        """Parse from proto3 JSON.

        Raises:
            FormatError: with check ``trust-root.parse``.
        """
        try:
            r = Reader(data, path)
            media_type = _media_type(r, TRUSTED_ROOT_MEDIA_TYPE, "trusted root")
            tlogs = r.repeated("tlogs", TransparencyLogInstance.from_dict, max_items=_MAX_ENTRIES)
            cas = r.repeated(
                "certificateAuthorities", CertificateAuthority.from_dict, max_items=_MAX_ENTRIES
            )
            ctlogs = r.repeated("ctlogs", TransparencyLogInstance.from_dict, max_items=_MAX_ENTRIES)
            tsas = r.repeated(
                "timestampAuthorities", CertificateAuthority.from_dict, max_items=_MAX_ENTRIES
            )
            r.finish()
            with r.constructing():
                return cls(
                    tlogs=tlogs,
                    certificate_authorities=cas,
                    ctlogs=ctlogs,
                    timestamp_authorities=tsas,
                    media_type=media_type,
                )
        except FormatError as exc:
            raise FormatError(exc.detail, path=exc.path, check=Check.TRUST_ROOT_PARSE) from None

    @classmethod
    def from_json(cls, data: bytes | str) -> TrustedRoot:
        """Parse a trusted root from JSON text (check ``trust-root.parse`` on errors)."""
        return cls.from_dict(_load(data, "trusted root"))

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
        return _dumps(self.to_dict())


class ServiceSelector(enum.StrEnum):
    """How many of the listed services a signer must use."""

    ALL = "ALL"
    ANY = "ANY"
    EXACT = "EXACT"


@dataclass(frozen=True, slots=True)
class Service:
    """One service endpoint of a signing configuration."""

    url: str
    major_api_version: int
    valid_for: TimeRange
    operator: str

    def __post_init__(self) -> None:
        if not self.url:
            raise FormatError("url must not be empty")
        if self.major_api_version < 1:
            raise FormatError("majorApiVersion must be at least 1")
        if not self.operator:
            raise FormatError("operator must not be empty")

    @classmethod
    def from_dict(cls, data: Any, path: str = "service") -> Service:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        url = r.string("url", required=True)
        version = r.int32("majorApiVersion", required=True)
        valid_for = r.message("validFor", TimeRange.from_dict)
        operator = r.string("operator", required=True)
        r.finish()
        with r.constructing():
            return cls(url=url, major_api_version=version, valid_for=valid_for, operator=operator)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {
            "url": self.url,
            "majorApiVersion": self.major_api_version,
            "validFor": self.valid_for.to_dict(),
            "operator": self.operator,
        }


@dataclass(frozen=True, slots=True)
class ServiceConfiguration:
    """The selection rule for a list of services."""

    selector: ServiceSelector
    count: int = 0

    def __post_init__(self) -> None:
        if self.count < 0:
            raise FormatError("count must not be negative")
        if self.selector is ServiceSelector.EXACT and self.count < 1:
            raise FormatError("selector EXACT needs a count of at least 1")

    @classmethod
    def from_dict(cls, data: Any, path: str = "config") -> ServiceConfiguration:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        selector = r.enum("selector", ServiceSelector)
        count = r.int32("count")
        r.finish()
        with r.constructing():
            return cls(selector=selector, count=count)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact({"selector": enum_value(self.selector), "count": self.count or None})


@dataclass(frozen=True, slots=True)
class SigningConfig:
    """Where signers find the CA, OIDC issuer, logs and TSAs (SigningConfig v0.2)."""

    ca_urls: tuple[Service, ...] = ()
    oidc_urls: tuple[Service, ...] = ()
    rekor_tlog_urls: tuple[Service, ...] = ()
    rekor_tlog_config: ServiceConfiguration | None = None
    tsa_urls: tuple[Service, ...] = ()
    tsa_config: ServiceConfiguration | None = None
    media_type: str = SIGNING_CONFIG_MEDIA_TYPE

    def __post_init__(self) -> None:
        if self.media_type != SIGNING_CONFIG_MEDIA_TYPE:
            raise FormatError(
                f"unsupported signing config media type {self.media_type[:80]!r} "
                f"(expected {SIGNING_CONFIG_MEDIA_TYPE!r})"
            )

    @classmethod
    def from_dict(cls, data: Any, path: str = "") -> SigningConfig:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        media_type = _media_type(r, SIGNING_CONFIG_MEDIA_TYPE, "signing config")
        ca_urls = r.repeated("caUrls", Service.from_dict, max_items=_MAX_ENTRIES)
        oidc_urls = r.repeated("oidcUrls", Service.from_dict, max_items=_MAX_ENTRIES)
        rekor = r.repeated("rekorTlogUrls", Service.from_dict, max_items=_MAX_ENTRIES)
        rekor_config = r.opt_message("rekorTlogConfig", ServiceConfiguration.from_dict)
        tsa_urls = r.repeated("tsaUrls", Service.from_dict, max_items=_MAX_ENTRIES)
        tsa_config = r.opt_message("tsaConfig", ServiceConfiguration.from_dict)
        r.finish()
        with r.constructing():
            return cls(
                ca_urls=ca_urls,
                oidc_urls=oidc_urls,
                rekor_tlog_urls=rekor,
                rekor_tlog_config=rekor_config,
                tsa_urls=tsa_urls,
                tsa_config=tsa_config,
                media_type=media_type,
            )

    @classmethod
    def from_json(cls, data: bytes | str) -> SigningConfig:
        """Parse a signing config from JSON text."""
        return cls.from_dict(_load(data, "signing config"))

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact(
            {
                "mediaType": self.media_type,
                "caUrls": [s.to_dict() for s in self.ca_urls],
                "oidcUrls": [s.to_dict() for s in self.oidc_urls],
                "rekorTlogUrls": [s.to_dict() for s in self.rekor_tlog_urls],
                "rekorTlogConfig": (
                    self.rekor_tlog_config.to_dict() if self.rekor_tlog_config else None
                ),
                "tsaUrls": [s.to_dict() for s in self.tsa_urls],
                "tsaConfig": self.tsa_config.to_dict() if self.tsa_config else None,
            }
        )

    def to_json(self) -> str:
        """Serialise to the indented JSON airseal publishes (stable byte for byte)."""
        return _dumps(self.to_dict())


@dataclass(frozen=True, slots=True)
class ClientTrustConfig:
    """A trusted root and a signing config in one document (what stock clients take)."""

    trusted_root: TrustedRoot
    signing_config: SigningConfig
    media_type: str = CLIENT_TRUST_CONFIG_MEDIA_TYPE

    def __post_init__(self) -> None:
        if self.media_type != CLIENT_TRUST_CONFIG_MEDIA_TYPE:
            raise FormatError(
                f"unsupported client trust config media type {self.media_type[:80]!r} "
                f"(expected {CLIENT_TRUST_CONFIG_MEDIA_TYPE!r})"
            )

    @classmethod
    def from_dict(cls, data: Any, path: str = "") -> ClientTrustConfig:
        """Parse from proto3 JSON (check ``trust-root.parse`` on errors)."""
        try:
            r = Reader(data, path)
            media_type = _media_type(r, CLIENT_TRUST_CONFIG_MEDIA_TYPE, "client trust config")
            trusted_root = r.message("trustedRoot", TrustedRoot.from_dict)
            signing_config = r.message("signingConfig", SigningConfig.from_dict)
            r.finish()
            with r.constructing():
                return cls(
                    trusted_root=trusted_root,
                    signing_config=signing_config,
                    media_type=media_type,
                )
        except FormatError as exc:
            raise FormatError(exc.detail, path=exc.path, check=Check.TRUST_ROOT_PARSE) from None

    @classmethod
    def from_json(cls, data: bytes | str) -> ClientTrustConfig:
        """Parse a client trust config from JSON text."""
        return cls.from_dict(_load(data, "client trust config"))

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {
            "mediaType": self.media_type,
            "trustedRoot": self.trusted_root.to_dict(),
            "signingConfig": self.signing_config.to_dict(),
        }

    def to_json(self) -> str:
        """Serialise to the indented JSON airseal publishes (stable byte for byte)."""
        return _dumps(self.to_dict())


def _media_type(r: Reader, expected: str, what: str) -> str:
    # The media type is checked before anything else so that a document of
    # another kind or version gets this message rather than a field error.
    media_type = r.string("mediaType", required=True)
    if media_type != expected:
        raise FormatError(
            f"unsupported {what} media type {media_type[:80]!r} (expected {expected!r})",
            path=r.sub("mediaType"),
        )
    return media_type


def _load(data: bytes | str, what: str) -> Any:
    if len(data) > MAX_TRUST_DOCUMENT_BYTES:
        raise FormatError(
            f"{what} is larger than {MAX_TRUST_DOCUMENT_BYTES} bytes", check=Check.TRUST_ROOT_PARSE
        )
    try:
        return load_json(data, what=what)
    except FormatError as exc:
        raise FormatError(exc.detail, check=Check.TRUST_ROOT_PARSE) from None
