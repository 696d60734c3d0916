"""``airseal ceremony plan``: what a config will create, for the people who sign off on it.

The plan is plain text meant to be printed, read in the room and compared
with the config by eye. It needs no token and writes nothing. It starts with
the config SHA-256 in hex and as PGP words: that hash is what everybody reads
aloud before ``run``, and ``run`` records the same hash in its transcript.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from ceremony.config import (
    CERTIFICATE_KINDS,
    CeremonyConfig,
    CertificateSpec,
    KeySpec,
    ServiceSpec,
    TufRoleSpec,
)
from ceremony.words import hash_lines
from toolkit.signing._api import Scheme

__all__ = ["OUTPUT_FILES", "render_plan"]

#: Every file a completed ceremony writes into its output directory, with what it holds.
OUTPUT_FILES: Final[tuple[tuple[str, str], ...]] = (
    ("root-ca.pem", "root CA certificate (self-signed)"),
    ("intermediate-ca.pem", "intermediate CA certificate (signed by the root)"),
    ("tsa-chain.pem", "TSA certificate, then the root CA certificate"),
    ("tlog.pub.pem", "transparency log public key"),
    ("ctlog.pub.pem", "CT log public key"),
    ("trusted_root.json", "Sigstore trusted root (TrustedRoot v0.1)"),
    ("1.root.json", "TUF root metadata, version 1, signed by the custodians"),
    ("keys.toml", "PKCS#11 URI of every key, for the services (no PINs)"),
    ("transcript.jsonl", "hash-chained record of every step"),
)

# What each certificate will say about itself; the run builds exactly these
# (DESIGN.md §3), so the reviewers can check them before any key exists.
_PROFILES: Final[dict[str, tuple[str, ...]]] = {
    "root": (
        "basicConstraints CA:TRUE (critical)",
        "keyUsage keyCertSign, cRLSign (critical)",
        "subjectKeyIdentifier; no extendedKeyUsage",
    ),
    "intermediate": (
        "basicConstraints CA:TRUE, pathlen 0 (critical)",
        "keyUsage keyCertSign, cRLSign (critical)",
        "extendedKeyUsage codeSigning",
        "subjectKeyIdentifier, authorityKeyIdentifier",
    ),
    "tsa": (
        "basicConstraints CA:FALSE",
        "keyUsage digitalSignature (critical)",
        "extendedKeyUsage timeStamping (critical)",
        "subjectKeyIdentifier, authorityKeyIdentifier",
    ),
}

_SIGNATURE_ALGORITHMS: Final[dict[Scheme, str]] = {
    Scheme.ECDSA_P256_SHA256: "ecdsa-with-SHA256",
    Scheme.ECDSA_P384_SHA384: "ecdsa-with-SHA384",
    Scheme.ED25519: "Ed25519",
    Scheme.RSA_PKCS1V15_3072_SHA256: "sha256WithRSAEncryption",
    Scheme.RSA_PKCS1V15_4096_SHA256: "sha256WithRSAEncryption",
    Scheme.RSA_PSS_3072_SHA256: "RSASSA-PSS with SHA-256",
    Scheme.RSA_PSS_4096_SHA256: "RSASSA-PSS with SHA-256",
}


def render_plan(config: CeremonyConfig) -> str:
    """Describe everything ``run`` will create from ``config``, as plain text.

    Args:
        config: A validated config.

    Returns:
        The plan, ending with a newline.
    """
    out = _Lines()
    out.add(f"airseal ceremony plan: {config.id}")
    out.add("=" * len(out.lines[-1]))
    if config.description:
        out.add(config.description)
    out.blank()
    out.add(f"Config file:     {config.path}")
    out.add(f"Config SHA-256:  {config.sha256}")
    out.add("Read aloud (hex, then words):")
    for number, line in enumerate(hash_lines(config.sha256), start=1):
        out.add(f"  {number}. {line}")
    out.add(f"Output dir:      {config.output_dir}")
    out.add(f"                 (written via {config.output_dir}.staging, renamed when complete)")
    module = config.pkcs11_module or "from the PKCS11_MODULE environment variable"
    out.add(f"PKCS#11 module:  {module}")

    out.section(f"Tokens ({len(config.tokens)})")
    for token in config.tokens.values():
        names = ", ".join(key.name for key in config.keys_on(token.name)) or "none"
        out.add(f"  {token.name}")
        out.add(f"    label:           {token.label}")
        out.add(f"    expected serial: {token.serial}")
        out.add(f"    URI:             {token.uri}")
        out.add(f"    PIN:             prompt, {token.pin_env}, or pin-source in the URI")
        out.add(f"    keys:            {names}")

    out.section(f"Keys to generate ({len(config.keys)})")
    out.add("  each: on the token, sensitive, never extractable, sign/verify only")
    for key in config.keys.values():
        out.add(f"  {key.name}")
        out.add(f"    purpose:    {key.purpose}")
        out.add(f"    algorithm:  {key.algorithm} (scheme {key.scheme})")
        out.add(f"    token:      {key.token} (label {config.tokens[key.token].label})")
        out.add(f"    key label:  {key.label}")

    root = config.tuf.root
    out.section(
        f"Custodians ({len(config.custodians)}; TUF root threshold "
        f"{root.threshold} of {len(config.custodians)})"
    )
    for custodian in config.custodians:
        key = config.keys[custodian.key]
        out.add(f"  {custodian.name}")
        out.add(f"    token:  {custodian.token} (label {config.tokens[custodian.token].label})")
        out.add(f"    key:    {key.name} ({key.algorithm}, label {key.label})")

    out.section("Certificates")
    root_cert = config.certificates["root"]
    for kind in CERTIFICATE_KINDS:
        _certificate(out, config, config.certificates[kind], root_cert)

    out.section("Trusted root services (trusted_root.json)")
    trusted = config.trusted_root
    _service(out, config, "ca", trusted.ca, "certificate chain: intermediate-ca.pem, root-ca.pem")
    _service(out, config, "tsa", trusted.tsa, "certificate chain: tsa-chain.pem")
    _service(out, config, "tlog", trusted.tlog, "log id: SHA-256 of the key's SPKI")
    _service(out, config, "ctlog", trusted.ctlog, "log id: SHA-256 of the key's SPKI")

    out.section("TUF root metadata (1.root.json, version 1)")
    out.add(f"  consistent_snapshot: {str(config.tuf.consistent_snapshot).lower()}")
    for name, role in (
        ("root", root),
        ("targets", config.tuf.targets),
        ("snapshot", config.tuf.snapshot),
        ("timestamp", config.tuf.timestamp),
    ):
        _role(out, name, role)
    out.add(
        f"  1.root.json is signed by at least {root.threshold} of the "
        f"{len(config.custodians)} custodian keys"
    )

    out.section(f"Output files (in {config.output_dir})")
    width = max(len(name) for name, _ in OUTPUT_FILES)
    for name, what in OUTPUT_FILES:
        out.add(f"  {name.ljust(width)}  {what}")
    out.blank()
    out.add("Nothing has been created: plan touches no token and writes no file.")
    return out.text()


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def blank(self) -> None:
        self.lines.append("")

    def section(self, title: str) -> None:
        self.lines.extend(["", title, "-" * len(title)])

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _key_summary(config: CeremonyConfig, key: KeySpec) -> str:
    return f"{key.name} ({key.algorithm} on token {key.token}, label {key.label})"


def _certificate(
    out: _Lines, config: CeremonyConfig, spec: CertificateSpec, root: CertificateSpec
) -> None:
    issuer_key = config.keys[root.key]
    if spec.kind == "root":
        issuer = f"{root.subject.rfc4514()} (self-signed)"
    else:
        issuer = f"{root.subject.rfc4514()} (the root, key {root.key})"
    days = (spec.not_after - spec.not_before).days
    out.add(f"  {spec.kind}")
    out.add(f"    subject:    {spec.subject.rfc4514()}")
    out.add(f"    issuer:     {issuer}")
    out.add(f"    key:        {_key_summary(config, config.keys[spec.key])}")
    out.add(f"    not before: {_time(spec.not_before)}")
    out.add(f"    not after:  {_time(spec.not_after)} ({days} days)")
    out.add(f"    signature:  {_SIGNATURE_ALGORITHMS[issuer_key.scheme]} by {root.key}")
    out.add("    serial:     20 random bytes, chosen at run time")
    profile = _PROFILES[spec.kind]
    out.add(f"    profile:    {profile[0]}")
    for line in profile[1:]:
        out.add(f"                {line}")


def _service(
    out: _Lines, config: CeremonyConfig, name: str, spec: ServiceSpec, material: str
) -> None:
    if spec.valid_until is not None:
        valid = f"{_time(spec.valid_from)} to {_time(spec.valid_until)}"
    else:
        valid = f"from {_time(spec.valid_from)}, open-ended"
    out.add(f"  {name}")
    out.add(f"    url:        {spec.url}")
    out.add(f"    valid:      {valid}")
    if spec.key is not None:
        out.add(f"    key:        {_key_summary(config, config.keys[spec.key])}")
    out.add(f"    {material}")


def _role(out: _Lines, name: str, role: TufRoleSpec) -> None:
    if role.expires is not None:
        expiry = f"expires {_time(role.expires)}"
    else:
        days = "1 day" if role.expiry_days == 1 else f"{role.expiry_days} days"
        expiry = f"each version expires {days} after signing"
    out.add(f"  {name}")
    out.add(f"    threshold:  {role.threshold} of {len(role.keys)}")
    out.add(f"    keys:       {', '.join(role.keys)}")
    out.add(f"    {expiry}")
