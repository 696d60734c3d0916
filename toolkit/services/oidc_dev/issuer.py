"""DEVELOPMENT ONLY: the development OIDC issuer's core (keys + claims -> JWT).

Pure apart from key generation: the caller passes the time. The issuer signs
through a :class:`~toolkit.signing.Signer`, so its key may be a throwaway
software key (the default, new at each start), a PEM file or a token key.
Nothing here authenticates anybody: never let a production CA trust it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from toolkit.errors import UsageError
from toolkit.services._jwt import JWK, Algorithm, JWKSet, sign_compact, signer_algorithm
from toolkit.signing import KeyAlgorithm, Signer, SoftwareSigner

__all__ = ["DEV_WARNING", "MAX_LIFETIME", "DevIssuer"]

#: The line printed at start, and the meaning of the development-only labels.
DEV_WARNING: Final = (
    "WARNING: oidc-dev is a DEVELOPMENT-ONLY OIDC issuer: it signs a token for any "
    "identity anyone asks for; never let a production CA trust it"
)
#: Longest token lifetime handed out, seconds.
MAX_LIFETIME: Final = 24 * 3600
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class DevIssuer:
    """A development OIDC issuer: one current signing key, tokens on request.

    Args:
        issuer_url: The ``iss`` of its tokens and the base of its endpoints
            (``http://127.0.0.1:3000``).
        signer: The signing key (default: a fresh ECDSA P-256 software key,
            ES256). Its scheme fixes the algorithm (ES256, ES384, EdDSA,
            RS256 or PS256).
    """

    def __init__(self, issuer_url: str, signer: Signer | None = None) -> None:
        if not issuer_url.startswith(("http://", "https://")):
            raise UsageError(f"issuer URL {issuer_url[:80]!r} is not an http(s) URL")
        self.issuer_url = issuer_url
        self._base = issuer_url.rstrip("/")
        self._keys: dict[str, tuple[Signer, JWK]] = {}
        self._current = ""
        self.rotate(signer if signer is not None else _ephemeral())

    @property
    def kid(self) -> str:
        """The key id of the current signing key (its RFC 7638 thumbprint)."""
        return self._current

    @property
    def algorithm(self) -> Algorithm:
        """The JWS algorithm of the current key."""
        return self._keys[self._current][1].alg or Algorithm.ES256

    @property
    def signer(self) -> Signer:
        """The current signing key."""
        return self._keys[self._current][0]

    def rotate(self, signer: Signer | None = None) -> str:
        """Make ``signer`` (default: a fresh key) the signing key; the old keys stay published.

        Returns:
            The new key's kid.
        """
        signer = signer if signer is not None else _ephemeral()
        jwk = JWK.from_public_key(signer.public_key, alg=signer_algorithm(signer))
        assert jwk.kid is not None
        self._keys[jwk.kid] = (signer, jwk)
        self._current = jwk.kid
        return jwk.kid

    def retire(self, kid: str) -> None:
        """Stop publishing a key that is no longer the current one.

        Raises:
            UsageError: ``kid`` is the current key, or unknown.
        """
        if kid == self._current or kid not in self._keys:
            raise UsageError("only a published, non-current key can be retired")
        del self._keys[kid]

    def token(
        self,
        identity: str,
        *,
        now: datetime,
        lifetime: int = 600,
        audience: str = "sigstore",
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed ID token for ``identity``.

        The claims are ``iss``, ``sub`` (= identity), ``aud``, ``iat``,
        ``nbf`` (= now), ``exp`` (= now + lifetime), ``email`` (= identity)
        and ``email_verified`` (true); the header carries ``kid``. ``claims``
        are merged last: they may add claims or override these (tests make
        hostile tokens that way); a value of ``None`` removes the claim.

        Raises:
            UsageError: An empty identity or one with control characters, a
                lifetime outside 1 s to 24 h, an empty audience, claims that
                are not JSON values.
        """
        if not isinstance(identity, str) or not identity or len(identity) > 1024:
            raise UsageError("identity must be a non-empty string of at most 1024 characters")
        if _CONTROL_RE.search(identity):
            raise UsageError("identity must not contain control characters")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int):
            raise UsageError("lifetime must be an integer number of seconds")
        if not 1 <= lifetime <= MAX_LIFETIME:
            raise UsageError(f"lifetime must be 1 to {MAX_LIFETIME} seconds")
        if not isinstance(audience, str) or not audience:
            raise UsageError("audience must be a non-empty string")
        if now.tzinfo is None:
            raise UsageError("DevIssuer.token needs an aware datetime")
        issued = int(now.timestamp())
        payload: dict[str, Any] = {
            "iss": self.issuer_url,
            "sub": identity,
            "aud": audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
            "email": identity,
            "email_verified": True,
        }
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        signer, _ = self._keys[self._current]
        return sign_compact(payload, signer, kid=self._current)

    def discovery(self) -> dict[str, Any]:
        """The OIDC discovery document (``/.well-known/openid-configuration``)."""
        return {
            "issuer": self.issuer_url,
            "jwks_uri": f"{self._base}/jwks",
            "token_endpoint": f"{self._base}/token",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted(
                {jwk.alg.value for _, jwk in self._keys.values() if jwk.alg is not None}
            ),
            "claims_supported": ["iss", "sub", "aud", "iat", "nbf", "exp", "email"],
            "grant_types_supported": ["urn:airseal:params:grant-type:development"],
            "airseal_development_only": True,
            "airseal_warning": DEV_WARNING,
        }

    def jwks(self) -> dict[str, Any]:
        """The JWK Set (``/jwks``): every published key, current one first."""
        ordered = [self._keys[self._current][1]] + [
            jwk for kid, (_, jwk) in self._keys.items() if kid != self._current
        ]
        return JWKSet(tuple(ordered)).to_dict()


def _ephemeral() -> Signer:
    return SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
