"""Run the API under uvicorn (``slotmill api``)."""

from __future__ import annotations

import uvicorn

from slotmill.api.protocol import ProblemHttpToolsProtocol
from slotmill.config import get_settings
from slotmill.logs import setup_logging


def serve(host: str, port: int, workers: int = 1) -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    # uvloop and httptools (uvicorn[standard] installs both); httptools' protocol with its
    # own 400s as problem+json (api/protocol.py).
    common: dict[str, object] = {
        "host": host,
        "port": port,
        "loop": "auto",
        "http": ProblemHttpToolsProtocol,
        "log_config": None,  # keep our JSON logging
        "access_log": False,  # RequestContextMiddleware logs each request with its id
        # X-Forwarded-For is read by the app itself, only as far as the configured
        # proxies vouch for it (api/ratelimit.py, TrustedProxies).
        "proxy_headers": False,
        "lifespan": "on",
    }
    if workers > 1:
        # Workers are separate processes: each imports the app through the factory.
        uvicorn.run("slotmill.api.app:create_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
    else:
        from slotmill.api.app import create_app

        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
