"""Trust material prepared from a TrustedRoot."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import require_vectors
from toolkit.errors import Check, FormatError
from toolkit.models import TrustedRoot
from toolkit.verify import Verifier
from toolkit.verify._trust import TrustMaterial, note_name


def _root(case: str = "staging-rekor2-tsa-happy") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((require_vectors() / case / "trusted_root.json").read_text())
    return data


def test_note_names_come_from_base_urls() -> None:
    assert note_name("https://rekor.sigstage.dev") == "rekor.sigstage.dev"
    assert note_name("https://log2025-alpha1.rekor.sigstage.dev/") == (
        "log2025-alpha1.rekor.sigstage.dev"
    )
    assert note_name("https://example.com/log/") == "example.com/log"


def test_logs_are_indexed_by_log_id() -> None:
    material = TrustMaterial(TrustedRoot.from_dict(_root()))
    for tlog in _root()["tlogs"]:
        from toolkit.encoding import b64decode

        (log,) = material.tlogs[b64decode(tlog["logId"]["keyId"])]
        assert log.base_url == tlog["baseUrl"]
    # The Ed25519 Rekor v2 log's note key id is SHA-256(name || 0x0A || 0x01 || key).
    ed = [logs[0] for logs in material.tlogs.values() if logs[0].details.value == "PKIX_ED25519"]
    assert ed and all(log.note_verifier.key_hash == log.log_id[:4] for log in ed)


def test_stores_follow_ca_validity() -> None:
    material = TrustMaterial(TrustedRoot.from_dict(_root()))
    assert material.store_at(datetime(2020, 1, 1, tzinfo=UTC)) is None
    store = material.store_at(datetime(2024, 1, 1, tzinfo=UTC))
    assert store is not None
    assert material.store_at(datetime(2024, 6, 1, tzinfo=UTC)) is store


def test_tsa_chain_without_root_is_rejected() -> None:
    root = _root()
    missing = json.loads(
        (
            require_vectors()
            / "_trust_parsing"
            / "trusted_root__certificate_authority.missingroot.json"
        ).read_text()
    )
    root["timestampAuthorities"] = [missing]
    with pytest.raises(FormatError) as info:
        Verifier(TrustedRoot.from_dict(root))
    assert info.value.check is Check.TRUST_ROOT_PARSE
    assert info.value.detail.startswith(
        "timestampAuthorities[0].certChain does not end in a root certificate"
    )
    assert "issued by 'CN=Internal Services Root" in info.value.detail


def test_malformed_keys_and_certificates_are_rejected() -> None:
    root = _root()
    bad_key = copy.deepcopy(root)
    bad_key["tlogs"][0]["publicKey"]["rawBytes"] = "AAAA"
    with pytest.raises(FormatError) as info:
        Verifier(TrustedRoot.from_dict(bad_key))
    assert info.value.check is Check.TRUST_ROOT_PARSE
    assert info.value.detail.startswith("tlogs[0].publicKey: not a DER public key")
    wrong_kind = copy.deepcopy(root)
    wrong_kind["tlogs"][0]["publicKey"]["keyDetails"] = "PKIX_ED25519"
    with pytest.raises(FormatError, match="ECDSA secp256r1 key, but PKIX_ED25519 was declared"):
        Verifier(TrustedRoot.from_dict(wrong_kind))
    bad_cert = copy.deepcopy(root)
    bad_cert["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"] = "AAAA"
    with pytest.raises(FormatError, match=r"certificateAuthorities\[0\]\.certChain"):
        Verifier(TrustedRoot.from_dict(bad_cert))


def test_unsupported_key_schemes_are_skipped() -> None:
    root = _root()
    root["tlogs"][0]["publicKey"]["keyDetails"] = "ML_DSA_65"
    material = TrustMaterial(TrustedRoot.from_dict(root))
    from toolkit.encoding import b64decode

    assert b64decode(root["tlogs"][0]["logId"]["keyId"]) not in material.tlogs
    assert len(material.tlogs) == len(root["tlogs"]) - 1


def test_log_without_a_usable_name_is_rejected() -> None:
    root = _root()
    root["tlogs"][1]["baseUrl"] = " "
    with pytest.raises(FormatError) as info:
        Verifier(TrustedRoot.from_dict(root))
    assert info.value.check is Check.TRUST_ROOT_PARSE
    assert info.value.detail.startswith("tlogs[1].baseUrl ' ' gives no usable log name")
