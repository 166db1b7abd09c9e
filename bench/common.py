"""Shared helpers for benchmarks: timing, percentiles and the result table."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, with the target it is held to (if any)."""

    section: str
    metric: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest-rank) of ``samples``."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def time_each(func: Callable[[], object], count: int) -> list[float]:
    """Call ``func`` ``count`` times; return each call's duration in seconds."""
    samples = []
    clock = time.perf_counter
    for _ in range(count):
        start = clock()
        func()
        samples.append(clock() - start)
    return samples
