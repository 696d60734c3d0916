"""``make demo``: a private Sigstore instance end to end, then the air gap.

Run as ``python -m toolkit.demo --dir .demo --vectors ../shared/vectors``.
Every step runs the ``airseal`` command in a subprocess, as a user would:

1. ``airseal init`` a local instance (ceremony rehearsed on SoftHSM, TUF
   repository, configs) and ``airseal ceremony verify`` its ceremony outputs;
2. ``airseal serve all`` in the background until its six services are ready
   (stopped at the end, on failure and on Ctrl-C too);
3. ``airseal token`` from the development issuer, then ``airseal sign`` a
   sample release archive (message signature) and a DSSE in-toto attestation;
4. ``airseal kit export`` the offline kits from the TUF mirror;
5. in an empty network namespace (``unshare --net``): check that the mirror
   is unreachable, then ``airseal verify --kit`` both bundles from nothing but
   the pinned root hash in ``root.sha256``;
6. tamper one byte of the artifact, then one byte of the kit, and show the
   named failure of each (exit 1 with ``error[<check>]``);
7. stop the services, and verify the public Sigstore vectors offline.

A summary table (step, result, time) ends the run. Exit status: 0 when every
step gave its expected result, 1 otherwise, 2 on bad arguments.

Without ``--dir`` only the last step runs (exit 2 when the vectors are
missing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from types import FrameType

from toolkit.errors import Error
from toolkit.verify import Artifact, IdentityPolicy, Verifier

__all__ = [
    "READY_NAMES",
    "Demo",
    "DemoError",
    "StepResult",
    "error_code",
    "find_port_base",
    "flip_byte",
    "main",
    "parse_ready_line",
    "render_table",
]

#: The services `airseal serve all` starts for an `airseal init` instance, by
#: the name its ready lines carry (port offsets N .. N+5 from the contract).
READY_NAMES = ("oidc-dev", "ca", "ct", "log", "tsa", "tuf")

IDENTITY = "signer@example.com"
ARTIFACT_NAME = "hello-1.0.tar.gz"
SERVE_TIMEOUT = 120.0  # seconds: SoftHSM logins and log recovery on a slow, shared machine
COMMAND_TIMEOUT = 300.0

_READY = re.compile(r"^(?P<name>[a-z][a-z0-9-]*)(?: \S+)? listening on (?P<url>http://\S+)$")
_ERROR = re.compile(r"error\[(?P<code>[a-z0-9.-]+)\]")

# The air-gap probe: run inside the namespace, it must NOT reach the mirror
# that is listening on the host's loopback right now.
_PROBE = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
except OSError as exc:
    print(f"127.0.0.1:{sys.argv[1]} unreachable: {exc.strerror or exc}")
    raise SystemExit(0)
print(f"127.0.0.1:{sys.argv[1]} is reachable: the namespace has a network")
raise SystemExit(1)
"""


class DemoError(Exception):
    """A step gave an unexpected result; the message says what and why."""


@dataclass
class StepResult:
    """One row of the summary table."""

    step: str
    result: str
    seconds: float | None
    ok: bool


def parse_ready_line(line: str) -> tuple[str, str] | None:
    """Return ``(name, url)`` of a ``<name> [what] listening on URL`` line, else None."""
    match = _READY.match(line.strip())
    return (match["name"], match["url"]) if match else None


def error_code(output: str) -> str | None:
    """Return the check code of the first ``error[<check>]`` in a command's output."""
    match = _ERROR.search(output)
    return match["code"] if match else None


