"""Compact JWS (JWT) signing and verification, with ``cryptography`` only.

This is the small, strict subset of RFC 7515/7517/7518/7638/8037 that OIDC
identity tokens need, written so that the classic JWT attacks have nowhere to
go:

* **Asymmetric algorithms only**: RS256/384/512, PS256/384/512,
  ES256/384/512 and EdDSA (Ed25519). ``none`` and every HMAC algorithm are
  refused before anything else is looked at, so "HS256 signed with the RSA
  public key as the secret" cannot even reach a key.
* **The key decides the algorithm**: a JWK's ``kty``/``crv`` (and its
  ``alg`` when present) fix which algorithms it verifies; the token header's
  ``alg`` must be one of them. An RSA key never verifies an EC signature,
  a key published with ``"alg": "RS256"`` never verifies PS256.
* **No key comes with the token**: headers carrying ``jku``, ``x5u``,
  ``jwk``, ``x5c`` or ``crit`` are rejected, as is ``zip`` (a JWE header).
* **Strict encodings**: base64url without padding and with zero trailing bits
  (two strings never decode to the same bytes), UTF-8 JSON without duplicate
  keys or NaN, header and payload JSON objects, a bounded token size; ECDSA
  signatures are the raw ``r || s`` of RFC 7518 §3.4 with the exact length.
* **Weak keys refused at import**: RSA below 2048 bits or with an even or tiny
  exponent, EC curves other than P-256/384/521, OKP other than Ed25519.

Every error is a :class:`JWSError` whose :attr:`~JWSError.reason` is a
problem slug (``invalid-token``, ``token-signature``, ``token-too-large``,
``unknown-key``, ``unsupported-key``); messages name what was wrong, never
quote the token.

Signing goes through a :class:`toolkit.signing.Signer` (so the development
issuer may keep its key on an HSM) or a bare ``cryptography`` private key
(tests use that for the algorithms no airseal scheme signs with).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from toolkit.encoding import load_json
from toolkit.errors import FormatError, UsageError
from toolkit.signing import PrivateKey, PublicKey, Scheme, Signer

__all__ = [
    "DEFAULT_MAX_TOKEN_BYTES",
    "JWK",
    "JWKSet",
    "JWSError",
    "Algorithm",
    "ParsedJWS",
    "b64url_decode",
    "b64url_encode",
    "parse_compact",
    "sign_compact",
    "signer_algorithm",
    "thumbprint",
    "verify_compact",
    "verify_parsed",
]

#: Longest compact token accepted by default (real ID tokens are 1-2 KiB).
DEFAULT_MAX_TOKEN_BYTES: Final = 16384
#: Most keys read from one JWKS (real issuers publish 2-5).
MAX_JWKS_KEYS: Final = 64
#: Smallest RSA modulus accepted.
MIN_RSA_BITS: Final = 2048
#: Largest RSA modulus accepted (bounds the cost a hostile JWKS can impose).
MAX_RSA_BITS: Final = 8192

# Header parameters that would let the token choose its own key, or that
# promise semantics this verifier does not implement.
_FORBIDDEN_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "zip", "enc"})
_B64URL_RE: Final = re.compile(r"\A[A-Za-z0-9_-]*\Z")


class JWSError(FormatError):
    """A token, signature or key that is refused.

    Args:
        reason: Problem slug: ``invalid-token`` (malformed), ``token-too-large``,
            ``token-signature`` (signature does not verify, or the key cannot
            verify this algorithm), ``unknown-key`` (no key with that id),
            ``unsupported-key`` (a JWK of a refused kind or size).
        message: One line; never contains the token or key material.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Algorithm(StrEnum):
    """The JWS algorithms airseal accepts (RFC 7518 §3, RFC 8037)."""

    RS256 = "RS256"
    RS384 = "RS384"
    RS512 = "RS512"
    PS256 = "PS256"
    PS384 = "PS384"
    PS512 = "PS512"
    ES256 = "ES256"
    ES384 = "ES384"
    ES512 = "ES512"
    EDDSA = "EdDSA"

    @property
    def hash(self) -> hashes.HashAlgorithm | None:
        """The message hash (None for EdDSA)."""
        if self is Algorithm.EDDSA:
            return None
        bits = self.value[2:]
        return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[bits]


