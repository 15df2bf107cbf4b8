"""Deployment: compose.yaml's services run as written, the image is sane, the lock is
complete, and every SLOTMILL_* variable the code reads is documented.

No Docker engine is needed: each slotmill service of compose.yaml is run natively with the
same arguments and environment it would get in its container (the test database standing in
for DATABASE_URL, .env.example for the git-ignored .env, a free port for the API's).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict
from pydantic import AliasChoices

from slotmill import seed
from slotmill.config import Settings
from slotmill.sql import migrations
from tests.testdb import with_database

ROOT = Path(__file__).resolve().parents[2]
# The console script of the environment running the tests (.venv/bin/slotmill).
BIN = Path(sys.executable).parent
# Guards against a hung process, not performance thresholds: generous on a loaded machine.
DEADLINE_S = 90.0
CODE_DIRS = ("slotmill", "api", "jobs", "materializer", "bench")


# -- reading compose.yaml, .env.example and the Dockerfile -----------------------------------


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


_VAR = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""

    def sub(m: re.Match[str]) -> str:
        if m["dollar"]:
            return "$"
        name = m["name"] or m["bare"]
        op = m["op"] or ""
        current = env.get(name)
        missing = current is None or (op.startswith(":") and current == "")
        if op.endswith("-"):
            return m["arg"] if missing else str(current)
        if op.endswith("?"):
            assert not missing, f"compose would refuse to start: {name}: {m['arg']}"
        return current or ""

    return _VAR.sub(sub, value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def exec_form(instruction: str) -> list[str]:
    args = [rest for word, rest in final_stage() if word == instruction]
    assert args, f"Dockerfile: no {instruction} in the final stage"
    value = json.loads(args[-1])
    assert isinstance(value, list), f"Dockerfile: {instruction} not in exec form"
    return [str(v) for v in value]


def as_argv(value: str | list[Any]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


@dataclass
class Invocation:
    argv: list[str]
    env: dict[str, str]


def invocation(service: str, database_url: str) -> Invocation:
    """The service's process as its container would start it, with this machine's paths."""
    svc = compose()["services"][service]
    example = read_env_file(ROOT / ".env.example")
    entrypoint = as_argv(svc["entrypoint"]) if "entrypoint" in svc else exec_form("ENTRYPOINT")
    command = as_argv(svc["command"]) if "command" in svc else exec_form("CMD")
    argv = [interpolate(a, example) for a in [*entrypoint, *command]]
    assert argv[0] == "slotmill", f"{service}: runs {argv[0]!r}, not the slotmill CLI"
    argv[0] = str(BIN / "slotmill")

    env: dict[str, str] = {}
    env_files = svc.get("env_file", [])
    for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
        name = entry["path"] if isinstance(entry, dict) else entry
        path = ROOT / name
        # .env holds the real secrets and is never committed: its template stands in.
        env.update(read_env_file(path.with_name(".env.example") if path.name == ".env" else path))
    environment = svc.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    for key, value in environment.items():
        if value is not None:  # a bare name passes the host's value through: none here
            env[key] = interpolate(str(value), example)
    assert "DATABASE_URL" in env, f"{service}: no DATABASE_URL in its environment"
    env["DATABASE_URL"] = database_url
    # Only what any process needs from the host: a container gets no other variables either.
    host = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return Invocation(argv, {**host, **env})


# -- processes -------------------------------------------------------------------------------


@dataclass
class Started:
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.log.name} (exit {self.proc.poll()}):\n" + "\n".join(text[-lines:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # The whole process group: uvicorn or the worker may have children of their own.
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 20.0)):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    with suppress(ProcessLookupError):  # children left behind by a parent that exited
        os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def running(inv: Invocation, cwd: Path, log: Path) -> Iterator[Started]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            inv.argv,
            env=inv.env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Started(proc, log)
    finally:
        _stop(proc)


def wait_for(what: str, check: Callable[[], bool], started: list[Started]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        for s in started:
            if s.proc.poll() is not None:
                pytest.fail(f"{what}: a process exited early\n{s.tail()}")
        if check():
            return
        if time.monotonic() > deadline:
            logs = "\n".join(s.tail() for s in started)
            pytest.fail(f"{what}: not after {DEADLINE_S:.0f}s\n{logs}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def replace_port(argv: list[str], port: int) -> int:
    """Point ``--port`` at ``port``; returns the container port it had."""
    i = argv.index("--port")
    container_port = int(argv[i + 1])
    argv[i + 1] = str(port)
    return container_port


# -- the services, run natively --------------------------------------------------------------


def test_compose_migrate_applies_and_is_idempotent(db_url: str, tmp_path: Path) -> None:
    blank = f"{conninfo_to_dict(db_url)['dbname']}_blank"
    blank_url = with_database(db_url, blank)
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(blank)))
    try:
        # A blank database gets every migration; again (a restarted one-shot) and on the
        # already current test database, migrate changes nothing and still exits 0.
        for url, expect in (
            (blank_url, "applied migrations"),
            (blank_url, "schema is current"),
            (db_url, "schema is current"),
        ):
            inv = invocation("migrate", url)
            done = subprocess.run(
                inv.argv,
                env=inv.env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=DEADLINE_S,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert expect in done.stdout, done.stdout + done.stderr
        with psycopg.connect(blank_url) as c:
            rows = c.execute("SELECT version FROM slotmill_migrations ORDER BY 1").fetchall()
        versions = [r[0] for r in rows]
        assert versions == [m.version for m in migrations()]
    finally:
        with psycopg.connect(db_url, autocommit=True) as c:
            drop = pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            c.execute(drop.format(pgsql.Identifier(blank)))


def test_compose_api_answers_readyz_and_its_healthcheck_passes(db_url: str, tmp_path: Path) -> None:
    svc = compose()["services"]["api"]
    inv = invocation("api", db_url)
    port = free_port()
    container_port = replace_port(inv.argv, port)
    published = [str(p) for p in svc["ports"]]
    assert any(p.endswith(f":{container_port}") for p in published), "not the API's port"

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    with running(inv, tmp_path, tmp_path / "api.log") as api:
        wait_for("GET /readyz answers 200", ready, [api])
        # The healthcheck compose runs inside the container, here with this venv's python.
        test = as_argv(svc["healthcheck"]["test"])
        assert test[0] == "CMD" and test[1] == "python", test
        probe = [sys.executable, *(a.replace(f":{container_port}/", f":{port}/") for a in test[2:])]
        done = subprocess.run(probe, capture_output=True, text=True, timeout=DEADLINE_S)
        assert done.returncode == 0, done.stderr + "\n" + api.tail()


def test_compose_workers_drain_the_queue_together(db_url: str, tmp_path: Path) -> None:
    from slotmill.materializer.loader import load_tenant
    from slotmill.materializer.verify import verify

    replicas = int(compose()["services"]["worker"].get("deploy", {}).get("replicas", 1))
    with psycopg.connect(db_url, autocommit=True) as db:
        with db.transaction():
            tenant_id = seed.tenant(db, "deploy", horizon_days=14)
            staff_id = seed.staff(db, tenant_id, "Ada")
            seed.service(db, tenant_id, "Visit", 30, staff_ids=[staff_id])
            seed.template(db, tenant_id, staff_id, range(1, 8), "09:00", "17:00")

        def count(query: str, *params: object) -> int:
            row = db.execute(query, params).fetchone()
            assert row is not None
            return int(row[0])

        def queue() -> int:
            return count("SELECT count(*) FROM recompute_requests")

        day = datetime.combine(datetime.now(UTC).date() + timedelta(days=3), dtime(0), tzinfo=UTC)

        def slots_that_day() -> int:
            return count(
                "SELECT count(*) FROM availability_slots WHERE tenant_id = %s AND staff_id = %s"
                " AND starts_at >= %s AND starts_at < %s",
                tenant_id,
                staff_id,
                day,
                day + timedelta(days=1),
            )

        assert queue() > 0, "the source rows enqueued nothing"
        assert count("SELECT count(*) FROM availability_slots") == 0

        with ExitStack() as stack:
            workers = [
                stack.enter_context(running(invocation("worker", db_url), tmp_path, tmp_path / f"worker{i}.log"))
                for i in range(replicas)
            ]
            # Each replica up (its signal handlers set), so both share the queue from here on.
            wait_for(
                "every worker started",
                lambda: all("worker started" in w.log.read_text() for w in workers),
                workers,
            )
            # The backlog written before any worker ran (a poll or startup drain finds it).
            wait_for("the backlog drained", lambda: queue() == 0 and slots_that_day() > 0, workers)
            assert slots_that_day() == 16  # 09:00-17:00 in 30-minute slots

            # A change while the workers listen: that day's time off removes its slots.
            seed.time_off(db, tenant_id, staff_id, day, day + timedelta(days=1), "deploy test")
            wait_for("time off applied", lambda: queue() == 0 and slots_that_day() == 0, workers)

            drift = verify(db, load_tenant(db, "deploy"))
            assert drift.total == 0, drift

            # `docker compose stop` sends SIGTERM (tini forwards it): a clean exit, status 0.
            for w in workers:
                os.killpg(w.proc.pid, signal.SIGTERM)
            for w in workers:
                assert w.proc.wait(timeout=DEADLINE_S) == 0, w.tail()


# -- static checks ---------------------------------------------------------------------------


def test_compose_wiring() -> None:
    c = compose()
    services = c["services"]
    assert {"postgres", "migrate", "api", "worker"} <= services.keys()

    pg = services["postgres"]
    major = int(re.fullmatch(r"postgres:(\d+)(?:[.-].*)?", pg["image"])[1])  # type: ignore[index]
    assert major >= 15, "slotmill needs PostgreSQL 15 or newer"
    assert "pg_isready" in " ".join(as_argv(pg["healthcheck"]["test"]))
    volume = pg["volumes"][0].split(":")[0]
    assert volume in (c.get("volumes") or {}), "postgres data must live in a named volume"

    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    assert "/readyz" in " ".join(as_argv(services["api"]["healthcheck"]["test"]))
    assert int(services["worker"]["deploy"]["replicas"]) >= 2

    for name in ("migrate", "api", "worker"):
        svc = services[name]
        assert svc.get("env_file") in (".env", [".env"]), f"{name}: secrets come from .env"
        environment = svc.get("environment") or {}
        assert "SLOTMILL_ADMIN_KEY" not in environment, f"{name}: no secret in compose.yaml itself"

    assert ".env" in (ROOT / ".gitignore").read_text().split(), ".env must stay out of git"
    example = read_env_file(ROOT / ".env.example")
    assert {"SLOTMILL_ADMIN_KEY", "POSTGRES_PASSWORD"} <= example.keys()


def test_dockerfile_is_sane() -> None:
    instructions = dockerfile_instructions()
    froms = [rest.split()[0] for word, rest in instructions if word == "FROM"]
    assert froms and all(f.startswith("python:3.11-slim") for f in froms), froms

    stage = final_stage()
    users = [rest for word, rest in stage if word == "USER"]
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]
    assert exec_form("ENTRYPOINT") == ["slotmill"]
    assert exec_form("CMD") == ["api", "--host", "0.0.0.0", "--port", "8000"]

    # The lock is installed, then the project itself without resolving anything further.
    runs = [rest for word, rest in instructions if word == "RUN"]
    lock_at = next(i for i, r in enumerate(runs) if "-r /tmp/requirements.lock" in r)
    project_at = next(i for i, r in enumerate(runs) if re.search(r"install --no-deps /src\b", r))
    assert lock_at < project_at
    assert any("requirements.lock" in rest for word, rest in instructions if word == "COPY")

    # Every package the wheel ships is copied in and let through .dockerignore's whitelist.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = {rest.split()[0].rstrip("/") for word, rest in instructions if word == "COPY"}
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert ignore[0] == "*", ".dockerignore must be a whitelist: secrets such as .env stay out"
    for pkg in packages:
        assert pkg in copied, f"Dockerfile does not COPY {pkg}/"
        assert f"!{pkg}/" in ignore, f".dockerignore does not let {pkg}/ through"
    assert not any(line.startswith("!.env") for line in ignore)


def runtime_closure() -> dict[str, str]:
    """Installed versions of everything the project needs at run time (no extras), with
    markers evaluated for this interpreter: CPython 3.11 on Linux, like the image."""
    found: dict[str, str] = {}

    def walk(dist: str, extras: frozenset[str]) -> None:
        for spec in md.distribution(dist).requires or []:
            req = Requirement(spec)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(e) for e in envs):
                continue
            name = canonicalize_name(req.name)
            first = name not in found
            found[name] = md.version(req.name)
            if first or req.extras:
                walk(req.name, frozenset(req.extras))

    walk("slotmill", frozenset())
    return found


def test_requirements_lock_is_the_runtime_closure() -> None:
    lock: dict[str, str] = {}
    for raw in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements.lock: not pinned with ==: {raw!r}"
            lock[canonicalize_name(name)] = version
    installed = runtime_closure()
    hint = "requirements.lock is stale: run `make lock`"
    assert sorted(installed.keys() - lock.keys()) == [], f"missing from the lock; {hint}"
    assert sorted(lock.keys() - installed.keys()) == [], f"not a runtime dependency; {hint}"
    differ = {n: (lock[n], v) for n, v in installed.items() if lock[n] != v}
    assert differ == {}, f"lock != .venv; {hint}"


# -- documentation ---------------------------------------------------------------------------


def env_vars_read_by_code() -> set[str]:
    names: set[str] = set()
    prefix = str(Settings.model_config.get("env_prefix", ""))
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    for top in CODE_DIRS:
        for path in (ROOT / top).rglob("*.py"):
            names.update(re.findall(r"\bSLOTMILL_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    return names


def test_every_environment_variable_is_documented() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    names = env_vars_read_by_code() | {"DATABASE_URL"}
    assert "SLOTMILL_ADMIN_KEY" in names  # the scan itself works
    undocumented = sorted(n for n in names if not re.search(rf"\b{n}\b", doc))
    assert not undocumented, f"add to docs/operations.md (configuration): {undocumented}"


def test_every_schema_object_is_documented(conn: psycopg.Connection[Any]) -> None:
    """docs/operations.md tells a DBA what the migrations create: read it off a migrated
    database, so a new migration's tables, functions and triggers cannot go unmentioned."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    in_schema = "n.oid = {}.{} AND n.nspname = current_schema()"
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c, pg_namespace n WHERE "
            + in_schema.format("c", "relnamespace")
            + " AND c.relkind IN ('r', 'p')"
        )
    ]
    functions = [
        r[0]
        for r in conn.execute(
            "SELECT p.proname FROM pg_proc p, pg_namespace n WHERE "
            + in_schema.format("p", "pronamespace")
            # not the functions of extensions (btree_gist's)
            + " AND NOT EXISTS (SELECT 1 FROM pg_depend d"
            + " WHERE d.objid = p.oid AND d.deptype = 'e')"
        )
    ]
    triggers = conn.execute(
        "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid,"
        " pg_namespace n WHERE " + in_schema.format("c", "relnamespace") + " AND NOT t.tgisinternal"
    ).fetchall()
    assert "bookings" in tables and "slotmill_staff_lock_key" in functions and triggers

    def named(name: str) -> bool:
        return re.search(rf"`{re.escape(name)}`", doc) is not None

    missing = [t for t in tables if not named(t)] + [f for f in functions if not named(f)]
    for trigger, table in triggers:
        # Triggers made per table by a helper are documented as a `<table>_suffix` pattern.
        pattern = "<table>" + trigger[len(table) :] if trigger.startswith(table) else None
        if not named(trigger) and not (pattern and named(pattern)):
            missing.append(f"trigger {trigger} on {table}")
    assert not missing, f"list in docs/operations.md (existing PostgreSQL): {missing}"
    assert named("btree_gist")


_METRIC = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*\"(slotmill_[a-z0-9_]+)\"")


def test_every_metric_is_documented() -> None:
    """The metrics table of docs/operations.md names exactly the metrics the code defines."""
    defined = {
        name for top in CODE_DIRS for path in (ROOT / top).rglob("*.py") for name in _METRIC.findall(path.read_text())
    }
    doc = (ROOT / "docs" / "operations.md").read_text()
    table = set(re.findall(r"^\| `(slotmill_[a-z0-9_]+)`", doc, re.MULTILINE))
    assert "slotmill_http_request_duration_seconds" in defined  # the scan itself works
    assert sorted(defined - table) == [], "undocumented metrics: add them to the metrics table"
    assert sorted(table - defined) == [], "documented metrics the code no longer defines"
