"""Strict proto3-JSON parsing and stable serialisation of the wire models."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_cases, require_vectors
from toolkit.errors import Check, FormatError
from toolkit.models import (
    Bundle,
    BundleMediaType,
    CertificateAuthority,
    ClientTrustConfig,
    Envelope,
    SigningConfig,
    TrustedRoot,
    pae,
)


def _bundle_dict(name: str = "staging-rekor2-tsa-happy") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (require_vectors() / name / "bundle.sigstore.json").read_text()
    )
    return data


def _parse_error(data: object) -> FormatError:
    with pytest.raises(FormatError) as info:
        Bundle.from_dict(data)
    return info.value


def test_every_vector_bundle_round_trips() -> None:
    for case in load_cases():
        raw = json.loads(case.bundle_path.read_text())
        if case.name == "invalid-media-type_fail":
            assert _parse_error(raw).check is Check.BUNDLE_MEDIA_TYPE
            continue
        bundle = Bundle.from_dict(raw)
        assert bundle.to_dict() == raw, case.name
        assert Bundle.from_json(bundle.to_json()) == bundle


def test_emitted_json_is_byte_stable() -> None:
    bundle = Bundle.from_dict(_bundle_dict())
    text = bundle.to_json()
    assert Bundle.from_json(text).to_json() == text
    assert json.loads(text)["mediaType"] == BundleMediaType.V0_3.value


def test_all_media_types_and_versions() -> None:
    assert BundleMediaType.V0_1.version == (0, 1)
    assert BundleMediaType.V0_2.version == (0, 2)
    assert BundleMediaType.V0_3.version == (0, 3)
    assert BundleMediaType.V0_3_ALT.version == (0, 3)


@pytest.mark.parametrize(
    ("mutate", "path", "detail"),
    [
        (lambda d: d.update(extra=1), None, "unknown field 'extra'"),
        (
            lambda d: d["verificationMaterial"]["tlogEntries"][0].update(logIndex=645),
            "verificationMaterial.tlogEntries[0].logIndex",
            "decimal string",
        ),
        (
            lambda d: d["verificationMaterial"]["tlogEntries"][0]["inclusionProof"].update(
                treeSize="0645"
            ),
            "verificationMaterial.tlogEntries[0].inclusionProof.treeSize",
            "canonical decimal",
        ),
        (
            lambda d: d["messageSignature"].update(
                signature=d["messageSignature"]["signature"].rstrip("=")
            ),
            "messageSignature.signature",
            "base64",
        ),
        (
            lambda d: d["messageSignature"]["messageDigest"].update(algorithm="MD5"),
            "messageSignature.messageDigest.algorithm",
            "unknown HashAlgorithm value 'MD5'",
        ),
        (
            lambda d: d["messageSignature"]["messageDigest"].update(digest="AAAA"),
            "messageSignature.messageDigest",
            "SHA2_256 digest must be 32 bytes",
        ),
        (lambda d: d.pop("verificationMaterial"), "verificationMaterial", "required"),
        (
            lambda d: d.update(dsseEnvelope={"payload": "", "payloadType": "x", "signatures": []}),
            "dsseEnvelope",
            "no signatures",
        ),
        (
            lambda d: d["verificationMaterial"].update(publicKey={"hint": "k"}),
            "verificationMaterial",
            "exactly one of publicKey, x509CertificateChain or certificate",
        ),
        (
            lambda d: d["verificationMaterial"]["tlogEntries"][0]["inclusionProof"].update(
                logIndex="646"
            ),
            "verificationMaterial.tlogEntries[0].inclusionProof",
            "is not below treeSize",
        ),
        (
            lambda d: d["verificationMaterial"]["tlogEntries"][0]["inclusionProof"][
                "hashes"
            ].append("AAAA"),
            "verificationMaterial.tlogEntries[0].inclusionProof",
            "32 bytes",
        ),
        (lambda d: d.update(mediaType=5), "mediaType", "expected a string, got a number"),
    ],
)
def test_malformed_bundles_name_the_field(mutate: Any, path: str | None, detail: str) -> None:
    data = _bundle_dict()
    mutate(data)
    error = _parse_error(data)
    assert error.check is Check.BUNDLE_PARSE
    assert error.path == path
    assert detail in error.detail


def test_unknown_media_type_has_its_own_check() -> None:
    data = _bundle_dict()
    data["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.4"
    assert _parse_error(data).check is Check.BUNDLE_MEDIA_TYPE


def test_snake_case_names_and_null_are_proto3_json() -> None:
    data = _bundle_dict()
    material = data.pop("verificationMaterial")
    material["tlog_entries"] = material.pop("tlogEntries")
    data["verification_material"] = material
    data["dsseEnvelope"] = None
    bundle = Bundle.from_dict(data)
    assert bundle.to_dict() == _bundle_dict()
    both = _bundle_dict()
    both["media_type"] = both["mediaType"]
    assert "both 'mediaType' and 'media_type'" in _parse_error(both).detail


def test_omitted_int64_is_zero_but_always_emitted() -> None:
    data = _bundle_dict("staging-v0.1-happy")
    entry = data["verificationMaterial"]["tlogEntries"][0]
    del entry["logIndex"]
    parsed = Bundle.from_dict(data)
    assert parsed.verification_material.tlog_entries[0].log_index == 0
    assert parsed.to_dict()["verificationMaterial"]["tlogEntries"][0]["logIndex"] == "0"


def test_bundle_size_and_json_errors() -> None:
    with pytest.raises(FormatError) as info:
        Bundle.from_json(b"{" + b" " * (16 << 20) + b"}")
    assert info.value.check is Check.BUNDLE_PARSE
    with pytest.raises(FormatError) as info:
        Bundle.from_json(b'{"mediaType": "x", "mediaType": "y"}')
    assert "duplicate JSON key" in info.value.detail
    with pytest.raises(FormatError) as info:
        Bundle.from_json(b"[]")
    assert info.value.detail == "expected an object, got an array"


def test_dsse_pae() -> None:
    # Test vector from the DSSE v1 specification (protocol.md).
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    envelope = Envelope.from_dict(_bundle_dict("staging-rekor2-dsse-happy")["dsseEnvelope"])
    assert envelope.pae().startswith(b"DSSEv1 28 application/vnd.in-toto+json ")


# Trust material --------------------------------------------------------------


def _trust_file(name: str) -> Any:
    return json.loads((require_vectors() / "_trust_parsing" / name).read_text())


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("trusted_root__trustedroot.v1.json", TrustedRoot),
        ("trusted_root__trustedroot.v1.local_tlog_ed25519_rekor-tiles.json", TrustedRoot),
        ("trust_config__config.v1.json", ClientTrustConfig),
        ("tsa__trust_config.json", ClientTrustConfig),
        ("signing_config__signingconfig.v2.json", SigningConfig),
        ("signing_config__signingconfig-only-v1-rekor.v2.json", SigningConfig),
        ("trusted_root__certificate_authority.json", CertificateAuthority),
        ("tsa__ca.json", CertificateAuthority),
    ],
)
def test_trust_documents_parse_and_round_trip(name: str, model: Any) -> None:
    parsed = model.from_dict(_trust_file(name))
    assert model.from_dict(json.loads(json.dumps(parsed.to_dict()))) == parsed


@pytest.mark.parametrize(
    ("name", "model", "detail"),
    [
        (
            "trusted_root__trustedroot.badtype.json",
            TrustedRoot,
            "unsupported trusted root media type",
        ),
        ("trust_config__config.badtype.json", ClientTrustConfig, "client trust config media type"),
        ("trusted_root__certificate_authority.empty.json", CertificateAuthority, "at least one"),
    ],
)
def test_bad_trust_documents_are_rejected(name: str, model: Any, detail: str) -> None:
    with pytest.raises(FormatError) as info:
        model.from_dict(_trust_file(name))
    assert detail in info.value.detail


def test_trusted_root_checks() -> None:
    root = json.loads((require_vectors() / "staging-v0.3-happy" / "trusted_root.json").read_text())
    parsed = TrustedRoot.from_dict(root)
    assert TrustedRoot.from_json(parsed.to_json()) == parsed
    assert parsed.to_json() == TrustedRoot.from_json(parsed.to_json()).to_json()
    no_start = copy.deepcopy(root)
    del no_start["tlogs"][0]["publicKey"]["validFor"]
    with pytest.raises(FormatError) as info:
        TrustedRoot.from_dict(no_start)
    assert info.value.check is Check.TRUST_ROOT_PARSE
    assert "validFor.start is required" in info.value.detail
    reversed_window = copy.deepcopy(root)
    reversed_window["certificateAuthorities"][0]["validFor"]["end"] = "2000-01-01T00:00:00Z"
    with pytest.raises(FormatError, match="ends before it starts"):
        TrustedRoot.from_dict(reversed_window)


def test_client_trust_config_pairs_root_and_signing_config() -> None:
    config = ClientTrustConfig.from_dict(_trust_file("trust_config__config.v1.json"))
    assert config.trusted_root.tlogs
    assert config.signing_config.ca_urls
    text = config.to_json()
    assert ClientTrustConfig.from_json(text).to_json() == text


def test_vectors_folder_is_read_in_place() -> None:
    # The vectors are read from ../shared at run time, never copied into the repo.
    repo = Path(__file__).resolve().parents[4]
    assert not list(repo.glob("tests/**/bundle.sigstore.json"))


def test_package_exports_resolve_lazily() -> None:
    import importlib

    import toolkit.models as models

    assert sorted(models.__all__) == sorted(models._MODULE_OF)
    for name in models.__all__:
        home = importlib.import_module(f"toolkit.models.{models._MODULE_OF[name]}")
        assert getattr(models, name) is getattr(home, name)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = models.Nope


def test_signing_config_json_is_byte_stable() -> None:
    config = SigningConfig.from_dict(_trust_file("signing_config__signingconfig.v2.json"))
    text = config.to_json()
    assert SigningConfig.from_json(text).to_json() == text
    assert text.endswith("}\n")
