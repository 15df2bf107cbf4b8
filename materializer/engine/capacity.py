"""Capacity: what, beyond a free blocked range, makes a candidate a slot, and what the slot
carries (docs/rules.md: seats, resources, limits, travel; SPEC §5.6-5.9).

- **Sessions.** A candidate of a group service (seats > 1) at ``t`` and location ``L`` is
  the session (staff, service, ``t``) at ``L``. The confirmed bookings of that session do
  not block it; they take its seats. Every other booking blocks as usual, the other
  sessions of the same service included.
- **Travel.** A confirmed booking at another location ``L'`` blocks a candidate at ``L``
  over its blocked range widened by travel(L -> L') before and travel(L' -> L) after.
- **Limits.** Per local day and ISO week of the staff member's zone, confirmed bookings
  counted once per session; a reached limit removes the day's candidates, except a group
  session that already has a confirmed booking (joining adds no session).
- **Resources.** For each requirement (kind, quantity), the resources of that kind at ``L``
  or with no location that are free over the candidate's blocked range (those held only by
  its own session count as free); ``resource_free`` = min of free // quantity.

:class:`Capacity` answers these for one staff member and one computation, cheaply for the
grid (sorted unions, bisection) and one candidate at a time for explain. The common case
(one seat, no resources, no limits, no travel to apply) is the plain busy index alone.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import NamedTuple
from uuid import UUID

from slotmill.materializer.engine.windows import union
from slotmill.materializer.engine.zones import day_segments, local_date_of, zone_segments
from slotmill.materializer.model import (
    BusyKind,
    BusyRange,
    LiveHold,
    Resource,
    ResourceUse,
    ServiceRule,
    StaffSchedule,
    Window,
)


class BusyIndex:
    """Ranges as a sorted union: a blocked range is free iff it misses the union. Empty
    ranges must be left out by the caller."""

    __slots__ = ("ends", "starts")

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        merged = union(ranges)
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def overlaps(self, b0: int, b1: int) -> bool:
        k = bisect_right(self.ends, b0)  # the first piece ending after b0
        return k < len(self.ends) and self.starts[k] < b1


def same_place(a: UUID | None, b: UUID | None) -> bool:
    """Whether two locations can be one session's: a booking (or slot) with no location
    belongs to the session wherever it is."""
    return a is None or b is None or a == b


def week_label(ordinal: int) -> str:
    year, week, _ = date.fromordinal(ordinal).isocalendar()
    return f"{year}-W{week:02d}"


class LimitHit(NamedTuple):
    """A reached limit: whose (``staff`` or ``service``), which period (``day`` or
    ``week``), the sessions booked in it, the limit, and the period's label."""

    scope: str
    period: str
    booked: int
    limit: int
    label: str


class ResourceCount(NamedTuple):
    kind: str
    free: int
    needed: int
    usable: int  # resources of the kind usable at the location


class _Counts:
    """Sessions of confirmed bookings per local day (ordinal) and ISO week (its Monday's
    ordinal)."""

    __slots__ = ("day", "week")

    def __init__(self) -> None:
        self.day: dict[int, set[str]] = {}
        self.week: dict[int, set[str]] = {}

    def add(self, ordinal: int, session: str) -> None:
        self.day.setdefault(ordinal, set()).add(session)
        monday = ordinal - (ordinal - 1) % 7  # ordinal 1 (0001-01-01) is a Monday
        self.week.setdefault(monday, set()).add(session)

    def on_day(self, ordinal: int) -> int:
        return len(self.day.get(ordinal, ()))

    def in_week(self, ordinal: int) -> int:
        return len(self.week.get(ordinal - (ordinal - 1) % 7, ()))


class _Ranges(NamedTuple):
    """Ranges sorted by start, with the longest length, for "which of these overlap
    [b0, b1)" by bisection."""

    starts: list[int]
    items: list[tuple[int, int, BusyRange]]
    longest: int


