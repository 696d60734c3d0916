"""``airseal verify`` and ``airseal verify-bundle`` (the sigstore-conformance protocol).

This module deliberately does not use ``from __future__ import annotations``:
typer resolves the command signatures at every start, and real annotation
objects are much cheaper for it than strings to evaluate.
"""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli._errors import reporting
from toolkit.cli._files import read_input
from toolkit.errors import EnvironmentSetupError, UsageError

if TYPE_CHECKING:
    from toolkit.trust.offline import KitVerification
    from toolkit.verify import Artifact, Policy, VerificationResult

__all__ = ["register"]

#: Artifacts up to this size are also kept in memory, for the rare bundles that
#: need more than the SHA-256 digest (SHA-384/512 entries).
_KEEP_BYTES = 16 << 20


def _artifact(spec: str) -> "Artifact":
    """An artifact from a path, or from ``sha256:<hex>`` when no such file exists."""
    from toolkit.verify import Artifact

    path = Path(spec)
    if Artifact.looks_like_digest(spec) and not path.exists():
        return Artifact.from_digest(spec)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            if size <= _KEEP_BYTES:
                return Artifact.from_bytes(handle.read())
            digest = hashlib.file_digest(handle, "sha256").digest()
            return Artifact(sha256=digest)
    except FileNotFoundError:
        raise UsageError(
            f"artifact {spec!r} does not exist (give a file or sha256:<64 hex digits>)"
        ) from None
    except IsADirectoryError:
        raise UsageError(f"artifact {spec!r} is a directory, not a file") from None
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot read artifact {spec!r}: {exc.strerror}") from None


def _policy(
    identity: str | None, identity_regex: str | None, issuer: str | None, key: Path | None
) -> "Policy":
    from toolkit.verify import IdentityPolicy, KeyPolicy

    if key is not None:
        if identity or identity_regex or issuer:
            raise UsageError("give either --key or an identity with --issuer, not both")
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pem = read_input(key, "public key")
        try:
            return KeyPolicy(load_pem_public_key(pem))
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise UsageError(f"{str(key)!r} is not a PEM public key") from None
    if not issuer or not (identity or identity_regex):
        raise UsageError(
            "say whose signature to accept: --identity (or --identity-regex) with --issuer, "
            "or --key"
        )
    return IdentityPolicy(issuer=issuer, identity=identity, identity_regex=identity_regex)


def _run(
    policy: "Policy", artifact_spec: str, bundle: Path, trusted_root: Path
) -> "VerificationResult":
    from toolkit.verify import Verifier

    artifact = _artifact(artifact_spec)
    root_bytes = read_input(trusted_root, "trusted root")
    bundle_bytes = read_input(bundle, "bundle")
    verifier = Verifier.from_json(root_bytes)
    return verifier.verify(bundle_bytes, artifact, policy, now=datetime.now(UTC))


def _run_kit(
    policy: "Policy",
    artifact_spec: str,
    kit_path: Path,
    root: Path | None,
    root_sha256: str | None,
    state: Path | None,
    expiry: str,
) -> "KitVerification":
    """``--kit``: the kit's TUF chain from the pinned root, then its bundle(s)."""
    from toolkit.trust.offline import without_http_fetcher

    # Before python-tuf is imported: its HTTP fetcher's urllib3 would create a
    # socket at import time, and this process must create none.
    without_http_fetcher()

    from toolkit.cli._kit import _pin
    from toolkit.errors import Check, FormatError, VerificationError
    from toolkit.trust.kit import MAX_KIT_BYTES, Kit
    from toolkit.trust.offline import ExpiryPolicy, default_state_dir, verify_kit

    expiry_policy = ExpiryPolicy.parse(expiry)
    pin = _pin(root, root_sha256, required=True)
    assert pin is not None
    artifact = _artifact(artifact_spec)
    data = read_input(kit_path, "kit", limit=MAX_KIT_BYTES)
    try:
        kit = Kit.decode(data)
    except FormatError as exc:
        # A kit that does not decode is evidence that failed, like a bundle.
        raise VerificationError(Check.KIT_PARSE, exc.message) from None
    return verify_kit(
        kit,
        artifact,
        policy,
        pin,
        state_dir=state if state is not None else default_state_dir(pin),
        expiry=expiry_policy,
        now=datetime.now(UTC),
    )


def _print_kit_result(done: "KitVerification", artifact: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(done.to_dict()))
        return
    _print_result(done.result, artifact, False)
    trust = done.trust
    roles = ", ".join(f"{r.role} v{r.version}" for r in trust.roles)
    reference = trust.reference_time.isoformat() if trust.reference_time else "-"
    lines = [
        f"  kit:      {roles} (bundle {done.bundle_index + 1} of {done.bundles})",
        f"  expiry:   {trust.policy} (reference time {reference})",
    ]
    expired = [r.role for r in trust.roles if r.expired_now]
    if expired:
        lines.append(f"  note:     expired now, accepted by the policy: {', '.join(expired)}")
    typer.echo("\n".join(lines))


