"""The ``[ca]`` table of the services config.

::

    [ca]
    listen = "127.0.0.1:3001"                 # default
    key = "intermediate-ca"                   # keys.toml name, or pkcs11:… / file:…
    chain = ["intermediate-ca.pem", "root-ca.pem"]   # issuer first (files may hold several)
    ct_url = "http://127.0.0.1:3002"
    # ct_key = "ctlog.pub.pem"                # default: the trusted root's ctlogs
    validity_minutes = 10                     # default
    skew = 60                                 # seconds of clock skew for tokens
    ct_timeout = 10                           # seconds
    workers = 1                               # processes sharing the port (one core each)

    [[ca.issuers]]
    url = "http://127.0.0.1:3000"
    type = "email"

SCTs are checked against ``ct_key`` when given, else against every CT key of
``[instance] trusted_root`` (each within its validity window): the CA never
hands out a certificate whose SCT the instance's clients would reject.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cryptography import x509

from toolkit.errors import FormatError

if TYPE_CHECKING:
    from toolkit.services.ca.oidc import IssuerConfig
    from toolkit.services.config import ConfigFile

__all__ = ["DEFAULT_LISTEN", "CAConfig", "load_chain"]

DEFAULT_LISTEN: Final = "127.0.0.1:3001"


@dataclass(frozen=True)
class CAConfig:
    """The parsed ``[ca]`` table.

    Attributes:
        listen: ``HOST:PORT``.
        key: The intermediate key's URI (resolved through ``keys.toml``).
        chain: The chain files, issuer first.
        ct_url: Base URL of the CT log.
        ct_key: The CT log's public key file, or None to use the trusted root.
        trusted_root: ``[instance] trusted_root``, if given.
        validity_minutes: Certificate lifetime.
        skew: Tolerance for token times, seconds.
        ct_timeout: Bound on one CT request, seconds.
        issuers: The accepted OIDC issuers.
        workers: Processes serving the port (each opens the key itself).
    """

    listen: str
    key: str
    chain: tuple[Path, ...]
    ct_url: str
    ct_key: Path | None
    trusted_root: Path | None
    validity_minutes: int
    skew: float
    ct_timeout: float
    issuers: tuple[IssuerConfig, ...]
    workers: int = 1

    @classmethod
    def from_file(cls, config: ConfigFile) -> CAConfig:
        """Read ``[ca]`` strictly.

        Raises:
            UsageError: The file has no ``[ca]`` table.
            FormatError: A missing, mistyped or unknown key (by dotted path).
        """
        from toolkit.services.ca.oidc import IssuerConfig

        table = config.require_section("ca")
        listen = table.text("listen", DEFAULT_LISTEN)
        key = config.key_uri(table, "key")
        try:
            names = table.strings("chain")
        except FormatError:
            # One file holding the whole chain is fine too.
            names = (str(table.path_value("chain")),)
        if not names:
            raise table.error("chain", "must name at least the intermediate's certificate")
        chain = tuple(config.resolve(name) for name in names)
        ct_url = table.text("ct_url")
        if not ct_url.startswith(("http://", "https://")):
            raise table.error("ct_url", "must be an http:// or https:// URL")
        ct_key = table.path_value("ct_key", None)
        validity = table.integer("validity_minutes", 10, minimum=1, maximum=1440)
        skew = table.number("skew", 60.0, minimum=0.0, maximum=600.0)
        ct_timeout = table.number("ct_timeout", 10.0, minimum=0.1, maximum=120.0)
        workers = table.integer("workers", 1, minimum=1, maximum=64)
        issuers = tuple(IssuerConfig.from_table(t) for t in table.tables("issuers"))
        if not issuers:
            raise table.error(
                "issuers",
                "no OIDC issuer configured",
                hint='add a [[ca.issuers]] table with url = "…" and type = "email"',
            )
        table.done()
        if ct_key is None and config.instance.trusted_root is None:
            raise table.error(
                "ct_key",
                "missing: no CT key to check SCTs with",
                hint="set ct_key, or [instance] trusted_root (its ctlogs are used)",
            )
        return cls(
            listen=listen,
            key=key,
            chain=chain,
            ct_url=ct_url,
            ct_key=ct_key,
            trusted_root=config.instance.trusted_root,
            validity_minutes=validity,
            skew=skew,
            ct_timeout=ct_timeout,
            issuers=issuers,
            workers=workers,
        )


def load_chain(paths: tuple[Path, ...]) -> list[x509.Certificate]:
    """Every certificate of the PEM files, in order.

    Raises:
        FormatError: A file cannot be read or holds no certificate.
    """
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FormatError(f"cannot read CA chain file {path}: {exc.strerror or exc}") from None
        try:
            found = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise FormatError(f"{path} holds no PEM certificate") from None
        certs.extend(found)
    return certs
