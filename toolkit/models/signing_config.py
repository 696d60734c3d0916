"""Signing configuration and client trust config (``dev.sigstore.trustroot.v1``).

Kept apart from :mod:`toolkit.models.trustroot` so that verification, which
needs only the trusted root, does not load them.
"""

from __future__ import annotations

import enum
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
from toolkit.models.common import TimeRange
from toolkit.models.trustroot import MAX_ENTRIES, TrustedRoot

__all__ = [
    "CLIENT_TRUST_CONFIG_MEDIA_TYPE",
    "SIGNING_CONFIG_MEDIA_TYPE",
    "ClientTrustConfig",
    "Service",
    "ServiceConfiguration",
    "ServiceSelector",
    "SigningConfig",
]

SIGNING_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"


class ServiceSelector(enum.StrEnum):
    """How many of the listed services a signer must use."""

    ALL = "ALL"
    ANY = "ANY"
    EXACT = "EXACT"


@dataclass(frozen=True)
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
        return r.build(
            cls, url=url, major_api_version=version, valid_for=valid_for, operator=operator
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {
            "url": self.url,
            "majorApiVersion": self.major_api_version,
            "validFor": self.valid_for.to_dict(),
            "operator": self.operator,
        }


@dataclass(frozen=True)
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
        return r.build(cls, selector=selector, count=count)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact({"selector": enum_value(self.selector), "count": self.count or None})


@dataclass(frozen=True)
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
        media_type = read_media_type(r, SIGNING_CONFIG_MEDIA_TYPE, "signing config")
        ca_urls = r.repeated("caUrls", Service.from_dict, max_items=MAX_ENTRIES)
        oidc_urls = r.repeated("oidcUrls", Service.from_dict, max_items=MAX_ENTRIES)
        rekor = r.repeated("rekorTlogUrls", Service.from_dict, max_items=MAX_ENTRIES)
        rekor_config = r.opt_message("rekorTlogConfig", ServiceConfiguration.from_dict)
        tsa_urls = r.repeated("tsaUrls", Service.from_dict, max_items=MAX_ENTRIES)
        tsa_config = r.opt_message("tsaConfig", ServiceConfiguration.from_dict)
        return r.build(
            cls,
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
        return cls.from_dict(load_document(data, "signing config"))

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
        return dump_document(self.to_dict())


@dataclass(frozen=True)
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
    @tag_errors(Check.TRUST_ROOT_PARSE)
    def from_dict(cls, data: Any, path: str = "") -> ClientTrustConfig:
        """Parse from proto3 JSON (check ``trust-root.parse`` on errors)."""
        r = Reader(data, path)
        media_type = read_media_type(r, CLIENT_TRUST_CONFIG_MEDIA_TYPE, "client trust config")
        trusted_root = r.message("trustedRoot", TrustedRoot.from_dict)
        signing_config = r.message("signingConfig", SigningConfig.from_dict)
        return r.build(
            cls,
            trusted_root=trusted_root,
            signing_config=signing_config,
            media_type=media_type,
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> ClientTrustConfig:
        """Parse a client trust config from JSON text."""
        return cls.from_dict(load_document(data, "client trust config"))

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {
            "mediaType": self.media_type,
            "trustedRoot": self.trusted_root.to_dict(),
            "signingConfig": self.signing_config.to_dict(),
        }

    def to_json(self) -> str:
        """Serialise to the indented JSON airseal publishes (stable byte for byte)."""
        return dump_document(self.to_dict())
