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


def on_local_cluster(workers: int, job: Callable[[str], Any]) -> tuple[float, float, float]:
    """``job(scheduler_address)`` on a fresh dask.distributed ``LocalCluster`` of ``workers``
    one-thread processes: (seconds to start the cluster, seconds of the job, seconds in all
    with the cluster's start and close)."""
    from dask.distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    with Client(cluster) as client:
        started = time.perf_counter() - start
        client.run(lambda: None)
        t0 = time.perf_counter()
        job(cluster.scheduler_address)
        run = time.perf_counter() - t0
    cluster.close()
    return started, run, time.perf_counter() - start
