r"""What a caller expects of a bundle: an identity, or a managed key.

Policies are plain values; the verifier applies them. Identity matching is
exact string equality, or a regular expression that must match the *whole*
SAN (``re.fullmatch``), so ``.*@example\\.com`` cannot be satisfied by
``mallory@example.com.evil``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from toolkit.errors import Check, UsageError, VerificationError
from toolkit.verify import _x509

__all__ = ["IdentityPolicy", "KeyPolicy", "Policy"]


@dataclass(frozen=True)
class IdentityPolicy:
    """Accept a Fulcio certificate for one identity from one OIDC issuer.

    Args:
        issuer: The exact OIDC issuer URL.
        identity: The exact SAN (e-mail, URI or Sigstore otherName).
        identity_regex: A regular expression the whole SAN must match.
        extensions: Extra Fulcio extensions (dotted OID to exact text) to require,
            e.g. ``{"1.3.6.1.4.1.57264.1.12": "https://github.com/org/repo"}``.

    Raises:
        UsageError: Neither or both of ``identity`` and ``identity_regex``, an
            empty issuer, or a regular expression that does not compile.
    """

    issuer: str
    identity: str | None = None
    identity_regex: str | None = None
    extensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.issuer:
            raise UsageError("an identity policy needs the expected OIDC issuer")
        if (self.identity is None) == (self.identity_regex is None):
            raise UsageError("give exactly one of an identity or an identity regular expression")
        if self.identity is not None and not self.identity:
            raise UsageError("the expected identity must not be empty")
        if self.identity_regex is not None:
            try:
                re.compile(self.identity_regex)
            except re.error as exc:
                raise UsageError(f"invalid identity regular expression: {exc}") from None
        for oid in self.extensions:
            try:
                x509.ObjectIdentifier(oid)
            except ValueError:
                raise UsageError(f"{oid!r} is not a dotted object identifier") from None

    @property
    def description(self) -> str:
        """A short human description of the expected identity."""
        if self.identity is not None:
            return self.identity
        return f"/{self.identity_regex}/"

    def check(self, cert: x509.Certificate) -> tuple[str, str]:
        """Check the certificate against the policy.

        Returns:
            The matching SAN and the certificate's issuer.

        Raises:
            VerificationError: ``identity.san``, ``identity.issuer`` or
                ``identity.extension``.
        """
        sans = _x509.san_values(cert)
        matched: str | None = None
        if self.identity is not None:
            matched = self.identity if self.identity in sans else None
        else:
            assert self.identity_regex is not None
            pattern = re.compile(self.identity_regex)
            matched = next((s for s in sans if pattern.fullmatch(s)), None)
        if matched is None:
            shown = ", ".join(sans) if sans else "none"
            raise VerificationError(
                Check.IDENTITY_SAN,
                f"certificate identity does not match {self.description} "
                f"(certificate has: {shown})",
            )
        issuer = _x509.oidc_issuer(cert)
        if issuer != self.issuer:
            raise VerificationError(
                Check.IDENTITY_ISSUER,
                f"certificate issuer {issuer!r} is not the expected {self.issuer!r}",
            )
        for oid, expected in self.extensions.items():
            actual = _x509.extension_text(cert, x509.ObjectIdentifier(oid))
            if actual != expected:
                raise VerificationError(
                    Check.IDENTITY_EXTENSION,
                    f"certificate extension {oid} is {actual!r}, expected {expected!r}",
                )
        return matched, issuer


@dataclass(frozen=True)
class KeyPolicy:
    """Accept a managed-key bundle signed by this public key."""

    public_key: PublicKeyTypes


Policy = IdentityPolicy | KeyPolicy
