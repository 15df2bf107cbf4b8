"""The materialized horizon (SPEC §5.5) and date/instant conversions at the I/O edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY_S = 86_400
# Services are capped at 1440 minutes of duration and of each buffer (schema checks), so a
# slot's blocked range reaches at most this far from its start: busy data is loaded with it.
MAX_SPAN_S = 3 * DAY_S


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def to_epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def from_epoch(s: int) -> datetime:
    return datetime.fromtimestamp(s, UTC)


def format_instant(value: datetime | int) -> str:
    """An instant as the API writes it: RFC 3339 in UTC, whole seconds, with a Z (the same
    text as the SQL function slotmill_instant)."""
    dt = from_epoch(value) if isinstance(value, int) else value.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_midnight(d: date, zone_name: str) -> int:
    """The instant local date ``d`` begins in the zone (the first instant whose wall-clock
    date is ``d``; midnight itself may not exist on a DST day)."""
    tz = zone(zone_name)
    start = datetime.combine(d, time(0), tzinfo=tz)
    # zoneinfo resolves a nonexistent midnight forward (fold=0 uses the offset before the
    # gap); normalise through UTC so the instant is the one whose wall date really is d.
    utc = start.astimezone(UTC)
    if utc.astimezone(tz).date() < d:
        utc = (start + timedelta(hours=1)).astimezone(UTC)
    return int(utc.timestamp())


def local_date(instant: int, zone_name: str) -> date:
    return datetime.fromtimestamp(instant, zone(zone_name)).date()


@dataclass(frozen=True, slots=True)
class Horizon:
    """Slots starting in ``[start, end)`` are materialized: from the start of today in the
    tenant's zone to ``horizon_days`` local days later."""

    start: int
    end: int
    today: date
    last_day: date  # the last local date (tenant zone) inside the horizon

    def clip(self, lo: int | None, hi: int | None) -> tuple[int, int]:
        lo = self.start if lo is None else max(lo, self.start)
        hi = self.end if hi is None else min(hi, self.end)
        return lo, max(lo, hi)


def horizon_for(tenant_zone: str, horizon_days: int, now: int) -> Horizon:
    today = local_date(now, tenant_zone)
    end_day = today + timedelta(days=horizon_days)
    return Horizon(
        start=local_midnight(today, tenant_zone),
        end=local_midnight(end_day, tenant_zone),
        today=today,
        last_day=end_day - timedelta(days=1),
    )


# Days of working windows built beyond the horizon on each side: 2 for zones ahead of or
# behind the tenant's, and 7 more so that every window that matters is seen whole or at
# least 7 days long (see window_dates).
WINDOW_MARGIN_DAYS = 9


def window_dates(h: Horizon, through: date | None = None) -> tuple[date, date]:
    """Local dates whose working windows are built for any staff member, whatever the zone.

    Always the whole horizon (or further, ``through`` a later local date, for slots computed
    beyond it on demand) plus ``WINDOW_MARGIN_DAYS`` each side, so a recompute of a few hours
    anchors its grid exactly where a full refresh does, and the anchoring never changes as
    the horizon rolls: a merged window that touches the range is either seen whole (shorter
    than 7 days, anchored at its real start) or seen at least 7 days long (anchored at the
    epoch: engine/grid.py, grid_origin), never cut short of 7 days. That is also why a slot
    computed beyond the horizon today is the slot materialization will write once the
    horizon reaches it.
    """
    margin = timedelta(days=WINDOW_MARGIN_DAYS)
    last = h.last_day if through is None or through < h.last_day else through
    return h.today - margin, last + margin