def _print_result(result: "VerificationResult", artifact: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    lines = [f"verified: {artifact}"]
    if result.identity is not None:
        lines.append(f"  identity: {result.identity}")
        lines.append(f"  issuer:   {result.issuer}")
    else:
        lines.append("  key:      the given public key")
    lines.append(
        f"  log:      {result.log_url} index {result.log_index} (tree size {result.tree_size})"
    )
    for t in result.times:
        label = "timestamp" if t.source == "tsa" else "logged"
        lines.append(f"  {label + ':':10}{t.time.isoformat()} ({t.authority})")
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    """Add the verification commands to the app."""

    @app.command("verify")
    def verify(
        artifact: Annotated[
            str, typer.Argument(help="The artifact file, or its digest as sha256:<hex>.")
        ],
        bundle: Annotated[
            Path | None, typer.Option("--bundle", help="The Sigstore bundle.")
        ] = None,
        trusted_root: Annotated[
            Path | None,
            typer.Option(
                "--trusted-root", help="trusted_root.json (or a ClientTrustConfig) to trust."
            ),
        ] = None,
        identity: Annotated[
            str | None, typer.Option("--identity", help="Exact expected SAN.")
        ] = None,
        identity_regex: Annotated[
            str | None,
            typer.Option("--identity-regex", help="Regular expression the whole SAN must match."),
        ] = None,
        issuer: Annotated[
            str | None, typer.Option("--issuer", help="Exact expected OIDC issuer URL.")
        ] = None,
        key: Annotated[
            Path | None, typer.Option("--key", help="PEM public key of a managed-key bundle.")
        ] = None,
        kit: Annotated[
            Path | None,
            typer.Option("--kit", help="Offline kit (.airseal) carrying TUF metadata and bundles."),
        ] = None,
        root: Annotated[
            Path | None, typer.Option("--root", help="With --kit: the pinned TUF root file.")
        ] = None,
        root_sha256: Annotated[
            str | None,
            typer.Option("--root-sha256", help="With --kit: SHA-256 of the pinned 1.root.json."),
        ] = None,
        state: Annotated[
            Path | None,
            typer.Option(
                "--state",
                help="With --kit: rollback-protection state directory "
                "(default $XDG_DATA_HOME/airseal/kit-state/<root sha256>).",
            ),
        ] = None,
        expiry: Annotated[
            str,
            typer.Option(
                "--expiry",
                help="With --kit: strict, grace=DAYS or attested-time=T (RFC 3339 or 'bundle').",
            ),
        ] = "strict",
        as_json: Annotated[
            bool, typer.Option("--json", help="Print a JSON object instead of text.")
        ] = False,
    ) -> None:
        """Verify a Sigstore bundle offline against a trusted root, or an offline kit.

        With --kit, the kit's TUF metadata is verified from the pinned root
        (--root or --root-sha256), then its bundle against the verified
        trusted root; nothing touches the network. Exit 0 when verified, 1
        when verification failed (printing error[<check>]: <reason>), 2 on
        bad input or usage.
        """
        with reporting(json_output=as_json):
            policy = _policy(identity, identity_regex, issuer, key)
            if kit is not None:
                if bundle is not None or trusted_root is not None:
                    raise UsageError(
                        "--kit carries the bundle and the trusted root: "
                        "do not give --bundle or --trusted-root with it"
                    )
                done = _run_kit(policy, artifact, kit, root, root_sha256, state, expiry)
                _print_kit_result(done, artifact, as_json)
                return
            if root is not None or root_sha256 is not None or state is not None:
                raise UsageError("--root, --root-sha256 and --state go with --kit")
            if expiry != "strict":
                raise UsageError("--expiry goes with --kit")
            if bundle is None or trusted_root is None:
                raise UsageError("give --bundle and --trusted-root, or --kit with a pinned root")
            result = _run(policy, artifact, bundle, trusted_root)
            _print_result(result, artifact, as_json)

    @app.command("verify-bundle")
    def verify_bundle(
        file_or_digest: Annotated[
            str, typer.Argument(metavar="FILE_OR_DIGEST", help="Artifact path or sha256:<hex>.")
        ],
        bundle: Annotated[Path, typer.Option("--bundle", help="The Sigstore bundle.")],
        certificate_identity: Annotated[
            str | None, typer.Option("--certificate-identity", help="Expected SAN.")
        ] = None,
        certificate_oidc_issuer: Annotated[
            str | None, typer.Option("--certificate-oidc-issuer", help="Expected OIDC issuer.")
        ] = None,
        key: Annotated[
            Path | None, typer.Option("--key", help="PEM public key (managed-key bundles).")
        ] = None,
        trusted_root: Annotated[
            Path | None, typer.Option("--trusted-root", help="trusted_root.json to trust.")
        ] = None,
        staging: Annotated[
            bool, typer.Option("--staging", help="Use the public-good staging instance.")
        ] = False,
    ) -> None:
        """Verify a bundle (sigstore-conformance client protocol). Exit 0 when verified."""
        with reporting():
            if trusted_root is None:
                instance = "staging" if staging else "production"
                raise UsageError(
                    f"--trusted-root is required: airseal does not embed the public-good "
                    f"{instance} trust root",
                    hint="fetch trusted_root.json for that instance and pass it explicitly",
                )
            if key is not None and (certificate_identity or certificate_oidc_issuer):
                raise UsageError(
                    "give either --key or --certificate-identity with "
                    "--certificate-oidc-issuer, not both"
                )
            if key is None and not (certificate_identity and certificate_oidc_issuer):
                raise UsageError(
                    "give --certificate-identity and --certificate-oidc-issuer, or --key"
                )
            policy = _policy(certificate_identity, None, certificate_oidc_issuer, key)
            _run(policy, file_or_digest, bundle, trusted_root)
