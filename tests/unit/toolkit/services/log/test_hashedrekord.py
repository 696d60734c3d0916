"""hashedrekord requests: valid ones give bodies the verifier accepts, bad ones a problem."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from tests.conftest import require_vectors
from tests.support.factory import (
    BUNDLE_V03,
    DEFAULT_EMAIL,
    DEFAULT_ISSUER,
    DEFAULT_TIME,
    FakeSigstore,
    _message_signature,
)
from toolkit import merkle
from toolkit.encoding import b64encode, canonical_json
from toolkit.errors import Check, VerificationError
from toolkit.models import TrustedRoot
from toolkit.models.common import HashAlgorithm, PublicKeyDetails
from toolkit.models.rekor import TransparencyLogEntry
from toolkit.services.log import hashedrekord
from toolkit.services.log.hashedrekord import (
    MAX_REQUEST_BYTES,
    PROBLEM_BASE,
    PROBLEM_TYPES,
    HashedRekordRequest,
    RequestError,
    parse_request,
    set_payload,
)
from toolkit.verify import Artifact, IdentityPolicy, KeyPolicy, Verifier
from toolkit.verify.verifier import _set_payload

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ARTIFACT = b"airseal log test artifact\n"

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class KeyCase:
    key: SigningKey
    details: PublicKeyDetails
    algorithm: HashAlgorithm
    pss: bool = False


_HASHES: dict[HashAlgorithm, Callable[[], hashes.HashAlgorithm]] = {
    HashAlgorithm.SHA2_256: hashes.SHA256,
    HashAlgorithm.SHA2_384: hashes.SHA384,
    HashAlgorithm.SHA2_512: hashes.SHA512,
}


@pytest.fixture(scope="module")
def keys() -> dict[str, KeyCase]:
    rsa2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "p256": KeyCase(
            ec.generate_private_key(ec.SECP256R1()),
            PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
            HashAlgorithm.SHA2_256,
        ),
        "p384": KeyCase(
            ec.generate_private_key(ec.SECP384R1()),
            PublicKeyDetails.PKIX_ECDSA_P384_SHA_384,
            HashAlgorithm.SHA2_384,
        ),
        "p521": KeyCase(
            ec.generate_private_key(ec.SECP521R1()),
            PublicKeyDetails.PKIX_ECDSA_P521_SHA_512,
            HashAlgorithm.SHA2_512,
        ),
        "rsa2048": KeyCase(
            rsa2048, PublicKeyDetails.PKIX_RSA_PKCS1V15_2048_SHA256, HashAlgorithm.SHA2_256
        ),
        "rsa2048-pss": KeyCase(
            rsa2048, PublicKeyDetails.PKIX_RSA_PSS_2048_SHA256, HashAlgorithm.SHA2_256, pss=True
        ),
    }


@pytest.fixture(scope="module")
def instance() -> FakeSigstore:
    return FakeSigstore(seed="hashedrekord")


def _digest(algorithm: HashAlgorithm, data: bytes = ARTIFACT) -> bytes:
    h = hashes.Hash(_HASHES[algorithm]())
    h.update(data)
    return h.finalize()


def _sign(case: KeyCase, digest: bytes) -> bytes:
    prehashed = Prehashed(_HASHES[case.algorithm]())
    if isinstance(case.key, ec.EllipticCurvePrivateKey):
        return case.key.sign(digest, ec.ECDSA(prehashed))
    if case.pss:
        pad: padding.AsymmetricPadding = padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH
        )
    else:
        pad = padding.PKCS1v15()
    return case.key.sign(digest, pad, prehashed)


def _spki(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _request(
    digest: bytes, signature: bytes, details: str, kind: str, raw: bytes
) -> dict[str, Any]:
    return {
        "hashedRekordRequestV002": {
            "digest": b64encode(digest),
            "signature": {
                "content": b64encode(signature),
                "verifier": {kind: {"rawBytes": b64encode(raw)}, "keyDetails": details},
            },
        }
    }


def _key_request(case: KeyCase, data: bytes = ARTIFACT) -> dict[str, Any]:
    digest = _digest(case.algorithm, data)
    return _request(digest, _sign(case, digest), case.details.value, "publicKey", _spki(case.key))


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def _self_signed(key: SigningKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hashedrekord test")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )


def _managed_bundle(
    instance: FakeSigstore, case: KeyCase, parsed: HashedRekordRequest
) -> dict[str, Any]:
    """A v0.3 managed-key bundle whose log entry records ``parsed``'s body.

    A v1-mode body goes into the fake Rekor v1 log (time from its SET, no TSA).
    """
    body_doc = json.loads(parsed.body())
    content = {
        "messageSignature": {
            "messageDigest": {
                "algorithm": parsed.algorithm.value,
                "digest": b64encode(parsed.digest),
            },
            "signature": b64encode(parsed.signature),
        }
    }
    signed = instance._log_and_bundle(
        body_doc,
        content,
        rekor="v1" if parsed.v1 else "v2",
        media_type=BUNDLE_V03,
        leaf=None,
        key_material={"publicKey": {}},
        signature=parsed.signature,
        artifact=ARTIFACT,
        at=DEFAULT_TIME,
        tsa=None,
    )
    assert signed.body == parsed.body()
    return signed.bundle


def _verify_managed(instance: FakeSigstore, case: KeyCase, bundle: dict[str, Any]) -> None:
    verifier = Verifier(TrustedRoot.from_dict(instance.trusted_root()))
    verifier.verify(
        json.dumps(bundle),
        Artifact.from_bytes(ARTIFACT),
        KeyPolicy(case.key.public_key()),
        now=NOW,
    )


# -- valid requests ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["p256", "p384", "p521", "rsa2048"])
def test_public_key_requests_give_bodies_the_verifier_accepts(
    keys: dict[str, KeyCase], instance: FakeSigstore, name: str
) -> None:
    case = keys[name]
    parsed = parse_request(_encode(_key_request(case)))
    assert parsed.key_details is case.details
    assert parsed.algorithm is case.algorithm
    assert parsed.verifier_kind == "publicKey"
    assert parsed.raw_bytes == _spki(case.key)
    body = json.loads(parsed.body())
    assert body["spec"]["hashedRekordV002"]["data"] == {
        "algorithm": case.algorithm.value,
        "digest": b64encode(_digest(case.algorithm)),
    }
    _verify_managed(instance, case, _managed_bundle(instance, case, parsed))


def test_rsa_pss_is_accepted_and_recorded_as_pss(keys: dict[str, KeyCase]) -> None:
    parsed = parse_request(_encode(_key_request(keys["rsa2048-pss"])))
    verifier = json.loads(parsed.body())["spec"]["hashedRekordV002"]["signature"]["verifier"]
    assert verifier["keyDetails"] == "PKIX_RSA_PSS_2048_SHA256"


def test_rsa_pss_body_verifies(keys: dict[str, KeyCase], instance: FakeSigstore) -> None:
    case = keys["rsa2048-pss"]
    parsed = parse_request(_encode(_key_request(case)))
    _verify_managed(instance, case, _managed_bundle(instance, case, parsed))


def test_certificate_request_matches_the_fake_rekor_v2_body(instance: FakeSigstore) -> None:
    leaf = instance.issue_leaf()
    digest = hashlib.sha256(ARTIFACT).digest()
    signature = leaf.key.sign(ARTIFACT, ec.ECDSA(hashes.SHA256()))
    parsed = parse_request(
        _encode(_request(digest, signature, "PKIX_ECDSA_P256_SHA_256", "x509Certificate", leaf.der))
    )
    signed = instance._log_and_bundle(
        json.loads(parsed.body()),
        _message_signature(digest, signature),
        rekor="v2",
        media_type=BUNDLE_V03,
        leaf=leaf,
        identity=DEFAULT_EMAIL,
        issuer=DEFAULT_ISSUER,
        signature=signature,
        artifact=ARTIFACT,
        at=DEFAULT_TIME,
        tsa=None,
    )
    assert signed.body == parsed.body()
    verifier = Verifier(TrustedRoot.from_dict(signed.trusted_root))
    result = verifier.verify(
        json.dumps(signed.bundle),
        Artifact.from_bytes(ARTIFACT),
        IdentityPolicy(issuer=DEFAULT_ISSUER, identity=DEFAULT_EMAIL),
        now=NOW,
    )
    assert result.identity == signed.identity
    # The factory's own Rekor v2 body for a signature is the same bytes.
    plain = instance.sign_blob(ARTIFACT, rekor="v2", leaf=leaf)
    plain_doc = json.loads(plain.body)
    plain_sig = plain_doc["spec"]["hashedRekordV002"]["signature"]["content"]
    again = parse_request(
        _encode(
            _request(
                digest,
                base64.b64decode(plain_sig),
                "PKIX_ECDSA_P256_SHA_256",
                "x509Certificate",
                leaf.der,
            )
        )
    )
    assert again.body() == plain.body


@pytest.mark.parametrize("name", ["p384", "rsa2048"])
def test_certificate_key_type_comes_from_the_certificate(
    keys: dict[str, KeyCase], name: str
) -> None:
    case = keys[name]
    cert = _self_signed(case.key).public_bytes(serialization.Encoding.DER)
    digest = _digest(case.algorithm)
    document = _request(digest, _sign(case, digest), case.details.value, "x509Certificate", cert)
    parsed = parse_request(_encode(document))
    assert parsed.verifier_kind == "x509Certificate" and parsed.raw_bytes == cert
    # The same certificate declared as another scheme is refused.
    document["hashedRekordRequestV002"]["signature"]["verifier"]["keyDetails"] = (
        "PKIX_ECDSA_P256_SHA_256"
    )
    with pytest.raises(RequestError) as info:
        parse_request(_encode(document))
    assert info.value.slug in {"key-mismatch", "invalid-digest"}


def test_real_rekor_v2_bodies_are_reproduced_byte_for_byte() -> None:
    folder = require_vectors()
    for case in ("staging-rekor2-tsa-happy", "staging-rekor2-dsse-happy"):
        bundle = json.loads((folder / case / "bundle.sigstore.json").read_text())
        entry = bundle["verificationMaterial"]["tlogEntries"][0]
        logged = base64.b64decode(entry["canonicalizedBody"])
        spec = json.loads(logged)["spec"]["hashedRekordV002"]
        request = {
            "hashedRekordRequestV002": {
                "digest": spec["data"]["digest"],
                "signature": spec["signature"],
            }
        }
        parsed = parse_request(_encode(request))
        assert parsed.body() == logged, case


def test_sigstore_python_request_shape_is_accepted(instance: FakeSigstore) -> None:
    from sigstore._internal.rekor.client_v2 import RekorV2Client
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm as SigstoreHash

    leaf = instance.issue_leaf()
    digest = hashlib.sha256(ARTIFACT).digest()
    signature = leaf.key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    payload = RekorV2Client._build_hashed_rekord_request(
        Hashed(algorithm=SigstoreHash.SHA2_256, digest=digest), signature, leaf.cert
    )
    parsed = parse_request(json.dumps(payload).encode())
    assert parsed.raw_bytes == leaf.der and parsed.signature == signature


# -- v1 mode: hashedrekord 0.0.1 bodies ----------------------------------------------------


def test_v1_bodies_reproduce_real_rekor_v1_entries_byte_for_byte() -> None:
    # A v1-mode log given the request a client builds from a real Rekor v1
    # entry's fields records exactly the bytes Rekor v1 recorded.
    folder = require_vectors()
    for case in ("staging-v0.3-happy", "production-v0.2-github-wheel"):
        bundle = json.loads((folder / case / "bundle.sigstore.json").read_text())
        entry = bundle["verificationMaterial"]["tlogEntries"][0]
        assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}, case
        logged = base64.b64decode(entry["canonicalizedBody"])
        spec = json.loads(logged)["spec"]
        pem = base64.b64decode(spec["signature"]["publicKey"]["content"])
        der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        request = _request(
            bytes.fromhex(spec["data"]["hash"]["value"]),
            base64.b64decode(spec["signature"]["content"]),
            "PKIX_ECDSA_P256_SHA_256",
            "x509Certificate",
            der,
        )
        parsed = parse_request(_encode(request), v1=True)
        assert parsed.api_version == "0.0.1"
        assert parsed.body() == logged, case
        # The same request to a Rekor v2 log is the 0.0.2 body.
        assert json.loads(parse_request(_encode(request)).body())["apiVersion"] == "0.0.2"


def test_v1_certificate_body_is_the_fake_rekor_v1_body(instance: FakeSigstore) -> None:
    leaf = instance.issue_leaf()
    signed = instance.sign_blob(ARTIFACT, rekor="v1", leaf=leaf)
    logged = json.loads(signed.body)
    assert logged["apiVersion"] == "0.0.1"
    request = _request(
        hashlib.sha256(ARTIFACT).digest(),
        base64.b64decode(logged["spec"]["signature"]["content"]),
        "PKIX_ECDSA_P256_SHA_256",
        "x509Certificate",
        leaf.der,
    )
    parsed = parse_request(_encode(request), v1=True)
    assert parsed.body() == signed.body
    entry = parsed.entry()
    assert entry.body == signed.body and entry.identity == merkle.leaf_hash(signed.body)
    # And the verifier accepts the bundle around it, its time from the SET alone.
    result = Verifier(TrustedRoot.from_dict(signed.trusted_root)).verify(
        json.dumps(signed.bundle),
        Artifact.from_bytes(ARTIFACT),
        IdentityPolicy(issuer=DEFAULT_ISSUER, identity=DEFAULT_EMAIL),
        now=NOW,
    )
    assert [t.source for t in result.times] == ["tlog"]


@pytest.mark.parametrize("name", ["p256", "rsa2048"])
def test_v1_public_key_bodies_record_the_pem_key_and_verify(
    keys: dict[str, KeyCase], instance: FakeSigstore, name: str
) -> None:
    case = keys[name]
    parsed = parse_request(_encode(_key_request(case)), v1=True)
    pem = case.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert parsed.body() == canonical_json(
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": _digest(case.algorithm).hex()}},
                "signature": {
                    "content": b64encode(parsed.signature),
                    "publicKey": {"content": b64encode(pem)},
                },
            },
        }
    )
    _verify_managed(instance, case, _managed_bundle(instance, case, parsed))


@pytest.mark.parametrize("name", ["p384", "p521"])
def test_v1_refuses_digests_other_than_sha256(keys: dict[str, KeyCase], name: str) -> None:
    case = keys[name]
    document = _encode(_key_request(case))
    assert parse_request(document).algorithm is case.algorithm
    with pytest.raises(RequestError) as info:
        parse_request(document, v1=True)
    assert (info.value.status, info.value.slug) == (422, "unsupported-digest")
    assert f"signs {case.algorithm.value} digests" in info.value.detail
    with pytest.raises(ValueError, match="needs a SHA2_256 digest"):
        HashedRekordRequest(
            digest=_digest(case.algorithm),
            algorithm=case.algorithm,
            signature=b"sig",
            verifier_kind="publicKey",
            raw_bytes=_spki(case.key),
            key_details=case.details,
            v1=True,
        )


def test_entry_identity_is_the_leaf_hash(keys: dict[str, KeyCase]) -> None:
    parsed = parse_request(_encode(_key_request(keys["p256"])))
    entry = parsed.entry()
    assert entry.body == parsed.body()
    assert entry.identity == merkle.leaf_hash(entry.body)
    assert entry.body == canonical_json(json.loads(entry.body))


def test_snake_case_and_null_follow_proto3_json(keys: dict[str, KeyCase]) -> None:
    document = _key_request(keys["p256"])
    expected = parse_request(_encode(document)).body()
    inner = copy.deepcopy(document["hashedRekordRequestV002"])
    verifier = inner["signature"]["verifier"]
    verifier["key_details"] = verifier.pop("keyDetails")
    verifier["x509_certificate"] = None
    verifier["public_key"] = {"raw_bytes": verifier.pop("publicKey")["rawBytes"]}
    snake = {"hashed_rekord_request_v002": inner, "dsse_request_v002": None}
    assert parse_request(_encode(snake)).body() == expected
    both = {"hashedRekordRequestV002": inner, "hashed_rekord_request_v002": inner}
    with pytest.raises(RequestError) as info:
        parse_request(_encode(both))
    assert info.value.slug == "invalid-request" and "both" in info.value.detail


# -- refused requests --------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def _inner(doc: dict[str, Any]) -> dict[str, Any]:
    inner: dict[str, Any] = doc["hashedRekordRequestV002"]
    return inner


def _verifier(doc: dict[str, Any]) -> dict[str, Any]:
    verifier: dict[str, Any] = _inner(doc)["signature"]["verifier"]
    return verifier


def _set(path: tuple[str, ...], value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple[str, ...]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


REQ = "hashedRekordRequestV002"
SIG = (REQ, "signature")
VER = (*SIG, "verifier")
GARBAGE_CERT = b64encode(b"\x30\x82\x01\x00" + b"\x00" * 40)

# (id, mutation of a valid P-256 publicKey request, status, problem slug, text in detail)
MUTATIONS: list[tuple[str, Mutation, int, str, str]] = [
    ("not-an-object", lambda d: ["x"], 400, "invalid-request", "expected an object"),
    ("unknown-top-field", _set(("extra",), 1), 400, "invalid-request", "unknown field 'extra'"),
    ("missing-request", _delete((REQ,)), 400, "invalid-request", "missing"),
    ("unknown-inner-field", _set((REQ, "data"), {}), 400, "invalid-request", "unknown field"),
    ("digest-number", _set((REQ, "digest"), 5), 400, "invalid-request", "digest"),
    ("digest-bad-base64", _set((REQ, "digest"), "@@@@"), 400, "invalid-request", "base64"),
    (
        "digest-urlsafe-base64",
        _set((REQ, "digest"), "-_-_"),
        400,
        "invalid-request",
        "base64",
    ),
    ("digest-empty", _set((REQ, "digest"), ""), 400, "invalid-request", "digest: is empty"),
    (
        "digest-wrong-length",
        _set((REQ, "digest"), b64encode(b"\x01" * 20)),
        422,
        "invalid-digest",
        "20 bytes",
    ),
    (
        "digest-sha512-for-p256",
        _set((REQ, "digest"), b64encode(b"\x01" * 64)),
        422,
        "invalid-digest",
        "SHA2_256",
    ),
    ("missing-signature", _delete(SIG), 400, "invalid-request", "signature"),
    ("signature-string", _set(SIG, "abc"), 400, "invalid-request", "expected an object"),
    ("content-missing", _delete((*SIG, "content")), 400, "invalid-request", "content"),
    ("content-empty", _set((*SIG, "content"), ""), 400, "invalid-request", "content: is empty"),
    ("missing-verifier", _delete(VER), 400, "invalid-request", "verifier"),
    (
        "verifier-empty",
        _set(VER, {"keyDetails": "PKIX_ECDSA_P256_SHA_256"}),
        400,
        "invalid-request",
        "set one of",
    ),
    (
        "both-verifiers",
        _set((*VER, "x509Certificate"), {"rawBytes": GARBAGE_CERT}),
        400,
        "invalid-request",
        "not both",
    ),
    ("raw-bytes-missing", _set((*VER, "publicKey"), {}), 400, "invalid-request", "rawBytes"),
    (
        "raw-bytes-extra-field",
        _set((*VER, "publicKey", "keyId"), "x"),
        400,
        "invalid-request",
        "unknown field 'keyId'",
    ),
    ("key-details-missing", _delete((*VER, "keyDetails")), 400, "invalid-request", "keyDetails"),
    ("key-details-number", _set((*VER, "keyDetails"), 5), 400, "invalid-request", "string"),
    (
        "key-details-unknown",
        _set((*VER, "keyDetails"), "PKIX_NOPE"),
        400,
        "invalid-request",
        "unknown PublicKeyDetails",
    ),
    (
        "key-details-mismatch",
        _set((*VER, "keyDetails"), "PKIX_RSA_PKCS1V15_2048_SHA256"),
        422,
        "key-mismatch",
        "ECDSA secp256r1",
    ),
    (
        "key-details-ed25519",
        _set((*VER, "keyDetails"), "PKIX_ED25519"),
        422,
        "unsupported-key",
        "Ed25519",
    ),
    (
        "key-details-ed25519ph",
        _set((*VER, "keyDetails"), "PKIX_ED25519_PH"),
        422,
        "unsupported-key",
        "Ed25519ph",
    ),
    (
        "key-details-deprecated",
        _set((*VER, "keyDetails"), "PKIX_RSA_PKCS1V5"),
        422,
        "unsupported-key",
        "not accepted",
    ),
    (
        "public-key-garbage",
        _set((*VER, "publicKey", "rawBytes"), b64encode(b"not a key")),
        422,
        "invalid-public-key",
        "SubjectPublicKeyInfo",
    ),
    (
        "cert-garbage",
        lambda d: _verifier(d).update(
            {"x509Certificate": {"rawBytes": GARBAGE_CERT}, "publicKey": None}
        ),
        422,
        "invalid-certificate",
        "not a DER certificate",
    ),
    (
        "bad-signature",
        _set((*SIG, "content"), b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01")),
        422,
        "invalid-signature",
        "does not verify",
    ),
    (
        "signature-not-der",
        _set((*SIG, "content"), b64encode(b"\x00" * 64)),
        422,
        "invalid-signature",
        "does not verify",
    ),
    (
        "dsse-request",
        lambda d: {"dsseRequestV002": {"envelope": {}, "verifiers": []}},
        422,
        "unsupported-entry-type",
        "hashedRekordRequestV002",
    ),
    (
        "both-request-kinds",
        _set(("dsseRequestV002",), {}),
        400,
        "invalid-request",
        "exactly one",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "status", "slug", "text"),
    [pytest.param(m, s, t, x, id=i) for i, m, s, t, x in MUTATIONS],
)
def test_malformed_requests_are_refused(
    keys: dict[str, KeyCase], mutate: Mutation, status: int, slug: str, text: str
) -> None:
    document = _key_request(keys["p256"])
    replaced = mutate(document)
    if replaced is not None:
        document = replaced
    with pytest.raises(RequestError) as info:
        parse_request(_encode(document))
    error = info.value
    assert (error.status, error.slug) == (status, slug), error.detail
    assert error.type == PROBLEM_BASE + slug
    assert text in error.detail
    assert error.title == PROBLEM_TYPES[slug][1]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b'{"a":1,"a":2}', "duplicate JSON key 'a'"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"x": NaN}', "NaN"),
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
    ],
    ids=["empty", "truncated", "duplicate-keys", "not-utf8", "nan", "deep"],
)
def test_bad_json_is_400(data: bytes, text: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(data)
    assert (info.value.status, info.value.slug) == (400, "malformed-json")
    assert text in info.value.detail


def test_duplicate_keys_deep_inside_are_400(keys: dict[str, KeyCase]) -> None:
    text = _encode(_key_request(keys["p256"])).decode()
    doubled = text.replace('"keyDetails"', '"keyDetails": "PKIX_ED25519", "keyDetails"', 1)
    with pytest.raises(RequestError) as info:
        parse_request(doubled.encode())
    assert info.value.slug == "malformed-json"
    assert "duplicate JSON key 'keyDetails'" in info.value.detail


def test_too_large_is_413_before_parsing() -> None:
    with pytest.raises(RequestError) as info:
        parse_request(b" " * (MAX_REQUEST_BYTES + 1))
    assert (info.value.status, info.value.slug) == (413, "request-too-large")
    assert str(MAX_REQUEST_BYTES) in info.value.detail


def test_entry_too_large_for_an_entry_bundle(keys: dict[str, KeyCase]) -> None:
    # A request just under the request cap whose body exceeds the 65,535 bytes
    # a C2SP entry bundle can carry.
    case = keys["p256"]
    digest = _digest(case.algorithm)
    signature = _sign(case, digest)
    filler = 40_000
    for _ in range(5):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "big")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(case.key.public_key())
            .serial_number(1)
            .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
            .add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x00" * filler
                ),
                critical=False,
            )
            .sign(case.key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        data = json.dumps(
            _request(digest, signature, case.details.value, "x509Certificate", der),
            separators=(",", ":"),
        ).encode()
        if MAX_REQUEST_BYTES - 40 <= len(data) <= MAX_REQUEST_BYTES:
            break
        filler += (MAX_REQUEST_BYTES - 20 - len(data)) * 3 // 4
    assert MAX_REQUEST_BYTES - 40 <= len(data) <= MAX_REQUEST_BYTES
    with pytest.raises(RequestError) as info:
        parse_request(data)
    assert (info.value.status, info.value.slug) == (413, "request-too-large")
    assert "the limit is 65535" in info.value.detail


def test_rsa_1024_is_unsupported() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    case = KeyCase(small, PublicKeyDetails.PKIX_RSA_PKCS1V15_2048_SHA256, HashAlgorithm.SHA2_256)
    with pytest.raises(RequestError) as info:
        parse_request(_encode(_key_request(case)))
    assert (info.value.status, info.value.slug) == (422, "unsupported-key")
    assert "1024 bits is too small" in info.value.detail
    cert = _self_signed(small).public_bytes(serialization.Encoding.DER)
    digest = _digest(HashAlgorithm.SHA2_256)
    document = _request(digest, _sign(case, digest), case.details.value, "x509Certificate", cert)
    with pytest.raises(RequestError) as info:
        parse_request(_encode(document))
    assert info.value.slug == "unsupported-key"


def test_other_key_types_are_unsupported(keys: dict[str, KeyCase]) -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    digest = _digest(HashAlgorithm.SHA2_256)
    document = _request(digest, ed.sign(digest), "PKIX_ECDSA_P256_SHA_256", "publicKey", _spki(ed))
    with pytest.raises(RequestError) as info:
        parse_request(_encode(document))
    assert info.value.slug == "unsupported-key" and "Ed25519" in info.value.detail
    p224 = ec.generate_private_key(ec.SECP224R1())
    document = _request(
        digest,
        p224.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
        "PKIX_ECDSA_P256_SHA_256",
        "publicKey",
        _spki(p224),
    )
    with pytest.raises(RequestError) as info:
        parse_request(_encode(document))
    assert info.value.slug == "unsupported-key" and "secp224r1" in info.value.detail


def test_non_canonical_key_encoding_is_refused(keys: dict[str, KeyCase]) -> None:
    document = _key_request(keys["p256"])
    raw = _spki(keys["p256"].key) + b"\x00"
    _verifier(document)["publicKey"]["rawBytes"] = b64encode(raw)
    with pytest.raises(RequestError) as info:
        parse_request(_encode(document))
    assert info.value.slug == "invalid-public-key"


def test_signature_over_another_digest_is_refused(keys: dict[str, KeyCase]) -> None:
    document = _key_request(keys["p384"])
    _inner(document)["digest"] = b64encode(_digest(HashAlgorithm.SHA2_384, b"other"))
    with pytest.raises(RequestError) as info:
        parse_request(_encode(document))
    assert (info.value.status, info.value.slug) == (422, "invalid-signature")


def test_problem_documents_are_one_line_and_bounded() -> None:
    document = {"hashedRekordRequestV002": {"x" * 5000 + "\n": 1}}
    with pytest.raises(RequestError) as info:
        parse_request(_encode(document))
    problem = info.value.to_problem()
    assert set(problem) == {"type", "title", "status", "detail"}
    assert problem["status"] == 400 and "\n" not in problem["detail"]
    assert len(problem["detail"]) <= 300
    assert info.value.code == "invalid-request" and info.value.exit_code == 2


def test_every_problem_type_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[5] / "docs" / "formats" / "log.md").read_text()
    for slug, (status, _title) in PROBLEM_TYPES.items():
        assert f"`{slug}`" in doc, slug
        assert str(status) in doc


# -- SET payload ---------------------------------------------------------------------------


def test_set_payload_matches_the_verifier() -> None:
    body = b'{"apiVersion":"0.0.2"}'
    log_id = hashlib.sha256(b"log").digest()
    payload = set_payload(body, 1_750_000_000, log_id, 42)
    entry = TransparencyLogEntry.from_dict(
        {
            "logIndex": "42",
            "logId": {"keyId": b64encode(log_id)},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
            "integratedTime": "1750000000",
            "canonicalizedBody": b64encode(body),
        }
    )
    assert payload == _set_payload(entry)
    assert payload == canonical_json(
        {
            "body": b64encode(body),
            "integratedTime": 1_750_000_000,
            "logID": log_id.hex(),
            "logIndex": 42,
        }
    )


def test_set_payload_signature_verifies_as_a_set(instance: FakeSigstore) -> None:
    # The fake v1 log signs exactly these bytes; a SET made with set_payload is
    # accepted by the verifier in place of the fake's own.
    signed = instance.sign_blob(ARTIFACT, rekor="v1")
    entry = signed.entry
    payload = set_payload(
        base64.b64decode(entry["canonicalizedBody"]),
        int(entry["integratedTime"]),
        base64.b64decode(entry["logId"]["keyId"]),
        int(entry["logIndex"]),
    )
    key = instance.rekor_v1.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    bundle = signed.copy()
    bundle["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"] = {
        "signedEntryTimestamp": b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256())))
    }
    verifier = Verifier(TrustedRoot.from_dict(signed.trusted_root))
    result = verifier.verify(
        json.dumps(bundle),
        Artifact.from_bytes(ARTIFACT),
        IdentityPolicy(issuer=signed.issuer, identity=signed.identity),
        now=NOW,
    )
    assert result.times[0].source == "tlog"
    # A SET over another index is refused.
    bad = copy.deepcopy(bundle)
    wrong = set_payload(
        base64.b64decode(entry["canonicalizedBody"]),
        int(entry["integratedTime"]),
        base64.b64decode(entry["logId"]["keyId"]),
        int(entry["logIndex"]) + 1,
    )
    bad["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"] = {
        "signedEntryTimestamp": b64encode(key.sign(wrong, ec.ECDSA(hashes.SHA256())))
    }
    with pytest.raises(VerificationError) as info:
        verifier.verify(
            json.dumps(bad),
            Artifact.from_bytes(ARTIFACT),
            IdentityPolicy(issuer=signed.issuer, identity=signed.identity),
            now=NOW,
        )
    assert info.value.check is Check.TLOG_SET


@pytest.mark.parametrize(("time", "index"), [(-1, 0), (0, -1), (2**53 + 1, 0), (0, 2**53 + 1)])
def test_set_payload_range(time: int, index: int) -> None:
    with pytest.raises(ValueError, match="2\\^53"):
        set_payload(b"x", time, b"\x00" * 32, index)


def test_module_exports() -> None:
    assert set(hashedrekord.__all__) >= {"parse_request", "RequestError", "set_payload"}
