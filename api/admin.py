"""Admin endpoints (SPEC §9), behind ``Authorization: Bearer <SLOTMILL_ADMIN_KEY>``:

- ``POST /v1/admin/recalculate``: queue a recalculation (202), or run it in the request
  (``"wait": true``, 200 with counts);
- ``GET /v1/admin/tenants/{slug}/status``: horizon and whether it is covered, slot count,
  last full refresh, queue depth and the oldest request's age;
- ``GET /v1/admin/tenants/{slug}/explain``: why a start is or is not offered, from the same
  engine that materializes slots (materializer.engine.explain).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from slotmill.api.errors import ProblemError, invalid, not_found
from slotmill.api.models import (
    DateOrInstant,
    Instant,
    TenantPath,
    Text,
    parse_instant,
    parse_json_object,
    parse_model,
    parse_uuid,
    tenant_slug,
)
from slotmill.api.routing import Reply, route
from slotmill.materializer import engine
from slotmill.materializer.horizon import from_epoch, horizon_for, local_midnight, to_epoch
from slotmill.materializer.loader import Tenant, load_rules
from slotmill.materializer.model import RuleError
from slotmill.materializer.refresh import refresh
from slotmill.sql import owned_by

Q = owned_by(__name__)

# Starts explain accepts: local dates must exist on both sides in every zone.
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)

# --- models (also for /openapi.json) ------------------------------------------------------


class _In(BaseModel):
    # A typo in a field name is a 422 naming it, not a silently ignored option.
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RecalculateIn(_In):
    tenant: Text = Field(description="The tenant's slug.")
    staff_id: UUID | None = Field(None, description="Omitted: every staff member of the tenant.")
    from_: DateOrInstant | None = Field(
        None,
        alias="from",
        description="First local date (tenant zone) or instant; omitted: the horizon's start.",
    )
    to: DateOrInstant | None = Field(
        None,
        description="Last local date (inclusive) or end instant (exclusive); omitted: the horizon's end.",
    )
    wait: StrictBool = Field(False, description="Recompute within the request and answer 200 with counts.")


class RecalculateQueued(_Out):
    request_id: int = Field(description="The queued recompute_requests row; it is gone once done.")


class RecalculateDone(_Out):
    staff: int
    slots_written: int
    slots_deleted: int
    from_: Instant = Field(alias="from", description="The window recomputed (clipped to the horizon).")
    to: Instant


class HorizonOut(_Out):
    start: Instant
    end: Instant
    days: int
    covered: bool = Field(description="The last full refresh materialized up to the current horizon end.")


class LastRefreshOut(_Out):
    finished_at: Instant
    horizon_end: Instant | None
    staff: int
    slots_written: int
    drift: int | None = Field(description="Slots the nightly refresh found wrong before repairing them.")


class QueueOut(_Out):
    depth: int
    oldest_age_seconds: float | None


class FailureOut(_Out):
    staff_id: UUID | None = Field(description="Null: the recompute of the whole tenant failed.")
    reason: str = Field(description="Why, in the engine's or the database's words (the rule that cannot be computed).")
    attempts: int
    since: Instant = Field(description="When the oldest failed request was made.")
    requests: int = Field(description="Failed requests kept for this staff member.")
    parked: bool = Field(
        description="Failed too often: retried only when this staff member changes again or a full refresh runs."
    )
    next_attempt_at: Instant | None


class WebhookStatusOut(_Out):
    """events14: a webhook endpoint as an operator needs it."""

    id: UUID
    url: str
    active: bool
    circuit: Literal["open", "closed"] = Field(description="`open`: disabled after a run of failures.")
    disabled_reason: Literal["host", "circuit"] | None
    consecutive_failures: int
    failing_since: Instant | None
    last_attempt_at: Instant | None
    last_status: int | None = Field(description="HTTP status of the last attempt (null: no answer).")
    last_error: str | None
    last_success_at: Instant | None
    pending: int
    oldest_pending_at: Instant | None
class FeedStatusOut(_Out):
    id: UUID
    staff_id: UUID
    url: str
    active: bool
    refresh_minutes: int
    last_status: str | None = Field(
        description="`ok`, `not_modified` or `error` (nothing changed); null: not synced yet."
    )
    last_http_status: int | None
    last_error: str | None = Field(description="Why the last sync failed.")
    last_sync_at: Instant | None
    last_success_at: Instant | None
    next_sync_at: Instant
    busy_count: int = Field(description="Busy times the feed holds.")
    failures: int = Field(description="Failed syncs since the last success.")


class StatusOut(_Out):
    tenant: str
    timezone: str
    error: str | None = Field(
        None, description="Why the tenant itself cannot be computed (its zone): nothing of it is recomputed."
    )
    horizon: HorizonOut | None
    slots: int
    last_full_refresh: LastRefreshOut | None
    queue: QueueOut
    failures: list[FailureOut] = Field(description="Recomputes that failed, with why: the work is kept, not lost.")
    webhooks: list[WebhookStatusOut] = Field(
        default_factory=list, description="Webhook endpoints: last result, circuit, deliveries waiting."
    )
    feeds: list[FeedStatusOut] = Field(description="Calendar feeds and their last sync.")


class ExplainQuery(_In):
    """Query parameters of explain (documentation: the handler reads them one by one)."""

    staff_id: UUID
    service_id: UUID
    starts_at: Instant


class ReasonOut(_Out):
    code: str
    detail: str


class ExplainOut(_Out):
    available: bool
    reasons: list[ReasonOut]
    staff_id: UUID
    service_id: UUID
    starts_at: Instant
    ends_at: Instant


# --- auth ---------------------------------------------------------------------------------


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def authorize(request: Request) -> None:
    key: str | None = request.app.state.settings.admin_key
    if not key:
        # 503, not 401: no credential can succeed until the operator sets SLOTMILL_ADMIN_KEY,
        # and a 401 would send the caller hunting for a key that does not exist.
        raise ProblemError(
            503,
            "admin_not_configured",
            "Admin API not configured",
            "set SLOTMILL_ADMIN_KEY on the API server to enable /v1/admin",
        )
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # Compare digests: constant time, and the key's length does not leak either.
    if scheme.lower() != "bearer" or not hmac.compare_digest(_digest(token.strip()), _digest(key)):
        raise ProblemError(
            401,
            "unauthorized",
            "Admin key required",
            "send Authorization: Bearer <SLOTMILL_ADMIN_KEY>",
            headers={"WWW-Authenticate": 'Bearer realm="slotmill-admin"'},
        )


# --- helpers ------------------------------------------------------------------------------


async def _load_tenant(pool: AsyncConnectionPool[Any], slug: str, staff_id: UUID | None) -> Tenant:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(Q["admin_tenant"], {"slug": slug, "staff_id": staff_id})
        row = await cur.fetchone()
    if row is None:
        raise not_found("tenant", f"no tenant {slug!r}")
    if not row["staff_found"]:
        raise not_found("staff", f"no staff member {staff_id} in tenant {slug!r}")
    return Tenant.from_row(row)


def _bound(value: date | datetime | None, zone: str, *, end: bool) -> int | None:
    """An instant from a date (local midnight; the day after for an inclusive end) or an
    instant; None (the horizon's edge) for a bound past the ends of the calendar."""
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            return to_epoch(value)
        return local_midnight(value + timedelta(days=1) if end else value, zone)
    except (OverflowError, ValueError):
        return None


# --- POST /v1/admin/recalculate -----------------------------------------------------------


def _recalculate_now(
    sync_pool: ConnectionPool[Any],
    tenant: Tenant,
    staff_id: UUID | None,
    lo: int | None,
    hi: int | None,
) -> dict[str, Any]:
    with sync_pool.connection() as conn:
        # refresh() commits per chunk of staff; each staff member's window is atomic. A whole
        # tenant with no window is a full refresh (rolls the horizon, counts as coverage).
        r = refresh(conn, tenant, staff_ids=None if staff_id is None else [staff_id], lo=lo, hi=hi)
    return RecalculateDone.model_validate(
        {
            "staff": r.staff,
            "slots_written": r.slots_written,
            "slots_deleted": r.slots_deleted,
            "from": from_epoch(r.lo),
            "to": from_epoch(r.hi),
        }
    ).model_dump(mode="json", by_alias=True)


async def recalculate(request: Request) -> Response:
    authorize(request)
    body = parse_model(RecalculateIn, parse_json_object(await request.body()), "body")
    slug = tenant_slug(body.tenant)
    tenant = await _load_tenant(request.app.state.pool, slug, body.staff_id)
    lo = _bound(body.from_, tenant.zone, end=False)
    hi = _bound(body.to, tenant.zone, end=True)
    if lo is not None and hi is not None and hi <= lo:
        raise invalid("body.to", "`to` is before `from` (the window is empty)")

    if body.wait:
        out = await asyncio.to_thread(_recalculate_now, request.app.state.sync_pool, tenant, body.staff_id, lo, hi)
        return JSONResponse(out, status_code=200)

    pool: AsyncConnectionPool[Any] = request.app.state.pool
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q["admin_enqueue_recompute"],
            {
                "tenant_id": tenant.id,
                "staff_id": body.staff_id,
                "lo": None if lo is None else from_epoch(lo),
                "hi": None if hi is None else from_epoch(hi),
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return JSONResponse(RecalculateQueued(request_id=row[0]).model_dump(mode="json"), status_code=202)


# --- GET /v1/admin/tenants/{slug}/status --------------------------------------------------


async def tenant_status(request: Request) -> Response:
    authorize(request)
    slug = tenant_slug(request.path_params["slug"])
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(Q["admin_tenant"], {"slug": slug, "staff_id": None})
        t = await cur.fetchone()
        if t is None:
            raise not_found("tenant", f"no tenant {slug!r}")
        await cur.execute(Q["admin_tenant_status"], {"tenant_id": t["id"]})
        s = await cur.fetchone()
        await cur.execute(Q["admin_failures"], {"tenant_id": t["id"]})
        failures = await cur.fetchall()
        await cur.execute(Q["admin_webhooks"], {"tenant_id": t["id"]})  # events14
        hooks = await cur.fetchall()
        await cur.execute(Q["admin_feeds"], {"tenant_id": t["id"]})
        feeds = await cur.fetchall()
    assert s is not None
    # A status must answer whatever the tenant holds: a zone the engine cannot use is
    # reported, not raised.
    error = None
    horizon = None
    try:
        tenant = Tenant.from_row(t)
    except RuleError as e:
        error = str(e)
    else:
        h = horizon_for(tenant.zone, tenant.horizon_days, int(time.time()))
        covered_until = s["last_full_horizon_end"]
        horizon = {
            "start": from_epoch(h.start),
            "end": from_epoch(h.end),
            "days": tenant.horizon_days,
            "covered": covered_until is not None and to_epoch(covered_until) >= h.end,
        }
    last = None
    if s["last_full_at"] is not None:
        last = {
            "finished_at": s["last_full_at"],
            "horizon_end": s["last_full_horizon_end"],
            "staff": s["last_full_staff"],
            "slots_written": s["last_full_slots_written"],
            "drift": s["last_full_drift"],
        }
    out = StatusOut.model_validate(
        {
            "tenant": t["slug"],
            "timezone": t["timezone"],
            "error": error,
            "horizon": horizon,
            "slots": s["slot_count"],
            "last_full_refresh": last,
            "queue": {
                "depth": s["queue_depth"],
                "oldest_age_seconds": None if s["oldest_age_s"] is None else round(s["oldest_age_s"], 3),
            },
            "failures": failures,
            "webhooks": hooks,
            "feeds": feeds,
        }
    )
    return JSONResponse(out.model_dump(mode="json"))


# --- GET /v1/admin/tenants/{slug}/explain -------------------------------------------------


def _query_param(request: Request, name: str) -> str:
    values = request.query_params.getlist(name)
    if not values or not values[0]:
        raise invalid(f"query.{name}", f"query.{name}: required")
    if len(values) > 1:
        raise invalid(f"query.{name}", f"query.{name}: given more than once")
    return values[0]


def _explain(
    sync_pool: ConnectionPool[Any], tenant: Tenant, staff_id: UUID, service_id: UUID, t: int
) -> dict[str, Any]:
    with sync_pool.connection() as conn, conn.transaction():  # one snapshot for every rule
        with conn.cursor(row_factory=dict_row) as cur:
            limits = cur.execute(Q["admin_bookable"], {"tenant_id": tenant.id, "service_id": service_id}).fetchone()
        if limits is None:
            raise not_found("service", f"no service {service_id} in tenant {tenant.slug!r}")
        now = to_epoch(limits["now"])
        # Past the horizon, within the advance limit, slots are the engine's on demand
        # (materializer/beyond.py): explained with windows built through that date.
        beyond = t >= tenant.horizon(now).end
        rules = load_rules(conn, tenant, staff_ids=[staff_id], lo=t, hi=t + 1, now=now, beyond=beyond)
    staff = rules.staff.get(staff_id)
    if staff is None:
        raise not_found("staff", f"no staff member {staff_id} in tenant {tenant.slug!r}")
    service = rules.services.get(service_id)
    if service is None:
        raise not_found("service", f"no service {service_id} in tenant {tenant.slug!r}")
    e = engine.explain(
        staff.computable(),
        service.rule,
        qualified=staff_id in service.staff_ids,
        active=staff.active and service.active,
        starts_at=t,
        now=now,
        min_notice_s=to_epoch(limits["bookable_from"]) - now,
        advance_limit=to_epoch(limits["bookable_until"]),
        # the table's end limits nothing: the advance limit is the one a customer meets
        horizon_end=max(rules.horizon.end, to_epoch(limits["bookable_until"])),
        first=rules.first_date,
        last=rules.last_date,
    )
    return ExplainOut.model_validate(
        {
            "available": e.available,
            "reasons": [{"code": str(r.code), "detail": r.detail} for r in e.reasons],
            "staff_id": staff_id,
            "service_id": service_id,
            "starts_at": from_epoch(t),
            "ends_at": from_epoch(t + service.rule.duration_min * 60),
        }
    ).model_dump(mode="json")


async def explain(request: Request) -> Response:
    authorize(request)
    slug = tenant_slug(request.path_params["slug"])
    staff_id = parse_uuid(_query_param(request, "staff_id"), "query.staff_id")
    service_id = parse_uuid(_query_param(request, "service_id"), "query.service_id")
    raw = _query_param(request, "starts_at")
    try:
        starts_at = parse_instant(raw)
    except ValueError as e:
        raise invalid("query.starts_at", f"query.starts_at: {e}") from None
    if not EARLIEST <= starts_at < LATEST:
        raise invalid("query.starts_at", "query.starts_at: out of range (1970-01-02 .. 9998-12-31)")
    tenant = await _load_tenant(request.app.state.pool, slug, None)
    out = await asyncio.to_thread(
        _explain, request.app.state.sync_pool, tenant, staff_id, service_id, to_epoch(starts_at)
    )
    return JSONResponse(out)


routes: list[BaseRoute] = [
    route(
        "/v1/admin/recalculate",
        recalculate,
        "POST",
        summary="Queue a recalculation (202), or run it now (`wait`: 200)",
        tag="admin",
        body=RecalculateIn,
        responses={200: RecalculateDone, 202: Reply(RecalculateQueued, "Queued")},
        problems=[401, 404, 413, 422, 503],
        security="admin_key",
        name="admin_recalculate",
    ),
    route(
        "/v1/admin/tenants/{slug}/status",
        tenant_status,
        "GET",
        summary="Horizon, slot count, last full refresh, queue, webhook endpoints",
        tag="admin",
        path=TenantPath,
        responses={200: StatusOut},
        problems=[401, 404, 503],
        security="admin_key",
        name="admin_status",
    ),
    route(
        "/v1/admin/tenants/{slug}/explain",
        explain,
        "GET",
        summary="Why a start is or is not offered",
        tag="admin",
        path=TenantPath,
        query=ExplainQuery,
        responses={200: ExplainOut},
        problems=[401, 404, 422, 503],
        security="admin_key",
        name="admin_explain",
    ),
]

__all__ = [
    "ExplainOut",
    "ExplainQuery",
    "RecalculateDone",
    "RecalculateIn",
    "RecalculateQueued",
    "StatusOut",
    "routes",
]
