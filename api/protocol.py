"""Answers to requests that are not HTTP at all, as problem+json like every other error.

uvicorn refuses a request its parser cannot read (an unknown method, a request line past
the parser's limits, Content-Length together with Transfer-Encoding) before any ASGI app
runs, with a text/plain 400 of its own. Clients of this API branch on problem+json's
``code``, so the same refusal is written in that shape here.
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from slotmill.api.errors import PROBLEM_JSON

_BODY = orjson.dumps(
    {
        "type": "https://slotmill.dev/problems/bad_request",
        "title": "Bad request",
        "status": 400,
        "code": "bad_request",
        "detail": "not a valid HTTP/1.1 request (method, request line, or framing headers)",
    }
)


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with its parser's 400 written as problem+json."""

    def send_400_response(self, msg: str) -> None:
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
                b"content-length: " + str(len(_BODY)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                _BODY,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
