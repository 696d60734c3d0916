"""``airseal trust``: publish, refresh and rotate a TUF repository; update from a mirror.

Distributor commands read the ``[trust]`` table of a config file (see
:class:`toolkit.trust.repository.RepositoryConfig`); the custodians' commands
(``sign-root``, ``merge-signatures``) work on files alone, so that each
custodian can sign in a session of their own. Like ``_verify``, this module
does not use ``from __future__ import annotations``: typer reads the real
annotation objects. Heavy imports happen inside the commands.
"""

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from toolkit.cli._errors import reporting
from toolkit.cli._files import read_input
from toolkit.errors import EnvironmentSetupError, FormatError, UsageError

if TYPE_CHECKING:
    from securesystemslib.signer import Key

    from toolkit.services.config import ConfigFile
    from toolkit.signing import Signer
    from toolkit.trust.repository import RefreshReport

__all__ = ["register"]

_ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Config file with a \\[trust] table.")
]
_JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON object instead of text.")]


def register(app: typer.Typer) -> None:
    """Add the ``trust`` command group to the app."""
    trust = typer.Typer(
        name="trust",
        help="TUF trust distribution: repository (publish, refresh, rotate) and client.",
        no_args_is_help=True,
        add_completion=False,
    )

    @trust.command("init")
    def init(
        config: _ConfigOption,
        root: Annotated[
            Path, typer.Option("--root", help="The ceremony's 1.root.json (kept byte for byte).")
        ],
        trusted_root: Annotated[
            Path, typer.Option("--trusted-root", help="The trusted_root.json to publish.")
        ],
        signing_config: Annotated[
            Path | None,
            typer.Option(
                "--signing-config",
                help="signing_config.v0.2.json to publish (default: derived from the "
                "trusted root's service URLs).",
            ),
        ] = None,
        as_json: _JsonOption = False,
    ) -> None:
        """Create the repository from the ceremony's root: targets, snapshot, timestamp."""
        with reporting(json_output=as_json):
            from toolkit.trust.repository import (
                SIGNING_CONFIG_TARGET,
                TRUSTED_ROOT_TARGET,
                Repository,
                RepositoryConfig,
                derive_signing_config,
            )

            settings = RepositoryConfig.load(config)
            root_bytes = _read(root, "--root")
            trusted = _read(trusted_root, "--trusted-root")
            signing = (
                _read(signing_config, "--signing-config")
                if signing_config is not None
                else derive_signing_config(trusted)
            )
            repo = Repository.create(
                settings.directory,
                root_bytes,
                {TRUSTED_ROOT_TARGET: trusted, SIGNING_CONFIG_TARGET: signing},
                settings.open_signers(),
                settings.policy,
                _now(),
            )
            _print_status(repo.status(), f"created {settings.directory}", as_json)

    @trust.command("status")
    def status(config: _ConfigOption, as_json: _JsonOption = False) -> None:
        """Print each role's version and expiry (no key is opened)."""
        with reporting(json_output=as_json):
            from toolkit.trust.repository import Repository, RepositoryConfig

            settings = RepositoryConfig.load(config)
            repo = Repository.open(settings.directory, [], settings.policy)
            _print_status(repo.status(), str(settings.directory), as_json)

    @trust.command("refresh")
    def refresh(
        config: _ConfigOption,
        force: Annotated[
            bool, typer.Option("--force", help="Re-sign snapshot and timestamp even if not due.")
        ] = False,
        publish: Annotated[
            Path | None, typer.Option("--publish", help="Then publish to this directory.")
        ] = None,
        as_json: _JsonOption = False,
    ) -> None:
        """Re-sign the timestamp, snapshot and targets that are near expiry (run from cron)."""
        with reporting(json_output=as_json):
            from toolkit.trust.repository import RepositoryConfig

            settings = RepositoryConfig.load(config)
            repo = settings.open()
            report = repo.refresh(_now(), force=force)
            if publish is not None:
                repo.publish(publish)
            _print_report(report, as_json)

    @trust.command("add-target")
    def add_target(
        config: _ConfigOption,
        file: Annotated[Path, typer.Argument(help="The target file.")],
        name: Annotated[
            str | None, typer.Option("--name", help="Target name (default: the file name).")
        ] = None,
        as_json: _JsonOption = False,
    ) -> None:
        """Add or update a target (e.g. a new trusted_root.json): a new targets version."""
        with reporting(json_output=as_json):
            from toolkit.trust.repository import RepositoryConfig

            settings = RepositoryConfig.load(config)
            repo = settings.open()
            data = _read(file, "FILE")
            report = repo.add_target(name or file.name, data, _now())
            _print_report(report, as_json)

    @trust.command("publish")
    def publish(
        config: _ConfigOption,
        out: Annotated[Path, typer.Argument(help="Directory a static HTTP server serves.")],
        offline_dir: Annotated[
            Path | None,
            typer.Option("--offline-dir", help="Offline channel tree (default: OUT/offline)."),
        ] = None,
        as_json: _JsonOption = False,
    ) -> None:
        """Write metadata/ and targets/ (and the offline channel's tree) into OUT."""
        with reporting(json_output=as_json):
            from toolkit.trust.repository import Repository, RepositoryConfig

            settings = RepositoryConfig.load(config)
            repo = Repository.open(settings.directory, [], settings.policy)
            written = repo.publish(out, offline_out=offline_dir)
            if as_json:
                typer.echo(json.dumps({"ok": True, "written": [str(p) for p in written]}))
            else:
                typer.echo(f"published {out}: {len(written)} file(s) written")

    @trust.command("rotate-root")
    def rotate_root(
        config: _ConfigOption,
        output: Annotated[Path, typer.Option("--output", "-o", help="Write the proposal here.")],
        new_keys: Annotated[
            list[str] | None,
            typer.Option(
                "--new-keys",
                help="Root keys of the new version (repeat, or comma-separated): keys.toml "
                "names, pkcs11:/file: URIs, or PEM public key files. Default: unchanged.",
            ),
        ] = None,
        threshold: Annotated[
            int | None, typer.Option("--threshold", min=1, help="New root threshold.")
        ] = None,
        online_keys: Annotated[
            list[str] | None,
            typer.Option(
                "--online-keys", help="New keys of targets, snapshot and timestamp (as above)."
            ),
        ] = None,
        online_threshold: Annotated[
            int | None, typer.Option("--online-threshold", min=1, help="Their threshold.")
        ] = None,
        expires: Annotated[
            str | None,
            typer.Option("--expires", help="Expiry, e.g. 2028-11-01T00:00:00Z (default: +1 year)."),
        ] = None,
    ) -> None:
        """Write root version N+1, unsigned, for the custodians to sign."""
        with reporting():
            from toolkit.services.config import ConfigFile
            from toolkit.trust.repository import Repository, RepositoryConfig, propose_root

            settings = RepositoryConfig.load(config)
            repo = Repository.open(settings.directory, [], settings.policy)
            until = _parse_time(expires) if expires else _now() + timedelta(days=365)
            cfg: ConfigFile = settings.config
            data = propose_root(
                repo.roots[-1],
                expires=until,
                root_keys=_public_keys(new_keys, cfg) or None,
                root_threshold=threshold,
                online_keys=_public_keys(online_keys, cfg) or None,
                online_threshold=online_threshold,
            )
            _write_new(output, data)
            version = repo.root.version + 1
            typer.echo(
                f"wrote {output}: root version {version} (unsigned); it needs the thresholds of "
                f"root v{version - 1} and v{version} (airseal trust sign-root)"
            )

    @trust.command("sign-root")
    def sign_root(
        file: Annotated[Path, typer.Argument(help="The root proposal (N+1.root.json).")],
        key: Annotated[
            str, typer.Option("--key", help="The custodian's key: pkcs11:/file: URI or name.")
        ],
        previous: Annotated[
            Path | None,
            typer.Option("--previous", help="Root N: also show its threshold, allow its keys."),
        ] = None,
        config: Annotated[
            Path | None,
            typer.Option("--config", "-c", help="Config naming keys.toml (for key names)."),
        ] = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write here (default: in place).")
        ] = None,
    ) -> None:
        """Add one custodian's signature to a root proposal."""
        with reporting():
            from toolkit.trust.repository import root_signature_status
            from toolkit.trust.repository import sign_root as add_signature

            data = _read(file, "FILE")
            prev = _read(previous, "--previous") if previous is not None else None
            signer = _open_key(key, config)
            signed = add_signature(data, signer, previous=prev)
            target = output or file
            _replace(target, signed)
            typer.echo(f"signed {target}")
            typer.echo(root_signature_status(signed, prev, name=target.name).summary())

    @trust.command("merge-signatures")
    def merge(
        files: Annotated[list[Path], typer.Argument(help="Copies of one proposal (two or more).")],
        output: Annotated[Path, typer.Option("--output", "-o", help="The merged proposal.")],
        previous: Annotated[
            Path | None,
            typer.Option("--previous", help="Root N, to check signatures by its keys."),
        ] = None,
    ) -> None:
        """Merge the signatures of separately signed copies of a root proposal."""
        with reporting():
            from toolkit.trust.repository import merge_signatures, root_signature_status

            prev = _read(previous, "--previous") if previous is not None else None
            merged = merge_signatures([_read(f, "FILE") for f in files], previous=prev)
            _replace(output, merged)
            typer.echo(f"wrote {output}")
            typer.echo(root_signature_status(merged, prev, name=output.name).summary())

    @trust.command("commit-root")
    def commit_root(
        config: _ConfigOption,
        file: Annotated[Path, typer.Argument(help="The signed proposal (N+1.root.json).")],
        as_json: _JsonOption = False,
    ) -> None:
        """Install root N+1 if both thresholds are met; re-sign the online roles.

        Exit 1 (check kit.tuf) when the signatures of root N or N+1 fall short.
        """
        with reporting(json_output=as_json):
            from toolkit.trust.repository import RepositoryConfig

            settings = RepositoryConfig.load(config)
            repo = settings.open()
            report = repo.commit_root(_read(file, "FILE"), _now())
            _print_report(report, as_json)

    @trust.command("update")
    def update(
        mirror: Annotated[
            str, typer.Option("--mirror", help="Mirror: http(s):// URL or local directory.")
        ],
        root: Annotated[
            Path | None, typer.Option("--root", help="Pinned initial root file.")
        ] = None,
        root_sha256: Annotated[
            str | None,
            typer.Option("--root-sha256", help="SHA-256 of the mirror's 1.root.json."),
        ] = None,
        cache: Annotated[
            Path | None,
            typer.Option(
                "--cache",
                help="State directory (default $XDG_DATA_HOME/airseal/tuf/<root sha256>).",
            ),
        ] = None,
        output: Annotated[
            Path, typer.Option("--output", "-o", help="Where to write the verified target.")
        ] = Path("trusted_root.json"),
        target: Annotated[
            str, typer.Option("--target", help="Target to fetch.")
        ] = "trusted_root.json",
        timeout: Annotated[
            float, typer.Option("--timeout", min=0.1, help="Seconds per connection and read.")
        ] = 30.0,
        as_json: _JsonOption = False,
    ) -> None:
        """Refresh from a mirror with TUF and write the verified trusted_root.json.

        Exit 0 when verified; 1 when the metadata fails to verify (kit.tuf,
        kit.expired, kit.rollback); 2 on bad arguments; 3 when the mirror
        cannot be reached or lacks files.
        """
        with reporting(json_output=as_json):
            from toolkit.trust.updater import update as run

            pinned = _read(root, "--root") if root is not None else None
            result = run(
                mirror,
                root=pinned,
                root_sha256=root_sha256,
                cache_dir=cache,
                target=target,
                timeout=timeout,
            )
            if str(output) == "-":
                sys.stdout.buffer.write(result.data)
                return
            _replace(output, result.data)
            if as_json:
                typer.echo(json.dumps({**result.to_dict(), "output": str(output)}))
                return
            versions = ", ".join(f"{r.role} v{r.version}" for r in result.roles)
            typer.echo(f"verified {result.target} ({versions})")
            typer.echo(f"  sha256: {result.sha256}")
            typer.echo(f"  wrote:  {output}")

    @trust.command("show")
    def show(
        file: Annotated[
            Path, typer.Argument(help="A trusted_root.json (default: ./trusted_root.json).")
        ] = Path("trusted_root.json"),
        as_json: _JsonOption = False,
    ) -> None:
        """Print a trusted root as a table: logs, CT logs, CAs and TSAs with validity."""
        with reporting(json_output=as_json):
            from toolkit.models.trustroot import TrustedRoot

            root = TrustedRoot.from_json(_read(file, "FILE"))
            rows = _trusted_root_rows(root)
            if as_json:
                typer.echo(json.dumps({"ok": True, "entries": rows}))
                return
            _print_table(rows)

    app.add_typer(trust)