_RSA_ALGORITHMS: Final = frozenset(
    {
        Algorithm.RS256,
        Algorithm.RS384,
        Algorithm.RS512,
        Algorithm.PS256,
        Algorithm.PS384,
        Algorithm.PS512,
    }
)
# JWK crv name -> (cryptography curve, algorithm, coordinate bytes)
_EC_CURVES: Final[dict[str, tuple[type[ec.EllipticCurve], Algorithm, int]]] = {
    "P-256": (ec.SECP256R1, Algorithm.ES256, 32),
    "P-384": (ec.SECP384R1, Algorithm.ES384, 48),
    "P-521": (ec.SECP521R1, Algorithm.ES512, 66),
}
_CURVE_NAMES: Final = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_SCHEME_ALGORITHM: Final[dict[Scheme, Algorithm]] = {
    Scheme.ECDSA_P256_SHA256: Algorithm.ES256,
    Scheme.ECDSA_P384_SHA384: Algorithm.ES384,
    Scheme.ED25519: Algorithm.EDDSA,
    Scheme.RSA_PKCS1V15_3072_SHA256: Algorithm.RS256,
    Scheme.RSA_PKCS1V15_4096_SHA256: Algorithm.RS256,
    Scheme.RSA_PSS_3072_SHA256: Algorithm.PS256,
    Scheme.RSA_PSS_4096_SHA256: Algorithm.PS256,
}


# -- base64url ---------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, what: str = "value") -> bytes:
    """Decode unpadded base64url strictly.

    Raises:
        JWSError: ``invalid-token``: characters outside the URL-safe alphabet,
            padding, an impossible length or non-zero trailing bits.
    """
    if not isinstance(text, str) or not _B64URL_RE.match(text) or len(text) % 4 == 1:
        raise JWSError("invalid-token", f"{what} is not unpadded base64url")
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JWSError("invalid-token", f"{what} is not unpadded base64url") from None
    # Non-zero unused bits would let two encodings mean the same bytes.
    if b64url_encode(decoded) != text:
        raise JWSError("invalid-token", f"{what} is not canonical base64url")
    return decoded


def _b64url_int(value: object, what: str, *, length: int | None = None) -> int:
    if not isinstance(value, str) or not value:
        raise JWSError("unsupported-key", f"JWK {what} must be a base64url string")
    try:
        raw = b64url_decode(value, what=f"JWK {what}")
    except JWSError:
        raise JWSError("unsupported-key", f"JWK {what} is not base64url") from None
    if length is not None and len(raw) != length:
        raise JWSError("unsupported-key", f"JWK {what} must be {length} bytes, not {len(raw)}")
    return int.from_bytes(raw, "big")