class _ResourceIndex:
    """One resource's busy ranges: their union (is it free at all?) and the uses by start
    (is it held only by the candidate's own session?)."""

    __slots__ = ("busy", "longest", "resource", "use_starts", "uses")

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        uses = sorted((u for u in resource.busy if u.start < u.end), key=lambda u: u.start)
        self.busy = BusyIndex((u.start, u.end) for u in uses)
        self.uses = uses
        self.use_starts = [u.start for u in uses]
        self.longest = max((u.end - u.start for u in uses), default=0)

    def free(self, b0: int, b1: int, own: Callable[[ResourceUse], bool] | None) -> bool:
        if not self.busy.overlaps(b0, b1):
            return True
        if own is None:
            return False
        i = bisect_left(self.use_starts, b0 - self.longest)
        for u in self.uses[i:]:
            if u.start >= b1:
                break
            if u.end > b0 and not own(u):
                return False
        return True


# Resource indexes are built once per resource object, not per staff member: a full refresh
# hands every staff member's schedule the same tuple of resources. Keyed by identity, with
# the object kept so that its id cannot be reused while cached; bounded.
_RESOURCE_CACHE: dict[int, tuple[Resource, _ResourceIndex]] = {}
_RESOURCE_CACHE_MAX = 4096


def _resource_index(resource: Resource) -> _ResourceIndex:
    hit = _RESOURCE_CACHE.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    index = _ResourceIndex(resource)
    if len(_RESOURCE_CACHE) >= _RESOURCE_CACHE_MAX:
        # the oldest entry; another thread (the API's) may have evicted it already
        _RESOURCE_CACHE.pop(next(iter(_RESOURCE_CACHE), 0), None)
    _RESOURCE_CACHE[id(resource)] = (resource, index)
    return index


def _compact(values: list[int]) -> int | list[int]:
    """One number when every start has the same (the common case), else the list."""
    first = values[0]
    return first if values.count(first) == len(values) else values


