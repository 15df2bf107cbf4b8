"""What an operator does by hand, through the CLI against a real database: import weeks and
time off from CSV or JSON (all or nothing, the bad line named), add a calendar feed and sync
it now, list feeds, and print a staff member's week."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest

from slotmill import seed
from slotmill.cli import main
from tests.feed_server import Served
from tests.jobs.test_feeds import ics

LONDON = ZoneInfo("Europe/London")


class Salon:
    def __init__(self, url: str) -> None:
        self.url = url
        with psycopg.connect(url) as c:
            self.tenant = seed.tenant(c, "salon", timezone="Europe/London")
            self.location = seed.location(c, self.tenant, "High street")
            self.ann = seed.staff(c, self.tenant, "Ann", location_id=self.location)
            self.bob = seed.staff(c, self.tenant, "Bob")
            self.cut = seed.service(c, self.tenant, "Cut", 60, staff_ids=[self.ann, self.bob])
            seed.template(c, self.tenant, self.ann, range(1, 8), "09:00", "17:00")
            c.commit()

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as c:
            return c.execute(sql, params).fetchall()

    def week(self, staff: UUID) -> list[tuple[Any, ...]]:
        return self.rows(
            "SELECT weekday, to_char(start_time, 'HH24:MI'), to_char(end_time, 'HH24:MI') FROM availability_templates"
            " WHERE staff_id = %s ORDER BY 1, 2",
            staff,
        )


@pytest.fixture
def salon(env_db: str) -> Salon:
    return Salon(env_db)


def test_import_a_week_from_csv_by_staff_name(salon: Salon, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "week.csv"
    f.write_text(
        "staff,weekday,start_time,end_time,valid_from\n"
        "Ann,1,08:00,12:00,\n"
        "Ann,1,13:00,18:00,\n"
        f"{salon.bob},6,10:00,24:00,2030-01-01\n"
    )
    assert main(["import", "--tenant", "salon", str(f)]) == 0
    assert "2 weekly templates (3 windows), 0 time off" in capsys.readouterr().out
    assert salon.week(salon.ann) == [(1, "08:00", "12:00"), (1, "13:00", "18:00")]  # the whole week replaced
    assert salon.week(salon.bob) == [(6, "10:00", "24:00")]
    queued = salon.rows("SELECT DISTINCT staff_id FROM recompute_requests WHERE reason = 'availability_templates'")
    assert {r[0] for r in queued} == {salon.ann, salon.bob}


def test_import_time_off_and_weeks_from_json(salon: Salon, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "rules.json"
    f.write_text(
        json.dumps(
            {
                "weeks": [{"staff": "bob", "windows": [{"weekday": 2, "start_time": "09:00", "end_time": "12:00"}]}],
                "time_off": [
                    {
                        "staff": str(salon.ann),
                        "starts_at": "2030-12-24T00:00:00Z",
                        "ends_at": "2030-12-27T00:00:00Z",
                        "reason": "Christmas",
                    }
                ],
            }
        )
    )
    assert main(["import", "--tenant", "salon", str(f)]) == 0
    assert "1 weekly template (1 windows), 1 time off" in capsys.readouterr().out
    assert salon.week(salon.bob) == [(2, "09:00", "12:00")]
    assert salon.rows("SELECT staff_id, reason FROM time_off") == [(salon.ann, "Christmas")]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "week.csv",
            "staff,weekday,start_time,end_time\nAnn,1,08:00,12:00\nAnn,9,13:00,18:00\n",
            "week.csv:3: weekday:",
        ),
        ("week.csv", "staff,weekday,start_time,end_time\nAnn,1,12:00,08:00\n", "week.csv:2: end_time: must be after"),
        ("week.csv", "staff,weekday,start_time,end_time\nNobody,1,08:00,12:00\n", "staff 'Nobody': no staff member"),
        ("off.csv", "staff,starts_at,ends_at\nAnn,2030-01-01T10:00:00Z,2030-01-01T09:00:00Z\n", "off.csv:2: ends_at"),
        ("off.csv", "staff,starts_at,ends_at,colour\nAnn,x,y,red\n", "unknown column colour"),
        ("x.json", '{"time_off": [{"staff": "Ann", "starts_at": "2030-01-01T10:00:00"}]}', "time_off[0]: starts_at"),
        ("x.json", "{not json", "not valid JSON"),
    ],
)
def test_a_bad_line_imports_nothing_and_is_named(
    salon: Salon, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, message: str
) -> None:
    f = tmp_path / name
    f.write_text(text)
    before = salon.week(salon.ann)
    assert main(["import", "--tenant", "salon", str(f)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert salon.week(salon.ann) == before
    assert salon.rows("SELECT count(*) FROM time_off") == [(0,)]


def test_feeds_add_sync_and_list(salon: Salon, feed_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    day = datetime.now(LONDON).date() + timedelta(days=3)
    feed_server.routes["/ann.ics"] = Served(ics("google.ics", day))
    assert main(["feeds", "add", "--tenant", "salon", "--staff", str(salon.ann), f"{feed_server.base}/ann.ics"]) == 0
    out = capsys.readouterr().out
    assert "added feed" in out and "ok (HTTP 200), 4 busy times (+4 -0)" in out
    assert main(["feeds", "sync", "--tenant", "salon"]) == 0
    assert "not_modified (HTTP 304), 4 busy times (unchanged)" in capsys.readouterr().out
    feed_server.routes["/ann.ics"] = Served(b"oops", status=503)
    assert main(["feeds", "sync", "--tenant", "salon", "--force"]) == 1
    assert "failed, nothing changed: HTTP 503" in capsys.readouterr().out
    assert main(["feeds", "list", "--tenant", "salon"]) == 0
    out = capsys.readouterr().out
    assert "Ann" in out and "error: HTTP 503" in out and "4 busy times" in out
    assert main(["feeds", "add", "--tenant", "salon", "--staff", str(salon.ann), "ftp://nope"]) == 2
    assert "url" in capsys.readouterr().err


def test_week_prints_windows_busy_times_and_bookings(salon: Salon, capsys: pytest.CaptureFixture[str]) -> None:
    monday = date(2030, 1, 7)
    with psycopg.connect(salon.url) as c:
        seed.booking(
            c, salon.tenant, salon.ann, salon.cut, _at(monday, "10:00"), _at(monday, "11:00"), customer_ref="cust-1"
        )
        c.execute(
            "INSERT INTO time_off (tenant_id, staff_id, during) VALUES (%s, %s, tstzrange(%s, %s))",
            (salon.tenant, salon.ann, _at(monday, "14:00", 1), _at(monday, "15:00", 1)),
        )
        c.execute(
            "INSERT INTO holidays (tenant_id, on_date, name) VALUES (%s, %s, 'Closed')",
            (salon.tenant, monday + timedelta(days=2)),
        )
    assert main(["week", "--tenant", "salon", "--staff", str(salon.ann), "--date", "2030-01-09"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Ann (Europe/London), week of Mon 2030-01-07 to Sun 2030-01-13"
    text = "\n".join(lines)
    assert "Mon 07 Jan  09:00-17:00" in text and "High street" in text
    assert "10:00-11:00      confirmed   Cut (cust-1)" in text
    assert "14:00-15:00      time off" in text
    assert "Wed 09 Jan  -" in text  # the holiday
    assert main(["week", "--tenant", "salon", "--staff", str(salon.bob)]) == 0
    assert main(["week", "--tenant", "salon", "--staff", "00000000-0000-0000-0000-000000000000"]) == 2


def _at(monday: date, hhmm: str, plus: int = 0) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    d = monday + timedelta(days=plus)
    return datetime(d.year, d.month, d.day, h, m, tzinfo=LONDON).astimezone(UTC)
