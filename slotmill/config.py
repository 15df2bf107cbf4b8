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

    # Per client address, per minute (SPEC §9).
    rate_limit_reads: int = 120
    rate_limit_holds: int = 10
    # Trust X-Forwarded-For from a proxy in front of the API.
    trust_forwarded_for: bool = False

    # Demo routes (the widget's confirm-on-behalf); only `slotmill run` / `demo` set it.
    demo_mode: bool = False

    worker_poll_seconds: float = 5.0
    worker_batch_size: int = 500

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


@cache
def get_settings() -> Settings:
    return Settings()
