"""A real ``airseal serve tsa`` on 127.0.0.1 with the rehearsed ceremony's TSA key on SoftHSM.

Its answers are checked the way clients check them: with airseal's verifier
built from the ceremony's trusted_root.json, with rfc3161-client configured
as sigstore-python configures it from that root, with sigstore-python's own
TSA client, and with ``openssl ts -verify`` given the ceremony's root and TSA
certificate.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rfc3161_client import TimestampRequestBuilder, VerifierBuilder, decode_timestamp_response

from tests.support.instance import RehearsedCeremony, ServiceProcess, write_config
from tests.support.tsa_tokens import load_authorities
from toolkit.verify._rfc3161 import TimestampVerifier, parse_timestamp_response

QUERY = {"Content-Type": "application/timestamp-query"}
MESSAGE = b"a signature over a release"


def _config(tmp_path: Path, ceremony: RehearsedCeremony, **tsa: object) -> Path:
    table = {"listen": "127.0.0.1:0", "key": "tsa", "chain": ceremony.tsa_chain, **tsa}
    return write_config(tmp_path / "services.toml", ceremony, {"tsa": table})


@pytest.fixture(scope="module")
def server(
    rehearsed_ceremony: RehearsedCeremony, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    path = _config(tmp_path_factory.mktemp("tsa"), rehearsed_ceremony)
    process = ServiceProcess(["serve", "tsa", "--config", str(path)], env=rehearsed_ceremony.env)
    with process.start():
        yield process


def _query(message: bytes = MESSAGE, **options: bool) -> tuple[bytes, int | None]:
    builder = TimestampRequestBuilder().data(message)
    if "cert_req" in options:
        builder = builder.cert_request(cert_request=options["cert_req"])
    query = builder.nonce(nonce=True).build()
    return query.as_bytes(), query.nonce


def _post(server: ServiceProcess, body: bytes, headers: dict[str, str] = QUERY) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/timestamp", content=body, headers=headers, timeout=10)


def test_token_verifies_with_the_trusted_root(
    server: ServiceProcess, rehearsed_ceremony: RehearsedCeremony
) -> None:
    body, nonce = _query()
    response = _post(server, body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    token = parse_timestamp_response(response.content)
    verifier = TimestampVerifier(load_authorities(rehearsed_ceremony.trusted_root))
    assert not verifier.problems
    verifier.verify(token, MESSAGE)
    assert token.nonce == nonce


def test_rfc3161_client_as_sigstore_python_uses_it(
    server: ServiceProcess, rehearsed_ceremony: RehearsedCeremony
) -> None:
    root = rehearsed_ceremony.trusted_root_json()
    (tsa,) = root["timestampAuthorities"]
    import base64

    certs = [
        x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"]))
        for c in tsa["certChain"]["certificates"]
    ]
    for cert_req in (True, False):
        body, nonce = _query(cert_req=cert_req)
        response = decode_timestamp_response(_post(server, body).content)
        builder = VerifierBuilder().tsa_certificate(certs[0]).add_root_certificate(certs[-1])
        for certificate in certs[1:-1]:
            builder = builder.add_intermediate_certificate(certificate)
        assert nonce is not None
        verifier = builder.nonce(nonce).build()
        assert verifier.verify_message(response, MESSAGE)
        assert (len(response.signed_data.certificates) > 0) == cert_req


def test_sigstore_python_client(server: ServiceProcess) -> None:
    from sigstore._internal.timestamp import TimestampAuthorityClient

    response = TimestampAuthorityClient(server.url + "/api/v1/timestamp").request_timestamp(MESSAGE)
    assert response.tst_info.message_imprint.message == hashlib.sha256(MESSAGE).digest()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_verifies(
    server: ServiceProcess, rehearsed_ceremony: RehearsedCeremony, tmp_path: Path
) -> None:
    (tmp_path / "data").write_bytes(MESSAGE)
    query = subprocess.run(
        ["openssl", "ts", "-query", "-data", str(tmp_path / "data"), "-sha384", "-cert"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    (tmp_path / "reply.tsr").write_bytes(_post(server, query).content)
    # The ceremony's tsa-chain.pem is TSA certificate + root: the leaf is "untrusted".
    chain = x509.load_pem_x509_certificates(rehearsed_ceremony.tsa_chain.read_bytes())
    (tmp_path / "leaf.pem").write_bytes(chain[0].public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        [
            "openssl", "ts", "-verify", "-in", str(tmp_path / "reply.tsr"),
            "-data", str(tmp_path / "data"), "-CAfile", str(rehearsed_ceremony.root_ca),
            "-untrusted", str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert b"Verification: OK" in result.stdout


def test_certchain_is_the_ceremony_chain(
    server: ServiceProcess, rehearsed_ceremony: RehearsedCeremony
) -> None:
    response = httpx.get(server.url + "/api/v1/timestamp/certchain", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pem-certificate-chain"
    served = x509.load_pem_x509_certificates(response.content)
    assert served == x509.load_pem_x509_certificates(rehearsed_ceremony.tsa_chain.read_bytes())


def test_refusals(server: ServiceProcess) -> None:
    body, _ = _query()
    wrong = _post(server, body, {"Content-Type": "application/octet-stream"})
    assert wrong.status_code == 415
    assert wrong.json()["type"].endswith("/unsupported-media-type")
    assert _post(server, b"").status_code == 400
    assert _post(server, bytes(5000)).status_code == 413
    garbage = _post(server, b"\x30\x03\x02\x01\x07")
    assert garbage.status_code == 200
    assert garbage.headers["content-type"] == "application/timestamp-reply"
    # status rejection, failInfo present
    assert garbage.content.startswith(b"\x30") and b"\x02\x01\x02" in garbage.content
    health = httpx.get(server.url + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    # Still serving after all that.
    assert _post(server, body).status_code == 200


def test_stops_cleanly_on_sigterm(rehearsed_ceremony: RehearsedCeremony, tmp_path: Path) -> None:
    path = _config(tmp_path, rehearsed_ceremony)
    process = ServiceProcess(["serve", "tsa", "--config", str(path)], env=rehearsed_ceremony.env)
    process.start()
    try:
        assert _post(process, _query()[0]).status_code == 200
    finally:
        status = process.stop(signal.SIGTERM)
    assert status == 0
    assert not any("Traceback" in line for line in process.output)


def test_refuses_a_chain_that_is_not_its_key(
    rehearsed_ceremony: RehearsedCeremony, tmp_path: Path
) -> None:
    # The intermediate CA's certificate is no TSA certificate for the TSA key.
    (tmp_path / "wrong.pem").write_bytes(
        rehearsed_ceremony.intermediate_ca.read_bytes() + rehearsed_ceremony.root_ca.read_bytes()
    )
    path = _config(tmp_path, rehearsed_ceremony, chain=tmp_path / "wrong.pem")
    status, output = ServiceProcess(
        ["serve", "tsa", "--config", str(path)], env=rehearsed_ceremony.env
    ).run_to_exit()
    assert status == 2
    assert "does not hold the TSA key" in output
    assert "Traceback" not in output


def test_refuses_another_key(rehearsed_ceremony: RehearsedCeremony, tmp_path: Path) -> None:
    path = _config(tmp_path, rehearsed_ceremony, key="ctlog")
    status, output = ServiceProcess(
        ["serve", "tsa", "--config", str(path)], env=rehearsed_ceremony.env
    ).run_to_exit()
    assert status == 2
    assert "does not hold the TSA key" in output
