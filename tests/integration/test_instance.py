"""``airseal init`` + ``airseal serve all``: a whole local instance in one process.

One ``airseal init`` (a real rehearsal on SoftHSM, a real TUF repository) into
a temporary directory with a free port base, then ``airseal serve all`` as a
real process: a token from its oidc-dev issuer buys a certificate whose SCT
comes from the in-process CT log; the TSA stamps the signature; the log
records it; the pieces make a bundle that airseal's verifier, sigstore-python
and sigstore-js 5 accept with the instance's trust config; ``airseal trust
update`` verifies the trusted root from the served TUF repository; SIGTERM
stops everything with status 0 and a restart keeps both logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rfc3161_client import TimestampRequestBuilder

from tests.support.ca import public_key_request
from tests.support.hsm import require_softhsm
from tests.support.instance import AIRSEAL, ServiceProcess
from tests.support.log_server import hashedrekord_request, log_bundle, logged_signature
from tests.support.sigstore_clients import (
    require_sigstore_js,
    sigstore_js_reads_times,
    sigstore_js_verify,
)
from toolkit.models.trustroot import TrustedRoot
from toolkit.verify import Artifact, IdentityPolicy, Verifier, _x509
from toolkit.verify._trust import TrustMaterial

REPO = Path(__file__).resolve().parents[2]
EMAIL = "alice@example.com"
SERVICES = ("oidc-dev", "ca", "ct", "log", "tsa", "tuf")


def _free_port_base() -> int:
    """A port base N with N … N+5 free on 127.0.0.1 a moment ago."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        if base > 65000:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + 6):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError("no six consecutive free ports")


def _env() -> dict[str, str]:
    # instance.toml's keys.toml names its own SoftHSM config.
    return {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}


def _airseal(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRSEAL, *args],
        capture_output=True,
        text=True,
        env=_env(),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Instance:
    directory: Path
    base: int

    @property
    def config(self) -> Path:
        return self.directory / "instance.toml"

    def url(self, offset: int) -> str:
        return f"http://127.0.0.1:{self.base + offset}"

    def serve(self) -> ServiceProcess:
        return ServiceProcess(["serve", "all", "--config", str(self.config)], _env())


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Instance:
    require_softhsm()
    directory = tmp_path_factory.mktemp("instance") / "local"
    base = _free_port_base()
    result = _airseal("init", str(directory), "--port-base", str(base))
    assert result.returncode == 0, result.stderr
    assert f"airseal serve all --config {directory / 'instance.toml'}" in result.stdout
    return Instance(directory, base)


@pytest.fixture(scope="module")
def served(instance: Instance) -> Iterator[ServiceProcess]:
    process = instance.serve()
    with process.start(services=len(SERVICES)):
        yield process


# -- init --------------------------------------------------------------------------------


def test_init_writes_the_contract_files(instance: Instance) -> None:
    d = instance.directory
    for name in ("instance.toml", "trust_config.json", "root.sha256", "ceremony.toml"):
        assert (d / name).is_file(), name
    root_json = (d / "ceremony" / "1.root.json").read_bytes()
    assert (d / "root.sha256").read_text() == hashlib.sha256(root_json).hexdigest() + "\n"
    assert (d / "tuf" / "metadata" / "1.root.json").read_bytes() == root_json
    assert (d / "tuf" / "metadata" / "timestamp.json").is_file()
    assert (d / "oidc-dev-key.pem").stat().st_mode & 0o077 == 0

    trust = json.loads((d / "trust_config.json").read_bytes())
    assert trust["mediaType"] == "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
    assert trust["trustedRoot"] == json.loads((d / "ceremony" / "trusted_root.json").read_bytes())
    signing = trust["signingConfig"]
    assert signing["mediaType"] == "application/vnd.dev.sigstore.signingconfig.v0.2+json"
    assert signing["caUrls"][0]["url"] == instance.url(1)
    assert signing["oidcUrls"][0]["url"] == instance.url(0)
    assert signing["rekorTlogUrls"][0]["url"] == instance.url(3)
    assert signing["rekorTlogUrls"][0]["majorApiVersion"] == 2
    assert signing["tsaUrls"][0]["url"] == instance.url(4) + "/api/v1/timestamp"
    assert all("start" in signing[k][0]["validFor"] for k in ("caUrls", "tsaUrls"))

    config = tomllib.loads((d / "instance.toml").read_text())
    assert config["log"]["origin"] == "tlog.airseal.example"
    assert trust["trustedRoot"]["tlogs"][0]["baseUrl"] == "https://tlog.airseal.example"
    assert config["ca"]["issuers"] == [{"url": instance.url(0), "type": "email"}]


def test_sigstore_python_accepts_the_trust_config(instance: Instance) -> None:
    from sigstore.models import ClientTrustConfig

    ClientTrustConfig.from_json((instance.directory / "trust_config.json").read_text())


