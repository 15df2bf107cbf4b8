"""Request and response models of the public and host API (SPEC §9).

Requests are validated with these; responses are mostly built by PostgreSQL (reads, holds)
or by api/host.py, and these models document them in /openapi.json (api/openapi.py).
Every model forbids unknown fields, so a typo in a field name is a 422 naming it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from slotmill.api.errors import ProblemError
from slotmill.materializer.horizon import format_instant

MAX_RANGE_DAYS = 62

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
# The zone names the database accepts too (slotmill_valid_zone in migration 0001): POSIX
# specs like 'UTC+3' mean the opposite of what people expect and zoneinfo does not know them.
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")
_ZONE_POSIX = re.compile(r"^(UTC|GMT|Etc/GMT)[+-]?[0-9]")
_ZONE_ETC = re.compile(r"^Etc/GMT[+-][0-9]+$")


def parse_instant(value: Any) -> datetime:
    """An RFC 3339 instant with an offset (``2026-11-23T09:00:00Z``); nothing else."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str) and _INSTANT.match(value):
        try:
            parsed = datetime.fromisoformat(value.upper())
            parsed.astimezone(UTC)  # offsets at the ends of the calendar overflow
        except (ValueError, OverflowError):
            pass
        else:
            return parsed
    raise ValueError("must be an RFC 3339 instant with an offset, like 2026-11-23T09:00:00Z")


def parse_date_or_instant(value: Any) -> date | datetime:
    """A local date (``2026-11-23``) or an RFC 3339 instant."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a calendar date: {value!r}") from None
    try:
        return parse_instant(value)
    except ValueError:
        raise ValueError(
            "must be a date (2026-11-23) or an RFC 3339 instant with an offset"
            " (2026-11-23T09:00:00Z)"
        ) from None


def check_zone(value: str) -> str:
    if (
        len(value) > 64
        or not _ZONE.match(value)
        or (_ZONE_POSIX.match(value) and not _ZONE_ETC.match(value))
    ):
        raise ValueError(f"not an IANA time zone name: {value!r}")
    try:
        ZoneInfo(value)
    except Exception:  # ZoneInfoNotFoundError, or ValueError/OSError for odd names
        raise ValueError(f"unknown IANA time zone: {value!r}") from None
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _instant_out(value: datetime) -> str:
    return format_instant(value)


Instant = Annotated[
    datetime,
    BeforeValidator(parse_instant),
    PlainSerializer(_instant_out, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-11-23T09:00:00Z"}),
]
DateOrInstant = Annotated[
    date | datetime,
    BeforeValidator(parse_date_or_instant),
    WithJsonSchema(
        {
            "type": "string",
            "anyOf": [{"format": "date"}, {"format": "date-time"}],
            "description": "A local date (inclusive; in `tz`, else the tenant's zone)"
            " or an RFC 3339 instant.",
            "example": "2026-11-23",
        }
    ),
]
Zone = Annotated[
    str, AfterValidator(check_zone), WithJsonSchema({"type": "string", "example": "Europe/London"})
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)]
LongText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_no_nul)]
SlotId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- path parameters (documentation: handlers read request.path_params) ---------------------


class TenantPath(_In):
    slug: Slug = Field(description="The tenant's slug.", examples=["demo"])


class HoldPath(TenantPath):
    hold_id: UUID = Field(description="The hold's id.")


class BookingPath(TenantPath):
    booking_id: UUID = Field(description="The booking's id.")


# --- slot reads ---------------------------------------------------------------------------


# A pg_lsn as PostgreSQL prints it (api/replicas.py parses it).
ConsistencyToken = Annotated[
    str, StringConstraints(pattern=r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"), WithJsonSchema(
        {"type": "string", "pattern": "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$", "example": "0/1A2B3C8"}
    )
]


class ConsistencyHeaders(_In):
    """Request headers of the reads (documentation: api/replicas.py reads them)."""

    slotmill_consistency: ConsistencyToken | None = Field(
        None,
        alias="Slotmill-Consistency",
        description="A write's token: the answer comes from a server that has replayed it.",
    )


class SlotQuery(BaseModel):
    """Query parameters of ``GET /v1/tenants/{slug}/slots``. Unknown parameters are ignored
    (widgets add cache busters)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    service_id: UUID
    from_: DateOrInstant = Field(alias="from")
    to: DateOrInstant
    staff_id: UUID | None = None
    location_id: UUID | None = None
    tz: Zone | None = Field(
        None, description="IANA zone of date bounds; default: the tenant's zone."
    )
    group: Literal["time"] | None = Field(
        None, description="`time`: one entry per start, any staff member."
    )
    candidates: int = Field(
        3, ge=1, le=100, description="With group=time: how many staff ids per start."
    )
    consistency: ConsistencyToken | None = Field(
        None,
        description="A write's Slotmill-Consistency token (or send the header): the answer shows at least"
        " that write.",
    )
    limit: int = Field(
        1000,
        ge=1,
        le=5000,
        description="At most this many slots (starts, with group=time) per response; a page never splits"
        " a start. Ask again from `next_from` for the rest.",
    )

    def range_error(self) -> str | None:
        """What is wrong with ``from``..``to`` taken together (reported on ``query.to``)."""
        lo, hi = self.from_, self.to
        if isinstance(lo, datetime) != isinstance(hi, datetime):
            return "`from` and `to` must both be dates or both be instants"
        if isinstance(lo, datetime) and isinstance(hi, datetime):
            if hi < lo:
                return "`to` is before `from`"
            if hi - lo > timedelta(days=MAX_RANGE_DAYS):
                return f"at most {MAX_RANGE_DAYS} days from `from` to `to`"
            return None
        if hi < lo:
            return "`to` is before `from`"
        if (hi - lo).days + 1 > MAX_RANGE_DAYS:
            return f"at most {MAX_RANGE_DAYS} days from `from` to `to` (both inclusive)"
        return None


