"""Distributed batch throughput: ``geo.distributed.check_points`` on 2 M points (8 Parquet
partitions), in-process (``engine="local"``, the baseline) and on a dask.distributed
LocalCluster of 1 and 2 worker processes. Prints points/s end to end (read, look up, write
GeoParquet), the cluster's start-up excluded and included, and the ratio to in-process.

    python benchmarks/bench_distributed.py      (or python -m benchmarks.run distributed)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from benchmarks.timing import on_local_cluster  # noqa: E402
from geo.distributed import check_points  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from geo.store import open_store  # noqa: E402

N_POINTS = 2_000_000
PARTITIONS = 8


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="zoning-dask-") as tmp:
        tmp = Path(tmp)
        store = open_store(tmp / "zones.gpkg", BUNDLED_ZONES)
        minx, miny, maxx, maxy = store.load().total_bounds
        rng = np.random.default_rng(42)
        lon, lat = rng.uniform(minx, maxx, N_POINTS), rng.uniform(miny, maxy, N_POINTS)
        src = tmp / "points"
        src.mkdir()
        for k, part in enumerate(np.array_split(np.arange(N_POINTS), PARTITIONS)):
            pq.write_table(pa.table({"id": part, "lon": lon[part], "lat": lat[part]}), src / f"part.{k}.parquet")
        print(f"{N_POINTS:,} points in {PARTITIONS} Parquet partitions -> GeoParquet; bundled zones; "
              f"machine shared (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        start = time.perf_counter()
        check_points(src, tmp / "out-local", store.location, engine="local")
        local = time.perf_counter() - start
        print(f"  in-process (baseline)        {N_POINTS / local:10,.0f} points/s  ({local:.1f} s)")
        for workers in (1, 2):
            started, run, total = on_local_cluster(workers, lambda address, w=workers: check_points(
                src, tmp / f"out-{w}", store.location, engine="dask", scheduler=address))
            print(f"  dask, {workers} worker(s)           {N_POINTS / run:10,.0f} points/s  ({run:.1f} s; "
                  f"{run / local:.2f}x in-process time; with cluster start-up {total:.1f} s, {started:.1f} s of it "
                  "to start)")

if __name__ == "__main__":
    main()
