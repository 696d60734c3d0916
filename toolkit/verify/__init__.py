"""Offline, I/O-free verification of Sigstore bundles.

Typical use::

    verifier = Verifier(TrustedRoot.from_json(root_bytes))
    result = verifier.verify(
        bundle_bytes,
        Artifact.from_bytes(data),
        IdentityPolicy(identity="dev@example.com", issuer="https://issuer.example"),
        now=datetime.now(UTC),
    )

Every failure raises :class:`~toolkit.errors.VerificationError` whose ``check``
names the step that failed (see ``docs/formats/bundle.md``).
"""

from toolkit.errors import Check, VerificationError
from toolkit.verify.artifact import Artifact
from toolkit.verify.policy import IdentityPolicy, KeyPolicy, Policy
from toolkit.verify.verifier import VerificationResult, VerifiedTime, Verifier

__all__ = [
    "Artifact",
    "Check",
    "IdentityPolicy",
    "KeyPolicy",
    "Policy",
    "VerificationError",
    "VerificationResult",
    "VerifiedTime",
    "Verifier",
]
