"""``slotmill import``: weekly templates and time off from a CSV or JSON file, in one
transaction, through the rules API's own checks and writes (api/rules), so a file gets
exactly the answers the API would give, line by line.

JSON::

    {"weeks": [{"staff": "Ann", "windows": [{"weekday": 1, "start_time": "09:00", "end_time": "17:00"}]}],
     "time_off": [{"staff": "Ann", "starts_at": "2026-12-24T00:00:00Z", "ends_at": "2026-12-27T00:00:00Z"}]}

CSV, one kind per file, told apart by its header: ``staff,weekday,start_time,end_time``
(optional ``location_id,valid_from,valid_until``) replaces the whole week of every staff
member it names; ``staff,starts_at,ends_at`` (optional ``reason``) adds time off. ``staff``
(or ``staff_id``) is a staff member's id or their display name.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from slotmill.api.errors import ProblemError
from slotmill.api.models import parse_model
from slotmill.api.rules.crud import create, validate
from slotmill.api.rules.models import WeekIn, WindowIn
from slotmill.api.rules.resources import TIME_OFF
from slotmill.api.rules.week import replace_week
from slotmill.materializer.loader import Conn, Tenant
from slotmill.sql import owned_by

Q = owned_by(__name__)

WINDOW_FIELDS = ("weekday", "start_time", "end_time", "location_id", "valid_from", "valid_until")
TIME_OFF_FIELDS = ("starts_at", "ends_at", "reason")


class ImportRefused(Exception):
    """A line the import refuses: where, and why. Nothing was written."""


@dataclass
class Plan:
    """What a file asks for: each staff member's new week, and time off to add. Each entry
    keeps where it came from (``file:line`` or a JSON path) for messages."""

    weeks: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)  # staff -> [(where, window)]
    time_off: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (where, staff, fields)

    @property
    def size(self) -> int:
        return len(self.weeks) + len(self.time_off)


@dataclass(frozen=True)
class Done:
    weeks: int
    windows: int
    time_off: int


def read_plan(path: Path) -> Plan:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        return _from_json(path.name, text)
    return _from_csv(path.name, text)


def _staff_key(row: dict[str, Any], where: str) -> str:
    value = row.pop("staff", None) or row.pop("staff_id", None)
    if not value or not isinstance(value, str):
        raise ImportRefused(f"{where}: staff: required (an id or a display name)")
    return value.strip()


def _from_json(name: str, text: str) -> Plan:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ImportRefused(f"{name}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not set(data) <= {"weeks", "time_off"}:
        raise ImportRefused(f'{name}: must be an object with "weeks" and/or "time_off"')
    plan = Plan()
    for i, week in enumerate(data.get("weeks") or []):
        where = f"{name}: weeks[{i}]"
        if not isinstance(week, dict) or not isinstance(week.get("windows", []), list):
            raise ImportRefused(f'{where}: must be an object with "staff" and "windows"')
        week = dict(week)
        staff = _staff_key(week, where)
        windows = week.pop("windows", [])
        if week:
            raise ImportRefused(f"{where}: unknown field {sorted(week)[0]}")
        if staff in plan.weeks:
            raise ImportRefused(f"{where}: the week of {staff} is given twice")
        plan.weeks[staff] = [(f"{where}.windows[{j}]", w) for j, w in enumerate(windows)]
    for i, item in enumerate(data.get("time_off") or []):
        where = f"{name}: time_off[{i}]"
        if not isinstance(item, dict):
            raise ImportRefused(f"{where}: must be an object")
        item = dict(item)
        plan.time_off.append((where, _staff_key(item, where), item))
    return plan


def _from_csv(name: str, text: str) -> Plan:
    reader = csv.DictReader(io.StringIO(text))
    header = {h.strip() for h in reader.fieldnames or []}
    plan = Plan()
    if "weekday" in header:
        kind, allowed = "week", {"staff", "staff_id", *WINDOW_FIELDS}
    elif "starts_at" in header:
        kind, allowed = "time_off", {"staff", "staff_id", *TIME_OFF_FIELDS}
    else:
        raise ImportRefused(f"{name}: the header names neither weekday (a week) nor starts_at (time off)")
    unknown = sorted(header - allowed)
    if unknown:
        raise ImportRefused(f"{name}: unknown column {unknown[0]} (known: {', '.join(sorted(allowed))})")
    for row in reader:
        where = f"{name}:{reader.line_num}"
        fields = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
        # an empty cell is an absent value
        fields = {k: v for k, v in fields.items() if v not in ("", None)}
        if not fields:
            continue
        staff = _staff_key(fields, where)
        if kind == "week":
            if "weekday" in fields:
                fields["weekday"] = int(fields["weekday"]) if str(fields["weekday"]).isdigit() else fields["weekday"]
            plan.weeks.setdefault(staff, []).append((where, fields))
        else:
            plan.time_off.append((where, staff, fields))
    return plan


def _problem(where: str, err: ProblemError) -> ImportRefused:
    field = (err.field or "").split(".")[-1]
    detail = (err.detail or err.title).split(": ", 1)[-1]
    return ImportRefused(f"{where}: {field}: {detail}" if field and field != where else f"{where}: {detail}")


def resolve_staff(conn: Conn, tenant: Tenant, keys: set[str]) -> dict[str, UUID]:
    """Each key (an id, or a display name that names exactly one staff member) to its id."""
    rows = conn.execute(Q["import_staff"], {"tenant_id": tenant.id}).fetchall()
    by_id = {str(r[0]): r[0] for r in rows}
    by_name: dict[str, list[UUID]] = {}
    for staff_id, display_name in rows:
        by_name.setdefault(display_name.strip().casefold(), []).append(staff_id)
    out: dict[str, UUID] = {}
    for key in sorted(keys):
        if key.lower() in by_id:
            out[key] = by_id[key.lower()]
            continue
        found = by_name.get(key.casefold(), [])
        if len(found) != 1:
            what = "no staff member" if not found else f"{len(found)} staff members"
            raise ImportRefused(f"staff {key!r}: {what} of tenant {tenant.slug} by that id or name")
        out[key] = found[0]
    return out


def apply(conn: Conn, tenant: Tenant, plan: Plan, progress: Callable[[int], None] = lambda n: None) -> Done:
    """Check everything, then write it in the caller's transaction; raises
    :class:`ImportRefused` naming the first bad line (the caller rolls back)."""
    staff = resolve_staff(conn, tenant, set(plan.weeks) | {s for _, s, _ in plan.time_off})
    weeks: dict[UUID, WeekIn] = {}
    for key, rows in plan.weeks.items():
        windows = []
        for where, row in rows:
            try:
                window = parse_model(WindowIn, row, where)
                for name, message in window.problems():
                    raise ProblemError(422, "validation_error", "Invalid", f"{message}", field=f"{where}.{name}")
            except ProblemError as e:
                raise _problem(where, e) from None
            windows.append(window)
        weeks[staff[key]] = WeekIn(windows=windows)
    time_off = []
    for where, key, row in plan.time_off:
        try:
            time_off.append((where, validate(TIME_OFF, {**row, "staff_id": str(staff[key])}, where)))
        except ProblemError as e:
            raise _problem(where, e) from None
    for staff_id, week in weeks.items():
        try:
            replace_week(conn, tenant, staff_id, week, None, prefix=f"staff {staff_id}")
        except ProblemError as e:
            raise _problem(f"staff {staff_id}", e) from None
        progress(1)
    for where, body in time_off:
        try:
            create(conn, TIME_OFF, tenant, body, prefix=where)
        except ProblemError as e:
            raise _problem(where, e) from None
        progress(1)
    return Done(len(weeks), sum(len(w.windows) for w in weeks.values()), len(time_off))
