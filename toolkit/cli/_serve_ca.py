"""``airseal serve ca``: the Fulcio-compatible certificate authority.

Like ``_verify``, this module does not use ``from __future__ import
annotations``: typer reads the real annotation objects.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli._errors import reporting

if TYPE_CHECKING:
    import contextlib
    import socket
    from collections.abc import Callable

    from cryptography import x509

    from toolkit.services._http import Service
    from toolkit.services.ca.config import CAConfig
    from toolkit.services.config import ConfigFile
    from toolkit.services.ct.client import CTClient
    from toolkit.verify._x509 import CTLogKey

__all__ = ["add_command", "ca_service"]


def add_command(services: typer.Typer) -> None:
    """Add ``serve ca`` to the ``serve`` group."""

    @services.command("ca")
    def serve_ca(
        config: Annotated[
            Path,
            typer.Option("--config", help="Services config file (reads \\[instance] and \\[ca])."),
        ],
    ) -> None:
        """Run the certificate authority (Fulcio v2 API: /api/v2/signingCert …).

        Refuses to start (exit 2) when the key does not match the chain's first
        certificate or that certificate is not a code-signing CA certificate.
        """
        with reporting():
            _run_ca(config)


def _ct_logs(config: "CAConfig") -> "dict[bytes, list[CTLogKey]]":
    """The CT keys an SCT must verify with: ``ct_key``, else the trusted root's ctlogs."""
    from datetime import UTC, datetime

    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from toolkit.errors import EnvironmentSetupError, FormatError, UsageError
    from toolkit.services.ca.issuance import ct_logs_from_keys

    if config.ct_key is not None:
        try:
            key = serialization.load_pem_public_key(config.ct_key.read_bytes())
        except OSError as exc:
            raise EnvironmentSetupError(
                f"cannot read {config.ct_key}: {exc.strerror or exc}"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise FormatError(f"{config.ct_key} is not a PEM public key") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise UsageError(f"{config.ct_key} is not an ECDSA CT log key")
        return ct_logs_from_keys([key], start=datetime(1970, 1, 1, tzinfo=UTC))
    from toolkit.models.trustroot import TrustedRoot
    from toolkit.verify._trust import TrustMaterial

    assert config.trusted_root is not None
    try:
        data = config.trusted_root.read_bytes()
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot read {config.trusted_root}: {exc.strerror or exc}"
        ) from None
    logs = TrustMaterial(TrustedRoot.from_json(data)).ctlogs
    if not logs:
        raise UsageError(f"{config.trusted_root} lists no usable CT log key")
    return logs


def ca_service(
    file: "ConfigFile", stack: "contextlib.ExitStack", *, ct: "CTClient | None" = None
) -> "Service":
    """Build the CA service of ``file``'s ``[ca]`` table in this process (socket bound).

    Args:
        file: The services config.
        stack: Receives the socket's closing.
        ct: The CT log to ask for SCTs (e.g. a
            :class:`~toolkit.services.ct.client.LocalCTClient` when the CT log
            runs in the same process); default: HTTP to ``ca.ct_url``.

    Raises:
        UsageError: ``ca.workers`` is not 1 (one process serves everything here).
    """
    from toolkit.errors import UsageError
    from toolkit.services._http import bind, listen_address
    from toolkit.services.ca.config import CAConfig, load_chain

    config = CAConfig.from_file(file)
    if config.workers != 1:
        raise UsageError(
            f"ca.workers is {config.workers}: a CA that shares its process serves one worker",
            hint="remove ca.workers, or run `airseal serve ca` on its own",
        )
    host, port = listen_address(config.listen, option="ca.listen")
    chain = load_chain(config.chain)
    ct_logs = _ct_logs(config)
    sock = bind(host, port)
    stack.callback(sock.close)
    return _build(file, config, chain, ct_logs, sock, ct)


def _build(
    file: "ConfigFile",
    config: "CAConfig",
    chain: "list[x509.Certificate]",
    ct_logs: "dict[bytes, list[CTLogKey]]",
    sock: "socket.socket",
    ct: "CTClient | None",
) -> "Service":
    from toolkit.services._http import Service
    from toolkit.services.ca.app import create_app
    from toolkit.services.ca.issuance import CertificateAuthority
    from toolkit.services.ca.oidc import TokenVerifier
    from toolkit.services.ct.client import HttpCTClient

    signer = file.open_key(config.key)
    client = ct if ct is not None else HttpCTClient(config.ct_url, timeout=config.ct_timeout)
    verifier = TokenVerifier(config.issuers, skew=config.skew)
    ca = CertificateAuthority(
        signer, chain, client, ct_logs, validity_minutes=config.validity_minutes
    )
    app = create_app(ca, verifier, config.issuers)

    async def stop() -> None:
        await verifier.aclose()
        await client.aclose()

    return Service("ca", app, sock, stop=stop)


def _run_ca(config_path: Path) -> None:
    import logging

    import uvloop

    from toolkit.services._http import bind, listen_address, run_workers, serve
    from toolkit.services.ca.config import CAConfig, load_chain
    from toolkit.services.config import ConfigFile

    file = ConfigFile.load(config_path)
    config = CAConfig.from_file(file)
    host, port = listen_address(config.listen, option="ca.listen")
    chain = load_chain(config.chain)
    ct_logs = _ct_logs(config)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def run(
        sock: "socket.socket", echo: "Callable[[str], None]", on_ready: "Callable[[], None] | None"
    ) -> None:
        # The key is opened here, in the process that signs with it: a
        # PKCS#11 module initialised before a fork is unusable after it.
        service = _build(file, config, chain, ct_logs, sock, None)
        uvloop.run(serve([service], echo=echo, on_ready=on_ready))

    sock = bind(host, port)
    try:
        if config.workers == 1:
            run(sock, typer.echo, None)
            return

        def worker(ready: "Callable[[], None]") -> None:
            with reporting():
                run(sock, lambda _line: None, ready)

        status = run_workers(config.workers, [("ca", sock)], worker, echo=typer.echo)
        if status != 0:
            raise typer.Exit(status)
    finally:
        sock.close()
