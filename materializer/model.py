"""Plain data the slot engine works on: rules in, slots out.

Everything here is immutable and free of I/O so that materialization, on-demand
computation, the confirm-time re-check and `explain` share one definition (SPEC §5).

Conventions, chosen for speed in the engine's inner loop:
- Instants are ``int`` seconds since the Unix epoch (UTC). Datetimes exist only at the
  I/O boundary (loader, writer, API).
- Local wall-clock times are ``int`` minutes after local midnight, 0..1440, so that
  ``24:00`` (1440) is representable.
- Local dates are :class:`datetime.date` in the staff member's zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from uuid import UUID

MINUTES_PER_DAY = 1440


class RuleError(ValueError):
    """A stored rule the engine cannot compute: a zone Python's tz database does not know, a
    recurrence that does not parse or never ends, a date outside the years the service
    schedules, a staff member whose slots exceed the recompute budget. That staff member's
    recompute fails with this message as its reason; nobody else's does."""


@dataclass(frozen=True, slots=True)
class TemplateRule:
    """One ``availability_templates`` row: a weekly local window."""

    weekday: int  # ISO 1 = Monday .. 7 = Sunday
    start_min: int
    end_min: int
    location_id: UUID | None = None
    valid_from: date | None = None
    valid_until: date | None = None


@dataclass(frozen=True, slots=True)
class OverrideRule:
    """One ``availability_overrides`` row.

    ``is_available`` rows replace the day's template windows; unavailable rows with times
    subtract ``[start_min, end_min)``, without times close the day. ``rrule`` (RFC 5545,
    DTSTART = ``on_date``) makes the row apply on each occurrence.
    """

    on_date: date
    is_available: bool
    start_min: int | None = None
    end_min: int | None = None
    rrule: str | None = None
    location_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class HolidayRule:
    """A tenant-wide or staff holiday: the whole local day is closed."""

    on_date: date
    rrule: str | None = None
    name: str = ""
    tenant_wide: bool = True


class BusyKind(StrEnum):
    TIME_OFF = "time_off"
    BUSY = "busy"
    BOOKED = "booked"


@dataclass(frozen=True, slots=True)
class BusyRange:
    """A half-open instant range ``[start, end)`` the staff member cannot work in.

    For a confirmed booking this is already its *blocked* range: its own service's
    buffers applied (SPEC §5.2). A confirmed booking (kind ``BOOKED``) also carries what
    the capacity rules need (SPEC §5.6-5.9): its service and own start (which group session
    it belongs to, which day and week it counts on), its location (travel), its seats, and
    its session key (the bookings of one group session count once toward a limit).
    """

    start: int
    end: int
    kind: BusyKind
    ref: str = ""  # id of the source row, for explain
    service_id: UUID | None = None
    starts_at: int | None = None  # None: ``start`` (a range with no booking behind it)
    location_id: UUID | None = None
    seats: int = 1
    session: str = ""  # "": a session of its own (``ref``)

    @property
    def begins(self) -> int:
        """The booking's own start: the instant whose local day and week it counts on."""
        return self.start if self.starts_at is None else self.starts_at


@dataclass(frozen=True, slots=True)
class LiveHold:
    """A held booking that has not expired: its blocked range and when it lapses."""

    start: int  # blocked range, buffers of the held service applied
    end: int
    expires_at: int
    booking_id: str = ""
    # Which group session it is of (service, own start, location): a hold of a candidate's
    # own session lowers its seats at read time instead of hiding it (SPEC §5.6).
    service_id: UUID | None = None
    starts_at: int | None = None
    location_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class ServiceRule:
    """A service as the engine sees it.

    ``seats`` > 1 makes it a group service (SPEC §5.6). ``resources`` are its requirements,
    ``(kind, quantity)``; two entries of one kind add up (SPEC §5.7). ``max_per_day`` and
    ``max_per_week`` limit its confirmed bookings per staff member (SPEC §5.8).
    """

    id: UUID
    duration_min: int
    buffer_before_min: int = 0
    buffer_after_min: int = 0
    interval_min: int | None = None  # None: the duration
    seats: int = 1
    resources: tuple[tuple[str, int], ...] = ()
    max_per_day: int | None = None
    max_per_week: int | None = None

    @property
    def step_s(self) -> int:
        return (self.interval_min or self.duration_min) * 60

    @property
    def group(self) -> bool:
        return self.seats > 1

    @property
    def needs(self) -> tuple[tuple[str, int], ...]:
        """The requirements with one entry per kind (quantities of one kind summed), by kind."""
        if len(self.resources) < 2:
            return self.resources
        total: dict[str, int] = {}
        for kind, quantity in self.resources:
            total[kind] = total.get(kind, 0) + quantity
        return tuple(sorted(total.items()))


