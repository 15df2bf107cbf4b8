"""One resource of the rules API, and the operations every resource has: list (cursor
pages), read, create, replace, patch, delete and bulk upsert.

A ``Resource`` says which table, which bodies, what an answer shows (SQL expressions per
field) and how a bulk upsert recognises an existing row. Every operation is one host call
(api/hostcall.py): the tenant's key, then the statements, then the commit, all in one
transaction; any refusal raises and rolls everything back, so nothing is ever partial.
Reads and writes are scoped by ``tenant_id``: another tenant's id is a 404.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import orjson
import psycopg
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.sql import ClauseElement
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api.errors import invalid, not_found
from slotmill.api.hostcall import HostResponse, bearer, host_call
from slotmill.api.models import TenantPath, parse_json_object, parse_model, parse_uuid
from slotmill.api.routing import Header, Reply, route
from slotmill.api.rules.models import RuleIn, RuleOut
from slotmill.api.rules.store import Row, check_if_match, db_problem, decode_cursor, encode_cursor, etag, run
from slotmill.materializer.loader import Conn, Tenant

MAX_BULK = 1000
PAGE_DEFAULT, PAGE_MAX = 100, 500
TAG = "rules"
PROBLEMS = [401, 404, 409, 413, 422, 503]

STALE = {412: "If-Match names another version than the current one (code `precondition_failed`): read it again."}
ETAG_HEADER = {"ETag": Header("The representation's version: send it back as If-Match to write only over it.")}


class _Headers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WriteHeaders(_Headers):
    """Request headers of the rules writes (documentation: handlers read them)."""

    if_match: str | None = Field(
        None,
        alias="If-Match",
        description="ETag(s) of the version this write replaces; another current version: 412.",
    )
    idempotency_key: str | None = Field(
        None, alias="Idempotency-Key", description="Replays the first answer for the same key and body."
    )


class ItemPath(TenantPath):
    id: UUID = Field(description="The row's id.")


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(PAGE_DEFAULT, ge=1, le=PAGE_MAX, description="Rows per page.")
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")


@dataclass(frozen=True)
class Resource:
    path: str  # URL segment: /v1/tenants/{slug}/<path>
    noun: str  # one row: codes <noun>_not_found, operation ids
    table: sa.Table
    model_in: type[RuleIn]
    model_out: type[RuleOut]
    # what an answer shows: field -> SQL expression over the table, in this order
    out: Mapping[str, sa.ColumnElement[Any]]
    summary: str
    filters: tuple[str, ...] = ()
    # the columns (besides tenant_id) a bulk item is recognised by; ("id",): items may carry one
    bulk_key: tuple[str, ...] = ("id",)
    # a body -> column values (SQL expressions allowed)
    to_row: Callable[[Any], dict[str, Any]] = field(default=lambda body: body.model_dump())
    # POST with a known bulk_key updates that row (200) instead of refusing it (409)
    create_upserts: bool = False

    @property
    def columns(self) -> list[sa.ColumnElement[Any]]:
        return [expr.label(name) for name, expr in self.out.items()]

    @property
    def plural(self) -> str:
        return self.path.replace("-", "_")

    def mine(self, tenant: Tenant) -> sa.ColumnElement[bool]:
        return self.table.c.tenant_id == tenant.id


# --- the operations, below HTTP (the CLI and the week endpoint call these too) --------------


def validate(res: Resource, data: Any, prefix: str) -> RuleIn:
    body = parse_model(res.model_in, data, prefix)
    for name, message in body.problems():
        raise invalid(f"{prefix}.{name}", f"{prefix}.{name}: {message}")
    return body


def _write(conn: Conn, stmt: ClauseElement, prefix: str, *, deleting: bool = False) -> list[Row]:
    try:
        with conn.transaction():  # a savepoint: the refusal is mapped, then all rolls back
            return run(conn, stmt)
    except psycopg.DataError as err:
        raise db_problem(err, prefix) from None
    except psycopg.IntegrityError as err:
        raise db_problem(err, prefix, deleting=deleting) from None
    except psycopg.errors.RaiseException as err:
        raise db_problem(err, prefix) from None


def read_one(conn: Conn, res: Resource, tenant: Tenant, row_id: UUID, *, lock: bool = False) -> Row:
    stmt = sa.select(*res.columns).where(res.mine(tenant), res.table.c.id == row_id)
    if lock:
        stmt = stmt.with_for_update()
    rows = run(conn, stmt)
    if not rows:
        raise not_found(res.noun, f"no {res.noun.replace('_', ' ')} {row_id} in tenant {tenant.slug!r}")
    return rows[0]


def list_rows(conn: Conn, res: Resource, tenant: Tenant, query: Any) -> dict[str, Any]:
    stmt = sa.select(*res.columns).where(res.mine(tenant))
    for name in res.filters:
        value = getattr(query, name)
        if value is not None:
            stmt = stmt.where(res.table.c[name] == value)
    if query.cursor is not None:
        stmt = stmt.where(res.table.c.id > decode_cursor(query.cursor))
    rows = run(conn, stmt.order_by(res.table.c.id).limit(query.limit + 1))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {"items": rows, "next_cursor": encode_cursor(rows[-1]["id"]) if more else None}


def create(conn: Conn, res: Resource, tenant: Tenant, body: RuleIn, prefix: str = "body") -> tuple[int, Row]:
    """(201, the new row), or (200, the row) when ``res.create_upserts`` and the body's
    ``bulk_key`` names an existing row, which it updates."""
    values = {**res.to_row(body), "tenant_id": tenant.id}
    if not res.create_upserts or _key_of(res, values) is None:
        return 201, _write(conn, sa.insert(res.table).values(values).returning(*res.columns), prefix)[0]
    stmt = pg.insert(res.table).values(values)
    changing = {c: stmt.excluded[c] for c in values if c not in ("tenant_id", "id", *res.bulk_key)}
    stmt = stmt.on_conflict_do_update(
        index_elements=[res.table.c.tenant_id, *(res.table.c[k] for k in res.bulk_key)], set_=changing
    )
    row = _write(conn, stmt.returning(*res.columns, sa.literal_column("(xmax = 0)").label("_created")), prefix)[0]
    return (201 if row.pop("_created") else 200), row


def update(
    conn: Conn, res: Resource, tenant: Tenant, row_id: UUID, body: RuleIn, if_match: str | None, prefix: str = "body"
) -> Row:
    check_if_match(if_match, read_one(conn, res, tenant, row_id, lock=True))
    stmt = (
        sa.update(res.table)
        .where(res.mine(tenant), res.table.c.id == row_id)
        .values(res.to_row(body))
        .returning(*res.columns)
    )
    return _write(conn, stmt, prefix)[0]


def patch(
    conn: Conn, res: Resource, tenant: Tenant, row_id: UUID, changes: dict[str, Any], if_match: str | None
) -> Row:
    current = read_one(conn, res, tenant, row_id, lock=True)
    check_if_match(if_match, current)
    merged = {k: current[k] for k in res.model_in.model_fields if k in current}
    merged.update(changes)
    return update(conn, res, tenant, row_id, validate(res, merged, "body"), None)


def delete(conn: Conn, res: Resource, tenant: Tenant, row_id: UUID, if_match: str | None) -> None:
    check_if_match(if_match, read_one(conn, res, tenant, row_id, lock=True))
    _write(conn, sa.delete(res.table).where(res.mine(tenant), res.table.c.id == row_id), "path.id", deleting=True)


def _key_of(res: Resource, row: Mapping[str, Any]) -> tuple[Any, ...] | None:
    key = tuple(row.get(k) for k in res.bulk_key)
    return None if any(v is None for v in key) else key


def bulk_upsert(conn: Conn, res: Resource, tenant: Tenant, items: Sequence[Any]) -> dict[str, Any]:
    """Insert or update every item in one statement; an item whose key (``bulk_key``) names
    an existing row of this tenant updates it. One bad item refuses them all, naming it."""
    if not items:
        return {"items": [], "created": 0, "updated": 0}
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(items):
        prefix = f"body.items.{i}"
        if not isinstance(item, dict):
            raise invalid(prefix, f"{prefix}: must be a JSON object")
        data = dict(item)
        row_id: UUID | None = None
        if res.bulk_key == ("id",):
            raw = data.pop("id", None)
            row_id = uuid4() if raw is None else parse_uuid(str(raw), f"{prefix}.id")
        body = validate(res, data, prefix)
        row = {**res.to_row(body), "tenant_id": tenant.id}
        if row_id is not None:
            row["id"] = row_id
        key = _key_of(res, {**body.model_dump(), "id": row_id})
        if key is not None:
            if key in seen:
                raise invalid(
                    f"{prefix}.{res.bulk_key[-1]}", f"{prefix}: the same {'/'.join(res.bulk_key)} as item {seen[key]}"
                )
            seen[key] = i
        rows.append(row)

    stmt = pg.insert(res.table).values(rows)
    target = [res.table.c.tenant_id, *(res.table.c[k] for k in res.bulk_key)]
    changing = {c: stmt.excluded[c] for c in rows[0] if c not in ("tenant_id", "id", *res.bulk_key)}
    created: sa.Label[Any] = sa.literal_column("(xmax = 0)").label("_created")
    if changing:
        upsert = stmt.on_conflict_do_update(index_elements=target, set_=changing)
    else:  # nothing to change on a known key (a link row): keep it
        upsert = stmt.on_conflict_do_nothing(index_elements=target)
    try:
        with conn.transaction():
            out = run(conn, upsert.returning(*res.columns, created))
    except psycopg.Error as first:
        blame(conn, res.table, rows, first, "body.items", keyed=res.bulk_key != ("id",))
        raise
    if not changing and len(out) < len(rows):
        known = [k for k in (_key_of(res, r) for r in rows) if k is not None]
        have = {_key_of(res, r) for r in out}
        missing = [k for k in known if k not in have]
        if missing:
            cols = [res.table.c[k] for k in res.bulk_key]
            again = run(conn, sa.select(*res.columns).where(res.mine(tenant), sa.tuple_(*cols).in_(missing)))
            out += [{**r, "_created": False} for r in again]
    n_created = sum(1 for r in out if r.pop("_created"))
    return {"items": out, "created": n_created, "updated": len(out) - n_created}


def blame(
    conn: Conn, table: sa.Table, rows: list[dict[str, Any]], first: psycopg.Error, prefix: str, *, keyed: bool = False
) -> None:
    """Raise the refusal of the first row the database refuses on its own (each tried in a
    savepoint that is rolled back), named ``<prefix>.<index>.<field>``; else the batch's own.
    ``keyed``: a row whose key exists is fine (the batch updates it)."""
    for i, row in enumerate(rows):
        try:
            with conn.transaction():
                run(conn, pg.insert(table).values(row))
                raise _Rollback
        except _Rollback:
            continue
        except (psycopg.IntegrityError, psycopg.DataError, psycopg.errors.RaiseException) as err:
            if keyed and isinstance(err, psycopg.errors.UniqueViolation):
                continue
            raise db_problem(err, f"{prefix}.{i}") from None
    if isinstance(first, psycopg.IntegrityError | psycopg.DataError):
        raise db_problem(first, prefix) from None
    raise first


class _Rollback(Exception):
    pass


# --- HTTP -----------------------------------------------------------------------------------


def respond(out: HostResponse, *, single: bool = True, location: str | None = None) -> Response:
    """The answer of a host call, with the ETag of a single representation (recomputed from
    the body, so a replayed answer carries it too) and the Location of a created row."""
    if out.status == 204:
        return Response(status_code=204)
    response = out.response()
    if out.status < 300 and single:
        body = orjson.loads(out.text) if out.text is not None else out.body
        response.headers["ETag"] = etag(body)
        if location is not None and out.status == 201:
            response.headers["Location"] = f"{location}/{body.get('id', '')}".rstrip("/")
    return response


def if_match(request: Request) -> str | None:
    values = request.headers.getlist("if-match")
    return ", ".join(values) if values else None


def item_id(request: Request) -> UUID:
    return parse_uuid(request.path_params["id"], "path.id")


def _query(request: Request, model: type[BaseModel]) -> Any:
    params = dict(request.query_params)
    return parse_model(model, params, "query")


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[dict[str, Any]] = Field(max_length=MAX_BULK)


def resource_routes(res: Resource) -> list[BaseRoute]:
    """The seven operations of ``res``, mounted and documented."""
    base = f"/v1/tenants/{{slug}}/{res.path}"
    name = res.plural
    page = create_model(
        f"{res.model_out.__name__}Page",
        items=(list[res.model_out], ...),  # type: ignore[name-defined]
        next_cursor=(str | None, Field(description="Pass as `cursor` for the next page; null: last page.")),
        __config__=ConfigDict(extra="forbid", frozen=True),
    )
    query_fields: dict[str, Any] = {
        f: (UUID | None, Field(None, description=f"Only rows of this {f[:-3]}.")) for f in res.filters
    }
    query = create_model(f"{res.model_out.__name__.removesuffix('Out')}ListQuery", __base__=ListQuery, **query_fields)
    bulk_item = (
        res.model_in
        if res.bulk_key != ("id",)
        else create_model(
            f"{res.model_in.__name__}WithId",
            __base__=res.model_in,
            id=(UUID | None, Field(None, description="Known: update it.")),
        )
    )
    bulk_in = create_model(
        f"{res.model_in.__name__.removesuffix('In')}BulkIn",
        items=(list[bulk_item], Field(max_length=MAX_BULK)),  # type: ignore[valid-type]
        __config__=ConfigDict(extra="forbid", frozen=True),
    )
    optional: dict[str, Any] = {
        k: (f.annotation | None, Field(None, description=f.description))  # type: ignore[operator]
        for k, f in res.model_in.model_fields.items()
    }
    patch_in = create_model(
        f"{res.model_in.__name__.removesuffix('In')}Patch",
        __config__=ConfigDict(extra="forbid", frozen=True),
        **optional,
    )
    bulk_out = create_model(
        f"{res.model_out.__name__.removesuffix('Out')}BulkOut",
        items=(list[res.model_out], ...),  # type: ignore[name-defined]
        created=(int, ...),
        updated=(int, ...),
        __config__=ConfigDict(extra="forbid", frozen=True),
    )

    async def list_(request: Request) -> Response:
        bearer(request)
        q = _query(request, query)
        out = await host_call(request, f"rules.{name}.list", {}, lambda c, t: (200, list_rows(c, res, t, q)))
        return respond(out, single=False)

    async def get(request: Request) -> Response:
        bearer(request)
        row_id = item_id(request)
        out = await host_call(request, f"rules.{name}.get", {}, lambda c, t: (200, read_one(c, res, t, row_id)))
        return respond(out)

    async def post(request: Request) -> Response:
        bearer(request)
        data = parse_json_object(await request.body())
        body = validate(res, data, "body")
        out = await host_call(request, f"rules.{name}.create", data, lambda c, t: create(c, res, t, body))
        return respond(out, location=request.url.path)

    async def put(request: Request) -> Response:
        bearer(request)
        row_id = item_id(request)
        data = parse_json_object(await request.body())
        body = validate(res, data, "body")
        tag = if_match(request)
        out = await host_call(
            request, f"rules.{name}.replace", data, lambda c, t: (200, update(c, res, t, row_id, body, tag))
        )
        return respond(out)

    async def patch_(request: Request) -> Response:
        bearer(request)
        row_id = item_id(request)
        data = parse_json_object(await request.body())
        unknown = sorted(set(data) - set(res.model_in.model_fields))
        if unknown:
            raise invalid(f"body.{unknown[0]}", f"body.{unknown[0]}: Extra inputs are not permitted")
        tag = if_match(request)
        out = await host_call(
            request, f"rules.{name}.patch", data, lambda c, t: (200, patch(c, res, t, row_id, data, tag))
        )
        return respond(out)

    async def delete_(request: Request) -> Response:
        bearer(request)
        row_id = item_id(request)
        tag = if_match(request)

        def action(c: Conn, t: Tenant) -> tuple[int, dict[str, Any]]:
            delete(c, res, t, row_id, tag)
            return 204, {}

        return respond(await host_call(request, f"rules.{name}.delete", {}, action))

    async def bulk(request: Request) -> Response:
        bearer(request)
        data = parse_json_object(await request.body())
        items = parse_model(BulkIn, data, "body").items
        out = await host_call(request, f"rules.{name}.bulk", data, lambda c, t: (200, bulk_upsert(c, res, t, items)))
        return respond(out, single=False)

    one = f"{res.noun.replace('_', ' ')}"
    key = "/".join(res.bulk_key)
    common: dict[str, Any] = {"tag": TAG, "security": "tenant_key"}
    return [
        route(
            base,
            list_,
            "GET",
            summary=f"List {res.summary} (cursor pages)",
            path=TenantPath,
            query=query,
            responses={200: page},
            problems=[401, 404, 422, 503],
            name=f"list_{name}",
            **common,
        ),
        route(
            base,
            post,
            "POST",
            summary=f"Create a {one}",
            path=TenantPath,
            headers=WriteHeaders,
            body=res.model_in,
            responses={201: Reply(res.model_out, headers={**ETAG_HEADER, "Location": Header("The new row's URL.")})},
            problems=PROBLEMS,
            name=f"create_{res.noun}",
            **common,
        ),
        route(
            f"{base}/bulk",
            bulk,
            "POST",
            summary=f"Create or update many {res.summary} in one transaction (by {key})",
            path=TenantPath,
            headers=WriteHeaders,
            body=bulk_in,
            responses={200: bulk_out},
            problems=PROBLEMS,
            notes={422: "`field` names the first bad item (`body.items.3.end_time`); nothing is written."},
            name=f"bulk_{name}",
            **common,
        ),
        route(
            f"{base}/{{id}}",
            get,
            "GET",
            summary=f"Read a {one}",
            path=ItemPath,
            responses={200: Reply(res.model_out, headers=ETAG_HEADER)},
            problems=[401, 404, 422, 503],
            name=f"get_{res.noun}",
            **common,
        ),
        route(
            f"{base}/{{id}}",
            put,
            "PUT",
            summary=f"Replace a {one}",
            path=ItemPath,
            headers=WriteHeaders,
            body=res.model_in,
            responses={200: Reply(res.model_out, headers=ETAG_HEADER)},
            problems=[*PROBLEMS, 412],
            notes=STALE,
            name=f"replace_{res.noun}",
            **common,
        ),
        route(
            f"{base}/{{id}}",
            patch_,
            "PATCH",
            summary=f"Change some fields of a {one}",
            path=ItemPath,
            headers=WriteHeaders,
            body=patch_in,
            responses={200: Reply(res.model_out, headers=ETAG_HEADER)},
            problems=[*PROBLEMS, 412],
            notes=STALE,
            name=f"patch_{res.noun}",
            **common,
        ),
        route(
            f"{base}/{{id}}",
            delete_,
            "DELETE",
            summary=f"Delete a {one}",
            path=ItemPath,
            headers=WriteHeaders,
            responses={204: Reply(None)},
            problems=[*PROBLEMS, 412],
            notes={**STALE, 409: "`in_use`: other rows (bookings) still refer to it."},
            name=f"delete_{res.noun}",
            **common,
        ),
    ]
