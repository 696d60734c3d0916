"""The Signer contract, run identically over software keys and real SoftHSM keys.

Every case is parametrised by (backend, scheme): ``software`` keys live in
memory, ``softhsm`` keys are generated on a SoftHSM token of the session
store (``tests/support/hsm.py``) and used through python-pkcs11. No mocks.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.hsm import TestHSM
from toolkit.errors import UsageError
from toolkit.signing import KeyAlgorithm, Scheme, Signer, SoftwareSigner
from toolkit.signing._crypto import key_algorithm_of, rsa_padding, verify_signature
from toolkit.signing.pkcs11 import Pkcs11Signer, key_attributes
from toolkit.signing.tuf import TufSigner, tuf_key

SCHEMES = [
    Scheme.ECDSA_P256_SHA256,
    Scheme.ECDSA_P384_SHA384,
    Scheme.ED25519,
    Scheme.RSA_PKCS1V15_3072_SHA256,
    Scheme.RSA_PSS_3072_SHA256,
    # RSA-4096 keygen costs SoftHSM about a second: one scheme is enough.
    Scheme.RSA_PKCS1V15_4096_SHA256,
]
BACKENDS = ["software", "softhsm"]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airseal contract")])

_software: dict[Scheme, SoftwareSigner] = {}


@pytest.fixture(
    params=[(b, s) for b in BACKENDS for s in SCHEMES],
    ids=lambda p: f"{p[0]}-{p[1].value}",
)
def case(request: pytest.FixtureRequest) -> tuple[str, Signer]:
    backend, scheme = request.param
    if backend == "software":
        if scheme not in _software:
            _software[scheme] = SoftwareSigner.generate(scheme.key_algorithm, scheme)
        return backend, _software[scheme]
    hsm: TestHSM = request.getfixturevalue("softhsm")
    return backend, hsm.open(scheme.key_algorithm, scheme)


@pytest.fixture
def signer(case: tuple[str, Signer]) -> Signer:
    return case[1]


def _verify_independently(signer: Signer, signature: bytes, data: bytes) -> None:
    """Verify with cryptography directly, not through airseal's helper."""
    public = signer.public_key
    hash_algorithm = signer.scheme.hash
    if isinstance(public, ed25519.Ed25519PublicKey):
        public.verify(signature, data)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        assert hash_algorithm is not None
        public.verify(signature, data, ec.ECDSA(hash_algorithm))
    else:
        assert hash_algorithm is not None
        pad: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(hash_algorithm), 32)
            if signer.scheme.pss
            else padding.PKCS1v15()
        )
        public.verify(signature, data, pad, hash_algorithm)


def test_is_a_signer(signer: Signer) -> None:
    assert isinstance(signer, Signer)
    assert key_algorithm_of(signer.public_key) is signer.scheme.key_algorithm


def test_signature_verifies_with_the_public_key(signer: Signer) -> None:
    data = b"airseal contract \x00\xff" * 50
    signature = signer.sign(data)
    _verify_independently(signer, signature, data)
    assert verify_signature(signer.public_key, signer.scheme, signature, data)
    assert not verify_signature(signer.public_key, signer.scheme, signature, data + b"!")


def test_signature_encoding(signer: Signer) -> None:
    signature = signer.sign(b"encoding")
    public = signer.public_key
    if isinstance(public, ed25519.Ed25519PublicKey):
        assert len(signature) == 64
    elif isinstance(public, ec.EllipticCurvePublicKey):
        r, s = decode_dss_signature(signature)  # DER, not raw r||s
        assert r > 0
        assert s > 0
    else:
        assert len(signature) == public.key_size // 8


def test_empty_message(signer: Signer) -> None:
    _verify_independently(signer, signer.sign(b""), b"")


def test_key_id_is_sha256_of_the_spki(signer: Signer) -> None:
    spki = signer.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert signer.key_id == hashlib.sha256(spki).hexdigest()


BuilderHash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512


