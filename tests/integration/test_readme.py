"""The README's quick-start commands, run as written.

Which blocks run: a fenced ``sh`` block directly preceded by an HTML comment

- ``<!-- readme-test -->`` runs with ``bash -euo pipefail``: every command must
  exit 0 (an ERR trap names the one that did not);
- ``<!-- readme-test: background ready=N -->`` holds one long-running command
  (``airseal serve all``): it is started in the background, the test waits for
  N ``… listening on http://…`` lines, and it is stopped (SIGTERM) after the
  last block;
- ``<!-- readme-test: skip REASON -->`` is reported as skipped with REASON
  (the real HSM).

All blocks run in order in one empty temporary directory, as a reader would
follow them, with these documented substitutions and fixtures:

- ``ceremony/examples/`` is copied from the checkout into the directory;
- ``release.tar.gz`` exists (a small placeholder archive to sign);
- ``--port-base 3000`` and ``127.0.0.1:3000`` … ``127.0.0.1:3005`` are moved to
  a free range of six ports;
- ``PATH`` starts with this interpreter's directory (the venv's ``airseal``),
  and ``XDG_DATA_HOME`` points into the directory (TUF and kit state).

A block after a failed one is skipped (it depends on the earlier state); a
block that runs ``openssl`` is skipped when the command is missing (failed
when ``CI`` is set).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import pytest

from toolkit.demo import find_port_base, parse_ready_line

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DEFAULT_PORT_BASE = 3000
READY_TIMEOUT = 120.0
BLOCK_TIMEOUT = 600.0

_MARKER = re.compile(r"^<!-- readme-test(?::\s*(?P<args>.*?))?\s*-->$")


@dataclass(frozen=True)
class Block:
    """One marked shell block of the README."""

    index: int
    heading: str
    mode: str  # "run", "background" or "skip"
    argument: str  # the skip reason, or "ready=N"
    script: str

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"{self.index:02d}-{slug[:40]}"


def readme_blocks(text: str) -> list[Block]:
    """Return the marked shell blocks of a README, in order.

    Raises:
        ValueError: a marker not followed by a fenced ``sh`` block, or an unknown mode.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        match = _MARKER.match(line.strip())
        if match:
            if i + 1 >= len(lines) or lines[i + 1].strip() != "```sh":
                raise ValueError(f"README line {i + 1}: marker not followed by a ```sh block")
            args = (match["args"] or "").strip()
            word, _, rest = args.partition(" ")
            mode = {"": "run", "background": "background", "skip": "skip"}.get(word)
            if mode is None:
                raise ValueError(f"README line {i + 1}: unknown readme-test mode {word!r}")
            if mode == "skip" and not rest.strip():
                raise ValueError(f"README line {i + 1}: a skipped block needs a reason")
            body: list[str] = []
            j = i + 2
            while j < len(lines) and lines[j].strip() != "```":
                body.append(lines[j])
                j += 1
            blocks.append(
                Block(len(blocks) + 1, heading, mode, rest.strip(), "\n".join(body) + "\n")
            )
            i = j
        i += 1
    return blocks


def substitute_ports(script: str, base: int) -> str:
    """Move ``--port-base 3000`` and ``127.0.0.1:3000..3005`` to ports ``base..base+5``."""
    script = script.replace(f"--port-base {DEFAULT_PORT_BASE}", f"--port-base {base}")
    return re.sub(
        r"127\.0\.0\.1:300([0-5])\b",
        lambda m: f"127.0.0.1:{base + int(m[1])}",
        script,
    )


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def _placeholder_release() -> bytes:
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        content = b"release 1.0\n"
        info = tarfile.TarInfo("release-1.0/README")
        info.size = len(content)
        tar.addfile(info, BytesIO(content))
    return buffer.getvalue()


@dataclass
class Session:
    """The shared working directory and background processes of one README run."""

    work: Path
    port_base: int
    env: dict[str, str]
    background: list[subprocess.Popen[str]] = field(default_factory=list)
    outputs: list[list[str]] = field(default_factory=list)
    failed: str | None = None

    def stop(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "ceremony" / "examples", work / "ceremony" / "examples")
    (work / "release.tar.gz").write_bytes(_placeholder_release())
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_DATA_HOME"] = str(work / "xdg")
    env.pop("AIRSEAL_IDENTITY_TOKEN", None)
    env.pop("SOFTHSM2_CONF", None)  # each keys.toml names its own rehearsal's tokens
    state = Session(work, find_port_base(DEFAULT_PORT_BASE), env)
    try:
        yield state
    finally:
        state.stop()


