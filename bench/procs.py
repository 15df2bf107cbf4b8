"""The real processes under test: ``slotmill api`` and ``slotmill worker`` as subprocesses.

Each is started with the benchmark database in ``DATABASE_URL`` and the public rate limits
off, and is stopped (SIGTERM, then SIGKILL) when the block ends, whatever happened.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _has(module: str, attr: str) -> bool:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None:
        return False
    try:
        return f"def {attr}(" in Path(spec.origin).read_text()
    except OSError:
        return False


def api_missing() -> str | None:
    """Why the HTTP measurements cannot run, or None."""
    if not _has("slotmill.api.app", "create_app"):
        return "api/app.py (create_app) is not in the tree yet"
    if not _has("slotmill.api.server", "serve"):
        return "api/server.py (serve) is not in the tree yet"
    return None


def worker_missing() -> str | None:
    if not _has("slotmill.jobs.worker", "run_worker"):
        return "jobs/worker.py (run_worker) is not in the tree yet"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "SLOTMILL_RATE_LIMIT_READS": "0",
            "SLOTMILL_RATE_LIMIT_HOLDS": "0",
            "SLOTMILL_SSE_STREAMS_PER_CLIENT": "0",  # one load generator opens every stream
            "SLOTMILL_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _tail(path: Path, lines: int = 3) -> str:
    """The last lines of a process's log, on one line (the reason it stopped, mostly)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    last = [_plain(ln) for ln in text.splitlines() if ln.strip()][-lines:]
    return " / ".join(last)[-400:] + f" (log: {path})"


def _plain(line: str) -> str:
    """A JSON log line as its message's last line (a traceback's is the exception)."""
    try:
        record = json.loads(line)
    except ValueError:
        return line.strip()
    if not isinstance(record, dict):
        return line.strip()
    text = str(record.get("exc") or record.get("msg") or line).strip()
    return text.splitlines()[-1] if text else line.strip()


@dataclass(frozen=True)
class Server:
    base: str
    pid: int


class ProcessFailed(RuntimeError):
    pass


@contextmanager
def api_server(
    db_url: str, log_dir: Path, *, workers: int = 1, env: dict[str, str] | None = None, name: str = "api"
) -> Iterator[Server]:
    """``slotmill api`` on a free loopback port (one uvicorn worker unless told); yields its
    base URL. ``env`` adds to the environment (replicas, ...)."""
    port = free_port()
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "slotmill.cli",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env={**_env(db_url), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise ProcessFailed(f"slotmill api exited with {proc.returncode}: {_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ProcessFailed(f"slotmill api did not answer /healthz within 60 s: {_tail(log)}")
            time.sleep(0.2)
        yield Server(base, proc.pid)
    finally:
        _stop(proc)


@contextmanager
def worker(db_url: str, log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = log_dir / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "slotmill.cli", "worker"],
            cwd=ROOT,
            env=_env(db_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(0.2)
        if proc.poll() is not None:
            raise ProcessFailed(f"slotmill worker exited with {proc.returncode}: {_tail(log)}")
        yield proc
    finally:
        _stop(proc)


def log_dir(base: Path) -> Path:
    """Where the subprocesses' logs go (kept after the run, for reading when a row failed)."""
    path = base / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path
