"""``airseal sign`` and ``airseal token``: the signing client on the command line.

Like ``_verify``, this module does not use ``from __future__ import
annotations`` (typer reads the real annotation objects) and imports the
signing machinery (httpx, cryptography, the verifier) only inside the
commands, so that ``airseal verify`` does not pay for it at start-up.
"""

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli._errors import reporting
from toolkit.cli._files import read_input
from toolkit.errors import UsageError

if TYPE_CHECKING:
    from toolkit.models.trustroot import TrustedRoot
    from toolkit.sign import Endpoints

__all__ = ["TOKEN_ENV", "register"]

#: Environment variable an identity token may come from.
TOKEN_ENV = "AIRSEAL_IDENTITY_TOKEN"  # noqa: S105 - a variable name, not a secret
#: Largest file read for a token, a trust config or a trusted root.
_MAX_SMALL_FILE = 8 << 20


def _read(path: Path, what: str, limit: int | None = _MAX_SMALL_FILE) -> bytes:
    data = read_input(path, what, limit=limit)
    if limit is not None and len(data) > limit:
        raise UsageError(f"{what} {str(path)!r} is larger than {limit} bytes")
    return data


def _identity_token(value: str | None) -> str | None:
    """The token from the option (text or ``@path``) or the environment; never echoed."""
    if value is None:
        value = os.environ.get(TOKEN_ENV) or None
    if value is None:
        return None
    if value.startswith("@"):
        raw = _read(Path(value[1:]), "identity token file", 64 * 1024)
        try:
            value = raw.decode("ascii")
        except UnicodeDecodeError:
            raise UsageError("the identity token file is not ASCII text") from None
    value = value.strip()
    if not value:
        raise UsageError("the identity token is empty")
    return value


def _services(
    trust_config: Path | None,
    trusted_root: Path | None,
    ca: str | None,
    tsa: str | None,
    log: str | None,
    *,
    keyless: bool,
) -> "tuple[TrustedRoot, Endpoints]":
    from datetime import UTC, datetime

    from toolkit.models.trustroot import TrustedRoot
    from toolkit.sign import Endpoints, endpoints_from_signing_config, load_trust_config

    root: TrustedRoot | None = None
    endpoints: Endpoints | None = None
    if trust_config is not None:
        root, signing_config = load_trust_config(_read(trust_config, "trust config"))
        endpoints = endpoints_from_signing_config(
            signing_config, datetime.now(UTC), need_ca=keyless and ca is None
        ).replace(ca=ca, tsa=tsa, log=log)
    else:
        missing = [
            name
            for name, value in (("--ca", ca if keyless else "-"), ("--tsa", tsa), ("--log", log))
            if not value
        ]
        if missing:
            raise UsageError(
                f"give --trust-config, or the service URLs ({', '.join(missing)} missing)"
            )
        assert tsa is not None and log is not None
        endpoints = Endpoints.explicit(ca if keyless else None, tsa, log)
    if trusted_root is not None:
        from toolkit.models._base import load_document
        from toolkit.models.signing_config import ClientTrustConfig

        document = load_document(_read(trusted_root, "trusted root"), "trusted root")
        if isinstance(document, dict) and "trustedRoot" in document:
            root = ClientTrustConfig.from_dict(document).trusted_root
        else:
            root = TrustedRoot.from_dict(document)
    if root is None:
        raise UsageError(
            "no trusted root: give --trusted-root, or a ClientTrustConfig as --trust-config"
        )
    if keyless and endpoints.ca is None:
        raise UsageError("keyless signing needs a CA: give --ca or a signing config listing one")
    return root, endpoints


