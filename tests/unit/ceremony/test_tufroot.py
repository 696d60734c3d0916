"""The ceremony's 1.root.json: built, signed M of N and verified with python-tuf."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from securesystemslib.signer import CryptoSigner, Key, Signature, Signer, SSlibKey
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import Updater

from ceremony.errors import CeremonyError, TufRootError
from ceremony.tufroot import RootReport, build_root, sign_root, to_tuf_key, verify_root

EXPIRES = datetime(2027, 12, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Keys:
    custodians: tuple[CryptoSigner, ...]
    online: CryptoSigner


@pytest.fixture(scope="module")
def keys() -> Keys:
    # One custodian per supported key kind.
    return Keys(
        custodians=(
            CryptoSigner(ed25519.Ed25519PrivateKey.generate()),
            CryptoSigner(ec.generate_private_key(ec.SECP256R1())),
            CryptoSigner(ec.generate_private_key(ec.SECP384R1())),
        ),
        online=CryptoSigner(ed25519.Ed25519PrivateKey.generate()),
    )


def _root_arguments(keys: Keys, **changes: Any) -> dict[str, Any]:
    """``build_root``'s arguments: the custodians 2 of 3 for root, the online key elsewhere."""
    online = [keys.online.public_key]
    arguments: dict[str, Any] = {
        "root_keys": [s.public_key for s in keys.custodians],
        "root_threshold": 2,
        "targets_keys": online,
        "targets_threshold": 1,
        "snapshot_keys": online,
        "snapshot_threshold": 1,
        "timestamp_keys": online,
        "timestamp_threshold": 1,
        "expires": EXPIRES,
        "consistent_snapshot": True,
    }
    return arguments | changes


def _root(keys: Keys, threshold: int, n: int = 3) -> Metadata[Root]:
    return build_root(
        **_root_arguments(
            keys,
            root_keys=[s.public_key for s in keys.custodians[:n]],
            root_threshold=threshold,
        )
    )


def _signed(keys: Keys, threshold: int, signers: Sequence[Signer], n: int = 3) -> bytes:
    return sign_root(_root(keys, threshold, n), signers)


def _python_tuf_trusts(data: bytes, tmp_path: Path) -> None:
    # The Updater verifies a bootstrap root by itself at construction; no network.
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    Updater(str(state), "https://tuf.airseal.invalid/", bootstrap=data)


def test_to_tuf_key_schemes() -> None:
    cases: list[tuple[ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey, str, str]] = [
        (ed25519.Ed25519PrivateKey.generate().public_key(), "ed25519", "ed25519"),
        (ec.generate_private_key(ec.SECP256R1()).public_key(), "ecdsa", "ecdsa-sha2-nistp256"),
        (ec.generate_private_key(ec.SECP384R1()).public_key(), "ecdsa", "ecdsa-sha2-nistp384"),
    ]
    for public_key, keytype, scheme in cases:
        key = to_tuf_key(public_key)
        assert (key.keytype, key.scheme) == (keytype, scheme)
        assert to_tuf_key(key) is key


def test_build_root_shape(keys: Keys) -> None:
    md = _root(keys, threshold=2)
    root = md.signed
    assert root.version == 1
    assert root.expires == EXPIRES
    assert root.consistent_snapshot is True
    assert md.signatures == {}
    assert root.roles["root"].threshold == 2
    assert root.roles["root"].keyids == [s.public_key.keyid for s in keys.custodians]
    for role in ("targets", "snapshot", "timestamp"):
        assert root.roles[role].keyids == [keys.online.public_key.keyid]
        assert root.roles[role].threshold == 1
    # Cryptography keys are accepted too and give the same key ids.
    key = ed25519.Ed25519PrivateKey.generate()
    md2 = build_root(
        root_keys=[key.public_key()],
        root_threshold=1,
        targets_keys=[key.public_key()],
        targets_threshold=1,
        snapshot_keys=[key.public_key()],
        snapshot_threshold=1,
        timestamp_keys=[key.public_key()],
        timestamp_threshold=1,
        expires=EXPIRES.astimezone(timezone(timedelta(hours=2))) + timedelta(microseconds=5),
        consistent_snapshot=False,
    )
    assert md2.signed.roles["root"].keyids == [SSlibKey.from_crypto(key.public_key()).keyid]
    assert md2.signed.expires == EXPIRES
    assert md2.signed.consistent_snapshot is False


def test_m_of_n_signed_root_verifies_and_python_tuf_trusts_it(keys: Keys, tmp_path: Path) -> None:
    data = _signed(keys, 2, keys.custodians[:2])
    report = verify_root(data)
    assert isinstance(report, RootReport)
    assert report.version == 1
    assert report.threshold == 2
    assert report.signatures == 2
    assert report.keyids == tuple(s.public_key.keyid for s in keys.custodians)
    assert report.signed_keyids == report.keyids[:2]
    assert report.expires == "2027-12-01T00:00:00Z"
    assert report.expires_at == EXPIRES
    assert report.consistent_snapshot is True
    assert [r.name for r in report.roles] == ["root", "targets", "snapshot", "timestamp"]
    assert report.to_dict()["roles"]["targets"] == {
        "keyids": [keys.online.public_key.keyid],
        "threshold": 1,
    }
    json.dumps(report.to_dict())
    _python_tuf_trusts(data, tmp_path)


def test_all_custodians_may_sign(keys: Keys, tmp_path: Path) -> None:
    data = _signed(keys, 2, keys.custodians)
    assert verify_root(data).signatures == 3
    _python_tuf_trusts(data, tmp_path)


