"""The ``[ct]`` table of the services config.

For example::

    [ct]
    listen = "127.0.0.1:3002"
    key = "ctlog"                     # keys.toml name or pkcs11:/file: URI (ECDSA P-256)
    data = "data/ct"                  # SQLite + tiles of the CT log's own engine
    origin = "ctlog.airseal.example"  # default: host of the trusted root's ctlogs baseUrl
    roots = ["ceremony/root-ca.pem"]  # default: the roots of the trusted root's CAs
    batch_size = 512
    max_wait = 0.05                   # seconds

Without ``origin``, the trusted root (``[instance] trusted_root``) names it:
the host of the ``baseUrl`` of the ``ctlogs[]`` entry whose key is the CT
key (or of the only entry). Without ``roots``, the last certificate of every
``certificateAuthorities[]`` chain is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509

from toolkit.errors import FormatError, UsageError
from toolkit.services.config import ConfigFile

__all__ = ["DEFAULT_LISTEN", "CTConfig"]

DEFAULT_LISTEN: Final = "127.0.0.1:3002"
DEFAULT_DATA: Final = "data/ct"


@dataclass(frozen=True)
class CTConfig:
    """The parsed ``[ct]`` table.

    Attributes:
        listen: ``HOST:PORT``.
        key: The CT key URI (resolved through ``keys.toml``).
        data: The data directory.
        origin: The checkpoint origin, or None to take it from the trusted root.
        roots: Root certificate files (PEM, one or more certificates each), or
            None for the trusted root's CA roots.
        batch_size: Most entries per round.
        max_wait: Longest wait for a round, seconds.
        trusted_root: ``[instance] trusted_root``, if given.
    """

    listen: str
    key: str
    data: Path
    origin: str | None
    roots: tuple[Path, ...] | None
    batch_size: int
    max_wait: float
    trusted_root: Path | None

    @classmethod
    def from_file(cls, config: ConfigFile) -> CTConfig:
        """Read ``[ct]`` strictly.

        Raises:
            UsageError: No ``[ct]`` table.
            FormatError: A field of the wrong type or range, or an unknown field.
        """
        table = config.require_section("ct")
        listen = table.text("listen", DEFAULT_LISTEN)
        key = config.key_uri(table, "key")
        data = table.path_value("data", DEFAULT_DATA)
        origin = table.text("origin", None)
        if origin is not None and ("/" in origin or any(c.isspace() for c in origin)):
            raise table.error(
                "origin", "must be a host name (the host of the CT log's base URL), not a URL"
            )
        roots_list = table.strings("roots", None)
        roots = None if roots_list is None else tuple(config.resolve(r) for r in roots_list)
        if roots is not None and not roots:
            raise table.error("roots", "must name at least one root certificate file")
        batch_size = table.integer("batch_size", 512, minimum=1, maximum=100_000)
        max_wait = table.number("max_wait", 0.05, minimum=0.0, maximum=60.0)
        table.done()
        if (origin is None or roots is None) and config.instance.trusted_root is None:
            missing = "origin" if origin is None else "roots"
            raise table.error(
                missing,
                "missing, and no [instance] trusted_root to take it from",
                hint="set ct.origin and ct.roots, or [instance] trusted_root",
            )
        return cls(
            listen=listen,
            key=key,
            data=data,
            origin=origin,
            roots=roots,
            batch_size=batch_size,
            max_wait=max_wait,
            trusted_root=config.instance.trusted_root,
        )

    def _trusted_root(self) -> object:
        from toolkit.models.trustroot import TrustedRoot

        assert self.trusted_root is not None
        try:
            return TrustedRoot.from_json(self.trusted_root.read_bytes())
        except OSError as exc:
            raise UsageError(
                f"cannot read the trusted root {self.trusted_root}: {exc.strerror or exc}"
            ) from None
        except FormatError as exc:
            raise FormatError(f"{self.trusted_root.name}: {exc.message}") from None

    def resolve_origin(self, spki: bytes) -> str:
        """The origin: configured, or the host of the trusted root's CT log with key ``spki``.

        Raises:
            UsageError: No unique CT log in the trusted root to take it from.
        """
        if self.origin is not None:
            return self.origin
        from toolkit.models.trustroot import TrustedRoot

        root = self._trusted_root()
        assert isinstance(root, TrustedRoot)
        matching = [log for log in root.ctlogs if log.public_key.raw_bytes == spki]
        if not matching and len(root.ctlogs) == 1:
            matching = list(root.ctlogs)
        hosts = {urlsplit(log.base_url).hostname for log in matching}
        if len(hosts) != 1 or None in hosts:
            raise UsageError(
                "cannot tell the CT log's origin from the trusted root "
                f"({len(root.ctlogs)} ctlogs, {len(matching)} with this key)",
                hint="set ct.origin",
            )
        host = hosts.pop()
        assert host is not None
        return host

    def load_roots(self) -> list[x509.Certificate]:
        """The accepted root certificates.

        Raises:
            UsageError: A file cannot be read, holds no certificate, or no root is found.
        """
        if self.roots is None:
            from toolkit.models.trustroot import TrustedRoot

            root = self._trusted_root()
            assert isinstance(root, TrustedRoot)
            certs: list[x509.Certificate] = []
            for ca in root.certificate_authorities:
                der = ca.cert_chain.certificates[-1].raw_bytes
                try:
                    certs.append(x509.load_der_x509_certificate(der))
                except ValueError:
                    raise UsageError("the trusted root holds a malformed CA certificate") from None
            if not certs:
                raise UsageError("the trusted root lists no certificate authorities; set ct.roots")
            return certs
        out: list[x509.Certificate] = []
        for path in self.roots:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise UsageError(
                    f"cannot read root certificate {path}: {exc.strerror or exc}"
                ) from None
            try:
                found = x509.load_pem_x509_certificates(data)
            except ValueError:
                raise UsageError(f"{path} holds no PEM certificate") from None
            out.extend(found)
        return out
