from __future__ import annotations

import pytest

from toolkit.errors import UsageError
from toolkit.verify import Artifact, IdentityPolicy


def test_identity_policy_needs_exactly_one_identity_form() -> None:
    with pytest.raises(UsageError, match="exactly one"):
        IdentityPolicy(issuer="https://i")
    with pytest.raises(UsageError, match="exactly one"):
        IdentityPolicy(issuer="https://i", identity="a", identity_regex="a")
    with pytest.raises(UsageError, match="expected OIDC issuer"):
        IdentityPolicy(issuer="", identity="a")
    with pytest.raises(UsageError, match="regular expression"):
        IdentityPolicy(issuer="https://i", identity_regex="(")
    with pytest.raises(UsageError, match="dotted object identifier"):
        IdentityPolicy(issuer="https://i", identity="a", extensions={"not-an-oid": "x"})
    assert IdentityPolicy(issuer="https://i", identity_regex="a.*").description == "/a.*/"


def test_artifact_digest_forms() -> None:
    digest = "sha256:" + "ab" * 32
    assert Artifact.looks_like_digest(digest)
    assert Artifact.from_digest(digest).sha256 == bytes.fromhex("ab" * 32)
    assert Artifact.from_digest(digest.upper().replace("SHA256", "sha256")).sha256 == bytes.fromhex(
        "ab" * 32
    )
    for bad in ["sha256:abc", "sha512:" + "ab" * 64, "ab" * 32, "sha256:" + "zz" * 32]:
        assert not Artifact.looks_like_digest(bad)
        with pytest.raises(UsageError, match="sha256:<64 hex digits>"):
            Artifact.from_digest(bad)
    assert Artifact.from_bytes(b"abc").sha256.hex().startswith("ba7816bf")
