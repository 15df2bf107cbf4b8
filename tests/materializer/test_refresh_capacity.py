"""Materialization of the capacity rules against a real database (SPEC §5.6-5.9): the loader
reads seats, limits, resources and their bookings, travel; refresh writes seats_left and
resource_free; verify compares them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg

from slotmill import seed
from slotmill.materializer.horizon import to_epoch
from slotmill.materializer.loader import load_rules, load_tenant
from slotmill.materializer.ondemand import slot_is_valid
from slotmill.materializer.refresh import refresh
from slotmill.materializer.verify import verify

Conn = psycopg.Connection[Any]
ZONE = "Europe/London"


@dataclass
class World:
    tenant: UUID
    day: date
    a: UUID  # location A
    b: UUID  # location B
    ann: UUID
    bob: UUID
    cut: UUID
    yoga: UUID
    massage: UUID
    room_a: UUID
    room_any: UUID

    def at(self, clock: str, day: date | None = None) -> datetime:
        local = datetime.fromisoformat(f"{(day or self.day).isoformat()}T{clock}").replace(tzinfo=ZoneInfo(ZONE))
        return local.astimezone(UTC)


def _world(conn: Conn) -> World:
    """Ann works at A 09:00-13:00 and at B 13:00-17:00; Bob at B 09:00-17:00. A to B takes
    30 minutes, B to A 15. Yoga is a class of four that needs a room; a massage needs a
    room, at most one a day per staff member. Room A is at A, the other room anywhere."""
    t = seed.tenant(conn, "t", timezone=ZONE)
    a = seed.location(conn, t, "A")
    b = seed.location(conn, t, "B")
    ann = seed.staff(conn, t, "Ann", location_id=a, max_per_week=20)
    bob = seed.staff(conn, t, "Bob", location_id=b)
    cut = seed.service(conn, t, "Cut", 60, after=15, staff_ids=[ann, bob])
    yoga = seed.service(conn, t, "Yoga", 60, interval=30, seats=4, staff_ids=[ann])
    massage = seed.service(conn, t, "Massage", 60, max_per_day=1, staff_ids=[ann, bob])
    seed.service_resource(conn, t, yoga, "room")
    seed.service_resource(conn, t, massage, "room")
    room_a = seed.resource(conn, t, "room", "Room A", location_id=a)
    room_any = seed.resource(conn, t, "room", "Studio")
    seed.resource(conn, t, "room", "Old room", active=False)
    seed.travel(conn, t, a, b, 30)
    seed.travel(conn, t, b, a, 15)
    seed.template(conn, t, ann, range(1, 8), "09:00", "13:00", location_id=a)
    seed.template(conn, t, ann, range(1, 8), "13:00", "17:00", location_id=b)
    seed.template(conn, t, bob, range(1, 8), "09:00", "17:00", location_id=b)
    day = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=3)
    return World(t, day, a, b, ann, bob, cut, yoga, massage, room_a, room_any)


def _slots(conn: Conn, staff: UUID, service: UUID, day: date) -> dict[str, tuple[int, int | None, bool]]:
    """Local start -> (seats_left, resource_free, hidden by a live hold) on one local date."""
    rows = conn.execute(
        "SELECT starts_at, seats_left, resource_free, held_until > now() FROM availability_slots"
        " WHERE staff_id = %s AND service_id = %s ORDER BY starts_at",
        (staff, service),
    ).fetchall()
    out = {}
    for starts_at, seats, free, held in rows:
        local = starts_at.astimezone(ZoneInfo(ZONE))
        if local.date() == day:
            out[local.strftime("%H:%M")] = (seats, free, bool(held))
    return out


def test_all_four_rules_load_materialize_and_verify_exactly(conn: Conn) -> None:
    w = _world(conn)
    t = w.tenant
    # Ann's 10:00 yoga at A: a party of two and one more (one session), holding room A.
    for seats in (2, 1):
        yoga = seed.booking(conn, t, w.ann, w.yoga, w.at("10:00"), w.at("11:00"), location_id=w.a, seats=seats)
        seed.booking_resource(conn, t, yoga, w.room_a)
    # A live hold on that session: it lowers the seats at read time, it hides nothing.
    seed.booking(
        conn,
        t,
        w.ann,
        w.yoga,
        w.at("10:00"),
        w.at("11:00"),
        status="held",
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
        location_id=w.a,
    )
    # Ann's cut at B 13:30: with the travel from A, her 12:00 cut at A no longer fits.
    seed.booking(conn, t, w.ann, w.cut, w.at("13:30"), w.at("14:30"), location_id=w.b)
    # Bob's 10:00 massage at B holds the studio (usable anywhere), and reaches the limit.
    massage = seed.booking(conn, t, w.bob, w.massage, w.at("10:00"), w.at("11:00"), location_id=w.b)
    seed.booking_resource(conn, t, massage, w.room_any)
    conn.commit()

    tenant = load_tenant(conn, "t")
    refresh(conn, tenant)
    drift = verify(conn, tenant)
    assert drift.total == 0, (drift.missing[:3], drift.unexpected[:3], drift.changed[:3])

    yoga = _slots(conn, w.ann, w.yoga, w.day)
    # 10:00: three of four seats taken; room A is the session's own, the studio is Bob's
    assert yoga["10:00"] == (1, 1, False)
    assert "09:30" not in yoga and "10:30" not in yoga  # other sessions overlap 10:00
    assert yoga["09:00"] == yoga["11:00"] == (4, 2, False)  # both rooms free at A: they touch
    assert "13:00" not in yoga  # at B, her own cut at 13:30 is in the way
    assert yoga["15:00"] == (4, 1, False)  # at B only the studio is usable
    cut = _slots(conn, w.ann, w.cut, w.day)
    assert list(cut) == ["11:00", "15:00", "16:00"]  # 12:00 at A: travel to B; 13:00 and 14:00: the cut
    assert cut["11:00"] == (1, None, False)
    assert _slots(conn, w.bob, w.massage, w.day) == {}  # his one massage a day is booked
    ann_massage = _slots(conn, w.ann, w.massage, w.day)
    # 12:00 at A ends 13:00, when the cut at B less 30 minutes of travel begins: they touch
    assert ann_massage["11:00"] == ann_massage["12:00"] == (1, 2, False)

    # verify compares what a slot carries, not only its time
    update = "UPDATE availability_slots SET {} WHERE staff_id = %s AND service_id = %s"
    conn.execute(update.format("seats_left = 4"), (w.ann, w.yoga))
    conn.execute(update.format("resource_free = NULL"), (w.ann, w.massage))
    conn.commit()
    drift = verify(conn, tenant)
    assert drift.changed and not drift.missing and not drift.unexpected
    changed = {(c[1][1], c[1][6], c[2][6], c[1][7], c[2][7]) for c in drift.changed}
    assert (w.yoga, 1, 4, 1, 1) in changed
    assert (w.massage, 1, 1, 2, None) in changed


def test_a_room_booked_by_one_staff_member_changes_anothers_slots_after_recompute(conn: Conn) -> None:
    w = _world(conn)
    t = w.tenant
    conn.commit()
    tenant = load_tenant(conn, "t")
    refresh(conn, tenant)
    assert _slots(conn, w.bob, w.massage, w.day)["10:00"] == (1, 1, False)  # the studio; room A is at A

    # Ann books the studio at 10:00 (at A, where room A is free too: she takes the studio).
    booked = seed.booking(conn, t, w.ann, w.massage, w.at("10:00"), w.at("11:00"), location_id=w.a)
    seed.booking_resource(conn, t, booked, w.room_any)
    conn.commit()
    refresh(conn, tenant, staff_ids=[w.bob])
    bob = _slots(conn, w.bob, w.massage, w.day)
    assert "10:00" not in bob and bob["11:00"] == (1, 1, False)
    assert "10:00" in _slots(conn, w.bob, w.cut, w.day)  # his other services keep their slots
    assert verify(conn, tenant, staff_ids=[w.bob]).total == 0


def test_the_loader_reads_the_new_rules_set_based(conn: Conn) -> None:
    w = _world(conn)
    t = w.tenant
    seed.service_resource(conn, t, w.massage, "room", 2)  # two rows of one kind add up
    far = w.day + timedelta(days=6)  # in the week the limit counts, beyond the busy window
    seed.booking(conn, t, w.ann, w.cut, w.at("11:00", far), w.at("12:00", far), location_id=w.a)
    conn.commit()
    tenant = load_tenant(conn, "t")
    lo = to_epoch(w.at("00:00"))
    rules = load_rules(conn, tenant, staff_ids=None, lo=lo, hi=lo + 86400, now=lo - 86400)
    massage = rules.services[w.massage].rule
    assert (massage.needs, massage.max_per_day, massage.seats) == ((("room", 3),), 1, 1)
    assert rules.services[w.yoga].rule.seats == 4
    ann = rules.staff[w.ann].schedule
    assert (ann.max_per_day, ann.max_per_week) == (None, 20)
    assert {(x.from_location, x.to_location, x.minutes) for x in ann.travel} == {(w.a, w.b, 30), (w.b, w.a, 15)}
    assert {r.name for r in ann.resources} == {"Room A", "Studio"}  # the inactive one is left out
    assert ann.resources is rules.staff[w.bob].schedule.resources  # one tuple for everyone
    (booked,) = [b for b in ann.busy if b.kind == "booked"]
    assert (booked.starts_at, booked.service_id, booked.location_id) == (to_epoch(w.at("11:00", far)), w.cut, w.a)


def test_the_confirm_recheck_judges_seats_resources_and_limits(conn: Conn) -> None:
    w = _world(conn)
    t = w.tenant
    yoga = seed.booking(conn, t, w.ann, w.yoga, w.at("10:00"), w.at("11:00"), location_id=w.a, seats=3)
    seed.booking_resource(conn, t, yoga, w.room_a)
    studio = seed.booking(conn, t, w.ann, w.massage, w.at("14:00"), w.at("15:00"), location_id=w.b)
    seed.booking_resource(conn, t, studio, w.room_any)
    tomorrow = w.day + timedelta(days=1)
    seed.booking(conn, t, w.bob, w.massage, w.at("09:00", tomorrow), w.at("10:00", tomorrow), location_id=w.b)
    tenant = load_tenant(conn, "t")
    now = to_epoch(datetime.now(UTC))

    def valid(
        staff: UUID, service: UUID, clock: str, ignore: UUID | None = None, seats: int = 1, day: date | None = None
    ) -> bool:
        start = to_epoch(w.at(clock, day))
        return slot_is_valid(conn, tenant, staff, service, start, ignore, now=now, seats=seats)

    assert valid(w.ann, w.yoga, "10:00", seats=1), "one seat is left of four"
    assert not valid(w.ann, w.yoga, "10:00", seats=2), "a party of two does not fit"
    assert valid(w.ann, w.yoga, "10:00", yoga, seats=4), "the booking ignored is not counted"
    assert not valid(w.bob, w.massage, "14:00"), "at B only the studio is usable, and Ann's massage holds it"
    assert valid(w.bob, w.massage, "15:00"), "free again once her massage is over"
    assert not valid(w.bob, w.massage, "16:00", day=tomorrow), "Bob's one massage of that day is booked"
    assert not valid(w.ann, w.massage, "16:00"), "Ann's likewise"
    assert valid(w.ann, w.massage, "16:00", studio), "unless it is the one being confirmed"
    conn.rollback()
