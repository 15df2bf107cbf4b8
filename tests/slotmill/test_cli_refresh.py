"""`slotmill refresh`, `verify` and `demo` through the CLI, against a real database."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg
import pytest

from slotmill import seed
from slotmill.cli import main


def _slots(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as c:
        return c.execute("SELECT id, starts_at, ends_at FROM availability_slots ORDER BY id").fetchall()


@pytest.fixture
def salon(env_db: str) -> str:
    with psycopg.connect(env_db) as c:
        t = seed.tenant(c, "salon", timezone="Europe/London")
        ann = seed.staff(c, t, "Ann")
        bob = seed.staff(c, t, "Bob", timezone="America/New_York")
        seed.service(c, t, "Cut", 30, interval=15, after=10, staff_ids=[ann, bob])
        seed.template(c, t, ann, range(1, 8), "09:00", "17:00")
        seed.template(c, t, bob, range(1, 6), "10:00", "14:00")
        c.commit()
    return env_db


def test_refresh_then_verify_clean_then_tampered(salon: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["refresh", "--tenant", "salon"]) == 0
    out = capsys.readouterr().out
    assert "refreshed salon: 2 staff" in out
    assert len(_slots(salon)) > 0

    assert main(["verify", "--tenant", "salon"]) == 0
    assert "no drift" in capsys.readouterr().out

    with psycopg.connect(salon) as c:
        c.execute(
            "UPDATE availability_slots SET ends_at = ends_at + interval '5 minutes'"
            " WHERE id = (SELECT id FROM availability_slots ORDER BY id LIMIT 1)"
        )
    assert main(["verify", "--tenant", "salon"]) == 1
    out = capsys.readouterr().out
    assert "DRIFT" in out and "1 changed" in out

    with psycopg.connect(salon) as c:
        c.execute("DELETE FROM availability_slots WHERE id = (SELECT id FROM availability_slots ORDER BY id LIMIT 1)")
        c.execute(
            "INSERT INTO availability_slots (tenant_id, id, staff_id, service_id, starts_at, ends_at)"
            " SELECT tenant_id, 'bogus', staff_id, service_id, starts_at + interval '1 minute', ends_at"
            " FROM availability_slots LIMIT 1"
        )
    assert main(["verify", "--tenant", "salon"]) == 1
    out = capsys.readouterr().out
    assert "1 missing, 1 unexpected" in out

    assert main(["refresh", "--tenant", "salon"]) == 0
    assert main(["verify", "--tenant", "salon"]) == 0


def test_refresh_is_stable_and_ids_survive(salon: str) -> None:
    assert main(["refresh", "--tenant", "salon"]) == 0
    first = _slots(salon)
    assert len(first) > 100  # a refresh that wrote nothing would pass the comparison below
    assert main(["refresh", "--tenant", "salon"]) == 0
    assert _slots(salon) == first


def test_partial_refresh_replaces_only_its_window(salon: str) -> None:
    assert main(["refresh", "--tenant", "salon"]) == 0
    with psycopg.connect(salon) as c:
        # Hand-made drift on two days; a refresh of one of them repairs exactly that one.
        c.execute("DELETE FROM availability_slots")
    day = date.today() + timedelta(days=3)
    assert main(["refresh", "--tenant", "salon", "--from", day.isoformat(), "--to", day.isoformat()]) == 0
    with psycopg.connect(salon) as c:
        dates = c.execute(
            "SELECT DISTINCT (starts_at AT TIME ZONE 'Europe/London')::date FROM availability_slots"
        ).fetchall()
    assert {d for (d,) in dates} == {day}


def test_refresh_one_staff_member(salon: str) -> None:
    with psycopg.connect(salon) as c:
        ann = c.execute("SELECT id FROM staff WHERE display_name = 'Ann'").fetchone()
    assert ann is not None
    assert main(["refresh", "--tenant", "salon", "--staff", str(ann[0])]) == 0
    with psycopg.connect(salon) as c:
        staff = c.execute("SELECT DISTINCT staff_id FROM availability_slots").fetchall()
    assert staff == [(ann[0],)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["refresh", "--tenant", "nope"], "unknown tenant 'nope'"),
        (["verify", "--tenant", "nope"], "unknown tenant 'nope'"),
        (["refresh", "--tenant", "salon", "--from", "2030-02-02", "--to", "2030-02-01"], "is after --to"),
        (
            ["refresh", "--tenant", "salon", "--staff", "00000000-0000-0000-0000-000000000001"],
            "unknown staff for tenant salon",
        ),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(
    salon: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = _slots(salon)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert _slots(salon) == before


@pytest.mark.parametrize("argv", [["refresh", "--tenant", "salon", "--from", "yesterday"], ["refresh"]])
def test_malformed_arguments_exit_nonzero(salon: str, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_demo_loads_and_materializes(env_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert "demo tenant 'demo' loaded" in capsys.readouterr().out
    assert len(_slots(env_db)) > 1000
    assert main(["verify", "--tenant", "demo"]) == 0
    assert main(["demo"]) == 0  # a second run leaves it alone
    assert "already exists" in capsys.readouterr().out


def test_unknown_zone_in_a_rule_is_a_clear_error_and_changes_nothing(
    salon: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host database without slotmill's CHECK constraints (or a zone PostgreSQL knows and
    Python's tz database does not) must not crash a refresh half-way: the other staff are
    refreshed, the bad one is left as it was and named, and the exit status says so."""
    assert main(["refresh", "--tenant", "salon"]) == 0
    before = _slots(salon)
    with psycopg.connect(salon) as c:
        c.execute("ALTER TABLE staff DROP CONSTRAINT staff_timezone_valid")
        c.execute("UPDATE staff SET timezone = 'Mars/Olympus' WHERE display_name = 'Bob'")
    assert main(["refresh", "--tenant", "salon"]) == 1
    err = capsys.readouterr().err
    assert "unknown time zone 'Mars/Olympus'" in err and "not refreshed: staff " in err
    assert _slots(salon) == before