def test_readme_has_the_quick_starts() -> None:
    runnable = [b for b in BLOCKS if b.mode == "run"]
    text = "\n".join(b.script for b in runnable)
    for command in (
        "airseal init",
        "airseal ceremony rehearse",
        "airseal trust init",
        "airseal trust rotate-root",
        "airseal sign",
        "airseal kit export",
        "--kit release.airseal",
    ):
        assert command in text, f"no tested README block runs {command!r}"
    assert any(b.mode == "background" and "serve all" in b.script for b in BLOCKS)
    assert all(b.argument for b in BLOCKS if b.mode == "skip")


def test_readme_markers_are_strict() -> None:
    with pytest.raises(ValueError, match="not followed"):
        readme_blocks("<!-- readme-test -->\nsome text\n")
    with pytest.raises(ValueError, match="needs a reason"):
        readme_blocks("<!-- readme-test: skip -->\n```sh\ntrue\n```\n")
    blocks = readme_blocks("## A b\n<!-- readme-test: background ready=2 -->\n```sh\nx &\n```\n")
    assert [(b.mode, b.argument, b.script, b.id) for b in blocks] == [
        ("background", "ready=2", "x &\n", "01-a-b")
    ]


def test_substitute_ports() -> None:
    script = "init --port-base 3000\ncurl http://127.0.0.1:3005/x 127.0.0.1:30050 127.0.0.1:3003"
    assert substitute_ports(script, 41000) == (
        "init --port-base 41000\ncurl http://127.0.0.1:41005/x 127.0.0.1:30050 127.0.0.1:41003"
    )


def _run_block(session: Session, block: Block) -> None:
    script = substitute_ports(block.script, session.port_base)
    prologue = "trap 'echo \"README command failed (exit $?): $BASH_COMMAND\" >&2' ERR\n"
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", prologue + script],
            cwd=session.work,
            env=session.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        session.failed = block.id
        pytest.fail(f"README block {block.id} did not finish within {BLOCK_TIMEOUT:.0f} s")
    if done.returncode != 0:
        session.failed = block.id
        pytest.fail(
            f"README block {block.id} failed (exit {done.returncode}):\n{script}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )


def _start_background(session: Session, block: Block) -> None:
    match = re.fullmatch(r"ready=(\d+)", block.argument)
    assert match, f"README block {block.id}: background needs ready=N"
    wanted = int(match[1])
    commands = [
        c
        for c in substitute_ports(block.script, session.port_base).splitlines()
        if c.strip() and not c.lstrip().startswith("#")
    ]
    assert len(commands) == 1, f"README block {block.id}: one background command expected"
    process = subprocess.Popen(
        ["bash", "-c", f"exec {commands[0]}"],
        cwd=session.work,
        env=session.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that stop() signals its whole process group
    )
    session.background.append(process)
    output: list[str] = []
    session.outputs.append(output)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        count = 0
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            if parse_ready_line(line):
                count += 1
                if count >= wanted:
                    ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready.wait(timeout=0.2):
        if time.monotonic() > deadline:
            break
    listening = sum(1 for line in output if parse_ready_line(line))
    if listening < wanted:
        session.failed = block.id
        pytest.fail(
            f"README block {block.id}: {listening} of {wanted} ready lines "
            f"(exit status {process.poll()}):\n" + "\n".join(output[-20:])
        )


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(session: Session, block: Block) -> None:
    if block.mode == "skip":
        pytest.skip(f"README block {block.id}: {block.argument}")
    if session.failed:
        pytest.skip(f"an earlier README block failed ({session.failed})")
    if "openssl " in block.script and shutil.which("openssl") is None and not os.environ.get("CI"):
        pytest.skip(f"README block {block.id} needs the openssl command, which is not installed")
    if block.mode == "background":
        _start_background(session, block)
    else:
        _run_block(session, block)
