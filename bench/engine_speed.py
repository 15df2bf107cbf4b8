"""Measurement 5: the engine generating 5,000 slots, in memory (no database).

One staff member of the generated kind (split shift, buffers, ~40 % booked), one service,
and a start range cut so that exactly 5,000 slots come out. ``compute_slots`` is the whole
engine (working windows, then slots); ``generate_slots`` is the slot step alone, given the
windows. The engine's zone and rrule caches are warm after the first call, as they are in
a refresh that asks the same zone for every staff member.
"""

from __future__ import annotations

import random
import timeit
import uuid
from datetime import date, timedelta

from bench.common import Plan, Row, ms, spread_s, summary
from bench.generate import SERVICES, place_bookings
from bench.profiling import profile, sentence
from slotmill.materializer.engine import compute_slots, generate_slots, merged_windows
from slotmill.materializer.horizon import local_date, local_midnight
from slotmill.materializer.model import BusyKind, BusyRange, ServiceRule, StaffSchedule, TemplateRule

SLOTS = 5000
TARGET_S = 0.020


def _schedule() -> tuple[StaffSchedule, ServiceRule, date, date, int, int]:
    rnd = random.Random(5)
    spec = SERVICES[0]
    service = ServiceRule(uuid.UUID(int=1), spec.duration, spec.before, spec.after, spec.interval)
    zone = "Europe/London"
    templates = tuple(
        TemplateRule(wd, s, e) for wd in (1, 2, 3, 4, 5) for s, e in ((9 * 60, 13 * 60), (14 * 60, 18 * 60))
    )
    first = date(2026, 1, 5)
    last = first + timedelta(days=900)
    bare = StaffSchedule(staff_id=uuid.UUID(int=2), zone=zone, templates=templates)
    lo, hi = local_midnight(first, zone), local_midnight(last, zone)
    booked, _, _ = place_bookings(rnd, bare, [service], first, last, lo, hi)
    blocked = tuple(
        BusyRange(s - service.buffer_before_min * 60, e + service.buffer_after_min * 60, BusyKind.BOOKED)
        for _, s, e, _where in booked
    )
    schedule = StaffSchedule(staff_id=bare.staff_id, zone=zone, templates=templates, busy=blocked)
    every = compute_slots(schedule, [service], first, last, lo, hi)
    if len(every) < SLOTS:
        raise RuntimeError(f"engine benchmark: only {len(every)} slots in the range")
    hi = every[SLOTS - 1].starts_at + 1
    last = local_date(hi, zone) + timedelta(days=1)  # no windows built past the range
    return schedule, service, first, last, lo, hi


def measure(plan: Plan) -> Row:
    schedule, service, first, last, lo, hi = _schedule()
    windows = merged_windows(schedule, first, last)
    n_compute = len(compute_slots(schedule, [service], first, last, lo, hi))
    n_generate = len(generate_slots(schedule, service, windows, lo, hi))
    assert n_compute == n_generate == SLOTS, (n_compute, n_generate)

    repeat = plan.engine_repeats
    compute_t = timeit.repeat(lambda: compute_slots(schedule, [service], first, last, lo, hi), number=1, repeat=repeat)
    generate_t = timeit.repeat(lambda: generate_slots(schedule, service, windows, lo, hi), number=1, repeat=repeat)
    windows_t = timeit.repeat(lambda: merged_windows(schedule, first, last), number=1, repeat=repeat)
    c, g, w = summary(compute_t), summary(generate_t), summary(windows_t)
    met = c["median"] < TARGET_S
    note = ""
    prof: dict[str, object] = {}
    if not met:
        prof = profile(lambda: [compute_slots(schedule, [service], first, last, lo, hi) for _ in range(20)])
        note = sentence(prof, "20 compute_slots calls")
    return Row(
        key="engine_5000",
        what="engine: 5,000 slots (compute_slots: windows + slots; one staff, ~40 % booked)",
        target="< 20 ms",
        value=ms(c["median"]),
        spread=spread_s(c),
        ratio=f"generate_slots alone {ms(g['median'])}; merged_windows {ms(w['median'])}",
        met=met,
        note=note,
        raw={
            "profile_top": prof.get("top"),
            "slots": SLOTS,
            "busy_ranges": len(schedule.busy),
            "windows": len(windows),
            "compute_slots_s": c,
            "generate_slots_s": g,
            "merged_windows_s": w,
            "compute_slots_runs_s": compute_t,
        },
    )
