"""Run the API under uvicorn (``slotmill api``)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from slotmill.api.protocol import ProblemHttpToolsProtocol
from slotmill.config import get_settings
from slotmill.logs import setup_logging

log = logging.getLogger("slotmill.api")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def multiprocess_metrics() -> Iterator[str]:
    """prometheus_client's multiprocess mode for the uvicorn workers about to start: they
    inherit ``PROMETHEUS_MULTIPROC_DIR`` (read when each imports prometheus_client), so any
    of them answers /metrics for all (api/metrics.py). A fresh directory of our own unless
    the operator named one: stale files of an earlier run would be counted again."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        if os.listdir(given):
            log.warning("%s=%s is not empty: an earlier run's counts are included", MULTIPROC_ENV, given)
        yield given
        return
    path = tempfile.mkdtemp(prefix="slotmill-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


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
        with multiprocess_metrics():
            uvicorn.run("slotmill.api.app:create_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
    else:
        from slotmill.api.app import create_app

        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
