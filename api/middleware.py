"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a queue per request).

``RequestContextMiddleware`` gives every request an id (a sanitized incoming
``X-Request-ID`` or a new one), sets ``slotmill.logs.request_id`` while the request runs,
echoes the id in the response, logs one JSON line per request, and turns any exception
that escaped the handlers into a 500 problem (so even that answer carries the id).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slotmill.api.errors import ProblemError, problem_response
from slotmill.logs import request_id

log = logging.getLogger("slotmill.api")

# What an incoming id may look like: log-safe characters only, bounded length. Anything
# else is replaced by a fresh id rather than echoed (header and log injection).
_SAFE_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            try:
                text = value.decode("ascii").strip()
            except UnicodeDecodeError:
                return None
            return text if _SAFE_ID.fullmatch(text) else None
    return None


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> ProblemError:
    return ProblemError(413, "payload_too_large", "Request body too large", f"at most {limit} bytes")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int | None = None) -> None:
        self.app = app
        # Bodies over the limit are refused here, as a problem+json with the request id: a
        # declared Content-Length before any handler runs, a streamed body once it grows
        # past the limit while read (Starlette's own limit would answer in plain text).
        self.max_body_bytes = max_body_bytes

    def _limited(self, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        if limit is None:
            return receive
        total = 0

        async def receive_limited() -> Message:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > limit:
                    raise _too_large(limit)
            return message

        return receive_limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or uuid.uuid4().hex
        token = request_id.set(rid)
        started = False
        status = 0
        t0 = time.perf_counter()
        header = (b"x-request-id", rid.encode("ascii"))

        async def send_wrapper(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            declared = _declared_length(scope) if self.max_body_bytes is not None else None
            if declared is not None and self.max_body_bytes is not None and declared > self.max_body_bytes:
                err = _too_large(self.max_body_bytes)
                await problem_response(err, scope.get("path"))(scope, receive, send_wrapper)
                return
            await self.app(scope, self._limited(receive), send_wrapper)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            err = ProblemError(500, "internal_error", "Internal server error", f"request id {rid}")
            await problem_response(err, scope.get("path"))(scope, receive, send_wrapper)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s",
                    scope.get("method"),
                    scope.get("path"),
                    status,
                    extra={
                        "ctx_method": scope.get("method"),
                        "ctx_path": scope.get("path"),
                        "ctx_status": status,
                        "ctx_ms": round((time.perf_counter() - t0) * 1000, 3),
                    },
                )
            request_id.reset(token)
