"""The ``[tsa]`` table of the services config, and opening the TSA it describes.

::

    [tsa]
    listen = "127.0.0.1:3004"            # default
    key = "tsa"                          # keys.toml name or pkcs11:/file: URI (default "tsa")
    chain = "ceremony/tsa-chain.pem"     # PEM, TSA certificate first, root last (required)
    policy = "1.3.6.1.4.1.57264.2"       # default
    accuracy_ms = 1000                   # default; 0 leaves accuracy out
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from toolkit._der import oid_content
from toolkit.errors import EnvironmentSetupError, FormatError, UsageError
from toolkit.services._http import listen_address
from toolkit.services.tsa.core import DEFAULT_POLICY

if TYPE_CHECKING:
    from cryptography import x509

    from toolkit.services.config import ConfigFile, Table
    from toolkit.services.tsa.core import TimestampAuthority

__all__ = ["DEFAULT_LISTEN", "TsaConfig", "load_chain"]

DEFAULT_LISTEN: Final = "127.0.0.1:3004"
#: The ceremony's name of the TSA key in keys.toml.
DEFAULT_KEY: Final = "tsa"


@dataclass(frozen=True)
class TsaConfig:
    """The ``[tsa]`` table.

    Attributes:
        listen: ``HOST:PORT`` to serve on.
        key: The TSA key's URI (``pkcs11:`` or ``file:``), names resolved.
        chain: The PEM chain file, TSA certificate first.
        policy: The TSA policy OID.
        accuracy_ms: The TSTInfo accuracy in milliseconds.
    """

    listen: str
    key: str
    chain: Path
    policy: str = DEFAULT_POLICY
    accuracy_ms: int = 1000

    @classmethod
    def from_table(cls, table: Table, config: ConfigFile) -> TsaConfig:
        """Read the ``[tsa]`` table strictly (unknown keys are errors).

        Raises:
            FormatError: A field is missing, of the wrong type or invalid,
                naming the file and the field.
        """
        listen = table.text("listen", DEFAULT_LISTEN)
        try:
            listen_address(listen, option="listen")
        except UsageError as exc:
            raise table.error("listen", exc.message, hint=exc.hint) from None
        key = config.key_uri(table, "key", DEFAULT_KEY)
        chain = table.path_value("chain")
        policy = table.text("policy", DEFAULT_POLICY)
        try:
            oid_content(policy)
        except ValueError:
            raise table.error("policy", f"{policy[:60]!r} is not a dotted OID") from None
        accuracy_ms = table.integer("accuracy_ms", 1000, minimum=0, maximum=3_600_000)
        table.done()
        return cls(listen=listen, key=key, chain=chain, policy=policy, accuracy_ms=accuracy_ms)

    @classmethod
    def load(cls, path: Path) -> tuple[ConfigFile, TsaConfig]:
        """Read ``path`` and its ``[tsa]`` table.

        Raises:
            FormatError: The file or the table is malformed.
            UsageError: The file has no ``[tsa]`` table.
        """
        from toolkit.services.config import ConfigFile

        config = ConfigFile.load(path)
        return config, cls.from_table(config.require_section("tsa"), config)

    def open(self, config: ConfigFile) -> TimestampAuthority:
        """Open the key and the chain and build the :class:`TimestampAuthority`.

        Raises:
            HSMError: The key's token problems.
            EnvironmentSetupError: The chain or key file cannot be read.
            FormatError: The chain file is not PEM certificates.
            UsageError: The chain does not fit the key or is not a TSA chain.
        """
        from toolkit.services.tsa.core import TimestampAuthority

        chain = load_chain(self.chain)
        signer = config.open_key(self.key)
        return TimestampAuthority(signer, chain, policy=self.policy, accuracy_ms=self.accuracy_ms)


def load_chain(path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM file, in file order.

    Raises:
        EnvironmentSetupError: The file cannot be read.
        FormatError: It holds no certificate or a malformed one.
    """
    from cryptography import x509

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise FormatError("not a PEM certificate chain", path=str(path)) from None
    return certs
