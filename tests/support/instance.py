"""A rehearsed ceremony and real ``airseal serve …`` processes, for integration tests.

* :func:`rehearse` runs ``airseal ceremony rehearse`` (the example config, or
  one derived from it) in a subprocess: fresh SoftHSM tokens beside the
  outputs, ``keys.toml`` naming every key by PKCS#11 URI with a pin-source
  file. :class:`RehearsedCeremony` names the files a service config needs.
* The session fixture ``rehearsed_ceremony`` rehearses once per test session.
* :func:`write_config` writes a services config (``[instance]`` pointing at
  the ceremony plus the given service tables) as TOML.
* :class:`ServiceProcess` starts one ``airseal serve <service> …`` process
  on 127.0.0.1, waits for its ready line (``… listening on http://127.0.0.1:PORT``)
  and knows its URL; it stops with SIGTERM, or dies with SIGKILL.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.hsm import require_softhsm

__all__ = [
    "AIRSEAL",
    "EXAMPLE_CEREMONY",
    "RehearsedCeremony",
    "ServiceProcess",
    "rehearse",
    "rehearsed_ceremony",
    "running",
    "toml_value",
    "write_config",
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CEREMONY = REPO / "ceremony" / "examples" / "root-ceremony.toml"
AIRSEAL = str(Path(sys.executable).with_name("airseal"))
_READY = re.compile(r"^(?P<name>.+) listening on (?P<url>http://127\.0\.0\.1:\d+)$")
_SOFTHSM_CONF = re.compile(r'softhsm2_conf = "([^"]+)"')


@dataclass(frozen=True)
class RehearsedCeremony:
    """The outputs of one rehearsal.

    Attributes:
        out: The output directory.
        softhsm2_conf: The SoftHSM config of its throwaway tokens.
    """

    out: Path
    softhsm2_conf: Path

    @property
    def keys_toml(self) -> Path:
        return self.out / "keys.toml"

    @property
    def trusted_root(self) -> Path:
        return self.out / "trusted_root.json"

    @property
    def tuf_root(self) -> Path:
        return self.out / "1.root.json"

    @property
    def root_ca(self) -> Path:
        return self.out / "root-ca.pem"

    @property
    def intermediate_ca(self) -> Path:
        return self.out / "intermediate-ca.pem"

    @property
    def tsa_chain(self) -> Path:
        return self.out / "tsa-chain.pem"

    @property
    def env(self) -> dict[str, str]:
        """Environment of a process that opens the rehearsal's keys."""
        return {**os.environ, "SOFTHSM2_CONF": str(self.softhsm2_conf)}

    def trusted_root_json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.trusted_root.read_bytes())
        return document


def rehearse(out: Path, config: Path = EXAMPLE_CEREMONY, timeout: float = 180) -> RehearsedCeremony:
    """Rehearse ``config`` into ``out`` (which must not exist).

    Raises:
        RuntimeError: The rehearsal failed (the message quotes its stderr).
    """
    result = subprocess.run(
        [AIRSEAL, "ceremony", "rehearse", str(config), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"rehearsal failed ({result.returncode}): {result.stderr.strip()}")
    found = _SOFTHSM_CONF.search((out / "keys.toml").read_text(encoding="utf-8"))
    if found is None:
        raise RuntimeError("the rehearsal's keys.toml names no SoftHSM config")
    return RehearsedCeremony(out, Path(found[1]))


@pytest.fixture(scope="session")
def rehearsed_ceremony(tmp_path_factory: pytest.TempPathFactory) -> RehearsedCeremony:
    """The example ceremony, rehearsed once per test session on fresh SoftHSM tokens."""
    require_softhsm()
    return rehearse(tmp_path_factory.mktemp("ceremony") / "out")


def toml_value(value: object) -> str:
    """A Python value as TOML (strings, numbers, booleans, lists, paths)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        # JSON string syntax with ASCII escapes is valid TOML.
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def write_config(
    path: Path,
    ceremony: RehearsedCeremony | None,
    sections: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write a services config: ``[instance]`` for ``ceremony`` plus ``sections``.

    A section value that is a list of mappings becomes an array of tables
    (``[[ca.issuers]]``); everything else is a key of the section's table.
    """
    lines: list[str] = []
    if ceremony is not None:
        lines += [
            "[instance]",
            f"keys = {toml_value(ceremony.keys_toml)}",
            f"trusted_root = {toml_value(ceremony.trusted_root)}",
            "",
        ]
    for name, table in sections.items():
        arrays = {k: v for k, v in table.items() if _is_table_list(v)}
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items() if k not in arrays]
        lines.append("")
        for key, items in arrays.items():
            for item in items:
                lines.append(f"[[{name}.{key}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items()]
                lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _is_table_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


class ServiceProcess:
    """One ``airseal`` service process on 127.0.0.1.

    Args:
        args: The arguments after ``airseal`` (``["serve", "ca", "--config", path]``).
        env: The process environment (default: this process's).
    """

    def __init__(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.args = list(args)
        self.env = dict(env if env is not None else os.environ)
        self.process: subprocess.Popen[str] | None = None
        #: What the process printed (stdout and stderr), line by line.
        self.output: list[str] = []
        #: Base URL of each service by the name in its ready line.
        self.urls: dict[str, str] = {}

    @property
    def url(self) -> str:
        """The base URL of the (first) service."""
        return next(iter(self.urls.values()))

    def start(self, timeout: float = 60, services: int = 1) -> ServiceProcess:
        """Start the process and wait until ``services`` ready lines were printed.

        Raises:
            RuntimeError: The process exited or stayed silent (the message
                quotes its last lines).
        """
        self.process = subprocess.Popen(
            [AIRSEAL, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        self.output = []
        self.urls = {}
        lines: queue.Queue[str | None] = queue.Queue()
        # A thread empties the pipe for the process's whole life: a full pipe
        # would block the server.
        threading.Thread(
            target=_pump, args=(self.process.stdout, self.output, lines), daemon=True
        ).start()
        deadline = time.monotonic() + timeout
        while len(self.urls) < services:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            ready = _READY.match(line)
            if ready:
                self.urls[ready["name"]] = ready["url"]
        if len(self.urls) >= services:
            return self
        self.kill()
        raise RuntimeError(
            f"airseal {' '.join(self.args[:2])} did not start: " + " | ".join(self.output[-5:])
        )

    def run_to_exit(self, timeout: float = 60) -> tuple[int, str]:
        """Run the process until it exits by itself; returns (status, output)."""
        result = subprocess.run(
            [AIRSEAL, *self.args],
            capture_output=True,
            text=True,
            env=self.env,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
        return result.returncode, result.stdout + result.stderr

    def kill(self) -> None:
        """SIGKILL: a crash, no cleanup."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``sig`` and wait; returns the exit status (SIGKILL after ``timeout``)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> ServiceProcess:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.kill()


def _pump(stream: IO[str], output: list[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        output.append(line.rstrip("\n"))
        lines.put(output[-1])
    lines.put(None)


def running(processes: Sequence[ServiceProcess]) -> Iterator[Sequence[ServiceProcess]]:
    """Start each process in order, yield them, and kill them all at the end."""
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in reversed(processes):
            process.kill()