class Capacity:
    """The capacity rules for one staff member's schedule, over the given windows."""

    def __init__(self, schedule: StaffSchedule, windows: Sequence[Window] = ()) -> None:
        self.schedule = schedule
        self.windows = windows
        self.travel = {(t.from_location, t.to_location): t.minutes * 60 for t in schedule.travel if t.minutes > 0}
        self._busy: list[BusyRange] | None = None
        self._booking_places: set[UUID | None] | None = None
        self._indexes: dict[tuple[UUID | None, UUID | None], BusyIndex] = {}
        self._sessions: dict[tuple[UUID, UUID | None], _Ranges] = {}
        self._counts: dict[UUID | None, _Counts] | None = None
        self._spans: dict[UUID, BusyIndex] = {}
        self._pools: dict[tuple[str, UUID | None], list[_ResourceIndex]] = {}

    @property
    def busy(self) -> list[BusyRange]:
        """The busy set without empty ranges: they block nothing, travel or not."""
        if self._busy is None:
            self._busy = [b for b in self.schedule.busy if b.start < b.end]
        return self._busy

    # --- travel -------------------------------------------------------------------------

    def _travel_from(self, location: UUID | None) -> UUID | None:
        """``location`` when some booking is at a place travel to or from it applies, else
        None (no range is widened: the plain index serves)."""
        if not self.travel or location is None:
            return None
        if self._booking_places is None:
            self._booking_places = {b.location_id for b in self.busy if b.kind is BusyKind.BOOKED} - {None}
        for place in self._booking_places:
            if place != location and ((location, place) in self.travel or (place, location) in self.travel):
                return location
        return None

    def widened(self, b: BusyRange, location: UUID | None) -> tuple[int, int]:
        """``b``'s range as it blocks a candidate at ``location``: a confirmed booking at
        another location is widened by the travel there before and back after."""
        if location is None or b.kind is not BusyKind.BOOKED or b.location_id is None or b.location_id == location:
            return b.start, b.end
        there = self.travel.get((location, b.location_id), 0)
        back = self.travel.get((b.location_id, location), 0)
        return b.start - there, b.end + back

    # --- the busy index -------------------------------------------------------------------

    def busy_index(self, location: UUID | None, group_service: UUID | None) -> BusyIndex:
        """What blocks every candidate at ``location`` alike: the busy set, widened by
        travel to and from ``location``, without the bookings of ``group_service`` (those
        are judged per candidate: see :meth:`session`)."""
        place = self._travel_from(location)
        key = (place, group_service)
        index = self._indexes.get(key)
        if index is None:
            if group_service is None and place is None:
                # the common case, built straight from the schedule
                index = BusyIndex((b.start, b.end) for b in self.schedule.busy if b.start < b.end)
            else:
                ranges = [
                    b
                    for b in self.busy
                    if group_service is None or not (b.kind is BusyKind.BOOKED and b.service_id == group_service)
                ]
                index = BusyIndex(self.widened(b, place) for b in ranges)
            self._indexes[key] = index
        return index

    # --- sessions -------------------------------------------------------------------------

    @staticmethod
    def own_session(service: ServiceRule, location: UUID | None, t: int, b: BusyRange) -> bool:
        """Whether ``b`` is a confirmed booking of the session of a candidate at ``t``."""
        return (
            service.seats > 1
            and b.kind is BusyKind.BOOKED
            and b.service_id == service.id
            and b.begins == t
            and same_place(b.location_id, location)
        )

    def _session_ranges(self, service_id: UUID, location: UUID | None) -> _Ranges:
        key = (service_id, self._travel_from(location))
        found = self._sessions.get(key)
        if found is None:
            items = sorted(
                (
                    (*self.widened(b, key[1]), b)
                    for b in self.busy
                    if b.kind is BusyKind.BOOKED and b.service_id == service_id
                ),
                key=lambda x: x[0],
            )
            found = self._sessions[key] = _Ranges(
                [s for s, _, _ in items], items, max((e - s for s, e, _ in items), default=0)
            )
        return found

    def session(self, service: ServiceRule, location: UUID | None, t: int, b0: int, b1: int) -> tuple[bool, int, int]:
        """For a candidate of a group service: (whether a booking of the service outside
        its session blocks it, seats its session's confirmed bookings take, how many)."""
        ranges = self._session_ranges(service.id, location)
        taken = count = 0
        i = bisect_left(ranges.starts, b0 - ranges.longest)
        for s, e, b in ranges.items[i:]:
            if s >= b1:
                break
            if b.begins == t and same_place(b.location_id, location):
                taken += b.seats
                count += 1
            elif e > b0:
                return True, taken, count
        return False, taken, count

    @staticmethod
    def own_hold(service: ServiceRule, location: UUID | None) -> Callable[[LiveHold, int], bool]:
        """Whether a hold is of the session of a candidate at a start (it lowers the
        session's seats at read time instead of hiding it)."""
        sid = service.id

        def own(h: LiveHold, t: int) -> bool:
            return h.service_id == sid and h.starts_at == t and same_place(h.location_id, location)

        return own

    # --- limits ---------------------------------------------------------------------------

    def limited(self, service: ServiceRule) -> bool:
        s = self.schedule
        return not (
            s.max_per_day is None
            and s.max_per_week is None
            and service.max_per_day is None
            and service.max_per_week is None
        )

    def _count(self) -> dict[UUID | None, _Counts]:
        """Sessions per local day and week: key None for the staff member (all services),
        a service id for that service."""
        if self._counts is None:
            zone = self.schedule.zone
            counts: dict[UUID | None, _Counts] = {None: _Counts()}
            for i, b in enumerate(self.schedule.busy):
                if b.kind is not BusyKind.BOOKED:
                    continue
                session = b.session or b.ref or f"#{i}"
                ordinal = local_date_of(zone, b.begins).toordinal()
                counts[None].add(ordinal, session)
                if b.service_id is not None:
                    counts.setdefault(b.service_id, _Counts()).add(ordinal, session)
            self._counts = counts
        return self._counts

    def limits_on(self, service: ServiceRule, ordinal: int) -> list[LimitHit]:
        """The limits reached on local date ``ordinal`` (its day, its ISO week)."""
        counts = self._count()
        s = self.schedule
        hits: list[LimitHit] = []
        scopes = (
            ("staff", s.max_per_day, s.max_per_week, counts[None]),
            ("service", service.max_per_day, service.max_per_week, counts.get(service.id) or _Counts()),
        )
        for scope, per_day, per_week, c in scopes:
            if per_day is not None and (n := c.on_day(ordinal)) >= per_day:
                hits.append(LimitHit(scope, "day", n, per_day, date.fromordinal(ordinal).isoformat()))
            if per_week is not None and (n := c.in_week(ordinal)) >= per_week:
                hits.append(LimitHit(scope, "week", n, per_week, week_label(ordinal)))
        return hits

    def limit_spans(self, service: ServiceRule) -> BusyIndex:
        """The instants of the local dates (of the windows) on which a limit of ``service``
        is reached, as a sorted union."""
        found = self._spans.get(service.id)
        if found is None:
            zone = self.schedule.zone
            pieces: list[tuple[int, int]] = []
            if self.windows:
                first = local_date_of(zone, min(w.start for w in self.windows)).toordinal()
                last = local_date_of(zone, max(w.end for w in self.windows) - 1).toordinal()
                segments = zone_segments(zone, first, last)
                for ordinal in range(first, last + 1):
                    if self.limits_on(service, ordinal):
                        pieces.extend((lo, hi) for lo, hi, _ in day_segments(segments, ordinal))
            found = self._spans[service.id] = BusyIndex(pieces)
        return found

    # --- resources ------------------------------------------------------------------------

    def pool(self, kind: str, location: UUID | None) -> list[_ResourceIndex]:
        """The resources of ``kind`` usable at ``location``: there, or with no location."""
        key = (kind, location)
        found = self._pools.get(key)
        if found is None:
            found = self._pools[key] = [
                _resource_index(r)
                for r in self.schedule.resources
                if r.kind == kind and (r.location_id is None or r.location_id == location)
            ]
        return found

    def _own_use(self, service: ServiceRule, location: UUID | None, t: int) -> Callable[[ResourceUse], bool] | None:
        if service.seats <= 1:
            return None
        staff, sid = self.schedule.staff_id, service.id

        def own(u: ResourceUse) -> bool:
            return (
                u.staff_id == staff and u.service_id == sid and u.starts_at == t and same_place(u.location_id, location)
            )

        return own

    def resource_counts(
        self, service: ServiceRule, location: UUID | None, t: int, b0: int, b1: int
    ) -> list[ResourceCount]:
        """Per requirement: how many resources of its kind are free over ``[b0, b1)``."""
        own = self._own_use(service, location, t)
        out: list[ResourceCount] = []
        for kind, quantity in service.needs:
            pool = self.pool(kind, location)
            out.append(ResourceCount(kind, sum(1 for r in pool if r.free(b0, b1, own)), quantity, len(pool)))
        return out

    def resource_free(self, service: ServiceRule, location: UUID | None, t: int, b0: int, b1: int) -> int:
        own = self._own_use(service, location, t)
        best: int | None = None
        for kind, quantity in service.needs:
            free = sum(1 for r in self.pool(kind, location) if r.free(b0, b1, own)) // quantity
            if best is None or free < best:
                best = free
                if best == 0:
                    break
        return 0 if best is None else best

    # --- the grid's question --------------------------------------------------------------

    def plain(self, service: ServiceRule) -> bool:
        """One seat, no resources, no limits: the busy index alone decides."""
        return service.seats <= 1 and not service.resources and not self.limited(service)

    def filter_starts(
        self, service: ServiceRule, location: UUID | None, starts: list[int], before_s: int, span_s: int
    ) -> tuple[list[int], int | list[int], int | list[int] | None]:
        """Of ``starts`` (free of :meth:`busy_index`), the slots, with each one's seats left
        and resource_free (one number when the same for all)."""
        group = service.seats > 1
        needs = bool(service.resources)
        spans = self.limit_spans(service) if self.limited(service) else None
        kept: list[int] = []
        seats: list[int] = []
        free: list[int] = []
        for t in starts:
            b0, b1 = t - before_s, t + span_s
            taken = count = 0
            if group:
                blocked, taken, count = self.session(service, location, t, b0, b1)
                if blocked or taken >= service.seats:
                    continue
            if spans is not None and count == 0 and spans.overlaps(t, t + 1):
                continue
            if needs:
                f = self.resource_free(service, location, t, b0, b1)
                if f <= 0:
                    continue
                free.append(f)
            kept.append(t)
            seats.append(service.seats - taken)
        if not kept:
            return [], 1, None
        return kept, _compact(seats), _compact(free) if needs else None
