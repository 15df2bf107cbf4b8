"""engine.day_view, the console's day, against the engine's own answers on the random worlds
of tests/materializer/engine/test_engine_property.py (DST days, overrides, holidays, seats, resources, limits,
travel): per local date, its slots are compute_slots' for that day, its windows are
merged_windows' that touch the day, its candidates are every grid start of those windows
and nothing else, each carries explain's verdict for its start, and a start is a slot iff
explain finds nothing in the schedule against it."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from hypothesis import given

from slotmill.materializer.engine import compute_slots, day_view, explain, merged_windows
from slotmill.materializer.engine.grid import grid_origin
from slotmill.materializer.horizon import local_midnight
from slotmill.materializer.model import ServiceRule, StaffSchedule, TemplateRule
from tests.materializer.engine.test_engine_property import PROPERTY_SETTINGS, SCHEDULE_CODES, Scenario, scenarios

FAR = 2**40


@PROPERTY_SETTINGS
@given(scenarios())
def test_the_day_view_is_the_engines_own_day(scenario: Scenario) -> None:
    schedule, service, first, last, _, _ = scenario
    windows = merged_windows(schedule, first, last)
    read = {"now": 0, "min_notice_s": 0, "advance_limit": FAR}
    step = service.step_s
    duration = service.duration_min * 60
    d = first
    while d <= last:
        lo, hi = local_midnight(d, schedule.zone), local_midnight(d + timedelta(days=1), schedule.zone)
        view = day_view(
            schedule,
            service,
            start=lo,
            end=hi,
            offered=True,
            qualified=True,
            active=True,
            horizon_start=0,
            horizon_end=FAR,
            first=first,
            last=last,
            **read,
        )
        assert list(view.slots) == compute_slots(schedule, [service], first, last, lo, hi)
        assert list(view.windows) == [w for w in windows if w.start < hi and w.end > lo]
        grid = sorted(
            (t, str(w.location_id))
            for w in view.windows
            for t in range(grid_origin(w.start, w.end, step), w.end - duration + 1, step)
            if lo <= t < hi
        )
        assert sorted((c.starts_at, str(c.location_id)) for c in view.candidates) == grid
        slot_starts = {s.starts_at for s in view.slots}
        for c in view.candidates:
            want = explain(
                schedule,
                service,
                qualified=True,
                active=True,
                starts_at=c.starts_at,
                horizon_end=FAR,
                first=first,
                last=last,
                **read,
            )
            assert c.explanation == want
            assert (not {r.code for r in want.reasons} & SCHEDULE_CODES) == (c.starts_at in slot_starts)
            if c.slot is not None:
                assert c.slot.location_id == c.location_id and c.slot.starts_at == c.starts_at
        # Every slot is some candidate's (one per start, the window generation keeps).
        marked = [c.slot for c in view.candidates if c.slot is not None]
        assert sorted(marked, key=lambda s: s.starts_at) == list(view.slots)
        d += timedelta(days=1)


def test_a_staff_member_without_the_service_has_candidates_but_no_slots() -> None:
    schedule = StaffSchedule(UUID(int=1), "UTC", templates=(TemplateRule(1, 540, 600),))
    service = ServiceRule(UUID(int=2), 30)
    monday = date(2024, 1, 1)
    lo = local_midnight(monday, "UTC")
    view = day_view(
        schedule,
        service,
        start=lo,
        end=lo + 86400,
        offered=False,
        qualified=False,
        active=True,
        now=0,
        min_notice_s=0,
        advance_limit=FAR,
        horizon_start=0,
        horizon_end=FAR,
        first=monday,
        last=monday,
    )
    assert view.slots == ()
    assert [c.starts_at - lo for c in view.candidates] == [540 * 60, 570 * 60]
    assert all(c.slot is None and "not_qualified" in {r.code for r in c.explanation.reasons} for c in view.candidates)
