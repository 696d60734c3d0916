"""Stock Sigstore clients against airseal, in both directions (issue 7, part 4).

One real instance on 127.0.0.1 from the session's rehearsed ceremony
(SoftHSM keys): oidc-dev, CT log, CA, TSA and a Rekor v2 transparency log.
A ClientTrustConfig (airseal's trusted root + a SigningConfig v0.2 naming
these services) is what both ``airseal sign`` and sigstore-python read.

* ``airseal sign`` bundles (keyless; blob and DSSE) verify with
  sigstore-python's API and its ``sigstore verify identity --offline`` CLI,
  and with sigstore-js 5 (``tests/interop/js/sigstore5/sigstore_verify.mjs``
  on the Node 24 that ``make js`` installs from the npm registry) given
  airseal's trusted root;
* sigstore-python's own ``sign`` and ``attest`` commands, pointed at the
  instance, get a certificate, a timestamp and a log entry exactly as a stock
  client asks for them; ``airseal verify``, sigstore-python and sigstore-js
  accept what they write;
* managed-key bundles (``airseal sign --key file:…``) verify with
  ``airseal verify --key`` and sigstore-js.

DSSE bundles are logged to Rekor v2 as ``hashedrekord/0.0.2`` over
PAE(payloadType, payload), the form sigstore-python 4.5.1 writes and
requires. sigstore-js 5 verifies that form; sigstore-js 4.1 (the last that
runs on Node 20) refused it (``TLOG_BODY_ERROR: digest mismatch``), which is
why these tests run sigstore-js 5 on its own Node.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.instance import RehearsedCeremony, ServiceProcess
from tests.support.issuance import IssuanceInstance
from tests.support.sigstore_clients import (
    airseal,
    client_trust_config,
    free_port_base,
    sigstore_js_missing,
    sigstore_js_reads_times,
    sigstore_js_verify,
    sigstore_python_cli,
    sigstore_python_verify,
)

pytestmark = pytest.mark.interop

EMAIL = "interop@example.com"
OTHER = "mallory@example.com"
ARTIFACT = b"airseal <-> stock Sigstore clients\n"
KINDS = ("blob", "dsse")
#: Signatures made at most for one bundle whose timestamp sigstore-js can read (1e-10 to fail).
#: sigstore-js's code for a DSSE payload changed after signing (see the test).
TAMPERED_DSSE_ERROR = "TLOG_BODY_ERROR"
#: What sigstore_verify.mjs reports for a verified bundle of each kind.
JS_OK = {
    kind: {"ok": True, "content": content}
    for kind, content in zip(KINDS, ("messageSignature", "dsse"), strict=True)
}


@dataclass(frozen=True)
class Setup:
    """The running instance and the files the clients read."""

    instance: IssuanceInstance
    work: Path
    trusted_root: Path
    trust_config: Path
    artifact: Path
    other_artifact: Path

    @property
    def issuer(self) -> str:
        return self.instance.oidc_url


@pytest.fixture(scope="module")
def setup(
    rehearsed_ceremony: RehearsedCeremony, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("sigstore-clients")
    with IssuanceInstance(rehearsed_ceremony, work, tsa=True, log=True) as instance:
        assert instance.log_url is not None and instance.tsa_url is not None
        trust_config = work / "trust_config.json"
        trust_config.write_text(
            json.dumps(
                client_trust_config(
                    rehearsed_ceremony.trusted_root_json(),
                    ca=instance.ca_url,
                    oidc=instance.oidc_url,
                    log=instance.log_url,
                    tsa=instance.tsa_url,
                )
            ),
            encoding="utf-8",
        )
        artifact = work / "artifact.txt"
        artifact.write_bytes(ARTIFACT)
        other = work / "other.txt"
        other.write_bytes(ARTIFACT + b"tampered\n")
        yield Setup(instance, work, rehearsed_ceremony.trusted_root, trust_config, artifact, other)


def _run_js_here() -> bool:
    """Whether a test that also checks other clients should run its sigstore-js part."""
    return sigstore_js_missing() is None or bool(os.environ.get("CI"))


def _signed_for_js(sign: Callable[[], Path]) -> Path:
    """``sign()``, checking the bundle's RFC 3161 times are in a form sigstore-js 5 reads.

    @sigstore/core parses GeneralizedTime with no fraction or exactly three
    digits, while DER drops a fraction's trailing zeros (``…38.41Z``): the
    airseal TSA writes whole seconds, as Sigstore's does. This guards it.
    """
    bundle = sign()
    assert sigstore_js_reads_times(bundle), "an RFC 3161 genTime sigstore-js 5 cannot parse"
    return bundle


def _airseal_sign(setup: Setup, name: str, *extra: str) -> Path:
    """``airseal sign`` via the trust config; keyless, or ``--key`` in ``extra``."""
    bundle = setup.work / f"{name}.sigstore.json"

    def sign() -> Path:
        result = airseal(
            [
                "sign",
                str(setup.artifact),
                "--bundle",
                str(bundle),
                "--trust-config",
                str(setup.trust_config),
                *extra,
            ]
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return bundle

    return _signed_for_js(sign)


@pytest.fixture(scope="module")
def keyless(setup: Setup) -> dict[str, Path]:
    """``airseal sign`` keyless bundles: ``blob`` and ``dsse``."""
    return {
        kind: _airseal_sign(
            setup,
            f"airseal-{kind}",
            "--identity-token",
            setup.instance.token(EMAIL),
            *(["--dsse"] if kind == "dsse" else []),
        )
        for kind in KINDS
    }


def _airseal_verify(setup: Setup, bundle: Path, *policy: str, artifact: Path | None = None) -> int:
    result = airseal(
        [
            "verify",
            str(artifact or setup.artifact),
            "--bundle",
            str(bundle),
            "--trusted-root",
            str(setup.trusted_root),
            *policy,
        ]
    )
    return result.returncode


def _identity(setup: Setup, identity: str = EMAIL) -> list[str]:
    return ["--identity", identity, "--issuer", setup.issuer]


def _sigstore_cli_verify(
    setup: Setup, bundle: Path, identity: str = EMAIL, issuer: str | None = None
) -> tuple[int, str]:
    result = sigstore_python_cli(
        [
            "verify",
            "identity",
            "--offline",
            "--bundle",
            str(bundle),
            "--cert-identity",
            identity,
            "--cert-oidc-issuer",
            issuer or setup.issuer,
            str(setup.artifact),
        ],
        setup.trust_config,
    )
    return result.returncode, result.stdout + result.stderr


# --- airseal bundles -> stock verifiers -------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_airseal_bundle_verifies_with_sigstore_python_api(
    setup: Setup, keyless: dict[str, Path], kind: str
) -> None:
    bundle = keyless[kind].read_bytes()
    content = sigstore_python_verify(setup.trusted_root, bundle, ARTIFACT, EMAIL, setup.issuer)
    assert content == {"blob": "messageSignature", "dsse": "dsse"}[kind]
    # The policy is really checked.
    from sigstore.errors import VerificationError

    with pytest.raises(VerificationError):
        sigstore_python_verify(setup.trusted_root, bundle, ARTIFACT, OTHER, setup.issuer)


@pytest.mark.parametrize("kind", KINDS)
def test_airseal_bundle_verifies_with_sigstore_python_cli(
    setup: Setup, keyless: dict[str, Path], kind: str
) -> None:
    code, output = _sigstore_cli_verify(setup, keyless[kind])
    assert code == 0, output
    assert f"OK: {setup.artifact}" in output
    code, output = _sigstore_cli_verify(setup, keyless[kind], issuer="https://other.example")
    assert code != 0 and "OK:" not in output


@pytest.mark.parametrize("kind", KINDS)
def test_airseal_bundle_verifies_with_sigstore_js(
    setup: Setup, keyless: dict[str, Path], kind: str
) -> None:
    bundle = keyless[kind]
    verdict = sigstore_js_verify(
        bundle, setup.artifact, setup.trusted_root, identity=EMAIL, issuer=setup.issuer
    )
    assert verdict == JS_OK[kind]
    # The trust config works as the root too (the script takes its trustedRoot).
    verdict = sigstore_js_verify(
        bundle, setup.artifact, setup.trust_config, identity=EMAIL, issuer=setup.issuer
    )
    assert verdict == JS_OK[kind]
    wrong = sigstore_js_verify(
        bundle, setup.artifact, setup.trusted_root, identity=OTHER, issuer=setup.issuer
    )
    assert wrong["ok"] is False and wrong["error"] == "UNTRUSTED_SIGNER_ERROR", wrong
    wrong = sigstore_js_verify(
        bundle, setup.artifact, setup.trusted_root, identity=EMAIL, issuer="https://other.example"
    )
    assert wrong["ok"] is False and wrong["error"] == "UNTRUSTED_SIGNER_ERROR", wrong
    tampered = sigstore_js_verify(
        bundle, setup.other_artifact, setup.trusted_root, identity=EMAIL, issuer=setup.issuer
    )
    # A blob signature no longer matches; a DSSE statement no longer names the artifact.
    expected = {"blob": "SIGNATURE_ERROR", "dsse": "SUBJECT"}[kind]
    assert tampered["ok"] is False and tampered["error"] == expected, tampered


def _tamper_payload(bundle: Path, out: Path) -> Path:
    """A copy of a DSSE bundle whose in-toto statement names another predicate type."""
    document = json.loads(bundle.read_text(encoding="utf-8"))
    envelope = document["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicateType"] = "https://airseal.example/tampered"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    out.write_text(json.dumps(document), encoding="utf-8")
    return out


def test_sigstore_js_rejects_a_tampered_dsse_payload(
    setup: Setup, keyless: dict[str, Path]
) -> None:
    """The payload is covered twice: by the envelope signature and by the log entry's PAE digest.

    sigstore-js checks the tlog body against the bundle first, so the changed
    PAE digest is what it reports.
    """
    tampered = _tamper_payload(keyless["dsse"], setup.work / "tampered-dsse.sigstore.json")
    verdict = sigstore_js_verify(
        tampered, setup.artifact, setup.trusted_root, identity=EMAIL, issuer=setup.issuer
    )
    assert verdict["ok"] is False and verdict["error"] == TAMPERED_DSSE_ERROR, verdict


# --- sigstore-python signs through airseal ----------------------------------------------


@pytest.fixture(scope="module")
def sigstore_python_bundles(setup: Setup) -> dict[str, Path]:
    """``sigstore sign`` (blob) and ``sigstore attest`` (DSSE) through the instance."""
    bundles: dict[str, Path] = {}

    def sign() -> Path:
        blob = setup.work / "sigstore-python-blob.sigstore.json"
        result = sigstore_python_cli(
            [
                "sign",
                "--overwrite",
                "--identity-token",
                setup.instance.token(EMAIL),
                "--bundle",
                str(blob),
                str(setup.artifact),
            ],
            setup.trust_config,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return blob

    bundles["blob"] = _signed_for_js(sign)
    predicate = setup.work / "provenance.json"
    predicate.write_text(
        json.dumps(
            {
                "buildDefinition": {
                    "buildType": "https://airseal.example/interop",
                    "externalParameters": {},
                },
                "runDetails": {"builder": {"id": "https://airseal.example/builder"}},
            }
        ),
        encoding="utf-8",
    )

    def attest() -> Path:
        dsse = setup.work / "sigstore-python-dsse.sigstore.json"
        result = sigstore_python_cli(
            [
                "attest",
                "--overwrite",
                "--predicate",
                str(predicate),
                "--predicate-type",
                "https://slsa.dev/provenance/v1",
                "--identity-token",
                setup.instance.token(EMAIL),
                "--bundle",
                str(dsse),
                str(setup.artifact),
            ],
            setup.trust_config,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return dsse

    bundles["dsse"] = _signed_for_js(attest)
    return bundles


@pytest.mark.parametrize("kind", KINDS)
def test_sigstore_python_signs_through_airseal(
    setup: Setup, sigstore_python_bundles: dict[str, Path], kind: str
) -> None:
    bundle = sigstore_python_bundles[kind]
    document = json.loads(bundle.read_text(encoding="utf-8"))
    # What the stock client did: one Rekor v2 hashedrekord entry (DSSE too), one TSA timestamp.
    (entry,) = document["verificationMaterial"]["tlogEntries"]
    assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.2"}
    assert len(document["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"])
    assert _airseal_verify(setup, bundle, *_identity(setup)) == 0
    assert _airseal_verify(setup, bundle, *_identity(setup, OTHER)) == 1
    content = sigstore_python_verify(
        setup.trusted_root, bundle.read_bytes(), ARTIFACT, EMAIL, setup.issuer
    )
    assert content == {"blob": "messageSignature", "dsse": "dsse"}[kind]
    if _run_js_here():
        verdict = sigstore_js_verify(
            bundle, setup.artifact, setup.trusted_root, identity=EMAIL, issuer=setup.issuer
        )
        assert verdict == JS_OK[kind]


# --- managed keys -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def managed(setup: Setup) -> dict[str, Path]:
    """``airseal sign --key file:…`` bundles (``blob``, ``dsse``) and the keys' PEMs."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = setup.work / "managed.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    paths = {"private": private}
    for name, public in (("public", key.public_key()), ("other", _other_public_key())):
        paths[name] = setup.work / f"managed-{name}.pub.pem"
        paths[name].write_bytes(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    for kind in KINDS:
        paths[kind] = _airseal_sign(
            setup,
            f"managed-{kind}",
            "--key",
            f"file:{private}",
            *(["--dsse"] if kind == "dsse" else []),
        )
    return paths


def _other_public_key() -> ec.EllipticCurvePublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


@pytest.mark.parametrize("kind", KINDS)
def test_managed_key_bundle_verifies_with_airseal(
    setup: Setup, managed: dict[str, Path], kind: str
) -> None:
    document = json.loads(managed[kind].read_text(encoding="utf-8"))
    assert "publicKey" in document["verificationMaterial"]
    assert _airseal_verify(setup, managed[kind], "--key", str(managed["public"])) == 0
    assert _airseal_verify(setup, managed[kind], "--key", str(managed["other"])) == 1
    assert (
        _airseal_verify(
            setup, managed[kind], "--key", str(managed["public"]), artifact=setup.other_artifact
        )
        == 1
    )


def test_managed_key_bundle_verifies_with_sigstore_js(
    setup: Setup, managed: dict[str, Path]
) -> None:
    verdict = sigstore_js_verify(
        managed["blob"], setup.artifact, setup.trusted_root, key=managed["public"]
    )
    assert verdict == {"ok": True, "content": "messageSignature"}
    wrong = sigstore_js_verify(
        managed["blob"], setup.artifact, setup.trusted_root, key=managed["other"]
    )
    assert wrong["ok"] is False, wrong
    tampered = sigstore_js_verify(
        managed["blob"], setup.other_artifact, setup.trusted_root, key=managed["public"]
    )
    assert tampered["ok"] is False, tampered
    verdict = sigstore_js_verify(
        managed["dsse"], setup.artifact, setup.trusted_root, key=managed["public"]
    )
    assert verdict == JS_OK["dsse"]
    wrong = sigstore_js_verify(
        managed["dsse"], setup.artifact, setup.trusted_root, key=managed["other"]
    )
    assert wrong["ok"] is False, wrong
    changed = _tamper_payload(managed["dsse"], setup.work / "managed-tampered.sigstore.json")
    verdict = sigstore_js_verify(changed, setup.artifact, setup.trusted_root, key=managed["public"])
    assert verdict["ok"] is False and verdict["error"] == TAMPERED_DSSE_ERROR, verdict


# --- the whole instance: airseal init + airseal serve all -------------------------------


def test_stock_clients_with_airseal_init_and_serve_all(tmp_path: Path) -> None:
    """The documented contract end to end: ``DIR/trust_config.json`` is all a client needs."""
    directory = tmp_path / "instance"
    # instance.toml's keys.toml names its own SoftHSM config: do not inherit another one.
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    result = airseal(["init", str(directory), "--port-base", str(free_port_base())], env)
    assert result.returncode == 0, result.stdout + result.stderr
    trust_config = directory / "trust_config.json"
    signing = json.loads(trust_config.read_text(encoding="utf-8"))["signingConfig"]
    oidc = signing["oidcUrls"][0]["url"]
    artifact = tmp_path / "artifact.txt"
    artifact.write_bytes(ARTIFACT)
    config = directory / "instance.toml"
    # Started before ``with`` (which would start it with one ready line): wait for all six.
    process = ServiceProcess(["serve", "all", "--config", str(config)], env).start(services=6)

    def verify(path: Path) -> dict[str, Any]:
        return sigstore_js_verify(path, artifact, trust_config, identity=EMAIL, issuer=oidc)

    def sign_ours() -> Path:
        result = airseal(
            [
                "sign",
                str(artifact),
                "--oidc-dev",
                oidc,
                "--identity",
                EMAIL,
                "--trust-config",
                str(trust_config),
                "--bundle",
                str(ours),
            ]
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return ours

    def sign_theirs() -> Path:
        token = airseal(["token", "--oidc-dev", oidc, "--identity", EMAIL])
        assert token.returncode == 0, token.stderr
        result = sigstore_python_cli(
            [
                "sign",
                "--overwrite",
                "--identity-token",
                token.stdout.strip(),
                "--bundle",
                str(theirs),
                str(artifact),
            ],
            trust_config,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return theirs

    ours = tmp_path / "airseal.sigstore.json"
    theirs = tmp_path / "sigstore-python.sigstore.json"
    with process:
        _signed_for_js(sign_ours)
        _signed_for_js(sign_theirs)
    # Verification is offline: the services are gone.
    for bundle in (ours, theirs):
        result = airseal(
            [
                "verify",
                str(artifact),
                "--bundle",
                str(bundle),
                "--trusted-root",
                str(trust_config),
                "--identity",
                EMAIL,
                "--issuer",
                oidc,
            ]
        )
        assert result.returncode == 0, result.stdout + result.stderr
        result = sigstore_python_cli(
            [
                "verify",
                "identity",
                "--offline",
                "--bundle",
                str(bundle),
                "--cert-identity",
                EMAIL,
                "--cert-oidc-issuer",
                oidc,
                str(artifact),
            ],
            trust_config,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        if _run_js_here():
            assert verify(bundle) == JS_OK["blob"]