# --- helpers ---------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--expires: not an RFC 3339 time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise UsageError("--expires: give a timezone, e.g. 2028-11-01T00:00:00Z")
    return moment


def _read(path: Path | None, what: str) -> bytes:
    assert path is not None
    return read_input(path, what)


def _replace(path: Path, data: bytes) -> None:
    from toolkit._fs import write_durably

    try:
        write_durably(path, data, 0o644)
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_new(path: Path, data: bytes) -> None:
    if path.exists():
        raise UsageError(f"{path} exists; refusing to overwrite it")
    _replace(path, data)


def _config(path: Path | None) -> "ConfigFile | None":
    if path is None:
        return None
    from toolkit.services.config import ConfigFile

    return ConfigFile.load(path)


def _resolve_key(ref: str, cfg: "ConfigFile | None") -> str:
    """A key name or URI as a URI (names need keys.toml via the config)."""
    scheme = ref.partition(":")[0].lower()
    if scheme in ("pkcs11", "file"):
        if "pin-value" in ref.lower():
            raise UsageError("key URIs must not carry a PIN (pin-value)")
        return ref
    ring = cfg.keyring() if cfg is not None else None
    if ring is None:
        raise UsageError(
            f"{ref!r} is neither a pkcs11:/file: URI nor a key name of a keys.toml",
            hint="give --config naming keys.toml in [instance] keys, or a URI",
        )
    entry = ring.keys.get(ref)
    if entry is None:
        raise UsageError(f"keys.toml has no key {ref!r}", hint=f"its keys: {', '.join(ring.keys)}")
    return entry.uri


