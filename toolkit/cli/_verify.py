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
from toolkit.errors import EnvironmentSetupError, UsageError

if TYPE_CHECKING:
    from toolkit.verify import Artifact, Policy, VerificationResult

__all__ = ["register"]

#: Artifacts up to this size are also kept in memory, for the rare bundles that
#: need more than the SHA-256 digest (SHA-384/512 entries).
_KEEP_BYTES = 16 << 20


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {str(path)!r} is a directory, not a file") from None
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None


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

        pem = _read(key, "public key")
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
    root_bytes = _read(trusted_root, "trusted root")
    bundle_bytes = _read(bundle, "bundle")
    verifier = Verifier.from_json(root_bytes)
    return verifier.verify(bundle_bytes, artifact, policy, now=datetime.now(UTC))


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
        bundle: Annotated[Path, typer.Option("--bundle", help="The Sigstore bundle.")],
        trusted_root: Annotated[
            Path,
            typer.Option(
                "--trusted-root", help="trusted_root.json (or a ClientTrustConfig) to trust."
            ),
        ],
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
        as_json: Annotated[
            bool, typer.Option("--json", help="Print a JSON object instead of text.")
        ] = False,
    ) -> None:
        """Verify a Sigstore bundle offline against a trusted root.

        Exit 0 when verified, 1 when verification failed (printing
        error[<check>]: <reason>), 2 on bad input or usage.
        """
        with reporting(json_output=as_json):
            policy = _policy(identity, identity_regex, issuer, key)
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
