"""`slotmill run`: database, migrations, demo tenant, API and worker as children; Ctrl-C stops
everything cleanly."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.jobs.test_worker_queue import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.read()


def _run(env: dict[str, str], port: int, out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as sink:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "slotmill.cli",
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def _run_and_stop(env: dict[str, str], tmp_path: Path, *, ready_timeout: float) -> tuple[str, list[int]]:
    """Start `slotmill run`, check what it serves, Ctrl-C it; (its output, child pids)."""
    port = _free_port()
    out = tmp_path / "run.log"
    proc = _run(env, port, out)
    children: list[int] = []
    try:
        wait_until(
            lambda: proc.poll() is not None or (_ready(port) and "Press Ctrl-C" in out.read_text()),
            timeout=ready_timeout,
            what="slotmill run to serve /readyz",
        )
        assert proc.poll() is None, out.read_text()
        children = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(children) >= 2, out.read_text()  # api and worker
        text = out.read_text()
        slots_url = next(line.split()[-1] for line in text.splitlines() if "demo slots" in line)
        status, body = _get(port, slots_url.removeprefix(f"http://127.0.0.1:{port}"))
        assert status == 200 and b'"starts_at"' in body
        assert _get(port, "/widget/")[0] == 200
        assert _get(port, "/")[0] == 200
        # The printed curl line works as pasted: the API got the admin key that was printed.
        curl = shlex.split(next(line for line in text.splitlines() if line.strip().startswith("try")))
        header = curl[curl.index("-H") + 1]
        request = urllib.request.Request(curl[-1], headers=dict([header.split(": ", 1)]))
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200 and json.loads(r.read())["slots"] > 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for pid in children:
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()
    return out.read_text(), children


def test_run_with_database_url(db_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SLOTMILL_HOME": str(tmp_path / "home"),
        "SLOTMILL_LOG_JSON": "false",
    }
    text, children = _run_and_stop(env, tmp_path, ready_timeout=120)
    assert "slotmill is running" in text and "/widget/" in text and "/openapi.json" in text
    assert "/metrics" in text and "demo slots" in text
    gone = [pid for pid in children if not psutil.pid_exists(pid)]
    assert gone == children, text
    assert "worker stopped" in text and "Application shutdown complete" in text
    # migrated and demo loaded into the database it was given, nothing embedded started: the
    # home holds only the admin key, private, and the one printed
    home = tmp_path / "home"
    assert [p.name for p in home.iterdir()] == ["admin_key"]
    assert stat.S_IMODE((home / "admin_key").stat().st_mode) == 0o600
    assert (home / "admin_key").read_text().strip() in text


@pytest.mark.slow
def test_run_with_embedded_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SLOTMILL_DATABASE_URL")}
    env.update(SLOTMILL_HOME=str(home), SLOTMILL_LOG_JSON="false")
    text, children = _run_and_stop(env, tmp_path, ready_timeout=240)
    assert "(embedded)" in text
    assert [pid for pid in children if psutil.pid_exists(pid)] == []

    def server_gone() -> bool:
        for p in psutil.process_iter(["name", "cmdline"]):
            try:
                if p.info["name"] == "postgres" and str(home) in " ".join(p.info["cmdline"] or []):
                    return False
            except psutil.Error:
                continue
        return True

    wait_until(server_gone, timeout=30, what="the embedded server to stop")
