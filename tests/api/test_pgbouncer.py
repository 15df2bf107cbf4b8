"""The API through a real PgBouncer in transaction mode (SPEC §16).

The test starts Debian's ``pgbouncer`` on a free port in front of the test database, with
two server connections for many client connections, so consecutive transactions of one
client land on different server sessions and concurrent clients share them. Reads, holds,
releases, confirms, the catalog and an admin refresh (its staging temp table) all go through
it, with ``SLOTMILL_API_PGBOUNCER`` set: no startup options, no prepared statements, no
session state. Skips, saying so, only where PgBouncer is not installed (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from slotmill.api import replicas
from tests.pgcluster import _user, free_port
from tests.support import World, bearer, db_rows, hold_ok, running, slots

ADMIN_KEY = "k" * 40


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )


@pytest.fixture
def bouncer(world: World) -> Iterator[str]:
    """A PgBouncer in transaction mode in front of the test server; the world's database URL
    through it."""
    binary = pgbouncer_binary()
    if binary is None:
        pytest.skip("PgBouncer is not installed (apt-get install pgbouncer; .ci/run does it)")
    target = conninfo_to_dict(world.url)
    user = _user()
    root = Path(tempfile.mkdtemp(prefix="slotmill-pgbouncer-"))
    if user is not None:
        shutil.chown(root, user)
    port = free_port()
    (root / "userlist.txt").write_text(f'"{target.get("user", "postgres")}" ""\n')
    (root / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={target.get('host', '127.0.0.1')} port={target.get('port', 5432)}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {root / 'userlist.txt'}",
                "pool_mode = transaction",
                # Few server sessions for many clients, taken in turn (not the last one used):
                # consecutive transactions of one client land on different sessions, so
                # session state would show.
                "default_pool_size = 2",
                "server_round_robin = 1",
                "max_client_conn = 200",
                f"logfile = {root / 'pgbouncer.log'}",
                "",
            ]
        )
    )
    for f in root.iterdir():
        if user is not None:
            shutil.chown(f, user)
    proc = subprocess.Popen([binary, str(root / "pgbouncer.ini")], user=user, cwd=root, stderr=subprocess.PIPE)
    url = f"postgresql://{target.get('user', 'postgres')}@127.0.0.1:{port}/{target['dbname']}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    log = (root / "pgbouncer.log").read_text() if (root / "pgbouncer.log").exists() else ""
                    raise RuntimeError(f"pgbouncer did not start: {err}{log}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(root, ignore_errors=True)


def test_pgbouncer_refuses_the_startup_options_the_direct_connections_use(bouncer: str) -> None:
    # Why SLOTMILL_API_PGBOUNCER exists: the statement timeout cannot travel in `options`.
    with pytest.raises(psycopg.OperationalError, match="options"):
        psycopg.connect(bouncer, options="-c statement_timeout=1000").close()


def test_reads_holds_and_confirms_through_pgbouncer(world: World, bouncer: str) -> None:
    w, a = world, world.acme

    async def main() -> None:
        async with running(bouncer, api_pgbouncer=True, pool_max_size=8, admin_key=ADMIN_KEY) as (_, c):
            assert (await c.get("/readyz")).status_code == 200
            cat = await c.get("/v1/tenants/acme/catalog")
            assert cat.status_code == 200 and cat.json()["tenant"]["slug"] == "acme"

            # Many reads at once, per staff (the statement that is prepared on direct
            # connections) and any staff, over 8 client connections and 2 server sessions.
            per_staff, by_time = await asyncio.gather(
                asyncio.gather(*(slots(c, w, a.cut, staff_id=str(a.ann)) for _ in range(12))),
                asyncio.gather(*(slots(c, w, a.cut, group="time") for _ in range(12))),
            )
            assert all(r == per_staff[0] for r in per_staff) and per_staff[0]
            assert all(r == by_time[0] for r in by_time) and by_time[0]

            # Holds: by slot id, and by time with any staff member (savepoints per candidate).
            held = await asyncio.gather(
                *(hold_ok(c, a, {"slot_id": s["id"]}) for s in per_staff[0][:4]),
                hold_ok(c, a, {"service_id": str(a.cut), "starts_at": by_time[0][-1]["starts_at"]}),
            )
            assert len({h["hold_id"] for h in held}) == 5
            assert all(h["consistency"] for h in held)
            taken = await c.post("/v1/tenants/acme/holds", json={"slot_id": per_staff[0][0]["id"]})
            assert taken.status_code == 409, taken.text

            # Confirm (the host's transaction on the sync pool), release, and a refresh that
            # stages its rows in a temp table.
            confirmed = await c.post(
                f"/v1/tenants/acme/holds/{held[0]['hold_id']}/confirm",
                json={"customer_ref": "c-1"},
                headers=bearer(a.key),
            )
            assert confirmed.status_code == 201, confirmed.text
            assert confirmed.headers[replicas.HEADER]
            released = await c.delete(f"/v1/tenants/acme/holds/{held[1]['hold_id']}")
            assert released.status_code == 204 and released.headers[replicas.HEADER]
            refreshed = await c.post(
                "/v1/admin/recalculate", json={"tenant": "acme", "wait": True}, headers=bearer(ADMIN_KEY)
            )
            assert refreshed.status_code == 200, refreshed.text

            after = {s["starts_at"] for s in await slots(c, w, a.cut, staff_id=str(a.ann))}
            assert per_staff[0][0]["starts_at"] not in after  # confirmed
            assert per_staff[0][1]["starts_at"] in after  # released
            assert per_staff[0][2]["starts_at"] not in after  # still held

    asyncio.run(main())
    statuses = db_rows(world.url, "SELECT status, count(*) FROM bookings GROUP BY status ORDER BY status")
    assert statuses == [("cancelled", 1), ("confirmed", 1), ("held", 3)]


def test_live_updates_through_pgbouncer_poll_instead_of_listening(world: World, bouncer: str) -> None:
    """A LISTEN through PgBouncer in transaction mode would be lost with its server
    connection: the API's event hub polls there, and a hold still reaches an open stream."""
    from dataclasses import replace

    from tests.api.test_api_events import hold as hold_direct
    from tests.api.test_api_events import number, serving, slot_ids, stream

    w, a = world, world.acme
    number(w.url)
    first = slot_ids(w)[0]

    async def body(base: str) -> None:
        async with stream(base, "acme", service_id=str(a.cut)) as s:
            ready = await s.next()
            assert ready["event"] == "ready"
            hold_direct(w.url, "acme", first)
            number(w.url)
            msg = await s.next()
            assert msg["event"] == "slots.changed" and int(msg["id"]) == int(ready["id"]) + 1

    with serving(replace(w, url=bouncer), api_pgbouncer=True, events_poll_seconds=0.1) as base:
        asyncio.run(body(base))
        # and it made no LISTEN connection of its own
        listening = db_rows(
            w.url,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'slotmill-api-events'",
        )
        assert listening == [(0,)]
