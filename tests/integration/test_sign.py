"""``airseal sign`` against real services, checked by ``airseal verify`` and sigstore-python.

A real instance on 127.0.0.1 from the rehearsed ceremony (SoftHSM keys):
oidc-dev, CT log, CA, TSA and a Rekor v2 log, each its own ``airseal serve``
process. Bundles come out of the ``airseal sign`` command (a subprocess, as a
user runs it):

* keyless message signatures and DSSE attestations verify with
  ``airseal verify`` and with sigstore-python's ``Verifier`` given the
  ceremony's trusted root;
* managed-key bundles (a file key and a SoftHSM key of the rehearsal) verify
  with ``airseal verify --key`` (sigstore-python has no managed-key check);
* service discovery through a ClientTrustConfig, tokens from the environment
  and from ``@file``;
* a CA, TSA or log that is down gives exit 3 and one line; a refused token
  gives exit 2 naming the CA's problem slug; never a bundle file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.instance import AIRSEAL, RehearsedCeremony
from tests.support.issuance import IssuanceInstance
from tests.support.log_server import free_port

EMAIL = "signer@example.com"
ARTIFACT = b"airseal sign integration artifact\n"


@pytest.fixture(scope="module")
def instance(
    rehearsed_ceremony: RehearsedCeremony, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IssuanceInstance]:
    work = tmp_path_factory.mktemp("sign")
    with IssuanceInstance(rehearsed_ceremony, work, tsa=True, log=True) as inst:
        yield inst


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "artifact.txt"
    path.write_bytes(ARTIFACT)
    return path


def _airseal(
    args: list[str], env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRSEAL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(env) if env is not None else None,
    )


def _services(instance: IssuanceInstance, ceremony: RehearsedCeremony) -> list[str]:
    assert instance.tsa_url is not None and instance.log_url is not None
    return [
        "--ca",
        instance.ca_url,
        "--tsa",
        instance.tsa_url,
        "--log",
        instance.log_url,
        "--trusted-root",
        str(ceremony.trusted_root),
    ]


def _sign(
    instance: IssuanceInstance,
    ceremony: RehearsedCeremony,
    artifact: Path,
    bundle: Path,
    *extra: str,
    credentials: list[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    creds = (
        credentials
        if credentials is not None
        else ["--oidc-dev", instance.oidc_url, "--identity", EMAIL]
    )
    return _airseal(
        [
            "sign",
            str(artifact),
            "--bundle",
            str(bundle),
            "--json",
            *creds,
            *extra,
            *_services(instance, ceremony),
        ],
        env=env if env is not None else ceremony.env,
    )


def _summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr + result.stdout
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _airseal_verify(
    artifact: Path, bundle: Path, ceremony: RehearsedCeremony, *policy: str
) -> dict[str, Any]:
    result = _airseal(
        [
            "verify",
            str(artifact),
            "--bundle",
            str(bundle),
            "--trusted-root",
            str(ceremony.trusted_root),
            "--json",
            *policy,
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    verdict: dict[str, Any] = json.loads(result.stdout)
    assert verdict["ok"] is True
    return verdict


def _sigstore_verifier(ceremony: RehearsedCeremony) -> Any:
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    return Verifier(trusted_root=TrustedRoot.from_file(str(ceremony.trusted_root)))


def _sigstore_policy(instance: IssuanceInstance) -> Any:
    from sigstore.verify import policy

    return policy.Identity(identity=EMAIL, issuer=instance.oidc_url)


def _sigstore_bundle(path: Path) -> Any:
    from sigstore.models import Bundle

    return Bundle.from_json(path.read_bytes())


# --------------------------------------------------------------------------- keyless


def test_keyless_blob_verifies_with_airseal_and_sigstore_python(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    artifact: Path,
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "artifact.sigstore.json"
    summary = _summary(_sign(instance, rehearsed_ceremony, artifact, bundle))
    assert summary["identity"] == EMAIL
    assert summary["issuer"] == instance.oidc_url
    assert summary["content"] == "messageSignature"
    assert summary["timestamps"] and summary["timestamps"][0]["source"] == "tsa"
    document = json.loads(bundle.read_bytes())
    assert document["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    material = document["verificationMaterial"]
    assert set(material) == {"certificate", "tlogEntries", "timestampVerificationData"}
    assert len(material["tlogEntries"]) == 1
    assert material["tlogEntries"][0]["kindVersion"] == {
        "kind": "hashedrekord",
        "version": "0.0.2",
    }
    assert "checkpoint" in material["tlogEntries"][0]["inclusionProof"]

    verdict = _airseal_verify(
        artifact, bundle, rehearsed_ceremony, "--identity", EMAIL, "--issuer", instance.oidc_url
    )
    assert verdict["log"]["index"] == summary["log"]["index"]
    _sigstore_verifier(rehearsed_ceremony).verify_artifact(
        ARTIFACT, _sigstore_bundle(bundle), _sigstore_policy(instance)
    )

    # The checks are real: another identity is refused by both verifiers.
    wrong = _airseal(
        [
            "verify",
            str(artifact),
            "--bundle",
            str(bundle),
            "--trusted-root",
            str(rehearsed_ceremony.trusted_root),
            "--identity",
            "mallory@example.com",
            "--issuer",
            instance.oidc_url,
        ]
    )
    assert wrong.returncode == 1 and "identity.san" in wrong.stderr
    from sigstore.errors import VerificationError
    from sigstore.verify import policy

    with pytest.raises(VerificationError):
        _sigstore_verifier(rehearsed_ceremony).verify_artifact(
            ARTIFACT,
            _sigstore_bundle(bundle),
            policy.Identity(identity="mallory@example.com", issuer=instance.oidc_url),
        )


def test_keyless_dsse_verifies_with_airseal_and_sigstore_python(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    artifact: Path,
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "artifact.intoto.sigstore.json"
    summary = _summary(_sign(instance, rehearsed_ceremony, artifact, bundle, "--dsse"))
    assert summary["content"] == "dsseEnvelope"
    document = json.loads(bundle.read_bytes())
    envelope = document["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [
        {"name": "artifact.txt", "digest": {"sha256": hashlib.sha256(ARTIFACT).hexdigest()}}
    ]
    _airseal_verify(
        artifact, bundle, rehearsed_ceremony, "--identity", EMAIL, "--issuer", instance.oidc_url
    )
    payload_type, payload = _sigstore_verifier(rehearsed_ceremony).verify_dsse(
        _sigstore_bundle(bundle), _sigstore_policy(instance)
    )
    assert payload_type == "application/vnd.in-toto+json"
    assert json.loads(payload) == statement

    # Another artifact is not the statement's subject.
    other = tmp_path / "other.txt"
    other.write_bytes(b"something else\n")
    result = _airseal(
        [
            "verify",
            str(other),
            "--bundle",
            str(bundle),
            "--trusted-root",
            str(rehearsed_ceremony.trusted_root),
            "--identity",
            EMAIL,
            "--issuer",
            instance.oidc_url,
        ]
    )
    assert result.returncode == 1 and "dsse.subject" in result.stderr


def _client_trust_config(instance: IssuanceInstance, ceremony: RehearsedCeremony) -> str:
    start = {"start": "2020-01-01T00:00:00Z"}
    assert instance.log_url is not None and instance.tsa_url is not None

    def service(url: str, version: int) -> dict[str, object]:
        return {"url": url, "majorApiVersion": version, "validFor": start, "operator": "airseal"}

    return json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": ceremony.trusted_root_json(),
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(instance.ca_url, 1)],
                "oidcUrls": [service(instance.oidc_url, 1)],
                # A v1 log first: this client speaks Rekor v2 and skips it.
                "rekorTlogUrls": [
                    service("http://127.0.0.1:9", 1),
                    service(instance.log_url, 2),
                ],
                "tsaUrls": [service(instance.tsa_url + "/api/v1/timestamp", 1)],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }
    )


def test_trust_config_and_token_sources(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    artifact: Path,
    tmp_path: Path,
) -> None:
    config = tmp_path / "trust_config.json"
    config.write_text(_client_trust_config(instance, rehearsed_ceremony))
    token = instance.token(EMAIL)

    # The token from the environment.
    bundle = tmp_path / "env.sigstore.json"
    result = _airseal(
        ["sign", str(artifact), "--bundle", str(bundle), "--trust-config", str(config)],
        env={**rehearsed_ceremony.env, "AIRSEAL_IDENTITY_TOKEN": token},
    )
    assert result.returncode == 0, result.stderr
    assert token not in result.stdout + result.stderr
    assert f"as {EMAIL}" in result.stdout
    _airseal_verify(
        artifact, bundle, rehearsed_ceremony, "--identity", EMAIL, "--issuer", instance.oidc_url
    )

    # The token from a file, DSSE.
    token_file = tmp_path / "token.jwt"
    token_file.write_text(token + "\n")
    bundle = tmp_path / "file.sigstore.json"
    summary = _summary(
        _airseal(
            [
                "sign",
                str(artifact),
                "--dsse",
                "--bundle",
                str(bundle),
                "--json",
                "--identity-token",
                f"@{token_file}",
                "--trust-config",
                str(config),
            ],
            env=rehearsed_ceremony.env,
        )
    )
    assert summary["identity"] == EMAIL and summary["content"] == "dsseEnvelope"
    _sigstore_verifier(rehearsed_ceremony).verify_dsse(
        _sigstore_bundle(bundle), _sigstore_policy(instance)
    )


def test_airseal_token_prints_a_jwt_the_ca_accepts(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    artifact: Path,
    tmp_path: Path,
) -> None:
    result = _airseal(["token", "--oidc-dev", instance.oidc_url, "--identity", EMAIL])
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    _header, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["email"] == EMAIL and claims["email_verified"] is True
    assert claims["aud"] in ("sigstore", ["sigstore"])
    bundle = tmp_path / "token.sigstore.json"
    summary = _summary(
        _sign(
            instance,
            rehearsed_ceremony,
            artifact,
            bundle,
            credentials=["--identity-token", token],
        )
    )
    assert summary["identity"] == EMAIL


# --------------------------------------------------------------------------- managed keys


def _public_pem_from_bundle(bundle: Path) -> bytes:
    """The SPKI the log recorded for a managed-key bundle, as PEM."""
    document = json.loads(bundle.read_bytes())
    body = json.loads(
        base64.b64decode(document["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"])
    )
    verifier = body["spec"]["hashedRekordV002"]["signature"]["verifier"]
    spki = base64.b64decode(verifier["publicKey"]["rawBytes"])
    key = serialization.load_der_public_key(spki)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("dsse", [False, True], ids=["blob", "dsse"])
def test_managed_file_key(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    artifact: Path,
    tmp_path: Path,
    dsse: bool,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "signing-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    public = tmp_path / "signing-key.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    bundle = tmp_path / "managed.sigstore.json"
    summary = _summary(
        _sign(
            instance,
            rehearsed_ceremony,
            artifact,
            bundle,
            *(["--dsse"] if dsse else []),
            credentials=["--key", f"file:{key_file}"],
        )
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert summary["identity"] is None
    assert summary["keyHint"] == hashlib.sha256(spki).hexdigest()
    material = json.loads(bundle.read_bytes())["verificationMaterial"]
    assert material["publicKey"] == {"hint": summary["keyHint"]}
    assert material["timestampVerificationData"]["rfc3161Timestamps"]
    verdict = _airseal_verify(artifact, bundle, rehearsed_ceremony, "--key", str(public))
    assert verdict["identity"] is None
    # Another key is refused.
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = _airseal(
        [
            "verify",
            str(artifact),
            "--bundle",
            str(bundle),
            "--trusted-root",
            str(rehearsed_ceremony.trusted_root),
            "--key",
            str(stranger),
        ]
    )
    assert result.returncode == 1


def test_managed_softhsm_key(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    artifact: Path,
    tmp_path: Path,
) -> None:
    keys = rehearsed_ceremony.keys_toml.read_text(encoding="utf-8")
    found = re.search(
        r'\[keys\.tuf-root-carol\][^\[]*?uri = "([^"]+)"[^\[]*?spki_sha256 = "([0-9a-f]+)"', keys
    )
    module = re.search(r'\[pkcs11\][^\[]*?module = "([^"]+)"', keys)
    assert found is not None and module is not None
    uri, spki_sha256 = found[1], found[2]
    bundle = tmp_path / "hsm.sigstore.json"
    summary = _summary(
        _sign(
            instance,
            rehearsed_ceremony,
            artifact,
            bundle,
            credentials=["--key", uri],
            env={**rehearsed_ceremony.env, "PKCS11_MODULE": module[1]},
        )
    )
    assert summary["keyHint"] == spki_sha256
    public = tmp_path / "carol.pub.pem"
    pem = _public_pem_from_bundle(bundle)
    # The key the log recorded is the ceremony's (keys.toml is the reference).
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert hashlib.sha256(der).hexdigest() == spki_sha256
    public.write_bytes(pem)
    _airseal_verify(artifact, bundle, rehearsed_ceremony, "--key", str(public))


# --------------------------------------------------------------------------- failures


def _down() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("service", ["ca", "tsa", "log"])
def test_service_down_exit_3_and_no_bundle(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    artifact: Path,
    tmp_path: Path,
    service: str,
) -> None:
    args = _services(instance, rehearsed_ceremony)
    args[args.index(f"--{service}") + 1] = _down()
    bundle = tmp_path / "never.sigstore.json"
    result = _airseal(
        [
            "sign",
            str(artifact),
            "--bundle",
            str(bundle),
            "--oidc-dev",
            instance.oidc_url,
            "--identity",
            EMAIL,
            "--timeout",
            "10",
            *args,
        ],
        env=rehearsed_ceremony.env,
    )
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    name = {"ca": "CA", "tsa": "TSA", "log": "log"}[service]
    assert lines[0].startswith(f"error: the {name} at http://127.0.0.1:"), lines[0]
    assert "is unreachable" in lines[0]
    assert not bundle.exists()
    assert list(tmp_path.iterdir()) == [artifact]


def test_bad_token_names_the_ca_problem_and_writes_nothing(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    artifact: Path,
    tmp_path: Path,
) -> None:
    header, payload, signature = instance.token(EMAIL).split(".")
    # Flip the signature: well formed, but not the issuer's.
    forged = ".".join([header, payload, signature[::-1]])
    bundle = tmp_path / "never.sigstore.json"
    result = _sign(
        instance, rehearsed_ceremony, artifact, bundle, credentials=["--identity-token", forged]
    )
    assert result.returncode == 2, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["ok"] is False
    # The CA's problem slug and detail, on one line.
    assert verdict["message"].startswith("the CA refused the request (401 token-signature): ")
    assert forged not in result.stdout + result.stderr
    assert signature not in result.stdout + result.stderr
    assert not bundle.exists()

    # Not even a JWT: refused before any request.
    result = _sign(
        instance,
        rehearsed_ceremony,
        artifact,
        bundle,
        credentials=["--identity-token", "not-a-token"],
    )
    assert result.returncode == 2
    assert "not a JWT" in json.loads(result.stdout)["message"]
    assert not bundle.exists()


# ------------------------------------------------------------------ airseal init + serve all


def test_sign_against_serve_all_with_its_trust_config(tmp_path: Path, artifact: Path) -> None:
    """The whole instance of ``airseal init``: discovery from its ClientTrustConfig only."""
    import random

    from tests.support.instance import ServiceProcess

    if _airseal(["init", "--help"]).returncode != 0:
        pytest.skip("airseal init is not available")
    instance_dir = tmp_path / "instance"
    for _ in range(3):  # the six ports N..N+5 must be free: retry another base
        base = random.randrange(20000, 60000, 10)
        if all(_port_free(base + k) for k in range(6)):
            break
    init = _airseal(["init", str(instance_dir), "--port-base", str(base)], timeout=300)
    assert init.returncode == 0, init.stderr
    config = instance_dir / "trust_config.json"
    serve = ServiceProcess(["serve", "all", "--config", str(instance_dir / "instance.toml")])
    # start() before ``with``: entering an unstarted ServiceProcess starts it (once).
    with serve.start(timeout=120, services=6):
        oidc = f"http://127.0.0.1:{base}"
        for dsse in (False, True):
            bundle = tmp_path / f"all-{dsse}.sigstore.json"
            summary = _summary(
                _airseal(
                    [
                        "sign",
                        str(artifact),
                        *(["--dsse"] if dsse else []),
                        "--oidc-dev",
                        oidc,
                        "--identity",
                        EMAIL,
                        "--trust-config",
                        str(config),
                        "--bundle",
                        str(bundle),
                        "--json",
                    ]
                )
            )
            assert summary["identity"] == EMAIL and summary["issuer"] == oidc
            result = _airseal(
                [
                    "verify",
                    str(artifact),
                    "--bundle",
                    str(bundle),
                    "--trusted-root",
                    str(config),
                    "--identity",
                    EMAIL,
                    "--issuer",
                    oidc,
                ]
            )
            assert result.returncode == 0, result.stderr


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