@dataclass(frozen=True, slots=True)
class ResourceUse:
    """A confirmed booking holding a resource, of any staff member: its blocked range, and
    the group session it is of (a candidate's own session may share the resource)."""

    start: int
    end: int
    staff_id: UUID
    service_id: UUID
    starts_at: int
    location_id: UUID | None = None
    booking_id: str = ""


@dataclass(frozen=True, slots=True)
class Resource:
    """An active room, chair or machine (SPEC §5.7). ``location_id`` None: usable at every
    location. ``busy``: the confirmed bookings that hold it, sorted by start."""

    id: UUID
    kind: str
    location_id: UUID | None = None
    name: str = ""
    busy: tuple[ResourceUse, ...] = ()


@dataclass(frozen=True, slots=True)
class Travel:
    """Minutes a staff member needs from one location to another (one direction; SPEC §5.9)."""

    from_location: UUID
    to_location: UUID
    minutes: int


@dataclass(frozen=True, slots=True)
class StaffSchedule:
    """Everything the engine needs about one staff member.

    ``holidays`` holds the tenant-wide holidays and the staff member's own.
    ``busy`` holds time off, busy times and confirmed bookings' blocked ranges; the bookings
    reach a week beyond the dates computed, so day and week limits count whole weeks.
    ``holds`` holds live holds only; they hide slots (``held_until``) but never remove them.
    ``max_per_day`` and ``max_per_week`` limit the staff member's confirmed bookings (all
    services). ``resources`` and ``travel`` are the tenant's (shared by every staff member's
    schedule): resources with their busy ranges from every staff member's bookings.
    """

    staff_id: UUID
    zone: str
    location_id: UUID | None = None
    templates: tuple[TemplateRule, ...] = ()
    overrides: tuple[OverrideRule, ...] = ()
    holidays: tuple[HolidayRule, ...] = ()
    busy: tuple[BusyRange, ...] = ()
    holds: tuple[LiveHold, ...] = ()
    max_per_day: int | None = None
    max_per_week: int | None = None
    resources: tuple[Resource, ...] = ()
    travel: tuple[Travel, ...] = ()


@dataclass(frozen=True, slots=True)
class Window:
    """A merged working window ``[start, end)`` in instants, with its location."""

    start: int
    end: int
    location_id: UUID | None


@dataclass(frozen=True, slots=True)
class Slot:
    staff_id: UUID
    service_id: UUID
    location_id: UUID | None
    starts_at: int
    ends_at: int
    held_until: int | None = None
    # Seats left in its session (1 for a one-seat service), and how many such bookings the
    # resources still allow at its start (None: the service needs none). SPEC §5.6-5.7.
    seats_left: int = 1
    resource_free: int | None = None


class ReasonCode(StrEnum):
    AVAILABLE = "available"
    NOT_QUALIFIED = "not_qualified"
    INACTIVE = "inactive"
    HOLIDAY = "holiday"
    OUTSIDE_WORKING_HOURS = "outside_working_hours"
    OFF_GRID = "off_grid"
    TIME_OFF = "time_off"
    BUSY = "busy"
    BOOKED = "booked"
    HELD = "held"
    MIN_NOTICE = "min_notice"
    BEYOND_HORIZON = "beyond_horizon"
    IN_PAST = "in_past"
    SESSION_FULL = "session_full"
    RESOURCE_BUSY = "resource_busy"
    LIMIT_REACHED = "limit_reached"
    TRAVEL = "travel"


@dataclass(frozen=True, slots=True)
class Reason:
    code: ReasonCode
    detail: str


@dataclass(frozen=True, slots=True)
class Explanation:
    available: bool
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
