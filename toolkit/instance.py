"""A whole local airseal instance: what ``airseal init`` writes and ``serve all`` serves.

``airseal init DIR [--port-base N]`` produces (see issue 7)::

    DIR/ceremony.toml       the ceremony config that was rehearsed
    DIR/ceremony/           the rehearsed ceremony (keys on SoftHSM in DIR/ceremony.softhsm/)
    DIR/tuf-repo/           the TUF repository's working directory ([trust] table)
    DIR/tuf/                the published TUF repository (served on N+5)
    DIR/instance.toml       the ``airseal serve all`` config
    DIR/trust_config.json   ClientTrustConfig: trusted root + SigningConfig v0.2
    DIR/root.sha256         hex SHA-256 of DIR/ceremony/1.root.json
    DIR/oidc-dev-key.pem    the development issuer's key (tokens survive restarts)

and the services listen on 127.0.0.1: oidc-dev N, CA N+1, CT N+2, log N+3,
TSA N+4, the TUF repository N+5.

This module holds the pure parts (ceremony config, ``instance.toml``,
signing and client trust configs, the ``[tuf_static]`` table, the static
file app) and :func:`init_instance`, which runs the steps with the ceremony
rehearsal passed in as a callable: ``toolkit`` never imports ``ceremony``
(DESIGN.md §2; docs/adr/0009-init-rehearses-in-a-subprocess.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from toolkit.errors import EnvironmentSetupError, FormatError, UsageError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from toolkit.models.common import TimeRange
    from toolkit.models.signing_config import SigningConfig
    from toolkit.services.config import ConfigFile

__all__ = [
    "DEFAULT_PORT_BASE",
    "OFFSETS",
    "InitResult",
    "Ports",
    "TufStaticConfig",
    "ceremony_config",
    "client_trust_config",
    "describe",
    "init_instance",
    "instance_toml",
    "local_signing_config",
    "static_app",
    "tlog_origin",
]

DEFAULT_PORT_BASE: Final = 3000
#: Port offset of each service from the port base.
OFFSETS: Final = {"oidc_dev": 0, "ca": 1, "ct": 2, "log": 3, "tsa": 4, "tuf_static": 5}
#: What ``init`` writes into DIR.
CEREMONY_CONFIG: Final = "ceremony.toml"
CEREMONY_DIR: Final = "ceremony"
REPOSITORY_DIR: Final = "tuf-repo"
PUBLISHED_DIR: Final = "tuf"
INSTANCE_TOML: Final = "instance.toml"
TRUST_CONFIG: Final = "trust_config.json"
ROOT_SHA256: Final = "root.sha256"
OIDC_KEY: Final = "oidc-dev-key.pem"
#: Who the signing config names as operator of every local service.
OPERATOR: Final = "airseal local instance"


@dataclass(frozen=True)
class Ports:
    """The loopback ports of a local instance.

    Attributes:
        base: The port base N (oidc-dev); the others follow (see :data:`OFFSETS`).
    """

    base: int = DEFAULT_PORT_BASE

    def __post_init__(self) -> None:
        if not 1 <= self.base <= 65535 - max(OFFSETS.values()):
            raise UsageError(
                f"--port-base {self.base} leaves no room for six ports "
                f"(1 to {65535 - max(OFFSETS.values())})"
            )

    def port(self, service: str) -> int:
        """The port of ``service`` (a key of :data:`OFFSETS`)."""
        return self.base + OFFSETS[service]

    def listen(self, service: str) -> str:
        """``127.0.0.1:PORT`` of ``service``."""
        return f"127.0.0.1:{self.port(service)}"

    def url(self, service: str) -> str:
        """``http://127.0.0.1:PORT`` of ``service``."""
        return f"http://{self.listen(service)}"


