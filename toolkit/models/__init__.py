"""Wire objects: one frozen dataclass per Sigstore message, strict proto3 JSON.

Every model validates itself at construction, parses with ``from_dict`` (and
``from_json`` for documents) and serialises with ``to_dict``. Unknown fields,
unknown enum names and unknown media types are rejected.

The names below are loaded on first use, so that importing one model (as the
verifier does) does not import them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolkit.models.bundle import (
        Bundle as Bundle,
    )
    from toolkit.models.bundle import (
        BundleMediaType as BundleMediaType,
    )
    from toolkit.models.bundle import (
        TimestampVerificationData as TimestampVerificationData,
    )
    from toolkit.models.bundle import (
        VerificationMaterial as VerificationMaterial,
    )
    from toolkit.models.common import (
        DistinguishedName as DistinguishedName,
    )
    from toolkit.models.common import (
        HashAlgorithm as HashAlgorithm,
    )
    from toolkit.models.common import (
        HashOutput as HashOutput,
    )
    from toolkit.models.common import (
        LogId as LogId,
    )
    from toolkit.models.common import (
        MessageSignature as MessageSignature,
    )
    from toolkit.models.common import (
        PublicKey as PublicKey,
    )
    from toolkit.models.common import (
        PublicKeyDetails as PublicKeyDetails,
    )
    from toolkit.models.common import (
        PublicKeyIdentifier as PublicKeyIdentifier,
    )
    from toolkit.models.common import (
        RFC3161SignedTimestamp as RFC3161SignedTimestamp,
    )
    from toolkit.models.common import (
        TimeRange as TimeRange,
    )
    from toolkit.models.common import (
        X509Certificate as X509Certificate,
    )
    from toolkit.models.common import (
        X509CertificateChain as X509CertificateChain,
    )
    from toolkit.models.dsse import Envelope as Envelope
    from toolkit.models.dsse import Signature as Signature
    from toolkit.models.dsse import pae as pae
    from toolkit.models.rekor import (
        Checkpoint as Checkpoint,
    )
    from toolkit.models.rekor import (
        InclusionPromise as InclusionPromise,
    )
    from toolkit.models.rekor import (
        InclusionProof as InclusionProof,
    )
    from toolkit.models.rekor import (
        KindVersion as KindVersion,
    )
    from toolkit.models.rekor import (
        TransparencyLogEntry as TransparencyLogEntry,
    )
    from toolkit.models.signing_config import (
        ClientTrustConfig as ClientTrustConfig,
    )
    from toolkit.models.signing_config import (
        Service as Service,
    )
    from toolkit.models.signing_config import (
        ServiceConfiguration as ServiceConfiguration,
    )
    from toolkit.models.signing_config import (
        ServiceSelector as ServiceSelector,
    )
    from toolkit.models.signing_config import (
        SigningConfig as SigningConfig,
    )
    from toolkit.models.trustroot import (
        CertificateAuthority as CertificateAuthority,
    )
    from toolkit.models.trustroot import (
        TransparencyLogInstance as TransparencyLogInstance,
    )
    from toolkit.models.trustroot import (
        TrustedRoot as TrustedRoot,
    )

_HOMES = {
    "bundle": [
        "Bundle",
        "BundleMediaType",
        "TimestampVerificationData",
        "VerificationMaterial",
    ],
    "common": [
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
    ],
    "dsse": ["Envelope", "Signature", "pae"],
    "rekor": [
        "Checkpoint",
        "InclusionPromise",
        "InclusionProof",
        "KindVersion",
        "TransparencyLogEntry",
    ],
    "signing_config": [
        "ClientTrustConfig",
        "Service",
        "ServiceConfiguration",
        "ServiceSelector",
        "SigningConfig",
    ],
    "trustroot": ["CertificateAuthority", "TransparencyLogInstance", "TrustedRoot"],
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "Bundle",
    "BundleMediaType",
    "CertificateAuthority",
    "Checkpoint",
    "ClientTrustConfig",
    "DistinguishedName",
    "Envelope",
    "HashAlgorithm",
    "HashOutput",
    "InclusionPromise",
    "InclusionProof",
    "KindVersion",
    "LogId",
    "MessageSignature",
    "PublicKey",
    "PublicKeyDetails",
    "PublicKeyIdentifier",
    "RFC3161SignedTimestamp",
    "Service",
    "ServiceConfiguration",
    "ServiceSelector",
    "Signature",
    "SigningConfig",
    "TimeRange",
    "TimestampVerificationData",
    "TransparencyLogEntry",
    "TransparencyLogInstance",
    "TrustedRoot",
    "VerificationMaterial",
    "X509Certificate",
    "X509CertificateChain",
    "pae",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
