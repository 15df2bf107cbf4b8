"""The HTTP load generator: ``wrk`` (a separate C process) when it can be had, else a
multi-process Python client. Either way it runs in processes of its own, so the server
under test is not sharing an interpreter with it; which one ran is recorded.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import percentile

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "requests.lua"

# (method, path, body or "")
Request = tuple[str, str, str]


@dataclass
class LoadResult:
    tool: str
    connections: int
    seconds: float
    requests: int
    ok: int  # 2xx/3xx answers
    non2xx: int
    errors: int  # socket errors and timeouts
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["rps"] = self.rps
        d["ok_rps"] = self.ok_rps
        return d


def ensure_wrk() -> str | None:
    """wrk's path; installs Debian's package first when running as root and it is missing."""
    found = shutil.which("wrk")
    if found or os.environ.get("BENCH_NO_WRK"):
        return None if os.environ.get("BENCH_NO_WRK") else found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "install", "-y", "-q", "wrk"],
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "wrk"],
        ):
            try:
                subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False)
            except (OSError, subprocess.TimeoutExpired):
                break
            if shutil.which("wrk"):
                break
    return shutil.which("wrk")


class LoadGenerator:
    def __init__(self) -> None:
        self.wrk = ensure_wrk()

    @property
    def tool(self) -> str:
        if self.wrk:
            return "wrk (Debian package) with bench/wrk/requests.lua"
        return "python (multi-process asyncio HTTP/1.1 keep-alive client, bench/loadgen.py)"

    def run(self, base_url: str, requests: list[Request], *, connections: int, seconds: float) -> LoadResult:
        if self.wrk:
            return _run_wrk(self.wrk, base_url, requests, connections, seconds)
        return _run_python(base_url, requests, connections, seconds)


def _run_wrk(wrk: str, base_url: str, requests: list[Request], connections: int, seconds: float) -> LoadResult:
    threads = 1 if connections < 8 else 2
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
        for method, path, body in requests:
            f.write(f"{method}\t{path}\t{body}\n")
        req_file = f.name
    try:
        env = {**os.environ, "BENCH_REQUESTS": req_file, "BENCH_THREADS": str(threads)}
        cmd = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(WRK_SCRIPT),
            base_url,
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(req_file)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (exit {out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
    d = json.loads(line[len("BENCH_JSON ") :])
    errors = d["connect_errors"] + d["read_errors"] + d["write_errors"] + d["timeouts"]
    secs = d["duration_us"] / 1e6
    return LoadResult(
        tool="wrk",
        connections=connections,
        seconds=secs,
        requests=d["requests"],
        ok=d["requests"] - d["non2xx"],
        non2xx=d["non2xx"],
        errors=errors,
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        max_ms=d["max_us"] / 1000,
        extra={"threads": threads, "bytes": d["bytes"]},
    )


# ---------------------------------------------------------------------------------------
# The Python fallback: each process drives its share of the connections with asyncio.


async def _one_connection(
    host: str,
    port: int,
    reqs: list[bytes],
    start: int,
    step: int,
    deadline: float,
    lat: list[float],
    status: dict[int, int],
) -> int:
    errors = 0
    reader, writer = await asyncio.open_connection(host, port)
    i = start
    try:
        while time.perf_counter() < deadline:
            raw = reqs[i % len(reqs)]
            i += step
            t0 = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            code = int(head[9:12])
            length = 0
            chunked = False
            for h in head.split(b"\r\n")[1:]:
                k, _, v = h.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    length = int(v)
                elif k == b"transfer-encoding" and b"chunked" in v.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            status[code] = status.get(code, 0) + 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        errors += 1
    finally:
        writer.close()
    return errors


def _worker(args: tuple[str, int, list[bytes], list[int], int, float, Any]) -> None:
    host, port, reqs, starts, step, seconds, queue = args

    async def main() -> tuple[list[float], dict[int, int], int]:
        lat: list[float] = []
        status: dict[int, int] = {}
        deadline = time.perf_counter() + seconds
        errs = await asyncio.gather(
            *(_one_connection(host, port, reqs, s, step, deadline, lat, status) for s in starts)
        )
        return lat, status, sum(errs)

    queue.put(asyncio.run(main()))


def _run_python(base_url: str, requests: list[Request], connections: int, seconds: float) -> LoadResult:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw = []
    for method, path, body in requests:
        data = body.encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        if data:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        raw.append(head.encode() + b"\r\n" + data)
    procs_n = max(1, min(connections, (os.cpu_count() or 2)))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    all_starts = list(range(connections))
    procs = []
    for p in range(procs_n):
        starts = all_starts[p::procs_n]
        proc = ctx.Process(target=_worker, args=((host, port, raw, starts, connections, seconds, queue),))
        proc.start()
        procs.append(proc)
    lat: list[float] = []
    status: dict[int, int] = {}
    errors = 0
    for _ in procs:
        part_lat, part_status, part_err = queue.get(timeout=seconds + 120)
        lat.extend(part_lat)
        for k, v in part_status.items():
            status[k] = status.get(k, 0) + v
        errors += part_err
    for proc in procs:
        proc.join(timeout=10)
    # Every connection runs until its own deadline, ``seconds`` after its process began.
    elapsed = seconds
    ok = sum(v for k, v in status.items() if 200 <= k < 400)
    lat = lat or [0.0]
    return LoadResult(
        tool="python",
        connections=connections,
        seconds=elapsed,
        requests=len(lat),
        ok=ok,
        non2xx=sum(status.values()) - ok,
        errors=errors,
        p50_ms=percentile(lat, 50) * 1000,
        p90_ms=percentile(lat, 90) * 1000,
        p99_ms=percentile(lat, 99) * 1000,
        max_ms=max(lat) * 1000,
        extra={"processes": procs_n, "status": status},
    )
