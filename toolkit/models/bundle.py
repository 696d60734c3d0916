"""The Sigstore bundle (``dev.sigstore.bundle.v1``) in proto3 JSON."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from toolkit.encoding import load_json
from toolkit.errors import Check, FormatError
from toolkit.models._base import Reader, compact, tag_errors
from toolkit.models.common import (
    MessageSignature,
    PublicKeyIdentifier,
    RFC3161SignedTimestamp,
    X509Certificate,
    X509CertificateChain,
)
from toolkit.models.dsse import Envelope
from toolkit.models.rekor import TransparencyLogEntry

__all__ = [
    "MAX_BUNDLE_BYTES",
    "Bundle",
    "BundleMediaType",
    "TimestampVerificationData",
    "VerificationMaterial",
]

#: Bundles larger than this are refused before parsing (real ones are < 100 KiB).
MAX_BUNDLE_BYTES = 16 << 20
#: Upper bound on tlog entries accepted by the parser (verification wants exactly one).
MAX_TLOG_ENTRIES = 16
#: Upper bound on RFC 3161 timestamps accepted by the parser; the verifier allows 32.
MAX_TIMESTAMPS = 64


class BundleMediaType(enum.StrEnum):
    """The bundle media types airseal understands."""

    V0_1 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
    V0_2 = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    V0_3_ALT = "application/vnd.dev.sigstore.bundle+json;version=0.3"
    V0_3 = "application/vnd.dev.sigstore.bundle.v0.3+json"

    @property
    def version(self) -> tuple[int, int]:
        """The bundle format version as (major, minor)."""
        return {
            "application/vnd.dev.sigstore.bundle+json;version=0.1": (0, 1),
            "application/vnd.dev.sigstore.bundle+json;version=0.2": (0, 2),
        }.get(self.value, (0, 3))


@dataclass(frozen=True)
class TimestampVerificationData:
    """RFC 3161 timestamps over the bundle's signature."""

    rfc3161_timestamps: tuple[RFC3161SignedTimestamp, ...] = ()

    @classmethod
    def from_dict(
        cls, data: Any, path: str = "verificationMaterial.timestampVerificationData"
    ) -> TimestampVerificationData:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        stamps = r.repeated(
            "rfc3161Timestamps", RFC3161SignedTimestamp.from_dict, max_items=MAX_TIMESTAMPS
        )
        r.finish()
        return cls(rfc3161_timestamps=stamps)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        # proto3 JSON leaves empty repeated fields out.
        if not self.rfc3161_timestamps:
            return {}
        return {"rfc3161Timestamps": [t.to_dict() for t in self.rfc3161_timestamps]}


