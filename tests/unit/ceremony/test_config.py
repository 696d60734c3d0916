"""Tests for ceremony.config: the strict ceremony config loader."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from ceremony.config import (
    CERTIFICATE_KINDS,
    CeremonyConfig,
    Purpose,
    SubjectName,
    load_config,
    parse_config,
)
from ceremony.errors import CeremonyError, ConfigError
from toolkit.errors import Error, FormatError
from toolkit.signing._api import KeyAlgorithm, Scheme

EXAMPLE = Path(__file__).resolve().parents[3] / "ceremony" / "examples" / "root-ceremony.toml"
TEXT = EXAMPLE.read_text(encoding="utf-8")


def edited(*edits: tuple[str, str]) -> str:
    """The example config with each (old, new) replacement applied once, in order."""
    text = TEXT
    for old, new in edits:
        assert old in text, f"test bug: {old!r} is not in the config"
        text = text.replace(old, new, 1)
    return text


def parse(text: str) -> CeremonyConfig:
    return parse_config(text.encode("utf-8"), path=EXAMPLE)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


CUSTODIAN_BOB = '[[custodians]]\nname = "Bob Example"\ntoken = "bob"\nkey = "tuf-root-bob"\n'
TSA_KEY = (
    '[keys.tsa]\npurpose = "tsa"\nalgorithm = "ecdsa-p256"\ntoken = "ca"\nlabel = "airseal-tsa"\n'
)


# --- the example --------------------------------------------------------------


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.id == "airseal-root-2026"
    assert config.pkcs11_module == "/usr/lib/softhsm/libsofthsm2.so"
    assert config.output_dir == EXAMPLE.parent / "out"
    assert config.output_dir.is_absolute()
    assert list(config.tokens) == ["ca", "alice", "bob", "carol"]
    assert config.tokens["ca"].label == "airseal-ca"
    assert config.tokens["alice"].label == "custodian-alice"
    assert list(config.keys) == [
        "root-ca",
        "intermediate-ca",
        "tsa",
        "tlog",
        "ctlog",
        "tuf-online",
        "tuf-root-alice",
        "tuf-root-bob",
        "tuf-root-carol",
    ]
    assert [c.name for c in config.custodians] == ["Alice Example", "Bob Example", "Carol Example"]
    assert config.tuf.root.threshold == 2
    assert config.tuf.root.keys == ("tuf-root-alice", "tuf-root-bob", "tuf-root-carol")
    assert config.tuf.root.expires == datetime(2027, 11, 1, tzinfo=UTC)
    assert [config.tuf.targets.expiry_days, config.tuf.snapshot.expiry_days] == [365, 7]
    assert config.tuf.timestamp.expiry_days == 1
    assert config.tuf.consistent_snapshot is True
    assert tuple(config.certificates) == CERTIFICATE_KINDS
    root = config.certificates["root"]
    assert (root.not_before, root.not_after) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2036, 11, 1, tzinfo=UTC),
    )
    assert config.certificates["intermediate"].not_after == datetime(2031, 11, 1, tzinfo=UTC)
    assert config.certificates["tsa"].not_after == datetime(2031, 11, 1, tzinfo=UTC)
    assert config.trusted_root.tlog.key == "tlog"
    assert config.trusted_root.ctlog.key == "ctlog"
    assert config.trusted_root.ca.key is None
    assert config.trusted_root.ca.valid_until is None


def test_example_key_algorithms() -> None:
    config = load_config(EXAMPLE)
    algorithms = {name: key.algorithm for name, key in config.keys.items()}
    assert algorithms["root-ca"] is KeyAlgorithm.ECDSA_P384
    assert algorithms["intermediate-ca"] is KeyAlgorithm.ECDSA_P384
    assert algorithms["tsa"] is KeyAlgorithm.ECDSA_P256
    assert algorithms["tlog"] is KeyAlgorithm.ED25519
    assert algorithms["ctlog"] is KeyAlgorithm.ECDSA_P256
    assert algorithms["tuf-online"] is KeyAlgorithm.ED25519
    assert config.keys["root-ca"].scheme is Scheme.ECDSA_P384_SHA384


def test_config_sha256_is_the_hash_of_the_raw_file_bytes() -> None:
    raw = EXAMPLE.read_bytes()
    config = load_config(EXAMPLE)
    assert config.raw == raw
    assert config.sha256 == hashlib.sha256(raw).hexdigest()
    # A comment is part of what was reviewed: changing it changes the hash.
    assert parse(TEXT + "# reviewed\n").sha256 != config.sha256


def test_lookup_helpers() -> None:
    config = load_config(EXAMPLE)
    assert config.key_for(Purpose.ROOT_CA).name == "root-ca"
    assert [k.name for k in config.keys_with(Purpose.TUF_ROOT)] == [
        "tuf-root-alice",
        "tuf-root-bob",
        "tuf-root-carol",
    ]
    with pytest.raises(LookupError):
        config.key_for(Purpose.TUF_ROOT)
    assert [k.name for k in config.keys_on("alice")] == ["tuf-root-alice"]
    assert len(config.keys_on("ca")) == 6
    assert config.token_of("tuf-root-bob").label == "custodian-bob"
    assert config.tokens["ca"].pin_env == "AIRSEAL_PIN_CA"


def test_pin_env_maps_dashes() -> None:
    config = parse(
        edited(
            ("[tokens.alice]", "[tokens.alice-2]"),
            ('token = "alice"', 'token = "alice-2"'),
            ('token = "alice"', 'token = "alice-2"'),
        )
    )
    assert config.tokens["alice-2"].pin_env == "AIRSEAL_PIN_ALICE_2"


def test_subject_to_x509_orders_general_to_specific() -> None:
    subject = SubjectName(
        common_name="root", organization="Org", organizational_unit="Unit", country="DE"
    )
    oids = [attribute.oid for attribute in subject.to_x509()]
    assert oids == [
        NameOID.COUNTRY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME,
        NameOID.COMMON_NAME,
    ]
    assert subject.rfc4514() == "CN=root,OU=Unit,O=Org,C=DE"


def test_offsets_are_normalised_to_utc() -> None:
    config = parse(
        edited(("not_before = 2026-11-01T00:00:00Z", "not_before = 2026-11-01T02:00:00+02:00"))
    )
    not_before = config.certificates["root"].not_before
    assert not_before == datetime(2026, 11, 1, tzinfo=UTC)
    assert not_before.tzinfo is UTC


def test_accepted_variants() -> None:
    config = parse(
        edited(
            (
                'uri = "pkcs11:token=airseal-ca"',
                'uri = "pkcs11:token=airseal%20ca?pin-source=file:/run/pin"',
            ),
            ('url = "https://tlog.airseal.example"', 'url = "http://127.0.0.1:3000"'),
            ('url = "https://ctlog.airseal.example"', 'url = "http://localhost"'),
            (
                'algorithm = "ecdsa-p384"\ntoken = "ca"\nlabel = "airseal-intermediate-ca"',
                'algorithm = "rsa-3072"\nscheme = "PKIX_RSA_PSS_3072_SHA256"\ntoken = "ca"\n'
                'label = "airseal-intermediate-ca"',
            ),
            ("[tuf]\nconsistent_snapshot = true\n", "[tuf]\n"),
            ("[ceremony]\n", "[ceremony]\n# no module: PKCS11_MODULE is used\n"),
            ('pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"\n', ""),
            (
                'url = "https://ca.airseal.example"\nvalid_from = 2026-11-01T00:00:00Z\n',
                'url = "https://ca.airseal.example"\nvalid_from = 2026-11-01T00:00:00Z\n'
                "valid_until = 2031-11-01T00:00:00Z\n",
            ),
        )
    )
    assert config.tokens["ca"].label == "airseal ca"
    assert config.trusted_root.tlog.url == "http://127.0.0.1:3000"
    assert config.keys["intermediate-ca"].scheme is Scheme.RSA_PSS_3072_SHA256
    assert config.tuf.consistent_snapshot is True
    assert config.pkcs11_module is None
    assert config.trusted_root.ca.valid_until == datetime(2031, 11, 1, tzinfo=UTC)


def test_consistent_snapshot_false() -> None:
    config = parse(edited(("consistent_snapshot = true", "consistent_snapshot = false")))
    assert config.tuf.consistent_snapshot is False


def key_block(name: str) -> str:
    who = name.removeprefix("tuf-root-")
    return (
        f'[keys.{name}]\npurpose = "tuf-root"\nalgorithm = "ecdsa-p256"\ntoken = "{who}"\n'
        'label = "airseal-tuf-root"\n'
    )


def token_block(name: str, serial: str) -> str:
    return f'[tokens.{name}]\nuri = "pkcs11:token=custodian-{name}"\nserial = "{serial}"\n'


def test_single_custodian_threshold_one() -> None:
    config = parse(
        edited(
            (CUSTODIAN_BOB, ""),
            (
                '[[custodians]]\nname = "Carol Example"\ntoken = "carol"\nkey = "tuf-root-carol"\n',
                "",
            ),
            (key_block("tuf-root-bob"), ""),
            (key_block("tuf-root-carol"), ""),
            (token_block("bob", "0000000000000003"), ""),
            (token_block("carol", "0000000000000004"), ""),
            ("threshold = 2", "threshold = 1"),
        )
    )
    assert [c.name for c in config.custodians] == ["Alice Example"]
    assert config.tuf.root.keys == ("tuf-root-alice",)
    assert list(config.tokens) == ["ca", "alice"]


# --- broken configs --------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    id: str
    edits: tuple[tuple[str, str], ...]
    path: str
    detail: str


BROKEN = [
    # Unknown keys, at several depths.
    Broken("unknown-top-level", (("[ceremony]", "bogus = 1\n[ceremony]"),), "bogus", "unknown key"),
    Broken(
        "unknown-in-ceremony",
        (("[ceremony]\n", '[ceremony]\noutputdir = "x"\n'),),
        "ceremony.outputdir",
        "unknown key (expected one of: id, description, output_dir, pkcs11_module)",
    ),
    Broken(
        "unknown-in-token",
        (("[tokens.ca]\n", "[tokens.ca]\npin = 1234\n"),),
        "tokens.ca.pin",
        "unknown key",
    ),
    Broken(
        "unknown-in-key",
        (("[keys.root-ca]\n", '[keys.root-ca]\nalgoritm = "ecdsa-p384"\n'),),
        "keys.root-ca.algoritm",
        "unknown key",
    ),
    Broken(
        "unknown-in-subject",
        (
            (
                'organization = "airseal example" }',
                'organization = "airseal example", title = "x" }',
            ),
        ),
        "certificates.root.subject.title",
        "unknown key",
    ),
    Broken(
        "unknown-in-custodian",
        ((CUSTODIAN_BOB, CUSTODIAN_BOB + 'email = "bob@example.org"\n'),),
        "custodians[1].email",
        "unknown key",
    ),
    Broken(
        "unknown-in-tuf-root",
        (("[tuf.root]\n", '[tuf.root]\nkeys = ["tuf-online"]\n'),),
        "tuf.root.keys",
        "unknown key (expected one of: threshold, expires)",
    ),
    Broken(
        "unknown-in-trusted-root-service",
        (("[trusted_root.ca]\n", '[trusted_root.ca]\nkey = "tlog"\n'),),
        "trusted_root.ca.key",
        "unknown key",
    ),
    Broken(
        "unknown-certificate",
        (("[trusted_root.ca]", '[certificates.leaf]\nkey = "tsa"\n\n[trusted_root.ca]'),),
        "certificates.leaf",
        "unknown certificate (expected one of: root, intermediate, tsa)",
    ),
    # Dates.
    Broken(
        "local-datetime",
        (("not_before = 2026-11-01T00:00:00Z", "not_before = 2026-11-01T00:00:00"),),
        "certificates.root.not_before",
        "give an explicit offset such as 2026-11-01T00:00:00Z",
    ),
    Broken(
        "local-date",
        (("expires = 2027-11-01T00:00:00Z", "expires = 2027-11-01"),),
        "tuf.root.expires",
        "a date without time",
    ),
    Broken(
        "now",
        (("valid_from = 2026-11-01T00:00:00Z", 'valid_from = "now"'),),
        "trusted_root.ca.valid_from",
        "got the string 'now'",
    ),
    Broken(
        "fractional-seconds",
        (("not_after = 2036-11-01T00:00:00Z", "not_after = 2036-11-01T00:00:00.5Z"),),
        "certificates.root.not_after",
        "fractional seconds",
    ),
    Broken(
        "not-after-before-not-before",
        (("not_after = 2036-11-01T00:00:00Z", "not_after = 2026-10-01T00:00:00Z"),),
        "certificates.root.not_after",
        "2026-10-01T00:00:00Z is not after not_before 2026-11-01T00:00:00Z",
    ),
    Broken(
        "intermediate-outlives-root",
        (("not_after = 2031-11-01T00:00:00Z", "not_after = 2037-01-01T00:00:00Z"),),
        "certificates.intermediate.not_after",
        "is after the root's not_after 2036-11-01T00:00:00Z",
    ),
    Broken(
        "tsa-predates-root",
        (
            (
                'key = "tsa"\nsubject = { common_name = "airseal example timestamping", '
                'organization = "airseal example" }\nnot_before = 2026-11-01T00:00:00Z',
                'key = "tsa"\nsubject = { common_name = "airseal example timestamping", '
                'organization = "airseal example" }\nnot_before = 2026-10-01T00:00:00Z',
            ),
        ),
        "certificates.tsa.not_before",
        "is before the root's not_before",
    ),
    Broken(
        "service-window-reversed",
        (
            (
                'url = "https://tsa.airseal.example"\nvalid_from = 2026-11-01T00:00:00Z\n',
                'url = "https://tsa.airseal.example"\nvalid_from = 2026-11-01T00:00:00Z\n'
                "valid_until = 2026-01-01T00:00:00Z\n",
            ),
        ),
        "trusted_root.tsa.valid_until",
        "is not after valid_from",
    ),
    # Missing things.
    Broken(
        "missing-serial",
        (
            (
                'uri = "pkcs11:token=custodian-bob"\nserial = "0000000000000003"\n',
                'uri = "pkcs11:token=custodian-bob"\n',
            ),
        ),
        "tokens.bob.serial",
        "missing (required)",
    ),
    Broken(
        "missing-trusted-root-ctlog",
        (
            (
                '[trusted_root.ctlog]\nurl = "https://ctlog.airseal.example"\nkey = "ctlog"\n'
                "valid_from = 2026-11-01T00:00:00Z\n",
                "",
            ),
        ),
        "trusted_root.ctlog",
        "missing (required)",
    ),
    Broken(
        "missing-tsa-certificate",
        (('[certificates.tsa]\nkey = "tsa"', '[certificates.unused]\nkey = "tsa"'),),
        "certificates.unused",
        "unknown certificate",
    ),
    Broken(
        "missing-common-name",
        (('subject = { common_name = "airseal example root CA", ', "subject = { "),),
        "certificates.root.subject.common_name",
        "missing (required)",
    ),
    Broken(
        "missing-ctlog-key",
        (('purpose = "ctlog"', 'purpose = "tuf-online"'),),
        "keys",
        "no key with purpose ctlog (exactly one is required)",
    ),
    # Algorithms, schemes and purposes.
    Broken(
        "root-ca-not-p384",
        (
            (
                'algorithm = "ecdsa-p384"          # the root',
                'algorithm = "ecdsa-p256"          # the root',
            ),
        ),
        "keys.root-ca.algorithm",
        "expected ecdsa-p384 for a root-ca key, got 'ecdsa-p256'",
    ),
    Broken(
        "ctlog-not-p256",
        (('algorithm = "ecdsa-p256"          # CT', 'algorithm = "ed25519"          # CT'),),
        "keys.ctlog.algorithm",
        "expected ecdsa-p256 for a ctlog key",
    ),
    Broken(
        "unknown-algorithm",
        ((TSA_KEY, TSA_KEY.replace("ecdsa-p256", "rsa-2048")),),
        "keys.tsa.algorithm",
        "expected one of ecdsa-p256, ecdsa-p384, ed25519, rsa-3072, rsa-4096; got 'rsa-2048'",
    ),
    Broken(
        "scheme-does-not-fit",
        ((TSA_KEY, TSA_KEY + 'scheme = "PKIX_RSA_PSS_3072_SHA256"\n'),),
        "keys.tsa.scheme",
        "PKIX_RSA_PSS_3072_SHA256 signs with rsa-3072 keys, not ecdsa-p256",
    ),
    Broken(
        "unknown-purpose",
        ((TSA_KEY, TSA_KEY.replace('purpose = "tsa"', 'purpose = "timestamp"')),),
        "keys.tsa.purpose",
        "expected one of root-ca, intermediate-ca, tsa, tlog, ctlog, tuf-root, tuf-online",
    ),
    Broken(
        "second-root-ca-key",
        (('purpose = "intermediate-ca"', 'purpose = "root-ca"'),),
        "keys.intermediate-ca.purpose",
        "a second root-ca key (keys.root-ca is one already",
    ),
    Broken(
        "certificate-key-wrong-purpose",
        (('[certificates.tsa]\nkey = "tsa"', '[certificates.tsa]\nkey = "tlog"'),),
        "certificates.tsa.key",
        "keys.tlog has purpose tlog; expected tsa",
    ),
    Broken(
        "trusted-root-tlog-key-wrong-purpose",
        (('key = "tlog"\nvalid_from', 'key = "ctlog"\nvalid_from'),),
        "trusted_root.tlog.key",
        "keys.ctlog has purpose ctlog; expected tlog",
    ),
    Broken(
        "key-on-unknown-token",
        ((TSA_KEY, TSA_KEY.replace('token = "ca"', 'token = "hsm"')),),
        "keys.tsa.token",
        "unknown token 'hsm' (tokens: ca, alice, bob, carol)",
    ),
    Broken(
        "duplicate-label-on-token",
        ((TSA_KEY, TSA_KEY.replace('label = "airseal-tsa"', 'label = "airseal-root-ca"')),),
        "keys.tsa.label",
        "label 'airseal-root-ca' is already used on token 'ca' by keys.root-ca",
    ),
    Broken(
        "bad-key-name",
        (("[keys.tsa]", "[keys.TSA]"),),
        "keys.TSA",
        "key name must be lower-case",
    ),
    # Custodians and thresholds.
    Broken(
        "threshold-above-custodians",
        (("threshold = 2", "threshold = 4"),),
        "tuf.root.threshold",
        "4 is more than the 3 custodian(s)",
    ),
    Broken(
        "threshold-zero",
        (("threshold = 2", "threshold = 0"),),
        "tuf.root.threshold",
        "must be at least 1",
    ),
    Broken(
        "threshold-boolean",
        (("threshold = 2", "threshold = true"),),
        "tuf.root.threshold",
        "expected an integer, got a boolean",
    ),
    Broken(
        "custodian-key-on-wrong-token",
        (
            (
                'token = "bob"\nlabel = "airseal-tuf-root"',
                'token = "alice"\nlabel = "airseal-tuf-root-2"',
            ),
        ),
        "custodians[1].key",
        "keys.tuf-root-bob is on token 'alice', not on this custodian's token 'bob'",
    ),
    Broken(
        "custodian-key-not-tuf-root",
        ((CUSTODIAN_BOB, CUSTODIAN_BOB.replace('key = "tuf-root-bob"', 'key = "tuf-online"')),),
        "custodians[1].key",
        "keys.tuf-online has purpose tuf-online; expected tuf-root",
    ),
    Broken(
        "custodians-share-a-key",
        ((CUSTODIAN_BOB, CUSTODIAN_BOB.replace('key = "tuf-root-bob"', 'key = "tuf-root-alice"')),),
        "custodians[1].key",
        "key 'tuf-root-alice' is already held by custodians[0]",
    ),
    Broken(
        "custodians-share-a-token",
        (('name = "Carol Example"\ntoken = "carol"', 'name = "Carol Example"\ntoken = "bob"'),),
        "custodians[2].token",
        "token 'bob' is already held by custodians[1]",
    ),
    Broken(
        "tuf-root-key-without-custodian",
        (
            (
                "[keys.tuf-root-alice]",
                '[keys.spare-root]\npurpose = "tuf-root"\nalgorithm = "ed25519"\ntoken = "ca"\n'
                'label = "spare"\n\n[keys.tuf-root-alice]',
            ),
        ),
        "keys.spare-root",
        "tuf-root key is not held by any custodian",
    ),
    Broken(
        "role-threshold-above-keys",
        (
            (
                'threshold = 1\nkeys = ["tuf-online"]\nexpiry_days = 7',
                'threshold = 2\nkeys = ["tuf-online"]\nexpiry_days = 7',
            ),
        ),
        "tuf.snapshot.threshold",
        "2 is more than the 1 key(s) of the role",
    ),
    Broken(
        "role-unknown-key",
        (('keys = ["tuf-online"]', 'keys = ["tuf-offline"]'),),
        "tuf.targets.keys[0]",
        "unknown key 'tuf-offline'",
    ),
    Broken(
        "role-key-wrong-purpose",
        (('keys = ["tuf-online"]', 'keys = ["tuf-online", "tsa"]'),),
        "tuf.targets.keys[1]",
        "keys.tsa has purpose tsa; expected tuf-online or tuf-root",
    ),
    Broken(
        "expiry-days-zero",
        (("expiry_days = 1", "expiry_days = 0"),),
        "tuf.timestamp.expiry_days",
        "must be between 1 and 3660",
    ),
    # Tokens and URIs.
    Broken(
        "pin-value-in-uri",
        (('"pkcs11:token=airseal-ca"', '"pkcs11:token=airseal-ca?pin-value=123456"'),),
        "tokens.ca.uri",
        "must not carry pin-value: PINs never go into the config",
    ),
    Broken(
        "pin-value-in-uri-path",
        (('"pkcs11:token=airseal-ca"', '"pkcs11:token=airseal-ca;pin-value=123456"'),),
        "tokens.ca.uri",
        "must not carry pin-value",
    ),
    Broken(
        "uri-without-token",
        (('"pkcs11:token=airseal-ca"', '"pkcs11:manufacturer=SoftHSM"'),),
        "tokens.ca.uri",
        "must name the token with token=<label>",
    ),
    Broken(
        "not-a-pkcs11-uri",
        (('"pkcs11:token=airseal-ca"', '"file:/etc/airseal/ca.pem"'),),
        "tokens.ca.uri",
        "must be a pkcs11: URI",
    ),
    Broken(
        "uri-names-an-object",
        (('"pkcs11:token=airseal-ca"', '"pkcs11:token=airseal-ca;object=root"'),),
        "tokens.ca.uri",
        "a token URI names the token only; remove object=",
    ),
    Broken(
        "uri-serial-differs",
        (('"pkcs11:token=airseal-ca"', '"pkcs11:token=airseal-ca;serial=99"'),),
        "tokens.ca.uri",
        "serial=99 differs from serial '0000000000000001'",
    ),
    Broken(
        "duplicate-token-label",
        (('"pkcs11:token=custodian-bob"', '"pkcs11:token=custodian-alice"'),),
        "tokens.bob.uri",
        "token label 'custodian-alice' is already used by tokens.alice",
    ),
    Broken(
        "serial-too-long",
        (('serial = "0000000000000001"', 'serial = "00000000000000001"'),),
        "tokens.ca.serial",
        "at most 16 ASCII characters",
    ),
    Broken(
        "token-without-keys",
        (
            (
                "[tokens.alice]",
                '[tokens.spare]\nuri = "pkcs11:token=spare"\nserial = "99"\n\n[tokens.alice]',
            ),
        ),
        "tokens.spare",
        "holds no key",
    ),
    Broken(
        "tuf-online-key-unused",
        (
            ('keys = ["tuf-online"]', 'keys = ["tuf-root-alice"]'),
            ('keys = ["tuf-online"]', 'keys = ["tuf-root-alice"]'),
            ('keys = ["tuf-online"]', 'keys = ["tuf-root-alice"]'),
        ),
        "keys.tuf-online",
        "tuf-online key is not used by",
    ),
    # URLs.
    Broken(
        "http-to-remote-host",
        (('url = "https://tlog.airseal.example"', 'url = "http://tlog.airseal.example"'),),
        "trusted_root.tlog.url",
        "http:// is only allowed for 127.0.0.1 and localhost",
    ),
    Broken(
        "ftp-url",
        (('url = "https://ca.airseal.example"', 'url = "ftp://ca.airseal.example"'),),
        "trusted_root.ca.url",
        "must be an https:// URL",
    ),
    Broken(
        "url-with-credentials",
        (('url = "https://ca.airseal.example"', 'url = "https://user:pw@ca.airseal.example"'),),
        "trusted_root.ca.url",
        "must not carry user name or password",
    ),
    # Other field rules.
    Broken(
        "bad-ceremony-id",
        (('id = "airseal-root-2026"', 'id = "Airseal Root"'),),
        "ceremony.id",
        "must be lower-case letters",
    ),
    Broken(
        "relative-module",
        (('"/usr/lib/softhsm/libsofthsm2.so"', '"libsofthsm2.so"'),),
        "ceremony.pkcs11_module",
        "must be an absolute path",
    ),
    Broken(
        "bad-country",
        (
            (
                'organization = "airseal example" }',
                'organization = "airseal example", country = "Germany" }',
            ),
        ),
        "certificates.root.subject.country",
        "two upper-case letters",
    ),
    Broken(
        "control-character",
        (('common_name = "airseal example root CA"', 'common_name = "airseal \\u001b[31mroot"'),),
        "certificates.root.subject.common_name",
        "must not contain control characters",
    ),
    Broken(
        "same-subject-as-root",
        (
            (
                'common_name = "airseal example intermediate CA"',
                'common_name = "airseal example root CA"',
            ),
        ),
        "certificates.intermediate.subject",
        "same subject as certificates.root",
    ),
    Broken(
        "wrong-type",
        (('output_dir = "out"', "output_dir = 7"),),
        "ceremony.output_dir",
        "expected a string, got an integer",
    ),
    Broken(
        "empty-string",
        (('label = "airseal-tsa"', 'label = ""'),),
        "keys.tsa.label",
        "must not be empty",
    ),
]


@pytest.mark.parametrize("case", BROKEN, ids=[case.id for case in BROKEN])
def test_broken_config_names_the_dotted_path(case: Broken) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(edited(*case.edits))
    error = caught.value
    assert error.path == case.path, error.message
    assert error.message.startswith(f"{case.path}: "), error.message
    assert case.detail in error.detail, error.message
    assert "\n" not in error.message
    assert error.exit_code == 2


def test_pin_value_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(
            edited(('"pkcs11:token=airseal-ca"', '"pkcs11:token=airseal-ca?pin-value=s3cr3t-PIN"'))
        )
    assert "s3cr3t" not in caught.value.diagnostics()
    assert caught.value.hint is not None
    assert "AIRSEAL_PIN_CA" in caught.value.hint


def test_bad_toml_names_line_and_column() -> None:
    text = edited(("threshold = 2", "threshold = = 2"))
    with pytest.raises(ConfigError) as caught:
        parse(text)
    line = line_of(text, "threshold = = 2")
    assert f"invalid TOML at line {line}, column " in caught.value.message
    assert caught.value.message.startswith("root-ceremony.toml: ")


def test_duplicate_toml_key_names_line() -> None:
    text = edited(('id = "airseal-root-2026"\n', 'id = "airseal-root-2026"\nid = "again"\n'))
    line = line_of(text, 'id = "again"')
    with pytest.raises(ConfigError, match=rf"line {line}, column"):
        parse(text)


def test_not_utf8() -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_config(b'[ceremony]\nid = "\xff"\n', path=EXAMPLE)


def test_no_custodians() -> None:
    text = TEXT.split("[[custodians]]")[0] + "[certificates" + TEXT.split("[certificates", 1)[1]
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert caught.value.path == "custodians"


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read ceremony config"):
        load_config(EXAMPLE.with_name("missing.toml"))


def test_error_classes() -> None:
    assert issubclass(ConfigError, FormatError)
    assert issubclass(CeremonyError, Error)
    assert not issubclass(ConfigError, CeremonyError)


def test_reference_documents_every_key() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "ceremony.md").read_text(encoding="utf-8")
    reference = doc.split("## Config reference", 1)[1]
    optional = [
        "description",
        "scheme",
        "valid_until",
        "organizational_unit",
        "country",
        "state_or_province",
        "locality",
        "consistent_snapshot",
        "pkcs11_module",
    ]

    def leaves(table: dict[str, object]) -> set[str]:
        found: set[str] = set()
        for key, value in table.items():
            found.add(key)
            if isinstance(value, dict):
                found |= leaves(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, dict):
                        found |= leaves(item)
        return found

    names = leaves(tomllib.loads(TEXT)) | set(optional)
    # Names chosen by the config author (tokens, keys) are not reference entries.
    names -= set(load_config(EXAMPLE).tokens) | set(load_config(EXAMPLE).keys)
    missing = sorted(name for name in names if name not in reference)
    assert missing == []
