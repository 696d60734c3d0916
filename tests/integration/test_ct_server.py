"""``airseal serve ct`` as a real server on 127.0.0.1 (SQLite + tile files).

Each test starts ``airseal serve ct --config FILE`` as a subprocess on a free
port and talks to it over HTTP. Checked: an SCT from ``add-pre-chain``,
embedded into a final certificate built with cryptography, verifies with the
CT public key in the project verifier; ``get-sth`` verifies; the tree grows by
exactly one per accepted precertificate and not at all for refused ones;
entries survive a restart; a data directory refuses another key; and the
rehearsed ceremony's SoftHSM ``ctlog`` key serves under the trusted root's
origin and log id.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.factory import FakeSigstore
from tests.support.instance import RehearsedCeremony, ServiceProcess, write_config
from tests.unit.toolkit.services.ct.pki import Precert, make_precert
from toolkit.models.common import TimeRange
from toolkit.services.ct.client import CTRefused, HttpCTClient
from toolkit.services.ct.sct import SignedCertificateTimestamp, tree_head_signing_input
from toolkit.signing import KeyAlgorithm, SoftwareSigner, spki_der
from toolkit.verify._x509 import CTLogKey, verify_sct

FAKE = FakeSigstore("ct-server-tests")
CA = FAKE.ca
ORIGIN = "ct.airseal.test"


def _write_pem(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _software_setup(
    tmp_path: Path, signer: SoftwareSigner | None = None
) -> tuple[Path, SoftwareSigner]:
    signer = signer or SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    key = tmp_path / "ct-key.pem"
    key.write_bytes(signer.to_pem())
    key.chmod(0o600)
    root = _write_pem(tmp_path / "root.pem", CA.root)
    config = write_config(
        tmp_path / "services.toml",
        None,
        {
            "ct": {
                "listen": "127.0.0.1:0",
                "key": f"file:{key}",
                "data": str(tmp_path / "data"),
                "origin": ORIGIN,
                "roots": [str(root)],
                "max_wait": 0.01,
            }
        },
    )
    return config, signer


def _serve(config: Path, env: dict[str, str] | None = None) -> ServiceProcess:
    return ServiceProcess(["serve", "ct", "--config", str(config)], env=env).start()


def _chain_body(chain: list[bytes]) -> dict[str, Any]:
    return {"chain": [base64.b64encode(c).decode() for c in chain]}


def _ctlogs(public_key: ec.EllipticCurvePublicKey) -> dict[bytes, list[CTLogKey]]:
    log_id = hashlib.sha256(spki_der(public_key)).digest()
    valid = TimeRange(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    return {log_id: [CTLogKey(public_key, valid, "http://ct")]}


def _add(url: str, precert: Precert) -> SignedCertificateTimestamp:
    response = httpx.post(f"{url}/ct/v1/add-pre-chain", json=_chain_body(precert.chain), timeout=30)
    assert response.status_code == 200, response.text
    return SignedCertificateTimestamp.from_json(response.json())


def _sth(url: str, public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    sth: dict[str, Any] = httpx.get(f"{url}/ct/v1/get-sth", timeout=30).json()
    signed = base64.b64decode(sth["tree_head_signature"])
    assert signed[:2] == b"\x04\x03"
    public_key.verify(
        signed[4:],
        tree_head_signing_input(
            sth["timestamp"], sth["tree_size"], base64.b64decode(sth["sha256_root_hash"])
        ),
        ec.ECDSA(hashes.SHA256()),
    )
    return sth


def _check_embedded(
    precert: Precert, sct: SignedCertificateTimestamp, public_key: ec.EllipticCurvePublicKey
) -> None:
    final = precert.finish(sct)
    verify_sct(final, [final, precert.ca.intermediate, precert.ca.root], _ctlogs(public_key))


def test_add_pre_chain_sth_sizes_and_restart(tmp_path: Path) -> None:
    config, signer = _software_setup(tmp_path)
    public_key = signer.public_key
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    server = _serve(config)
    try:
        url = server.url
        assert any(line.startswith("log id ") for line in server.output)
        assert _sth(url, public_key)["tree_size"] == 0
        precerts = [make_precert(CA) for _ in range(3)]
        for count, precert in enumerate(precerts, 1):
            sct = _add(url, precert)
            assert sct.log_id == bytes.fromhex(signer.key_id)
            _check_embedded(precert, sct, public_key)
            assert _sth(url, public_key)["tree_size"] == count
        # Refusals log nothing, and say why.
        refused = {
            "not-a-precertificate": make_precert(CA, poison=False).chain,
            "unknown-root": make_precert(FakeSigstore("stranger").ca).chain,
            "bad-chain": [b"junk"],
        }
        for slug, chain in refused.items():
            response = httpx.post(f"{url}/ct/v1/add-pre-chain", json=_chain_body(chain))
            assert response.status_code == 400
            assert response.json()["type"].endswith("/" + slug)
        response = httpx.post(f"{url}/ct/v1/add-pre-chain", content=b"{", timeout=30)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert _sth(url, public_key)["tree_size"] == 3

        # The CA's client, concurrently, with its SCT checks on.
        async def many() -> list[SignedCertificateTimestamp]:
            client = HttpCTClient(url, public_key=public_key)
            try:
                with pytest.raises(CTRefused) as info:
                    await client.add_pre_chain(make_precert(CA, poison=False).chain)
                assert info.value.slug == "not-a-precertificate"
                batch = [make_precert(CA) for _ in range(20)]
                scts = await asyncio.gather(*(client.add_pre_chain(p.chain) for p in batch))
                for precert, sct in zip(batch, scts, strict=True):
                    _check_embedded(precert, sct, public_key)
                return list(scts)
            finally:
                await client.aclose()

        assert len(asyncio.run(many())) == 20
        before = _sth(url, public_key)
        assert before["tree_size"] == 23
        checkpoint = httpx.get(f"{url}/checkpoint").text
        assert checkpoint.startswith(f"{ORIGIN}\n23\n")
    finally:
        assert server.stop() == 0
    # Restart on the same data: the entries are there, and the log goes on.
    server = _serve(config)
    try:
        url = server.url
        after = _sth(url, public_key)
        assert after["tree_size"] == 23
        assert after["sha256_root_hash"] == before["sha256_root_hash"]
        _check_embedded(precerts[0], _add(url, precerts[0]), public_key)
        assert _sth(url, public_key)["tree_size"] == 24
        assert len(httpx.get(f"{url}/tile/entries/000.p/24").content) > 0
    finally:
        server.stop()


def test_a_data_directory_refuses_another_key(tmp_path: Path) -> None:
    config, _ = _software_setup(tmp_path)
    server = _serve(config)
    server.stop()
    config, _ = _software_setup(tmp_path)  # a new key, the same data directory
    status, output = ServiceProcess(["serve", "ct", "--config", str(config)]).run_to_exit()
    assert status == 2, output
    assert "belongs to the CT key" in output


def test_refuses_a_key_that_is_not_p256(tmp_path: Path) -> None:
    config, _ = _software_setup(tmp_path, SoftwareSigner.generate(KeyAlgorithm.ED25519))
    status, output = ServiceProcess(["serve", "ct", "--config", str(config)]).run_to_exit()
    assert status == 2, output
    assert "P-256" in output
    assert not (tmp_path / "data" / "ct.json").exists()


def test_with_the_rehearsed_ceremony_ctlog_key(
    tmp_path: Path, rehearsed_ceremony: RehearsedCeremony
) -> None:
    ceremony = rehearsed_ceremony
    trusted = ceremony.trusted_root_json()
    (ctlog,) = trusted["ctlogs"]
    public_key = serialization.load_der_public_key(base64.b64decode(ctlog["publicKey"]["rawBytes"]))
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    # The ceremony's intermediate key stays on its token; a test CA's root is
    # accepted beside the ceremony's root to have precertificates to log.
    extra_root = _write_pem(tmp_path / "test-root.pem", CA.root)
    config = write_config(
        tmp_path / "services.toml",
        ceremony,
        {
            "ct": {
                "listen": "127.0.0.1:0",
                "key": "ctlog",
                "data": str(tmp_path / "data"),
                "roots": [str(ceremony.root_ca), str(extra_root)],
            }
        },
    )
    server = _serve(config, env=ceremony.env)
    try:
        url = server.url
        assert "ct ctlog.airseal.example" in server.urls
        health = httpx.get(f"{url}/healthz").json()
        assert base64.b64decode(health["logId"]) == base64.b64decode(ctlog["logId"]["keyId"])
        precert = make_precert(CA)
        sct = _add(url, precert)
        assert sct.log_id == base64.b64decode(ctlog["logId"]["keyId"])
        _check_embedded(precert, sct, public_key)
        assert _sth(url, public_key)["tree_size"] == 1
        roots = httpx.get(f"{url}/ct/v1/get-roots").json()["certificates"]
        assert len(roots) == 2
        checkpoint = httpx.get(f"{url}/checkpoint").text
        assert checkpoint.startswith("ctlog.airseal.example\n1\n")
    finally:
        server.stop()