def _rsa_padding(
    signer: Signer, hash_algorithm: hashes.HashAlgorithm
) -> padding.PSS | padding.PKCS1v15:
    if signer.scheme.pss:
        return padding.PSS(padding.MGF1(hash_algorithm), padding.PSS.DIGEST_LENGTH)
    return padding.PKCS1v15()


def _builder_args(
    signer: Signer, hash_algorithm: hashes.HashAlgorithm | None
) -> tuple[BuilderHash | None, padding.PSS | padding.PKCS1v15 | None]:
    """The hash and RSA padding arguments of the x509 builders' ``sign``."""
    if isinstance(signer.public_key, ed25519.Ed25519PublicKey):
        return None, None
    assert isinstance(hash_algorithm, hashes.SHA256 | hashes.SHA384 | hashes.SHA512)
    if isinstance(signer.public_key, rsa.RSAPublicKey):
        return hash_algorithm, _rsa_padding(signer, hash_algorithm)
    return hash_algorithm, None


def _certificate(signer: Signer, hash_algorithm: hashes.HashAlgorithm | None) -> x509.Certificate:
    key = signer.private_key()
    hash_algorithm, rsa_pad = _builder_args(signer, hash_algorithm)
    return (
        x509.CertificateBuilder()
        .subject_name(NAME)
        .issuer_name(NAME)
        .public_key(signer.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hash_algorithm, rsa_padding=rsa_pad)
    )


def test_certificate_builder(signer: Signer) -> None:
    certificate = _certificate(signer, signer.scheme.hash)
    certificate.verify_directly_issued_by(certificate)
    assert certificate.public_key() == signer.public_key


@pytest.mark.parametrize("other_hash", [hashes.SHA384(), hashes.SHA512()], ids=["sha384", "sha512"])
def test_certificate_with_another_hash(signer: Signer, other_hash: hashes.HashAlgorithm) -> None:
    # The builder, not the scheme, picks the certificate's hash.
    certificate = _certificate(signer, other_hash)
    certificate.verify_directly_issued_by(certificate)
    if not isinstance(signer.public_key, ed25519.Ed25519PublicKey):
        assert certificate.signature_hash_algorithm is not None
        assert certificate.signature_hash_algorithm.name == other_hash.name


def test_csr_builder(signer: Signer) -> None:
    key = signer.private_key()
    hash_algorithm, rsa_pad = _builder_args(signer, hashes.SHA256())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(NAME)
        .sign(key, hash_algorithm, rsa_padding=rsa_pad)
    )
    assert csr.is_signature_valid
    assert csr.public_key() == signer.public_key


def test_crl_builder(signer: Signer) -> None:
    key = signer.private_key()
    hash_algorithm, rsa_pad = _builder_args(signer, hashes.SHA384())
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(NAME)
        .last_update(NOW)
        .next_update(NOW + timedelta(days=7))
        .sign(key, hash_algorithm, rsa_padding=rsa_pad)
    )
    assert crl.is_signature_valid(signer.public_key)