def _int_b64url(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big"))


# -- JWK ---------------------------------------------------------------------


def _check_public_key(key: object) -> PublicKey:
    """Return ``key`` if it is a public key airseal accepts, else raise."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        if key.key_size < MIN_RSA_BITS or key.key_size > MAX_RSA_BITS:
            raise JWSError(
                "unsupported-key",
                f"RSA key of {key.key_size} bits (must be {MIN_RSA_BITS} to {MAX_RSA_BITS})",
            )
        if numbers.e < 3 or numbers.e % 2 == 0:
            raise JWSError("unsupported-key", "RSA public exponent is not a valid exponent")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVE_NAMES:
            raise JWSError("unsupported-key", f"EC curve {key.curve.name} is not accepted")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise JWSError("unsupported-key", f"unsupported key type {type(key).__name__}")


def _key_algorithms(key: PublicKey) -> frozenset[Algorithm]:
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return frozenset({_EC_CURVES[_CURVE_NAMES[key.curve.name]][1]})
    return frozenset({Algorithm.EDDSA})


@dataclass(frozen=True)
class JWK:
    """One public key of a JWK Set (RFC 7517), already checked for strength.

    Attributes:
        key: The public key.
        kid: Its key id (``None`` when the JWKS gave none).
        alg: The one algorithm the key is published for, if the JWK said.
        use: ``sig`` or ``None``.
    """

    key: PublicKey
    kid: str | None = None
    alg: Algorithm | None = None
    use: str | None = None
    algorithms: frozenset[Algorithm] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_public_key(self.key)
        allowed = _key_algorithms(self.key)
        if self.alg is not None:
            if self.alg not in allowed:
                raise JWSError(
                    "unsupported-key", f"JWK alg {self.alg.value} does not fit its key type"
                )
            allowed = frozenset({self.alg})
        object.__setattr__(self, "algorithms", allowed)

    @classmethod
    def from_public_key(
        cls, key: PublicKey, *, kid: str | None = None, alg: Algorithm | None = None
    ) -> JWK:
        """Wrap a public key; ``kid`` defaults to its RFC 7638 thumbprint."""
        checked = _check_public_key(key)
        return cls(checked, kid if kid is not None else thumbprint(checked), alg, "sig")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> JWK:
        """Import a public JWK (RSA, EC P-256/384/521, OKP Ed25519).

        Raises:
            JWSError: ``unsupported-key``: not a JSON object, an unknown or
                refused key type, a private key, bad members, ``use`` other
                than ``sig``, an ``alg`` that is not an accepted JWS algorithm
                or does not fit the key.
        """
        if not isinstance(doc, Mapping):
            raise JWSError("unsupported-key", "a JWK must be a JSON object")
        kty = doc.get("kty")
        kid = doc.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 256):
            raise JWSError("unsupported-key", "JWK kid must be a non-empty string")
        use = doc.get("use")
        if use is not None and use != "sig":
            raise JWSError("unsupported-key", "JWK is not a signature key (use)")
        key_ops = doc.get("key_ops")
        if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
            raise JWSError("unsupported-key", "JWK key_ops does not allow verify")
        alg_name = doc.get("alg")
        alg: Algorithm | None = None
        if alg_name is not None:
            if alg_name not in Algorithm.__members__.values():
                raise JWSError("unsupported-key", "JWK alg is not an accepted JWS algorithm")
            alg = Algorithm(alg_name)
        # A JWK with private members must never be published or used here.
        if any(member in doc for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise JWSError("unsupported-key", "JWK carries private or symmetric key material")
        key: PublicKey
        try:
            if kty == "RSA":
                n = _b64url_int(doc.get("n"), "n")
                e = _b64url_int(doc.get("e"), "e")
                if n.bit_length() > MAX_RSA_BITS:
                    raise JWSError("unsupported-key", "RSA modulus is too large")
                key = rsa.RSAPublicNumbers(e, n).public_key()
            elif kty == "EC":
                crv = doc.get("crv")
                if not isinstance(crv, str) or crv not in _EC_CURVES:
                    raise JWSError("unsupported-key", "EC JWK crv must be P-256, P-384 or P-521")
                curve, _, size = _EC_CURVES[crv]
                x = _b64url_int(doc.get("x"), "x", length=size)
                y = _b64url_int(doc.get("y"), "y", length=size)
                key = ec.EllipticCurvePublicNumbers(x, y, curve()).public_key()
            elif kty == "OKP":
                if doc.get("crv") != "Ed25519":
                    raise JWSError("unsupported-key", "OKP JWK crv must be Ed25519")
                raw = doc.get("x")
                if not isinstance(raw, str):
                    raise JWSError("unsupported-key", "JWK x must be a base64url string")
                try:
                    x_bytes = b64url_decode(raw, what="JWK x")
                except JWSError:
                    raise JWSError("unsupported-key", "JWK x is not base64url") from None
                if len(x_bytes) != 32:
                    raise JWSError("unsupported-key", "Ed25519 JWK x must be 32 bytes")
                key = ed25519.Ed25519PublicKey.from_public_bytes(x_bytes)
            else:
                raise JWSError("unsupported-key", "JWK kty must be RSA, EC or OKP")
        except (ValueError, UnsupportedAlgorithm):
            # Points off the curve, a zero modulus, …
            raise JWSError("unsupported-key", f"JWK of kty {kty} is not a valid key") from None
        return cls(key, kid, alg, use)

    def to_dict(self) -> dict[str, Any]:
        """The public JWK (members in RFC 7638 order, then kid/alg/use)."""
        doc = _required_members(self.key)
        if self.kid is not None:
            doc["kid"] = self.kid
        if self.alg is not None:
            doc["alg"] = self.alg.value
        if self.use is not None:
            doc["use"] = self.use
        return doc

    def thumbprint(self) -> str:
        """The RFC 7638 SHA-256 thumbprint (base64url)."""
        return thumbprint(self.key)


def _required_members(key: PublicKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"e": _int_b64url(numbers.e), "kty": "RSA", "n": _int_b64url(numbers.n)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = _CURVE_NAMES[key.curve.name]
        size = _EC_CURVES[crv][2]
        point = key.public_numbers()
        return {
            "crv": crv,
            "kty": "EC",
            "x": _int_b64url(point.x, size),
            "y": _int_b64url(point.y, size),
        }
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw)}


def thumbprint(key: PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key: a stable kid."""
    members = _required_members(key)
    # RFC 7638 §3: required members only, lexicographic order, no whitespace.
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True)
class JWKSet:
    """The usable signature keys of a JWK Set.

    Attributes:
        keys: The keys, in document order.
        skipped: How many keys of the document were not usable (encryption
            keys, unknown or weak key types): skipped, not fatal, because
            real issuers publish such keys next to their signing keys.
    """

    keys: tuple[JWK, ...]
    skipped: int = 0

    @classmethod
    def from_dict(cls, doc: object) -> JWKSet:
        """Read ``{"keys": [...]}``.

        Raises:
            JWSError: ``unsupported-key``: not an object with a ``keys``
                array, more than :data:`MAX_JWKS_KEYS` keys, or two keys with
                the same kid.
        """
        if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
            raise JWSError("unsupported-key", "a JWK Set must be an object with a keys array")
        entries = doc["keys"]
        if len(entries) > MAX_JWKS_KEYS:
            raise JWSError("unsupported-key", f"JWK Set has more than {MAX_JWKS_KEYS} keys")
        keys: list[JWK] = []
        skipped = 0
        seen: set[str] = set()
        for entry in entries:
            try:
                jwk = JWK.from_dict(entry)
            except JWSError:
                skipped += 1
                continue
            if jwk.kid is not None:
                if jwk.kid in seen:
                    # Which of the two would a token mean? Refuse both.
                    raise JWSError("unsupported-key", "JWK Set has two keys with one kid")
                seen.add(jwk.kid)
            keys.append(jwk)
        return cls(tuple(keys), skipped)

    @classmethod
    def from_json(cls, data: bytes) -> JWKSet:
        """Parse a JWKS document strictly (UTF-8 JSON, no duplicate keys)."""
        try:
            doc = load_json(data, what="JWK Set")
        except FormatError as exc:
            raise JWSError("unsupported-key", exc.message) from None
        return cls.from_dict(doc)

    def to_dict(self) -> dict[str, Any]:
        """``{"keys": [...]}``."""
        return {"keys": [key.to_dict() for key in self.keys]}

    def candidates(self, kid: str | None, alg: Algorithm) -> list[JWK]:
        """The keys a token with this header may be verified with.

        With a kid: the key of that kid, if it verifies ``alg``. Without: every
        key that verifies ``alg`` (go-oidc's behaviour for kid-less tokens).
        """
        if kid is not None:
            return [key for key in self.keys if key.kid == kid and alg in key.algorithms]
        return [key for key in self.keys if alg in key.algorithms]

    def has_kid(self, kid: str) -> bool:
        """True when a key of this id is in the set (whatever its algorithm)."""
        return any(key.kid == kid for key in self.keys)

    def __iter__(self) -> Iterator[JWK]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


