"""OIDC identity tokens for the CA: configured issuers, JWKS cache, identity mapping.

The CA's ``signingCert`` endpoint hands the caller's ID token to
:meth:`TokenVerifier.verify`, which returns the :class:`Principal` the
certificate is issued to, or raises :class:`TokenError` (a problem document).

Verification, in order:

1. **Shape** -- a compact JWS of at most ``max_token_bytes`` with an accepted
   asymmetric algorithm and no key-bearing headers (:mod:`toolkit.services._jwt`).
2. **Issuer** -- the *unverified* ``iss`` only selects the configured issuer:
   an exact URL, or a meta-issuer pattern whose ``*`` stands for one DNS label
   or path segment (``[A-Za-z0-9_-]+``, as Fulcio's meta issuers: no ``.``,
   no ``/``, so ``https://evil.com/x.example.com`` never matches
   ``https://*.example.com``). Unknown issuers are refused before any fetch.
3. **Keys** -- ``<iss>/.well-known/openid-configuration`` (its ``issuer`` must
   equal ``iss``) names the ``jwks_uri``; the JWK Set is cached per issuer for
   ``jwks_ttl`` seconds. A kid the cache lacks triggers one refetch, at most
   once per ``refetch_interval`` seconds per issuer, so hostile tokens with
   random kids cannot make the CA hammer an issuer. Fetches are size-capped
   and time-bounded; an issuer that cannot be reached is a 503
   ``issuer-unavailable`` (retried at most once per ``refetch_interval``),
   and a cached key set stays in use while a refresh fails. A global budget
   (``max_fetches_per_minute``) bounds the fetches of all issuers together,
   so tokens naming many concrete issuers of a meta pattern cannot turn the
   CA into a traffic amplifier either; at most ``max_issuers`` are cached.
4. **Signature** -- with a key whose type and ``alg`` fit the header's ``alg``.
5. **Claims** -- ``aud`` (string or list) contains the issuer's
   ``client_id``; ``exp`` required, ``nbf`` and ``iat`` checked, all against
   the ``now`` parameter with ``skew`` seconds of tolerance.
6. **Identity** -- per issuer type (below).

Identity mapping (``Principal``):

============== ========================= ===================== ==================
type           SAN                       challenge             extra claims
============== ========================= ===================== ==================
email          rfc822 ``email``          ``email``             ``email_verified``
                                                               must be true
uri            URI ``sub`` (same scheme, ``sub``
               host, path under
               ``subject_domain``)
github-workflow URI ``https://github.com/`` ``sub``            see below
               + ``job_workflow_ref``
spiffe         URI ``sub`` =             ``sub``
               ``spiffe://<trust
               domain>/<path>``
username       otherName .1.7            ``sub``
               ``sub!subject_domain``
============== ========================= ===================== ==================

GitHub Actions tokens (``github-workflow``) map to Fulcio's extensions like
Fulcio's github principal (every claim below is required, a non-empty string;
``B`` = ``https://github.com/``):

======== ====================================== ==========================================
OID .1.x extension                              value
======== ====================================== ==========================================
.1.9     Build Signer URI                       B + ``job_workflow_ref``
.1.10    Build Signer Digest                    ``job_workflow_sha``
.1.11    Runner Environment                     ``runner_environment``
.1.12    Source Repository URI                  B + ``repository``
.1.13    Source Repository Digest               ``sha``
.1.14    Source Repository Ref                  ``ref``
.1.15    Source Repository Identifier           ``repository_id``
.1.16    Source Repository Owner URI            B + ``repository_owner``
.1.17    Source Repository Owner Identifier     ``repository_owner_id``
.1.18    Build Config URI                       B + ``workflow_ref``
.1.19    Build Config Digest                    ``workflow_sha``
.1.20    Build Trigger                          ``event_name``
.1.21    Run Invocation URI                     B + ``repository`` + ``/actions/runs/``
                                                + ``run_id`` + ``/attempts/`` + ``run_attempt``
.1.22    Source Repository Visibility At Signing ``repository_visibility``
======== ====================================== ==========================================

These go in :attr:`Principal.extensions` (DER UTF8String values). The CA
writes .1.1 and .1.8 (the issuer) itself. The deprecated .1.2-.1.6 (trigger,
sha, workflow name, repository, ref; raw string bytes in Fulcio) are in
:attr:`Principal.legacy_extensions` for a CA that wants them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import SplitResult, urlsplit

from toolkit.encoding import load_json
from toolkit.errors import FormatError, UsageError
from toolkit.services._http import ProblemError
from toolkit.services._jwt import (
    DEFAULT_MAX_TOKEN_BYTES,
    JWKSet,
    JWSError,
    parse_compact,
    verify_parsed,
)

if TYPE_CHECKING:
    import httpx

    from toolkit.services.config import Table

__all__ = [
    "DEFAULT_CLIENT_ID",
    "GITHUB_BASE_URL",
    "IssuerConfig",
    "IssuerType",
    "Principal",
    "TokenError",
    "TokenVerifier",
    "USERNAME_SEPARATOR",
    "check_audience",
    "check_times",
    "map_identity",
]

DEFAULT_CLIENT_ID: Final = "sigstore"
GITHUB_BASE_URL: Final = "https://github.com/"
#: Largest discovery document / JWK Set read from an issuer.
MAX_DISCOVERY_BYTES: Final = 64 * 1024
MAX_JWKS_BYTES: Final = 256 * 1024
_FULCIO: Final = "1.3.6.1.4.1.57264.1."
#: Joins a username issuer's ``sub`` and ``subject_domain`` in the otherName
#: SAN (``alice!example.com``), as Fulcio does: ``!`` keeps the identity from
#: reading as an email address that the domain's mail system never vouched for.
USERNAME_SEPARATOR: Final = "!"
# Largest NumericDate accepted (year 9999 is 253402300799).
_MAX_NUMERIC_DATE: Final = 2**53
# What `*` of a meta-issuer pattern matches: one DNS label or path segment.
_WILDCARD: Final = "[A-Za-z0-9_-]+"
_LABEL_RE: Final = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACE_RE: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_EMAIL_RE: Final = re.compile(
    r"\A[^@\s<>()\[\],;:\"\\\x00-\x1f\x7f]{1,64}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z"
)
_SPIFFE_SEGMENT_RE: Final = re.compile(r"\A[A-Za-z0-9._-]+\Z")
_TRUST_DOMAIN_RE: Final = re.compile(r"\A[a-z0-9._-]{1,255}\Z")
_USERNAME_RE: Final = re.compile(r"\A[^@!\s\x00-\x1f\x7f-\x9f]{1,255}\Z")

_log = logging.getLogger("airseal.ca.oidc")


class IssuerType(StrEnum):
    """How an issuer's tokens map to a certificate identity."""

    EMAIL = "email"
    URI = "uri"
    GITHUB_WORKFLOW = "github-workflow"
    SPIFFE = "spiffe"
    USERNAME = "username"


