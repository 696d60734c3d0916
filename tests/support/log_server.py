"""A real ``airseal serve log`` process on 127.0.0.1, for integration tests and benchmarks.

The server runs exactly as an operator starts it: a separate process, a data
directory, a loopback port. Tests can kill it with SIGKILL and start it again
on the same data to exercise crash recovery.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from toolkit.encoding import b64encode

__all__ = ["LogServer", "free_port", "hashedrekord_request"]

AIRSEAL = str(Path(sys.executable).with_name("airseal"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def hashedrekord_request(
    key: ec.EllipticCurvePrivateKey, cert: x509.Certificate | None, artifact: bytes
) -> bytes:
    """A Rekor v2 ``hashedRekordRequestV002`` over ``artifact``, signed with ``key``.

    With ``cert`` None the verifier is the bare public key.
    """
    digest = hashlib.sha256(artifact).digest()
    signature = key.sign(artifact, ec.ECDSA(hashes.SHA256()))
    verifier: dict[str, Any] = {"keyDetails": "PKIX_ECDSA_P256_SHA_256"}
    if cert is not None:
        verifier["x509Certificate"] = {
            "rawBytes": b64encode(cert.public_bytes(serialization.Encoding.DER))
        }
    else:
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        verifier["publicKey"] = {"rawBytes": b64encode(spki)}
    request = {
        "hashedRekordRequestV002": {
            "digest": b64encode(digest),
            "signature": {"content": b64encode(signature), "verifier": verifier},
        }
    }
    return json.dumps(request).encode()


class LogServer:
    """One ``airseal serve log`` process (restartable on the same data).

    Args:
        data: The data directory.
        origin: The log origin.
        extra: More command-line arguments (``--postgres DSN``, ``--v1`` …).
    """

    def __init__(self, data: Path, origin: str = "log.airseal.test", extra: tuple[str, ...] = ()):
        self.data = data
        self.origin = origin
        self.extra = extra
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> LogServer:
        """Start the server and wait until it says it listens."""
        args = [
            AIRSEAL,
            "serve",
            "log",
            "--data",
            str(self.data),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--origin",
            self.origin,
            *self.extra,
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
                if not line:
                    break
                self.output.append(line.rstrip("\n"))
                if "listening on" in line:
                    return self
            elif self.process.poll() is not None:
                break
        self.kill()
        raise RuntimeError("log server did not start: " + " | ".join(self.output[-5:]))

    def kill(self) -> None:
        """SIGKILL: a crash, no cleanup."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> LogServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.kill()

    # -- HTTP ------------------------------------------------------------------

    def post(self, body: bytes, timeout: float = 30) -> tuple[int, dict[str, Any]]:
        """POST an entry request; returns (status, JSON body)."""
        request = urllib.request.Request(
            self.url + "/api/v2/log/entries",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def get(self, path: str, timeout: float = 30) -> bytes | None:
        """GET a path; None on 404."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
