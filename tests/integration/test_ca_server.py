"""``airseal serve ca`` with real oidc-dev and CT log processes and SoftHSM keys.

Certificates for every accepted key type, through both request forms, carry
the Fulcio profile and one SCT that the verifier's own code accepts with the
trusted root's CT key; each is logged (the CT tree grows). The start-up checks
refuse a key that does not match the chain, and a CT log that is down gives a
503 problem and no certificate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.support.ca import SubjectKey, csr_pem, csr_request, public_key_request
from tests.support.instance import RehearsedCeremony, ServiceProcess, write_config
from tests.support.issuance import IssuanceInstance, http_json
from toolkit.models.trustroot import TrustedRoot
from toolkit.verify import _x509
from toolkit.verify._trust import TrustMaterial

EMAIL = "alice@example.com"


@pytest.fixture(scope="module")
def instance(
    rehearsed_ceremony: RehearsedCeremony, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IssuanceInstance]:
    with IssuanceInstance(rehearsed_ceremony, tmp_path_factory.mktemp("ca-server")) as inst:
        yield inst


@pytest.fixture(scope="module")
def trust(rehearsed_ceremony: RehearsedCeremony) -> TrustMaterial:
    return TrustMaterial(TrustedRoot.from_json(rehearsed_ceremony.trusted_root.read_bytes()))


def _chain(document: Any) -> list[x509.Certificate]:
    pems = document["signedCertificateEmbeddedSct"]["chain"]["certificates"]
    return [x509.load_pem_x509_certificate(p.encode()) for p in pems]


def _wait_size(instance: IssuanceInstance, size: int) -> int:
    deadline = time.monotonic() + 10
    while instance.ct_tree_size() < size and time.monotonic() < deadline:
        time.sleep(0.05)
    return instance.ct_tree_size()


def _check_certificate(
    certs: list[x509.Certificate],
    public: Any,
    ceremony: RehearsedCeremony,
    trust: TrustMaterial,
    issuer: str,
) -> None:
    leaf, intermediate, root = certs
    assert intermediate == x509.load_pem_x509_certificate(ceremony.intermediate_ca.read_bytes())
    assert root == x509.load_pem_x509_certificate(ceremony.root_ca.read_bytes())
    assert leaf.public_key() == public
    leaf.verify_directly_issued_by(intermediate)
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() == 600
    _x509.check_leaf_profile(leaf)
    assert _x509.san_values(leaf) == (EMAIL,)
    assert _x509.oidc_issuer(leaf) == issuer
    assert _x509.extension_text(leaf, _x509.OIDC_ISSUER_V1) == issuer
    stamp = _x509.verify_sct(leaf, certs, trust.ctlogs, trust.key_hashes)
    assert leaf.not_valid_before_utc <= stamp <= leaf.not_valid_after_utc


KEYS: dict[str, Callable[[], SubjectKey]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ecdsa-p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


@pytest.mark.parametrize("kind", sorted(KEYS))
@pytest.mark.parametrize("form", ["publicKeyRequest", "certificateSigningRequest"])
def test_issues_a_fulcio_certificate_with_an_sct(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    trust: TrustMaterial,
    kind: str,
    form: str,
) -> None:
    key = KEYS[kind]()
    token = instance.token(EMAIL)
    before = instance.ct_tree_size()
    if form == "publicKeyRequest":
        response = http_json(
            "POST", instance.signing_cert_url, public_key_request(token, key, EMAIL)
        )
    else:
        # As sigstore-python sends it: the token in the header, base64 of the PEM CSR.
        response = http_json(
            "POST",
            instance.signing_cert_url,
            csr_request(None, csr_pem(key)),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/pem-certificate-chain",
            },
        )
    status, headers, document = response
    assert status == 201, document
    assert headers["content-type"] == "application/json"
    _check_certificate(
        _chain(document), key.public_key(), rehearsed_ceremony, trust, instance.oidc_url
    )
    assert _wait_size(instance, before + 1) == before + 1


def test_trust_bundle_and_configuration(
    instance: IssuanceInstance, rehearsed_ceremony: RehearsedCeremony
) -> None:
    status, _, document = http_json("GET", instance.ca_url + "/api/v2/trustBundle")
    assert status == 200
    (chain,) = document["chains"]
    assert [x509.load_pem_x509_certificate(p.encode()) for p in chain["certificates"]] == [
        x509.load_pem_x509_certificate(rehearsed_ceremony.intermediate_ca.read_bytes()),
        x509.load_pem_x509_certificate(rehearsed_ceremony.root_ca.read_bytes()),
    ]
    status, _, document = http_json("GET", instance.ca_url + "/api/v2/configuration")
    assert status == 200
    assert document == {
        "issuers": [
            {"issuerUrl": instance.oidc_url, "audience": "sigstore", "challengeClaim": "email"}
        ]
    }
    status, _, document = http_json("GET", instance.ca_url + "/healthz")
    assert status == 200 and document["status"] == "ok"


def _ca_config(ceremony: RehearsedCeremony, path: Path, **changes: Any) -> Path:
    table: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "key": "intermediate-ca",
        "chain": [str(ceremony.intermediate_ca), str(ceremony.root_ca)],
        "ct_url": "http://127.0.0.1:9",
        "issuers": [{"url": "http://127.0.0.1:9", "type": "email"}],
    }
    table.update(changes)
    return write_config(path, ceremony, {"ca": table})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"key": "tsa"}, "does not match the first certificate"),
        ({"key": "tsa", "chain_tsa": True}, "not a CA certificate"),
        ({"issuers": []}, "no OIDC issuer"),
        ({"surprise": 1}, "unknown field"),
        ({"validity_minutes": 0}, "at least 1"),
    ],
)
def test_start_up_refusals(
    rehearsed_ceremony: RehearsedCeremony, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    if changes.pop("chain_tsa", False):
        # The TSA certificate and key match, but it is no code-signing CA.
        changes["chain"] = [str(rehearsed_ceremony.tsa_chain)]
    config = _ca_config(rehearsed_ceremony, tmp_path / "ca.toml", **changes)
    status, output = ServiceProcess(
        ["serve", "ca", "--config", str(config)], rehearsed_ceremony.env
    ).run_to_exit()
    assert status == 2, output
    assert message in output
    assert "Traceback" not in output


def test_ct_log_down_gives_503_and_no_certificate(
    rehearsed_ceremony: RehearsedCeremony, tmp_path: Path
) -> None:
    with IssuanceInstance(rehearsed_ceremony, tmp_path) as inst:
        token = inst.token(EMAIL)
        ct = next(p for p in inst.processes if p.args[1] == "ct")
        ct.kill()
        key = ec.generate_private_key(ec.SECP256R1())
        status, headers, document = http_json(
            "POST", inst.signing_cert_url, public_key_request(token, key, EMAIL)
        )
        assert status == 503, document
        assert headers["content-type"] == "application/problem+json"
        assert document["type"] == "https://airseal.dev/problems/ct-unavailable"
        assert headers.get("retry-after")
        assert "BEGIN CERTIFICATE" not in str(document)


def test_sct_from_an_untrusted_ct_key_gives_no_certificate(
    instance: IssuanceInstance, rehearsed_ceremony: RehearsedCeremony, tmp_path: Path
) -> None:
    """A CA told to trust another CT key refuses the real log's SCT: 502, no certificate."""
    from cryptography.hazmat.primitives import serialization

    other = tmp_path / "other-ct.pub.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    config = _ca_config(
        rehearsed_ceremony,
        tmp_path / "ca.toml",
        ct_url=instance.ct_url,
        ct_key=str(other),
        issuers=[{"url": instance.oidc_url, "type": "email"}],
    )
    with ServiceProcess(["serve", "ca", "--config", str(config)], rehearsed_ceremony.env) as ca:
        key = ec.generate_private_key(ec.SECP256R1())
        status, headers, document = http_json(
            "POST",
            ca.url + "/api/v2/signingCert",
            public_key_request(instance.token(EMAIL), key, EMAIL),
        )
    assert status == 502, document
    assert headers["content-type"] == "application/problem+json"
    assert document["type"] == "https://airseal.dev/problems/ct-invalid-sct"
    assert "BEGIN CERTIFICATE" not in str(document)


