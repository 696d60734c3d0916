"""DEVELOPMENT ONLY: the ``[oidc_dev]`` table of a services config file.

::

    [oidc_dev]
    listen = "127.0.0.1:3000"            # default
    issuer = "http://127.0.0.1:3000"     # default: http://<listen address>
    # key = "file:oidc-dev.pem"          # default: an ephemeral P-256 key, new at each start
    # allow_non_loopback = false         # true lets it listen beyond loopback (never do this)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from toolkit.errors import UsageError
from toolkit.services._http import is_loopback, listen_address

if TYPE_CHECKING:
    from toolkit.services.config import ConfigFile

__all__ = ["DEFAULT_LISTEN", "OidcDevConfig", "check_listen_host"]

DEFAULT_LISTEN: Final = "127.0.0.1:3000"


@dataclass(frozen=True)
class OidcDevConfig:
    """The development issuer's settings.

    Attributes:
        listen: ``HOST:PORT`` (port 0 picks a free port).
        issuer: The ``iss`` of its tokens (None: ``http://`` + the bound address).
        key: A key URI (``file:``/``pkcs11:``) from ``keys.toml`` or the table,
            or None for an ephemeral key.
        allow_non_loopback: Listen on a non-loopback address anyway.
    """

    listen: str = DEFAULT_LISTEN
    issuer: str | None = None
    key: str | None = None
    allow_non_loopback: bool = False

    @classmethod
    def from_config(cls, config: ConfigFile) -> OidcDevConfig:
        """Read ``[oidc_dev]`` strictly.

        Raises:
            UsageError: The file has no ``[oidc_dev]`` table.
            FormatError: A mistyped, unknown or invalid key.
        """
        table = config.require_section("oidc_dev")
        listen = table.text("listen", DEFAULT_LISTEN)
        issuer = table.text("issuer", None)
        key = config.key_uri(table, "key", None)
        allow = table.flag("allow_non_loopback", False)
        table.done()
        try:
            listen_address(listen, option="listen")
        except UsageError:
            raise table.error("listen", f"{listen!r} is not HOST:PORT") from None
        if issuer is not None and not issuer.startswith(("http://", "https://")):
            raise table.error("issuer", "must be an http:// or https:// URL")
        return cls(listen, issuer, key, allow)


def check_listen_host(host: str, *, allowed: bool) -> None:
    """Refuse a non-loopback listen host unless ``allowed`` (the force option).

    Raises:
        UsageError: One line naming both ways to force it.
    """
    if not is_loopback(host) and not allowed:
        raise UsageError(
            f"oidc-dev is development-only and refuses to listen on non-loopback {host} "
            "(set allow_non_loopback = true or pass --allow-non-loopback to force it)"
        )
