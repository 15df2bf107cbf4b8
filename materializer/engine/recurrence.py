"""Recurring rules: on which local dates a dated row with an optional RFC 5545 RRULE
(DTSTART = its ``on_date``) applies."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache

from dateutil.rrule import rrulestr


def _parse_rrule_dates(rule: str, on_date: date, first: date, last: date) -> set[date]:
    start = datetime.combine(first, time.min)
    end = datetime.combine(last, time.max)
    dtstart = datetime.combine(on_date, time.min)
    try:
        parsed = rrulestr(rule, dtstart=dtstart)
        occurrences = parsed.between(start, end, inc=True)
    except ValueError:
        # An ``UNTIL=...Z`` is refused with a floating DTSTART; read the dates in UTC, which
        # is what a local-date rule with a UTC UNTIL means to the host application.
        try:
            parsed = rrulestr(rule, dtstart=dtstart.replace(tzinfo=UTC))
            occurrences = parsed.between(
                start.replace(tzinfo=UTC), end.replace(tzinfo=UTC), inc=True
            )
        except (ValueError, TypeError):
            # A malformed rule written by the host must not stop materialization of the
            # whole tenant: the row then applies on its on_date only.
            return set()
    return {o.date() for o in occurrences}


@lru_cache(maxsize=8192)
def applies_on(rule: str | None, on_date: date, first: date, last: date) -> frozenset[int]:
    """Ordinals of the dates in ``first..last`` a row with ``on_date``/``rrule`` applies on.

    ``on_date`` itself always counts: it is the DTSTART, which RFC 5545 makes the first
    instance even when the rule's BY* parts would not produce it.
    """
    days: set[date] = set()
    if first <= on_date <= last:
        days.add(on_date)
    if rule and on_date <= last:
        days |= _parse_rrule_dates(rule, on_date, first, last)
    return frozenset(d.toordinal() for d in days)