def test_workers_share_the_port_and_stop_cleanly(
    instance: IssuanceInstance,
    rehearsed_ceremony: RehearsedCeremony,
    trust: TrustMaterial,
    tmp_path: Path,
) -> None:
    """``workers = 2``: two processes, each with its own HSM session, serve one port."""
    config = _ca_config(
        rehearsed_ceremony,
        tmp_path / "ca.toml",
        ct_url=instance.ct_url,
        workers=2,
        issuers=[{"url": instance.oidc_url, "type": "email"}],
    )
    ca = ServiceProcess(["serve", "ca", "--config", str(config)], rehearsed_ceremony.env)
    with ca.start():
        assert "ca: 2 worker processes" in ca.output
        before = instance.ct_tree_size()
        for _ in range(6):
            key = ec.generate_private_key(ec.SECP256R1())
            status, _, document = http_json(
                "POST",
                ca.url + "/api/v2/signingCert",
                public_key_request(instance.token(EMAIL), key, EMAIL),
            )
            assert status == 201, document
            _check_certificate(
                _chain(document), key.public_key(), rehearsed_ceremony, trust, instance.oidc_url
            )
        assert _wait_size(instance, before + 6) == before + 6
        assert ca.stop() == 0
    assert "Traceback" not in "\n".join(ca.output)


