"""A local HTTP server that serves calendar feeds (ICS bodies by path) for the feed tests:
validators (ETag), delays and slow bodies on request, and the requests it saw."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Served:
    body: bytes
    status: int = 200
    delay_s: float = 0.0
    validators: bool = True
    chunk_delay_s: float = 0.0


@dataclass
class FeedServer:
    base: str
    routes: dict[str, Served] = field(default_factory=dict)
    hits: list[tuple[str, str | None]] = field(default_factory=list)  # (path, If-None-Match)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    state = FeedServer("")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            state.hits.append((self.path, self.headers.get("If-None-Match")))
            served = state.routes.get(self.path)
            if served is None:
                self.send_response(404)
                self.end_headers()
                return
            time.sleep(served.delay_s)
            tag = '"' + hashlib.sha1(served.body).hexdigest() + '"'
            if served.validators and self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.end_headers()
                return
            self.send_response(served.status)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            if served.validators:
                self.send_header("ETag", tag)
                self.send_header("Last-Modified", "Sat, 01 Jan 2026 12:00:00 GMT")
            if served.chunk_delay_s:
                self.end_headers()
                for i in range(0, len(served.body), 8192):
                    self.wfile.write(served.body[i : i + 8192])
                    self.wfile.flush()
                    time.sleep(served.chunk_delay_s)
                return
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
