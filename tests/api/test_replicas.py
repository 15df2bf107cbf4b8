"""Read replicas and the consistency token (api/replicas.py), against a real streaming replica.

A primary and a replica of our own (tests/pgcluster.py: initdb, pg_basebackup -R), the
schema migrated on the primary and streamed to the replica. The app reads slots from the
replica, holds on the primary, and a read that carries a hold's token never shows the held
slot as free, even while the replica's replay is paused: it waits for replay, or the
primary answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from slotmill.api import replicas
from slotmill.migrate import migrate
from tests.pgcluster import Cluster, Server, pg_bin, wait_for_replay
from tests.support import World, materialize, problem, running, seed_tenant, slots, today_in_zone

pytestmark = pytest.mark.slow


@dataclass
class Pair:
    cluster: Cluster
    primary: Server
    replica: Server
    world: World

    @property
    def primary_url(self) -> str:
        return self.primary.url("slotmill")

    @property
    def replica_url(self) -> str:
        return self.replica.url("slotmill")


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    if pg_bin() is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) on this machine")
    cluster = Cluster.create()
    try:
        primary = cluster.start_primary()
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE slotmill")
        migrate(primary.url("slotmill"))
        with psycopg.connect(primary.url("slotmill")) as conn:
            acme = seed_tenant(conn, "acme")
            other = seed_tenant(conn, "other")
            materialize(conn, "acme", "other")
        replica = cluster.start_replica()
        wait_for_replay(primary.url(), replica.url())
        world = World(primary.url("slotmill"), today_in_zone() + timedelta(days=3), acme, other)
        yield Pair(cluster, primary, replica, world)
    finally:
        cluster.stop()


def reads(served_by: str) -> float:
    return REGISTRY.get_sample_value("slotmill_reads_total", {"served_by": served_by}) or 0.0


def replay(url: str, paused: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


async def replica_serving(client: httpx.AsyncClient) -> dict[str, Any]:
    """/readyz once the app's probe has found the replica usable."""
    for _ in range(100):
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["replicas"] and body["replicas"][0]["ok"]:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the replica never became usable: {body}")


def test_reads_come_from_the_replica_and_a_token_never_shows_an_older_state(pair: Pair) -> None:
    w, a = pair.world, pair.world.acme

    async def main() -> None:
        async with running(pair.primary_url, read_database_url=pair.replica_url, read_consistency_wait_ms=50) as (
            app,
            c,
        ):
            ready = await replica_serving(c)
            assert ready["replicas"][0]["name"] == f"127.0.0.1:{pair.replica.port}"

            # A plain read is the replica's.
            before = reads("replica")
            free = await slots(c, w, a.cut, staff_id=str(a.ann))
            assert free and reads("replica") == before + 1

            # Replay stops; a hold commits on the primary and answers with its token.
            replay(pair.replica_url, paused=True)
            try:
                target = free[0]
                r = await c.post("/v1/tenants/acme/holds", json={"slot_id": target["id"]})
                assert r.status_code == 201, r.text
                token = r.headers[replicas.HEADER]
                assert r.json()["consistency"] == token

                # Without the token the replica answers, from before the hold: the slot is
                # still free there. This is what the token is for.
                stale = await slots(c, w, a.cut, staff_id=str(a.ann))
                assert target["id"] in {s["id"] for s in stale}

                # With it (header or query parameter), the replica cannot answer within the
                # wait, so the primary does: the held slot is not offered.
                before = reads("fallback")
                day = w.day.isoformat()
                q = {"service_id": str(a.cut), "from": day, "to": day, "staff_id": str(a.ann)}
                by_header = await c.get("/v1/tenants/acme/slots", params=q, headers={replicas.HEADER: token})
                by_param = await c.get("/v1/tenants/acme/slots", params={**q, "consistency": token})
                for resp in (by_header, by_param):
                    assert resp.status_code == 200, resp.text
                    assert target["id"] not in {s["id"] for s in resp.json()["slots"]}
                assert reads("fallback") == before + 2

                # The catalog honours the token the same way.
                cat = await c.get("/v1/tenants/acme/catalog", headers={replicas.HEADER: token})
                assert cat.status_code == 200 and reads("fallback") == before + 3

                # Replica lag shows in /readyz and /metrics while replay is paused.
                lag = await _lag_seen(c)
                assert lag["lag_bytes"] > 0 and lag["lag_seconds"] >= 0
                metrics = (await c.get("/metrics")).text
                assert f'slotmill_replica_lag_bytes{{replica="{lag["name"]}"}}' in metrics

                # Waiting: with a longer wait and replay resumed meanwhile, the replica
                # answers the tokened read itself, after it has replayed the hold.
                app.state.reads.wait_s = 10.0
                before = reads("replica")
                resume = asyncio.get_running_loop().run_in_executor(
                    None, lambda: (_sleep(0.3), replay(pair.replica_url, paused=False))
                )
                waited = await c.get("/v1/tenants/acme/slots", params=q, headers={replicas.HEADER: token})
                await resume
                assert waited.status_code == 200, waited.text
                assert target["id"] not in {s["id"] for s in waited.json()["slots"]}
                assert reads("replica") == before + 1
            finally:
                replay(pair.replica_url, paused=False)

    asyncio.run(main())