# -- compact JWS -------------------------------------------------------------


@dataclass(frozen=True)
class ParsedJWS:
    """A structurally valid compact JWS whose signature is not yet checked.

    Attributes:
        header: The protected header (a JSON object).
        payload: The claims (a JSON object). Untrusted until verified.
        alg: The header's algorithm (an accepted one).
        kid: The header's key id, if any.
        signing_input: ``BASE64URL(header) || '.' || BASE64URL(payload)``.
        signature: The decoded signature bytes.
    """

    header: Mapping[str, Any]
    payload: Mapping[str, Any]
    alg: Algorithm
    kid: str | None
    signing_input: bytes = field(repr=False)
    signature: bytes = field(repr=False)


def parse_compact(token: object, *, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> ParsedJWS:
    """Parse a compact JWS without checking its signature.

    Raises:
        JWSError: ``token-too-large`` past ``max_bytes``; ``invalid-token``
            for anything malformed, an algorithm other than the accepted
            asymmetric ones (``none``, ``HS256``, …), a forbidden header
            (``jku``, ``x5u``, ``jwk``, ``x5c``, ``crit``, ``zip``), a
            non-object payload.
    """
    if not isinstance(token, str):
        raise JWSError("invalid-token", "token must be a string")
    if len(token) > max_bytes:
        raise JWSError("token-too-large", f"token is longer than {max_bytes} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        # Five parts would be a JWE; two or four are not JWS at all.
        raise JWSError("invalid-token", "token is not a compact JWS (three parts)")
    header_b64, payload_b64, signature_b64 = parts
    if not header_b64 or not payload_b64 or not signature_b64:
        raise JWSError("invalid-token", "token has an empty part")
    header = _json_object(b64url_decode(header_b64, what="token header"), "token header")
    alg_name = header.get("alg")
    if not isinstance(alg_name, str):
        raise JWSError("invalid-token", "token header has no alg")
    if alg_name not in Algorithm.__members__.values():
        shown = alg_name if re.fullmatch(r"[A-Za-z0-9+_-]{1,16}", alg_name) else "?"
        raise JWSError("invalid-token", f"token algorithm {shown!r} is not accepted")
    forbidden = sorted(_FORBIDDEN_HEADERS.intersection(header))
    if forbidden:
        raise JWSError("invalid-token", f"token header parameter {forbidden[0]!r} is not accepted")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 256):
        raise JWSError("invalid-token", "token header kid must be a non-empty string")
    typ = header.get("typ")
    if typ is not None and not isinstance(typ, str):
        raise JWSError("invalid-token", "token header typ must be a string")
    b64 = header.get("b64")
    if b64 is not None and b64 is not True:
        raise JWSError("invalid-token", "unencoded payloads (b64) are not accepted")
    payload = _json_object(b64url_decode(payload_b64, what="token payload"), "token payload")
    signature = b64url_decode(signature_b64, what="token signature")
    return ParsedJWS(
        header=header,
        payload=payload,
        alg=Algorithm(alg_name),
        kid=kid,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=signature,
    )


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = load_json(data, what=what)
    except FormatError as exc:
        raise JWSError("invalid-token", exc.message) from None
    if not isinstance(value, dict):
        raise JWSError("invalid-token", f"{what} is not a JSON object")
    return value


def _verify_with(jwk: JWK, alg: Algorithm, signature: bytes, data: bytes) -> bool:
    if alg not in jwk.algorithms:
        return False
    key = jwk.key
    hash_algorithm = alg.hash
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert hash_algorithm is not None
            size = _EC_CURVES[_CURVE_NAMES[key.curve.name]][2]
            if len(signature) != 2 * size:
                return False
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_algorithm))
        else:
            assert hash_algorithm is not None
            if len(signature) != (key.key_size + 7) // 8:
                return False
            pad: padding.AsymmetricPadding
            if alg.value.startswith("PS"):
                # RFC 7518 §3.5: salt as long as the hash, MGF1 with the same hash.
                pad = padding.PSS(padding.MGF1(hash_algorithm), hash_algorithm.digest_size)
            else:
                pad = padding.PKCS1v15()
            key.verify(signature, data, pad, hash_algorithm)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_parsed(parsed: ParsedJWS, keys: Iterable[JWK]) -> JWK:
    """Check a parsed token's signature against candidate keys.

    Returns:
        The key that verified it.

    Raises:
        JWSError: ``token-signature`` when no candidate key verifies it
            (including keys that do not fit the header's algorithm).
    """
    for jwk in keys:
        if _verify_with(jwk, parsed.alg, parsed.signature, parsed.signing_input):
            return jwk
    raise JWSError("token-signature", "token signature does not verify")


