"""Wire objects: one frozen dataclass per Sigstore message, strict proto3 JSON.

Every model validates itself at construction, parses with ``from_dict`` (and
``from_json`` for documents) and serialises with ``to_dict``. Unknown fields,
unknown enum names and unknown media types are rejected.
"""

from toolkit.models.bundle import (
    Bundle,
    BundleMediaType,
    TimestampVerificationData,
    VerificationMaterial,
)
from toolkit.models.common import (
    DistinguishedName,
    HashAlgorithm,
    HashOutput,
    LogId,
    MessageSignature,
    PublicKey,
    PublicKeyDetails,
    PublicKeyIdentifier,
    RFC3161SignedTimestamp,
    TimeRange,
    X509Certificate,
    X509CertificateChain,
)
from toolkit.models.dsse import Envelope, Signature, pae
from toolkit.models.rekor import (
    Checkpoint,
    InclusionPromise,
    InclusionProof,
    KindVersion,
    TransparencyLogEntry,
)
from toolkit.models.trustroot import (
    CertificateAuthority,
    ClientTrustConfig,
    Service,
    ServiceConfiguration,
    ServiceSelector,
    SigningConfig,
    TransparencyLogInstance,
    TrustedRoot,
)

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