def register(app: typer.Typer) -> None:
    """Add ``sign`` and ``token`` to the app."""

    @app.command("sign")
    def sign(
        artifact: Annotated[Path, typer.Argument(help="The artifact to sign.")],
        bundle: Annotated[Path, typer.Option("--bundle", help="Where to write the bundle.")],
        dsse: Annotated[
            bool,
            typer.Option("--dsse", help="Sign an in-toto statement naming the artifact (DSSE)."),
        ] = False,
        payload_type: Annotated[
            str, typer.Option("--payload-type", help="DSSE payload type.")
        ] = "application/vnd.in-toto+json",
        identity_token: Annotated[
            str | None,
            typer.Option(
                "--identity-token",
                help=f"OIDC identity token, or @FILE holding it (default: ${TOKEN_ENV}).",
                show_default=False,
            ),
        ] = None,
        oidc_dev: Annotated[
            str | None,
            typer.Option("--oidc-dev", help="Get a token from this development issuer."),
        ] = None,
        identity: Annotated[
            str | None, typer.Option("--identity", help="With --oidc-dev: the identity (email).")
        ] = None,
        key: Annotated[
            str | None,
            typer.Option("--key", help="Managed key URI (pkcs11:… or file:…) instead of keyless."),
        ] = None,
        trust_config: Annotated[
            Path | None,
            typer.Option(
                "--trust-config", help="ClientTrustConfig (or SigningConfig v0.2) naming services."
            ),
        ] = None,
        ca: Annotated[str | None, typer.Option("--ca", help="CA base URL.")] = None,
        tsa: Annotated[str | None, typer.Option("--tsa", help="TSA URL.")] = None,
        log: Annotated[str | None, typer.Option("--log", help="Rekor v2 log base URL.")] = None,
        trusted_root: Annotated[
            Path | None,
            typer.Option("--trusted-root", help="trusted_root.json the bundle must verify with."),
        ] = None,
        timeout: Annotated[
            float, typer.Option("--timeout", help="Seconds per service request.")
        ] = 30.0,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print a JSON object instead of text.")
        ] = False,
    ) -> None:
        """Sign an artifact: certificate, signature, timestamp, log entry, Sigstore bundle.

        Keyless (an identity token, or --oidc-dev with --identity) or with a
        managed key (--key). The bundle is verified against the trusted root
        before it is written; on any failure no bundle file is written. Exit 0
        when signed, 1 when an answer did not verify, 2 on bad input or a
        refused request, 3 when a service is unreachable or failing.
        """
        with reporting(json_output=as_json):
            token = _identity_token(identity_token)
            chosen = [
                name
                for name, given in (
                    ("--identity-token", token is not None),
                    ("--oidc-dev", oidc_dev is not None),
                    ("--key", key is not None),
                )
                if given
            ]
            if len(chosen) != 1:
                raise UsageError(
                    "give exactly one of --identity-token (or $"
                    + TOKEN_ENV
                    + "), --oidc-dev with --identity, or --key"
                    + (f" (got {', '.join(chosen)})" if chosen else "")
                )
            if (oidc_dev is None) != (identity is None):
                raise UsageError("--oidc-dev and --identity go together")
            parent = bundle.parent
            if not parent.is_dir():
                # Checked first: nothing is logged for a bundle that cannot be written.
                raise UsageError(f"the bundle's directory {str(parent)!r} does not exist")
            data = _read(artifact, "artifact", None)
            root, endpoints = _services(
                trust_config, trusted_root, ca, tsa, log, keyless=key is None
            )
            _sign(
                data,
                artifact,
                bundle,
                root,
                endpoints,
                token=token,
                oidc_dev=oidc_dev,
                identity=identity,
                key=key,
                dsse=dsse,
                payload_type=payload_type,
                timeout=timeout,
                as_json=as_json,
            )

    @app.command("token")
    def token(
        oidc_dev: Annotated[
            str, typer.Option("--oidc-dev", help="URL of the development OIDC issuer.")
        ],
        identity: Annotated[str, typer.Option("--identity", help="The identity (email).")],
        timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 30.0,
    ) -> None:
        """Print an identity token from the development issuer (audience sigstore)."""
        with reporting():
            from toolkit.sign import fetch_dev_token

            typer.echo(fetch_dev_token(oidc_dev, identity, timeout=timeout))


def _sign(
    data: bytes,
    artifact: Path,
    bundle: Path,
    root: "TrustedRoot",
    endpoints: "Endpoints",
    *,
    token: str | None,
    oidc_dev: str | None,
    identity: str | None,
    key: str | None,
    dsse: bool,
    payload_type: str,
    timeout: float,
    as_json: bool,
) -> None:
    from toolkit.sign import SigningClient, fetch_dev_token, write_bundle

    progress = None
    if sys.stderr.isatty():

        def progress(line: str) -> None:
            typer.echo(f"  {line}", err=True)

    if oidc_dev is not None:
        assert identity is not None
        token = fetch_dev_token(oidc_dev, identity, timeout=timeout)
    with SigningClient(root, endpoints, timeout=timeout, progress=progress) as client:
        if key is not None:
            from toolkit.signing import load_signer

            prompt = None
            if sys.stdin.isatty():

                def prompt(label: str) -> str:
                    answer: str = typer.prompt(label, hide_input=True)
                    return answer

            signer = load_signer(key, prompt=prompt)
            result = client.sign_with_key(
                data, signer, dsse=dsse, name=artifact.name, payload_type=payload_type
            )
        else:
            assert token is not None
            result = client.sign_keyless(
                data, token, dsse=dsse, name=artifact.name, payload_type=payload_type
            )
    write_bundle(bundle, result.bundle)
    summary = result.summary(bundle)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    who = summary["identity"] or f"key {summary['keyHint'][:16]}…"
    log_info = summary["log"]
    typer.echo(
        f"signed {artifact} as {who}: {bundle} (log index {log_info['index']}, "
        f"timestamp {summary['timestamps'][0]['time'] if summary['timestamps'] else 'none'})"
    )
