"""Rate limits shared by several API processes through Redis (SPEC §16, api/ratelimit.py).

Two real ``slotmill api`` processes count one client address in one Redis: the limit holds
across both. With the store stopped, requests still succeed (each process falls back to its
own in-memory limit) and the processes log why. Uses the machine's Redis at
127.0.0.1:6379 when it answers, else a ``redis-server`` of its own; the outage part always
stops a server of its own, never the machine's. Each test counts a client address of its
own (X-Forwarded-For from a trusted peer), so runs sharing a Redis never meet.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from tests.pgcluster import free_port
from tests.processes import api_process, stop
from tests.support import World, run

pytestmark = pytest.mark.slow

MACHINE_REDIS = "redis://127.0.0.1:6379/0"


def answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


@contextmanager
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary to start a Redis of the test's own (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="slotmill-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield url, proc
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def client_address() -> str:
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def limited_env(store: str) -> dict[str, str]:
    return {
        "SLOTMILL_RATE_LIMIT_READS": "5",
        "SLOTMILL_RATE_LIMIT_STORAGE": store,
        # The test's peer is a proxy: X-Forwarded-For names the client (a fresh one per test).
        "SLOTMILL_TRUST_FORWARDED_FOR": "true",
    }


def read(base: str, address: str) -> int:
    return httpx.get(f"{base}/v1/tenants/acme/catalog", headers={"X-Forwarded-For": address}, timeout=10).status_code


def test_the_limit_holds_across_two_api_processes(world: World, tmp_path: Path) -> None:
    with ExitStack() as stack:
        store = MACHINE_REDIS if answers(MACHINE_REDIS) else stack.enter_context(own_redis())[0]
        env = limited_env(store)
        with (
            api_process(world.url, tmp_path / "a.log", env=env) as a,
            api_process(world.url, tmp_path / "b.log", env=env) as b,
        ):
            client = client_address()
            # Five reads a minute per address, wherever they land: 3 on one process, 2 on
            # the other, then both refuse.
            codes = [read(p.base, client) for p in (a, b, a, b, a)]
            assert codes == [200] * 5
            assert read(a.base, client) == 429
            r = httpx.get(f"{b.base}/v1/tenants/acme/catalog", headers={"X-Forwarded-For": client}, timeout=10)
            assert r.status_code == 429 and r.json()["code"] == "rate_limited"
            assert 1 <= int(r.headers["Retry-After"]) <= 60
            # Another address has its own count.
            assert read(b.base, client_address()) == 200


def test_a_store_that_is_down_fails_open_with_a_warning(world: World, tmp_path: Path) -> None:
    with own_redis() as (store, server):
        env = limited_env(store)
        with (
            api_process(world.url, tmp_path / "a.log", env=env) as a,
            api_process(world.url, tmp_path / "b.log", env=env) as b,
        ):
            client = client_address()
            assert [read(p.base, client) for p in (a, b)] == [200, 200]
            stop(server)  # Redis goes away under running processes
            # Every request is answered; none is a 500. Each process now counts alone (5 a
            # minute each), so 4 more on each are all allowed.
            codes = [read(p.base, client) for p in (a, b) for _ in range(4)]
            assert codes == [200] * 8
            for p in (a, b):
                assert "rate limit store unavailable" in p.output()


def test_an_unreachable_store_falls_back_to_each_process_limit(world: World, caplog: pytest.LogCaptureFixture) -> None:
    async def body(c: httpx.AsyncClient) -> list[int]:
        return [(await c.get("/v1/tenants/acme/catalog")).status_code for _ in range(3)]

    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="slotmill.api"):
        codes = run(world.url, body, rate_limit_reads=2, rate_limit_storage=dead)
    assert codes == [200, 200, 429]  # the in-memory limit took over; nothing failed
    assert "rate limit store unavailable" in caplog.text
