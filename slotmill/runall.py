"""`slotmill run`: everything for a first look (SPEC §10).

Resolves the database (the embedded server unless ``DATABASE_URL`` is set), migrates it,
loads the demo tenant when there is no tenant at all, then runs ``slotmill api`` and
``slotmill worker`` as child processes pointed at that database, prints where to look, and
on Ctrl-C or SIGTERM stops both and lets the embedded server stop.

The API child gets an admin key, so the admin endpoints work on a first look instead of
answering 503: ``SLOTMILL_ADMIN_KEY`` when set, else a key made once and kept in
``SLOTMILL_HOME/admin_key`` (mode 0600) for later runs. It is printed with the URLs.

The children get process groups of their own, so a Ctrl-C in the terminal reaches only this
process, which then stops each child exactly once (a second signal would make uvicorn skip
its graceful shutdown). On Linux the children also die with this process if it is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType

import psycopg
from psycopg.conninfo import conninfo_to_dict

from slotmill.config import Settings, get_settings
from slotmill.db import resolve_database_url
from slotmill.demo import DEMO_SLUG
from slotmill.migrate import migrate

log = logging.getLogger("slotmill.run")

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
ADMIN_KEY_FILE = "admin_key"


@dataclass(frozen=True)
class AdminKey:
    secret: str
    path: Path | None  # where it is kept; None: it came from SLOTMILL_ADMIN_KEY


def admin_key(settings: Settings) -> AdminKey:
    """SLOTMILL_ADMIN_KEY if set, else the key kept under SLOTMILL_HOME, made on first use."""
    if settings.admin_key:
        return AdminKey(settings.admin_key, None)
    path = (settings.home / ADMIN_KEY_FILE).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two first runs at once cannot both write; the loser reads the winner's.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            log.warning("%s was readable by others; made it private (0600)", path)
            path.chmod(0o600)
        secret = path.read_text().strip()
        if secret:
            return AdminKey(secret, path)
        # Empty: a run died between creating and writing it. Write one now.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return AdminKey(secret, path)


def _admin_lines(base: str, key: AdminKey, demo: bool) -> list[str]:
    if key.path is None:
        lines = ["  admin key   $SLOTMILL_ADMIN_KEY (from the environment)"]
        bearer = '"Authorization: Bearer $SLOTMILL_ADMIN_KEY"'
    else:
        lines = [f"  admin key   {key.secret}  (kept in {key.path})"]
        bearer = shlex.quote(f"Authorization: Bearer {key.secret}")
    if demo:
        lines.append(f"  try         curl -sS -H {bearer} {base}/v1/admin/tenants/{DEMO_SLUG}/status")
    return lines


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask Linux to SIGTERM it when we die.
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "slotmill.cli", *args],
        env=env,
        process_group=0,
        preexec_fn=_die_with_parent,
    )


def _ensure_demo(url: str) -> str | None:
    """Load the demo tenant if the database has no tenant; the demo's slot URL query."""
    from slotmill.demo import demo_exists, load_demo
    from slotmill.materializer.horizon import local_date
    from slotmill.materializer.loader import load_tenant
    from slotmill.materializer.refresh import refresh

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT EXISTS (SELECT 1 FROM tenants)").fetchone()
        if not (row and row[0]):
            print("loading the demo tenant ...", flush=True)
            load_demo(conn)
            conn.commit()
            tenant = load_tenant(conn, DEMO_SLUG)
            refresh(conn, tenant)
            # The rows just written queued recomputes of what refresh already covered.
            conn.execute("DELETE FROM recompute_requests WHERE tenant_id = %s", (tenant.id,))
            conn.commit()
        if not demo_exists(conn):
            return None
        tenant = load_tenant(conn, DEMO_SLUG)
        service = conn.execute(
            "SELECT id FROM services WHERE tenant_id = %s AND active ORDER BY name = 'Haircut' DESC, name LIMIT 1",
            (tenant.id,),
        ).fetchone()
    if service is None:
        return None
    today = local_date(int(time.time()), tenant.zone)
    week = today + timedelta(days=6)
    return f"/v1/tenants/{DEMO_SLUG}/slots?service_id={service[0]}&from={today}&to={week}"