@dataclass(frozen=True)
class VerificationMaterial:
    """The key material, log entries and timestamps of a bundle.

    Exactly one of ``public_key``, ``x509_certificate_chain`` and ``certificate``
    is set (a proto ``oneof``).
    """

    tlog_entries: tuple[TransparencyLogEntry, ...] = ()
    public_key: PublicKeyIdentifier | None = None
    x509_certificate_chain: X509CertificateChain | None = None
    certificate: X509Certificate | None = None
    timestamp_verification_data: TimestampVerificationData | None = None

    def __post_init__(self) -> None:
        chosen = [
            name
            for name, value in (
                ("publicKey", self.public_key),
                ("x509CertificateChain", self.x509_certificate_chain),
                ("certificate", self.certificate),
            )
            if value is not None
        ]
        if len(chosen) != 1:
            raise FormatError(
                "exactly one of publicKey, x509CertificateChain or certificate must be set"
                + (f" (found {', '.join(chosen)})" if chosen else "")
            )

    @property
    def timestamps(self) -> tuple[RFC3161SignedTimestamp, ...]:
        """The RFC 3161 timestamps, or an empty tuple."""
        tvd = self.timestamp_verification_data
        return tvd.rfc3161_timestamps if tvd is not None else ()

    @classmethod
    def from_dict(cls, data: Any, path: str = "verificationMaterial") -> VerificationMaterial:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        public_key = r.opt_message("publicKey", PublicKeyIdentifier.from_dict)
        chain = r.opt_message("x509CertificateChain", X509CertificateChain.from_dict)
        certificate = r.opt_message("certificate", X509Certificate.from_dict)
        entries = r.repeated(
            "tlogEntries", TransparencyLogEntry.from_dict, max_items=MAX_TLOG_ENTRIES
        )
        tvd = r.opt_message("timestampVerificationData", TimestampVerificationData.from_dict)
        return r.build(
            cls,
            tlog_entries=entries,
            public_key=public_key,
            x509_certificate_chain=chain,
            certificate=certificate,
            timestamp_verification_data=tvd,
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact(
            {
                "publicKey": self.public_key.to_dict() if self.public_key else None,
                "x509CertificateChain": (
                    self.x509_certificate_chain.to_dict() if self.x509_certificate_chain else None
                ),
                "certificate": self.certificate.to_dict() if self.certificate else None,
                "tlogEntries": [e.to_dict() for e in self.tlog_entries],
                "timestampVerificationData": (
                    self.timestamp_verification_data.to_dict()
                    if self.timestamp_verification_data is not None
                    else None
                ),
            }
        )


@dataclass(frozen=True)
class Bundle:
    """A Sigstore bundle: one signature (or DSSE envelope) and what proves it.

    Exactly one of ``message_signature`` and ``dsse_envelope`` is set. Parsing
    checks the format only; the client-side rules (one log entry, checkpoints,
    the v0.3 single certificate) are verification steps.
    """

    media_type: BundleMediaType
    verification_material: VerificationMaterial
    message_signature: MessageSignature | None = None
    dsse_envelope: Envelope | None = None

    def __post_init__(self) -> None:
        if (self.message_signature is None) == (self.dsse_envelope is None):
            raise FormatError("exactly one of messageSignature or dsseEnvelope must be set")

    @property
    def signature(self) -> bytes:
        """The signature bytes (the first DSSE signature for envelopes)."""
        if self.message_signature is not None:
            return self.message_signature.signature
        assert self.dsse_envelope is not None
        return self.dsse_envelope.signatures[0].sig

    @classmethod
    @tag_errors(Check.BUNDLE_PARSE)
    def from_dict(cls, data: Any) -> Bundle:
        """Parse a decoded JSON bundle.

        Raises:
            FormatError: with ``check`` ``bundle.media-type`` for an unknown media
                type and ``bundle.parse`` for any other malformation.
        """
        r = Reader(data, "")
        raw_media_type = r.string("mediaType", required=True)
        try:
            media_type = BundleMediaType(raw_media_type)
        except ValueError:
            raise FormatError(
                f"unsupported bundle media type {raw_media_type[:80]!r}",
                check=Check.BUNDLE_MEDIA_TYPE,
            ) from None
        material = r.message("verificationMaterial", VerificationMaterial.from_dict)
        message_signature = r.opt_message("messageSignature", MessageSignature.from_dict)
        envelope = r.opt_message("dsseEnvelope", Envelope.from_dict)
        r.finish()
        return cls(
            media_type=media_type,
            verification_material=material,
            message_signature=message_signature,
            dsse_envelope=envelope,
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Bundle:
        """Parse a bundle from JSON text.

        Raises:
            FormatError: see :meth:`from_dict`.
        """
        if len(data) > MAX_BUNDLE_BYTES:
            raise FormatError(
                f"bundle is larger than {MAX_BUNDLE_BYTES} bytes", check=Check.BUNDLE_PARSE
            )
        try:
            value = load_json(data, what="bundle")
        except FormatError as exc:
            raise FormatError(exc.detail, check=Check.BUNDLE_PARSE) from None
        return cls.from_dict(value)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact(
            {
                "mediaType": self.media_type.value,
                "verificationMaterial": self.verification_material.to_dict(),
                "messageSignature": (
                    self.message_signature.to_dict() if self.message_signature else None
                ),
                "dsseEnvelope": self.dsse_envelope.to_dict() if self.dsse_envelope else None,
            }
        )

    def to_json(self) -> str:
        """Serialise to the compact JSON airseal emits (stable byte for byte)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)
