"""The securesystemslib adapter: python-tuf signs and verifies with airseal signers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.signer import SSlibKey
from tuf.api.metadata import Metadata, Root

from toolkit.errors import UsageError
from toolkit.signing import KeyAlgorithm, Scheme, SoftwareSigner
from toolkit.signing.tuf import TufSigner, tuf_key


@pytest.mark.parametrize(
    "algorithm", [KeyAlgorithm.ED25519, KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384]
)
def test_root_metadata_threshold(algorithm: KeyAlgorithm) -> None:
    signers = [TufSigner(SoftwareSigner.generate(algorithm)) for _ in range(3)]
    root = Root(expires=datetime(2030, 1, 1, tzinfo=UTC))
    for signer in signers:
        root.add_key(signer.public_key, "root")
    root.roles["root"].threshold = 2
    metadata = Metadata(root)
    for signer in signers[:2]:
        metadata.sign(signer, append=True)
    # python-tuf checks the threshold with securesystemslib's own verifier.
    root.verify_delegate("root", metadata.signed_bytes, metadata.signatures)
    assert len(metadata.signatures) == 2


def test_tuf_key() -> None:
    signer = SoftwareSigner.generate(KeyAlgorithm.ED25519)
    key = tuf_key(signer.public_key)
    assert (key.keytype, key.scheme) == ("ed25519", "ed25519")
    assert isinstance(signer.public_key, ed25519.Ed25519PublicKey)
    assert key.keyval["public"] == signer.public_key.public_bytes_raw().hex()
    rsa_signer = SoftwareSigner.generate(KeyAlgorithm.RSA_3072, Scheme.RSA_PSS_3072_SHA256)
    assert tuf_key(rsa_signer.public_key, rsa_signer.scheme).scheme == "rsassa-pss-sha256"
    assert tuf_key(rsa_signer.public_key).scheme == "rsa-pkcs1v15-sha256"
    with pytest.raises(UsageError, match="does not fit"):
        tuf_key(signer.public_key, Scheme.ECDSA_P256_SHA256)


def test_key_must_match_the_signer() -> None:
    signer = SoftwareSigner.generate(KeyAlgorithm.ED25519)
    other = tuf_key(SoftwareSigner.generate(KeyAlgorithm.ED25519).public_key)
    with pytest.raises(UsageError, match="is not the public key of this signer"):
        TufSigner(signer, other)
    # A key from metadata, with its own key ID, is kept as given.
    own = tuf_key(signer.public_key)
    renamed = SSlibKey("custom-id", own.keytype, own.scheme, own.keyval)
    assert TufSigner(signer, renamed).sign(b"x").keyid == "custom-id"


def test_from_priv_key_uri(tmp_path: Path) -> None:
    signer = SoftwareSigner.generate(KeyAlgorithm.RSA_3072, Scheme.RSA_PSS_3072_SHA256)
    path = tmp_path / "key.pem"
    path.write_bytes(signer.to_pem())
    key = tuf_key(signer.public_key, signer.scheme)
    tuf_signer = TufSigner.from_priv_key_uri(f"file:{path}", key)
    assert tuf_signer.signer.scheme is Scheme.RSA_PSS_3072_SHA256
    key.verify_signature(tuf_signer.sign(b"payload"), b"payload")
