"""The console's day timeline: ``GET /v1/admin/tenants/{slug}/staff/{staff_id}/day``.

One staff member, one service, one local date in the staff member's zone: the rule rows
that apply that day, the merged working windows, the busy set (with travel-widened ranges),
live holds, every grid candidate with whether it is a slot and explain's reasons, the slots
a refresh writes for the day, and what ``availability_slots`` holds (drift is the
difference). Everything computed is the engine's own (``engine.day_view``); this module
reads, in one snapshot, and shapes.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfoNotFoundError

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from slotmill.api.admin import authorize
from slotmill.api.admin_query import LocalDate, local_iso, parse_query
from slotmill.api.errors import invalid, not_found
from slotmill.api.models import Instant, TenantPath, parse_uuid, tenant_slug
from slotmill.api.routing import route
from slotmill.materializer import engine
from slotmill.materializer.engine.day import DayView
from slotmill.materializer.engine.recurrence import applies_on
from slotmill.materializer.horizon import (
    MAX_SPAN_S,
    from_epoch,
    local_date,
    local_midnight,
    to_epoch,
    window_dates,
    zone,
)
from slotmill.materializer.loader import Tenant, load_rules
from slotmill.materializer.model import BusyKind, RuleError, ServiceRule, Slot
from slotmill.materializer.slot_ids import slot_id
from slotmill.sql import owned_by

Q = owned_by(__name__)


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- request --------------------------------------------------------------------------------


class DayPath(TenantPath):
    staff_id: UUID = Field(description="The staff member's id.")


class DayQuery(_In):
    date: LocalDate = Field(
        description="A local date in the staff member's zone: from 9 days before today to 9 days after the"
        " horizon or the service's advance limit, whichever is later."
    )
    service_id: UUID


# --- response -------------------------------------------------------------------------------


class Span(_Out):
    start: Instant
    end: Instant
    start_local: str = Field(description="`start` in the staff member's zone, with its offset.")
    end_local: str


class WindowOut(Span):
    location_id: UUID | None


class RuleRowOut(_Out):
    kind: Literal["template", "override", "holiday"]
    id: UUID
    weekday: int | None = Field(description="Templates: ISO weekday, 1 = Monday.")
    on_date: date | None = Field(description="Overrides and holidays: the row's date (a recurrence's first).")
    is_available: bool | None
    start_time: str | None = Field(description="Local wall-clock time, `HH:MM` (`24:00` is the end of the day).")
    end_time: str | None
    location_id: UUID | None
    valid_from: date | None
    valid_until: date | None
    rrule: str | None
    label: str | None = Field(description="An override's reason, a holiday's name.")
    tenant_wide: bool = Field(description="A holiday of the whole tenant.")
    spans: list[Span] = Field(
        description="The instants the row covers on this date: its wall-clock times, or the whole day for a"
        " holiday or a closed day."
    )


class WidenedOut(Span):
    location_id: UUID | None = Field(description="Candidates at this location see the booking over this range.")


class BookingRefOut(_Out):
    starts_at: Instant
    ends_at: Instant
    start_local: str
    end_local: str
    service_id: UUID | None
    service_name: str | None
    status: str | None
    customer_ref: str | None


class BusyOut(Span):
    """A range of the busy set as the engine loaded it: a booking's blocked range; time off
    or a busy time reaching far beyond the day is cut 3 days from it (nothing it can block
    changes)."""

    kind: Literal["time_off", "busy", "booked"]
    id: str = Field(description="The time_off, busy_times or bookings row.")
    label: str | None = Field(description="Time off: its reason; busy time: source and external id.")
    booking: BookingRefOut | None = Field(
        description="A confirmed booking: its own range (`start`..`end` is its blocked range, buffers included)."
    )
    location_id: UUID | None
    seats: int
    travel: list[WidenedOut] = Field(description="Where travel widens it: how it blocks candidates at other locations.")


class HoldOut(Span):
    id: str = Field(description="The held booking (`start`..`end` is its blocked range).")
    expires_at: Instant
    booking: BookingRefOut | None


class ReasonOut(_Out):
    code: str
    detail: str


class CandidateOut(_Out):
    starts_at: Instant
    ends_at: Instant
    start_local: str
    location_id: UUID | None
    blocked_start: Instant
    blocked_end: Instant
    slot: bool = Field(description="Materialization writes a slot for this start.")
    held_until: Instant | None
    seats_left: int | None
    resource_free: int | None
    available: bool = Field(description="Explain's verdict now: a public read would show it.")
    reasons: list[ReasonOut]


class SlotRowOut(_Out):
    id: str
    starts_at: Instant
    ends_at: Instant
    location_id: UUID | None
    held_until: Instant | None
    seats_left: int
    resource_free: int | None


class DriftOut(_Out):
    missing: list[Instant] = Field(description="Starts the engine offers and the table lacks.")
    unexpected: list[Instant] = Field(description="Starts the table holds and the engine does not offer.")
    changed: list[Instant] = Field(description="Starts both have, with different rows.")


class HorizonSpan(_Out):
    start: Instant
    end: Instant
    table_end: Instant = Field(
        description="Where availability_slots ends (the horizon's end, or less while the nightly refresh has"
        " not written a new day): past it, reads compute slots on demand and nothing is compared with the table."
    )


class DayOut(_Out):
    tenant: str
    staff_id: UUID
    staff_name: str
    service_id: UUID
    service_name: str
    date: date
    zone: str = Field(description="The staff member's zone: the day and every `*_local` are in it.")
    day: Span
    now: Instant
    bookable_from: Instant
    bookable_until: Instant
    horizon: HorizonSpan
    offered: bool = Field(description="The staff member has slots of this service at all (both active, linked).")
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    interval_minutes: int
    rules: list[RuleRowOut] = Field(description="The rule rows that apply on this date.")
    windows: list[WindowOut] = Field(description="Merged working windows that overlap the day, whole.")
    busy: list[BusyOut] = Field(description="The busy set, as far as it can block a candidate of the day.")
    holds: list[HoldOut] = Field(description="Live holds that can hide a candidate of the day.")
    candidates: list[CandidateOut] = Field(description="Every grid start of the day's windows.")
    slots: list[SlotRowOut] = Field(
        description="The engine's slots of the day from the start of today: before `horizon.table_end` what a"
        " refresh writes, after it what a read computes on demand."
    )
    table: list[SlotRowOut] = Field(description="What availability_slots holds for the day.")
    drift: DriftOut = Field(description="The slots and the table compared, for starts before the table's end.")


# --- the handler ----------------------------------------------------------------------------


def _span(lo: int, hi: int, tz: str) -> dict[str, Any]:
    return {
        "start": from_epoch(lo),
        "end": from_epoch(hi),
        "start_local": local_iso(lo, tz),
        "end_local": local_iso(hi, tz),
    }


def _zone(name: str) -> str:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError(f"the staff member's zone {name!r} is not a time zone the engine knows") from None
    return name


def _applies(row: dict[str, Any], on: date) -> bool:
    if row["kind"] == "template" or row["rrule"] is None:
        return True
    return on.toordinal() in applies_on(row["rrule"], row["on_date"], on, on)


def _minute(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _rule_spans(row: dict[str, Any], on: date, tz: str, day: tuple[int, int]) -> list[dict[str, Any]]:
    if row["kind"] == "holiday" or (
        row["kind"] == "override" and not row["is_available"] and row["start_time"] is None
    ):
        return [_span(*day, tz)]
    if row["start_time"] is None or row["end_time"] is None:
        return []  # an available override without times adds nothing
    pieces = engine.wall_spans(tz, on, _minute(row["start_time"]), _minute(row["end_time"]))
    return [_span(lo, hi, tz) for lo, hi in pieces]


def _booking_ref(source: dict[str, Any] | None, tz: str) -> dict[str, Any] | None:
    if source is None or source["kind"] != "booking":
        return None
    lo, hi = to_epoch(source["starts_at"]), to_epoch(source["ends_at"])
    return {
        "starts_at": source["starts_at"],
        "ends_at": source["ends_at"],
        "start_local": local_iso(lo, tz),
        "end_local": local_iso(hi, tz),
        "service_id": source["service_id"],
        "service_name": source["service_name"],
        "status": source["status"],
        "customer_ref": source["customer_ref"],
    }


def _slot_row(tenant_id: UUID, staff_id: UUID, service_id: UUID, s: Slot) -> dict[str, Any]:
    return {
        "id": slot_id(tenant_id, staff_id, service_id, s.starts_at),
        "starts_at": from_epoch(s.starts_at),
        "ends_at": from_epoch(s.ends_at),
        "location_id": s.location_id,
        "held_until": None if s.held_until is None else from_epoch(s.held_until),
        "seats_left": s.seats_left,
        "resource_free": s.resource_free,
    }


def _drift_key(row: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    # As verify compares: a lapsed hold hides nothing, whether or not its mark is still there.
    held = row["held_until"]
    if held is not None and held <= now:
        held = None
    return (row["location_id"], row["ends_at"], held, row["seats_left"], row["resource_free"])


def _drift(
    engine_rows: list[dict[str, Any]], table_rows: list[dict[str, Any]], now: datetime, table_end: datetime
) -> dict[str, Any]:
    want = {r["starts_at"]: _drift_key(r, now) for r in engine_rows if r["starts_at"] < table_end}
    have = {r["starts_at"]: _drift_key(r, now) for r in table_rows}
    return {
        "missing": sorted(t for t in want if t not in have),
        "unexpected": sorted(t for t in have if t not in want),
        "changed": sorted(t for t, k in want.items() if t in have and have[t] != k),
    }


def _shape(
    view: DayView,
    ctx: dict[str, Any],
    tenant: Tenant,
    staff_id: UUID,
    service_id: UUID,
    on: date,
    tz: str,
    horizon: tuple[int, int],
    rule_rows: list[dict[str, Any]],
    sources: dict[str, dict[str, Any]],
    table: list[dict[str, Any]],
    service: ServiceRule,
    offered: bool,
) -> dict[str, Any]:
    now = ctx["now"]
    engine_rows = [_slot_row(tenant.id, staff_id, service_id, s) for s in view.slots]
    busy = []
    for blocker in view.busy:
        b = blocker.busy
        source = sources.get(b.ref)
        busy.append(
            {
                **_span(b.start, b.end, tz),
                "kind": str(b.kind),
                "id": b.ref,
                "label": None if source is None else source["label"],
                "booking": _booking_ref(source, tz) if b.kind is BusyKind.BOOKED else None,
                "location_id": b.location_id,
                "seats": b.seats,
                "travel": [{**_span(w.start, w.end, tz), "location_id": w.location_id} for w in blocker.widened],
            }
        )
    out = DayOut.model_validate(
        {
            "tenant": tenant.slug,
            "staff_id": staff_id,
            "staff_name": ctx["staff_name"],
            "service_id": service_id,
            "service_name": ctx["service_name"],
            "date": on,
            "zone": tz,
            "day": _span(view.start, view.end, tz),
            "now": now,
            "bookable_from": ctx["bookable_from"],
            "bookable_until": ctx["bookable_until"],
            "horizon": {
                "start": from_epoch(horizon[0]),
                "end": from_epoch(horizon[1]),
                "table_end": ctx["table_end"],
            },
            "offered": offered,
            "duration_minutes": service.duration_min,
            "buffer_before_minutes": service.buffer_before_min,
            "buffer_after_minutes": service.buffer_after_min,
            "interval_minutes": service.step_s // 60,
            "rules": [{**r, "spans": _rule_spans(r, on, tz, (view.start, view.end))} for r in rule_rows],
            "windows": [{**_span(w.start, w.end, tz), "location_id": w.location_id} for w in view.windows],
            "busy": busy,
            "holds": [
                {
                    **_span(h.start, h.end, tz),
                    "id": h.booking_id,
                    "expires_at": from_epoch(h.expires_at),
                    "booking": _booking_ref(sources.get(h.booking_id), tz),
                }
                for h in view.holds
            ],
            "candidates": [
                {
                    "starts_at": from_epoch(c.starts_at),
                    "ends_at": from_epoch(c.ends_at),
                    "start_local": local_iso(c.starts_at, tz),
                    "location_id": c.location_id,
                    "blocked_start": from_epoch(c.blocked_start),
                    "blocked_end": from_epoch(c.blocked_end),
                    "slot": c.slot is not None,
                    "held_until": None
                    if c.slot is None or c.slot.held_until is None
                    else from_epoch(c.slot.held_until),
                    "seats_left": None if c.slot is None else c.slot.seats_left,
                    "resource_free": None if c.slot is None else c.slot.resource_free,
                    "available": c.explanation.available,
                    "reasons": [{"code": str(r.code), "detail": r.detail} for r in c.explanation.reasons],
                }
                for c in view.candidates
            ],
            "slots": engine_rows,
            "table": table,
            "drift": _drift(engine_rows, table, now, ctx["table_end"]),
        }
    )
    return out.model_dump(mode="json")


def _day(sync_pool: ConnectionPool[Any], slug: str, staff_id: UUID, service_id: UUID, on: date) -> dict[str, Any]:
    with sync_pool.connection() as conn, conn.transaction():
        conn.execute(Q["day_snapshot"])
        with conn.cursor(row_factory=dict_row) as cur:
            ctx = cur.execute(
                Q["day_context"], {"slug": slug, "staff_id": staff_id, "service_id": service_id}
            ).fetchone()
            if ctx is None:
                raise not_found("tenant", f"no tenant {slug!r}")
            if not ctx["staff_found"]:
                raise not_found("staff", f"no staff member {staff_id} in tenant {slug!r}")
            if not ctx["service_found"]:
                raise not_found("service", f"no service {service_id} in tenant {slug!r}")
            tenant = Tenant.from_row(ctx)
            tz = _zone(ctx["staff_zone"])
            now = to_epoch(ctx["now"])
            h = tenant.horizon(now)
            advance = to_epoch(ctx["bookable_until"])
            first, last = window_dates(h, local_date(max(h.end, advance), tz))
            if not first <= on <= last:
                raise invalid("query.date", f"query.date: outside the dates the engine builds ({first} .. {last})")
            lo, hi = local_midnight(on, tz), local_midnight(on + timedelta(days=1), tz)
            # Past the horizon, slots are the engine's on demand: windows built through the day,
            # as reads, holds and explain build them there (materializer/beyond.py).
            rules = load_rules(conn, tenant, staff_ids=[staff_id], lo=lo, hi=hi, now=now, beyond=hi > h.end)
            params = {
                "tenant_id": tenant.id,
                "staff_id": staff_id,
                "service_id": service_id,
                "on_date": on,
                "lo": from_epoch(lo),
                "hi": from_epoch(hi),
            }
            rule_rows = [r for r in cur.execute(Q["day_rules"], params).fetchall() if _applies(r, on)]
            wide = {**params, "lo": from_epoch(lo - MAX_SPAN_S), "hi": from_epoch(hi + MAX_SPAN_S)}
            sources = {r["ref"]: r for r in cur.execute(Q["day_sources"], wide).fetchall()}
            table = cur.execute(Q["day_table"], params).fetchall()
    staff = rules.staff[staff_id]
    info = rules.services[service_id]
    schedule = staff.computable()
    offered = bool(staff.offered(service_id))
    view = engine.day_view(
        schedule,
        info.rule,
        start=lo,
        end=hi,
        offered=offered,
        qualified=staff_id in info.staff_ids,
        active=staff.active and info.active,
        now=now,
        min_notice_s=to_epoch(ctx["bookable_from"]) - now,
        advance_limit=to_epoch(ctx["bookable_until"]),
        horizon_start=h.start,
        # as explain's endpoint: the table's end limits nothing, the advance limit does
        horizon_end=max(h.end, advance),
        first=rules.first_date,
        last=rules.last_date,
    )
    return _shape(
        view, ctx, tenant, staff_id, service_id, on, tz, (h.start, h.end), rule_rows, sources, table, info.rule, offered
    )


async def staff_day(request: Request) -> Response:
    authorize(request)
    slug = tenant_slug(request.path_params["slug"])
    staff_id = parse_uuid(request.path_params["staff_id"], "path.staff_id")
    query = parse_query(request, DayQuery)
    out = await asyncio.to_thread(_day, request.app.state.sync_pool, slug, staff_id, query.service_id, query.date)
    return JSONResponse(out)


routes: list[BaseRoute] = [
    route(
        "/v1/admin/tenants/{slug}/staff/{staff_id}/day",
        staff_day,
        "GET",
        summary="One staff member's day for a service, as the engine computes it",
        tag="admin",
        path=DayPath,
        query=DayQuery,
        responses={200: DayOut},
        problems=[401, 404, 409, 422, 503],
        notes={409: "A stored rule of this staff member cannot be computed (`rule_invalid`)."},
        security="admin_key",
        name="admin_staff_day",
    ),
]

__all__ = ["DayOut", "DayPath", "DayQuery", "routes"]
