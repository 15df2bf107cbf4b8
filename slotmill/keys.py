"""Tenant secret keys for the host backend: shown once, stored only as a hash.

The CLI (`slotmill keys create|list|revoke`) goes through here; nothing else writes api_keys.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

PREFIX = "smk_"


def hash_key(secret: str) -> str:
    # The secret is 256 random bits: a fast hash is enough, no password stretching needed.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(conn: psycopg.Connection[Any], tenant_id: UUID) -> str:
    secret = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_keys (tenant_id, key_hash, prefix) VALUES (%s, %s, %s)",
        (tenant_id, hash_key(secret), secret[:10]),
    )
    return secret


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its secret, nor its hash."""

    id: UUID
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyNotFound(LookupError):
    pass


class AmbiguousKey(LookupError):
    def __init__(self, given: str, matches: list[KeyInfo]) -> None:
        super().__init__(given)
        self.given = given
        self.matches = matches


_COLUMNS = "id, prefix, created_at, revoked_at"


def list_keys(conn: psycopg.Connection[Any], tenant_id: UUID) -> list[KeyInfo]:
    """The tenant's keys, oldest first, revoked ones included."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = %s ORDER BY created_at, id", (tenant_id,)
    ).fetchall()
    return [KeyInfo(*r) for r in rows]


def find_key(conn: psycopg.Connection[Any], tenant_id: UUID, prefix_or_id: str) -> KeyInfo:
    """The key whose id is ``prefix_or_id``, else the one key whose prefix starts with it."""
    try:
        key_id: UUID | None = UUID(prefix_or_id)
    except ValueError:
        key_id = None
    if key_id is not None:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = %s AND id = %s", (tenant_id, key_id)
        ).fetchall()
    else:
        # The stored prefix is the secret's first 10 characters; a shorter start matches too.
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = %s AND starts_with(prefix, %s)"
            " ORDER BY created_at, id",
            (tenant_id, prefix_or_id),
        ).fetchall()
    found = [KeyInfo(*r) for r in rows]
    if not found:
        raise KeyNotFound(prefix_or_id)
    if len(found) > 1:
        raise AmbiguousKey(prefix_or_id, found)
    return found[0]


def revoke_key(conn: psycopg.Connection[Any], tenant_id: UUID, prefix_or_id: str) -> tuple[KeyInfo, bool]:
    """Revoke one key of the tenant; (the key, whether this call revoked it). A key revoked
    before stays as it was, so revoking twice is harmless."""
    key = find_key(conn, tenant_id, prefix_or_id)
    row = conn.execute(
        f"UPDATE api_keys SET revoked_at = now() WHERE tenant_id = %s AND id = %s AND revoked_at IS NULL"
        f" RETURNING {_COLUMNS}",
        (tenant_id, key.id),
    ).fetchone()
    return (KeyInfo(*row), True) if row else (key, False)