def flip_byte(data: bytes, offset: int) -> bytes:
    """Return ``data`` with the byte at ``offset`` changed (its lowest bit flipped)."""
    if not 0 <= offset < len(data):
        raise ValueError(f"offset {offset} outside {len(data)} bytes")
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def _ports_free(base: int, count: int = 6) -> bool:
    for port in range(base, base + count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def find_port_base(
    preferred: int = 3000,
    *,
    is_free: Callable[[int], bool] = _ports_free,
    rng: random.Random | None = None,
    attempts: int = 50,
) -> int:
    """Return a base N with N..N+5 free on 127.0.0.1: ``preferred`` if it is free.

    Raises:
        DemoError: no free range found.
    """
    if is_free(preferred):
        return preferred
    rng = rng or random.Random()  # noqa: S311 -- picks ports, not keys
    for _ in range(attempts):
        base = rng.randrange(20000, 60000, 10)
        if is_free(base):
            return base
    raise DemoError(f"no 6 free ports on 127.0.0.1 (tried {preferred} and {attempts} others)")


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render rows as a plain-text table with a dashed rule under the header."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(), line]
    out.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return "\n".join(out)


def airseal_command() -> list[str]:
    """The argv prefix that runs this installation's ``airseal`` entry point."""
    script = Path(sys.executable).with_name("airseal")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from toolkit.cli import main; main()"]


def sample_release() -> bytes:
    """A small, reproducible release archive to sign."""
    buffer = BytesIO()
    files = {
        "hello-1.0/README": b"hello 1.0: signed in the open, verified in the air gap\n",
        "hello-1.0/hello.sh": b"#!/bin/sh\necho 'hello, world'\n",
    }
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 1764547200  # fixed, so the archive's digest is stable
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, BytesIO(content))
    return buffer.getvalue()


def _netns_prefix() -> list[str] | None:
    """``unshare`` argv that runs a command in an empty network namespace, if any works."""
    for prefix in (["unshare", "--net"], ["unshare", "--net", "--map-root-user"]):
        try:
            done = subprocess.run(  # noqa: S603 -- fixed argv
                [*prefix, "true"], capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0:
            return prefix
    return None


@dataclass
class _Server:
    process: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)


