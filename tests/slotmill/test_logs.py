"""Logs: text on a terminal, JSON elsewhere or when asked; request ids and ctx_ fields in both."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from slotmill.config import Settings, get_settings
from slotmill.logs import JsonFormatter, TextFormatter, log_format, request_id, setup_logging

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.parametrize(
    ("env", "terminal", "want"),
    [
        ({}, True, "text"),
        ({}, False, "json"),
        ({"log_format": "json"}, True, "json"),
        ({"log_format": "text"}, False, "text"),
        ({"log_format": "TEXT"}, False, "text"),
        # The older switch still works while SLOTMILL_LOG_FORMAT is auto...
        ({"log_json": True}, True, "json"),
        ({"log_json": False}, False, "text"),
        # ...and the newer one wins over it.
        ({"log_format": "text", "log_json": True}, False, "text"),
    ],
)
def test_format_follows_the_settings_then_the_terminal(env: dict[str, object], terminal: bool, want: str) -> None:
    assert log_format(Settings(**env), stderr_is_terminal=terminal) == want  # type: ignore[arg-type]


def test_an_unknown_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings(log_format="yaml")  # type: ignore[arg-type]


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("slotmill.api", logging.INFO, __file__, 1, "request %s", ("done",), None)
    record.__dict__.update(extra)
    return record


def test_both_formats_carry_the_request_id_and_ctx_fields() -> None:
    token = request_id.set("trace-1")
    try:
        record = _record(ctx_path="/v1/x", ctx_status=200, ctx_detail="two words")
        as_json = json.loads(JsonFormatter().format(record))
        as_text = TextFormatter("%(name)s: %(message)s").format(record)
    finally:
        request_id.reset(token)
    assert as_json["msg"] == "request done"
    assert (as_json["request_id"], as_json["path"], as_json["status"]) == ("trace-1", "/v1/x", 200)
    assert as_text == 'slotmill.api: request done request_id=trace-1 path=/v1/x status=200 detail="two words"'


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("SLOTMILL_LOG_FORMAT", "SLOTMILL_LOG_JSON"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield monkeypatch
    root.handlers[:] = handlers
    root.setLevel(level)
    get_settings.cache_clear()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_readable_lines_with_the_fields(fresh_settings: pytest.MonkeyPatch) -> None:
    stream = _Terminal()
    fresh_settings.setattr(sys, "stderr", stream)
    setup_logging("INFO")
    logging.getLogger("slotmill.run").info("ready", extra={"ctx_tenant": "demo"})
    text = ANSI.sub("", stream.getvalue())
    assert "ready" in text and "tenant=demo" in text
    assert not text.lstrip().startswith("{")


def test_a_pipe_gets_json_unless_text_is_asked_for(fresh_settings: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    fresh_settings.setattr(sys, "stderr", stream)
    setup_logging("INFO")
    logging.getLogger("slotmill.run").info("ready", extra={"ctx_tenant": "demo"})
    line = json.loads(stream.getvalue())
    assert (line["msg"], line["tenant"]) == ("ready", "demo")

    stream.seek(0)
    stream.truncate()
    fresh_settings.setenv("SLOTMILL_LOG_FORMAT", "text")
    get_settings.cache_clear()
    setup_logging("INFO")
    logging.getLogger("slotmill.run").info("ready", extra={"ctx_tenant": "demo"})
    assert re.fullmatch(r"\S+ \S+ INFO slotmill\.run: ready tenant=demo\n", stream.getvalue())


_PROGRAM = (
    "import logging; from slotmill.logs import setup_logging; setup_logging(); "
    "logging.getLogger('slotmill').info('hello', extra={'ctx_n': 1})"
)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SLOTMILL_LOG_FORMAT", "SLOTMILL_LOG_JSON")}
    env["COLUMNS"] = "120"
    return env


def test_a_real_terminal_and_a_real_pipe(tmp_path: Path) -> None:
    """The default (auto) in a child process: a pseudo-terminal as stderr, then a pipe."""
    primary, secondary = pty.openpty()
    try:
        child = subprocess.run(
            [sys.executable, "-c", _PROGRAM], stderr=secondary, env=_child_env(), cwd=tmp_path, timeout=60, check=True
        )
        assert child.returncode == 0
        os.close(secondary)
        secondary = -1
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child side is closed and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    on_terminal = ANSI.sub("", b"".join(chunks).decode())
    assert "hello" in on_terminal and "n=1" in on_terminal and "{" not in on_terminal

    piped = subprocess.run(
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, env=_child_env(), cwd=tmp_path, timeout=60
    )
    assert json.loads(piped.stderr)["n"] == 1
