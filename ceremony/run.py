"""The ceremony engine shared by ``run`` and ``rehearse``.

The engine is a straight line of steps, each recorded in the transcript
before the next begins: load the PKCS#11 module, find and identify every token,
log in, check that no planned label is taken, generate and audit each key,
issue the certificates (lint first, HSM second, compare after), assemble the
trusted root and the TUF root, write the outputs and seal the transcript. Any
failure records an ``abort`` line naming the step, removes the partial outputs
and re-raises, so the CLI reports one line and the exit code of the failure.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ceremony._staging import TRANSCRIPT, Staging, preflight
from ceremony.certs import CertificateProfile, IssuedCertificate, build_certificate, random_serial
from ceremony.config import CeremonyConfig, KeySpec, Purpose
from ceremony.errors import CeremonyError, CeremonyInterruptedError
from ceremony.plan import OUTPUT_FILES
from ceremony.transcript import TranscriptWriter
from ceremony.trusted_root import build_trusted_root
from ceremony.tufroot import build_root, sign_root, verify_root
from ceremony.words import hex_to_words
from toolkit import __version__
from toolkit.errors import Error, HSMError
from toolkit.signing import Signer, verify_signature
from toolkit.signing.keyring import KeyEntry, KeyRing
from toolkit.signing.pkcs11 import (
    Pkcs11Module,
    Pkcs11Signer,
    Pkcs11Uri,
    Token,
    generate_key,
    key_attributes,
    resolve_pin,
)
from toolkit.signing.tuf import TufSigner, tuf_key

__all__ = ["OUTPUTS", "CeremonyResult", "TokenTarget", "run_ceremony"]

Mode = Literal["run", "rehearsal"]

#: Every file a completed ceremony leaves in its output directory (the plan lists them too).
OUTPUTS: Final = tuple(name for name, _what in OUTPUT_FILES)

#: Attribute values every ceremony key must show on the token.
REQUIRED_ATTRIBUTES: Final[Mapping[str, bool]] = {
    "SENSITIVE": True,
    "ALWAYS_SENSITIVE": True,
    "EXTRACTABLE": False,
    "NEVER_EXTRACTABLE": True,
    "LOCAL": True,
    "SIGN": True,
    "DECRYPT": False,
    "DERIVE": False,
    "UNWRAP": False,
}

#: Test-only fault injection: pause after the first transcript step whose
#: ``step`` or ``step:name`` equals this value, so a test can kill the process
#: at a known point. It changes nothing else.
PAUSE_ENV: Final = "AIRSEAL_CEREMONY_PAUSE_AFTER"

#: Libraries whose versions the transcript records.
_LIBRARIES: Final = (
    "cryptography",
    "asn1crypto",
    "python-pkcs11",
    "tuf",
    "securesystemslib",
    "pkilint",
)


@dataclass(frozen=True)
class TokenTarget:
    """Where to find one of the config's tokens in this run.

    Attributes:
        name: The token's name in the config.
        uri: PKCS#11 URI used to find it and to resolve its PIN.
        label: The token label to look for.
        serial: The serial it must have (None: not checked, for rehearsals
            on freshly created tokens).
    """

    name: str
    uri: str
    label: str
    serial: str | None


@dataclass(frozen=True)
class CeremonyResult:
    """What a completed ceremony produced."""

    out: Path
    final_hash: str
    outputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def final_words(self) -> str:
        """The final transcript hash as words to read aloud."""
        return hex_to_words(self.final_hash)


def run_ceremony(
    config: CeremonyConfig,
    *,
    out: Path,
    module_path: str,
    tokens: Mapping[str, TokenTarget],
    mode: Mode,
    softhsm2_conf: str | None = None,
    echo: Callable[[str], None] = lambda _line: None,
) -> CeremonyResult:
    """Run every step of the ceremony and move the outputs into ``out``.

    Args:
        config: The validated ceremony config.
        out: The output directory; it must not exist.
        module_path: The PKCS#11 module to load.
        tokens: Where each of the config's tokens is, by token name.
        mode: ``run`` for the real ceremony, ``rehearsal`` for throwaway tokens.
        softhsm2_conf: For rehearsals, the SoftHSM config to name in ``keys.toml``.
        echo: Receives one progress line per step.

    Returns:
        The output directory, the final transcript hash and the output hashes.

    Raises:
        UsageError: Outputs or an interrupted run's staging directory exist.
        HSMError: The module, a token, a PIN or a key failed.
        CeremonyError: A certificate, trusted root or TUF root check failed.
    """
    preflight(out)
    staging = Staging(out)
    writer = TranscriptWriter(staging.path / TRANSCRIPT)
    engine = _Engine(config, writer, staging, mode=mode, echo=echo)
    try:
        with _signals_as_errors():
            outputs = engine.run(module_path, tokens, softhsm2_conf)
    except KeyboardInterrupt:
        # Ctrl-C becomes an ordinary, reported failure with exit 3.
        interrupted = CeremonyInterruptedError("stopped by Ctrl-C")
        engine.abort(interrupted)
        raise interrupted from None
    except BaseException as exc:
        engine.abort(exc)
        raise
    writer.close()
    staging.commit()
    return CeremonyResult(out, writer.last_hash, outputs)


@contextmanager
def _signals_as_errors() -> Iterator[None]:
    """Turn SIGTERM into an exception so an orderly abort is recorded."""

    def _handler(signum: int, _frame: FrameType | None) -> None:
        raise CeremonyInterruptedError(f"stopped by {signal.Signals(signum).name}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGTERM and SIGINT while a transcript line is written.

    A line and the writer's hash-chain state must change together: a signal
    handler raising between the write and the state update would make the
    abort line chain to the wrong hash. Signals that arrive meanwhile are
    delivered when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGTERM, signal.SIGINT}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Engine:
    """One ceremony's state while it runs."""

    def __init__(
        self,
        config: CeremonyConfig,
        writer: TranscriptWriter,
        staging: Staging,
        *,
        mode: Mode,
        echo: Callable[[str], None],
    ) -> None:
        self.config = config
        self.writer = writer
        self.staging = staging
        self.mode = mode
        self.echo = echo
        self.current = "start"
        self.signers: dict[str, Pkcs11Signer] = {}
        self.key_uris: dict[str, str] = {}
        self.targets: dict[str, TokenTarget] = {}
        self.certs: dict[CertificateProfile, x509.Certificate] = {}
        self.pause_after = os.environ.get(PAUSE_ENV)

    # -- transcript -----------------------------------------------------

    def record(self, step: str, data: Mapping[str, Any], *, name: str | None = None) -> None:
        """Append one step to the transcript and tell the operator."""
        label = f"{step}:{name}" if name else step
        with _signals_deferred():
            self.writer.append(step, data)
            # Until the next phase names itself, a failure happens "after" this step.
            self.current = f"after {label}"
        self.echo(f"[{self.writer.count - 1:02d}] {label}")
        if self.pause_after in (step, label):
            # Fault injection for tests only: see PAUSE_ENV.
            time.sleep(60)

    def abort(self, exc: BaseException) -> None:
        """Record where the ceremony stopped and set partial outputs aside."""
        if isinstance(exc, Error):
            message, kind = exc.message, type(exc).__name__
        else:
            message, kind = f"{type(exc).__name__}: {exc}", "InternalError"
        try:
            self.writer.append("abort", {"during": self.current, "kind": kind, "error": message})
        finally:
            self.writer.close()
            aborted = self.staging.abort()
        if isinstance(exc, Error):
            where = (
                f"nothing was put in place; the aborted run's transcript is {aborted / TRANSCRIPT}"
            )
            exc.hint = f"{exc.hint}; {where}" if exc.hint else where

    # -- steps ------------------------------------------------------------

    def run(
        self, module_path: str, tokens: Mapping[str, TokenTarget], softhsm2_conf: str | None
    ) -> dict[str, str]:
        config = self.config
        self.record(
            "start",
            {
                "ceremony": config.id,
                "mode": self.mode,
                "config_file": config.path.name,
                "config_sha256": config.sha256,
                "tool": {"airseal": __version__, **_library_versions()},
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
        )
        self.current = "module"
        module = Pkcs11Module.load(module_path)
        self.record(
            "module",
            {
                "requested_path": module_path,
                "path": module.path,
                "sha256": module.sha256,
                "info": module.info,
            },
        )
        self.targets = dict(tokens)
        found = self.find_tokens(module, tokens)
        self.login(found, tokens)
        self.check_labels_free(found)
        for spec in config.keys.values():
            self.current = f"key:{spec.name}"
            self.create_key(spec, found[spec.token])
        self.issue_certificates()
        self.current = "trusted-root"
        trusted_root = self.trusted_root()
        self.current = "tuf-root"
        tuf_root = self.tuf_root()
        self.current = "outputs"
        outputs = self.write_outputs(trusted_root, tuf_root, module, softhsm2_conf)
        self.current = "seal"
        self.seal()
        return outputs

    def find_tokens(
        self, module: Pkcs11Module, tokens: Mapping[str, TokenTarget]
    ) -> dict[str, Token]:
        self.current = "tokens"
        present = {info.label: info for info in module.tokens()}
        missing = [t for t in tokens.values() if t.label not in present]
        if missing:
            raise _missing_tokens(self.config, missing, list(present))
        found: dict[str, Token] = {}
        for target in tokens.values():
            self.current = f"token:{target.name}"
            token = module.find_token(label=target.label)
            info = token.info
            if target.serial is not None and info.serial != target.serial:
                raise HSMError(
                    f"token {target.name!r} (label {target.label!r}) has serial {info.serial}, "
                    f"but the config expects {target.serial}",
                    hint="is this the right token? the ceremony checks serials to catch swaps",
                )
            found[target.name] = token
            self.record(
                "token",
                {"name": target.name, "expected_serial": target.serial, "info": info.to_dict()},
                name=target.name,
            )
        return found

    def login(self, found: Mapping[str, Token], tokens: Mapping[str, TokenTarget]) -> None:
        for name, token in found.items():
            self.current = f"login:{name}"
            uri = Pkcs11Uri.parse(tokens[name].uri)
            pin = resolve_pin(uri, token_name=name)
            token.session(pin)
            self.record("login", {"name": name}, name=name)

    def check_labels_free(self, found: Mapping[str, Token]) -> None:
        self.current = "labels"
        for name, token in found.items():
            planned = {k.label for k in self.config.keys_on(name)}
            taken = sorted(planned & set(token.object_labels()))
            if taken:
                raise HSMError(
                    f"token {name!r} already holds objects labelled {', '.join(taken)}",
                    hint="a ceremony never reuses keys: use a fresh token or new labels",
                )
        self.record("labels", {"free": True})

    def create_key(self, spec: KeySpec, token: Token) -> None:
        key_id = secrets.token_bytes(16)
        signer = generate_key(token, spec.algorithm, spec.label, key_id=key_id, scheme=spec.scheme)
        attributes = key_attributes(signer)
        wrong = {
            k: attributes.get(k) for k, v in REQUIRED_ATTRIBUTES.items() if attributes.get(k) != v
        }
        if wrong:
            raise HSMError(
                f"key {spec.name!r} was created with unsafe attributes: "
                + ", ".join(f"{k}={v}" for k, v in sorted(wrong.items())),
                hint="the token ignored the requested attributes; do not use it for CA keys",
            )
        challenge = (
            f"airseal ceremony {self.config.id} proof-of-possession {spec.name} {signer.key_id}"
        ).encode()
        _verify_signature(signer, signer.sign(challenge), challenge, what=f"key {spec.name!r}")
        data: dict[str, Any] = {
            "name": spec.name,
            "purpose": spec.purpose.value,
            "algorithm": spec.algorithm.value,
            "scheme": signer.scheme.value,
            "token": spec.token,
            "label": spec.label,
            "id": key_id.hex(),
            "uri": self.key_uri(spec, signer),
            "attributes": dict(sorted(attributes.items())),
            "spki_sha256": signer.key_id,
            "public_key": _pem(signer).decode("ascii"),
            "proof_of_possession": hashlib.sha256(challenge).hexdigest(),
        }
        if spec.purpose in (Purpose.TUF_ROOT, Purpose.TUF_ONLINE):
            data["tuf_keyid"] = tuf_key(signer.public_key).keyid
        self.signers[spec.name] = signer
        self.record("key", data, name=spec.name)

    def key_uri(self, spec: KeySpec, signer: Pkcs11Signer) -> str:
        """The key's URI for ``keys.toml``: the token's ``pin-source``, if any, but never a PIN."""
        pin_source = Pkcs11Uri.parse(self.targets[spec.token].uri).pin_source
        uri = str(signer.uri.replace(pin_source=pin_source) if pin_source else signer.uri)
        self.key_uris[spec.name] = uri
        return uri

    def issue_certificates(self) -> None:
        config = self.config
        root_spec = config.certificates["root"]
        root_signer = self.signers[root_spec.key]
        root_name = root_spec.subject.to_x509()
        for kind in (
            CertificateProfile.ROOT,
            CertificateProfile.INTERMEDIATE,
            CertificateProfile.TSA,
        ):
            self.current = f"certificate:{kind.value}"
            spec = config.certificates[kind.value]
            issued = build_certificate(
                kind,
                subject=spec.subject.to_x509(),
                subject_key=self.signers[spec.key].public_key,
                issuer=root_name,
                issuer_key=root_signer.public_key,
                issuer_signer=root_signer,
                not_before=spec.not_before,
                not_after=spec.not_after,
                serial=random_serial(),
            )
            self.certs[kind] = issued.certificate
            self.record("certificate", _certificate_record(kind, spec.key, issued), name=kind.value)

    def trusted_root(self) -> bytes:
        services = self.config.trusted_root
        root = self.certs[CertificateProfile.ROOT]
        data = build_trusted_root(
            ca_chain=[self.certs[CertificateProfile.INTERMEDIATE], root],
            tsa_chain=[self.certs[CertificateProfile.TSA], root],
            tlog_key=self.signers[self.config.key_for(Purpose.TLOG).name].public_key,
            ctlog_key=self.signers[self.config.key_for(Purpose.CTLOG).name].public_key,
            ca_url=services.ca.url,
            tsa_url=services.tsa.url,
            tlog_url=services.tlog.url,
            ctlog_url=services.ctlog.url,
            ca_valid=(services.ca.valid_from, services.ca.valid_until),
            tsa_valid=(services.tsa.valid_from, services.tsa.valid_until),
            tlog_valid=(services.tlog.valid_from, services.tlog.valid_until),
            ctlog_valid=(services.ctlog.valid_from, services.ctlog.valid_until),
        )
        # The verifier the users will run must accept what we publish.
        from toolkit.verify import Verifier

        Verifier.from_json(data)
        self.record("trusted-root", {"sha256": hashlib.sha256(data).hexdigest()})
        return data

    def tuf_root(self) -> bytes:
        tuf = self.config.tuf
        custodian_keys = [self.signers[c.key] for c in self.config.custodians]

        def keys(names: tuple[str, ...]) -> list[Any]:
            return [tuf_key(self.signers[n].public_key) for n in names]

        metadata = build_root(
            root_keys=[tuf_key(s.public_key) for s in custodian_keys],
            root_threshold=tuf.root.threshold,
            targets_keys=keys(tuf.targets.keys),
            targets_threshold=tuf.targets.threshold,
            snapshot_keys=keys(tuf.snapshot.keys),
            snapshot_threshold=tuf.snapshot.threshold,
            timestamp_keys=keys(tuf.timestamp.keys),
            timestamp_threshold=tuf.timestamp.threshold,
            expires=_required(tuf.root.expires, "tuf.root.expires"),
            consistent_snapshot=tuf.consistent_snapshot,
        )
        data = sign_root(metadata, [TufSigner(s) for s in custodian_keys])
        report = verify_root(data)
        self.record(
            "tuf-root",
            {
                "sha256": hashlib.sha256(data).hexdigest(),
                "root_keyids": sorted(report.keyids),
                "threshold": report.threshold,
                "signatures": report.signatures,
                "expires": report.expires,
            },
        )
        return data

    def write_outputs(
        self,
        trusted_root: bytes,
        tuf_root: bytes,
        module: Pkcs11Module,
        softhsm2_conf: str | None,
    ) -> dict[str, str]:
        root = self.certs[CertificateProfile.ROOT]
        files = {
            "root-ca.pem": _cert_pem(root),
            "intermediate-ca.pem": _cert_pem(self.certs[CertificateProfile.INTERMEDIATE]),
            "tsa-chain.pem": _cert_pem(self.certs[CertificateProfile.TSA]) + _cert_pem(root),
            "tlog.pub.pem": _pem(self.signers[self.config.key_for(Purpose.TLOG).name]),
            "ctlog.pub.pem": _pem(self.signers[self.config.key_for(Purpose.CTLOG).name]),
            "trusted_root.json": trusted_root,
            "1.root.json": tuf_root,
            "keys.toml": self.keyring(module, softhsm2_conf),
        }
        for name, data in files.items():
            self.staging.write(name, data)
        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        self.record("outputs", {"files": hashes})
        return hashes

    def keyring(self, module: Pkcs11Module, softhsm2_conf: str | None) -> bytes:
        entries = {
            name: KeyEntry(
                name,
                self.config.keys[name].purpose.value,
                self.key_uris[name],
                signer.scheme,
                signer.key_id,
            )
            for name, signer in self.signers.items()
        }
        ring = KeyRing(module.path, module.sha256, entries, softhsm2_conf)
        header = (
            f"Keys of airseal ceremony {self.config.id} ({self.mode}); PKCS#11 URIs, no PINs.\n"
            "PINs come from a prompt, AIRSEAL_PIN_<TOKEN> or a pin-source file."
        )
        return ring.to_toml(header=header)

    def seal(self) -> None:
        root_name = self.config.certificates["root"].key
        signer = self.signers[root_name]

        def sign(message: bytes) -> bytes:
            signature = signer.sign(message)
            _verify_signature(signer, signature, message, what="transcript seal")
            return signature

        with _signals_deferred():
            self.writer.append_sealed(
                "seal", {"key": root_name, "spki_sha256": signer.key_id}, sign
            )
        self.echo(f"[{self.writer.count - 1:02d}] seal")


def _missing_tokens(
    config: CeremonyConfig, missing: list[TokenTarget], present: list[str]
) -> HSMError:
    names = ", ".join(f"{t.name!r} (label {t.label!r})" for t in missing)
    custodian_tokens = {c.token for c in config.custodians}
    lost = [t for t in missing if t.name in custodian_tokens]
    available = len(custodian_tokens) - len(lost)
    threshold = config.tuf.root.threshold
    seen = ", ".join(repr(p) for p in present) or "none"
    if lost and available < threshold:
        return HSMError(
            f"custodian token(s) {names} not present: {available} of {len(custodian_tokens)} "
            f"custodian tokens available, the TUF root threshold of {threshold} cannot be met",
            hint=f"tokens present: {seen}; bring every custodian's token",
        )
    if lost:
        return HSMError(
            f"custodian token(s) {names} not present; every custodian's root key is created "
            "in this ceremony",
            hint=f"tokens present: {seen}",
        )
    return HSMError(f"token(s) {names} not present", hint=f"tokens present: {seen}")


def _verify_signature(signer: Signer, signature: bytes, message: bytes, *, what: str) -> None:
    # Independent of the signer's own check: the ceremony trusts no token.
    if not verify_signature(signer.public_key, signer.scheme, signature, message):
        raise HSMError(f"{what}: the token returned a signature that does not verify")


def _certificate_record(
    kind: CertificateProfile, key: str, issued: IssuedCertificate
) -> dict[str, Any]:
    cert = issued.certificate
    return {
        "profile": kind.value,
        "key": key,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tbs_sha256": issued.tbs_sha256,
        "lint": list(issued.findings),
        "tbs_matches_lint_certificate": True,
        "sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
    }


def _pem(signer: Signer) -> bytes:
    return signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _required(value: datetime | None, path: str) -> datetime:
    if value is None:  # The config loader guarantees it; keep mypy and readers honest.
        raise CeremonyError(f"{path} is required")
    return value


def _library_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
