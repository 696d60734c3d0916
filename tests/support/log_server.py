"""A real ``airseal serve log`` process on 127.0.0.1, for integration tests and benchmarks.

The server runs exactly as an operator starts it: a separate process, a data
directory, a loopback port. Tests can kill it with SIGKILL and start it again
on the same data to exercise crash recovery.

Also here: the client side every log test needs -- hashedrekord requests, and
bundles assembled from the log's answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.support.factory import BUNDLE_V03
from toolkit.encoding import b64encode

__all__ = [
    "LogServer",
    "ed25519_request",
    "free_port",
    "hashedrekord_document",
    "hashedrekord_request",
    "log_bundle",
    "logged_signature",
]

AIRSEAL = str(Path(sys.executable).with_name("airseal"))
#: The line ``airseal serve log`` prints once it accepts connections.
_READY = re.compile(r" listening on http://127\.0\.0\.1:(\d+)$")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    For servers that cannot be told to pick one (PostgreSQL): the port may be
    taken before they bind it, so callers retry.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def hashedrekord_document(
    key: ec.EllipticCurvePrivateKey, cert: x509.Certificate | None, artifact: bytes
) -> dict[str, Any]:
    """A Rekor v2 ``hashedRekordRequestV002`` over ``artifact``, signed with ``key``.

    A fresh document each call: tests may change it to make a bad request.
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
    return {
        "hashedRekordRequestV002": {
            "digest": b64encode(digest),
            "signature": {"content": b64encode(signature), "verifier": verifier},
        }
    }


def hashedrekord_request(
    key: ec.EllipticCurvePrivateKey, cert: x509.Certificate | None, artifact: bytes
) -> bytes:
    """:func:`hashedrekord_document` as the JSON body of a POST."""
    return json.dumps(hashedrekord_document(key, cert, artifact)).encode()


def ed25519_request(key: ec.EllipticCurvePrivateKey, artifact: bytes) -> bytes:
    """:func:`hashedrekord_request` whose verifier names a fresh Ed25519 key instead.

    Pure Ed25519 cannot sign a digest: a hashedrekord log refuses such a
    request as ``unsupported-key`` (the ECDSA signature is left as it was).
    """
    document = hashedrekord_document(key, None, artifact)
    spki = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    verifier = document["hashedRekordRequestV002"]["signature"]["verifier"]
    verifier["publicKey"]["rawBytes"] = b64encode(spki)
    verifier["keyDetails"] = "PKIX_ED25519"
    return json.dumps(document).encode()


def logged_signature(entry: Mapping[str, Any]) -> bytes:
    """The signature a log answer recorded, read from its canonical body.

    ECDSA signatures are randomised: a bundle must carry the very bytes the
    log recorded, so they are taken from the body rather than made again.
    Reads hashedrekord 0.0.2 bodies (Rekor v2) and 0.0.1 bodies (``--v1``).
    """
    body: dict[str, Any] = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    spec = body["spec"]
    # hashedrekord 0.0.2 nests the signature under its type name; 0.0.1 does not.
    signature = (
        spec["hashedRekordV002"]["signature"] if "hashedRekordV002" in spec else spec["signature"]
    )
    return base64.b64decode(signature["content"])


def log_bundle(
    certificate: bytes,
    entry: Mapping[str, Any],
    artifact: bytes,
    signature: bytes,
    timestamp: bytes | None = None,
) -> dict[str, Any]:
    """A v0.3 bundle of a message signature whose transparency-log entry is a log's answer.

    Args:
        certificate: The signing certificate, DER.
        entry: The log's answer (a ``TransparencyLogEntry`` document).
        artifact: The signed artifact.
        signature: The signature over ``artifact``, as the log recorded it.
        timestamp: An RFC 3161 token over ``signature``; None leaves the
            bundle without timestamps (a v1 entry's SET is then its only time).
    """
    material: dict[str, Any] = {
        "certificate": {"rawBytes": b64encode(certificate)},
        "tlogEntries": [entry],
    }
    if timestamp is not None:
        material["timestampVerificationData"] = {
            "rfc3161Timestamps": [{"signedTimestamp": b64encode(timestamp)}]
        }
    return {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": b64encode(hashlib.sha256(artifact).digest()),
            },
            "signature": b64encode(signature),
        },
    }


class LogServer:
    """One ``airseal serve log`` process (restartable on the same data and port).

    Args:
        data: The data directory.
        origin: The log origin; None leaves ``--origin`` out (a data directory
            that already holds a log knows its origin).
        extra: More command-line arguments (``--postgres DSN``, ``--v1`` …).
    """

    def __init__(
        self, data: Path, origin: str | None = "log.airseal.test", extra: tuple[str, ...] = ()
    ):
        self.data = data
        self.origin = origin
        self.extra = extra
        # 0 until the first start: the server binds a free port itself and
        # names it in its ready line, so no other process can take the port
        # in between. Restarts reuse it: clients keep their URL across a crash.
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        #: What the current process printed (stdout and stderr), line by line.
        self.output: list[str] = []

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def vkey(self) -> str:
        """The verifier key the server printed when it started (Rekor v2 logs print one)."""
        (line,) = [line for line in self.output if line.startswith("vkey ")]
        return line.split(" ", 1)[1]

    def start(self, timeout: float = 60) -> LogServer:
        """Start the server and wait until it says it listens.

        Args:
            timeout: Seconds to wait for the ready line; generous, because a
                busy test machine can be slow to start a Python process.

        Raises:
            RuntimeError: The server exited or stayed silent (the message
                quotes its last lines).
        """
        origin = () if self.origin is None else ("--origin", self.origin)
        args = [
            AIRSEAL,
            "serve",
            "log",
            "--data",
            str(self.data),
            "--listen",
            f"127.0.0.1:{self.port}",
            *origin,
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
        self.output = []
        lines: queue.Queue[str | None] = queue.Queue()
        # A thread reads the output for the server's whole life: a pipe that
        # nobody empties would block the server once full.
        threading.Thread(
            target=_pump, args=(self.process.stdout, self.output, lines), daemon=True
        ).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:  # the process closed its output: it has exited
                break
            ready = _READY.search(line)
            if ready:
                self.port = int(ready[1])
                return self
        self.kill()
        raise RuntimeError("log server did not start: " + " | ".join(self.output[-5:]))

    def kill(self) -> None:
        """SIGKILL: a crash, no cleanup."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM or SIGINT: a clean stop) and wait; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
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


def _pump(stream: IO[str], output: list[str], lines: queue.Queue[str | None]) -> None:
    """Copy a server's output into ``output`` and ``lines``; None once it closes."""
    for line in stream:
        output.append(line.rstrip("\n"))
        lines.put(output[-1])
    lines.put(None)
