"""``ceremony verify``: check a ceremony's outputs on a second machine, with no HSM.

The checks run in order and each failure names its check and the file or
transcript line at fault:

1. ``output.set`` -- the directory holds exactly the ceremony's outputs.
2. ``transcript.chain`` -- every line is canonical JSON whose ``prev`` is the
   hash of the line before.
3. ``transcript.structure`` -- the transcript starts, records its outputs and
   ends with a seal, and never aborted.
4. ``output.hash`` -- every output file hashes to what the transcript recorded
   (checked before the seal so that a changed file is named as such).
5. ``transcript.seal`` -- the root CA key (the one in ``root-ca.pem``) signed the
   seal line, which chains to every line before it.
6. ``key.record`` -- every key's recorded SPKI hash matches its public key.
7. ``cert.profile`` -- each certificate meets its profile and is signed by
   its issuer; the certificates hold the keys the transcript created.
8. ``trusted-root`` -- ``trusted_root.json`` carries exactly these
   certificates and log keys, and the airseal verifier loads it.
9. ``tuf-root`` -- ``1.root.json`` is signed by a threshold of the
   custodians' keys and lists exactly those root keys.
10. ``keys-toml`` -- ``keys.toml`` names the keys the transcript created.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ceremony.certs import CertificateProfile, check_profile
from ceremony.errors import CeremonyVerificationError
from ceremony.run import OUTPUTS
from ceremony.transcript import Line, TranscriptFormatError, parse_transcript, seal_message
from ceremony.trusted_root import check_trusted_root
from ceremony.tufroot import verify_root
from ceremony.words import hex_to_words
from toolkit.encoding import b64decode
from toolkit.errors import Error, FormatError
from toolkit.signing import PublicKey, Scheme, spki_sha256, verify_signature
from toolkit.signing.keyring import KeyRing

__all__ = ["CeremonyVerificationError", "VerifyReport", "verify_outputs"]

_TRANSCRIPT: Final = "transcript.jsonl"


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify_outputs`` established."""

    ceremony: str
    mode: str
    final_hash: str
    checks: tuple[str, ...]
    transcript_lines: int

    @property
    def final_words(self) -> str:
        """The final transcript hash as words to read aloud."""
        return hex_to_words(self.final_hash)


def verify_outputs(directory: Path) -> VerifyReport:
    """Verify a ceremony output directory.

    Raises:
        CeremonyVerificationError: A check failed; the message names the check
            and the file or line.
        UsageError: ``directory`` is not a directory.
    """
    return _Verification(directory).run()


def _fail(check: str, detail: str) -> CeremonyVerificationError:
    return CeremonyVerificationError(check, detail)


