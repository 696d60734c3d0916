"""Tests of the JWS/JWK module: every algorithm, hostile tokens, strict JWK import."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

from toolkit.services._jwt import (
    JWK,
    Algorithm,
    JWKSet,
    JWSError,
    b64url_decode,
    b64url_encode,
    parse_compact,
    sign_compact,
    thumbprint,
    verify_compact,
)
from toolkit.signing import KeyAlgorithm, PrivateKey, Scheme, SoftwareSigner

CLAIMS = {"iss": "https://issuer.example", "sub": "alice", "aud": "sigstore", "exp": 2_000_000_000}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def keys(rsa_key: rsa.RSAPrivateKey) -> dict[Algorithm, PrivateKey]:
    p256 = ec.generate_private_key(ec.SECP256R1())
    return {
        Algorithm.RS256: rsa_key,
        Algorithm.RS384: rsa_key,
        Algorithm.RS512: rsa_key,
        Algorithm.PS256: rsa_key,
        Algorithm.PS384: rsa_key,
        Algorithm.PS512: rsa_key,
        Algorithm.ES256: p256,
        Algorithm.ES384: ec.generate_private_key(ec.SECP384R1()),
        Algorithm.ES512: ec.generate_private_key(ec.SECP521R1()),
        Algorithm.EDDSA: ed25519.Ed25519PrivateKey.generate(),
    }


def _pyjwt_key(key: PrivateKey) -> Any:
    return key.public_key()


def _reason(call: Callable[[], object]) -> str:
    with pytest.raises(JWSError) as info:
        call()
    return info.value.reason


def _segment(value: Any) -> str:
    return b64url_encode(json.dumps(value).encode())


def _token(header: Any, payload: Any, signature: bytes = b"sig") -> str:
    return f"{_segment(header)}.{_segment(payload)}.{b64url_encode(signature)}"


# -- round trips -------------------------------------------------------------


@pytest.mark.parametrize("alg", list(Algorithm))
def test_every_algorithm_round_trips(alg: Algorithm, keys: dict[Algorithm, PrivateKey]) -> None:
    key = keys[alg]
    token = sign_compact(CLAIMS, key, alg=alg)
    jwk = JWK.from_public_key(key.public_key())
    parsed = verify_compact(token, [jwk])
    assert parsed.payload == CLAIMS
    assert parsed.alg is alg
    assert parsed.kid == thumbprint(key.public_key())
    # PyJWT, as an oracle, accepts what we sign.
    decoded = pyjwt.decode(token, _pyjwt_key(key), algorithms=[alg.value], audience="sigstore")
    assert decoded == CLAIMS


@pytest.mark.parametrize("alg", list(Algorithm))
def test_pyjwt_tokens_verify(alg: Algorithm, keys: dict[Algorithm, PrivateKey]) -> None:
    key = keys[alg]
    token = pyjwt.encode(CLAIMS, key, algorithm=alg.value, headers={"kid": "k1"})
    jwk = JWK.from_public_key(key.public_key(), kid="k1")
    assert verify_compact(token, JWKSet((jwk,))).payload == CLAIMS


@pytest.mark.parametrize(
    ("algorithm", "scheme", "alg"),
    [
        (KeyAlgorithm.ECDSA_P256, None, Algorithm.ES256),
        (KeyAlgorithm.ECDSA_P384, None, Algorithm.ES384),
        (KeyAlgorithm.ED25519, None, Algorithm.EDDSA),
        (KeyAlgorithm.RSA_3072, None, Algorithm.RS256),
        (KeyAlgorithm.RSA_3072, Scheme.RSA_PSS_3072_SHA256, Algorithm.PS256),
    ],
)
def test_signer_round_trip(algorithm: KeyAlgorithm, scheme: Scheme | None, alg: Algorithm) -> None:
    signer = SoftwareSigner.generate(algorithm, scheme)
    token = sign_compact(CLAIMS, signer)
    parsed = verify_compact(token, [JWK.from_public_key(signer.public_key)])
    assert parsed.alg is alg
    assert pyjwt.decode(token, signer.public_key, algorithms=[alg.value], audience="sigstore")


def test_signer_refuses_another_algorithm() -> None:
    signer = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    assert _reason(lambda: sign_compact(CLAIMS, signer, alg=Algorithm.ES384)) == "unsupported-key"


def test_sign_refuses_alg_that_does_not_fit(keys: dict[Algorithm, PrivateKey]) -> None:
    key = keys[Algorithm.ES256]
    assert _reason(lambda: sign_compact(CLAIMS, key, alg=Algorithm.RS256)) == "unsupported-key"


def test_ecdsa_signature_is_raw_r_s(keys: dict[Algorithm, PrivateKey]) -> None:
    for alg, size in ((Algorithm.ES256, 64), (Algorithm.ES384, 96), (Algorithm.ES512, 132)):
        token = sign_compact(CLAIMS, keys[alg])
        assert len(b64url_decode(token.split(".")[2])) == size


def test_header_carries_kid_and_typ(keys: dict[Algorithm, PrivateKey]) -> None:
    token = sign_compact(CLAIMS, keys[Algorithm.ES256], kid="abc", headers={"alg": "x", "x": 1})
    header = parse_compact(token).header
    assert header == {"alg": "ES256", "typ": "JWT", "kid": "abc", "x": 1}


# -- hostile tokens ----------------------------------------------------------


@pytest.fixture(scope="module")
def es_token(keys: dict[Algorithm, PrivateKey]) -> str:
    return sign_compact(CLAIMS, keys[Algorithm.ES256], kid="k1")


@pytest.fixture(scope="module")
def es_jwks(keys: dict[Algorithm, PrivateKey]) -> JWKSet:
    return JWKSet((JWK.from_public_key(keys[Algorithm.ES256].public_key(), kid="k1"),))


def test_alg_none_is_refused(es_jwks: JWKSet) -> None:
    token = f"{_segment({'alg': 'none', 'kid': 'k1'})}.{_segment(CLAIMS)}."
    assert _reason(lambda: verify_compact(token, es_jwks)) == "invalid-token"
    token = f"{_segment({'alg': 'none', 'kid': 'k1'})}.{_segment(CLAIMS)}.AA"
    assert _reason(lambda: verify_compact(token, es_jwks)) == "invalid-token"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "None", "NONE", "ES256K", "RSA1_5"])
def test_other_algorithms_are_refused(alg: str, es_jwks: JWKSet) -> None:
    token = _token({"alg": alg, "kid": "k1"}, CLAIMS)
    assert _reason(lambda: verify_compact(token, es_jwks)) == "invalid-token"


def test_hs256_with_the_rsa_public_key_as_secret(rsa_key: rsa.RSAPrivateKey) -> None:
    public = rsa_key.public_key()
    jwks = JWKSet((JWK.from_public_key(public, kid="rsa"),))
    secret = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_segment({'alg': 'HS256', 'kid': 'rsa'})}.{_segment(CLAIMS)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url_encode(mac)}"
    assert _reason(lambda: verify_compact(token, jwks)) == "invalid-token"


def test_tampered_payload(es_token: str, es_jwks: JWKSet) -> None:
    header, _, signature = es_token.split(".")
    forged = f"{header}.{_segment({**CLAIMS, 'sub': 'mallory'})}.{signature}"
    assert _reason(lambda: verify_compact(forged, es_jwks)) == "token-signature"


def test_tampered_signature(es_token: str, es_jwks: JWKSet) -> None:
    header, payload, signature = es_token.split(".")
    raw = bytearray(b64url_decode(signature))
    raw[10] ^= 1
    forged = f"{header}.{payload}.{b64url_encode(bytes(raw))}"
    assert _reason(lambda: verify_compact(forged, es_jwks)) == "token-signature"


def test_der_ecdsa_signature_is_refused(keys: dict[Algorithm, PrivateKey], es_jwks: JWKSet) -> None:
    key = keys[Algorithm.ES256]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signing_input = f"{_segment({'alg': 'ES256', 'kid': 'k1'})}.{_segment(CLAIMS)}"
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    token = f"{signing_input}.{b64url_encode(der)}"
    assert _reason(lambda: verify_compact(token, es_jwks)) == "token-signature"


def test_unknown_kid(keys: dict[Algorithm, PrivateKey], es_jwks: JWKSet) -> None:
    token = sign_compact(CLAIMS, keys[Algorithm.ES256], kid="other")
    assert _reason(lambda: verify_compact(token, es_jwks)) == "unknown-key"


def test_header_alg_must_fit_the_key(
    keys: dict[Algorithm, PrivateKey], rsa_key: rsa.RSAPrivateKey
) -> None:
    # An RSA-signed token presented under the EC key's kid.
    token = sign_compact(CLAIMS, rsa_key, kid="k1")
    jwks = JWKSet((JWK.from_public_key(keys[Algorithm.ES256].public_key(), kid="k1"),))
    assert _reason(lambda: verify_compact(token, jwks)) == "token-signature"
    # A JWK published for RS256 does not verify PS256 by the same key.
    rs_only = JWKSet((JWK.from_public_key(rsa_key.public_key(), kid="r", alg=Algorithm.RS256),))
    token = sign_compact(CLAIMS, rsa_key, kid="r", alg=Algorithm.PS256)
    assert _reason(lambda: verify_compact(token, rs_only)) == "token-signature"


def test_ec_key_of_another_curve(keys: dict[Algorithm, PrivateKey]) -> None:
    token = sign_compact(CLAIMS, keys[Algorithm.ES384], kid="k")
    header = {"alg": "ES256", "kid": "k"}
    forged = f"{_segment(header)}.{token.split('.', 1)[1]}"
    jwks = JWKSet((JWK.from_public_key(keys[Algorithm.ES384].public_key(), kid="k"),))
    assert _reason(lambda: verify_compact(forged, jwks)) == "token-signature"


@pytest.mark.parametrize("name", ["crit", "jku", "x5u", "jwk", "x5c", "zip", "enc"])
def test_forbidden_headers(name: str, keys: dict[Algorithm, PrivateKey], es_jwks: JWKSet) -> None:
    value: Any = ["exp"] if name == "crit" else "https://evil.example/keys"
    token = sign_compact(CLAIMS, keys[Algorithm.ES256], kid="k1", headers={name: value})
    assert _reason(lambda: verify_compact(token, es_jwks)) == "invalid-token"


def test_oversized_token(keys: dict[Algorithm, PrivateKey], es_jwks: JWKSet) -> None:
    token = sign_compact({**CLAIMS, "pad": "x" * 20000}, keys[Algorithm.ES256], kid="k1")
    assert _reason(lambda: verify_compact(token, es_jwks)) == "token-too-large"
    assert verify_compact(token, es_jwks, max_bytes=40000).payload["pad"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "=",  # padding
        lambda t: t.replace(".", "=.", 1),
        lambda t: t.replace("-", "+").replace("_", "/") + "+/",  # standard alphabet
        lambda t: "A" + t,  # length 4n+1 in the header
        lambda t: t[: t.index(".")] + " " + t[t.index(".") :],  # whitespace
        lambda t: t.split(".")[0] + ".." + t.split(".")[2],  # empty payload
        lambda t: t + ".x",  # four parts
        lambda t: t.rsplit(".", 1)[0],  # two parts
        lambda t: t + ".a.b",  # five parts (a JWE)
        lambda t: "",
        lambda t: t.replace(t[0], "é", 1),
    ],
)
def test_malformed_encodings(mangle: Callable[[str], str], es_token: str, es_jwks: JWKSet) -> None:
    assert _reason(lambda: verify_compact(mangle(es_token), es_jwks)) == "invalid-token"


def test_non_canonical_base64url_bits() -> None:
    # "AB" and "AA" would both decode to b"\x00" if trailing bits were ignored.
    assert b64url_decode("AA") == b"\x00"
    assert _reason(lambda: b64url_decode("AB")) == "invalid-token"
    assert _reason(lambda: b64url_decode("AA==")) == "invalid-token"


def test_duplicate_json_keys(es_jwks: JWKSet) -> None:
    header = b64url_encode(b'{"alg":"ES256","kid":"k1","alg":"none"}')
    payload = b64url_encode(b'{"sub":"a","sub":"b"}')
    assert _reason(lambda: parse_compact(f"{header}.{_segment({})}.AA")) == "invalid-token"
    good_header = _segment({"alg": "ES256", "kid": "k1"})
    assert _reason(lambda: parse_compact(f"{good_header}.{payload}.AA")) == "invalid-token"


@pytest.mark.parametrize("payload", [[1, 2], "text", 3, None, True])
def test_non_object_payload(payload: Any) -> None:
    token = _token({"alg": "ES256"}, payload)
    assert _reason(lambda: parse_compact(token)) == "invalid-token"


@pytest.mark.parametrize(
    "header",
    [
        [],
        {"kid": "k1"},
        {"alg": 5},
        {"alg": "ES256", "kid": 5},
        {"alg": "ES256", "kid": ""},
        {"alg": "ES256", "typ": 1},
        {"alg": "ES256", "b64": False},
    ],
)
def test_bad_headers(header: Any) -> None:
    assert _reason(lambda: parse_compact(_token(header, CLAIMS))) == "invalid-token"


def test_nan_and_non_utf8_are_refused() -> None:
    header = _segment({"alg": "ES256"})
    for payload in (b'{"a":NaN}', b"\xff", b'{"a":1}x'):
        token = f"{header}.{b64url_encode(payload)}.AA"
        assert _reason(lambda t=token: parse_compact(t)) == "invalid-token"  # type: ignore[misc]


def test_not_a_string() -> None:
    assert _reason(lambda: parse_compact(b"a.b.c")) == "invalid-token"


def test_kidless_token_tries_fitting_keys(keys: dict[Algorithm, PrivateKey]) -> None:
    key = keys[Algorithm.ES256]
    kidless = pyjwt.encode(CLAIMS, key, algorithm="ES256")
    other = JWK.from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key(), kid="a")
    mine = JWK.from_public_key(key.public_key(), kid="b")
    assert verify_compact(kidless, JWKSet((other, mine))).kid is None
    assert _reason(lambda: verify_compact(kidless, JWKSet((other,)))) == "token-signature"


# -- JWK import/export -------------------------------------------------------


def test_jwk_round_trips(keys: dict[Algorithm, PrivateKey]) -> None:
    for alg, key in keys.items():
        jwk = JWK.from_public_key(key.public_key(), alg=alg)
        doc = jwk.to_dict()
        again = JWK.from_dict(doc)
        assert again.to_dict() == doc
        assert again.algorithms == frozenset({alg})
        # PyJWT reads the same JWK.
        assert pyjwt.PyJWK(doc).key_id == jwk.kid


def test_rfc8037_thumbprint() -> None:
    # RFC 8037 appendix A.3.
    doc = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert JWK.from_dict(doc).thumbprint() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_rsa_2048_is_the_minimum() -> None:
    weak = rsa.generate_private_key(65537, 1024).public_key()
    assert _reason(lambda: JWK.from_public_key(weak)) == "unsupported-key"
    n = weak.public_numbers().n
    doc = {"kty": "RSA", "n": b64url_encode(n.to_bytes(128, "big")), "e": "AQAB"}
    assert _reason(lambda: JWK.from_dict(doc)) == "unsupported-key"


def test_rsa_bad_exponent(rsa_key: rsa.RSAPrivateKey) -> None:
    n = rsa_key.public_key().public_numbers().n
    for e in (b"\x01", b"\x02", b"\x00\x01\x00\x00"):
        doc = {"kty": "RSA", "n": b64url_encode(n.to_bytes(256, "big")), "e": b64url_encode(e)}
        assert _reason(lambda d=doc: JWK.from_dict(d)) == "unsupported-key"  # type: ignore[misc]


def _ec_doc(curve: ec.EllipticCurve, crv: str, size: int) -> dict[str, Any]:
    point = ec.generate_private_key(curve).public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64url_encode(point.x.to_bytes(size, "big")),
        "y": b64url_encode(point.y.to_bytes(size, "big")),
    }


@pytest.mark.parametrize(
    "doc",
    [
        _ec_doc(ec.SECP192R1(), "P-192", 24),
        _ec_doc(ec.SECP256K1(), "secp256k1", 32),
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "crv": "P-384"},  # wrong lengths
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "y": b64url_encode(b"\x00" * 31 + b"\x01")},
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "x": 5},
        {"kty": "OKP", "crv": "Ed448", "x": b64url_encode(b"\x00" * 57)},
        {"kty": "OKP", "crv": "X25519", "x": b64url_encode(b"\x09" + b"\x00" * 31)},
        {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(b"\x00" * 31)},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA"},
        {"kty": "EC", "crv": "P-256"},
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "d": "AA"},
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "use": "enc"},
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "key_ops": ["encrypt"]},
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "alg": "RS256"},
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "alg": "HS256"},
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "alg": "none"},
        {**_ec_doc(ec.SECP256R1(), "P-256", 32), "kid": 3},
        "not an object",
    ],
)
def test_refused_jwks(doc: Any) -> None:
    assert _reason(lambda: JWK.from_dict(doc)) == "unsupported-key"


def test_refused_public_keys() -> None:
    for key in (
        ed448.Ed448PrivateKey.generate().public_key(),
        x25519.X25519PrivateKey.generate().public_key(),
        ec.generate_private_key(ec.SECP256K1()).public_key(),
    ):
        assert _reason(lambda k=key: JWK.from_public_key(k)) == "unsupported-key"  # type: ignore[misc]


def test_jwks_skips_unusable_keys_and_refuses_duplicate_kids(
    keys: dict[Algorithm, PrivateKey],
) -> None:
    good = JWK.from_public_key(keys[Algorithm.ES256].public_key(), kid="a").to_dict()
    doc = {"keys": [{"kty": "oct", "k": "AA"}, {**good, "use": "enc", "kid": "b"}, good]}
    jwks = JWKSet.from_dict(doc)
    assert len(jwks) == 1 and jwks.skipped == 2
    assert _reason(lambda: JWKSet.from_dict({"keys": [good, good]})) == "unsupported-key"
    assert _reason(lambda: JWKSet.from_dict({"keys": [good] * 65})) == "unsupported-key"
    assert _reason(lambda: JWKSet.from_dict({"keys": {}})) == "unsupported-key"
    assert _reason(lambda: JWKSet.from_json(b'{"keys":[],"keys":[]}')) == "unsupported-key"


def test_b64url_helpers() -> None:
    for data in (b"", b"a", b"ab", b"abc", bytes(range(256))):
        encoded = b64url_encode(data)
        assert "=" not in encoded
        assert b64url_decode(encoded) == data
        assert encoded == base64.urlsafe_b64encode(data).decode().rstrip("=")