class Demo:
    """The end-to-end demo in directory ``root`` (created; must be empty or absent).

    Args:
        root: where everything is written (``instance/``, bundles, kits, logs).
        port_base: N for ``airseal init --port-base``; None picks a free one.
        netns: run the offline steps in an empty network namespace (else with
            the network, labelled as such in the output).
        echo: where step output goes.
    """

    def __init__(
        self,
        root: Path,
        *,
        port_base: int | None = None,
        netns: bool = True,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.root = root
        self.port_base = port_base
        self.netns = netns
        self.echo = echo
        self.airseal = airseal_command()
        self.results: list[StepResult] = []
        self.server: _Server | None = None
        self.isolation: list[str] = []
        self.root_sha256 = ""
        # The instance's keys.toml names its own SoftHSM config; a stale
        # SOFTHSM2_CONF from another rehearsal would take precedence over it.
        self.env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}

    # -- plumbing --------------------------------------------------------

    def _show(self, argv: Sequence[str]) -> str:
        shown = (
            ["airseal", *argv[len(self.airseal) :]]
            if argv[: len(self.airseal)] == self.airseal
            else list(argv)
        )
        return shlex.join(shown)

    def run(
        self,
        args: Sequence[str],
        *,
        expect: int = 0,
        isolated: bool = False,
        quiet_stdout: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airseal ARGS`` (in the network namespace when ``isolated``) in ``root``.

        Raises:
            DemoError: the exit status is not ``expect``.
        """
        argv = [*self.airseal, *args]
        prefix = self.isolation if isolated else []
        self.echo(f"  $ {shlex.join(prefix)} {self._show(argv)}".replace("  $  ", "  $ "))
        try:
            done = subprocess.run(  # noqa: S603 -- our own airseal, list argv
                [*prefix, *argv],
                cwd=self.root,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(f"timed out after {COMMAND_TIMEOUT:.0f} s") from exc
        except OSError as exc:
            raise DemoError(f"cannot run {argv[0]}: {exc}") from exc
        shown = done.stderr if quiet_stdout else done.stdout + done.stderr
        for line in shown.rstrip().splitlines():
            self.echo(f"    {line}")
        if done.returncode != expect:
            last = (done.stderr or done.stdout).strip().splitlines()
            why = last[-1] if last else "no output"
            raise DemoError(f"exit {done.returncode} (expected {expect}): {why}")
        return done

    def step(self, name: str, action: Callable[[], str]) -> None:
        """Run one step, time it and record its row.

        Raises:
            DemoError: the step failed (its row is recorded first).
        """
        self.echo(f"\n==> {name}")
        started = time.perf_counter()
        try:
            result = action()
        except DemoError as exc:
            elapsed = time.perf_counter() - started
            self.results.append(StepResult(name, f"FAILED: {exc}", elapsed, ok=False))
            self.echo(f"  FAILED: {exc}")
            raise
        elapsed = time.perf_counter() - started
        self.results.append(StepResult(name, result, elapsed, ok=True))
        self.echo(f"  ok: {result} ({elapsed:.1f} s)")

    # -- the steps -------------------------------------------------------

    def _url(self, offset: int) -> str:
        assert self.port_base is not None
        return f"http://127.0.0.1:{self.port_base + offset}"

    def _init(self) -> str:
        if self.port_base is None:
            self.port_base = find_port_base()
        self.run(["init", "instance", "--port-base", str(self.port_base)])
        digest = (self.root / "instance" / "root.sha256").read_text().strip()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise DemoError(f"instance/root.sha256 does not hold a SHA-256: {digest[:80]!r}")
        self.root_sha256 = digest
        return f"instance/ on ports {self.port_base}-{self.port_base + 5}, root {digest[:16]}…"

    def _ceremony_verify(self) -> str:
        self.run(["ceremony", "verify", "instance/ceremony"])
        return "transcript, signatures and hashes re-checked"

    def _serve(self) -> str:
        argv = [*self.airseal, "serve", "all", "--config", "instance/instance.toml"]
        self.echo(f"  $ {self._show(argv)} &   (output in serve.log)")
        try:
            process = subprocess.Popen(  # noqa: S603 -- our own airseal, list argv
                argv,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        except OSError as exc:
            raise DemoError(f"cannot run {argv[0]}: {exc}") from exc
        self.server = server = _Server(process)
        log = (self.root / "serve.log").open("w")

        def pump() -> None:
            assert process.stdout is not None
            with log:
                for line in process.stdout:
                    log.write(line)
                    log.flush()
                    server.lines.put(line.rstrip("\n"))
            server.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        ready: dict[str, str] = {}
        deadline = time.monotonic() + SERVE_TIMEOUT
        while len(ready) < len(READY_NAMES):
            try:
                line = server.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                missing = ", ".join(n for n in READY_NAMES if n not in ready)
                raise DemoError(
                    f"not ready after {SERVE_TIMEOUT:.0f} s; waiting for {missing}"
                ) from None
            if line is None:
                tail = server.output[-1] if server.output else "no output"
                raise DemoError(f"serve all exited ({process.wait()}) before it was ready: {tail}")
            server.output.append(line)
            self.echo(f"    {line}")
            parsed = parse_ready_line(line)
            if parsed and parsed[0] in READY_NAMES:
                ready[parsed[0]] = parsed[1]
        for offset, name in enumerate(READY_NAMES):
            if ready[name] != self._url(offset):
                raise DemoError(f"{name} listens on {ready[name]}, expected {self._url(offset)}")
        return f"{len(ready)} services ready ({', '.join(READY_NAMES)})"

    def _token(self) -> str:
        done = self.run(
            ["token", "--oidc-dev", self._url(0), "--identity", IDENTITY], quiet_stdout=True
        )
        token = done.stdout.strip()
        if token.count(".") != 2:
            raise DemoError("the output is not a JWT")
        path = self.root / "token.jwt"
        # A token is a credential for 10 minutes: never printed, kept private.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
        self.echo(f"    token.jwt: {len(token)} bytes (not shown)")
        return f"identity token for {IDENTITY}"

    def _sign(self, bundle: str, *extra: str) -> str:
        done = self.run(
            [
                "sign",
                f"release/{ARTIFACT_NAME}",
                *extra,
                "--identity-token",
                "@token.jwt",
                "--trust-config",
                "instance/trust_config.json",
                "--bundle",
                bundle,
                "--json",
            ]
        )
        try:
            doc = json.loads(done.stdout)
            index = doc["log"]["index"]
            content = doc["content"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DemoError(f"unexpected --json output: {done.stdout[:200]!r}") from exc
        times = ", ".join(t.get("source", "?") for t in doc.get("timestamps") or [])
        return f"{bundle}: {content}, log index {index}, timestamps: {times or 'none'}"

    def _sign_blob(self) -> str:
        release = self.root / "release"
        release.mkdir(exist_ok=True)
        (release / ARTIFACT_NAME).write_bytes(sample_release())
        return self._sign(f"{ARTIFACT_NAME}.sigstore.json")

    def _sign_dsse(self) -> str:
        return self._sign(f"{ARTIFACT_NAME}.intoto.sigstore.json", "--dsse")

    def _export(self, output: str, *bundles: str) -> str:
        args = ["kit", "export", "--mirror", self._url(5), "--root-sha256", self.root_sha256]
        for bundle in bundles:
            args += ["--bundle", bundle]
        self.run([*args, "-o", output])
        return f"{output}: {(self.root / output).stat().st_size} bytes, {len(bundles)} bundle(s)"

    def _export_release(self) -> str:
        return self._export(
            "release.airseal",
            f"{ARTIFACT_NAME}.sigstore.json",
            f"{ARTIFACT_NAME}.intoto.sigstore.json",
        )

    def _export_attestation(self) -> str:
        return self._export("attestation.airseal", f"{ARTIFACT_NAME}.intoto.sigstore.json")

    def _air_gap(self) -> str:
        if not self.netns:
            self.isolation = []
            return "SKIPPED by --no-netns: the offline steps run WITH the network"
        prefix = _netns_prefix()
        if prefix is None:
            raise DemoError(
                "`unshare --net` does not work here (needs root or user namespaces); "
                "rerun with --no-netns to verify without the network isolation"
            )
        self.isolation = prefix
        port = str(self.port_base + 5 if self.port_base is not None else 0)
        argv = [*prefix, sys.executable, "-c", _PROBE, port]
        self.echo(f"  $ {shlex.join(prefix)} python -c <connect to the TUF mirror> {port}")
        done = subprocess.run(  # noqa: S603 -- fixed probe script
            argv, capture_output=True, text=True, timeout=60, check=False
        )
        for line in (done.stdout + done.stderr).rstrip().splitlines():
            self.echo(f"    {line}")
        if done.returncode != 0:
            raise DemoError("the namespace can reach the mirror: it is not offline")
        return f"empty network namespace ({shlex.join(prefix)}): mirror unreachable"

    def _verify(
        self, artifact: str, kit: str, *, expect: int = 0
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            [
                "verify",
                artifact,
                "--kit",
                kit,
                "--root-sha256",
                self.root_sha256,
                "--identity",
                IDENTITY,
                "--issuer",
                self._url(0),
                "--state",
                "kit-state",
            ],
            expect=expect,
            isolated=True,
        )

    def _where(self) -> str:
        return "offline, no network" if self.isolation else "WITH network (--no-netns)"

    def _verify_release(self) -> str:
        self._verify(f"release/{ARTIFACT_NAME}", "release.airseal")
        return f"verified {ARTIFACT_NAME} as {IDENTITY} ({self._where()})"

    def _verify_attestation(self) -> str:
        self._verify(f"release/{ARTIFACT_NAME}", "attestation.airseal")
        return f"verified the DSSE attestation of {ARTIFACT_NAME} ({self._where()})"

    def _tamper_artifact(self) -> str:
        original = (self.root / "release" / ARTIFACT_NAME).read_bytes()
        offset = len(original) // 2
        tampered = self.root / "tampered"
        tampered.mkdir(exist_ok=True)
        (tampered / ARTIFACT_NAME).write_bytes(flip_byte(original, offset))
        self.echo(
            f"    flipped one bit of byte {offset} of {ARTIFACT_NAME} -> tampered/{ARTIFACT_NAME}"
        )
        done = self._verify(f"tampered/{ARTIFACT_NAME}", "release.airseal", expect=1)
        code = error_code(done.stderr + done.stdout)
        if code is None:
            raise DemoError("exit 1 but no error[<check>] line")
        return f"rejected as expected: error[{code}] (exit 1)"

    def _tamper_kit(self) -> str:
        from toolkit.trust.kit import Kit

        kit = (self.root / "release.airseal").read_bytes()
        # One byte of the trusted_root.json target file: TUF's targets
        # metadata signs its length and hashes, so the kit must be refused.
        target = Kit.decode(kit).target_files["trusted_root.json"]
        offset = kit.find(target) + len(target) // 2
        if offset < len(target) // 2:
            raise DemoError("trusted_root.json not found in release.airseal")
        (self.root / "tampered" / "release.airseal").write_bytes(flip_byte(kit, offset))
        self.echo(
            f"    flipped one bit of byte {offset} (inside trusted_root.json) "
            "-> tampered/release.airseal"
        )
        done = self._verify(f"release/{ARTIFACT_NAME}", "tampered/release.airseal", expect=1)
        code = error_code(done.stderr + done.stdout)
        if code is None:
            raise DemoError("exit 1 but no error[<check>] line")
        return f"rejected as expected: error[{code}] (exit 1)"

    def _stop(self) -> str:
        server, self.server = self.server, None
        if server is None:
            return "not running"
        self.echo("  sending SIGTERM to airseal serve all")
        server.process.send_signal(signal.SIGTERM)
        try:
            status = server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
            raise DemoError("did not stop within 30 s of SIGTERM; killed") from None
        if status != 0:
            raise DemoError(f"serve all exited {status} on SIGTERM (see serve.log)")
        return "stopped cleanly on SIGTERM"

    def kill_server(self) -> None:
        """Stop the background services whatever happened (idempotent)."""
        server, self.server = self.server, None
        if server is None or server.process.poll() is not None:
            return
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        """The steps of the instance part, in order."""
        return [
            ("init: a local instance", self._init),
            ("ceremony verify", self._ceremony_verify),
            ("serve all (background)", self._serve),
            ("token (development issuer)", self._token),
            ("sign the artifact", self._sign_blob),
            ("sign a DSSE attestation", self._sign_dsse),
            ("kit export (both bundles)", self._export_release),
            ("kit export (attestation)", self._export_attestation),
            ("air gap: empty network namespace", self._air_gap),
            ("verify --kit the artifact", self._verify_release),
            ("verify --kit the attestation", self._verify_attestation),
            ("tamper one byte of the artifact", self._tamper_artifact),
            ("tamper one byte of the kit", self._tamper_kit),
            ("stop the services", self._stop),
        ]

    def run_all(self, extra: Sequence[tuple[str, Callable[[], str]]] = ()) -> bool:
        """Run every step; after a failure the rest are listed as not run. True if all ok."""
        steps = [*self.steps(), *extra]
        with _terminate_on_signals(), contextlib.ExitStack() as stack:
            stack.callback(self.kill_server)
            for index, (name, action) in enumerate(steps):
                try:
                    self.step(name, action)
                except DemoError:
                    self.kill_server()
                    self.results.extend(
                        StepResult(n, "not run", None, ok=False) for n, _ in steps[index + 1 :]
                    )
                    return False
        return True


@contextlib.contextmanager
def _terminate_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into SystemExit so that cleanup (the services) runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# -- the shared vectors ----------------------------------------------------


def vector_rows(folder: Path) -> list[list[str]]:
    """Verify each happy-path vector of ``folder`` by file and by digest; one row each."""
    index = json.loads((folder / "INDEX.json").read_text())
    now = datetime.now(UTC)
    rows = []
    for case in index["cases"]:
        if case["expected"] != "pass":
            continue
        base = folder / case["dir"]
        verifier = Verifier.from_json((base / "trusted_root.json").read_bytes())
        bundle = (base / "bundle.sigstore.json").read_bytes()
        policy = IdentityPolicy(issuer=case["issuer"], identity=case["identity"])
        inputs = []
        if case["artifact"]:
            inputs.append(("file", Artifact.from_bytes((base / "artifact").read_bytes())))
        inputs.append(("digest", Artifact.from_digest(f"sha256:{case['artifact_sha256']}")))
        for mode, artifact in inputs:
            started = time.perf_counter()
            try:
                result = verifier.verify(bundle, artifact, policy, now=now)
            except Error as exc:
                rows.append([case["case"], mode, f"FAIL [{exc.code}]", exc.message[:40], "", ""])
                continue
            elapsed = (time.perf_counter() - started) * 1000
            sources = "+".join(sorted({t.source for t in result.times}))
            identity = result.identity or ""
            if len(identity) > 40:
                identity = identity[:37] + "..."
            rows.append([case["case"], mode, "verified", identity, sources, f"{elapsed:.1f}"])
    return rows


def vectors_step(vectors: Path, echo: Callable[[str], None] = print) -> str:
    """Verify the shared Sigstore vectors offline and print their table.

    Raises:
        DemoError: a vector failed, or the vectors are missing while ``CI`` is set.
    """
    folder = vectors / "sigstore-python"
    if not (folder / "INDEX.json").is_file():
        if os.environ.get("CI"):
            raise DemoError(f"no Sigstore vectors at {folder} (CI is set)")
        return f"skipped: no Sigstore vectors at {folder}"
    echo(f"  offline verification of the happy-path vectors in {folder}\n")
    rows = vector_rows(folder)
    for line in render_table(
        ["case", "input", "result", "identity", "time", "ms"], rows
    ).splitlines():
        echo(f"    {line}")
    failed = sum(1 for r in rows if r[2] != "verified")
    summary = f"{len(rows) - failed} of {len(rows)} verified offline, {failed} failed."
    echo(f"\n  {summary}")
    if failed:
        raise DemoError(summary)
    return summary


def _summary(results: Sequence[StepResult]) -> str:
    rows = [
        [str(i), r.step, r.result, "" if r.seconds is None else f"{r.seconds:.1f} s"]
        for i, r in enumerate(results, 1)
    ]
    return render_table(["#", "step", "result", "time"], rows)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--vectors", type=Path, required=True, help="the shared/vectors folder")
    parser.add_argument(
        "--dir", type=Path, help="run the whole demo in this (new or empty) directory"
    )
    parser.add_argument(
        "--port-base", type=int, help="ports N..N+5 (default: 3000 if free, else a free range)"
    )
    parser.add_argument(
        "--no-netns",
        action="store_true",
        help="verify offline without an empty network namespace (when unshare cannot run)",
    )
    args = parser.parse_args(argv)
    if args.dir is None:
        folder = args.vectors / "sigstore-python"
        if not (folder / "INDEX.json").is_file():
            print(f"error: no Sigstore vectors at {folder}", file=sys.stderr)
            return 2
        try:
            vectors_step(args.vectors)
        except DemoError:
            return 1
        return 0
    root: Path = args.dir.resolve()
    if root.exists() and any(root.iterdir()):
        print(f"error: {args.dir} is not empty (make demo removes it first)", file=sys.stderr)
        return 2
    if args.port_base is not None and not 1 <= args.port_base <= 65530:
        print("error: --port-base must be in 1..65530", file=sys.stderr)
        return 2
    root.mkdir(parents=True, exist_ok=True)
    print(f"airseal demo in {args.dir}: a private Sigstore instance, then the air gap")
    demo = Demo(root, port_base=args.port_base, netns=not args.no_netns)
    try:
        ok = demo.run_all(
            [("shared Sigstore vectors (offline)", lambda: vectors_step(args.vectors))]
        )
    except KeyboardInterrupt:
        # run_all has stopped the services on the way out.
        print("\ninterrupted", file=sys.stderr)
        return 130
    print("\nSummary\n")
    print(_summary(demo.results))
    failed = [r for r in demo.results if not r.ok]
    if ok:
        print(f"\nall {len(demo.results)} steps gave the expected result.")
        return 0
    print(f"\nFAILED at step: {failed[0].step}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
