"""Property-based run of schemathesis over /openapi.json against the real server (uvicorn
on a free port, a seeded database): no 5xx, and every answer matches the document
(status code, content type, headers, body schema), in chains of calls that follow the
document's links too. Bounded to about a minute (--max-time).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from slotmill.api.app import create_app
from tests.support import World, db_rows, settings_for

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(world: World) -> Iterator[str]:
    """uvicorn in a thread of this process, so the test database stays the fixture's."""
    port = _free_port()
    # The admin key is the tenant key, so the one Authorization header schemathesis sends
    # gets through to the code behind both kinds of auth.
    app = create_app(settings_for(world.url, admin_key=world.acme.key, demo_mode=True))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz/db", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise
                time.sleep(0.1)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _config(world: World, path: Path) -> Path:
    # Pin the tenant and the service, so that generated requests reach the database and the
    # 200/201 answers get checked too, not only the 404s of random slugs. Half of the holds
    # ask for a slot that exists, so that holds succeed and the links of their answers
    # (hold -> confirm -> cancel or reschedule) lead somewhere.
    slot_ids = [
        r[0]
        for r in db_rows(
            world.url,
            "SELECT id FROM availability_slots WHERE tenant_id = %s AND starts_at >= %s ORDER BY starts_at, id",
            (world.acme.id, world.at("00:00")),
        )
    ]
    path.write_text(
        f'[parameters]\nslug = "{world.acme.slug}"\nservice_id = "{world.acme.cut}"\n'
        '"body.slot_id" = { dictionary = "slots", probability = 0.5 }\n'
        f"[dictionaries.slots]\nvalues = {json.dumps(slot_ids)}\n"
        "[generation]\nallow-x00 = false\n"
    )
    return path


def _schemathesis(base: str, config: Path, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{base}/openapi.json",
            "--checks",
            CHECKS,
            "--header",
            f"Authorization: Bearer {key}",
            "--seed",
            "20261122",
            # One worker: with two threads, hypothesis' lambda descriptions call ast.parse
            # concurrently, which CPython 3.11 can fail with "AST constructor recursion depth
            # mismatch" (a SystemError, seen in CI-like runs; python/cpython#106905).
            "--workers",
            "1",
            "--request-timeout",
            "20",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=config.parent,
    )
    print(done.stdout[-6000:])
    return done


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(world: World, tmp_path: Path) -> None:
    config = _config(world, tmp_path / "schemathesis.toml")
    with serving(world) as base:
        # First the stateful phase alone, on a database no other phase has touched: it
        # follows the document's links, so any confirmed booking below came from a hold id
        # a 201 answer gave. The demo confirm is left out of it: schemathesis would start
        # every scenario there (by its heuristics, the only operation likely to succeed
        # without earlier data) and never reach the holds; the other phases cover it. So is
        # the console's list of tenants, for the same reason (its slugs feed every operation).
        chain = _schemathesis(
            base,
            config,
            world.acme.key,
            "--phases",
            "stateful",
            "--exclude-operation-id",
            "demo_confirm",
            "--exclude-operation-id",
            "admin_tenants",
            # events14: a live-update stream never ends by itself (tests/api/test_api_events.py)
            "--exclude-operation-id",
            "stream_events",
            # The rules API's hundred operations would take the whole time from the booking
            # chain; the other phases below cover them.
            "--exclude-tag",
            "rules",
            # one worker (see _schemathesis): time enough to reach hold -> confirm
            "--max-time",
            "45",
        )
        assert chain.returncode == 0, chain.stdout[-8000:] + chain.stderr[-2000:]
        confirmed = db_rows(world.url, "SELECT count(*) FROM bookings WHERE confirmed_at IS NOT NULL")
        assert confirmed[0][0] > 0, "the stateful run followed no hold -> confirm link"
        done = _schemathesis(
            base,
            config,
            world.acme.key,
            "--phases",
            "examples,coverage,fuzzing",
            "--exclude-operation-id",
            "stream_events",
            "--max-examples",
            os.environ.get("SLOTMILL_SCHEMATHESIS_EXAMPLES", "25"),
            "--max-time",
            "40",
        )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