def test_init_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = _airseal("init", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "is not empty" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["something"]


# -- serve all ---------------------------------------------------------------------------


def test_serve_all_prints_one_ready_line_per_service(
    instance: Instance, served: ServiceProcess
) -> None:
    names = {name.split()[0]: url for name, url in served.urls.items()}
    assert names == {name: instance.url(i) for i, name in enumerate(SERVICES)}
    assert "log tlog.airseal.example" in served.urls
    assert "ct ctlog.airseal.example" in served.urls


def _token(instance: Instance) -> str:
    response = httpx.post(instance.url(0) + "/token", json={"identity": EMAIL}, timeout=10)
    assert response.status_code == 200, response.text
    token: str = response.json()["id_token"]
    return token


def _ct_size(instance: Instance) -> int:
    response = httpx.get(instance.url(2) + "/ct/v1/get-sth", timeout=10)
    assert response.status_code == 200
    size: int = response.json()["tree_size"]
    return size


def _log_size(instance: Instance) -> int:
    response = httpx.get(instance.url(3) + "/checkpoint", timeout=10)
    assert response.status_code == 200
    return int(response.text.split("\n")[1])


def _certificate(instance: Instance, key: ec.EllipticCurvePrivateKey) -> list[x509.Certificate]:
    response = httpx.post(
        instance.url(1) + "/api/v2/signingCert",
        json=public_key_request(_token(instance), key, EMAIL),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    pems = response.json()["signedCertificateEmbeddedSct"]["chain"]["certificates"]
    return [x509.load_pem_x509_certificate(p.encode()) for p in pems]


def _timestamp(instance: Instance, signature: bytes) -> bytes:
    query = TimestampRequestBuilder().data(signature).nonce(nonce=True).build()
    response = httpx.post(
        instance.url(4) + "/api/v1/timestamp",
        content=query.as_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    return response.content


def _wait(probe: Any, size: int) -> int:
    deadline = time.monotonic() + 10
    while (got := probe()) < size and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(got)


@dataclass(frozen=True)
class Signed:
    artifact: Path
    bundle: Path


@pytest.fixture(scope="module")
def signed(
    instance: Instance, served: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Signed:
    """A bundle made of the instance's answers: certificate, log entry, timestamp."""
    trusted_root = (instance.directory / "ceremony" / "trusted_root.json").read_bytes()
    trust = TrustMaterial(TrustedRoot.from_json(trusted_root))
    key = ec.generate_private_key(ec.SECP256R1())
    ct_before = _ct_size(instance)

    # Certificate: token from oidc-dev, SCT from the in-process CT log.
    chain = _certificate(instance, key)
    leaf = chain[0]
    assert leaf.public_key() == key.public_key()
    assert _x509.san_values(leaf) == (EMAIL,)
    assert _x509.oidc_issuer(leaf) == instance.url(0)
    _x509.verify_sct(leaf, chain, trust.ctlogs, trust.key_hashes)
    assert _wait(lambda: _ct_size(instance), ct_before + 1) == ct_before + 1

    # Log entry and timestamp of the signature.
    artifact = b"signed against a whole airseal instance\n"
    log_before = _log_size(instance)
    response = httpx.post(
        instance.url(3) + "/api/v2/log/entries",
        content=hashedrekord_request(key, leaf, artifact),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    entry = response.json()
    assert int(entry["logIndex"]) == log_before
    signature = logged_signature(entry)
    stamp = _timestamp(instance, signature)
    bundle = log_bundle(
        leaf.public_bytes(serialization.Encoding.DER), entry, artifact, signature, stamp
    )
    out = tmp_path_factory.mktemp("signed")
    (out / "artifact.txt").write_bytes(artifact)
    (out / "artifact.txt.sigstore.json").write_text(json.dumps(bundle))
    return Signed(out / "artifact.txt", out / "artifact.txt.sigstore.json")


def test_a_whole_signature_from_the_instance_verifies(instance: Instance, signed: Signed) -> None:
    trusted_root = TrustedRoot.from_json(
        (instance.directory / "ceremony" / "trusted_root.json").read_bytes()
    )
    policy = IdentityPolicy(issuer=instance.url(0), identity=EMAIL)
    result = Verifier(trusted_root).verify(
        signed.bundle.read_text(),
        Artifact.from_bytes(signed.artifact.read_bytes()),
        policy,
        now=dt.datetime.now(dt.UTC),
    )
    assert result.identity == EMAIL


def test_sigstore_python_verifies_it_with_the_trust_config(
    instance: Instance, signed: Signed
) -> None:
    sigstore = Path(AIRSEAL).with_name("sigstore")
    checked = subprocess.run(
        [
            str(sigstore),
            "--trust-config",
            str(instance.directory / "trust_config.json"),
            "verify",
            "identity",
            "--offline",
            "--bundle",
            str(signed.bundle),
            "--cert-identity",
            EMAIL,
            "--cert-oidc-issuer",
            instance.url(0),
            str(signed.artifact),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_sigstore_js_verifies_it_with_the_trust_config(
    instance: Instance, served: ServiceProcess, signed: Signed, tmp_path: Path
) -> None:
    """sigstore-js 5 (``make js``; skipped without it, failed under CI) accepts the bundle.

    The log's checkpoint origin (tlog.airseal.example) must be a substring of
    the trusted root's tlog baseUrl for sigstore-js.
    """
    require_sigstore_js()
    bundle = signed.bundle
    # The TSA writes genTime in whole seconds, a form sigstore-js 5 reads.
    assert sigstore_js_reads_times(bundle)
    trust_config = instance.directory / "trust_config.json"
    verdict = sigstore_js_verify(
        bundle, signed.artifact, trust_config, identity=EMAIL, issuer=instance.url(0)
    )
    assert verdict == {"ok": True, "content": "messageSignature"}
    wrong = sigstore_js_verify(
        bundle,
        signed.artifact,
        trust_config,
        identity="mallory@example.com",
        issuer=instance.url(0),
    )
    assert wrong["ok"] is False and wrong["error"] == "UNTRUSTED_SIGNER_ERROR", wrong


def test_sigstore_python_signs_against_the_instance(
    instance: Instance, served: ServiceProcess, tmp_path: Path
) -> None:
    # A stock client, given only trust_config.json and a token: CA, TSA and
    # Rekor v2 APIs exactly as it calls them; then it verifies its bundle.
    sigstore = str(Path(AIRSEAL).with_name("sigstore"))
    trust_config = str(instance.directory / "trust_config.json")
    artifact = tmp_path / "stock.txt"
    artifact.write_bytes(b"signed by sigstore-python against airseal serve all\n")
    signed = subprocess.run(
        [
            sigstore,
            "--trust-config",
            trust_config,
            "sign",
            "--identity-token",
            _token(instance),
            str(artifact),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert signed.returncode == 0, signed.stderr
    bundle = tmp_path / "stock.txt.sigstore.json"
    assert bundle.is_file()
    verified = subprocess.run(
        [
            sigstore,
            "--trust-config",
            trust_config,
            "verify",
            "identity",
            "--offline",
            "--bundle",
            str(bundle),
            "--cert-identity",
            EMAIL,
            "--cert-oidc-issuer",
            instance.url(0),
            str(artifact),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    trusted_root = TrustedRoot.from_json(
        (instance.directory / "ceremony" / "trusted_root.json").read_bytes()
    )
    result = Verifier(trusted_root).verify(
        bundle.read_text(),
        Artifact.from_bytes(artifact.read_bytes()),
        IdentityPolicy(issuer=instance.url(0), identity=EMAIL),
        now=dt.datetime.now(dt.UTC),
    )
    assert result.identity == EMAIL


def test_the_ca_refuses_a_proof_for_another_identity(
    instance: Instance, served: ServiceProcess
) -> None:
    # A token for one identity with the proof of another is refused by the CA.
    key = ec.generate_private_key(ec.SECP256R1())
    proof = key.sign(b"mallory@example.com", ec.ECDSA(hashes.SHA256()))
    response = httpx.post(
        instance.url(1) + "/api/v2/signingCert",
        json=public_key_request(_token(instance), key, EMAIL, proof=proof),
        timeout=30,
    )
    assert response.status_code in (400, 401, 403)
    assert response.headers["content-type"] == "application/problem+json"


def test_trust_update_verifies_the_served_trusted_root(
    instance: Instance, served: ServiceProcess, tmp_path: Path
) -> None:
    out = tmp_path / "trusted_root.json"
    result = _airseal(
        "trust",
        "update",
        "--mirror",
        instance.url(5),
        "--root-sha256",
        (instance.directory / "root.sha256").read_text().strip(),
        "--cache",
        str(tmp_path / "state"),
        "--output",
        str(out),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (instance.directory / "ceremony" / "trusted_root.json").read_bytes()
    wrong = _airseal(
        "trust",
        "update",
        "--mirror",
        instance.url(5),
        "--root-sha256",
        "00" * 32,
        "--cache",
        str(tmp_path / "state2"),
        "--output",
        str(tmp_path / "x.json"),
        timeout=60,
    )
    assert wrong.returncode != 0
    assert not (tmp_path / "x.json").exists()


def test_the_mirror_serves_files_and_nothing_else(
    instance: Instance, served: ServiceProcess
) -> None:
    ok = httpx.get(instance.url(5) + "/metadata/1.root.json", timeout=10)
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/json"
    assert ok.content == (instance.directory / "ceremony" / "1.root.json").read_bytes()
    for path in ("/metadata/", "/metadata/99.root.json", "/../instance.toml"):
        absent = httpx.get(instance.url(5) + path, timeout=10)
        assert absent.status_code == 404, path
        assert absent.headers["content-type"] == "application/problem+json"


def test_sigterm_stops_cleanly_and_a_restart_keeps_the_logs(tmp_path: Path) -> None:
    # An instance of its own: the module's shared one holds its ports until the end.
    require_softhsm()
    own = Instance(tmp_path / "own", _free_port_base())
    result = _airseal("init", str(own.directory), "--port-base", str(own.base))
    assert result.returncode == 0, result.stderr
    process = own.serve()
    with process.start(services=len(SERVICES)):
        key = ec.generate_private_key(ec.SECP256R1())
        _certificate(own, key)
        response = httpx.post(
            own.url(3) + "/api/v2/log/entries",
            content=hashedrekord_request(key, None, b"before the restart"),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        log_size = _wait(lambda: _log_size(own), 1)
        ct_size = _wait(lambda: _ct_size(own), 1)
        assert (log_size, ct_size) == (1, 1)
        assert process.stop(signal.SIGTERM) == 0
    restarted = own.serve()
    with restarted.start(services=len(SERVICES)):
        assert _log_size(own) == log_size
        assert _ct_size(own) == ct_size
        # The restarted log appends after what it kept.
        response = httpx.post(
            own.url(3) + "/api/v2/log/entries",
            content=hashedrekord_request(key, None, b"after the restart"),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        assert int(response.json()["logIndex"]) == log_size
        assert restarted.stop(signal.SIGTERM) == 0


def test_serve_log_reads_a_log_table(tmp_path: Path) -> None:
    config = tmp_path / "log.toml"
    config.write_text(
        '[log]\nlisten = "127.0.0.1:1"\ndata = "data"\norigin = "log.example.org"\n',
        encoding="utf-8",
    )
    # --listen overrides the table; the key is generated in the table's data directory.
    process = ServiceProcess(
        ["serve", "log", "--config", str(config), "--listen", "127.0.0.1:0"], _env()
    )
    with process.start():
        assert "log log.example.org" in process.urls
        key = ec.generate_private_key(ec.SECP256R1())
        response = httpx.post(
            process.url + "/api/v2/log/entries",
            content=hashedrekord_request(key, None, b"from a [log] table"),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        assert process.stop() == 0
    assert (tmp_path / "data" / "log-key.pem").is_file()
    assert json.loads((tmp_path / "data" / "log.json").read_text())["origin"] == "log.example.org"


def test_serve_log_needs_flags_or_a_config() -> None:
    result = _airseal("serve", "log", "--origin", "x")
    assert result.returncode == 2
    assert "give --data and --listen, or --config" in result.stderr


def test_serve_all_refuses_a_config_without_services(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text('[trust]\nrepository = "r"\n', encoding="utf-8")
    result = _airseal("serve", "all", "--config", str(config))
    assert result.returncode == 2
    assert "has none of the tables" in result.stderr


def test_the_ca_of_serve_all_uses_the_in_process_ct_log(instance: Instance, tmp_path: Path) -> None:
    # ct_url points nowhere: only the in-process CT log can give the SCT.
    ceremony = instance.directory / "ceremony"
    base = _free_port_base()
    oidc = f"http://127.0.0.1:{base}"
    config = tmp_path / "partial.toml"
    config.write_text(
        f"""\
[instance]
keys = "{ceremony / "keys.toml"}"
trusted_root = "{ceremony / "trusted_root.json"}"

[oidc_dev]
listen = "127.0.0.1:{base}"

[ca]
listen = "127.0.0.1:{base + 1}"
key = "intermediate-ca"
chain = ["{ceremony / "intermediate-ca.pem"}", "{ceremony / "root-ca.pem"}"]
ct_url = "http://127.0.0.1:1"

[[ca.issuers]]
url = "{oidc}"
type = "email"

[ct]
listen = "127.0.0.1:{base + 2}"
key = "ctlog"
data = "ct-data"
""",
        encoding="utf-8",
    )
    process = ServiceProcess(["serve", "all", "--config", str(config)], _env())
    with process.start(services=3):
        assert sorted(name.split()[0] for name in process.urls) == ["ca", "ct", "oidc-dev"]
        partial = Instance(tmp_path, base)
        chain = _certificate(partial, ec.generate_private_key(ec.SECP256R1()))
        trusted_root = TrustedRoot.from_json((ceremony / "trusted_root.json").read_bytes())
        trust = TrustMaterial(trusted_root)
        _x509.verify_sct(chain[0], chain, trust.ctlogs, trust.key_hashes)
        assert process.stop() == 0