# -- errors ------------------------------------------------------------------

_TITLES: Final = {
    "invalid-token": "The identity token is malformed",
    "token-too-large": "The identity token is too large",
    "token-signature": "The identity token's signature does not verify",
    "unknown-key": "The identity token names an unknown key",
    "untrusted-issuer": "The identity token's issuer is not trusted",
    "token-expired": "The identity token has expired",
    "token-not-yet-valid": "The identity token is not yet valid",
    "token-audience": "The identity token is for another audience",
    "email-not-verified": "The identity token's email is not verified",
    "identity-claim": "The identity token lacks a usable identity",
    "issuer-unavailable": "The identity token's issuer cannot be reached",
}


class TokenError(ProblemError):
    """An identity token the CA refuses, as a problem document.

    Args:
        slug: One of ``invalid-token``, ``token-too-large``,
            ``token-signature``, ``unknown-key``, ``untrusted-issuer``,
            ``token-expired``, ``token-not-yet-valid``, ``token-audience``,
            ``email-not-verified``, ``identity-claim`` (401), or
            ``issuer-unavailable`` (503, with ``Retry-After``).
        detail: One line; names claims, never quotes the token.
        status: The HTTP status (default: 503 for ``issuer-unavailable``,
            401 otherwise).
    """

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if status is None:
            status = 503 if slug == "issuer-unavailable" else 401
        if status == 503 and headers is None:
            headers = {"Retry-After": "10"}
        super().__init__(
            status,
            slug,
            _TITLES.get(slug, "The identity token is refused"),
            detail,
            headers=headers,
        )


