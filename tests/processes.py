"""Real ``slotmill api`` processes for the scale-out tests (several processes, several
uvicorn workers, a shared rate-limit store).

No tests here; the test modules start what they need and every process is stopped when
its block ends (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.pgcluster import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ApiProcess:
    base: str
    pid: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def api_process(db_url: str, log: Path, *, workers: int = 1, env: dict[str, str] | None = None) -> Iterator[ApiProcess]:
    """``slotmill api --workers N`` on a free loopback port, answering /healthz."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SLOTMILL_")}
    full_env = {k: v for k, v in inherited.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    full_env.update(
        {
            "DATABASE_URL": db_url,
            "SLOTMILL_POOL_MIN_SIZE": "1",
            "SLOTMILL_POOL_MAX_SIZE": "4",
            "SLOTMILL_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
    )
    cmd = [sys.executable, "-m", "slotmill.cli", "api", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--workers", str(workers)], cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"slotmill api exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"slotmill api did not answer within 60 s: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield ApiProcess(base, proc.pid, log)
    finally:
        stop(proc)