class SlotOut(_Out):
    id: str = Field(description="Opaque, stable across recomputation; pass it to POST .../holds.")
    starts_at: Instant
    ends_at: Instant
    staff_id: UUID
    location_id: UUID | None
    seats_left: int = Field(
        ge=1, description="Seats left in this group session (held ones taken off); 1 for a one-seat service."
    )


class SlotsOut(_Out):
    slots: list[SlotOut]
    next_from: Instant | None = Field(description="The first start left out (ask again `from` it), or null.")


class TimeSlotOut(_Out):
    starts_at: Instant
    ends_at: Instant
    capacity: int = Field(
        ge=1,
        description="Bookings that could still be made at this start: per location, the staff with a visible"
        " slot as far as the resources allow; for a group service, the seats left.",
    )
    candidates: list[UUID] = Field(
        description="Best first: priority, fewest bookings that day, id."
    )


class TimeSlotsOut(_Out):
    slots: list[TimeSlotOut]
    next_from: Instant | None = Field(description="The first start left out (ask again `from` it), or null.")


# --- holds --------------------------------------------------------------------------------


Seats = Annotated[
    int,
    Field(
        ge=1,
        le=10_000,
        description="Seats of a group session to take (the party size); a one-seat service takes 1.",
    ),
]


class HoldBySlot(_In):
    slot_id: SlotId
    session_id: Text | None = None
    seats: Seats = 1


class HoldByTime(_In):
    service_id: UUID
    starts_at: Instant
    staff_id: UUID | None = Field(
        None, description="Omitted: the first staff member who can take it."
    )
    session_id: Text | None = None
    seats: Seats = 1


class HoldOut(_Out):
    hold_id: UUID
    staff_id: UUID
    service_id: UUID
    location_id: UUID | None
    starts_at: Instant
    ends_at: Instant
    expires_at: datetime = Field(
        description="When the hold lapses, to the microsecond (a countdown from it never ends early)."
    )
    seats: int
    consistency: str = Field(
        description="The primary's WAL position after the hold (also the Slotmill-Consistency header): send it"
        " with later reads so that they never show a state older than this hold.",
        examples=["0/1A2B3C8"],
    )


# --- host backend -------------------------------------------------------------------------


def _email(value: str) -> str:
    # One @, something either side, a dot in the domain: what a booking page can check;
    # whether the address works is the host's to find out.
    if not re.fullmatch(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}", value):
        raise ValueError("not an email address")
    return value


def _phone(value: str) -> str:
    digits = re.sub(r"[\s().-]", "", value)
    if not re.fullmatch(r"\+?[0-9]{6,15}", digits):
        raise ValueError("not a phone number (6 to 15 digits, an optional leading +)")
    return value


Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40), AfterValidator(_phone)]


class Contact(_In):
    """How to reach the customer: stored with the booking, shown to the host, never in a
    public response."""

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_no_nul)
    ]
    email: Email | None = None
    phone: Phone | None = None


class ConfirmIn(_In):
    customer_ref: Text
    notes: LongText | None = None
    contact: Contact | None = None


class CancelIn(_In):
    """An empty object (or no body at all)."""


class RescheduleIn(_In):
    hold_id: UUID


IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[!-~]+$")]


class IdempotencyHeaders(_In):
    """Request headers of the host calls (documentation: api/host.py reads them)."""

    idempotency_key: IdempotencyKey | None = Field(
        None,
        alias="Idempotency-Key",
        description="Replays the first response for the same key and body; another body with it: 422.",
    )
    x_idempotency_key: IdempotencyKey | None = Field(
        None, alias="X-Idempotency-Key", description="Alias of Idempotency-Key."
    )


class BookingOut(_Out):
    id: UUID
    staff_id: UUID
    service_id: UUID
    location_id: UUID | None
    starts_at: Instant
    ends_at: Instant
    status: Literal["held", "confirmed", "cancelled", "expired"]
    seats: int
    customer_ref: str | None
    notes: str | None
    contact: dict[str, Any] | None
    confirmed_at: Instant | None
    cancelled_at: Instant | None
    reschedule_count: int
    rescheduled_from: UUID | None


