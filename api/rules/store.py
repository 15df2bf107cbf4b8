"""Running SQLAlchemy Core statements on the API's psycopg connections, and what the rules
API derives from rows: ETags, cursors, and a 422 or 409 for every database refusal.

Statements are compiled for the psycopg dialect and run on the connection of the host
call's transaction (api/hostcall.py), so a rules write is authorized, written and
committed in one transaction, through the same triggers as a host's direct SQL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg import errors as pgerr
from psycopg.rows import dict_row
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.sql import ClauseElement

from slotmill.api.errors import ProblemError, invalid
from slotmill.materializer.loader import Conn

Row = dict[str, Any]

_DIALECT = pg_psycopg.dialect()  # type: ignore[no-untyped-call]
_KEY = re.compile(r"Key \(([^)]*)\)")


def run(conn: Conn, stmt: ClauseElement) -> list[Row]:
    compiled = stmt.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(str(compiled), compiled.params)
        return cur.fetchall() if cur.description is not None else []


# --- ETags ----------------------------------------------------------------------------------


def etag(representation: Any) -> str:
    """A strong ETag of what an answer shows: the same representation, the same tag, so a
    replayed or re-read answer carries the tag a write compares against."""
    digest = hashlib.sha256(orjson.dumps(representation, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f'"{digest[:32]}"'


def check_if_match(if_match: str | None, current: Any) -> None:
    """412 when the client's If-Match names none of the current representation's tags."""
    if if_match is None:
        return
    wanted = [t.strip() for t in if_match.split(",") if t.strip()]
    if "*" in wanted or etag(current) in wanted:
        return
    raise ProblemError(
        412,
        "precondition_failed",
        "Precondition failed",
        "If-Match does not match the current ETag: someone changed it since you read it; read it again",
        field="header.If-Match",
    )


# --- cursors --------------------------------------------------------------------------------


def encode_cursor(last_id: UUID) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"id": str(last_id)})).decode().rstrip("=")


def decode_cursor(cursor: str) -> UUID:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return UUID(str(data["id"]))
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise invalid("query.cursor", "query.cursor: not a cursor this API gave out") from None


# --- database refusals ----------------------------------------------------------------------

# CHECK constraints whose column is not in their name, or whose column the API calls by
# another name (docs/rules.md, "When a rule cannot be computed").
_CONSTRAINT_FIELDS: Mapping[str, str] = {
    "availability_templates_times": "end_time",
    "availability_templates_validity": "valid_until",
    "availability_templates_dates_valid": "valid_from",
    "availability_overrides_times": "end_time",
    "time_off_during_valid": "ends_at",
    "time_off_during_check": "ends_at",
    "busy_times_during_valid": "ends_at",
    "busy_times_during_check": "ends_at",
    "staff_max_per_day_valid": "max_bookings_per_day",
    "staff_max_per_week_valid": "max_bookings_per_week",
    "services_max_per_day_valid": "max_bookings_per_day",
    "services_max_per_week_valid": "max_bookings_per_week",
    "location_travel_two_places": "to_location_id",
    "calendar_feeds_refresh_valid": "refresh_minutes",
    "calendar_feeds_one_url": "url",
    "location_travel_one_way": "to_location_id",
}
# Column names the API shows under another name.
_COLUMN_FIELDS: Mapping[str, str] = {"during": "ends_at"}


def _field_of_constraint(table: str, constraint: str) -> str:
    if constraint in _CONSTRAINT_FIELDS:
        return _CONSTRAINT_FIELDS[constraint]
    name = constraint.removeprefix(f"{table}_")
    for suffix in ("_valid", "_check"):
        name = name.removesuffix(suffix)
    return _COLUMN_FIELDS.get(name, name)


def _key_field(detail: str | None) -> str | None:
    m = _KEY.search(detail or "")
    if not m:
        return None
    cols = [c.strip() for c in m[1].split(",") if c.strip() != "tenant_id"]
    return _COLUMN_FIELDS.get(cols[-1], cols[-1]) if cols else None


def db_problem(err: psycopg.Error, prefix: str, *, deleting: bool = False) -> ProblemError:
    """The answer to a refusal of the database: 422 naming the field for a value it cannot
    take or a reference to nothing of this tenant, 409 for a write that conflicts with
    other rows. Never a 500."""
    diag = err.diag
    table = diag.table_name or ""
    message = diag.message_primary or str(err)
    if isinstance(err, pgerr.CheckViolation):
        constraint = diag.constraint_name or ""
        name = _field_of_constraint(table, constraint)
        if constraint.endswith("_rrule_valid"):
            message = f"not a bounded date recurrence (refused by {constraint})"
        return invalid(f"{prefix}.{name}", f"{prefix}.{name}: {message}")
    if isinstance(err, pgerr.NotNullViolation):
        name = _COLUMN_FIELDS.get(diag.column_name or "", diag.column_name or "")
        return invalid(f"{prefix}.{name}", f"{prefix}.{name}: required")
    if isinstance(err, pgerr.ForeignKeyViolation):
        if deleting:
            return ProblemError(
                409, "in_use", "Still in use", f"other rows still refer to it ({message}); remove them first"
            )
        name = _key_field(diag.message_detail) or "id"
        return invalid(f"{prefix}.{name}", f"{prefix}.{name}: no such row of this tenant")
    if isinstance(err, pgerr.UniqueViolation | pgerr.ExclusionViolation):
        name = _key_field(diag.message_detail) or _field_of_constraint(table, diag.constraint_name or "")
        return ProblemError(
            409,
            "conflict",
            "Conflicting write",
            f"{prefix}.{name}: another row already has this value ({diag.constraint_name})",
            field=f"{prefix}.{name}",
        )
    if isinstance(err, pgerr.IntegrityError | pgerr.RaiseException):
        return ProblemError(409, "conflict", "Conflicting write", message)
    # a value PostgreSQL could not take at all (out of range, not a time)
    return invalid(prefix, f"{prefix}: {message}")
