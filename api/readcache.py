"""Read answers kept in the API process and never served stale (docs/architecture.md, "Reads").

A slot read's answer changes only when the tenant's version changes (every write of slots,
rules, bookings and held seats bumps it in its own transaction: sql/schema.sql,
staff_versions) or when time alone moves it (a hold lapses, notice and advance move with
now()): the read statement answers both with its body, and an answer is served again only
while ``valid_until`` is ahead and one small statement finds the version unchanged. Several
API processes each keep their own; none can serve what another's write has changed, because
the check goes to the database, not to a message.

Kept per process, bounded by bytes (least recently used out first). Each answer also keeps
its gzip form and a strong ETag (a hash of the body), so a repeat costs one small statement
and a 304 costs no body at all.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from slotmill.sql import owned_by

Q = owned_by(__name__)

# Bodies shorter than this are sent as they are: gzip would save less than its headers cost.
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Kept:
    tenant_id: UUID
    version: int
    valid_until: float  # epoch seconds; inf: no time-based end
    body: bytes
    etag: str
    gzipped: bytes | None  # None: too small to be worth it

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"") + 256


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def kept_from(tenant_id: UUID, version: int, valid_until: datetime | None, body: str) -> Kept:
    data = body.encode()
    until = float("inf") if valid_until is None else valid_until.timestamp()
    # level 5: most of level 9's saving on slot JSON at a third of the CPU
    packed = gzip.compress(data, compresslevel=5, mtime=0) if len(data) >= GZIP_MIN_BYTES else None
    return Kept(tenant_id, version, until, data, etag_of(data), packed)


class ReadCache:
    """Answers by request key, at most ``max_bytes`` of them; 0 turns it off."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Kept] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def candidate(self, key: Hashable) -> Kept | None:
        """The kept answer if time has not moved it; the caller still checks the version."""
        kept = self._entries.get(key)
        if kept is None:
            return None
        if time.time() >= kept.valid_until:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return kept

    async def still_current(self, conn: AsyncConnection[Any], kept: Kept) -> bool:
        cur = await conn.execute(Q["tenant_version"], {"tenant_id": kept.tenant_id})
        row = await cur.fetchone()
        return row is not None and int(row[0]) == kept.version

    def put(self, key: Hashable, kept: Kept) -> None:
        if not self.enabled or kept.size > self.max_bytes // 8:
            return
        self._drop(key)
        self._entries[key] = kept
        self._bytes += kept.size
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def forget(self, key: Hashable) -> None:
        self._drop(key)

    def _drop(self, key: Hashable) -> None:
        kept = self._entries.pop(key, None)
        if kept is not None:
            self._bytes -= kept.size