def _toml_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ceremony_config(now: datetime) -> str:
    """The ceremony config of a local instance, its dates around ``now``.

    Everything becomes valid at the start of the previous UTC day (so that a
    slightly slow clock elsewhere still accepts it); the root CA lasts ten
    years, the intermediate and TSA certificates five, the TUF root one year.
    """
    if now.tzinfo is None:
        raise UsageError("ceremony_config needs a timezone-aware time")
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=1)
    template = resources.files("toolkit._instance").joinpath("ceremony.toml.in").read_text("utf-8")
    values = {
        "@ID@": start.strftime("%Y%m%d"),
        "@START@": _toml_datetime(start),
        "@ROOT_END@": _toml_datetime(start.replace(year=start.year + 10)),
        "@SUB_END@": _toml_datetime(start.replace(year=start.year + 5)),
        "@TUF_ROOT_END@": _toml_datetime(start + timedelta(days=367)),
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template


def tlog_origin(trusted_root: bytes) -> str:
    """The checkpoint origin of the instance's log: the host of the trusted root's tlog URL.

    sigstore-js requires the checkpoint signer name to be a substring of the
    log's ``baseUrl``, and the ceremony derived the log id from that name.

    Raises:
        FormatError: The trusted root lists no single tlog with a host.
    """
    from toolkit.models.trustroot import TrustedRoot

    root = TrustedRoot.from_json(trusted_root)
    hosts = {urlsplit(log.base_url).hostname for log in root.tlogs}
    if len(hosts) != 1 or None in hosts:
        raise FormatError("the trusted root does not name one transparency log host")
    host = hosts.pop()
    assert host is not None
    return host


def _toml_string(value: str) -> str:
    # JSON string syntax with ASCII escapes is valid TOML.
    return json.dumps(value, ensure_ascii=True)


def instance_toml(ports: Ports, origin: str) -> str:
    """The ``airseal serve all`` config of a local instance (paths relative to DIR).

    Args:
        ports: The services' ports.
        origin: The transparency log's checkpoint origin (see :func:`tlog_origin`).
    """
    oidc = ports.url("oidc_dev")
    q = _toml_string
    return f"""\
# airseal local instance (written by `airseal init`): `airseal serve all --config instance.toml`
# Relative paths are relative to this file. DEVELOPMENT ONLY: the oidc-dev
# issuer signs a token for any identity, and the CA below trusts it.

[instance]
keys = "ceremony/keys.toml"
trusted_root = "ceremony/trusted_root.json"

[oidc_dev]
listen = {q(ports.listen("oidc_dev"))}
issuer = {q(oidc)}
key = "file:{OIDC_KEY}"

[ca]
listen = {q(ports.listen("ca"))}
key = "intermediate-ca"
chain = ["ceremony/intermediate-ca.pem", "ceremony/root-ca.pem"]
# `serve all` hands the CA the in-process CT log; this URL is for `serve ca`.
ct_url = {q(ports.url("ct"))}
validity_minutes = 10

[[ca.issuers]]
url = {q(oidc)}
type = "email"

[ct]
listen = {q(ports.listen("ct"))}
key = "ctlog"
data = "data/ct"

[log]
listen = {q(ports.listen("log"))}
key = "tlog"
data = "data/log"
origin = {q(origin)}
max_wait = 0.05

[tsa]
listen = {q(ports.listen("tsa"))}
key = "tsa"
chain = "ceremony/tsa-chain.pem"

[tuf_static]
listen = {q(ports.listen("tuf_static"))}
dir = "{PUBLISHED_DIR}"

# The TUF repository: `airseal trust refresh --config instance.toml --publish tuf`
[trust]
repository = "{REPOSITORY_DIR}"
online_keys = ["tuf-online"]

[trust.snapshot]
expiry_days = 30
renew_days = 7

[trust.timestamp]
expiry_days = 30
renew_days = 7
"""


def local_signing_config(ports: Ports, start: datetime) -> SigningConfig:
    """A SigningConfig v0.2 naming the local services (Rekor API v2), valid from ``start``."""
    from toolkit.models.common import TimeRange
    from toolkit.models.signing_config import (
        Service,
        ServiceConfiguration,
        ServiceSelector,
        SigningConfig,
    )

    valid = TimeRange(start)

    def service(url: str, version: int = 1) -> tuple[Service, ...]:
        return (Service(url, version, valid, OPERATOR),)

    return SigningConfig(
        ca_urls=service(ports.url("ca")),
        oidc_urls=service(ports.url("oidc_dev")),
        rekor_tlog_urls=service(ports.url("log"), 2),
        rekor_tlog_config=ServiceConfiguration(ServiceSelector.ANY),
        tsa_urls=service(ports.url("tsa") + "/api/v1/timestamp"),
        tsa_config=ServiceConfiguration(ServiceSelector.ANY),
    )


def client_trust_config(trusted_root: bytes, signing: SigningConfig) -> bytes:
    """A ClientTrustConfig (``…clienttrustconfig.v0.1+json``): trusted root + signing config.

    Raises:
        FormatError: ``trusted_root`` does not parse.
    """
    from toolkit.models.signing_config import ClientTrustConfig
    from toolkit.models.trustroot import TrustedRoot

    config = ClientTrustConfig(TrustedRoot.from_json(trusted_root), signing)
    return config.to_json().encode()


def _trusted_root_start(trusted_root: bytes) -> datetime:
    """The earliest ``validFor.start`` of the trusted root's entries."""
    from toolkit.models.trustroot import TrustedRoot

    root = TrustedRoot.from_json(trusted_root)
    ranges: list[TimeRange | None] = [ca.valid_for for ca in root.certificate_authorities]
    ranges += [log.public_key.valid_for for log in (*root.tlogs, *root.ctlogs)]
    ranges += [tsa.valid_for for tsa in root.timestamp_authorities]
    starts = [r.start for r in ranges if r is not None]
    if not starts:
        raise FormatError("the trusted root lists no service")
    return min(starts)


# --- The static TUF mirror ------------------------------------------------------------


@dataclass(frozen=True)
class TufStaticConfig:
    """The ``[tuf_static]`` table: a static HTTP mirror of a published TUF repository.

    ::

        [tuf_static]
        listen = "127.0.0.1:3005"     # default
        dir = "tuf"                   # the published tree (relative to the config file)

    Attributes:
        listen: ``HOST:PORT``.
        directory: The directory served.
    """

    listen: str
    directory: Path

    @classmethod
    def from_file(cls, file: ConfigFile) -> TufStaticConfig | None:
        """Read ``[tuf_static]`` strictly (None when the file has no such table).

        Raises:
            FormatError: A mistyped or unknown key.
        """
        from toolkit.services._http import listen_address

        table = file.section("tuf_static")
        if table is None:
            return None
        listen = table.text("listen", f"127.0.0.1:{DEFAULT_PORT_BASE + OFFSETS['tuf_static']}")
        try:
            listen_address(listen, option="listen")
        except UsageError as exc:
            raise table.error("listen", exc.message, hint=exc.hint) from None
        directory = table.path_value("dir")
        table.done()
        return cls(listen, directory)


def static_app(directory: Path) -> Starlette:
    """A read-only static file server of ``directory`` (GET and HEAD only).

    Content types come from the file names (``.json`` → ``application/json``);
    absent files and directories answer 404 and other methods 405, as
    problem documents; nothing lists a directory, and no path leaves
    ``directory`` (Starlette's StaticFiles refuses ``..`` and symlinks out).

    Raises:
        EnvironmentSetupError: ``directory`` is not a directory.
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from toolkit.services._http import problem

    if not directory.is_dir():
        raise EnvironmentSetupError(f"cannot serve {str(directory)!r}: not a directory")

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return problem(404, "not-found", "Not found", "no such file in the repository")
        if exc.status_code == 405:
            return problem(
                405,
                "method-not-allowed",
                "Method not allowed",
                "the repository is read-only: use GET or HEAD",
                {"Allow": "GET, HEAD"},
            )
        return problem(exc.status_code, "bad-request", "Bad request", str(exc.detail))

    return Starlette(
        routes=[Mount("/", app=StaticFiles(directory=directory, html=False))],
        exception_handlers={HTTPException: refused},
    )


# --- init --------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_instance` produced.

    Attributes:
        directory: The instance directory.
        ports: Its ports.
        root_sha256: Hex SHA-256 of ``ceremony/1.root.json``.
    """

    directory: Path
    ports: Ports
    root_sha256: str

    @property
    def config(self) -> Path:
        """``DIR/instance.toml``."""
        return self.directory / INSTANCE_TOML


def _check_empty(directory: Path) -> None:
    try:
        if directory.exists():
            if not directory.is_dir():
                raise UsageError(f"{str(directory)!r} exists and is not a directory")
            if any(directory.iterdir()):
                raise UsageError(
                    f"{str(directory)!r} is not empty: airseal init only writes into a new "
                    "or empty directory"
                )
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot use {str(directory)!r}: {exc.strerror or exc}"
        ) from None


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    from toolkit._fs import write_durably

    try:
        write_durably(path, data, mode)
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot write {path}: {exc.strerror or exc}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EnvironmentSetupError(
            f"the rehearsal left no {path.name}: {exc.strerror or exc}"
        ) from None


