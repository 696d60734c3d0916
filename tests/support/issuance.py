"""A running issuance instance: real ``airseal serve`` processes on 127.0.0.1.

:class:`IssuanceInstance` starts, from a rehearsed ceremony (SoftHSM keys):

* ``oidc-dev`` with an RSA key file the tests also hold (to forge hostile
  tokens that only differ from real ones in one property);
* ``ct`` with the ceremony's ``ctlog`` key;
* ``ca`` with the ceremony's ``intermediate-ca`` key, trusting the oidc-dev
  issuer (type email) and checking SCTs against the trusted root;
* optionally ``tsa`` (the ``tsa`` key) and a Rekor v2 ``log`` (the ``tlog``
  key, origin = host of the trusted root's tlog URL), for complete bundles.

Every process is killed by :meth:`IssuanceInstance.close`.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.instance import RehearsedCeremony, ServiceProcess, write_config

__all__ = ["IssuanceInstance", "http_json", "p256_ceremony_config"]


def http_json(
    method: str,
    url: str,
    document: Any = None,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request with a JSON body; returns (status, headers, decoded JSON or raw text)."""
    data = (
        body if body is not None else (None if document is None else json.dumps(document).encode())
    )
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), dict(exc.headers)
    try:
        return status, {k.lower(): v for k, v in got.items()}, json.loads(raw)
    except ValueError:
        return status, {k.lower(): v for k, v in got.items()}, raw.decode("utf-8", "replace")


def p256_ceremony_config(example: Path, out: Path) -> Path:
    """The example ceremony config with a P-256 intermediate (written beside ``out``)."""
    text = example.read_text(encoding="utf-8")
    block = re.compile(r'(\[keys\.intermediate-ca\][^\[]*?algorithm = )"ecdsa-p384"')
    changed, count = block.subn(r'\1"ecdsa-p256"', text)
    if count != 1:
        raise RuntimeError("the example ceremony config has no P-384 intermediate to change")
    path = out / "root-ceremony-p256.toml"
    path.write_text(changed, encoding="utf-8")
    return path


class IssuanceInstance:
    """oidc-dev + ct + ca (and optionally tsa + log) processes for one ceremony.

    Args:
        ceremony: The rehearsed ceremony whose keys the services use.
        work: A fresh directory for configs and data.
        tsa: Also start the TSA.
        log: Also start a Rekor v2 transparency log.
        ca_extra: Extra keys of the ``[ca]`` table.
    """

    def __init__(
        self,
        ceremony: RehearsedCeremony,
        work: Path,
        *,
        tsa: bool = False,
        log: bool = False,
        ca_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.ceremony = ceremony
        self.work = work
        self.processes: list[ServiceProcess] = []
        self.oidc_key = rsa.generate_private_key(65537, 3072)
        key_file = work / "oidc-dev.pem"
        key_file.write_bytes(
            self.oidc_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
        try:
            self.oidc_url = self._start(
                "oidc-dev", {"oidc_dev": {"listen": "127.0.0.1:0", "key": f"file:{key_file}"}}
            )
            self.ct_url = self._start(
                "ct",
                {"ct": {"listen": "127.0.0.1:0", "key": "ctlog", "data": str(work / "ct-data")}},
            )
            ca_table: dict[str, Any] = {
                "listen": "127.0.0.1:0",
                "key": "intermediate-ca",
                "chain": [str(ceremony.intermediate_ca), str(ceremony.root_ca)],
                "ct_url": self.ct_url,
                **(ca_extra or {}),
                "issuers": [{"url": self.oidc_url, "type": "email"}],
            }
            self.ca_url = self._start("ca", {"ca": ca_table})
            self.tsa_url = (
                self._start(
                    "tsa",
                    {
                        "tsa": {
                            "listen": "127.0.0.1:0",
                            "key": "tsa",
                            "chain": str(ceremony.tsa_chain),
                        }
                    },
                )
                if tsa
                else None
            )
            self.log_url = self._start_log() if log else None
        except BaseException:
            self.close()
            raise

    def _start(self, service: str, sections: Mapping[str, Mapping[str, Any]]) -> str:
        config = write_config(self.work / f"{service}.toml", self.ceremony, sections)
        process = ServiceProcess(["serve", service, "--config", str(config)], self.ceremony.env)
        self.processes.append(process)
        process.start()
        return process.url

    def _start_log(self) -> str:
        root = self.ceremony.trusted_root_json()
        origin = urlsplit(root["tlogs"][0]["baseUrl"]).netloc
        keys = (self.ceremony.keys_toml).read_text(encoding="utf-8")
        found = re.search(r'\[keys\.tlog\][^\[]*?uri = "([^"]+)"', keys)
        if found is None:
            raise RuntimeError("keys.toml has no tlog key")
        process = ServiceProcess(
            [
                "serve",
                "log",
                "--data",
                str(self.work / "log-data"),
                "--listen",
                "127.0.0.1:0",
                "--origin",
                origin,
                "--key",
                found[1],
                "--max-wait",
                "0.05",
            ],
            {**self.ceremony.env, "PKCS11_MODULE": self._module(keys)},
        )
        self.processes.append(process)
        process.start()
        return process.url

    @staticmethod
    def _module(keys_toml: str) -> str:
        # ``serve log`` takes a bare URI: name the ceremony's PKCS#11 module.
        found = re.search(r'\[pkcs11\][^\[]*?module = "([^"]+)"', keys_toml)
        if found is None:
            raise RuntimeError("keys.toml names no PKCS#11 module")
        return found[1]

    @property
    def signing_cert_url(self) -> str:
        return self.ca_url + "/api/v2/signingCert"

    def token(
        self,
        identity: str = "alice@example.com",
        *,
        audience: str | None = None,
        lifetime: int | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A token from oidc-dev's ``POST /token``."""
        request: dict[str, Any] = {"identity": identity}
        if audience is not None:
            request["audience"] = audience
        if lifetime is not None:
            request["lifetime"] = lifetime
        if claims is not None:
            request["claims"] = dict(claims)
        status, _, document = http_json("POST", self.oidc_url + "/token", request)
        if status != 200:
            raise RuntimeError(f"oidc-dev refused a token: {status} {document}")
        token: str = document["id_token"]
        return token

    def jwks(self) -> dict[str, Any]:
        status, _, document = http_json("GET", self.oidc_url + "/jwks")
        assert status == 200
        jwks: dict[str, Any] = document
        return jwks

    def ct_tree_size(self) -> int:
        """The CT log's tree size (``GET /ct/v1/get-sth``)."""
        status, _, document = http_json("GET", self.ct_url + "/ct/v1/get-sth")
        if status != 200:
            raise RuntimeError(f"get-sth failed: {status} {document}")
        size: int = document["tree_size"]
        return size

    def close(self) -> None:
        """Kill every process (reverse start order)."""
        for process in reversed(self.processes):
            process.kill()
        self.processes.clear()

    def __enter__(self) -> IssuanceInstance:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