def verify_compact(
    token: object, keys: JWKSet | Iterable[JWK], *, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES
) -> ParsedJWS:
    """Parse a compact JWS and check its signature with one of ``keys``.

    A kid in the header selects that key; a kid no key has is
    ``unknown-key``. Claims (``exp``, ``aud``, …) are not checked here.

    Raises:
        JWSError: See :func:`parse_compact`, plus ``unknown-key`` and
            ``token-signature``.
    """
    parsed = parse_compact(token, max_bytes=max_bytes)
    key_set = keys if isinstance(keys, JWKSet) else JWKSet(tuple(keys))
    if parsed.kid is not None and not key_set.has_kid(parsed.kid):
        raise JWSError("unknown-key", "no key with the token's kid")
    candidates = key_set.candidates(parsed.kid, parsed.alg)
    if not candidates:
        raise JWSError("token-signature", f"no key verifies {parsed.alg.value}")
    verify_parsed(parsed, candidates)
    return parsed


# -- signing -----------------------------------------------------------------


def signer_algorithm(signer: Signer) -> Algorithm:
    """The JWS algorithm a :class:`Signer`'s scheme produces."""
    return _SCHEME_ALGORITHM[Scheme(signer.scheme)]


def _private_key_algorithm(key: PrivateKey) -> Algorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        name = _CURVE_NAMES.get(key.curve.name)
        if name is None:
            raise JWSError("unsupported-key", f"EC curve {key.curve.name} is not accepted")
        return _EC_CURVES[name][1]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Algorithm.EDDSA
    return Algorithm.RS256


