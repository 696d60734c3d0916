"""Tests for ceremony.plan: the reviewer's listing of what a ceremony creates."""

from __future__ import annotations

from pathlib import Path

from ceremony.config import load_config, parse_config
from ceremony.plan import OUTPUT_FILES, render_plan
from ceremony.words import hash_lines, hex_to_words

EXAMPLE = Path(__file__).resolve().parents[3] / "ceremony" / "examples" / "root-ceremony.toml"


def test_plan_mentions_every_key_token_and_custodian() -> None:
    config = load_config(EXAMPLE)
    plan = render_plan(config)
    assert config.id in plan
    assert config.description is not None
    assert config.description in plan
    for token in config.tokens.values():
        assert f"  {token.name}\n" in plan
        assert token.label in plan
        assert token.serial in plan
        assert token.uri in plan
        assert token.pin_env in plan
    for key in config.keys.values():
        assert f"  {key.name}\n" in plan
        assert key.label in plan
        assert f"{key.algorithm} (scheme {key.scheme})" in plan
    for custodian in config.custodians:
        assert custodian.name in plan
    assert "TUF root threshold 2 of 3" in plan


def test_plan_shows_hash_in_hex_and_words() -> None:
    config = load_config(EXAMPLE)
    plan = render_plan(config)
    assert config.sha256 in plan
    for line in hash_lines(config.sha256):
        assert line in plan
    # Every word, in order, across the lines.
    words = hex_to_words(config.sha256).split()
    assert len(words) == 32
    position = 0
    for word in words:
        position = plan.index(word, position)


def test_plan_lists_certificates_services_roles_and_outputs() -> None:
    config = load_config(EXAMPLE)
    plan = render_plan(config)
    for kind, spec in config.certificates.items():
        assert f"  {kind}\n" in plan
        assert spec.subject.rfc4514() in plan
    assert "2026-11-01T00:00:00Z" in plan
    assert "2036-11-01T00:00:00Z (3653 days)" in plan
    assert "(self-signed)" in plan
    assert "basicConstraints CA:TRUE, pathlen 0 (critical)" in plan
    assert "extendedKeyUsage timeStamping (critical)" in plan
    assert "signature:  ecdsa-with-SHA384 by root-ca" in plan
    for service in ("ca", "tsa", "tlog", "ctlog"):
        assert f"https://{service}.airseal.example" in plan
    assert "expires 2027-11-01T00:00:00Z" in plan
    assert "each version expires 365 days after signing" in plan
    assert "each version expires 1 day after signing" in plan
    names = [name for name, _ in OUTPUT_FILES]
    assert names == [
        "root-ca.pem",
        "intermediate-ca.pem",
        "tsa-chain.pem",
        "tlog.pub.pem",
        "ctlog.pub.pem",
        "trusted_root.json",
        "1.root.json",
        "keys.toml",
        "transcript.jsonl",
    ]
    for name in names:
        assert f"  {name}" in plan
    assert str(config.output_dir) in plan
    assert plan.endswith("\n")


def test_plan_without_optional_fields() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"\n', "")
    text = text.replace(
        "valid_from = 2026-11-01T00:00:00Z\n\n[trusted_root.tsa]",
        "valid_from = 2026-11-01T00:00:00Z\nvalid_until = 2030-01-01T00:00:00Z\n\n"
        "[trusted_root.tsa]",
    )
    plan = render_plan(parse_config(text.encode(), path=EXAMPLE))
    assert "PKCS11_MODULE" in plan
    assert "2026-11-01T00:00:00Z to 2030-01-01T00:00:00Z" in plan
