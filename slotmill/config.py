"""Configuration from the environment: ``DATABASE_URL`` and ``SLOTMILL_*``.

Every variable read here is documented in docs/operations.md (a test checks it).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from slotmill.outbound import Guard


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLOTMILL_", extra="ignore")

    # No prefix: the conventional name every PostgreSQL tool and platform understands.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SLOTMILL_DATABASE_URL")
    )
    # Streaming replicas for slot reads and the catalog (docs/operations.md, "Read replicas"):
    # one or more URLs separated by whitespace. Holds, host and admin calls stay on the primary.
    read_database_url: str | None = None
    # A read carrying a consistency token waits this long for a replica to replay it before
    # it is served by the primary instead.
    read_consistency_wait_ms: int = 100
    # A replica further behind than this serves no reads until it catches up.
    read_max_lag_seconds: float = 30.0
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
    # The API's database URLs lead to PgBouncer in transaction mode: no startup options (set
    # statement_timeout on the role instead). The API keeps no other session state.
    api_pgbouncer: bool = False

    # Slot read answers each API process keeps (megabytes; 0: none). Never stale: each is
    # checked against the tenant's version before it is served again (api/readcache.py).
    read_cache_mb: int = 64

    # Per client address, per minute (SPEC §9).
    rate_limit_reads: int = 120
    rate_limit_holds: int = 10
    # Where the counts live: "memory" (per process) or a redis:// URL shared by every API
    # process (api/ratelimit.py).
    rate_limit_storage: str = "memory"
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

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        value = value.strip()
        if value in ("", "memory", "memory://"):
            return "memory"
        if not value.startswith(("redis://", "rediss://", "redis+unix://")):
            raise ValueError("'memory', or a redis://, rediss:// or redis+unix:// URL")
        return value
    # Events out (issue 14; docs/operations.md, "Events and webhooks").
    # The worker numbers committed events and looks for due deliveries this often (it is
    # also woken by notifications, except after holds, whose path sends none).
    events_poll_seconds: float = 0.25
    # Events older than this are deleted (deliveries still pending are kept).
    event_retention_days: int = 30
    # One webhook request's timeout; requests in flight per endpoint and per worker process.
    webhook_timeout_seconds: float = 5.0
    webhook_concurrency: int = 4
    webhook_max_in_flight: int = 64
    # Retries: exponential back-off with jitter from base to max, given up after this long.
    webhook_backoff_base_seconds: float = 5.0
    webhook_backoff_max_seconds: float = 7200.0
    webhook_retry_hours: float = 25.0
    # The circuit breaker: an endpoint is disabled after this many failures in a row that
    # span at least this long.
    webhook_circuit_failures: int = 20
    webhook_circuit_seconds: float = 3600.0
    # How long a claimed delivery stays leased to the worker sending it (> the timeout).
    webhook_lease_seconds: float = 30.0
    # Live updates (GET /v1/tenants/{slug}/events): open streams per client address (0:
    # no cap), heartbeat comments, and messages buffered per stream before it is told to
    # resync.
    sse_streams_per_client: int = 10
    sse_heartbeat_seconds: float = 15.0
    sse_queue_size: int = 256
    # Calendar feeds (jobs/feeds.py): how often a worker looks for due feeds, and the
    # bounds of one fetch: a feed slower or bigger than this fails and changes nothing.
    feed_check_seconds: float = 30.0
    feed_timeout_seconds: float = 10.0
    feed_max_bytes: int = 10_000_000
    feed_max_events: int = 50_000
    # Outbound HTTP (webhook deliveries, calendar feeds) reaches public addresses only, and
    # these networks besides: comma-separated CIDRs (e.g. "10.0.0.0/8"), or "*" for any
    # address (slotmill/outbound.py: a host's URL must not reach the platform's own network).
    outbound_allow_networks: str = ""

    @property
    def outbound_guard(self) -> Guard:
        return Guard.from_setting(self.outbound_allow_networks)

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


    @property
    def read_database_urls(self) -> list[str]:
        """The replicas' URLs; a libpq key=value string (it has spaces) counts as one."""
        text = (self.read_database_url or "").strip()
        if not text:
            return []
        if "://" not in text.split(None, 1)[0]:
            return [text]
        return text.split()


@cache
def get_settings() -> Settings:
    return Settings()


def timeout_options(ms: int) -> str:
    """libpq ``options`` that set the session's statement_timeout (empty when 0). Behind
    PgBouncer in transaction mode set it on the database role instead (docs/operations.md)."""
    return f"-c statement_timeout={ms}" if ms > 0 else ""


def api_connect_options(settings: Settings) -> dict[str, str]:
    """Startup parameters of the API's connections. PgBouncer refuses ``options`` (it
    cannot give each client its own server session settings), so behind it there are none."""
    if settings.api_pgbouncer:
        return {}
    options = timeout_options(settings.api_statement_timeout_ms)
    return {"options": options} if options else {}
