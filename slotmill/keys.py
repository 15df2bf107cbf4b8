"""Tenant secret keys for the host backend: shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets
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
