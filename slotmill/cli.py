"""`slotmill`: the command line (SPEC §10)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from slotmill.config import get_settings
from slotmill.logs import setup_logging
from slotmill.materializer.model import RuleError


class CliError(Exception):
    """A bad request from the user: printed as one line, exit status 2, nothing changed."""


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value!r}") from None


def _url() -> str:
    from slotmill.db import resolve_database_url

    return resolve_database_url()


def cmd_migrate(args: argparse.Namespace) -> int:
    from slotmill.migrate import migrate

    applied = migrate(_url())
    print(f"applied migrations: {', '.join(map(str, applied))}" if applied else "schema is current")
    return 0


def _window(tenant_zone: str, start: date | None, end: date | None) -> tuple[int | None, int | None]:
    from slotmill.materializer.horizon import local_midnight

    if start and end and start > end:
        raise CliError(f"--from {start} is after --to {end}")
    lo = local_midnight(start, tenant_zone) if start else None
    hi = local_midnight(end + timedelta(days=1), tenant_zone) if end else None
    return lo, hi


def cmd_refresh(args: argparse.Namespace) -> int:
    import psycopg
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from slotmill.materializer.loader import UnknownTenant, load_tenant
    from slotmill.materializer.refresh import refresh

    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise CliError(f"--from {args.date_from} is after --to {args.date_to}")
    console = Console(stderr=True)
    with psycopg.connect(_url()) as conn:
        try:
            tenant = load_tenant(conn, args.tenant)
        except UnknownTenant as e:
            raise CliError(str(e)) from None
        if args.staff:
            found = conn.execute(
                "SELECT id FROM staff WHERE tenant_id = %s AND id = ANY(%s)", (tenant.id, args.staff)
            ).fetchall()
            missing = set(args.staff) - {r[0] for r in found}
            if missing:
                raise CliError(f"unknown staff for tenant {tenant.slug}: {', '.join(map(str, sorted(missing)))}")
        lo, hi = _window(tenant.zone, args.date_from, args.date_to)
        started = time.perf_counter()
        with Progress(
            TextColumn("[bold]refresh[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as bar:
            task = bar.add_task(tenant.slug, total=None)
            result = refresh(
                conn,
                tenant,
                staff_ids=args.staff or None,
                lo=lo,
                hi=hi,
                progress=lambda n: bar.advance(task, n),
                on_staff_count=lambda n: bar.update(task, total=n),
            )
        elapsed = time.perf_counter() - started
    print(
        f"refreshed {tenant.slug}: {result.staff} staff, {result.slots_total} slots "
        f"({result.slots_written} written, {result.slots_deleted} removed) in {elapsed:.2f}s"
    )
    for staff_id, reason in sorted(result.failed.items()):
        print(f"  not refreshed: staff {staff_id}: {reason}", file=sys.stderr)
    return 1 if result.failed else 0


def cmd_verify(args: argparse.Namespace) -> int:
    import psycopg

    from slotmill.materializer.horizon import from_epoch
    from slotmill.materializer.loader import UnknownTenant, load_tenant
    from slotmill.materializer.verify import verify

    with psycopg.connect(_url()) as conn:
        try:
            tenant = load_tenant(conn, args.tenant)
        except UnknownTenant as e:
            raise CliError(str(e)) from None
        drift = verify(conn, tenant)

    def show(kind: str, sid: str, key: tuple[object, ...]) -> None:
        staff, service, _loc, start, end, _held = key
        print(
            f"  {kind:<10} {sid}  staff={staff} service={service} {from_epoch(int(str(start))):%Y-%m-%d %H:%M}Z"
            f"-{from_epoch(int(str(end))):%H:%M}Z"
        )

    for staff_id, reason in sorted(drift.failed.items()):
        print(f"  cannot compute staff {staff_id}: {reason}")
    if drift.total == 0:
        print(f"{tenant.slug}: no drift ({drift.actual_count} slots match a full recomputation)")
        if drift.failed:
            print(f"{tenant.slug}: {len(drift.failed)} staff members cannot be computed (see above)")
            return 1
        return 0
    print(
        f"{tenant.slug}: DRIFT: {len(drift.missing)} missing, {len(drift.unexpected)} unexpected, "
        f"{len(drift.changed)} changed (expected {drift.expected_count}, table has {drift.actual_count})"
    )
    limit = args.limit
    for sid, key in drift.missing[:limit]:
        show("missing", sid, key)
    for sid, key in drift.unexpected[:limit]:
        show("unexpected", sid, key)
    for sid, want, got in drift.changed[:limit]:
        show("changed", sid, got)
        show("  want", sid, want)
    return 1


def cmd_demo(args: argparse.Namespace) -> int:
    import psycopg

    from slotmill.demo import DEMO_SLUG, demo_exists, load_demo, reset_demo
    from slotmill.materializer.loader import load_tenant
    from slotmill.materializer.refresh import refresh
    from slotmill.migrate import migrate

    url = _url()
    migrate(url)
    with psycopg.connect(url) as conn:
        kept: int | None = None
        if demo_exists(conn):
            if not args.reset:
                print(f"demo tenant '{DEMO_SLUG}' already exists (use --reset to load its contents again)")
                return 0
            kept = reset_demo(conn).kept_keys
        else:
            load_demo(conn)
        conn.commit()
        tenant = load_tenant(conn, DEMO_SLUG)
        result = refresh(conn, tenant)
        # The rows we just wrote enqueued recomputes of what refresh already covered.
        conn.execute("DELETE FROM recompute_requests WHERE tenant_id = %s", (tenant.id,))
        conn.commit()
    what = "loaded" if kept is None else f"reset (same tenant and ids; kept {kept} host key{'' if kept == 1 else 's'})"
    print(f"demo tenant '{DEMO_SLUG}' {what}: {result.staff} staff, {result.slots_total} slots materialized")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    import psycopg

    from slotmill.keys import create_key
    from slotmill.materializer.loader import UnknownTenant, load_tenant

    with psycopg.connect(_url()) as conn:
        try:
            tenant = load_tenant(conn, args.tenant)
        except UnknownTenant as e:
            raise CliError(str(e)) from None
        secret = create_key(conn, tenant.id)
        conn.commit()
    print(secret)
    print("(shown once: only its hash is stored)", file=sys.stderr)
    return 0


def _tenant_id(conn: Any, slug: str) -> UUID:
    from slotmill.materializer.loader import UnknownTenant, load_tenant

    try:
        return load_tenant(conn, slug).id
    except UnknownTenant as e:
        raise CliError(str(e)) from None


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_keys_list(args: argparse.Namespace) -> int:
    import psycopg

    from slotmill.keys import list_keys

    with psycopg.connect(_url()) as conn:
        keys = list_keys(conn, _tenant_id(conn, args.tenant))
    if not keys:
        print(f"{args.tenant}: no keys (create one with: slotmill keys create --tenant {args.tenant})")
        return 0
    print(f"{'prefix':<12} {'id':<36}  {'created':<20}  revoked")
    for k in keys:
        print(f"{k.prefix:<12} {k.id!s:<36}  {_when(k.created_at):<20}  {_when(k.revoked_at)}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    import psycopg

    from slotmill.keys import AmbiguousKey, KeyNotFound, revoke_key

    with psycopg.connect(_url()) as conn:
        tenant_id = _tenant_id(conn, args.tenant)
        try:
            key, revoked = revoke_key(conn, tenant_id, args.key)
        except KeyNotFound:
            raise CliError(f"no key of tenant {args.tenant} has the id or prefix {args.key!r}") from None
        except AmbiguousKey as e:
            ids = ", ".join(str(k.id) for k in e.matches)
            raise CliError(f"{args.key!r} matches {len(e.matches)} keys ({ids}): give the id") from None
        conn.commit()
    if revoked:
        print(f"revoked {key.prefix} ({key.id}) of tenant {args.tenant}: it authorizes nothing from now on")
    else:
        print(f"{key.prefix} ({key.id}) was already revoked at {_when(key.revoked_at)}")
    return 0


# --- events14: webhook endpoints (slotmill.materializer.webhooks) ----------------------------


def _endpoint_call(args: argparse.Namespace, fn: Any) -> Any:
    import psycopg

    from slotmill.materializer.webhooks import EndpointNotFound

    with psycopg.connect(_url()) as conn:
        tenant_id = _tenant_id(conn, args.tenant)
        try:
            out = fn(conn, tenant_id)
        except EndpointNotFound as e:
            raise CliError(f"{e} in tenant {args.tenant}") from None
        conn.commit()
    return out


def cmd_webhooks_add(args: argparse.Namespace) -> int:
    from slotmill.materializer.webhooks import EVENT_TYPES, create_endpoint

    types = [t.strip() for t in (args.events or "").split(",") if t.strip()] or None
    unknown = sorted(set(types or ()) - set(EVENT_TYPES))
    if unknown:
        raise CliError(f"unknown event types {', '.join(unknown)} (known: {', '.join(EVENT_TYPES)})")
    if not args.url.startswith(("http://", "https://")):
        raise CliError(f"not an http(s) URL: {args.url!r}")
    ep, secret = _endpoint_call(
        args, lambda c, t: create_endpoint(c, t, args.url, event_types=types, description=args.description)
    )
    print(f"endpoint {ep.id} -> {ep.url} ({', '.join(ep.event_types or ['all events'])})")
    print(secret)
    print("(the signing secret, shown once)", file=sys.stderr)
    return 0


def cmd_webhooks_list(args: argparse.Namespace) -> int:
    from slotmill.materializer.webhooks import list_endpoints

    endpoints = _endpoint_call(args, list_endpoints)
    if not endpoints:
        print(f"{args.tenant}: no webhook endpoints (add one with: slotmill webhooks add --tenant {args.tenant} URL)")
        return 0
    for e in endpoints:
        state = "active" if e.active else f"disabled ({e.disabled_reason})"
        last = "-" if e.last_attempt_at is None else f"{_when(e.last_attempt_at)} {e.last_status or e.last_error}"
        print(f"{e.id}  {state:<20} circuit {e.circuit:<6} pending {e.pending:<5} last {last}  {e.url}")
    return 0


def cmd_webhooks_rotate(args: argparse.Namespace) -> int:
    from slotmill.materializer.webhooks import rotate_secret

    print(_endpoint_call(args, lambda c, t: rotate_secret(c, t, args.endpoint)))
    print("(the new secret, shown once; the old one signs beside it for 24 hours)", file=sys.stderr)
    return 0


def cmd_webhooks_disable(args: argparse.Namespace) -> int:
    from slotmill.materializer.webhooks import set_active

    active = args.webhooks_command == "enable"
    ep = _endpoint_call(args, lambda c, t: set_active(c, t, args.endpoint, active))
    print(f"endpoint {ep.id} {'enabled' if ep.active else 'disabled'} ({ep.pending} deliveries waiting)")
    return 0


def cmd_webhooks_replay(args: argparse.Namespace) -> int:
    from slotmill.materializer.webhooks import replay

    if args.delivery is None and args.from_seq is None:
        raise CliError("give --from-seq N (and --to-seq M), or --delivery ID")
    n = _endpoint_call(
        args,
        lambda c, t: replay(c, t, args.endpoint, from_seq=args.from_seq, to_seq=args.to_seq, delivery_id=args.delivery),
    )
    print(f"{n} deliveries due again")
    return 0
def _progress(console: Any, label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(f"[bold]{label}[/] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def cmd_import(args: argparse.Namespace) -> int:
    import psycopg
    from rich.console import Console

    from slotmill.imports import ImportRefused, apply, read_plan
    from slotmill.materializer.loader import UnknownTenant, load_tenant

    try:
        plan = read_plan(args.file)
    except OSError as e:
        raise CliError(f"cannot read {args.file}: {e.strerror or e}") from None
    except ImportRefused as e:
        raise CliError(str(e)) from None
    console = Console(stderr=True)
    with psycopg.connect(_url()) as conn:
        try:
            tenant = load_tenant(conn, args.tenant)
        except UnknownTenant as e:
            raise CliError(str(e)) from None
        with _progress(console, "import") as bar:
            task = bar.add_task(args.file.name, total=plan.size)
            try:
                with conn.transaction():  # all of the file, or nothing
                    done = apply(conn, tenant, plan, progress=lambda n: bar.advance(task, n))
            except ImportRefused as e:
                raise CliError(f"{e} (nothing was imported)") from None
    print(
        f"imported into {tenant.slug}: {done.weeks} weekly template{'' if done.weeks == 1 else 's'} "
        f"({done.windows} windows), {done.time_off} time off; the worker recomputes the slots"
    )
    return 0


def _feed_line(r: Any) -> str:
    if r.status == "error":
        return f"{r.feed_id}: failed, nothing changed: {r.error}"
    what = "unchanged" if r.status == "not_modified" else f"+{r.added} -{r.removed}"
    return f"{r.feed_id}: {r.status} (HTTP {r.http_status}), {r.busy} busy times ({what}) in {r.seconds * 1000:.0f} ms"


def cmd_feeds_add(args: argparse.Namespace) -> int:
    import psycopg

    from slotmill.api.errors import ProblemError
    from slotmill.api.rules.crud import create, validate
    from slotmill.api.rules.resources import FEEDS
    from slotmill.jobs.feeds import sync_feed
    from slotmill.materializer.loader import UnknownTenant, load_tenant

    with psycopg.connect(_url()) as conn:
        try:
            tenant = load_tenant(conn, args.tenant)
        except UnknownTenant as e:
            raise CliError(str(e)) from None
        body = {"staff_id": str(args.staff), "url": args.url, "name": args.name}
        body["refresh_minutes"] = args.refresh_minutes
        try:
            with conn.transaction():
                _, row = create(conn, FEEDS, tenant, validate(FEEDS, body, "feed"), prefix="feed")
        except ProblemError as e:
            raise CliError(e.detail or e.title) from None
        print(f"added feed {row['id']} for staff {args.staff}: {args.url} (every {args.refresh_minutes} min)")
        if args.no_sync:
            return 0
        result = sync_feed(conn, tenant.id, row["id"])
    assert result is not None
    print(_feed_line(result))
    return 1 if result.status == "error" else 0


def cmd_feeds_sync(args: argparse.Namespace) -> int:
    import psycopg
    from rich.console import Console

    from slotmill.jobs.feeds import list_feeds, sync_feed

    console = Console(stderr=True)
    with psycopg.connect(_url()) as conn:
        tenant_id = _tenant_id(conn, args.tenant)
        known = {f["id"]: f for f in list_feeds(conn, tenant_id)}
        wanted = args.feed or [i for i, f in known.items() if f["active"]]
        missing = [str(f) for f in wanted if f not in known]
        if missing:
            raise CliError(f"no feed of tenant {args.tenant} with id {', '.join(missing)}")
        results = []
        with _progress(console, "sync") as bar:
            task = bar.add_task(args.tenant, total=len(wanted))
            for feed_id in wanted:
                result = sync_feed(conn, tenant_id, feed_id, force=args.force)
                assert result is not None
                results.append(result)
                bar.advance(task, 1)
    for r in results:
        print(_feed_line(r))
    if not results:
        print(f"{args.tenant}: no active feeds (add one with: slotmill feeds add --tenant {args.tenant} ...)")
    return 1 if any(r.status == "error" for r in results) else 0


def cmd_feeds_list(args: argparse.Namespace) -> int:
    import psycopg

    from slotmill.jobs.feeds import list_feeds

    with psycopg.connect(_url()) as conn:
        feeds = list_feeds(conn, _tenant_id(conn, args.tenant))
    if not feeds:
        print(f"{args.tenant}: no feeds")
        return 0
    for f in feeds:
        state = f["last_status"] or "never synced"
        if f["last_status"] == "error":
            state = f"error: {f['last_error']}"
        active = "" if f["active"] else " (inactive)"
        print(f"{f['id']}  {f['display_name']}{active}  {f['url']}")
        print(
            f"    every {f['refresh_minutes']} min; last {_when(f['last_sync_at'])}: {state}; "
            f"{f['busy_count']} busy times; next {_when(f['next_sync_at'])}"
        )
    return 0


def cmd_week(args: argparse.Namespace) -> int:
    import psycopg

    from slotmill.materializer.loader import UnknownTenant, load_tenant
    from slotmill.weekview import render, week_of

    with psycopg.connect(_url()) as conn:
        try:
            tenant = load_tenant(conn, args.tenant)
        except UnknownTenant as e:
            raise CliError(str(e)) from None
        week = week_of(conn, tenant, args.staff, args.date)
    if week is None:
        raise CliError(f"no staff member {args.staff} in tenant {args.tenant}")
    print("\n".join(render(week)))
    return 1 if week.error else 0


def cmd_api(args: argparse.Namespace) -> int:
    from slotmill.api.server import serve

    serve(host=args.host, port=args.port, workers=args.workers)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from slotmill.jobs.worker import run_worker

    return run_worker(url=_url(), concurrency=args.concurrency)


def cmd_run(args: argparse.Namespace) -> int:
    from slotmill.runall import run_all

    return run_all(host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    settings = get_settings()
    p = argparse.ArgumentParser(prog="slotmill", description="Pre-computed appointment slots in PostgreSQL.")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: SLOTMILL_LOG_LEVEL)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="everything for a first look: database, migrations, demo, API and worker")
    s.add_argument("--host", default=settings.api_host)
    s.add_argument("--port", type=int, default=settings.api_port)
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("migrate", help="apply the schema migrations (idempotent)")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("api", help="serve the HTTP API")
    s.add_argument("--host", default=settings.api_host)
    s.add_argument("--port", type=int, default=settings.api_port)
    s.add_argument("--workers", type=int, default=settings.api_workers)
    s.set_defaults(func=cmd_api)

    s = sub.add_parser("worker", help="drain the recompute queue and run the scheduled jobs")
    s.add_argument("--concurrency", type=int, default=1)
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("refresh", help="recompute a tenant's slots (or some staff, or some dates)")
    s.add_argument("--tenant", required=True, metavar="SLUG")
    s.add_argument("--staff", type=_uuid, action="append", metavar="ID", help="repeatable")
    s.add_argument("--from", dest="date_from", type=_date, metavar="DATE", help="first local date (tenant zone)")
    s.add_argument("--to", dest="date_to", type=_date, metavar="DATE", help="last local date, inclusive")
    s.set_defaults(func=cmd_refresh)

    s = sub.add_parser("verify", help="diff the slot table against a full recomputation; exit 1 on drift")
    s.add_argument("--tenant", required=True, metavar="SLUG")
    s.add_argument("--limit", type=int, default=20, help="differences to print per kind")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("keys", help="tenant secret keys for the host backend")
    keys = s.add_subparsers(dest="keys_command", required=True)
    k = keys.add_parser("create", help="create a key; prints the secret once")
    k.add_argument("--tenant", required=True, metavar="SLUG")
    k.set_defaults(func=cmd_keys_create)
    k = keys.add_parser("list", help="the tenant's keys: prefix, id, created, revoked (never the secret)")
    k.add_argument("--tenant", required=True, metavar="SLUG")
    k.set_defaults(func=cmd_keys_list)
    k = keys.add_parser("revoke", help="revoke a key, named by its id or the start of its prefix")
    k.add_argument("--tenant", required=True, metavar="SLUG")
    k.add_argument("key", metavar="PREFIX_OR_ID")
    k.set_defaults(func=cmd_keys_revoke)

    s = sub.add_parser("webhooks", help="webhook endpoints of a tenant (events out)")
    hooks = s.add_subparsers(dest="webhooks_command", required=True)
    k = hooks.add_parser("add", help="add an endpoint; prints its signing secret once")
    k.add_argument("--tenant", required=True, metavar="SLUG")
    k.add_argument("--events", metavar="TYPES", help="comma-separated event types (default: all)")
    k.add_argument("--description", default="")
    k.add_argument("url", metavar="URL")
    k.set_defaults(func=cmd_webhooks_add)
    k = hooks.add_parser("list", help="endpoints with their state, circuit and last result")
    k.add_argument("--tenant", required=True, metavar="SLUG")
    k.set_defaults(func=cmd_webhooks_list)
    k = hooks.add_parser("rotate", help="a new signing secret (printed once)")
    k.add_argument("--tenant", required=True, metavar="SLUG")
    k.add_argument("endpoint", type=_uuid, metavar="ENDPOINT_ID")
    k.set_defaults(func=cmd_webhooks_rotate)
    for name, text in (("disable", "stop new deliveries"), ("enable", "enable again (closes the circuit)")):
        k = hooks.add_parser(name, help=text)
        k.add_argument("--tenant", required=True, metavar="SLUG")
        k.add_argument("endpoint", type=_uuid, metavar="ENDPOINT_ID")
        k.set_defaults(func=cmd_webhooks_disable)
    k = hooks.add_parser("replay", help="deliver events again: a range of event numbers, or one delivery")
    k.add_argument("--tenant", required=True, metavar="SLUG")
    k.add_argument("endpoint", type=_uuid, metavar="ENDPOINT_ID")
    k.add_argument("--from-seq", type=int, metavar="N")
    k.add_argument("--to-seq", type=int, metavar="M")
    k.add_argument("--delivery", type=int, metavar="ID")
    k.set_defaults(func=cmd_webhooks_replay)
    s = sub.add_parser("import", help="weekly templates or time off from a CSV or JSON file, all or nothing")
    s.add_argument("--tenant", required=True, metavar="SLUG")
    s.add_argument("file", type=Path, metavar="FILE", help="a .csv or .json file (see README: Operator tasks)")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("feeds", help="calendar feeds (ICS) synced into busy times")
    feeds = s.add_subparsers(dest="feeds_command", required=True)
    f = feeds.add_parser("add", help="add a feed for a staff member and sync it now")
    f.add_argument("--tenant", required=True, metavar="SLUG")
    f.add_argument("--staff", required=True, type=_uuid, metavar="ID")
    f.add_argument("--refresh-minutes", type=int, default=15, metavar="N", help="how often the worker syncs it")
    f.add_argument("--name", default="", help="a label")
    f.add_argument("--no-sync", action="store_true", help="leave the first sync to the worker")
    f.add_argument("url", metavar="URL")
    f.set_defaults(func=cmd_feeds_add)
    f = feeds.add_parser("sync", help="sync feeds now (default: every active feed of the tenant)")
    f.add_argument("--tenant", required=True, metavar="SLUG")
    f.add_argument("--force", action="store_true", help="fetch whole, without the last answer's validators")
    f.add_argument("feed", nargs="*", type=_uuid, metavar="FEED_ID")
    f.set_defaults(func=cmd_feeds_sync)
    f = feeds.add_parser("list", help="the tenant's feeds and their last sync")
    f.add_argument("--tenant", required=True, metavar="SLUG")
    f.set_defaults(func=cmd_feeds_list)

    s = sub.add_parser("week", help="a staff member's week: working windows, busy times and bookings")
    s.add_argument("--tenant", required=True, metavar="SLUG")
    s.add_argument("--staff", required=True, type=_uuid, metavar="ID")
    s.add_argument("--date", type=_date, metavar="DATE", help="a day of the week to show (default: today)")
    s.set_defaults(func=cmd_week)

    s = sub.add_parser("demo", help="load the demo tenant and materialize it")
    s.add_argument(
        "--reset", action="store_true", help="delete its contents and load them again (keeps the tenant and its keys)"
    )
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level or get_settings().log_level)
    try:
        return int(args.func(args))
    except CliError as e:
        print(f"slotmill: error: {e}", file=sys.stderr)
        return 2
    except RuleError as e:
        print(f"slotmill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a database refusal is the user's to read, not a traceback
        import psycopg

        if isinstance(e, psycopg.errors.IntegrityError | psycopg.errors.DataError):
            print(f"slotmill: error: {e.diag.message_primary or e}", file=sys.stderr)
            return 2
        logging.getLogger("slotmill").exception("command failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
