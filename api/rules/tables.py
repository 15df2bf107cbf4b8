"""The source tables the rules API writes, as SQLAlchemy Core tables.

Only the columns the API reads or writes, typed for statement building: SQLAlchemy composes
the statements (filters, cursors, multi-row upserts) and compiles them for psycopg; they run
on the API's own connections, in the host call's transaction (api/rules/store.py). The
schema itself is sql/schema.sql: these declarations never create anything, and the triggers
fire for these writes exactly as for a host's direct SQL.

Wall-clock times are declared as ``WallTime``: bound without a cast, so PostgreSQL reads
``'24:00'`` itself (no Python ``time`` can hold it), and read back as text.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg


class WallTime(sa.types.UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "time"


class Range(sa.types.UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "tstzrange"


metadata = sa.MetaData()


def _uuid(name: str, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, pg.UUID(as_uuid=True), **kw)


def _keys() -> list[sa.Column[Any]]:
    return [
        _uuid("tenant_id", primary_key=True),
        _uuid("id", primary_key=True, server_default=sa.text("gen_random_uuid()")),
    ]


locations = sa.Table("locations", metadata, *_keys(), sa.Column("name", sa.Text), sa.Column("timezone", sa.Text))

staff = sa.Table(
    "staff",
    metadata,
    *_keys(),
    _uuid("location_id"),
    sa.Column("display_name", sa.Text),
    sa.Column("timezone", sa.Text),
    sa.Column("priority", sa.Integer),
    sa.Column("active", sa.Boolean),
    sa.Column("max_bookings_per_day", sa.Integer),
    sa.Column("max_bookings_per_week", sa.Integer),
)

services = sa.Table(
    "services",
    metadata,
    *_keys(),
    sa.Column("name", sa.Text),
    sa.Column("duration_minutes", sa.Integer),
    sa.Column("buffer_before_minutes", sa.Integer),
    sa.Column("buffer_after_minutes", sa.Integer),
    sa.Column("slot_interval_minutes", sa.Integer),
    sa.Column("min_notice_minutes", sa.Integer),
    sa.Column("max_advance_days", sa.Integer),
    sa.Column("active", sa.Boolean),
    sa.Column("seats", sa.Integer),
    sa.Column("max_bookings_per_day", sa.Integer),
    sa.Column("max_bookings_per_week", sa.Integer),
)

staff_services = sa.Table("staff_services", metadata, *_keys(), _uuid("staff_id"), _uuid("service_id"))

availability_templates = sa.Table(
    "availability_templates",
    metadata,
    *_keys(),
    _uuid("staff_id"),
    sa.Column("weekday", sa.SmallInteger),
    sa.Column("start_time", WallTime()),
    sa.Column("end_time", WallTime()),
    _uuid("location_id"),
    sa.Column("valid_from", sa.Date),
    sa.Column("valid_until", sa.Date),
)

availability_overrides = sa.Table(
    "availability_overrides",
    metadata,
    *_keys(),
    _uuid("staff_id"),
    sa.Column("on_date", sa.Date),
    sa.Column("is_available", sa.Boolean),
    sa.Column("start_time", WallTime()),
    sa.Column("end_time", WallTime()),
    sa.Column("rrule", sa.Text),
    _uuid("location_id"),
    sa.Column("reason", sa.Text),
)

holidays = sa.Table(
    "holidays",
    metadata,
    *_keys(),
    _uuid("staff_id"),
    sa.Column("on_date", sa.Date),
    sa.Column("rrule", sa.Text),
    sa.Column("name", sa.Text),
)

time_off = sa.Table(
    "time_off", metadata, *_keys(), _uuid("staff_id"), sa.Column("during", Range()), sa.Column("reason", sa.Text)
)

busy_times = sa.Table(
    "busy_times",
    metadata,
    *_keys(),
    _uuid("staff_id"),
    sa.Column("during", Range()),
    sa.Column("source", sa.Text),
    sa.Column("external_id", sa.Text),
)

resources = sa.Table(
    "resources",
    metadata,
    *_keys(),
    _uuid("location_id"),
    sa.Column("kind", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("active", sa.Boolean),
)

service_resources = sa.Table(
    "service_resources",
    metadata,
    *_keys(),
    _uuid("service_id"),
    sa.Column("kind", sa.Text),
    sa.Column("quantity", sa.Integer),
)

location_travel = sa.Table(
    "location_travel",
    metadata,
    *_keys(),
    _uuid("from_location_id"),
    _uuid("to_location_id"),
    sa.Column("minutes", sa.Integer),
)

calendar_feeds = sa.Table(
    "calendar_feeds",
    metadata,
    *_keys(),
    _uuid("staff_id"),
    sa.Column("url", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("refresh_minutes", sa.Integer),
    sa.Column("active", sa.Boolean),
    sa.Column("next_sync_at", sa.DateTime(timezone=True)),
    sa.Column("last_sync_at", sa.DateTime(timezone=True)),
    sa.Column("last_success_at", sa.DateTime(timezone=True)),
    sa.Column("last_status", sa.Text),
    sa.Column("last_http_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("busy_count", sa.Integer),
    sa.Column("failures", sa.Integer),
)
