"""Query strings of the console's admin endpoints (api/admin_day.py, api/admin_usage.py,
api/admin_tenants.py): one value per parameter, strict local dates, 422 naming the field.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, WithJsonSchema
from starlette.requests import Request

from slotmill.api.errors import invalid
from slotmill.api.models import parse_model
from slotmill.materializer.horizon import zone

M = TypeVar("M", bound=BaseModel)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Dates the engine computes: the years the schema accepts for rule dates.
FIRST_DATE = date(1900, 1, 2)
LAST_DATE = date(2199, 12, 30)


def _parse_date(value: Any) -> date:
    # pydantic's own date parsing also takes numbers (Unix time) and datetimes: a console
    # sends calendar dates, and anything else is a mistake worth a 422.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value):
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a calendar date: {value!r}") from None
        if not FIRST_DATE <= parsed <= LAST_DATE:
            raise ValueError(f"out of range ({FIRST_DATE} .. {LAST_DATE})")
        return parsed
    raise ValueError("must be a calendar date like 2026-11-23")


LocalDate = Annotated[
    date,
    BeforeValidator(_parse_date),
    WithJsonSchema({"type": "string", "format": "date", "example": "2026-11-23"}),
]


def parse_query(request: Request, model: type[M]) -> M:
    """The query string as ``model`` (unknown parameters ignored); a parameter given twice
    is a 422 naming it, not a silent pick of one."""
    values: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in values:
            raise invalid(f"query.{key}", f"query.{key}: given more than once")
        values[key] = value
    return parse_model(model, values, "query")


def local_iso(instant: int, zone_name: str) -> str:
    """An instant as local wall-clock time with its offset (``2026-11-23T09:00:00+00:00``):
    unambiguous on the day the clocks change."""
    return datetime.fromtimestamp(instant, zone(zone_name)).isoformat()
