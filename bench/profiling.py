"""Where the time goes: a pyinstrument profile reduced to one sentence for the report."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyinstrument import Profiler


def _own_frames(frame: Any, acc: dict[str, float]) -> None:
    # pyinstrument's frames nest calls; attribute each frame's self time to its function.
    name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
    acc[name] = acc.get(name, 0.0) + frame.total_self_time
    for child in frame.children:
        if not child.is_synthetic:  # self-time markers: already in total_self_time
            _own_frames(child, acc)


def profile(fn: Callable[[], object], *, top: int = 4) -> dict[str, Any]:
    """Run ``fn`` once under the sampling profiler; the functions with the most self time.

    Time the main thread spends waiting for the server shows up in psycopg's wait/execute
    functions, so "waiting on PostgreSQL" and "Python work" separate without guessing.
    """
    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        fn()
    finally:
        session = profiler.stop()
    root = session.root_frame()
    total = session.duration or 1e-9
    acc: dict[str, float] = {}
    if root is not None:
        _own_frames(root, acc)
    ranked = sorted(acc.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return {
        "seconds": total,
        "top": [{"function": name, "share": t / total} for name, t in ranked],
        "text": profiler.output_text(unicode=False, color=False, show_all=False),
    }


def sentence(prof: dict[str, Any], subject: str) -> str:
    parts = [f"{p['share'] * 100:.0f} % in {p['function']}" for p in prof["top"] if p["share"] >= 0.03]
    return f"Profile of {subject} (pyinstrument, self time): " + "; ".join(parts) + "."


PROJECT_PACKAGES = ("api", "jobs", "materializer", "sql", "slotmill")


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, when not on PATH
    return str(beside) if beside.exists() else None


def spy(pid: int, seconds: float, load: Callable[[], object], *, top: int = 5) -> dict[str, Any]:
    """Sample process ``pid`` (and its children) with py-spy while ``load()`` runs.

    Returns the leaf functions with the largest share of the samples in which a thread was
    busy (py-spy leaves idle threads out), or ``{"error": ...}`` when py-spy cannot run.
    """
    exe = py_spy()
    if exe is None:
        return {"error": "py-spy is not installed"}
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as f:
        out = Path(f.name)
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)  # attached before the load starts
        load()
        _, err = proc.communicate(timeout=seconds + 60)
        text = out.read_text() if out.exists() else ""
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"error": "py-spy did not finish"}
    finally:
        out.unlink(missing_ok=True)
    leaves: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + n
        # The innermost frame of the project's own code: which of our lines the time is under.
        mine = [f for f in frames if any(f"({pkg}/" in f for pkg in PROJECT_PACKAGES)]
        key = mine[-1] if mine else "outside the project's code (server, event loop)"
        ours[key] = ours.get(key, 0) + n
    if total == 0:
        return {"error": f"py-spy recorded nothing: {err.decode(errors='replace')[-300:]}"}

    def ranked(acc: dict[str, int]) -> list[dict[str, Any]]:
        best = sorted(acc.items(), key=lambda kv: kv[1], reverse=True)[:top]
        return [{"function": k, "share": v / total} for k, v in best]

    return {"samples": total, "top": ranked(leaves), "project": ranked(ours)}


def spy_sentence(prof: dict[str, Any], subject: str) -> str:
    if "error" in prof:
        return f"No profile of {subject}: {prof['error']}."
    ours = [f"{p['share'] * 100:.0f} % under {p['function']}" for p in prof.get("project", []) if p["share"] >= 0.03]
    leaves = [f"{p['share'] * 100:.0f} % in {p['function']}" for p in prof["top"][:2]]
    return (
        f"py-spy of {subject}, busy samples by innermost project frame: "
        + "; ".join(ours)
        + " (leaf functions: "
        + "; ".join(leaves)
        + ")."
    )
