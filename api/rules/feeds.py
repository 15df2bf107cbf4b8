"""Calendar feeds beyond their CRUD (api/rules/resources.py FEEDS): ask for a sync now.

The worker syncs each active feed on its interval (jobs/feeds.py); this makes one due at
once, so the next check (every SLOTMILL_FEED_CHECK_SECONDS) fetches it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api.hostcall import bearer, host_call
from slotmill.api.routing import Reply, route
from slotmill.api.rules import tables as t
from slotmill.api.rules.crud import PROBLEMS, TAG, ItemPath, item_id, read_one, respond
from slotmill.api.rules.models import FeedOut
from slotmill.api.rules.resources import FEEDS
from slotmill.api.rules.store import run
from slotmill.materializer.loader import Conn, Tenant

F = t.calendar_feeds


def sync_soon(conn: Conn, tenant: Tenant, feed_id: UUID) -> dict[str, Any]:
    read_one(conn, FEEDS, tenant, feed_id, lock=True)
    run(conn, sa.update(F).where(F.c.tenant_id == tenant.id, F.c.id == feed_id).values(next_sync_at=sa.func.now()))
    return read_one(conn, FEEDS, tenant, feed_id)


async def sync_feed(request: Request) -> Response:
    bearer(request)
    feed_id = item_id(request)
    out = await host_call(request, "rules.calendar_feeds.sync", {}, lambda c, tn: (202, sync_soon(c, tn, feed_id)))
    return respond(out)


routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/calendar-feeds/{id}/sync",
        sync_feed,
        "POST",
        summary="Sync a calendar feed as soon as a worker can (its next check)",
        tag=TAG,
        path=ItemPath,
        responses={202: Reply(FeedOut)},
        problems=PROBLEMS,
        security="tenant_key",
    ),
]
