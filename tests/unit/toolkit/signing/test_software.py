"""Software signers: key kinds, schemes, PEM files with passphrases, load_signer."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from toolkit.errors import EnvironmentSetupError, FormatError, UsageError
from toolkit.signing import KeyAlgorithm, Scheme, SoftwareSigner, load_signer, spki_sha256
from toolkit.signing._crypto import verify_signature

# Generated once: RSA keys take a moment.
SIGNERS = {algorithm: SoftwareSigner.generate(algorithm) for algorithm in KeyAlgorithm}


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_generate_uses_the_default_scheme(algorithm: KeyAlgorithm) -> None:
    signer = SIGNERS[algorithm]
    assert signer.algorithm is algorithm
    assert signer.scheme is Scheme.default_for(algorithm)
    assert signer.key_id == spki_sha256(signer.public_key)
    data = b"message"
    assert verify_signature(signer.public_key, signer.scheme, signer.sign(data), data)


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_pem_round_trip(algorithm: KeyAlgorithm) -> None:
    signer = SIGNERS[algorithm]
    pem = signer.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = SoftwareSigner.from_pem(pem)
    assert again.key_id == signer.key_id
    assert again.scheme is signer.scheme


def test_pem_round_trip_with_passphrase(tmp_path: Path) -> None:
    signer = SIGNERS[KeyAlgorithm.ECDSA_P384]
    pem = signer.to_pem(b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert SoftwareSigner.from_pem(pem, b"correct horse").key_id == signer.key_id
    path = tmp_path / "key.pem"
    path.write_bytes(pem)
    assert SoftwareSigner.from_file(path, b"correct horse").key_id == signer.key_id
    assert load_signer(f"file:{path}", passphrase=b"correct horse").key_id == signer.key_id


def test_passphrase_errors() -> None:
    plain = SIGNERS[KeyAlgorithm.ED25519].to_pem()
    encrypted = SIGNERS[KeyAlgorithm.ED25519].to_pem(b"right")
    with pytest.raises(UsageError, match="encrypted and no passphrase was given"):
        SoftwareSigner.from_pem(encrypted)
    with pytest.raises(UsageError, match="wrong passphrase"):
        SoftwareSigner.from_pem(encrypted, b"wrong")
    with pytest.raises(UsageError, match="not encrypted"):
        SoftwareSigner.from_pem(plain, b"right")


def test_traditional_pem_forms_load() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert SoftwareSigner.from_pem(pem).scheme is Scheme.ECDSA_P256_SHA256


@pytest.mark.parametrize(
    "data",
    [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
)
def test_garbage_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError, match="not a PEM private key"):
        SoftwareSigner.from_pem(data)


def test_unsupported_keys() -> None:
    with pytest.raises(UsageError, match="unsupported EC curve secp521r1"):
        SoftwareSigner(ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(UsageError, match="unsupported RSA key size 2048 bits"):
        SoftwareSigner(rsa.generate_private_key(65537, 2048))


def test_scheme_must_fit_the_key() -> None:
    key = SIGNERS[KeyAlgorithm.ED25519].private_key()
    with pytest.raises(UsageError, match="needs a ecdsa-p256 key, not ed25519"):
        SoftwareSigner(key, Scheme.ECDSA_P256_SHA256)
    rsa_key = SIGNERS[KeyAlgorithm.RSA_3072].private_key()
    with pytest.raises(UsageError, match="needs a rsa-4096 key, not rsa-3072"):
        SoftwareSigner(rsa_key, Scheme.RSA_PSS_4096_SHA256)


def test_rsa_pss_and_pkcs1_are_different_schemes() -> None:
    key = SIGNERS[KeyAlgorithm.RSA_3072].private_key()
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = SoftwareSigner(key, Scheme.RSA_PSS_3072_SHA256)
    signature = pss.sign(b"data")
    public = key.public_key()
    public.verify(
        signature, b"data", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()
    )
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"data", padding.PKCS1v15(), hashes.SHA256())
    assert pss.key_id == SIGNERS[KeyAlgorithm.RSA_3072].key_id


def test_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentSetupError, match="cannot read key file") as caught:
        SoftwareSigner.from_file(tmp_path / "absent.pem")
    assert caught.value.exit_code == 3


def test_load_signer_schemes(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(SIGNERS[KeyAlgorithm.RSA_4096].to_pem())
    signer = load_signer(f"file://{path}", scheme=Scheme.RSA_PSS_4096_SHA256)
    assert signer.scheme is Scheme.RSA_PSS_4096_SHA256
    with pytest.raises(FormatError, match="must start with 'pkcs11:' or 'file:'"):
        load_signer(str(path))


def test_private_key_is_the_key_itself() -> None:
    signer = SIGNERS[KeyAlgorithm.ECDSA_P256]
    assert SoftwareSigner(signer.private_key()).key_id == signer.key_id
    assert "key_id=" in repr(signer)
    assert "PRIVATE" not in repr(signer)