def test_a_worker_that_cannot_open_the_key_stops_the_service(
    rehearsed_ceremony: RehearsedCeremony, tmp_path: Path
) -> None:
    # Every worker opens the key itself, one after the other: the first one's
    # wrong PIN stops the start-up, so the error is printed once (and a real
    # token sees one failed login), the service exits 3, never half-started.
    pin = tmp_path / "wrong.pin"
    pin.write_text("not-the-pin")
    pin.chmod(0o600)
    ring = rehearsed_ceremony.keys_toml.read_text(encoding="utf-8")
    uri = next(
        line.split('"')[1]
        for line in ring.splitlines()
        if line.startswith("uri = ") and "airseal-intermediate-ca" in line
    )
    wrong = uri.split("?")[0] + f"?pin-source={pin}"
    config = _ca_config(rehearsed_ceremony, tmp_path / "ca.toml", key=wrong, workers=2)
    status, output = ServiceProcess(
        ["serve", "ca", "--config", str(config)], rehearsed_ceremony.env
    ).run_to_exit()
    assert status == 3, output
    assert output.count("wrong PIN") == 1, output
    assert "listening on" not in output
    assert "not-the-pin" not in output
    assert "Traceback" not in output


def test_workers_die_with_a_killed_parent(
    instance: IssuanceInstance, rehearsed_ceremony: RehearsedCeremony, tmp_path: Path
) -> None:
    # A parent killed with SIGKILL cannot stop its workers: the kernel does
    # (PR_SET_PDEATHSIG), so no orphan keeps serving the port.
    config = _ca_config(
        rehearsed_ceremony,
        tmp_path / "ca.toml",
        ct_url=instance.ct_url,
        workers=2,
        issuers=[{"url": instance.oidc_url, "type": "email"}],
    )
    ca = ServiceProcess(["serve", "ca", "--config", str(config)], rehearsed_ceremony.env)
    with ca.start():
        assert ca.process is not None
        parent = ca.process.pid
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        assert len(children) == 2
        ca.kill()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(Path(f"/proc/{c}").exists() for c in children):
            time.sleep(0.05)
        alive = [c for c in children if Path(f"/proc/{c}").exists()]
        assert not alive, f"workers {alive} outlived their parent"