def init_instance(
    directory: Path,
    ports: Ports,
    *,
    rehearse: Callable[[Path, Path], None],
    now: datetime,
    echo: Callable[[str], None] = lambda _line: None,
) -> InitResult:
    """Create a ready local instance in ``directory`` (new or empty).

    Args:
        directory: The instance directory.
        ports: The services' ports.
        rehearse: ``rehearse(config, out)`` rehearses the ceremony config
            file into ``out`` (``airseal ceremony rehearse`` in a subprocess).
        now: The current time (dates of the ceremony and TUF metadata).
        echo: Receives progress lines.

    Raises:
        UsageError: ``directory`` is not empty.
        EnvironmentSetupError: A step failed (rehearsal, files); ``directory``
            is then left as it was found (absent or empty).
    """
    directory = directory.absolute()
    created = not directory.exists()
    _check_empty(directory)
    try:
        return _init_steps(directory, ports, rehearse=rehearse, now=now, echo=echo)
    except BaseException:
        # A failed init leaves DIR as it found it (absent or empty), so
        # that it can simply be run again.
        _empty(directory, remove=created)
        raise


def _empty(directory: Path, *, remove: bool) -> None:
    import shutil

    if remove:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _init_steps(
    directory: Path,
    ports: Ports,
    *,
    rehearse: Callable[[Path, Path], None],
    now: datetime,
    echo: Callable[[str], None],
) -> InitResult:
    from toolkit.services.config import ConfigFile
    from toolkit.signing import KeyAlgorithm, SoftwareSigner
    from toolkit.trust.repository import (
        SIGNING_CONFIG_TARGET,
        TRUSTED_ROOT_TARGET,
        Repository,
        RepositoryConfig,
    )

    ceremony_file = directory / CEREMONY_CONFIG
    _write(ceremony_file, ceremony_config(now).encode())
    echo(f"rehearsing the ceremony into {directory / CEREMONY_DIR} (SoftHSM)")
    rehearse(ceremony_file, directory / CEREMONY_DIR)
    ceremony = directory / CEREMONY_DIR
    root_json = _read(ceremony / "1.root.json")
    trusted_root = _read(ceremony / "trusted_root.json")
    origin = tlog_origin(trusted_root)
    signing = local_signing_config(ports, _trusted_root_start(trusted_root))

    config_path = directory / INSTANCE_TOML
    _write(config_path, instance_toml(ports, origin).encode())
    # The development issuer's key: tokens stay valid across restarts.
    _write(directory / OIDC_KEY, SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256).to_pem(), 0o600)
    _write(directory / TRUST_CONFIG, client_trust_config(trusted_root, signing))
    root_sha256 = hashlib.sha256(root_json).hexdigest()
    _write(directory / ROOT_SHA256, (root_sha256 + "\n").encode())

    echo(f"creating the TUF repository {directory / REPOSITORY_DIR}")
    file = ConfigFile.load(config_path)
    ring = file.keyring()
    if ring is not None and ring.softhsm2_conf is not None:
        # The tuf-online key is on the rehearsal's new tokens: whatever
        # SoftHSM config the environment names, this one must be read.
        os.environ["SOFTHSM2_CONF"] = ring.softhsm2_conf
    settings = RepositoryConfig.from_config(file)
    repo = Repository.create(
        settings.directory,
        root_json,
        {
            TRUSTED_ROOT_TARGET: trusted_root,
            SIGNING_CONFIG_TARGET: signing.to_json().encode(),
        },
        settings.open_signers(),
        settings.policy,
        now,
    )
    repo.publish(directory / PUBLISHED_DIR)
    echo(f"published the TUF repository to {directory / PUBLISHED_DIR}")
    return InitResult(directory, ports, root_sha256)


def describe(result: InitResult) -> list[str]:
    """The lines ``airseal init`` prints at the end."""
    ports = result.ports
    return [
        f"instance ready: {result.directory}",
        f"  serve:      airseal serve all --config {result.config}",
        f"  oidc-dev:   {ports.url('oidc_dev')}  (development only)",
        f"  ca:         {ports.url('ca')}",
        f"  ct:         {ports.url('ct')}",
        f"  log:        {ports.url('log')}",
        f"  tsa:        {ports.url('tsa')}",
        f"  tuf mirror: {ports.url('tuf_static')}",
        f"  trust:      {result.directory / TRUST_CONFIG}",
        f"  root sha256 {result.root_sha256}",
    ]
