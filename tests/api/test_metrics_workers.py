"""`slotmill api --workers 4`: one scrape of /metrics counts every process's requests
(prometheus_client's multiprocess mode, api/metrics.py and api/server.py)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import psutil
import pytest

from slotmill.api.server import MULTIPROC_ENV, multiprocess_metrics
from tests.processes import api_process

pytestmark = pytest.mark.slow

WORKERS = 4
REQUESTS = 200


def healthz_count(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("slotmill_http_request_duration_seconds_count{") and 'route="/healthz"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def worker_dirs(pid: int) -> list[str]:
    """The metrics directory each uvicorn worker (a child process) was started with."""
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        env = child.environ()
        if MULTIPROC_ENV in env:
            out.append(env[MULTIPROC_ENV])
    return out


def test_one_scrape_counts_every_worker(db_url: str, tmp_path: Path) -> None:
    with api_process(db_url, tmp_path / "api.log", workers=WORKERS) as api:
        # Every worker up (the first one answers /healthz before the others have started).
        for _ in range(200):
            dirs = worker_dirs(api.pid)
            if len(dirs) >= WORKERS:
                break
            time.sleep(0.05)
        assert len(dirs) >= WORKERS and len(set(dirs)) == 1, dirs
        metrics_dir = Path(dirs[0])
        before = healthz_count(httpx.get(f"{api.base}/metrics", timeout=10).text)
        # A new connection per request: the kernel hands them to whichever worker accepts.
        for _ in range(REQUESTS):
            assert httpx.get(f"{api.base}/healthz", timeout=10).status_code == 200
        # Several scrapes, each answered by whichever worker accepts it: every one counts all.
        for _ in range(5):
            scrape = httpx.get(f"{api.base}/metrics", timeout=10)
            assert scrape.status_code == 200
            assert healthz_count(scrape.text) == before + REQUESTS
        # Requests were served by more than one process (each writes its own file).
        served_by = {m[1] for f in metrics_dir.iterdir() if (m := re.match(r"histogram_(\d+)\.db$", f.name))}
        assert len(served_by) >= 2, served_by
        # The queue gauges read from the database at scrape time still answer.
        assert 'slotmill_recompute_requests{state="due"}' in scrape.text
    assert not metrics_dir.exists()  # the fresh directory goes with the server


def test_an_operators_directory_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given = tmp_path / "prom"
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    with multiprocess_metrics() as path:
        assert path == str(given) and given.is_dir()
    assert given.is_dir()
    monkeypatch.delenv(MULTIPROC_ENV)
    with multiprocess_metrics() as path:
        assert os.environ[MULTIPROC_ENV] == path and Path(path).is_dir()
    assert not Path(path).exists() and MULTIPROC_ENV not in os.environ