# -- issuer configuration ----------------------------------------------------


def _host_is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(value: str, what: str, *, wildcard: bool = False) -> SplitResult:
    """An issuer-style URL: https (http for loopback hosts), no userinfo/query/fragment."""
    if _SPACE_RE.search(value):
        raise FormatError(f"{what} must not contain whitespace or control characters")
    try:
        parts = urlsplit(value.replace("*", "wildcard") if wildcard else value)
        port = parts.port
    except ValueError:
        raise FormatError(f"{what} is not a URL") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise FormatError(f"{what} must be an https:// URL")
    if parts.scheme == "http" and not _host_is_loopback(host):
        raise FormatError(f"{what} may use http:// only for a loopback host")
    if parts.username is not None or parts.password is not None:
        raise FormatError(f"{what} must not carry user information")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise FormatError(f"{what} must not have a query or fragment")
    del port
    return parts


@dataclass(frozen=True)
class IssuerConfig:
    """One trusted OIDC issuer (a ``[[ca.issuers]]`` entry).

    Attributes:
        url: The exact issuer URL (compared with ``iss`` as a string), or a
            meta-issuer pattern with ``*`` when ``meta`` is true. https, or
            http for a loopback host (the development issuer).
        type: How tokens map to an identity.
        client_id: The audience tokens must carry.
        subject_domain: ``uri``: the URL prefix ``sub`` must be under
            (``https://ci.example.com``); ``username``: the domain appended
            to ``sub`` (``example.com``).
        spiffe_trust_domain: ``spiffe``: the trust domain of ``sub``.
        meta: ``url`` is a pattern: each ``*`` matches one DNS label or path
            segment (``[A-Za-z0-9_-]+``). The two last labels of the host
            must be literal (``https://*.com`` is refused).

    Raises:
        FormatError: An invalid combination (the message names the field).
    """

    url: str
    type: IssuerType
    client_id: str = DEFAULT_CLIENT_ID
    subject_domain: str | None = None
    spiffe_trust_domain: str | None = None
    meta: bool = False
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", IssuerType(self.type))
        if not isinstance(self.url, str) or not self.url:
            raise FormatError("must be a non-empty string", path="url")
        if not isinstance(self.client_id, str) or not self.client_id:
            raise FormatError("must be a non-empty string", path="client_id")
        if self.meta:
            if "*" not in self.url:
                raise FormatError("a meta issuer pattern needs at least one '*'", path="url")
            _wrap(lambda: _check_url(self.url, "issuer pattern", wildcard=True), "url")
            if "*" in self.url.partition("://")[0]:
                raise FormatError("'*' may not stand in the scheme", path="url")
            host, _, path = self.url.partition("://")[2].partition("/")
            labels = host.split(".")
            if len(labels) < 3 or any("*" in label for label in labels[-2:]):
                raise FormatError(
                    "the last two labels of a meta issuer's host must be literal", path="url"
                )
            for label in labels:
                if "*" in label and label != "*":
                    raise FormatError("'*' must stand for a whole label", path="url")
            for segment in path.split("/"):
                if "*" in segment and segment != "*":
                    raise FormatError("'*' must stand for a whole path segment", path="url")
            pattern = re.escape(self.url).replace(r"\*", _WILDCARD)
            object.__setattr__(self, "_pattern", re.compile(pattern))
        else:
            if "*" in self.url:
                raise FormatError(
                    "contains '*' but is not a meta issuer",
                    path="url",
                )
            _wrap(lambda: _check_url(self.url, "issuer URL"), "url")
        kind = self.type
        if kind is IssuerType.URI:
            if self.subject_domain is None:
                raise FormatError("required for uri issuers", path="subject_domain")
            _wrap(lambda: _check_url(self.subject_domain or "", "subject_domain"), "subject_domain")
        elif kind is IssuerType.USERNAME:
            if self.subject_domain is None:
                raise FormatError("required for username issuers", path="subject_domain")
            labels = self.subject_domain.split(".")
            if len(self.subject_domain) > 253 or not all(_LABEL_RE.match(x) for x in labels):
                raise FormatError("must be a DNS domain like example.com", path="subject_domain")
        elif self.subject_domain is not None:
            raise FormatError(f"not used by {kind.value} issuers", path="subject_domain")
        if kind is IssuerType.SPIFFE:
            domain = self.spiffe_trust_domain
            if domain is None:
                raise FormatError("required for spiffe issuers", path="spiffe_trust_domain")
            if not _TRUST_DOMAIN_RE.match(domain):
                raise FormatError(
                    "must be a lower-case SPIFFE trust domain", path="spiffe_trust_domain"
                )
        elif self.spiffe_trust_domain is not None:
            raise FormatError(f"not used by {kind.value} issuers", path="spiffe_trust_domain")

    @classmethod
    def from_table(cls, table: Table) -> IssuerConfig:
        """Read one ``[[ca.issuers]]`` table strictly.

        Keys: ``url``, ``type`` (required); ``client_id``, ``subject_domain``,
        ``spiffe_trust_domain``, ``meta`` (optional).

        Raises:
            FormatError: A missing, mistyped, unknown or invalid key (naming
                the file and ``ca.issuers[N].key``).
        """
        url = table.text("url")
        type_name = table.text("type")
        client_id = table.text("client_id", DEFAULT_CLIENT_ID)
        subject_domain = table.text("subject_domain", None)
        trust_domain = table.text("spiffe_trust_domain", None)
        meta = table.flag("meta", False)
        table.done()
        try:
            kind = IssuerType(type_name)
        except ValueError:
            raise table.error(
                "type",
                f"unknown issuer type {type_name[:40]!r}",
                hint="one of " + ", ".join(t.value for t in IssuerType),
            ) from None
        try:
            return cls(url, kind, client_id, subject_domain, trust_domain, meta)
        except FormatError as exc:
            hint = "set meta = true for a pattern" if "meta" in exc.detail else None
            raise table.error(exc.path or "url", exc.detail, hint=hint) from None

    def matches(self, issuer: str) -> bool:
        """True when a token's ``iss`` is this issuer (or fits its pattern)."""
        if self._pattern is None:
            return issuer == self.url
        return self._pattern.fullmatch(issuer) is not None