def _raw_ecdsa(der: bytes, public_key: ec.EllipticCurvePublicKey) -> bytes:
    size = _EC_CURVES[_CURVE_NAMES[public_key.curve.name]][2]
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def sign_compact(
    claims: Mapping[str, Any],
    key: Signer | PrivateKey,
    *,
    kid: str | None = None,
    alg: Algorithm | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``claims`` as a compact JWS (a JWT, ``typ: JWT``).

    Args:
        claims: The payload object (JSON-serialisable).
        key: A :class:`Signer` (the algorithm follows from its scheme:
            ES256, ES384, EdDSA, RS256 or PS256) or a ``cryptography``
            private key (any accepted algorithm that fits it).
        kid: The header's key id (default: the key's RFC 7638 thumbprint).
        alg: The algorithm; must fit the key (default: the key's natural one).
        headers: Extra header parameters (``alg`` and ``kid`` are set here).

    Raises:
        JWSError: ``unsupported-key`` when ``alg`` does not fit the key or
            the key is refused (RSA < 2048 bits, P-192, …).
        UsageError: Claims or headers that are not JSON (NaN, objects).
    """
    if isinstance(key, Signer):
        public_key = key.public_key
        natural = signer_algorithm(key)
        if alg is not None and alg is not natural:
            raise JWSError(
                "unsupported-key", f"a {key.scheme.value} signer signs {natural.value} only"
            )
    else:
        public_key = key.public_key()
        natural = _private_key_algorithm(key)
    _check_public_key(public_key)
    chosen = alg if alg is not None else natural
    if chosen not in _key_algorithms(public_key):
        raise JWSError("unsupported-key", f"{chosen.value} does not fit the key")
    header: dict[str, Any] = {"alg": chosen.value, "typ": "JWT"}
    header["kid"] = kid if kid is not None else thumbprint(public_key)
    for name, value in (headers or {}).items():
        if name not in ("alg", "kid"):
            header[name] = value
    signing_input = (
        b64url_encode(_compact_json(header)) + "." + b64url_encode(_compact_json(claims))
    )
    data = signing_input.encode("ascii")
    if isinstance(key, Signer):
        signature = key.sign(data)
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            signature = _raw_ecdsa(signature, public_key)
    else:
        signature = _sign_raw(key, chosen, data)
    return signing_input + "." + b64url_encode(signature)


def _sign_raw(key: PrivateKey, alg: Algorithm, data: bytes) -> bytes:
    hash_algorithm = alg.hash
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    assert hash_algorithm is not None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _raw_ecdsa(key.sign(data, ec.ECDSA(hash_algorithm)), key.public_key())
    pad: padding.AsymmetricPadding
    if alg.value.startswith("PS"):
        pad = padding.PSS(padding.MGF1(hash_algorithm), hash_algorithm.digest_size)
    else:
        pad = padding.PKCS1v15()
    return key.sign(data, pad, hash_algorithm)


def _compact_json(value: Mapping[str, Any]) -> bytes:
    try:
        return _dumps(value)
    except (TypeError, ValueError):
        raise UsageError(
            "JWT claims and headers must be JSON values (no NaN or Infinity)"
        ) from None


def _dumps(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )
