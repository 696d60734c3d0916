"""``airseal kit export``: build an offline kit (``.airseal``) from a TUF mirror.

The export runs a verifying python-tuf refresh against the mirror (from the
pinned root when ``--root``/``--root-sha256`` is given) and records the exact
bytes python-tuf downloaded: the root chain v1..vN (walked until the mirror
answers 404), timestamp, snapshot, targets, delegated roles and the target
files. Those bytes, plus the bundles, become the kit; before anything is
written the kit is verified again offline, exactly as ``airseal verify --kit``
will. The file is written atomically: on any error nothing is left behind.

Like ``_verify``, this module keeps real annotation objects for typer and
imports python-tuf lazily, inside the command.
"""

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from toolkit.cli._errors import reporting
from toolkit.cli._files import read_input
from toolkit.errors import EnvironmentSetupError, UsageError

if TYPE_CHECKING:
    from toolkit.trust.kit import Kit
    from toolkit.trust.offline import ExpiryPolicy, PinnedRoot

__all__ = ["register"]

_TARGETS = ("trusted_root.json", "signing_config.v0.2.json")


def _recording(fetcher: Any) -> Any:
    """Wrap a python-tuf fetcher so that every downloaded file is kept, byte-exact."""
    from tuf.ngclient import FetcherInterface

    class Recorder(FetcherInterface):
        def __init__(self) -> None:
            self.files: dict[str, bytes] = {}
            self.stage = "root"

        def _fetch(self, url: str) -> Iterator[bytes]:
            name = url.rsplit("/", 1)[-1]
            self.stage = _role_of(name)
            chunks = list(fetcher.fetch(url))
            self.files[url] = b"".join(chunks)
            return iter(chunks)

    return Recorder()


def _role_of(name: str) -> str:
    from urllib.parse import unquote

    stem = unquote(name.removesuffix(".json"))
    head, _, rest = stem.partition(".")
    return rest if head.isdigit() and rest else stem


def _bootstrap(pin: "PinnedRoot | None", fetcher: Any, metadata_url: str) -> list[bytes]:
    """The roots before python-tuf's walk: v1..vK where vK is the pinned one."""
    from tuf.api.exceptions import DownloadError

    from toolkit.errors import Check, VerificationError
    from toolkit.trust.kit import MAX_ROOT_BYTES

    def fetch(version: int) -> bytes:
        try:
            data: bytes = fetcher.download_bytes(
                f"{metadata_url}{version}.root.json", MAX_ROOT_BYTES
            )
            return data
        except DownloadError as exc:
            raise _transport(exc, f"{version}.root.json") from None

    if pin is None or pin.data is None:
        first = fetch(1)
        if pin is not None and hashlib.sha256(first).digest() != pin.sha256:
            raise VerificationError(
                Check.KIT_ROOT,
                f"the mirror's 1.root.json has SHA-256 {hashlib.sha256(first).hexdigest()}, "
                f"not the pinned {pin.hex}",
            )
        return [first]
    try:
        version = int(json.loads(pin.data)["signed"]["version"])
    except (ValueError, KeyError, TypeError):
        raise VerificationError(
            Check.KIT_ROOT, "the pinned root is not TUF root metadata"
        ) from None
    if not 1 <= version <= 256:
        raise VerificationError(Check.KIT_ROOT, f"the pinned root has version {version}")
    return [*(fetch(v) for v in range(1, version)), pin.data]


def _transport(exc: Exception, what: str) -> Exception:
    from toolkit.errors import TransportError

    return TransportError(f"cannot download {what} from the mirror: {exc}")


def export_kit(
    mirror: str,
    bundles: list[bytes],
    *,
    pin: "PinnedRoot | None",
    expiry: "ExpiryPolicy",
    now: datetime,
    meta: dict[str, Any],
) -> "Kit":
    """Download and verify a mirror's TUF state and return it as a kit.

    Raises:
        VerificationError: A ``kit.*`` check failed on the mirror's metadata.
        TransportError: The mirror could not be read.
    """
    import tempfile

    from tuf.api import exceptions as tx
    from tuf.ngclient import Updater

    from toolkit.trust._fetchers import open_mirror
    from toolkit.trust._time import set_reference_time
    from toolkit.trust.kit import Kit
    from toolkit.trust.offline import PinnedRoot, _classify, verify_trust

    if expiry.from_bundle():
        raise UsageError("attested-time=bundle applies to verification, not to export")
    base, metadata_url, targets_url = open_mirror(mirror)
    recorder = _recording(base)
    roots = _bootstrap(pin, base, metadata_url)
    with tempfile.TemporaryDirectory(prefix="airseal-kit-export-") as tmp:
        (Path(tmp) / "metadata").mkdir()
        try:
            updater = Updater(
                str(Path(tmp) / "metadata"),
                metadata_url,
                str(Path(tmp) / "targets"),
                targets_url,
                fetcher=recorder,
                bootstrap=roots[-1],
            )
        except tx.RepositoryError as exc:
            from toolkit.errors import Check, VerificationError

            raise VerificationError(Check.KIT_ROOT, f"the root does not verify: {exc}") from None
        reference = now
        if expiry.mode == "grace":
            assert expiry.grace is not None
            reference = now - expiry.grace
        elif expiry.attested is not None:
            reference = expiry.attested
        set_reference_time(updater, reference)
        files: dict[str, bytes] = {}
        try:
            updater.refresh()
            for path in _TARGETS:
                info = updater.get_targetinfo(path)
                if info is None:
                    if path == _TARGETS[0]:
                        from toolkit.errors import Check, VerificationError

                        raise VerificationError(
                            Check.KIT_TUF, f"the repository's targets do not list {path}"
                        )
                    continue
                recorder.stage = "target"
                files[path] = Path(updater.download_target(info)).read_bytes()
        except tx.DownloadError as exc:
            raise _transport(exc, recorder.stage) from None
        except tx.RepositoryError as exc:
            raise _classify(exc, recorder.stage, expiry) from None
        members = _members(recorder.files, metadata_url)
        while f"{len(roots) + 1}.root" in members:
            roots.append(members.pop(f"{len(roots) + 1}.root"))
        kit = Kit(
            roots=tuple(roots),
            timestamp=members.pop("timestamp"),
            snapshot=members.pop("snapshot"),
            targets=members.pop("targets"),
            delegated={k: v for k, v in members.items() if not k.endswith(".root")},
            target_files=files,
            bundles=tuple(bundles),
            meta=meta,
        )
        # Check the kit the way the air-gapped side will, before writing it.
        first = PinnedRoot.from_bytes(kit.roots[0])
        verify_trust(
            Kit.decode(kit.encode()), first, state_dir=Path(tmp) / "check", expiry=expiry, now=now
        )
    return kit


def _members(downloaded: dict[str, bytes], metadata_url: str) -> dict[str, bytes]:
    """Role name (``N.root`` for roots) -> the bytes python-tuf accepted."""
    out: dict[str, bytes] = {}
    for url, data in downloaded.items():
        if not url.startswith(metadata_url):
            continue
        from urllib.parse import unquote

        stem = unquote(url[len(metadata_url) :].removesuffix(".json"))
        role = _role_of(stem + ".json")
        out[stem if role == "root" else role] = data
    return out


def _pin(root: Path | None, root_sha256: str | None, *, required: bool) -> "PinnedRoot | None":
    from toolkit.trust.offline import PinnedRoot

    if root is not None and root_sha256 is not None:
        raise UsageError("give --root or --root-sha256, not both")
    if root is not None:
        from toolkit.trust.kit import MAX_ROOT_BYTES

        data = read_input(root, "TUF root", limit=MAX_ROOT_BYTES)
        if len(data) > MAX_ROOT_BYTES:
            raise UsageError(f"TUF root {str(root)!r} is larger than {MAX_ROOT_BYTES} bytes")
        return PinnedRoot.from_bytes(data)
    if root_sha256 is not None:
        return PinnedRoot.from_hex(root_sha256)
    if required:
        raise UsageError(
            "say which TUF root to trust: --root FILE or --root-sha256 HEX",
            hint="the SHA-256 of the repository's 1.root.json, as published by its custodians",
        )
    return None