async def _lag_seen(c: httpx.AsyncClient) -> dict[str, Any]:
    for _ in range(100):
        r = await c.get("/readyz")
        rep: dict[str, Any] = r.json()["replicas"][0]
        if rep["lag_bytes"]:
            return rep
        await asyncio.sleep(0.1)
    raise AssertionError(f"no lag reported: {rep}")


def _sleep(s: float) -> None:
    import time

    time.sleep(s)


def test_a_replica_that_goes_down_sends_its_reads_to_the_primary(pair: Pair) -> None:
    w, a = pair.world, pair.world.acme

    async def main() -> None:
        async with running(pair.primary_url, read_database_url=pair.replica_url) as (_, c):
            await replica_serving(c)
            pair.cluster.stop_server(pair.replica, "immediate")
            try:
                before = reads("failover") + reads("primary")
                for _ in range(3):
                    assert await slots(c, w, a.cut, staff_id=str(a.ann))
                assert reads("failover") + reads("primary") == before + 3
                # Still ready: the primary answers; /readyz says which replica is out.
                r = await c.get("/readyz")
                assert r.status_code == 200
                for _ in range(50):
                    rep = (await c.get("/readyz")).json()["replicas"][0]
                    if rep["error"]:
                        break
                    await asyncio.sleep(0.1)
                assert rep["ok"] is False and rep["error"]
            finally:
                pair.cluster._start(pair.replica)
                wait_for_replay(pair.primary.url(), pair.replica.url())

    asyncio.run(main())


@pytest.mark.db
def test_a_malformed_token_is_a_422_naming_where_it_came_from(db_url: str) -> None:
    async def main() -> None:
        async with running(db_url) as (_, c):
            q = {"service_id": "00000000-0000-0000-0000-000000000001", "from": "2030-01-01", "to": "2030-01-01"}
            r = await c.get("/v1/tenants/acme/slots", params=q, headers={replicas.HEADER: "yesterday"})
            assert problem(r, 422)["field"] == f"header.{replicas.HEADER}"
            r = await c.get("/v1/tenants/acme/slots", params={**q, "consistency": "0/zz"})
            assert problem(r, 422)["field"] == "query.consistency"
            # A well-formed token without replicas: the primary answers anyway.
            r = await c.get("/v1/tenants/acme/catalog", headers={replicas.HEADER: "FFFFFFFF/0"})
            problem(r, 404, "tenant_not_found")

    asyncio.run(main())


def test_tokens_and_lag() -> None:
    assert replicas.parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert replicas.format_lsn(replicas.parse_lsn("0/1A2B3C8")) == "0/1A2B3C8"
    for bad in ("", "16", "16/", "/1", "g/1", "123456789/0", "1/2/3"):
        with pytest.raises(ValueError):
            replicas.parse_lsn(bad)
    router = replicas.ReadRouter(primary=None)  # type: ignore[arg-type]
    assert router._lag(5, 10.0) == (None, None)  # the primary was never probed
    router._history.extend([(1.0, 100), (2.0, 200), (3.0, 300)])
    assert router._lag(300, 3.5) == (0.0, 0)  # caught up with the last probe
    assert router._lag(150, 3.5) == (1.5, 150)  # the primary passed 150 by t=2
    assert router._lag(50, 3.5) == (2.5, 250)  # behind everything kept: at least since t=1
