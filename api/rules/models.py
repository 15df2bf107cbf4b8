"""Bodies of the rules API: one ``*In`` model per resource (what POST and PUT take, and what
PATCH is merged into) and one ``*Out`` (what every answer shows).

Checks that involve two fields (an end after its start, a recurrence from its date) are in
``problems()``, which names the field, so every invalid value is a 422 naming it before
the database is asked; the database's own refusals are mapped to fields too (errors.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from slotmill.api.models import Text, Zone
from slotmill.api.rules.fields import (
    Day,
    Kind,
    Limit,
    Minutes,
    Moment,
    Reason,
    RRule,
    Url,
    WallClock,
    minutes,
    never_recurs,
)

Problems = Iterator[tuple[str, str]]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def problems(self) -> Problems:
        """(field, message) of each cross-field problem."""
        return iter(())


class RuleOut(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _range(starts: datetime, ends: datetime) -> Problems:
    if ends <= starts:
        yield "ends_at", "must be after starts_at"


def _times(start: str | None, end: str | None) -> Problems:
    if start is not None and end is not None and minutes(end) <= minutes(start):
        yield "end_time", "must be after start_time (24:00 is the end of the day)"


def _recurrence(rule: str | None, on_date: date) -> Problems:
    if rule is not None:
        problem = never_recurs(rule, on_date)
        if problem:
            yield "rrule", problem


# --- locations, staff, services ------------------------------------------------------------


class LocationIn(RuleIn):
    name: Text
    timezone: Zone | None = Field(None, description="IANA zone; null: the tenant's.")


class LocationOut(RuleOut):
    id: UUID
    name: str
    timezone: str | None


class StaffIn(RuleIn):
    display_name: Text
    location_id: UUID | None = None
    timezone: Zone | None = Field(None, description="IANA zone; null: the location's, else the tenant's.")
    priority: int = Field(100, ge=-1_000_000, le=1_000_000, description="Lower is offered first.")
    active: StrictBool = True
    max_bookings_per_day: Limit | None = None
    max_bookings_per_week: Limit | None = None


class StaffOut(RuleOut):
    id: UUID
    display_name: str
    location_id: UUID | None
    timezone: str | None
    priority: int
    active: bool
    max_bookings_per_day: int | None
    max_bookings_per_week: int | None


class ServiceIn(RuleIn):
    name: Text
    duration_minutes: Annotated[int, Field(ge=1, le=1440)]
    buffer_before_minutes: Minutes = 0
    buffer_after_minutes: Minutes = 0
    slot_interval_minutes: Annotated[int, Field(ge=1, le=1440)] | None = Field(None, description="Null: the duration.")
    min_notice_minutes: Annotated[int, Field(ge=0, le=5_256_000)] | None = None
    max_advance_days: Annotated[int, Field(ge=0, le=3660)] | None = None
    active: StrictBool = True
    seats: Annotated[int, Field(ge=1, le=10_000)] = 1
    max_bookings_per_day: Limit | None = None
    max_bookings_per_week: Limit | None = None


class ServiceOut(RuleOut):
    id: UUID
    name: str
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    slot_interval_minutes: int | None
    min_notice_minutes: int | None
    max_advance_days: int | None
    active: bool
    seats: int
    max_bookings_per_day: int | None
    max_bookings_per_week: int | None


class StaffServiceIn(RuleIn):
    staff_id: UUID
    service_id: UUID


class StaffServiceOut(RuleOut):
    id: UUID
    staff_id: UUID
    service_id: UUID


# --- the weekly template --------------------------------------------------------------------


class WindowIn(RuleIn):
    weekday: Annotated[int, Field(ge=1, le=7, description="ISO: 1 is Monday, 7 Sunday.")]
    start_time: WallClock
    end_time: WallClock = Field(description="Local wall-clock time; 24:00 is the end of the day.")
    location_id: UUID | None = None
    valid_from: Day | None = None
    valid_until: Day | None = None

    def problems(self) -> Problems:
        yield from _times(self.start_time, self.end_time)
        if self.valid_from is not None and self.valid_until is not None and self.valid_until < self.valid_from:
            yield "valid_until", "must not be before valid_from"


class WindowOut(RuleOut):
    weekday: int
    start_time: str
    end_time: str
    location_id: UUID | None
    valid_from: date | None
    valid_until: date | None


class WeekIn(RuleIn):
    windows: list[WindowIn] = Field(max_length=500, description="The whole week: it replaces every window.")


class WeekOut(RuleOut):
    staff_id: UUID
    windows: list[WindowOut] = Field(description="By weekday, then start time.")


# --- dated rules and ranges -----------------------------------------------------------------


class OverrideIn(RuleIn):
    staff_id: UUID
    on_date: Day
    is_available: StrictBool
    start_time: WallClock | None = None
    end_time: WallClock | None = None
    rrule: RRule | None = Field(None, description="RFC 5545 RRULE of dates, DTSTART = on_date; it must end or recur.")
    location_id: UUID | None = None
    reason: Reason = ""

    def problems(self) -> Problems:
        if (self.start_time is None) != (self.end_time is None):
            yield (
                ("end_time" if self.end_time is None else "start_time"),
                "give both start_time and end_time, or neither",
            )
        elif self.start_time is None and self.is_available:
            yield "start_time", "an available override needs its times"
        yield from _times(self.start_time, self.end_time)
        yield from _recurrence(self.rrule, self.on_date)


class OverrideOut(RuleOut):
    id: UUID
    staff_id: UUID
    on_date: date
    is_available: bool
    start_time: str | None
    end_time: str | None
    rrule: str | None
    location_id: UUID | None
    reason: str


class HolidayIn(RuleIn):
    staff_id: UUID | None = Field(None, description="Null: the whole tenant.")
    on_date: Day
    rrule: RRule | None = None
    name: Reason = ""

    def problems(self) -> Problems:
        yield from _recurrence(self.rrule, self.on_date)


class HolidayOut(RuleOut):
    id: UUID
    staff_id: UUID | None
    on_date: date
    rrule: str | None
    name: str


class TimeOffIn(RuleIn):
    staff_id: UUID
    starts_at: Moment
    ends_at: Moment
    reason: Reason = ""

    def problems(self) -> Problems:
        return _range(self.starts_at, self.ends_at)


class TimeOffOut(RuleOut):
    id: UUID
    staff_id: UUID
    starts_at: str
    ends_at: str
    reason: str


def _source(value: str) -> str:
    if value.startswith("feed:"):
        raise ValueError("`feed:` sources are the calendar feeds' own (see /calendar-feeds)")
    return value


SourceName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$"), AfterValidator(_source)]


class BusyTimeIn(RuleIn):
    staff_id: UUID
    starts_at: Moment
    ends_at: Moment
    source: SourceName = Field("external", description="Who writes it; `feed:*` is the calendar feeds' own.")
    external_id: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$")] | None = Field(
        None, description="The source's id: a write with a known (source, external_id) updates that row."
    )

    def problems(self) -> Problems:
        return _range(self.starts_at, self.ends_at)


class BusyTimeOut(RuleOut):
    id: UUID
    staff_id: UUID
    starts_at: str
    ends_at: str
    source: str
    external_id: str | None


# --- resources, requirements, travel --------------------------------------------------------


class ResourceIn(RuleIn):
    location_id: UUID | None = Field(None, description="Null: usable at every location.")
    kind: Kind
    name: Text
    active: StrictBool = True


class ResourceOut(RuleOut):
    id: UUID
    location_id: UUID | None
    kind: str
    name: str
    active: bool


class RequirementIn(RuleIn):
    service_id: UUID
    kind: Kind
    quantity: Annotated[int, Field(ge=1, le=100)] = 1


class RequirementOut(RuleOut):
    id: UUID
    service_id: UUID
    kind: str
    quantity: int


class TravelIn(RuleIn):
    from_location_id: UUID
    to_location_id: UUID
    minutes: Minutes

    def problems(self) -> Problems:
        if self.from_location_id == self.to_location_id:
            yield "to_location_id", "must differ from from_location_id"


class TravelOut(RuleOut):
    id: UUID
    from_location_id: UUID
    to_location_id: UUID
    minutes: int


# --- calendar feeds -------------------------------------------------------------------------


class FeedIn(RuleIn):
    staff_id: UUID
    url: Url = Field(description="An iCalendar (ICS) URL; webcal:// is fetched over https.")
    name: Reason = ""
    refresh_minutes: Annotated[int, Field(ge=1, le=10080)] = 15
    active: StrictBool = True


class FeedOut(RuleOut):
    id: UUID
    staff_id: UUID
    url: str
    name: str
    refresh_minutes: int
    active: bool
    next_sync_at: str
    last_sync_at: str | None
    last_success_at: str | None
    last_status: Literal["ok", "not_modified", "error"] | None
    last_http_status: int | None
    last_error: str | None
    busy_count: int = Field(description="Busy times the last successful sync left.")
    failures: int = Field(description="Failed syncs since the last success.")