def test_the_shipped_bytes_are_what_was_signed(keys: Keys) -> None:
    md = _root(keys, 2)
    data = sign_root(md, keys.custodians[:2])
    assert data == md.to_bytes(JSONSerializer(compact=False))
    loaded = Metadata[Root].from_bytes(data)
    assert loaded.signed_bytes == md.signed_bytes
    # Indented JSON, so that custodians can read what they signed.
    assert data.startswith(b'{\n "signatures": [')


@pytest.mark.parametrize(("threshold", "n"), [(2, 3), (2, 2), (3, 3)])
def test_m_minus_one_signatures_fail_clearly(
    keys: Keys, tmp_path: Path, threshold: int, n: int
) -> None:
    data = _signed(keys, threshold, keys.custodians[: threshold - 1], n)
    with pytest.raises(
        TufRootError,
        match=rf"^1\.root\.json: {threshold - 1} of {threshold} required root signatures$",
    ) as info:
        verify_root(data)
    assert isinstance(info.value, CeremonyError)
    assert info.value.hint == "1 more custodian(s) must sign"

    # python-tuf agrees, at the Metadata API and at the Updater.
    md = Metadata[Root].from_bytes(data)
    with pytest.raises(UnsignedMetadataError):
        md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    with pytest.raises(UnsignedMetadataError):
        _python_tuf_trusts(data, tmp_path)


def test_an_unsigned_root_fails(keys: Keys) -> None:
    with pytest.raises(TufRootError, match="0 of 2 required root signatures"):
        verify_root(_signed(keys, 2, []))


def test_a_tampered_root_names_the_broken_signature(keys: Keys, tmp_path: Path) -> None:
    data = _signed(keys, 2, keys.custodians[:2])
    doc = json.loads(data)
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"
    tampered = json.dumps(doc).encode()
    keyid = keys.custodians[0].public_key.keyid
    with pytest.raises(
        TufRootError, match=rf"the signature by root key {keyid[:16]}… does not verify"
    ):
        verify_root(tampered, name="root.json")
    with pytest.raises(UnsignedMetadataError):
        _python_tuf_trusts(tampered, tmp_path)


def test_a_signature_by_a_non_root_key_is_named(keys: Keys) -> None:
    md = _root(keys, 1)
    md.sign(keys.custodians[0], append=True)
    md.sign(keys.online, append=True)  # an online key, not a root key
    with pytest.raises(TufRootError, match="which is not a root key"):
        verify_root(md.to_bytes())


def test_sign_root_refuses_a_key_that_is_not_a_root_key(keys: Keys) -> None:
    md = _root(keys, 2)
    with pytest.raises(TufRootError, match="is not one of the root's keys"):
        sign_root(md, [keys.online])


class _FaultySigner(Signer):
    """A securesystemslib signer whose signatures do not verify (a faulty token)."""

    def __init__(self, inner: CryptoSigner) -> None:
        self._inner = inner

    @property
    def public_key(self) -> Key:
        return self._inner.public_key

    @classmethod
    def from_priv_key_uri(
        cls, priv_key_uri: str, public_key: Key, secrets_handler: Any = None
    ) -> Any:
        raise NotImplementedError

    def sign(self, payload: bytes) -> Signature:
        return self._inner.sign(payload + b"!")


def test_a_faulty_signer_is_rejected_before_use(keys: Keys) -> None:
    md = _root(keys, 2)
    with pytest.raises(TufRootError, match="returned a root signature that does not verify"):
        sign_root(md, [keys.custodians[0], _FaultySigner(keys.custodians[1])])
    # The bad signature was dropped; the good one stays.
    assert list(md.signatures) == [keys.custodians[0].public_key.keyid]


def test_expiry_is_checked_against_a_given_time(keys: Keys) -> None:
    data = _signed(keys, 1, keys.custodians[:1])
    assert verify_root(data, now=EXPIRES - timedelta(seconds=1)).signatures == 1
    with pytest.raises(TufRootError, match="expired at 2027-12-01T00:00:00Z"):
        verify_root(data, now=EXPIRES)


def test_version_and_type_are_checked(keys: Keys) -> None:
    md = _root(keys, 1)
    md.signed.version = 2
    data = sign_root(md, keys.custodians[:1])
    with pytest.raises(TufRootError, match=r"^1\.root\.json: version 2, expected 1$"):
        verify_root(data)
    assert verify_root(data, expected_version=2, name="2.root.json").version == 2
    with pytest.raises(TufRootError, match="not valid TUF metadata"):
        verify_root(b"{}")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"root_threshold": 4}, "role root: threshold 4 cannot be met by 3 key"),
        ({"root_threshold": 0}, "role root: threshold 0 cannot be met"),
        ({"targets_keys": []}, "role targets: threshold 1 cannot be met by 0 key"),
        ({"expires": datetime(2027, 1, 1)}, "must be timezone-aware"),
    ],
)
def test_build_root_refuses_impossible_roots(
    keys: Keys, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(TufRootError, match=message):
        build_root(**_root_arguments(keys, **changes))


def test_build_root_refuses_a_key_listed_twice(keys: Keys) -> None:
    key = keys.custodians[0].public_key
    with pytest.raises(TufRootError, match="role root lists the same key more than once"):
        build_root(**_root_arguments(keys, root_keys=[key, key], root_threshold=1))


def test_verify_root_refuses_unreachable_role_thresholds(keys: Keys) -> None:
    md = _root(keys, 1)
    md.signed.roles["snapshot"].threshold = 2
    data = sign_root(md, keys.custodians[:1])
    with pytest.raises(TufRootError, match="role snapshot needs 2 signatures but has 1 key"):
        verify_root(data)