def _wrap(check: Callable[[], SplitResult], key: str) -> SplitResult:
    try:
        return check()
    except FormatError as exc:
        raise FormatError(exc.detail, path=key) from None


# -- principal ---------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who a verified token says the caller is, as the certificate will say it.

    Attributes:
        issuer: The token's ``iss`` (for .1.1 and .1.8).
        san_type: ``email`` (rfc822Name), ``uri`` or ``username`` (otherName
            1.3.6.1.4.1.57264.1.7, UTF8String).
        san_value: The SAN's value.
        challenge: What the proof of possession must sign (``email`` for
            email issuers, ``sub`` otherwise).
        extensions: Dotted OID -> value of further Fulcio extensions (DER
            UTF8String), e.g. the GitHub .1.9-.1.22.
        subject: The token's ``sub``.
        legacy_extensions: Deprecated Fulcio extensions .1.2-.1.6 (raw string
            bytes in Fulcio's encoding); GitHub only.
    """

    issuer: str
    san_type: Literal["email", "uri", "username"]
    san_value: str
    challenge: str
    extensions: Mapping[str, str] = field(default_factory=dict)
    subject: str = ""
    legacy_extensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", MappingProxyType(dict(self.extensions)))
        object.__setattr__(
            self, "legacy_extensions", MappingProxyType(dict(self.legacy_extensions))
        )


def _claim_text(claims: Mapping[str, Any], name: str, *, spaces: bool = False) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise TokenError("identity-claim", f"token lacks the {name} claim (a non-empty string)")
    if len(value) > 2048 or (_CONTROL_RE if spaces else _SPACE_RE).search(value):
        raise TokenError("identity-claim", f"token's {name} claim has forbidden characters")
    return value


def _email_principal(issuer: str, claims: Mapping[str, Any], subject: str) -> Principal:
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        raise TokenError("identity-claim", "token lacks the email claim")
    # rfc822Name is an IA5String: ASCII only.
    if len(email) > 254 or not email.isascii() or not _EMAIL_RE.match(email):
        raise TokenError("identity-claim", "token's email claim is not an email address")
    verified = claims.get("email_verified")
    # Some providers (AWS Cognito) send the string "true"; Fulcio accepts it.
    if verified is not True and verified != "true":
        raise TokenError("email-not-verified", "token's email_verified claim is not true")
    return Principal(issuer, "email", email, email, subject=subject)


def _uri_principal(config: IssuerConfig, issuer: str, subject: str) -> Principal:
    domain = urlsplit(config.subject_domain or "")
    if not subject.isascii():
        # A URI SAN is an IA5String.
        raise TokenError("identity-claim", "token's sub claim is not an ASCII URI")
    try:
        parts = urlsplit(subject)
        port = parts.port
    except ValueError:
        raise TokenError("identity-claim", "token's sub claim is not a URI") from None
    if (
        parts.scheme != domain.scheme
        or (parts.hostname or "") != (domain.hostname or "").lower()
        or port != domain.port
        or parts.username is not None
        or parts.fragment
        or "#" in subject
    ):
        raise TokenError("identity-claim", "token's sub claim is not under the subject domain")
    prefix = domain.path.rstrip("/")
    if prefix and not (parts.path == prefix or parts.path.startswith(prefix + "/")):
        raise TokenError("identity-claim", "token's sub claim is not under the subject domain")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise TokenError("identity-claim", "token's sub claim has dot segments")
    return Principal(issuer, "uri", subject, subject, subject=subject)


def _spiffe_principal(config: IssuerConfig, issuer: str, subject: str) -> Principal:
    prefix = f"spiffe://{config.spiffe_trust_domain}/"
    if not subject.startswith(prefix):
        raise TokenError(
            "identity-claim", "token's sub claim is not a SPIFFE ID of the trust domain"
        )
    segments = subject[len(prefix) :].split("/")
    if not all(
        _SPIFFE_SEGMENT_RE.match(segment) and segment not in (".", "..") for segment in segments
    ):
        raise TokenError("identity-claim", "token's sub claim is not a valid SPIFFE ID path")
    return Principal(issuer, "uri", subject, subject, subject=subject)


def _username_principal(config: IssuerConfig, issuer: str, subject: str) -> Principal:
    if not _USERNAME_RE.match(subject):
        raise TokenError("identity-claim", "token's sub claim is not a usable username")
    return Principal(
        issuer,
        "username",
        f"{subject}{USERNAME_SEPARATOR}{config.subject_domain}",
        subject,
        subject=subject,
    )


_GITHUB_CLAIMS: Final = (
    "job_workflow_ref",
    "job_workflow_sha",
    "sha",
    "event_name",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "workflow_ref",
    "workflow_sha",
    "ref",
    "run_id",
    "run_attempt",
    "runner_environment",
    "repository_visibility",
)


def _github_principal(issuer: str, claims: Mapping[str, Any], subject: str) -> Principal:
    c = {name: _claim_text(claims, name) for name in _GITHUB_CLAIMS}
    for name in ("job_workflow_ref", "repository", "repository_owner", "workflow_ref"):
        # These become URIs (the SAN among them): IA5String, ASCII only.
        if not c[name].isascii():
            raise TokenError("identity-claim", f"token's {name} claim is not ASCII")
    workflow = _claim_text(claims, "workflow", spaces=True)
    base = GITHUB_BASE_URL
    signer_uri = base + c["job_workflow_ref"]
    extensions = {
        _FULCIO + "9": signer_uri,
        _FULCIO + "10": c["job_workflow_sha"],
        _FULCIO + "11": c["runner_environment"],
        _FULCIO + "12": base + c["repository"],
        _FULCIO + "13": c["sha"],
        _FULCIO + "14": c["ref"],
        _FULCIO + "15": c["repository_id"],
        _FULCIO + "16": base + c["repository_owner"],
        _FULCIO + "17": c["repository_owner_id"],
        _FULCIO + "18": base + c["workflow_ref"],
        _FULCIO + "19": c["workflow_sha"],
        _FULCIO + "20": c["event_name"],
        _FULCIO + "21": (
            f"{base}{c['repository']}/actions/runs/{c['run_id']}/attempts/{c['run_attempt']}"
        ),
        _FULCIO + "22": c["repository_visibility"],
    }
    legacy = {
        _FULCIO + "2": c["event_name"],
        _FULCIO + "3": c["sha"],
        _FULCIO + "4": workflow,
        _FULCIO + "5": c["repository"],
        _FULCIO + "6": c["ref"],
    }
    return Principal(
        issuer,
        "uri",
        signer_uri,
        subject,
        extensions,
        subject=subject,
        legacy_extensions=legacy,
    )


def map_identity(config: IssuerConfig, issuer: str, claims: Mapping[str, Any]) -> Principal:
    """The :class:`Principal` of verified ``claims`` from an issuer of ``config.type``.

    Raises:
        TokenError: ``identity-claim`` (a claim missing or unusable) or
            ``email-not-verified``.
    """
    subject = _claim_text(claims, "sub")
    kind = config.type
    if kind is IssuerType.EMAIL:
        return _email_principal(issuer, claims, subject)
    if kind is IssuerType.URI:
        return _uri_principal(config, issuer, subject)
    if kind is IssuerType.SPIFFE:
        return _spiffe_principal(config, issuer, subject)
    if kind is IssuerType.USERNAME:
        return _username_principal(config, issuer, subject)
    return _github_principal(issuer, claims, subject)


# -- claim checks ------------------------------------------------------------


def _numeric_date(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenError("invalid-token", f"token lacks the {name} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError("invalid-token", f"token's {name} claim is not a NumericDate")
    # Huge integers would overflow float(); NaN/Infinity cannot come from
    # strict JSON but are refused anyway.
    if isinstance(value, int) and abs(value) > _MAX_NUMERIC_DATE:
        raise TokenError("invalid-token", f"token's {name} claim is out of range")
    if not math.isfinite(value) or abs(value) > _MAX_NUMERIC_DATE:
        raise TokenError("invalid-token", f"token's {name} claim is out of range")
    return float(value)


def check_times(claims: Mapping[str, Any], now: datetime, skew: float) -> None:
    """``exp`` (required), ``nbf`` and ``iat`` against ``now`` with ``skew`` seconds.

    Raises:
        TokenError: ``token-expired``, ``token-not-yet-valid`` or
            ``invalid-token`` (a missing ``exp``, a non-numeric date).
    """
    moment = now.timestamp()
    exp = _numeric_date(claims, "exp", required=True)
    nbf = _numeric_date(claims, "nbf", required=False)
    iat = _numeric_date(claims, "iat", required=False)
    assert exp is not None
    if moment >= exp + skew:
        raise TokenError("token-expired", "token has expired (exp)")
    if nbf is not None and moment + skew < nbf:
        raise TokenError("token-not-yet-valid", "token is not valid yet (nbf)")
    if iat is not None and moment + skew < iat:
        raise TokenError("token-not-yet-valid", "token was issued in the future (iat)")


def check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    """``aud`` (a string or a list of strings) must contain ``client_id``.

    Raises:
        TokenError: ``token-audience`` (absent, mistyped or without ``client_id``).
    """
    aud = claims.get("aud")
    if isinstance(aud, str):
        audiences = [aud]
    elif isinstance(aud, list) and aud and all(isinstance(item, str) for item in aud):
        audiences = aud
    else:
        raise TokenError("token-audience", "token's aud claim is missing or malformed")
    if client_id not in audiences:
        raise TokenError("token-audience", f"token's aud claim does not contain {client_id!r}")


# -- key fetching ------------------------------------------------------------


@dataclass
class _IssuerKeys:
    """The cached keys of one issuer (one concrete ``iss``)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    jwks: JWKSet | None = None
    fetched: float = -math.inf  # when ``jwks`` was last fetched (clock seconds)
    attempted: float = -math.inf  # when the last fetch started
    failure: TokenError | None = None  # the last fetch's error, if it failed
    fetches: int = 0


class TokenVerifier:
    """Verifies identity tokens of the configured issuers (see the module doc).

    Args:
        issuers: The trusted issuers. A token's ``iss`` picks the first exact
            match, else the first meta pattern it fits.
        skew: Tolerance in seconds for ``exp``, ``nbf`` and ``iat``.
        http: The client to fetch discovery documents and JWKS with (the
            caller keeps ownership); default: an own client, closed by
            :meth:`aclose`.
        max_token_bytes: Longest token accepted.
        jwks_ttl: Seconds a fetched JWK Set is used before it is refetched.
        refetch_interval: Least seconds between two fetches for one issuer
            triggered by unknown kids or a failed fetch.
        max_stale: Seconds past ``jwks_ttl`` a cached set stays usable while
            refreshes fail.
        timeout: Bound on one discovery + JWKS fetch, seconds.
        max_issuers: Most concrete issuers cached (meta patterns may match
            many); the oldest entries are dropped first.
        max_fetches_per_minute: Global bound on discovery + JWKS fetches
            (all issuers together); past it, issuers without cached keys are
            ``issuer-unavailable`` and cached keys are used as they are. This
            bounds what tokens naming many issuers of a meta pattern can cost.
        clock: Monotonic seconds for the cache (``time.monotonic``); token
            times use the ``now`` of :meth:`verify`.
    """

    def __init__(
        self,
        issuers: Sequence[IssuerConfig],
        *,
        skew: float = 60.0,
        http: httpx.AsyncClient | None = None,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        jwks_ttl: float = 600.0,
        refetch_interval: float = 30.0,
        max_stale: float = 3600.0,
        timeout: float = 10.0,
        max_issuers: int = 1024,
        max_fetches_per_minute: int = 120,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuers = tuple(issuers)
        self.skew = skew
        self.max_token_bytes = max_token_bytes
        self.jwks_ttl = jwks_ttl
        self.refetch_interval = refetch_interval
        self.max_stale = max_stale
        self.timeout = timeout
        self.max_issuers = max_issuers
        self.max_fetches_per_minute = max_fetches_per_minute
        self._recent_fetches: deque[float] = deque()
        self._clock = clock
        self._http = http
        self._own_http = http is None
        self._keys: dict[str, _IssuerKeys] = {}
        # Bounds concurrent outbound fetches across all issuers.
        self._fetch_slots = asyncio.Semaphore(8)

    def issuer_for(self, issuer: str) -> IssuerConfig:
        """The configuration for a token's ``iss``.

        Raises:
            TokenError: ``untrusted-issuer``.
        """
        for config in self.issuers:
            if not config.meta and config.matches(issuer):
                return config
        for config in self.issuers:
            if config.meta and config.matches(issuer):
                return config
        raise TokenError("untrusted-issuer", "token's issuer (iss) is not configured on this CA")

    async def verify(self, token: str, now: datetime) -> Principal:
        """Verify an ID token and map it to the certificate identity.

        Args:
            token: The compact JWT.
            now: The time to check ``exp``/``nbf``/``iat`` against (aware).

        Raises:
            TokenError: Why the token is refused (401), or
                ``issuer-unavailable`` (503).
            UsageError: ``now`` is a naive datetime.
        """
        if now.tzinfo is None:
            raise UsageError("TokenVerifier.verify needs an aware datetime")
        try:
            parsed = parse_compact(token, max_bytes=self.max_token_bytes)
        except JWSError as exc:
            raise TokenError(exc.reason, exc.message) from None
        iss = parsed.payload.get("iss")
        if not isinstance(iss, str) or not iss:
            raise TokenError("invalid-token", "token lacks the iss claim")
        config = self.issuer_for(iss)
        keys = await self._keys_for(iss, parsed.kid)
        if parsed.kid is not None and not keys.has_kid(parsed.kid):
            raise TokenError("unknown-key", "token's kid is not among the issuer's keys")
        candidates = keys.candidates(parsed.kid, parsed.alg)
        if not candidates:
            raise TokenError("token-signature", f"no key of the issuer verifies {parsed.alg.value}")
        try:
            verify_parsed(parsed, candidates)
        except JWSError as exc:
            raise TokenError(exc.reason, exc.message) from None
        claims = parsed.payload
        check_times(claims, now, self.skew)
        check_audience(claims, config.client_id)
        return map_identity(config, iss, claims)

    async def aclose(self) -> None:
        """Close the HTTP client if this verifier made it."""
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- cache -------------------------------------------------------------

    def _state(self, issuer: str) -> _IssuerKeys:
        state = self._keys.get(issuer)
        if state is None:
            while len(self._keys) >= self.max_issuers:
                self._keys.pop(next(iter(self._keys)))
            state = self._keys[issuer] = _IssuerKeys()
        return state

    def fetch_count(self, issuer: str) -> int:
        """How many times the keys of ``issuer`` were fetched (for tests and metrics)."""
        state = self._keys.get(issuer)
        return state.fetches if state is not None else 0

    async def _keys_for(self, issuer: str, kid: str | None) -> JWKSet:
        state = self._state(issuer)
        async with state.lock:
            now = self._clock()
            jwks = state.jwks
            expired = jwks is None or now - state.fetched >= self.jwks_ttl
            unknown_kid = kid is not None and jwks is not None and not jwks.has_kid(kid)
            recent = now - state.attempted < self.refetch_interval
            if (expired or unknown_kid) and not recent:
                await self._refresh(state, issuer, now)
            elif expired and state.failure is not None and jwks is None:
                # Retried at most once per refetch_interval: a down issuer
                # is not hammered by every request that names it.
                raise state.failure
            jwks = state.jwks
            if jwks is None:
                raise state.failure or TokenError(
                    "issuer-unavailable", "the issuer's keys are not available"
                )
            if now - state.fetched >= self.jwks_ttl + self.max_stale:
                raise TokenError("issuer-unavailable", "the issuer's keys are out of date")
            return jwks

    def _take_fetch_budget(self, now: float) -> bool:
        """One fetch from the global budget (``max_fetches_per_minute``)."""
        recent = self._recent_fetches
        while recent and now - recent[0] >= 60.0:
            recent.popleft()
        if len(recent) >= self.max_fetches_per_minute:
            return False
        recent.append(now)
        return True

    async def _refresh(self, state: _IssuerKeys, issuer: str, now: float) -> None:
        if not self._take_fetch_budget(now):
            # Many distinct issuers (a meta pattern) or many failing ones:
            # stop fetching for a while rather than amplify the traffic.
            if state.jwks is None:
                raise TokenError("issuer-unavailable", "too many issuer key fetches; retry later")
            return
        state.attempted = now
        state.fetches += 1
        try:
            async with self._fetch_slots:
                jwks = await asyncio.wait_for(self._fetch(issuer), self.timeout)
        except TimeoutError:
            error = TokenError("issuer-unavailable", "the issuer did not answer in time")
        except TokenError as exc:
            error = exc
        else:
            state.jwks = jwks
            state.fetched = now
            state.failure = None
            return
        state.failure = error
        if state.jwks is None:
            raise error
        _log.warning("refreshing the keys of an issuer failed: %s", error.detail)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(
                timeout=self.timeout, follow_redirects=False, trust_env=False
            )
        return self._http

    async def _fetch(self, issuer: str) -> JWKSet:
        discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        discovery = await self._get_json(discovery_url, MAX_DISCOVERY_BYTES, "discovery document")
        if not isinstance(discovery, dict):
            raise TokenError(
                "issuer-unavailable", "the issuer's discovery document is not an object"
            )
        if discovery.get("issuer") != issuer:
            raise TokenError(
                "issuer-unavailable", "the issuer's discovery document names another issuer"
            )
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise TokenError(
                "issuer-unavailable", "the issuer's discovery document has no jwks_uri"
            )
        try:
            _check_url(jwks_uri, "jwks_uri")
        except FormatError as exc:
            raise TokenError("issuer-unavailable", f"the issuer's {exc.detail}") from None
        document = await self._get_json(jwks_uri, MAX_JWKS_BYTES, "JWK Set")
        try:
            jwks = JWKSet.from_dict(document)
        except JWSError as exc:
            raise TokenError("issuer-unavailable", f"the issuer's {exc.message}") from None
        if jwks.skipped:
            _log.info("skipped %d unusable keys of an issuer's JWK Set", jwks.skipped)
        return jwks

    async def _get_json(self, url: str, cap: int, what: str) -> Any:
        import httpx

        body = bytearray()
        try:
            async with self._client().stream(
                "GET", url, headers={"Accept": "application/json"}
            ) as response:
                if response.status_code != 200:
                    raise TokenError(
                        "issuer-unavailable",
                        f"the issuer's {what} answered HTTP {response.status_code}",
                    )
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > cap:
                        raise TokenError(
                            "issuer-unavailable", f"the issuer's {what} exceeds {cap} bytes"
                        )
        except httpx.HTTPError as exc:
            raise TokenError(
                "issuer-unavailable",
                f"the issuer's {what} cannot be fetched ({type(exc).__name__})",
            ) from None
        try:
            return load_json(bytes(body), what=f"the issuer's {what}")
        except FormatError as exc:
            raise TokenError("issuer-unavailable", exc.message) from None