def _describe(url: str) -> str:
    """Where the database is, without its password."""
    try:
        p = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(DATABASE_URL)"
    host = p.get("host") or "localhost"
    where = f"{host}:{p['port']}" if p.get("port") and not str(host).startswith("/") else str(host)
    return f"{p.get('dbname', '')} on {where}"


def _wait_ready(base: str, api: subprocess.Popen[bytes], stop: threading.Event) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not stop.is_set():
        if api.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(0.2)
    return False


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> bool:
    """SIGTERM every child still running, wait, then SIGKILL stragglers; True if all ended
    cleanly by themselves."""
    clean = True
    for p in children.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for name, p in children.items():
        try:
            code = p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", name)
            p.kill()
            code = p.wait()
        # uvicorn re-raises the signal it shut down for, so "killed by SIGTERM" after a
        # graceful stop is a clean exit too.
        if code not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
            log.warning("%s exited with status %s", name, code)
            clean = False
    return clean


def run_all(host: str, port: int) -> int:
    settings = get_settings()
    embedded = not settings.database_url
    if embedded:
        print(f"starting the embedded PostgreSQL under {settings.home} ...", flush=True)
    url = resolve_database_url(settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children: dict[str, subprocess.Popen[bytes]] = {}
    key = admin_key(settings)
    try:
        applied = migrate(url)
        if applied:
            print(f"applied migrations {', '.join(map(str, applied))}", flush=True)
        demo_path = _ensure_demo(url)

        env = {k: v for k, v in os.environ.items() if k != "SLOTMILL_DATABASE_URL"}
        env["DATABASE_URL"] = url
        children["api"] = _spawn(
            ["api", "--host", host, "--port", str(port), "--workers", "1"],
            {**env, "SLOTMILL_DEMO_MODE": "1", "SLOTMILL_ADMIN_KEY": key.secret},
        )
        children["worker"] = _spawn(["worker"], env)

        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{port}"
        if not _wait_ready(base, children["api"], stop):
            if stop.is_set():
                return 0 if _stop(children) else 1
            print(f"slotmill: error: the API did not become ready at {base}/readyz", file=sys.stderr)
            _stop(children)
            return 1
        lines = [
            "",
            "slotmill is running",
            f"  API         {base}/",
            f"  widget      {base}/widget/?tenant={DEMO_SLUG}",
            f"  console     {base}/admin/  (sign in with the admin key below)",
            f"  OpenAPI     {base}/openapi.json",
            f"  metrics     {base}/metrics",
        ]
        if demo_path:
            lines.append(f"  demo slots  {base}{demo_path}")
        lines += _admin_lines(base, key, demo_path is not None)
        lines += [
            f"  database    {_describe(url)}{' (embedded)' if embedded else ''}",
            f"  processes   api pid {children['api'].pid}, worker pid {children['worker'].pid}",
            "  CLI         in another terminal: make shell, then slotmill --help",
            "Press Ctrl-C to stop.",
            "",
        ]
        print("\n".join(lines), flush=True)

        while not stop.wait(0.5):
            ended = [name for name, p in children.items() if p.poll() is not None]
            if ended:
                print(f"slotmill: error: {', '.join(ended)} exited; stopping", file=sys.stderr)
                _stop(children)
                return 1
        print("stopping ...", flush=True)
        return 0 if _stop(children) else 1
    finally:
        if any(p.poll() is None for p in children.values()):
            _stop(children)
        for s, handler in previous.items():
            signal.signal(s, handler)
        if embedded:
            from slotmill.embedded import embedded_server

            # Lets go of this process's handle: the server stops when no process holds one.
            embedded_server(settings.home).stop()
