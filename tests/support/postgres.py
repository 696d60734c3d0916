"""A throwaway PostgreSQL cluster for the test session (and the storage benchmark).

No system service and no password: the cluster lives in a temp directory,
listens on 127.0.0.1 on a free port (and on a Unix socket in the same
directory), trusts local connections, and is stopped (SIGINT, a "fast"
shutdown) and deleted at the end.

``initdb`` and ``postgres`` refuse to run as root, so under root both run as
the ``postgres`` user (which ``apt-get install postgresql`` creates) in a
directory it owns. The server is started with ``Popen(user=…)`` rather than
``runuser``: runuser forks and stays the parent, so our SIGINT would hit
runuser rather than the postmaster.

Fixtures: ``postgres_cluster`` (session), ``postgres_dsn`` (session; a
database of its own in that cluster) and ``fresh_postgres_dsn`` (a new
``test_<random>`` database for each test, dropped afterwards). Tests needing
PostgreSQL skip with a reason when it is not installed, and fail instead
when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.support.log_server import free_port

__all__ = [
    "PostgresCluster",
    "find_postgres_bin",
    "fresh_postgres_dsn",
    "postgres_cluster",
    "postgres_dsn",
    "postgres_missing",
    "require_postgres",
]

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 30.0


def find_postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and postgres."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        version = initdb.parent.parent.name
        if re.fullmatch(r"[0-9]+(\.[0-9]+)*", version) and (initdb.parent / "postgres").exists():
            found.append((tuple(int(part) for part in version.split(".")), initdb.parent))
    return max(found)[1] if found else None


def postgres_missing() -> str | None:
    """Why a throwaway cluster cannot be started here, or None when it can."""
    if find_postgres_bin() is None:
        return (
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; "
            "`make postgres` or apt-get install postgresql)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
    return None


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL is missing; fail instead when ``CI`` is set."""
    reason = postgres_missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} -- CI must run the PostgreSQL tests")
    pytest.skip(reason)


class PostgresCluster:
    """A PostgreSQL cluster in a temp directory: :meth:`start`, :meth:`stop`.

    Args:
        durable: Keep fsync on (the benchmark). Tests turn it off: they check
            what a commit makes visible, not what survives a power cut, and
            fsync=off makes the cluster much faster to use.
    """

    def __init__(self, *, durable: bool = False) -> None:
        bindir = find_postgres_bin()
        if bindir is None:
            raise RuntimeError(postgres_missing() or "PostgreSQL is not installed")
        self.bindir = bindir
        self.durable = durable
        self.port = 0
        # Not under pytest's tmp dirs: /tmp/pytest-of-root is 0700, which the
        # postgres user cannot enter. Short, too: the socket path is limited
        # to 107 bytes.
        self.directory = Path(tempfile.mkdtemp(prefix="airseal-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._account: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._account = pwd.getpwnam("postgres")
            os.chown(self.directory, self._account.pw_uid, self._account.pw_gid)
        self.directory.chmod(0o700)

    @property
    def version(self) -> str:
        return self.bindir.parent.name

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq DSN for ``dbname`` over TCP on 127.0.0.1."""
        return make_conninfo(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname)

    def _env(self) -> dict[str, str] | None:
        """The environment of the postgres user's processes (None: ours, unchanged)."""
        if self._account is None:
            return None
        return {
            **os.environ,
            "HOME": self._account.pw_dir,
            "USER": "postgres",
            "LOGNAME": "postgres",
        }

    @property
    def _uid(self) -> int | None:
        return None if self._account is None else self._account.pw_uid

    @property
    def _gid(self) -> int | None:
        return None if self._account is None else self._account.pw_gid

    @property
    def _groups(self) -> list[int] | None:
        # Drop root's supplementary groups too.
        return None if self._account is None else []

    def start(self) -> None:
        """initdb, start the server on a free port, wait until it accepts connections."""
        initdb = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.directory,
            user=self._uid,
            group=self._gid,
            extra_groups=self._groups,
            env=self._env(),
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip() or initdb.stdout.strip()}")
        # The port is free when picked but could be taken before the server
        # binds it: try a few.
        for _attempt in range(3):
            self.port = free_port()
            if self._launch():
                return
        raise RuntimeError(f"PostgreSQL did not start: {self._log_tail()}")

    def _launch(self) -> bool:
        command = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data),
            "-k",
            str(self.directory),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            command += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        with self.log.open("ab") as log:
            if self._account is not None:
                os.chown(self.log, self._account.pw_uid, self._account.pw_gid)
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.directory,
                user=self._uid,
                group=self._gid,
                extra_groups=self._groups,
                env=self._env(),
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"PostgreSQL did not accept connections: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no server log)"
        return " | ".join(lines[-5:])

    def create_database(self, name: str | None = None) -> str:
        """Create a database (``test_<random>`` by default) and return its DSN."""
        name = name or f"test_{secrets.token_hex(6)}"
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if not self.durable and int(self.version.split(".")[0]) >= 15:
            # Copying the template's files and checkpointing is twice as fast
            # as WAL-logging them when fsync is off (PostgreSQL 15+ option).
            create += sql.SQL(" STRATEGY = FILE_COPY")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(create)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still on it."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGKILL if it hangs; delete the directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The session's throwaway PostgreSQL cluster (skips or fails if not installed)."""
    require_postgres()
    try:
        cluster = PostgresCluster()
    except OSError as exc:
        pytest.fail(f"cannot prepare a PostgreSQL cluster directory: {exc}")
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.stop()
        pytest.fail(f"cannot start PostgreSQL {cluster.version}: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_cluster: PostgresCluster) -> str:
    """DSN of a database of the session's throwaway PostgreSQL (shared by the session)."""
    return postgres_cluster.create_database("airseal")


@pytest.fixture
def fresh_postgres_dsn(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """DSN of a new, empty ``test_<random>`` database, dropped after the test."""
    name = f"test_{secrets.token_hex(6)}"
    dsn = postgres_cluster.create_database(name)
    yield dsn
    with contextlib.suppress(psycopg.Error):
        postgres_cluster.drop_database(name)
