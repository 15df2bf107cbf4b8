"""Configuration from the environment: ``DATABASE_URL`` and ``SLOTMILL_*``.

Every variable read here is documented in docs/operations.md (a test checks it).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLOTMILL_", extra="ignore")

    # No prefix: the conventional name every PostgreSQL tool and platform understands.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SLOTMILL_DATABASE_URL")
    )
    # Where the embedded PostgreSQL keeps its data when no DATABASE_URL is set.
    home: Path = Path(".slotmill")
    admin_key: str | None = None
    log_level: str = "INFO"
    # auto: text on a terminal, JSON otherwise (slotmill/logs.py).
    log_format: Literal["auto", "json", "text"] = "auto"
    # The older switch, honoured while log_format is auto; unset means "decide by the terminal".
    log_json: bool | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 1
    pool_min_size: int = 4
    pool_max_size: int = 16

    # Slot read answers each API process keeps (megabytes; 0: none). Never stale: each is
    # checked against the tenant's version before it is served again (api/readcache.py).
    read_cache_mb: int = 64

    # Per client address, per minute (SPEC §9).
    rate_limit_reads: int = 120
    rate_limit_holds: int = 10
    # Proxies in front of the API (IPs or CIDRs, comma-separated) whose X-Forwarded-For
    # entries are believed; the client is the rightmost hop that is not one of them.
    trusted_proxies: str = ""
    # The immediate peer is a proxy whatever its address (one hop of X-Forwarded-For).
    trust_forwarded_for: bool = False

    # Demo routes (the widget's confirm-on-behalf); only `slotmill run` / `demo` set it.
    demo_mode: bool = False

    worker_poll_seconds: float = 5.0
    worker_batch_size: int = 500

    # Server-side bounds on any one statement (0: none), so a runaway query or a lock
    # wait answers with an error instead of holding a pool connection for good. The API's
    # statements are small (holds wait for a staff lock at most); the worker's COPY a
    # horizon of slots.
    api_statement_timeout_ms: int = 15_000
    worker_statement_timeout_ms: int = 300_000

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


@cache
def get_settings() -> Settings:
    return Settings()


def timeout_options(ms: int) -> str:
    """libpq ``options`` that set the session's statement_timeout (empty when 0). Behind
    PgBouncer in transaction mode set it on the database role instead (docs/operations.md)."""
    return f"-c statement_timeout={ms}" if ms > 0 else ""
