"""Timing shared by the benchmarks: the best of a few runs (the least disturbed by other load)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

REPEATS = 3


def best_seconds(fn: Callable[..., Any], *args: Any, repeats: int = REPEATS) -> float:
    """The shortest wall time of ``repeats`` calls of ``fn(*args)``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best
