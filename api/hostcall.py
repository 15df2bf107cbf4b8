"""The transaction around every host-backend call: the tenant's secret key, then the
action, then (with an ``Idempotency-Key``) the outcome stored in the same commit.

``Authorization: Bearer <secret>`` must be a live key of the tenant in the path. The
outcome of a call, refusals of the booking lifecycle included (404, 409, 410), is stored
under its idempotency key in the transaction of its effect; the same key and body replays
it byte for byte, the same key with another body is a 422. Transient refusals (a
concurrent update, a constraint a retry may not hit) are never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from starlette.requests import Request
from starlette.responses import Response

from slotmill.api.errors import PROBLEM_JSON, ProblemError, booking_problem, invalid, not_found
from slotmill.api.models import tenant_slug
from slotmill.api.replicas import HEADER as CONSISTENCY_HEADER
from slotmill.api.replicas import write_position_sync
from slotmill.keys import hash_key
from slotmill.materializer.bookings import BookingError
from slotmill.materializer.loader import Conn, Tenant
from slotmill.sql import owned_by

Q = owned_by(__name__)

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

# What a host action returns: the status and the JSON body of a success.
Action = Callable[[Conn, Tenant], tuple[int, dict[str, Any]]]


@dataclass
class HostResponse:
    status: int
    body: dict[str, Any]
    text: str | None = None  # as stored under the idempotency key: replays are byte-identical
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        content = self.text if self.text is not None else orjson.dumps(self.body)
        headers = dict(self.headers)
        if self.replayed:
            headers["Idempotent-Replayed"] = "true"
        media = PROBLEM_JSON if self.status >= 400 else "application/json"
        return Response(content, status_code=self.status, media_type=media, headers=headers)


@dataclass(frozen=True)
class HostCall:
    slug: str
    key_hash: str
    endpoint: str
    path: str
    idempotency_key: str | None
    request_hash: str


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="slotmill"'}
    )


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise unauthorized("send the tenant's secret key as `Authorization: Bearer <key>`")
    return secret


def _idempotency_key(request: Request) -> str | None:
    keys = {v for k in ("idempotency-key", "x-idempotency-key") for v in request.headers.getlist(k)}
    if not keys:
        return None
    if len(keys) > 1:
        raise invalid("header.Idempotency-Key", "Idempotency-Key and X-Idempotency-Key disagree")
    (key,) = keys
    if not _IDEMPOTENCY_KEY.match(key):
        raise invalid("header.Idempotency-Key", "1 to 255 visible ASCII characters")
    return key


def _run(pool: ConnectionPool[Any], call: HostCall, action: Action) -> HostResponse:
    with pool.connection() as conn:
        out = _call(conn, call, action)
        if out.status < 400:
            # After the COMMIT: the token a later read carries to see this write.
            out.headers[CONSISTENCY_HEADER] = write_position_sync(conn)
        return out


def _call(conn: Conn, call: HostCall, action: Action) -> HostResponse:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(Q["host_tenant"], {"slug": call.slug, "key_hash": call.key_hash}).fetchone()
        if row is None:
            raise not_found("tenant", f"no tenant {call.slug!r}")
        if not row["authorized"]:
            raise unauthorized("the key is not a live key of this tenant")
        tenant = Tenant.from_row(row)
        idem = {"tenant_id": tenant.id, "endpoint": call.endpoint, "key": call.idempotency_key}
        if call.idempotency_key is not None:
            cur.execute(Q["idempotency_lock"], idem)
            prev = cur.execute(Q["idempotency_get"], idem).fetchone()
            if prev is not None:
                if prev["request_hash"] != call.request_hash:
                    raise ProblemError(
                        422,
                        "idempotency_key_reused",
                        "Idempotency key reused",
                        "this Idempotency-Key was used with another request; use a new key",
                        field="header.Idempotency-Key",
                    )
                return HostResponse(prev["status_code"], {}, text=prev["body"], replayed=True)
        try:
            status, body = action(conn, tenant)
            out = HostResponse(status, body)
        except BookingError as err:
            if getattr(err, "transient", False):
                raise
            problem = booking_problem(err)
            out = HostResponse(problem.status, problem.body(call.path), headers=problem.headers)
        if call.idempotency_key is not None:
            params = {**idem, "request_hash": call.request_hash, "status_code": out.status}
            stored = cur.execute(Q["idempotency_put"], {**params, "body": orjson.dumps(out.body).decode()}).fetchone()
            assert stored is not None
            out.text = stored["body"]
        return out


async def host_call(request: Request, endpoint: str, data: dict[str, Any], action: Action) -> HostResponse:
    """Run ``action`` as the host call ``endpoint`` of this request, in one transaction on
    the sync pool (in a worker thread: the confirm re-check runs the engine)."""
    secret = bearer(request)
    key = _idempotency_key(request)
    slug = tenant_slug(request.path_params["slug"])
    digest = hashlib.sha256(f"{endpoint} {request.url.path}\n".encode())
    digest.update(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    call = HostCall(slug, hash_key(secret), endpoint, request.url.path, key, digest.hexdigest())
    try:
        return await asyncio.to_thread(_run, request.app.state.sync_pool, call, action)
    except BookingError as err:  # transient: not stored, a retry may succeed
        raise booking_problem(err) from None

