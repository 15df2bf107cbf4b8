"""What every measurement shares: the run's sizes, a result row, and summary statistics."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one run (``--smoke`` shrinks everything)."""

    smoke: bool
    staff_sizes: tuple[int, ...]
    horizon_days: int
    runs: int
    load_seconds: float  # one load-generator run
    connections: int  # concurrency of the latency comparison (measurement 3)
    steps: tuple[int, ...]  # concurrency levels of the throughput search (measurement 7)
    events: int  # events per kind for commit-to-visible (measurement 2)
    crowd: int  # concurrent holds on one slot (measurement 6)
    engine_repeats: int

    @classmethod
    def full(cls, staff_sizes: tuple[int, ...], runs: int) -> Plan:
        return cls(
            smoke=False,
            staff_sizes=staff_sizes,
            horizon_days=60,
            runs=runs,
            load_seconds=5.0,
            connections=16,
            steps=(1, 2, 4, 8, 16, 32, 64),
            events=50,
            crowd=500,
            engine_repeats=51,
        )

    @classmethod
    def tiny(cls, runs: int) -> Plan:
        return cls(
            smoke=True,
            staff_sizes=(24,),
            horizon_days=10,
            runs=runs,
            load_seconds=1.0,
            connections=4,
            steps=(1, 4),
            events=3,
            crowd=20,
            engine_repeats=3,
        )


@dataclass
class Row:
    """One line of the report: a measured value beside its SPEC §11 target.

    ``value`` None means "not measured"; ``note`` then says why. ``met`` is None where the
    target is not a number (or nothing was measured).
    """

    key: str
    what: str
    target: str
    value: str | None = None
    spread: str = ""
    ratio: str = ""
    met: bool | None = None
    note: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def not_measured(cls, key: str, what: str, target: str, why: str) -> Row:
        return cls(key=key, what=what, target=target, note=f"not measured: {why}")

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "what": self.what,
            "target": self.target,
            "value": self.value,
            "spread": self.spread,
            "ratio": self.ratio,
            "met": self.met,
            "note": self.note,
            "raw": self.raw,
        }


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of nothing")
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median and spread of repeated measurements."""
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "p10": percentile(values, 10),
        "p90": percentile(values, 90),
    }


def ms(seconds: float) -> str:
    v = seconds * 1000
    return f"{v:.3f} ms" if v < 1 else f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms"


def spread_s(s: dict[str, float], fmt: str = "ms") -> str:
    """'min .. max (n runs)' in milliseconds or seconds."""
    if fmt == "s":
        return f"{s['min']:.2f} .. {s['max']:.2f} s ({int(s['n'])} runs)"
    return f"{ms(s['min'])} .. {ms(s['max'])} ({int(s['n'])} runs)"