# --- catalog (built as JSON by PostgreSQL: sql/queries/catalog.sql) -----------------------


class CatalogTenant(_Out):
    slug: str
    name: str
    timezone: str
    horizon_days: int


class CatalogBooking(_Out):
    hold_ttl_seconds: int = Field(
        ge=1,
        description="How long a hold lasts: a countdown run for this long from the hold's answer never ends early.",
    )
    public_confirm: bool = Field(
        description="The tenant lets a booking page confirm holds with its publishable key"
        " (`POST .../holds/{hold_id}/confirm/public`)."
    )
    confirm_url: str | None = Field(
        description="Otherwise: the host's own URL a booking page posts the hold and the contact details to."
    )


class CatalogFeatures(_Out):
    events: bool = Field(description="`GET /v1/tenants/{slug}/events` (live slot changes) is served.")
    waitlist: bool = Field(description="`POST /v1/tenants/{slug}/waitlist` is served.")


class CatalogService(_Out):
    id: UUID
    name: str
    duration_minutes: int
    seats: int = Field(ge=1, description="Seats of one session: more than 1 is a group service.")
    min_notice_minutes: int = Field(ge=0, description="Starts sooner than this from now are not offered.")
    max_advance_days: int = Field(ge=0, description="Starts later than this many days from now are not offered yet.")


class CatalogStaff(_Out):
    id: UUID
    display_name: str
    location_id: UUID | None
    timezone: str = Field(description="The staff member's zone: their own, else their location's, else the tenant's.")
    location_ids: list[UUID] = Field(description="Every location they work at (their own and their hours').")
    service_ids: list[UUID] = Field(description="The active services this staff member performs.")


class CatalogLocation(_Out):
    id: UUID
    name: str
    timezone: str = Field(description="The location's zone, else the tenant's.")


class CatalogOut(_Out):
    tenant: CatalogTenant
    booking: CatalogBooking
    features: CatalogFeatures
    services: list[CatalogService]
    staff: list[CatalogStaff]
    locations: list[CatalogLocation]


# --- probes and errors --------------------------------------------------------------------


class Ok(_Out):
    ok: Literal[True]


class ReplicaStatus(_Out):
    name: str = Field(description="host:port of the replica.")
    ok: bool = Field(description="Serving reads: answers probes and is within SLOTMILL_READ_MAX_LAG_SECONDS.")
    lag_seconds: float | None = Field(
        description="How long ago the primary had WAL it has not replayed (0: caught up)."
    )
    lag_bytes: int | None = Field(description="WAL bytes behind the primary at the last probe.")
    error: str | None = Field(description="Why it does not serve reads, if it does not.")


class Ready(_Out):
    ok: Literal[True]
    schema_version: int
    replicas: list[ReplicaStatus] = Field(
        description="The read replicas (SLOTMILL_READ_DATABASE_URL) as this process last probed them; one that is"
        " down or behind sends its reads to the primary and never makes the API unready."
    )


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is stable, ``field`` names the bad input."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    field: str | None = None
    instance: str | None = None


# --- parsing requests into models ---------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _message(err: Any) -> str:
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def validation_problem(exc: ValidationError, prefix: str) -> ProblemError:
    """A 422 naming the first bad field (``query.from``, ``body.slot_id``), listing all."""
    errors = [
        {"field": ".".join([prefix, *(str(p) for p in e["loc"])]), "message": _message(e)}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    first = errors[0] if errors else {"field": prefix, "message": "invalid"}
    return ProblemError(
        422,
        "validation_error",
        "Invalid request",
        f"{first['field']}: {first['message']}",
        field=first["field"],
        extra={"errors": errors},
    )


def parse_json_object(body: bytes, *, empty_ok: bool = False) -> dict[str, Any]:
    if not body.strip() and empty_ok:
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ProblemError(
            422, "validation_error", "Invalid request", f"body: not valid JSON ({e})", field="body"
        ) from None
    if not isinstance(data, dict):
        raise ProblemError(
            422, "validation_error", "Invalid request", "body: must be a JSON object", field="body"
        )
    return data


def parse_model(model: type[M], data: Any, prefix: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_problem(e, prefix) from None


def parse_uuid(value: str, field: str) -> UUID:
    try:
        if len(value) != 36:
            raise ValueError
        return UUID(value)
    except ValueError:
        raise ProblemError(
            422, "validation_error", "Invalid request", f"{field}: must be a UUID", field=field
        ) from None


def tenant_slug(slug: str) -> str:
    """The {slug} of a path; one that cannot name a tenant is a 404 without a query."""
    if not SLUG.match(slug):
        raise ProblemError(404, "tenant_not_found", "Unknown tenant", f"no tenant {slug!r}")
    return slug