class _Verification:
    def __init__(self, directory: Path) -> None:
        from toolkit.errors import UsageError

        if not directory.is_dir():
            raise UsageError(f"{str(directory)!r} is not a directory")
        self.dir = directory
        self.files: dict[str, bytes] = {}
        self.done: list[str] = []

    def run(self) -> VerifyReport:
        self.check_file_set()
        lines = self.check_chain()
        steps = self.check_structure(lines)
        keys = {line.data.get("name"): line.data for line in steps["key"]}
        self.check_output_hashes(steps["outputs"][0])
        self.check_seal(lines, keys)
        self.check_key_records(keys)
        chain = self.check_certificates(keys, steps["certificate"])
        log_keys = self.check_log_keys(keys)
        self.check_trusted_root(chain, log_keys)
        self.check_tuf_root(keys, steps["tuf-root"][0])
        self.check_keys_toml(keys)
        start = steps["start"][0].data
        return VerifyReport(
            ceremony=str(start.get("ceremony")),
            mode=str(start.get("mode")),
            final_hash=lines[-1].hash,
            checks=tuple(self.done),
            transcript_lines=len(lines),
        )

    # 1 -------------------------------------------------------------------
    def check_file_set(self) -> None:
        present = {p.name for p in self.dir.iterdir()}
        missing = sorted(set(OUTPUTS) - present)
        extra = sorted(present - set(OUTPUTS))
        if missing:
            raise _fail("output.set", f"missing {', '.join(missing)}")
        if extra:
            raise _fail("output.set", f"unexpected file(s) {', '.join(extra)}")
        for name in OUTPUTS:
            path = self.dir / name
            if not path.is_file() or path.is_symlink():
                raise _fail("output.set", f"{name} is not a regular file")
            self.files[name] = path.read_bytes()
        self.done.append("output.set")

    # 2 -------------------------------------------------------------------
    def check_chain(self) -> list[Line]:
        try:
            lines = parse_transcript(self.files[_TRANSCRIPT])
        except TranscriptFormatError as exc:
            raise _fail("transcript.chain", str(exc)) from None
        self.done.append("transcript.chain")
        return lines

    # 3 -------------------------------------------------------------------
    def check_structure(self, lines: list[Line]) -> dict[str, list[Line]]:
        steps: dict[str, list[Line]] = {}
        for line in lines:
            steps.setdefault(line.step, []).append(line)
        where = "transcript.jsonl"
        if lines[0].step != "start":
            raise _fail("transcript.structure", f"{where} line 1: expected the start step")
        if "abort" in steps:
            number = steps["abort"][0].number
            raise _fail("transcript.structure", f"{where} line {number}: the ceremony aborted")
        if lines[-1].step != "seal":
            raise _fail(
                "transcript.structure", f"{where} line {lines[-1].number}: expected the seal"
            )
        for step, count in (("outputs", 1), ("tuf-root", 1), ("trusted-root", 1), ("seal", 1)):
            if len(steps.get(step, [])) != count:
                raise _fail("transcript.structure", f"{where}: expected {count} {step} step(s)")
        if len(steps.get("certificate", [])) != 3:
            raise _fail("transcript.structure", f"{where}: expected 3 certificate steps")
        steps.setdefault("key", [])
        self.done.append("transcript.structure")
        return steps

    # 5 -------------------------------------------------------------------
    def check_seal(self, lines: list[Line], keys: Mapping[Any, Mapping[str, Any]]) -> None:
        seal = lines[-1]
        where = f"transcript.jsonl line {seal.number}"
        if set(seal.data) != {"key", "spki_sha256", "signature"}:
            raise _fail("transcript.seal", f"{where}: unexpected fields in the seal")
        record = keys.get(seal.data["key"])
        if record is None or record.get("purpose") != "root-ca":
            raise _fail("transcript.seal", f"{where}: the seal is not made by the root CA key")
        root = _one_cert(self.files["root-ca.pem"], "root-ca.pem")
        root_key = _public_key(root.public_key())
        if spki_sha256(root_key) != seal.data["spki_sha256"]:
            raise _fail("transcript.seal", f"{where}: seal key is not the key of root-ca.pem")
        try:
            signature = b64decode(str(seal.data["signature"]))
        except FormatError:
            raise _fail("transcript.seal", f"{where}: signature is not base64") from None
        if not verify_signature(
            root_key, Scheme(str(record.get("scheme"))), signature, seal_message(seal.unsigned())
        ):
            raise _fail("transcript.seal", f"{where}: the root CA signature does not verify")
        self.done.append("transcript.seal")

    # 4 -------------------------------------------------------------------
    def check_output_hashes(self, outputs: Line) -> None:
        recorded = outputs.data.get("files")
        if not isinstance(recorded, dict) or set(recorded) != set(OUTPUTS) - {_TRANSCRIPT}:
            raise _fail(
                "output.hash", f"transcript.jsonl line {outputs.number}: output list is wrong"
            )
        for name in OUTPUTS:
            if name == _TRANSCRIPT:
                continue
            actual = hashlib.sha256(self.files[name]).hexdigest()
            if actual != recorded[name]:
                raise _fail(
                    "output.hash",
                    f"{name}: SHA-256 {actual[:16]}… differs from the transcript's "
                    f"{str(recorded[name])[:16]}… (the file was changed)",
                )
        self.done.append("output.hash")

    # 6 -------------------------------------------------------------------
    def check_key_records(self, keys: Mapping[Any, Mapping[str, Any]]) -> None:
        for name, record in keys.items():
            try:
                key = _public_key(
                    serialization.load_pem_public_key(str(record["public_key"]).encode())
                )
            except (KeyError, ValueError, TypeError):
                raise _fail("key.record", f"key {name!r}: public key unreadable") from None
            if spki_sha256(key) != record.get("spki_sha256"):
                raise _fail("key.record", f"key {name!r}: SPKI hash does not match its public key")
        self.done.append("key.record")

    # 7 -------------------------------------------------------------------
    def check_certificates(
        self, keys: Mapping[Any, Mapping[str, Any]], records: list[Line]
    ) -> dict[str, x509.Certificate]:
        root = _one_cert(self.files["root-ca.pem"], "root-ca.pem")
        intermediate = _one_cert(self.files["intermediate-ca.pem"], "intermediate-ca.pem")
        tsa_chain = _certs(self.files["tsa-chain.pem"], "tsa-chain.pem")
        if len(tsa_chain) != 2 or tsa_chain[1] != root:
            raise _fail(
                "cert.profile", "tsa-chain.pem: expected the TSA certificate, then the root"
            )
        certs = {"root": root, "intermediate": intermediate, "tsa": tsa_chain[0]}
        by_profile = {str(r.data.get("profile")): r.data for r in records}
        for profile in CertificateProfile:
            cert = certs[profile.value]
            problems = check_profile(profile, cert, root)
            if problems:
                raise _fail("cert.profile", f"{profile.value} certificate: {problems[0]}")
            record = by_profile.get(profile.value)
            if record is None:
                raise _fail(
                    "cert.profile", f"no transcript record of the {profile.value} certificate"
                )
            der = cert.public_bytes(serialization.Encoding.DER)
            if hashlib.sha256(der).hexdigest() != record.get("sha256"):
                raise _fail(
                    "cert.profile", f"{profile.value} certificate differs from the transcript"
                )
            key_record = keys.get(record.get("key"))
            cert_key = _public_key(cert.public_key())
            if key_record is None or spki_sha256(cert_key) != key_record.get("spki_sha256"):
                raise _fail(
                    "cert.profile",
                    f"{profile.value} certificate does not hold the key the ceremony created",
                )
        self.done.append("cert.profile")
        return certs

    def check_log_keys(self, keys: Mapping[Any, Mapping[str, Any]]) -> dict[str, PublicKey]:
        found: dict[str, PublicKey] = {}
        for purpose in ("tlog", "ctlog"):
            name = f"{purpose}.pub.pem"
            try:
                key = _public_key(serialization.load_pem_public_key(self.files[name]))
            except (ValueError, TypeError):
                raise _fail("key.record", f"{name}: not a PEM public key") from None
            records = [r for r in keys.values() if r.get("purpose") == purpose]
            if len(records) != 1 or records[0].get("spki_sha256") != spki_sha256(key):
                raise _fail("key.record", f"{name} is not the {purpose} key the ceremony created")
            found[purpose] = key
        return found

    # 8 -------------------------------------------------------------------
    def check_trusted_root(
        self, certs: Mapping[str, x509.Certificate], log_keys: Mapping[str, PublicKey]
    ) -> None:
        data = self.files["trusted_root.json"]
        problems = check_trusted_root(
            data,
            ca_chain=[certs["intermediate"], certs["root"]],
            tsa_chain=[certs["tsa"], certs["root"]],
            tlog_key=log_keys["tlog"],
            ctlog_key=log_keys["ctlog"],
        )
        if problems:
            raise _fail("trusted-root", f"trusted_root.json: {problems[0]}")
        from toolkit.verify import Verifier

        try:
            Verifier.from_json(data)
        except Error as exc:
            raise _fail("trusted-root", f"trusted_root.json: {exc.message}") from None
        self.done.append("trusted-root")

    # 9 -------------------------------------------------------------------
    def check_tuf_root(self, keys: Mapping[Any, Mapping[str, Any]], record: Line) -> None:
        try:
            report = verify_root(self.files["1.root.json"])
        except Error as exc:
            raise _fail("tuf-root", exc.message) from None
        custodians = sorted(
            str(r.get("tuf_keyid")) for r in keys.values() if r.get("purpose") == "tuf-root"
        )
        if sorted(report.keyids) != custodians:
            raise _fail("tuf-root", "1.root.json: root keys are not the custodians' keys")
        if record.data.get("root_keyids") != custodians:
            raise _fail(
                "tuf-root", f"transcript.jsonl line {record.number}: root keys differ from the keys"
            )
        self.done.append("tuf-root")

    # 10 ------------------------------------------------------------------
    def check_keys_toml(self, keys: Mapping[Any, Mapping[str, Any]]) -> None:
        try:
            ring = KeyRing.from_toml(self.files["keys.toml"])
        except FormatError as exc:
            raise _fail("keys-toml", exc.message) from None
        if set(ring.keys) != set(keys):
            raise _fail("keys-toml", "keys.toml does not list exactly the ceremony's keys")
        for name, entry in ring.keys.items():
            record = keys[name]
            expected = (record.get("purpose"), record.get("uri"), record.get("scheme"))
            if (entry.purpose, entry.uri, entry.scheme.value) != expected or (
                entry.spki_sha256 != record.get("spki_sha256")
            ):
                raise _fail("keys-toml", f"keys.toml: key {name!r} differs from the transcript")
        self.done.append("keys-toml")


def _certs(data: bytes, name: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise _fail("cert.profile", f"{name}: not PEM certificates") from None


def _one_cert(data: bytes, name: str) -> x509.Certificate:
    certs = _certs(data, name)
    if len(certs) != 1:
        raise _fail("cert.profile", f"{name}: expected one certificate, found {len(certs)}")
    return certs[0]


def _public_key(key: object) -> PublicKey:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        return key
    raise ValueError("unsupported key type")
