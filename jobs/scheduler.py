"""The worker's scheduled jobs (APScheduler 3, in-process, in-memory job store).

Every worker process runs the same schedule; the jobs make themselves singletons in the
database (see jobs/nightly.py), so any number of workers can be up. The queue poll is the
exception on purpose: each worker polls for itself, because the poll covers notifications
*this* worker missed (a reconnect, a restart), and a poll that finds nothing costs one
indexed read. The calendar feed sync runs on every worker too: each feed is claimed with
``FOR UPDATE SKIP LOCKED`` (jobs/feeds.py), so a feed is synced by one worker at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from slotmill.config import get_settings, timeout_options
from slotmill.jobs.feeds import sync_due
from slotmill.jobs.nightly import expire_holds, nightly_tick

log = logging.getLogger("slotmill.worker")

# The nightly refresh is due at 02:00 in each tenant's own zone; one check every few
# minutes finds the tenants whose 02:00 has come (zones differ, and tenants come and go,
# so there is no single cron time to register).
NIGHTLY_CHECK = timedelta(minutes=5)
EXPIRE_EVERY = timedelta(minutes=1)
# A job that could not start on time (the process was busy or suspended) still runs when
# it can, within this long; coalesce=True folds missed runs into one.
MISFIRE_GRACE_S = 3600


def build_scheduler(
    url: str,
    *,
    poll_seconds: float,
    wake: Callable[[], None],
    stop: threading.Event,
    worker_name: str,
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S},
    )
    now = datetime.now(UTC)

    def connect() -> psycopg.Connection[tuple[object, ...]]:
        # no prepared statements: see Worker._connect
        return psycopg.connect(
            url,
            application_name=f"{worker_name}-jobs",
            connect_timeout=10,
            prepare_threshold=None,
            options=timeout_options(get_settings().worker_statement_timeout_ms),
        )

    def nightly() -> None:
        try:
            with connect() as conn:
                nightly_tick(conn, worker=worker_name, stop=stop)
        except psycopg.OperationalError as e:
            log.warning("nightly check: database unavailable", extra={"ctx_error": str(e)})

    def holds() -> None:
        try:
            with connect() as conn:
                expire_holds(conn)
        except psycopg.OperationalError as e:
            log.warning("hold clean-up: database unavailable", extra={"ctx_error": str(e)})

    def feeds() -> None:
        try:
            with connect() as conn:
                sync_due(conn, stop=stop)
        except psycopg.OperationalError as e:
            log.warning("calendar feeds: database unavailable", extra={"ctx_error": str(e)})

    scheduler.add_job(
        wake,
        IntervalTrigger(seconds=poll_seconds),
        id="poll",
        name="queue poll",
        misfire_grace_time=None,
    )
    scheduler.add_job(
        holds,
        IntervalTrigger(seconds=EXPIRE_EVERY.total_seconds()),
        id="expire_holds",
        name="hold expiry clean-up",
        next_run_time=now + timedelta(seconds=5),
    )
    scheduler.add_job(
        nightly,
        IntervalTrigger(seconds=NIGHTLY_CHECK.total_seconds()),
        id="nightly",
        name="nightly refresh (02:00 tenant-local)",
        next_run_time=now + timedelta(seconds=15),
    )
    scheduler.add_job(
        feeds,
        IntervalTrigger(seconds=get_settings().feed_check_seconds),
        id="feeds",
        name="calendar feed sync (due feeds, each by one worker)",
        next_run_time=now + timedelta(seconds=2),
    )
    return scheduler
