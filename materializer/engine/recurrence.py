"""Recurring rules: on which local dates a dated row with an optional RFC 5545 RRULE
(DTSTART = its ``on_date``) applies.

A rule is a host's text, and python-dateutil will happily loop for ever on some of them
(``INTERVAL=0``), or for minutes (``FREQ=SECONDLY`` from 2025, a daily rule whose BY parts
never match, searched up to year 9999). So a rule is first checked against the subset of
RFC 5545 that makes sense for a date (``rrule_problem``: the same rules as the database's
``slotmill_rrule_problem()``, which refuses bad rules at the door), and then expanded only
up to the last date asked for, with a cap on occurrences. A rule that fails either raises
:class:`RuleError` naming why: that staff member's recompute fails, visibly, and nobody
else's.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from functools import lru_cache

from dateutil.rrule import rrule, rrulestr

from slotmill.materializer.engine.budget import RECURRENCE_SECONDS, time_limit
from slotmill.materializer.model import RuleError

# A date rule recurs at most daily; from the earliest date the schema accepts (1900) to
# the latest (2200) that is about 110,000 occurrences.
MAX_OCCURRENCES = 120_000
MAX_RULE_LENGTH = 500

_DAY = r"(MO|TU|WE|TH|FR|SA|SU)"
_BYDAY = re.compile(rf"^([+-]?[0-9]{{1,2}})?{_DAY}$")
_INT_LIST = re.compile(r"^[+-]?[0-9]{1,3}(,[+-]?[0-9]{1,3})*$")
_UNTIL = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})(T[0-9]{6}Z?)?$")
_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
# BY part -> (largest absolute value, may it be negative)
_BY_RANGES = {
    "BYMONTHDAY": (31, True),
    "BYYEARDAY": (366, True),
    "BYWEEKNO": (53, True),
    "BYMONTH": (12, False),
    "BYSETPOS": (366, True),
}


def _normalized(rule: str) -> str:
    text = rule.strip().upper()
    return text[6:] if text.startswith("RRULE:") else text


def _part_problem(name: str, value: str) -> str | None:
    if name == "FREQ":
        if value in ("SECONDLY", "MINUTELY", "HOURLY"):
            return f"FREQ={value}: a date rule recurs at most daily"
        return None if value in _FREQS else f"FREQ={value} is not one of {', '.join(_FREQS)}"
    if name in ("INTERVAL", "COUNT"):
        top = 1000 if name == "INTERVAL" else 10_000
        if not value.isdigit() or not 1 <= int(value) <= top:
            return f"{name} must be a whole number from 1 to {top}"
        return None
    if name == "UNTIL":
        m = _UNTIL.match(value)
        if not m:
            return "UNTIL must be a date (20261231) or a date-time (20261231T000000Z)"
        try:
            d = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return f"UNTIL {value} is not a calendar date"
        return None if 1900 <= d.year <= 2200 else "UNTIL must lie in the years 1900 to 2200"
    if name == "BYDAY":
        for item in value.split(","):
            m = _BYDAY.match(item)
            if not m or (m[1] is not None and not 1 <= abs(int(m[1])) <= 53):
                return f"BYDAY item {item!r} is not a weekday such as MO, 1MO or -1FR"
        return None
    if name == "WKST":
        return None if re.fullmatch(_DAY, value) else "WKST must be a weekday such as MO"
    if name in _BY_RANGES:
        top, signed = _BY_RANGES[name]
        if not _INT_LIST.match(value):
            return f"{name} must be a comma-separated list of numbers"
        for n in (int(v) for v in value.split(",")):
            if n == 0 or abs(n) > top or (n < 0 and not signed):
                return f"{name} value {n} is out of range"
        return None
    if name in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        return f"{name}: a date rule has no times of day"
    return f"unknown part {name}"


def rrule_problem(rule: str | None) -> str | None:
    """Why ``rule`` is not a bounded date recurrence (None: it is fine).

    Mirrors ``slotmill_rrule_problem()`` in sql/schema.sql word for word in what it
    accepts (tests/materializer/test_bad_rules.py,
    test_the_sql_and_python_recurrence_checks_agree, checks both on the same rules).
    """
    if rule is None:
        return None
    if len(rule) > MAX_RULE_LENGTH:
        return f"longer than {MAX_RULE_LENGTH} characters"
    text = _normalized(rule)
    if not text:
        return "empty rule"
    seen: set[str] = set()
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if not sep or not re.fullmatch(r"[A-Z]+", name) or not value or "=" in value:
            return f"{part!r} is not NAME=VALUE"
        if name in seen:
            return f"{name} given twice"
        seen.add(name)
        problem = _part_problem(name, value)
        if problem:
            return problem
    if "FREQ" not in seen:
        return "FREQ is required"
    if "COUNT" in seen and "UNTIL" in seen:
        return "COUNT and UNTIL cannot both be given"
    return None


def _parse(rule: str, dtstart: datetime) -> rrule:
    try:
        parsed = rrulestr(_normalized(rule), dtstart=dtstart)
    except ValueError:
        # An ``UNTIL=...Z`` is refused with a floating DTSTART; read the dates in UTC, which
        # is what a local-date rule with a UTC UNTIL means to the host application.
        parsed = rrulestr(_normalized(rule), dtstart=dtstart.replace(tzinfo=UTC))
    assert isinstance(parsed, rrule)  # one RRULE, never a set: rrule_problem allows no more
    return parsed


def _rule_dates(rule: str, on_date: date, first: date, last: date) -> set[date]:
    problem = rrule_problem(rule)
    if problem is None and not 1900 <= on_date.year <= 2200:
        problem = f"its start date {on_date} lies outside the years 1900 to 2200"
    if problem:
        raise RuleError(f"recurrence {rule!r}: {problem}")
    try:
        parsed = _parse(rule, datetime.combine(on_date, time.min))
    except (ValueError, TypeError, OverflowError) as e:
        raise RuleError(f"recurrence {rule!r}: {e}") from None
    out: set[date] = set()
    with time_limit(RECURRENCE_SECONDS, f"recurrence {rule!r} from {on_date}"):
        # Stop at the first occurrence past the last date asked for. A rule whose BY parts
        # never match yields nothing while dateutil searches up to year 9999: the time
        # limit ends that.
        for n, occurrence in enumerate(parsed, start=1):
            d = occurrence.date()
            if d > last:
                break
            if n > MAX_OCCURRENCES:
                raise RuleError(f"recurrence {rule!r} from {on_date}: more than {MAX_OCCURRENCES} occurrences")
            if d >= first:
                out.add(d)
    return out


@lru_cache(maxsize=8192)
def applies_on(rule: str | None, on_date: date, first: date, last: date) -> frozenset[int]:
    """Ordinals of the dates in ``first..last`` a row with ``on_date``/``rrule`` applies on.

    ``on_date`` itself always counts: it is the DTSTART, which RFC 5545 makes the first
    instance even when the rule's BY* parts would not produce it. Raises
    :class:`RuleError` for a rule that is malformed or unbounded.
    """
    days: set[date] = set()
    if first <= on_date <= last:
        days.add(on_date)
    if rule and on_date <= last:
        days |= _rule_dates(rule, on_date, first, last)
    return frozenset(d.toordinal() for d in days)
