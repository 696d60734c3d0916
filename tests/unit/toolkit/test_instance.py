"""The pure parts of a local instance: ceremony config, instance.toml, trust configs, mirror."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.support.factory import FakeSigstore
from toolkit.errors import FormatError, UsageError
from toolkit.instance import (
    OFFSETS,
    Ports,
    TufStaticConfig,
    ceremony_config,
    client_trust_config,
    instance_toml,
    local_signing_config,
    static_app,
    tlog_origin,
)
from toolkit.models.signing_config import ClientTrustConfig, SigningConfig
from toolkit.services.config import ConfigFile

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
START = datetime(2026, 12, 2, tzinfo=UTC)

_KEYS_TOML = """\
[pkcs11]
module = "/usr/lib/softhsm/libsofthsm2.so"
module_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

{keys}
"""


def _keys_toml(path: Path) -> Path:
    keys = "\n".join(
        f'[keys.{name}]\npurpose = "{purpose}"\nuri = "pkcs11:token=airseal-ca;object={name}"\n'
        f'scheme = "{scheme}"\nspki_sha256 = "{"00" * 32}"\n'
        for name, purpose, scheme in [
            ("intermediate-ca", "intermediate-ca", "PKIX_ECDSA_P384_SHA_384"),
            ("ctlog", "ctlog", "PKIX_ECDSA_P256_SHA_256"),
            ("tlog", "tlog", "PKIX_ED25519"),
            ("tsa", "tsa", "PKIX_ECDSA_P256_SHA_256"),
            ("tuf-online", "tuf-online", "PKIX_ED25519"),
        ]
    )
    path.write_text(_KEYS_TOML.format(keys=keys), encoding="utf-8")
    return path


def _trusted_root() -> bytes:
    return json.dumps(FakeSigstore().trusted_root(tlogs=("v2",))).encode()


# -- ports --


def test_ports_follow_the_contract() -> None:
    ports = Ports(3000)
    assert [ports.port(s) for s in OFFSETS] == [3000, 3001, 3002, 3003, 3004, 3005]
    assert ports.url("tuf_static") == "http://127.0.0.1:3005"
    assert ports.listen("log") == "127.0.0.1:3003"


@pytest.mark.parametrize("base", [0, 65531, 70000])
def test_a_port_base_without_room_is_refused(base: int) -> None:
    with pytest.raises(UsageError, match="port-base"):
        Ports(base)


# -- ceremony config --


def test_the_ceremony_config_is_the_example_with_dates_around_now() -> None:
    document = tomllib.loads(ceremony_config(NOW))
    assert document["ceremony"]["output_dir"] == "ceremony"
    assert document["certificates"]["root"]["not_before"] == START
    assert document["certificates"]["root"]["not_after"] == START.replace(year=2036)
    assert document["certificates"]["intermediate"]["not_after"] == START.replace(year=2031)
    assert document["trusted_root"]["tlog"]["url"] == "https://tlog.airseal.example"
    assert all(v["valid_from"] == START for v in document["trusted_root"].values())
    assert document["tuf"]["root"]["expires"] > NOW.replace(year=2027)
    assert "@" not in ceremony_config(NOW).replace("@example", "")


def test_the_ceremony_tool_accepts_the_ceremony_config(tmp_path: Path) -> None:
    # A test may use the ceremony package (toolkit itself never imports it).
    from ceremony.config import load_config

    path = tmp_path / "ceremony.toml"
    path.write_text(ceremony_config(NOW), encoding="utf-8")
    config = load_config(path)
    assert config.output_dir == tmp_path / "ceremony"


def test_the_ceremony_config_needs_an_aware_time() -> None:
    with pytest.raises(UsageError):
        ceremony_config(datetime(2026, 12, 3))


# -- instance.toml --


def test_instance_toml_configures_every_service(tmp_path: Path) -> None:
    from toolkit.cli._serve_log import LogSettings
    from toolkit.services.ca.config import CAConfig
    from toolkit.services.ca.oidc import IssuerType
    from toolkit.services.ct.config import CTConfig
    from toolkit.services.oidc_dev.config import OidcDevConfig
    from toolkit.services.tsa.config import TsaConfig
    from toolkit.trust.repository import RepositoryConfig

    (tmp_path / "ceremony").mkdir()
    _keys_toml(tmp_path / "ceremony" / "keys.toml")
    path = tmp_path / "instance.toml"
    path.write_text(instance_toml(Ports(4100), "tlog.airseal.example"), encoding="utf-8")
    file = ConfigFile.load(path)
    assert file.instance.trusted_root == tmp_path / "ceremony" / "trusted_root.json"

    oidc = OidcDevConfig.from_config(file)
    assert (oidc.listen, oidc.issuer) == ("127.0.0.1:4100", "http://127.0.0.1:4100")
    assert oidc.key == f"file:{tmp_path / 'oidc-dev-key.pem'}"

    ca = CAConfig.from_file(file)
    assert ca.listen == "127.0.0.1:4101"
    assert ca.key == "pkcs11:token=airseal-ca;object=intermediate-ca"
    assert [(i.url, i.type) for i in ca.issuers] == [("http://127.0.0.1:4100", IssuerType.EMAIL)]
    assert ca.chain[0] == tmp_path / "ceremony" / "intermediate-ca.pem"

    ct = CTConfig.from_file(file)
    assert (ct.listen, ct.data) == ("127.0.0.1:4102", tmp_path / "data" / "ct")

    log = LogSettings.from_file(file)
    assert (log.listen, log.data) == ("127.0.0.1:4103", tmp_path / "data" / "log")
    assert log.origin == "tlog.airseal.example"
    assert log.key == "pkcs11:token=airseal-ca;object=tlog"
    assert not log.v1

    tsa = TsaConfig.from_table(file.require_section("tsa"), file)
    assert (tsa.listen, tsa.chain) == ("127.0.0.1:4104", tmp_path / "ceremony" / "tsa-chain.pem")

    static = TufStaticConfig.from_file(file)
    assert static == TufStaticConfig("127.0.0.1:4105", tmp_path / "tuf")

    trust = RepositoryConfig.from_config(file)
    assert trust.directory == tmp_path / "tuf-repo"
    assert trust.key_uris == ("pkcs11:token=airseal-ca;object=tuf-online",)
    assert trust.policy.timestamp.expiry.days == 30


def test_the_log_table_is_strict(tmp_path: Path) -> None:
    from toolkit.cli._serve_log import LogSettings

    path = tmp_path / "c.toml"
    path.write_text('[log]\norigin = "x"\nbatch = 3\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"log\.batch"):
        LogSettings.from_file(ConfigFile.load(path))
    path.write_text('[log]\norigin = "https://x"\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"log\.origin"):
        LogSettings.from_file(ConfigFile.load(path))
    path.write_text('[log]\nlisten = "nowhere"\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"log\.listen"):
        LogSettings.from_file(ConfigFile.load(path))
    path.write_text('[log]\nkey = "file:k.pem"\nv1 = true\n', encoding="utf-8")
    settings = LogSettings.from_file(ConfigFile.load(path))
    assert settings.key == f"file:{tmp_path / 'k.pem'}"
    assert settings.v1
    assert settings.override(listen="127.0.0.1:1", origin=None).listen == "127.0.0.1:1"


def test_the_static_table_is_optional_and_strict(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[ca]\n", encoding="utf-8")
    assert TufStaticConfig.from_file(ConfigFile.load(path)) is None
    path.write_text('[tuf_static]\ndir = "tuf"\nindex = true\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"tuf_static\.index"):
        TufStaticConfig.from_file(ConfigFile.load(path))
    path.write_text("[tuf_static]\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"tuf_static\.dir"):
        TufStaticConfig.from_file(ConfigFile.load(path))


# -- signing config and client trust config --


def test_the_signing_config_names_the_local_services() -> None:
    document = json.loads(local_signing_config(Ports(3000), START).to_json())
    assert document["mediaType"] == "application/vnd.dev.sigstore.signingconfig.v0.2+json"
    assert [s["url"] for s in document["caUrls"]] == ["http://127.0.0.1:3001"]
    assert [s["url"] for s in document["oidcUrls"]] == ["http://127.0.0.1:3000"]
    assert [(s["url"], s["majorApiVersion"]) for s in document["rekorTlogUrls"]] == [
        ("http://127.0.0.1:3003", 2)
    ]
    assert [s["url"] for s in document["tsaUrls"]] == ["http://127.0.0.1:3004/api/v1/timestamp"]
    for key in ("caUrls", "oidcUrls", "rekorTlogUrls", "tsaUrls"):
        assert document[key][0]["validFor"] == {"start": "2026-12-02T00:00:00Z"}
    assert SigningConfig.from_json(json.dumps(document)) == local_signing_config(Ports(3000), START)


def test_the_client_trust_config_parses_here_and_in_sigstore_python() -> None:
    from sigstore.models import ClientTrustConfig as SigstoreClientTrustConfig

    trusted_root = _trusted_root()
    data = client_trust_config(trusted_root, local_signing_config(Ports(3000), START))
    document = json.loads(data)
    assert document["mediaType"] == "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
    assert document["trustedRoot"] == json.loads(trusted_root)
    parsed = ClientTrustConfig.from_json(data)
    assert parsed.signing_config.ca_urls[0].url == "http://127.0.0.1:3001"
    SigstoreClientTrustConfig.from_json(data.decode())


def test_the_log_origin_is_the_host_of_the_tlog_url() -> None:
    root = FakeSigstore().trusted_root(tlogs=("v2",))
    assert tlog_origin(json.dumps(root).encode()) == root["tlogs"][0]["baseUrl"].split("/")[2]
    root["tlogs"] = []
    with pytest.raises(FormatError):
        tlog_origin(json.dumps(root).encode())


# -- the static TUF mirror --


def test_the_mirror_serves_files_only(tmp_path: Path) -> None:
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "1.root.json").write_bytes(b'{"signed": {}}')
    (tmp_path / "outside.txt").write_text("x")
    client = TestClient(static_app(tmp_path / "metadata"))
    ok = client.get("/1.root.json")
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/json"
    assert ok.content == b'{"signed": {}}'
    assert client.head("/1.root.json").status_code == 200
    for path in ("/2.root.json", "/", "/../outside.txt", "/%2e%2e/outside.txt"):
        absent = client.get(path)
        assert absent.status_code == 404, path
        assert absent.headers["content-type"] == "application/problem+json"
        assert absent.json()["type"].endswith("/not-found")
    refused = client.post("/1.root.json", content=b"x")
    assert refused.status_code == 405
    assert refused.json()["type"].endswith("/method-not-allowed")


def test_the_mirror_needs_a_directory(tmp_path: Path) -> None:
    from toolkit.errors import EnvironmentSetupError

    with pytest.raises(EnvironmentSetupError, match="not a directory"):
        static_app(tmp_path / "absent")


# -- init --


def _failing_rehearsal(config: Path, out: Path) -> None:
    from toolkit.errors import EnvironmentSetupError

    assert config.is_file()
    out.mkdir()
    (out / "partial").write_text("x")
    raise EnvironmentSetupError("the ceremony rehearsal failed: no SoftHSM")


@pytest.mark.parametrize("exists", [True, False])
def test_a_failed_init_leaves_the_directory_as_it_found_it(tmp_path: Path, exists: bool) -> None:
    from toolkit.errors import EnvironmentSetupError
    from toolkit.instance import init_instance

    directory = tmp_path / "local"
    if exists:
        directory.mkdir()
    with pytest.raises(EnvironmentSetupError, match="no SoftHSM"):
        init_instance(directory, Ports(), rehearse=_failing_rehearsal, now=NOW)
    assert directory.exists() == exists
    if exists:
        assert not any(directory.iterdir())


def test_init_needs_the_rehearsal_outputs(tmp_path: Path) -> None:
    from toolkit.errors import EnvironmentSetupError
    from toolkit.instance import init_instance

    with pytest.raises(EnvironmentSetupError, match=r"left no 1\.root\.json"):
        init_instance(tmp_path, Ports(), rehearse=lambda _c, out: out.mkdir(), now=NOW)
    assert not any(tmp_path.iterdir())


def test_init_refuses_a_directory_that_is_not_empty_or_not_a_directory(tmp_path: Path) -> None:
    from toolkit.instance import init_instance

    (tmp_path / "file").write_text("x")
    for target in (tmp_path, tmp_path / "file"):
        with pytest.raises(UsageError):
            init_instance(target, Ports(), rehearse=_failing_rehearsal, now=NOW)
    assert (tmp_path / "file").read_text() == "x"


def test_the_ceremony_config_keeps_the_examples_keys_and_urls() -> None:
    example_path = Path(__file__).resolve().parents[3] / "ceremony" / "examples"
    example = tomllib.loads((example_path / "root-ceremony.toml").read_text(encoding="utf-8"))
    local = tomllib.loads(ceremony_config(NOW))
    for table in ("tokens", "keys", "custodians"):
        assert local[table] == example[table], table
    assert {k: v["url"] for k, v in local["trusted_root"].items()} == {
        k: v["url"] for k, v in example["trusted_root"].items()
    }
    assert local["tuf"]["root"]["threshold"] == example["tuf"]["root"]["threshold"]
