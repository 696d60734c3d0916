"""The ceremony's trusted_root.json: built from the PKI, read by airseal and sigstore-python."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ceremony.errors import TrustedRootError
from ceremony.trusted_root import (
    build_trusted_root,
    check_trusted_root,
    ctlog_id,
    key_details,
    tlog_id,
)
from toolkit.models.common import PublicKeyDetails
from toolkit.models.trustroot import TRUSTED_ROOT_MEDIA_TYPE, TrustedRoot
from toolkit.note import Ed25519NoteVerifier
from toolkit.signing._api import PublicKey, spki_der
from toolkit.verify import Verifier

from ._pki import Pki, build_pki, code_signing_leaf

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2031, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Material:
    pki: Pki
    tlog_key: PublicKey
    ctlog_key: PublicKey

    @property
    def ca_chain(self) -> list[x509.Certificate]:
        return [self.pki.intermediate.certificate, self.pki.root.certificate]

    @property
    def tsa_chain(self) -> list[x509.Certificate]:
        return [self.pki.tsa.certificate, self.pki.root.certificate]


@pytest.fixture(scope="module")
def material() -> Material:
    return Material(
        pki=build_pki(),
        tlog_key=ed25519.Ed25519PrivateKey.generate().public_key(),
        ctlog_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
    )


def _build(m: Material, **changes: Any) -> bytes:
    kwargs: dict[str, Any] = {
        "ca_chain": m.ca_chain,
        "tsa_chain": m.tsa_chain,
        "tlog_key": m.tlog_key,
        "ctlog_key": m.ctlog_key,
        "ca_url": "https://ca.airseal.example",
        "tsa_url": "https://tsa.airseal.example/api/v1/timestamp",
        "tlog_url": "https://log.airseal.example",
        "ctlog_url": "https://ct.airseal.example",
        "ca_valid": (START, None),
        "tsa_valid": (START, END),
        "tlog_valid": (START, None),
        "ctlog_valid": (START, None),
    }
    kwargs.update(changes)
    return build_trusted_root(**kwargs)


def _check(m: Material, data: bytes) -> list[str]:
    return check_trusted_root(
        data,
        ca_chain=m.ca_chain,
        tsa_chain=m.tsa_chain,
        tlog_key=m.tlog_key,
        ctlog_key=m.ctlog_key,
    )


def _der(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def test_document_shape(material: Material) -> None:
    data = _build(material)
    assert data.endswith(b"}\n")
    doc = json.loads(data)
    assert doc["mediaType"] == TRUSTED_ROOT_MEDIA_TYPE
    assert doc["mediaType"] == "application/vnd.dev.sigstore.trustedroot+json;version=0.1"

    (tlog,) = doc["tlogs"]
    assert tlog["baseUrl"] == "https://log.airseal.example"
    assert tlog["hashAlgorithm"] == "SHA2_256"
    assert tlog["publicKey"]["keyDetails"] == "PKIX_ED25519"
    assert base64.b64decode(tlog["publicKey"]["rawBytes"]) == spki_der(material.tlog_key)
    assert tlog["publicKey"]["validFor"] == {"start": "2026-01-01T00:00:00Z"}
    # Rekor v2 (Ed25519) log id: the checkpoint key id in full, as Sigstore's roots carry it.
    assert isinstance(material.tlog_key, ed25519.Ed25519PublicKey)
    note_id = Ed25519NoteVerifier("log.airseal.example", material.tlog_key).full_key_id
    assert base64.b64decode(tlog["logId"]["keyId"]) == note_id

    (ctlog,) = doc["ctlogs"]
    assert ctlog["publicKey"]["keyDetails"] == "PKIX_ECDSA_P256_SHA_256"
    spki_hash = hashlib.sha256(spki_der(material.ctlog_key)).digest()
    assert base64.b64decode(ctlog["logId"]["keyId"]) == spki_hash

    (ca,) = doc["certificateAuthorities"]
    assert ca["subject"] == {
        "organization": "Airseal Test",
        "commonName": "Airseal Test Intermediate CA",
    }
    assert ca["uri"] == "https://ca.airseal.example"
    assert [c["rawBytes"] for c in ca["certChain"]["certificates"]] == [
        _der(c) for c in material.ca_chain
    ]
    assert ca["validFor"] == {"start": "2026-01-01T00:00:00Z"}

    (tsa,) = doc["timestampAuthorities"]
    assert tsa["subject"]["commonName"] == "Airseal Test TSA"
    assert tsa["uri"] == "https://tsa.airseal.example/api/v1/timestamp"
    assert [c["rawBytes"] for c in tsa["certChain"]["certificates"]] == [
        _der(c) for c in material.tsa_chain
    ]
    assert tsa["validFor"] == {"start": "2026-01-01T00:00:00Z", "end": "2031-01-01T00:00:00Z"}


def test_building_is_deterministic(material: Material) -> None:
    assert _build(material) == _build(material)


def test_the_offline_verifier_loads_it(material: Material) -> None:
    data = _build(material)
    verifier = Verifier.from_json(data)
    root = verifier.trusted_root
    assert root == TrustedRoot.from_json(data)
    assert root.to_json().encode() == data


def test_sigstore_python_loads_it(material: Material, tmp_path: Path) -> None:
    sigstore_models = pytest.importorskip("sigstore.models")
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.verify import Verifier as SigstoreVerifier

    path = tmp_path / "trusted_root.json"
    path.write_bytes(_build(material))
    root = sigstore_models.TrustedRoot.from_file(str(path))
    der = serialization.Encoding.DER
    assert [c.public_bytes(der) for c in root.get_fulcio_certs()] == [
        c.public_bytes(der) for c in material.ca_chain
    ]
    (tsa,) = root.get_timestamp_authorities()
    assert [c.public_bytes(der) for c in tsa.certificates(allow_expired=True)] == [
        c.public_bytes(der) for c in material.tsa_chain
    ]
    # Both keys load into sigstore-python's keyrings (it drops keys it cannot use).
    tlog_ring = root.rekor_keyring(KeyringPurpose.VERIFY)
    ct_ring = root.ct_keyring(KeyringPurpose.VERIFY)
    assert len(tlog_ring._keyring) == 1
    assert len(ct_ring._keyring) == 1
    SigstoreVerifier(trusted_root=root)


def test_an_ecdsa_tlog_uses_the_spki_hash(material: Material) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    data = _build(material, tlog_key=key)
    (tlog,) = json.loads(data)["tlogs"]
    assert tlog["publicKey"]["keyDetails"] == "PKIX_ECDSA_P256_SHA_256"
    assert base64.b64decode(tlog["logId"]["keyId"]) == hashlib.sha256(spki_der(key)).digest()
    assert tlog_id(key, "https://anything.example") == ctlog_id(key)
    Verifier.from_json(data)


def test_key_details() -> None:
    assert key_details(ed25519.Ed25519PrivateKey.generate().public_key()) is (
        PublicKeyDetails.PKIX_ED25519
    )
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    assert key_details(p384) is PublicKeyDetails.PKIX_ECDSA_P384_SHA_384
    with pytest.raises(TrustedRootError, match="cannot be a Sigstore log key"):
        key_details(ec.generate_private_key(ec.SECP521R1()).public_key())


# --- refusals --------------------------------------------------------------------------


def test_chains_must_be_leaf_first(material: Material) -> None:
    with pytest.raises(TrustedRootError, match="the CA chain is not leaf first"):
        _build(material, ca_chain=list(reversed(material.ca_chain)))
    with pytest.raises(TrustedRootError, match="the TSA chain needs at least 2 certificates"):
        _build(material, tsa_chain=[material.pki.tsa.certificate])
    with pytest.raises(TrustedRootError, match="the CA chain does not end in a self-signed root"):
        _build(material, ca_chain=[code_signing_leaf(material.pki), material.ca_chain[0]])


def test_an_ed25519_ct_log_is_refused(material: Material) -> None:
    with pytest.raises(TrustedRootError, match="CT log key must be ECDSA"):
        _build(material, ctlog_key=ed25519.Ed25519PrivateKey.generate().public_key())


def test_bad_validity_is_refused(material: Material) -> None:
    with pytest.raises(TrustedRootError, match="TSA validity: validity ends before it starts"):
        _build(material, tsa_valid=(END, START))
    with pytest.raises(TrustedRootError, match=r"CT log validity: .*timezone-aware"):
        _build(material, ctlog_valid=(datetime(2026, 1, 1), None))


# --- check_trusted_root (the offline verify) ---------------------------------------------------


def test_check_accepts_what_was_built(material: Material) -> None:
    assert _check(material, _build(material)) == []


def _edit(data: bytes, change: Any) -> bytes:
    doc = json.loads(data)
    change(doc)
    return json.dumps(doc, indent=2).encode()


def test_check_names_each_discrepancy(material: Material) -> None:
    data = _build(material)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()

    assert _check(material, b"{not json") == [
        "does not parse as a trusted root: trusted root is not valid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]
    swapped = _build(material, ctlog_key=other)
    assert _check(material, swapped) == [
        "ctlogs[0].publicKey is not the ceremony's key",
        "ctlogs[0].logId does not match the key",
    ]

    def reorder(doc: dict[str, Any]) -> None:
        doc["certificateAuthorities"][0]["certChain"]["certificates"].reverse()

    problems = _check(material, _edit(data, reorder))
    assert (
        "certificateAuthorities[0].certChain holds the ceremony's certificates in the wrong order"
        in problems
    )
    assert any(p.startswith("the offline verifier rejects it:") for p in problems)

    def wrong_tsa(doc: dict[str, Any]) -> None:
        doc["timestampAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"] = _der(
            material.pki.intermediate.certificate
        )

    assert _check(material, _edit(data, wrong_tsa)) == [
        "timestampAuthorities[0].certChain does not hold the ceremony's certificates "
        "(2 found, 2 expected)"
    ]

    def wrong_log_id(doc: dict[str, Any]) -> None:
        doc["tlogs"][0]["logId"]["keyId"] = base64.b64encode(bytes(32)).decode()

    assert _check(material, _edit(data, wrong_log_id)) == ["tlogs[0].logId does not match the key"]

    def wrong_details(doc: dict[str, Any]) -> None:
        doc["ctlogs"][0]["publicKey"]["keyDetails"] = "PKIX_ECDSA_P384_SHA_384"

    problems = _check(material, _edit(data, wrong_details))
    assert (
        "ctlogs[0].publicKey.keyDetails is PKIX_ECDSA_P384_SHA_384, "
        "expected PKIX_ECDSA_P256_SHA_256"
    ) in problems

    def two_tlogs(doc: dict[str, Any]) -> None:
        doc["tlogs"].append(doc["tlogs"][0])

    assert _check(material, _edit(data, two_tlogs)) == ["tlogs: expected exactly 1 entry, found 2"]
