"""Webhook endpoints as a host manages them: create (the secret shown once), list, rotate,
disable and enable, delete, replay, and the delivery log. The host API (api/webhooks.py)
and the CLI (`slotmill webhooks ...`) both go through here; the worker delivers
(jobs/webhooks.py).

Secrets are Standard Webhooks secrets (``whsec_`` + base64 of 24 random bytes). They are
stored as they are, because signing needs them; they are shown only when made or rotated.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from uuid import UUID

from psycopg.rows import class_row

from slotmill.materializer.horizon import format_instant
from slotmill.materializer.loader import Conn
from slotmill.sql import owned_by

Q = owned_by(__name__)

EventType = Literal[
    "booking.held",
    "booking.confirmed",
    "booking.cancelled",
    "booking.rescheduled",
    "booking.expired",
    "slots.changed",
    "waitlist.matched",
    "webhook.disabled",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
# How long a rotated-out secret keeps signing beside the new one.
ROTATION_GRACE = timedelta(hours=24)
REPLAY_LIMIT = 10_000


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class EndpointNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint as the host (and admin status) sees it: never its secret."""

    id: UUID
    url: str
    description: str
    event_types: list[str] | None
    active: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_success_at: datetime | None
    created_at: datetime
    pending: int
    failed: int

    @property
    def circuit(self) -> str:
        """open: the breaker disabled it after a run of failures; closed otherwise."""
        return "open" if self.disabled_reason == "circuit" else "closed"

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = format_instant(v)
            elif isinstance(v, UUID):
                out[k] = str(v)
        out["circuit"] = self.circuit
        return out


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    event_id: int
    seq: int | None
    type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    replay: bool

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = format_instant(v)
        out["webhook_id"] = webhook_id(self.event_id)
        if self.status != "pending":
            out["next_attempt_at"] = None
        return out


def webhook_id(event_id: int) -> str:
    """The ``webhook-id`` of an event: the same for every attempt and replay of it."""
    return f"evt_{event_id}"


def create_endpoint(
    conn: Conn, tenant_id: UUID, url: str, *, event_types: list[str] | None = None, description: str = ""
) -> tuple[Endpoint, str]:
    """A new endpoint and its secret (shown once)."""
    secret = new_secret()
    row = conn.execute(
        Q["create_endpoint"],
        {
            "tenant_id": tenant_id,
            "url": url,
            "description": description,
            "event_types": sorted(set(event_types)) if event_types else None,
            "secret": secret,
        },
    ).fetchone()
    assert row is not None
    return get_endpoint(conn, tenant_id, UUID(str(row[0]))), secret


def list_endpoints(conn: Conn, tenant_id: UUID) -> list[Endpoint]:
    with conn.cursor(row_factory=class_row(Endpoint)) as cur:
        return cur.execute(Q["list_endpoints"], {"tenant_id": tenant_id, "endpoint_id": None}).fetchall()


def get_endpoint(conn: Conn, tenant_id: UUID, endpoint_id: UUID) -> Endpoint:
    with conn.cursor(row_factory=class_row(Endpoint)) as cur:
        row = cur.execute(Q["list_endpoints"], {"tenant_id": tenant_id, "endpoint_id": endpoint_id}).fetchone()
    if row is None:
        raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return row


def _one(conn: Conn, name: str, params: dict[str, Any]) -> None:
    if conn.execute(Q[name], params).fetchone() is None:
        raise EndpointNotFound(f"no webhook endpoint {params['endpoint_id']}")


def rotate_secret(conn: Conn, tenant_id: UUID, endpoint_id: UUID) -> str:
    """A new secret (shown once); the old one keeps signing beside it for ``ROTATION_GRACE``."""
    secret = new_secret()
    grace = datetime.now(UTC) + ROTATION_GRACE
    _one(
        conn,
        "rotate_secret",
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "secret": secret, "grace_until": grace},
    )
    return secret


def set_active(conn: Conn, tenant_id: UUID, endpoint_id: UUID, active: bool) -> Endpoint:
    """Disable an endpoint (no new deliveries; pending ones wait), or enable it (the circuit
    closes and what waited is due at once)."""
    _one(conn, "set_active", {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "active": active})
    return get_endpoint(conn, tenant_id, endpoint_id)


def delete_endpoint(conn: Conn, tenant_id: UUID, endpoint_id: UUID) -> None:
    _one(conn, "delete_endpoint", {"tenant_id": tenant_id, "endpoint_id": endpoint_id})


def replay(
    conn: Conn,
    tenant_id: UUID,
    endpoint_id: UUID,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    delivery_id: int | None = None,
) -> int:
    """Deliver again: one delivery, or the tenant's events ``from_seq``..``to_seq`` that the
    endpoint takes (at most ``REPLAY_LIMIT``); how many deliveries are due now."""
    get_endpoint(conn, tenant_id, endpoint_id)
    if delivery_id is not None:
        params = {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "delivery_id": delivery_id}
        return int(conn.execute(Q["replay_delivery"], params).rowcount)
    params2 = {
        "tenant_id": tenant_id,
        "endpoint_id": endpoint_id,
        "from_seq": from_seq or 1,
        "to_seq": to_seq,
        "limit": REPLAY_LIMIT,
    }
    return int(conn.execute(Q["replay_range"], params2).rowcount)


def delivery_log(
    conn: Conn, tenant_id: UUID, endpoint_id: UUID, *, limit: int = 50, before: int | None = None
) -> list[Delivery]:
    get_endpoint(conn, tenant_id, endpoint_id)
    with conn.cursor(row_factory=class_row(Delivery)) as cur:
        return cur.execute(
            Q["delivery_log"],
            {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "limit": limit, "before": before},
        ).fetchall()