def _open_key(ref: str, config: Path | None) -> "Signer":
    from toolkit.signing import load_signer

    cfg = _config(config)
    uri = _resolve_key(ref, cfg)
    # With a config, keys.toml supplies the PKCS#11 module (and a rehearsal's
    # SoftHSM setup); without one, the URI's module-path or $PKCS11_MODULE.
    return cfg.open_key(uri) if cfg is not None else load_signer(uri)


def _public_keys(refs: list[str] | None, cfg: "ConfigFile") -> "list[Key]":
    """TUF keys for ``--new-keys``/``--online-keys`` values."""
    from toolkit.signing.tuf import tuf_key

    out: list[Key] = []
    for item in refs or []:
        for ref in (part.strip() for part in item.split(",")):
            if not ref:
                continue
            path = Path(ref)
            if ":" not in ref and path.is_file():
                out.append(tuf_key(_pem_public_key(path)))
                continue
            signer = cfg.open_key(_resolve_key(ref, cfg))
            out.append(tuf_key(signer.public_key, signer.scheme))
    return out


def _pem_public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a PEM public key ({type(exc).__name__})") from None


def _print_status(states: Any, title: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"ok": True, "roles": [s.to_dict() for s in states]}))
        return
    typer.echo(title)
    for state in states:
        data = state.to_dict()
        typer.echo(
            f"  {data['channel']:<8} {data['role']:<10} v{data['version']:<6} "
            f"expires {data['expires']}"
        )