def register(app: typer.Typer) -> None:
    """Add the ``kit`` command group to the app."""
    kit_app = typer.Typer(
        name="kit",
        help="Offline kits: TUF metadata, trusted root and bundles in one file.",
        no_args_is_help=True,
    )

    @kit_app.command("export")
    def export(
        mirror: Annotated[
            str, typer.Option("--mirror", help="TUF mirror: http(s):// URL or a directory.")
        ],
        bundle: Annotated[
            list[Path], typer.Option("--bundle", help="A Sigstore bundle to carry (repeatable).")
        ],
        output: Annotated[Path, typer.Option("-o", "--output", help="The .airseal file to write.")],
        root: Annotated[
            Path | None, typer.Option("--root", help="Pinned TUF root metadata file.")
        ] = None,
        root_sha256: Annotated[
            str | None, typer.Option("--root-sha256", help="SHA-256 of the pinned 1.root.json.")
        ] = None,
        expiry: Annotated[
            str, typer.Option("--expiry", help="strict, grace=DAYS or attested-time=T.")
        ] = "strict",
        as_json: Annotated[
            bool, typer.Option("--json", help="Print a JSON object instead of text.")
        ] = False,
    ) -> None:
        """Export a verified offline kit from a TUF mirror and bundles.

        Without --root/--root-sha256 the mirror's 1.root.json is trusted on
        first use (a warning says so). Exit 0 when written, 1 when the
        mirror's metadata does not verify, 2 on bad input, 3 when the mirror
        cannot be read.
        """
        with reporting(json_output=as_json):
            from toolkit._fs import write_durably
            from toolkit.encoding import format_rfc3339
            from toolkit.models.bundle import Bundle
            from toolkit.trust.kit import MAX_BUNDLE_BYTES
            from toolkit.trust.offline import ExpiryPolicy

            policy = ExpiryPolicy.parse(expiry)
            pin = _pin(root, root_sha256, required=False)
            if not bundle:
                raise UsageError("give at least one --bundle")
            data: list[bytes] = []
            for path in bundle:
                raw = read_input(path, "bundle", limit=MAX_BUNDLE_BYTES)
                Bundle.from_json(raw)  # refuse garbage now, not in the air gap
                data.append(raw)
            now = datetime.now(UTC)
            meta = {
                "exported": format_rfc3339(now.replace(microsecond=0)),
                "mirror": mirror,
                "bundles": [p.name for p in bundle],
                "pinned": pin is not None,
            }
            if pin is None:
                typer.echo(
                    "warning: no --root/--root-sha256: trusting the mirror's 1.root.json "
                    "on first use",
                    err=True,
                )
            kit = export_kit(mirror, data, pin=pin, expiry=policy, now=now, meta=meta)
            encoded = kit.encode()
            try:
                write_durably(output, encoded, 0o644)
            except OSError as exc:
                raise EnvironmentSetupError(
                    f"cannot write {str(output)!r}: {exc.strerror}"
                ) from None
            root_sha = hashlib.sha256(kit.roots[0]).hexdigest()
            summary: dict[str, Any] = {
                "ok": True,
                "output": str(output),
                "bytes": len(encoded),
                "sha256": hashlib.sha256(encoded).hexdigest(),
                "roots": len(kit.roots),
                "rootSha256": root_sha,
                "bundles": len(kit.bundles),
                "targets": sorted(kit.target_files),
            }
            if as_json:
                typer.echo(json.dumps(summary))
            else:
                typer.echo(
                    f"wrote {output}: {len(encoded)} bytes, roots v1..v{len(kit.roots)}, "
                    f"{len(kit.bundles)} bundle(s), targets {', '.join(summary['targets'])}\n"
                    f"  1.root.json sha256: {root_sha}"
                )

    app.add_typer(kit_app, name="kit")
