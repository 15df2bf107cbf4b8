"""Webhooks (issue 14) against real HTTP receivers on 127.0.0.1: Standard Webhooks
signatures checked with the library's own verifier, retries through failures, every event
exactly as committed, a worker SIGKILLed mid-delivery, slow and dead endpoints beside a
healthy one, the circuit breaker, replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from slotmill.config import get_settings
from slotmill.materializer import webhooks
from slotmill.materializer.outbox import sequence_events
from tests.support import World, db_exec, db_rows, worker
from tests.webhook_receiver import Received, dead_url, receiver

ROOT = Path(__file__).resolve().parents[2]
FAST = {
    "SLOTMILL_EVENTS_POLL_SECONDS": "0.05",
    "SLOTMILL_WEBHOOK_BACKOFF_BASE_SECONDS": "0.05",
    "SLOTMILL_WEBHOOK_BACKOFF_MAX_SECONDS": "0.2",
    "SLOTMILL_WEBHOOK_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    yield FAST
    get_settings.cache_clear()


def add_endpoint(url: str, tenant: UUID, target: str, types: list[str] | None = None) -> tuple[UUID, str]:
    with psycopg.connect(url) as conn:
        sequence_events(conn)  # what the set-up wrote goes to nobody
        ep, secret = webhooks.create_endpoint(conn, tenant, target, event_types=types)
        conn.commit()
    return ep.id, secret


def make_events(w: World, n: int) -> None:
    """``n`` confirmed bookings written directly by the host (a booking.confirmed each, up to 24)."""
    a = w.acme
    with psycopg.connect(w.url) as conn:
        for i in range(n):
            start = w.at(f"{9 + i % 8:02d}:00")
            staff = (a.ann, a.cid, a.bob)[i // 8]
            conn.execute(
                "INSERT INTO bookings (tenant_id, staff_id, service_id, starts_at, ends_at, status, customer_ref)"
                " VALUES (%s, %s, %s, %s, %s + interval '1 hour', 'confirmed', %s)",
                (a.id, staff, a.cut, start, start, f"cust-{i}"),
            )
            conn.commit()


def mark(url: str) -> int:
    """The newest event now: what comes after it is what an endpoint added now gets."""
    return int(db_rows(url, "SELECT coalesce(max(id), 0) FROM events")[0][0])


def committed(url: str, tenant: UUID, after: int) -> dict[str, tuple[str, int, Any]]:
    """webhook-id -> (type, seq, data) of every numbered event of the tenant after ``after``."""
    rows = db_rows(
        url,
        "SELECT id, type, seq, data FROM events WHERE tenant_id = %s AND seq IS NOT NULL AND id > %s",
        (tenant, after),
    )
    return {webhooks.webhook_id(i): (t, s, d) for i, t, s, d in rows}


def verified(secret: str, r: Received) -> Any:
    return Webhook(secret).verify(r.body, r.headers)


def test_receiver_gets_every_event_as_committed_through_failures(world: World, fast: dict[str, str]) -> None:
    w = world
    with receiver(fail_first=6) as rx:
        _, secret = add_endpoint(w.url, w.acme.id, rx.url)
        since = mark(w.url)
        make_events(w, 6)
        with worker(w.url):
            # wait until every event of the tenant (once numbered) has a 200, and the
            # recomputes the bookings queued are done (their slots.changed events come later)
            assert rx.wait_for(
                lambda got: (
                    len(committed(w.url, w.acme.id, since)) >= 6
                    and db_rows(w.url, "SELECT count(*) FROM recompute_requests") == [(0,)]
                    and db_rows(w.url, "SELECT count(*) FROM events WHERE seq IS NULL") == [(0,)]
                    and committed(w.url, w.acme.id, since).keys() <= rx.ok_ids()
                ),
                timeout=60,
            )
        events = committed(w.url, w.acme.id, since)
        by_id: dict[str, list[bytes]] = {}
        for r in rx.received:
            body = verified(secret, r)  # raises unless the signature is the library's
            kind, seq, data = events[r.headers["webhook-id"]]
            assert body["type"] == kind and body["seq"] == seq and body["data"] == data
            by_id.setdefault(r.headers["webhook-id"], []).append(r.body)
        # none lost; duplicates only as retries of one webhook-id, byte for byte the same
        assert set(by_id) == set(events)
        assert all(len(set(bodies)) == 1 for bodies in by_id.values())
        assert sum(r.answered == 500 for r in rx.received) == 6
        # the delivery log has every attempt
        attempts = db_rows(w.url, "SELECT count(*), count(*) FILTER (WHERE status_code = 500) FROM webhook_attempts")
        assert attempts == [(len(rx.received), 6)]
        assert db_rows(w.url, "SELECT DISTINCT status FROM webhook_deliveries") == [("delivered",)]


def test_a_tampered_or_foreign_signature_does_not_verify(world: World, fast: dict[str, str]) -> None:
    w = world
    with receiver() as rx:
        _, secret = add_endpoint(w.url, w.acme.id, rx.url)
        make_events(w, 1)
        with worker(w.url):
            assert rx.wait_for(lambda got: len(got) >= 1)
        r = rx.received[0]
        with pytest.raises(Exception, match="signature"):
            Webhook(secret).verify(r.body.replace(b'"seq":', b'"seq": '), r.headers)
        with pytest.raises(Exception, match="signature"):
            Webhook(webhooks.new_secret()).verify(r.body, r.headers)


def test_a_slow_and_a_dead_endpoint_never_delay_a_healthy_one(world: World, fast: dict[str, str]) -> None:
    w = world
    with receiver() as healthy, receiver(delay_s=10.0) as slow:
        good, _ = add_endpoint(w.url, w.acme.id, healthy.url)
        late, _ = add_endpoint(w.url, w.acme.id, slow.url)
        add_endpoint(w.url, w.acme.id, dead_url())
        make_events(w, 12)
        with worker(w.url):
            assert healthy.wait_for(lambda got: len({r.headers["webhook-id"] for r in got}) >= 12, timeout=60)
            # wait for the slow endpoint's first timeout to be recorded
            deadline = time.monotonic() + 30
            while not db_rows(w.url, "SELECT 1 FROM webhook_attempts WHERE endpoint_id = %s", (late,)):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        ((healthy_done,),) = db_rows(
            w.url, "SELECT max(delivered_at) FROM webhook_deliveries WHERE endpoint_id = %s", (good,)
        )
        ((slow_first,),) = db_rows(
            w.url,
            "SELECT min(attempted_at + make_interval(secs => duration_ms / 1000.0)) FROM webhook_attempts"
            " WHERE endpoint_id = %s",
            (late,),
        )
        # every healthy delivery was done before the slow endpoint's first request timed out
        assert healthy_done < slow_first
        # the slow endpoint never had more than `concurrency` requests in flight at once
        assert len(slow.received) <= int(get_settings().webhook_concurrency)


def test_a_worker_killed_mid_delivery_loses_nothing(world: World, fast: dict[str, str]) -> None:
    w = world
    with receiver(delay_s=1.5) as rx:
        _, secret = add_endpoint(w.url, w.acme.id, rx.url)
        since = mark(w.url)
        make_events(w, 5)
        env = {
            **os.environ,
            **fast,
            "DATABASE_URL": w.url,
            "SLOTMILL_WEBHOOK_TIMEOUT_SECONDS": "3",
            "SLOTMILL_WEBHOOK_LEASE_SECONDS": "4",
            "SLOTMILL_LOG_FORMAT": "json",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "slotmill.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # the first requests are in the receiver's hands: kill the worker now
            deadline = time.monotonic() + 60
            while not rx.received and time.monotonic() < deadline:
                # a request is recorded when answered; any connection means mid-delivery
                if db_rows(w.url, "SELECT 1 FROM webhook_deliveries WHERE attempts > 0"):
                    time.sleep(0.3)
                    break
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        pending = db_rows(w.url, "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")[0][0]
        assert pending > 0, "the worker finished before it was killed"
        with worker(w.url):
            assert rx.wait_for(lambda got: committed(w.url, w.acme.id, since).keys() <= rx.ok_ids(), timeout=60)
            deadline = time.monotonic() + 30
            while db_rows(w.url, "SELECT 1 FROM webhook_deliveries WHERE status <> 'delivered'"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        events = committed(w.url, w.acme.id, since)
        assert len(events) >= 5
        for r in rx.received:
            body = verified(secret, r)
            assert body["data"] == events[r.headers["webhook-id"]][2]


def test_a_run_of_failures_opens_the_circuit_with_an_event(
    world: World, fast: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLOTMILL_WEBHOOK_CIRCUIT_FAILURES", "3")
    monkeypatch.setenv("SLOTMILL_WEBHOOK_CIRCUIT_SECONDS", "0")
    get_settings.cache_clear()
    w = world
    with receiver() as watcher:
        dead, _ = add_endpoint(w.url, w.acme.id, dead_url())
        add_endpoint(w.url, w.acme.id, watcher.url, types=["webhook.disabled"])
        make_events(w, 4)
        with worker(w.url):
            assert watcher.wait_for(lambda got: len(got) >= 1, timeout=60)
        body = json.loads(watcher.received[0].body)
        assert body["type"] == "webhook.disabled"
        assert body["data"]["endpoint_id"] == str(dead) and body["data"]["reason"] == "circuit"
        with psycopg.connect(w.url) as conn:
            ep = webhooks.get_endpoint(conn, w.acme.id, dead)
            assert (ep.active, ep.circuit, ep.disabled_reason) == (False, "open", "circuit")
            assert ep.consecutive_failures >= 3 and ep.last_error
            # enabling closes the circuit and makes what waited due again
            ep = webhooks.set_active(conn, w.acme.id, dead, True)
            conn.commit()
            assert (ep.active, ep.circuit, ep.consecutive_failures) == (True, "closed", 0)
        assert len([r for r in watcher.received if json.loads(r.body)["type"] == "webhook.disabled"]) == 1


def test_replay_sends_events_again_with_the_same_webhook_id(world: World, fast: dict[str, str]) -> None:
    w = world
    with receiver() as rx:
        ep, secret = add_endpoint(w.url, w.acme.id, rx.url, types=["booking.confirmed"])
        make_events(w, 3)
        with worker(w.url):
            assert rx.wait_for(lambda got: len(got) >= 3, timeout=60)
            first = {r.headers["webhook-id"]: r.body for r in rx.received}
            since = min(json.loads(b)["seq"] for b in first.values())
            with psycopg.connect(w.url) as conn:
                assert webhooks.replay(conn, w.acme.id, ep, from_seq=since) == 3
                conn.commit()
            assert rx.wait_for(lambda got: len(got) >= 6, timeout=60)
        again = [r for r in rx.received[3:]]
        assert {r.headers["webhook-id"] for r in again} == set(first)
        for r in again:
            verified(secret, r)
            assert r.body == first[r.headers["webhook-id"]]
        with psycopg.connect(w.url) as conn:
            log = webhooks.delivery_log(conn, w.acme.id, ep)
        assert len(log) == 6 and sum(d.replay for d in log) == 3


def test_a_rotated_secret_signs_beside_the_new_one(world: World, fast: dict[str, str]) -> None:
    w = world
    with receiver() as rx:
        ep, old = add_endpoint(w.url, w.acme.id, rx.url)
        with psycopg.connect(w.url) as conn:
            new = webhooks.rotate_secret(conn, w.acme.id, ep)
            conn.commit()
        make_events(w, 1)
        with worker(w.url):
            assert rx.wait_for(lambda got: len(got) >= 1)
        r = rx.received[0]
        assert len(r.headers["webhook-signature"].split(" ")) == 2
        verified(new, r)
        verified(old, r)
    db_exec(w.url, "UPDATE webhook_endpoints SET previous_secret_until = now() - interval '1 second'")
