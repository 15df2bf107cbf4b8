"""`python -m bench --smoke`: every SPEC §11 row is produced (measured, or "not measured: why").

No timing is asserted here: the numbers belong to `make bench` and BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import expected_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.db
def test_smoke_run_produces_every_row(pg_admin_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--server-url",
            pg_admin_url,
            "--db-name",
            f"slotmill_bench_smoke_{os.getpid()}",
            "--out-dir",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    doc = json.loads((out / "results.json").read_text())
    rows = {r["key"]: r for r in doc["rows"]}
    smoke_sizes = tuple(doc["run"]["staff_sizes"])
    assert list(rows) == expected_keys(smoke_sizes)
    for key, row in rows.items():
        # A value, or an honest reason: never neither.
        if row["value"] is None:
            assert row["note"].startswith("not measured: "), key
        else:
            assert row["value"], key
            assert row["target"], key
    assert doc["machine"]["cpu_count"] >= 1
    assert doc["machine"]["postgresql"]
    assert doc["run"]["load_generator"]

    markdown = (out / "BENCHMARKS.md").read_text()
    for row in rows.values():
        assert row["what"].replace("|", "\\|") in markdown
    assert "PostgreSQL" in markdown and "Load generator" in markdown
