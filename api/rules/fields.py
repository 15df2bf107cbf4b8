"""Value types of the rules API's bodies: what a rule value may be, checked before the
database sees it, with the same bounds as the schema's CHECK constraints (docs/rules.md,
"When a rule cannot be computed"). Each failure is a 422 naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from itertools import islice
from typing import Annotated, Any

from dateutil.rrule import rrule, rrulestr
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

from slotmill.api.models import _no_nul, parse_instant
from slotmill.config import get_settings
from slotmill.materializer.engine.budget import RECURRENCE_SECONDS, time_limit
from slotmill.materializer.engine.recurrence import MAX_RULE_LENGTH, rrule_problem
from slotmill.materializer.model import RuleError
from slotmill.outbound import url_problem

# The years the schema accepts (slotmill_valid_date, slotmill_valid_range).
FIRST_YEAR, LAST_YEAR = 1900, 2200
EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)

_WALL = re.compile(r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_URL = re.compile(r"^(https?|webcal)://\S+$")
_KIND = re.compile(r"^\S.{0,62}$")


def _wall_time(value: Any) -> str:
    if isinstance(value, str) and _WALL.match(value):
        return value
    raise ValueError("must be a local wall-clock time HH:MM from 00:00 to 24:00")


def _day(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        d = value
    elif isinstance(value, str) and _DATE.match(value):
        try:
            d = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a calendar date: {value!r}") from None
    else:
        raise ValueError("must be a date like 2026-11-23")
    if not FIRST_YEAR <= d.year <= LAST_YEAR:
        raise ValueError(f"must lie in the years {FIRST_YEAR} to {LAST_YEAR}")
    return d


def _moment(value: Any) -> datetime:
    t = parse_instant(value)
    if not EARLIEST <= t <= LATEST:
        raise ValueError(f"must lie in the years {FIRST_YEAR} to {LAST_YEAR}")
    return t


def _rrule(value: str) -> str:
    problem = rrule_problem(value)
    if problem:
        raise ValueError(f"not a bounded date recurrence: {problem}")
    return value


def _url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("must be an http, https or webcal URL")
    problem = url_problem(value, get_settings().outbound_guard)
    if problem:
        raise ValueError(problem)
    return value


def _kind(value: str) -> str:
    if not _KIND.match(value):
        raise ValueError("1 to 63 characters, not starting with a space")
    return value


WallClock = Annotated[
    str,
    BeforeValidator(_wall_time),
    WithJsonSchema({"type": "string", "pattern": r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", "example": "09:00"}),
]
Day = Annotated[
    date,
    BeforeValidator(_day),
    WithJsonSchema({"type": "string", "format": "date", "example": "2026-11-23"}),
]
Moment = Annotated[
    datetime,
    BeforeValidator(_moment),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-11-23T09:00:00Z"}),
]
RRule = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_RULE_LENGTH),
    AfterValidator(_rrule),
    WithJsonSchema({"type": "string", "maxLength": MAX_RULE_LENGTH, "example": "FREQ=YEARLY"}),
]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_url)]
Kind = Annotated[str, StringConstraints(min_length=1, max_length=63), AfterValidator(_kind), AfterValidator(_no_nul)]
Reason = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_no_nul)]
Minutes = Annotated[int, Field(ge=0, le=1440)]
Limit = Annotated[int, Field(ge=0, le=100_000)]


def minutes(wall: str) -> int:
    h, m = wall.split(":")
    return int(h) * 60 + int(m)


def never_recurs(rule: str, on_date: date) -> str | None:
    """Why a rule that passed ``rrule_problem`` still cannot be used from ``on_date``: it
    does not parse, or it never yields a date after its start (BY parts that never match,
    which python-dateutil would search up to year 9999). None: fine."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    start = datetime.combine(on_date, time.min)
    try:
        try:
            parsed = rrulestr(text, dtstart=start)
        except ValueError:
            parsed = rrulestr(text, dtstart=start.replace(tzinfo=UTC))
    except (ValueError, TypeError, OverflowError) as e:
        return f"does not parse: {e}"
    if not isinstance(parsed, rrule):
        return "must be one RRULE"
    # Without its COUNT, up to the last year the schema knows: a rule that has no date
    # there but its start can only be a mistake (its COUNT would never be reached).
    until = datetime(LAST_YEAR, 12, 31, tzinfo=start.tzinfo)
    probe = parsed.replace(count=None, until=until)
    try:
        with time_limit(RECURRENCE_SECONDS, f"recurrence {rule!r}"):
            dates = [d for d in islice(probe, 2) if d.date() > on_date]
    except RuleError as e:
        return str(e)
    if not dates:
        return f"never occurs after {on_date} (up to {LAST_YEAR})"
    return None