def _print_report(report: "RefreshReport", as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"ok": True, **report.to_dict()}))
        return
    if not report.signed:
        typer.echo("nothing due")
    for state in report.signed:
        data = state.to_dict()
        typer.echo(
            f"signed {data['channel']} {data['role']} v{data['version']} "
            f"(expires {data['expires']})"
        )
    left = report.root_expires - _now()
    if left < timedelta(days=60):
        typer.echo(
            f"warning: the root expires in {left.days} day(s) "
            f"({report.to_dict()['root_expires']}); the custodians must sign a new one",
            err=True,
        )


def _trusted_root_rows(root: Any) -> list[dict[str, str]]:
    import hashlib

    from toolkit.models._base import format_time

    def window(valid_for: Any) -> tuple[str, str]:
        if valid_for is None:
            return "", ""
        end = format_time(valid_for.end) if valid_for.end is not None else "open"
        return format_time(valid_for.start), end

    rows: list[dict[str, str]] = []
    for kind, logs in (("tlog", root.tlogs), ("ctlog", root.ctlogs)):
        for log in logs:
            start, end = window(log.public_key.valid_for)
            rows.append(
                {
                    "kind": kind,
                    "url": log.base_url,
                    "id": log.log_id.key_id.hex()[:16],
                    "key": str(log.public_key.key_details),
                    "from": start,
                    "until": end,
                }
            )
    for kind, cas in (("ca", root.certificate_authorities), ("tsa", root.timestamp_authorities)):
        for ca in cas:
            start, end = window(ca.valid_for)
            first = ca.cert_chain.certificates[0].raw_bytes
            subject = ca.subject.common_name
            rows.append(
                {
                    "kind": kind,
                    "url": ca.uri or subject,
                    "id": hashlib.sha256(first).hexdigest()[:16],
                    "key": f"{len(ca.cert_chain.certificates)} cert(s): {subject}",
                    "from": start,
                    "until": end,
                }
            )
    return rows


def _print_table(rows: list[dict[str, str]]) -> None:
    headers = {
        "kind": "KIND",
        "url": "URL",
        "id": "ID",
        "key": "KEY",
        "from": "FROM",
        "until": "UNTIL",
    }
    widths = {k: max([len(h)] + [len(r[k]) for r in rows]) for k, h in headers.items()}
    typer.echo("  ".join(h.ljust(widths[k]) for k, h in headers.items()).rstrip())
    for row in rows:
        typer.echo("  ".join(row[k].ljust(widths[k]) for k in headers).rstrip())
