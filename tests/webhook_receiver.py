"""A real HTTP receiver of webhooks on 127.0.0.1 for the tests: it records every request
(headers, body, when) and answers as told (a status, a delay, a run of failures first).
No tests here."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived
    answered: int


@dataclass
class Receiver:
    url: str
    fail_first: int = 0  # answer 500 to this many requests, then 200
    delay_s: float = 0.0  # sleep before answering (a slow endpoint)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.received)
            if predicate(got):
                return True
            time.sleep(0.05)
        return False

    def ok_ids(self) -> set[str]:
        with self.lock:
            return {r.headers["webhook-id"] for r in self.received if r.answered == 200}


@contextmanager
def receiver(*, fail_first: int = 0, delay_s: float = 0.0) -> Iterator[Receiver]:
    state = Receiver(url="", fail_first=fail_first, delay_s=delay_s)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrived = time.monotonic()
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with state.lock:
                failing = state.fail_first > 0
                if failing:
                    state.fail_first -= 1
            if state.delay_s:
                time.sleep(state.delay_s)
            status = 500 if failing else 200
            with state.lock:
                state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, arrived, status))
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting (a timeout): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead"
