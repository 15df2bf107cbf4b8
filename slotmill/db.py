"""Which database to use, and connections to it."""

from __future__ import annotations

import logging

from slotmill.config import Settings, get_settings
from slotmill.embedded import embedded_server

log = logging.getLogger(__name__)


def resolve_database_url(settings: Settings | None = None) -> str:
    """``DATABASE_URL`` if set, else the embedded server (started on first use)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    server = embedded_server(settings.home)
    url = server.ensure_database()
    log.info("using embedded PostgreSQL %s at %s", server.version(), server.pgdata)
    return url