def test_prehashed_signing(signer: Signer) -> None:
    key = signer.private_key()
    data = b"prehashed"
    digest = hashlib.sha256(data).digest()
    prehashed = Prehashed(hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(digest, ec.ECDSA(prehashed))
        key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        pad = rsa_padding(signer.scheme)
        signature = key.sign(digest, pad, prehashed)
        key.public_key().verify(signature, data, pad, hashes.SHA256())
    else:
        # Ed25519 signs whole messages: no scheme of airseal pre-hashes for it.
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        assert signer.scheme.hash is None


def test_copy_and_deepcopy(signer: Signer) -> None:
    key = signer.private_key()
    for clone in (copy.copy(key), copy.deepcopy(key)):
        assert clone.public_key() == signer.public_key
        certificate = _certificate_with(clone, signer)
        certificate.verify_directly_issued_by(certificate)


def _certificate_with(key: object, signer: Signer) -> x509.Certificate:
    class _Wrapped:
        scheme = signer.scheme
        public_key = signer.public_key

        def private_key(self) -> object:
            return key

    return _certificate(_Wrapped(), signer.scheme.hash)  # type: ignore[arg-type]


def test_private_bytes_only_for_software_keys(case: tuple[str, Signer]) -> None:
    backend, signer = case
    key = signer.private_key()

    def export() -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    if backend == "software":
        assert b"PRIVATE KEY" in export()
        return
    with pytest.raises(UsageError, match="never leaves the token"):
        export()
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        with pytest.raises(UsageError, match="private numbers"):
            key.private_numbers()


def _race(work: Callable[[int], None], threads: int = 8) -> None:
    """Run ``work(0)`` … ``work(threads - 1)`` in threads released at once, and wait for all."""
    # The barrier lines the threads up so that their PKCS#11 calls overlap.
    barrier = threading.Barrier(threads)

    def start(thread: int) -> None:
        barrier.wait()
        work(thread)

    running = [threading.Thread(target=start, args=(n,)) for n in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()


def test_concurrent_signing_from_threads(signer: Signer) -> None:
    # 8 threads, 200 signatures. python-pkcs11 + SoftHSM segfault without
    # the process-wide lock; with it every signature must be valid.
    failures: list[str] = []

    def work(thread: int) -> None:
        for i in range(25):
            data = f"thread {thread} message {i}".encode()
            try:
                signature = signer.sign(data)
                if not verify_signature(signer.public_key, signer.scheme, signature, data):
                    failures.append(f"{thread}/{i}: invalid")
            except Exception as exc:  # collected and reported below
                failures.append(f"{thread}/{i}: {exc!r}")

    _race(work)
    assert failures == []


def test_tuf_adapter(signer: Signer) -> None:
    tuf_signer = TufSigner(signer)
    payload = b'{"signed": "canonical bytes"}'
    signature = tuf_signer.sign(payload)
    key = tuf_key(signer.public_key, signer.scheme)
    assert signature.keyid == key.keyid == tuf_signer.public_key.keyid
    key.verify_signature(signature, payload)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.value)
def test_generated_token_key_attributes(softhsm: TestHSM, scheme: Scheme) -> None:
    # Token keys only: software keys have no PKCS#11 attributes.
    signer = softhsm.open(scheme.key_algorithm, scheme)
    assert isinstance(signer, Pkcs11Signer)
    attributes = key_attributes(signer)
    for name in ("SENSITIVE", "ALWAYS_SENSITIVE", "NEVER_EXTRACTABLE", "LOCAL", "SIGN", "TOKEN"):
        assert attributes[name] is True, name
    for name in ("EXTRACTABLE", "DERIVE", "DECRYPT", "UNWRAP", "MODIFIABLE", "COPYABLE"):
        assert attributes.get(name, False) is False, name


def test_mixed_token_keys_from_threads(softhsm: TestHSM) -> None:
    """Keys of every type on one token, opened and used at once from 8 threads.

    Looking keys up while other threads sign is what crashes python-pkcs11 +
    SoftHSM without the process-wide lock (double free or segfault within a
    few hundred calls); with it, all 200 signatures must be valid.
    """
    failures: list[str] = []

    def work(thread: int) -> None:
        signer: Pkcs11Signer | None = None
        for i in range(25):
            scheme = SCHEMES[(thread + i) % len(SCHEMES)]
            data = f"{thread}:{i}".encode()
            try:
                if signer is None or i % 5 == 0 or signer.scheme is not scheme:
                    signer = softhsm.open(scheme.key_algorithm, scheme)
                if not verify_signature(signer.public_key, signer.scheme, signer.sign(data), data):
                    failures.append(f"{thread}/{i}: invalid")
            except Exception as exc:  # collected and reported below
                failures.append(f"{thread}/{i}: {exc!r}")

    for scheme in SCHEMES:  # generate the keys before the threads race
        softhsm.contract_key(scheme.key_algorithm)
    _race(work)
    assert failures == []


def test_algorithms_cover_every_key_kind() -> None:
    assert {s.key_algorithm for s in SCHEMES} == set(KeyAlgorithm)
