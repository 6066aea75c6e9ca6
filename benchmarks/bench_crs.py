"""Throughput of the GCJ-02/BD-09 conversions in geo.crs.

Prints points per second for 1M-point conversions (numpy-vectorised, exact iterative
inverse), next to prcoords' per-point Python loop on a 20k subset as a baseline.

    python benchmarks/bench_crs.py      (after `pip install -e '.[test]'`)
"""

from __future__ import annotations

import numpy as np

from benchmarks.timing import best_seconds
from geo import crs

N = 1_000_000
N_BASELINE = 20_000



def prcoords_loop(fn):
    import prcoords

    def run(lon, lat):
        for x, y in zip(lon.tolist(), lat.tolist(), strict=True):
            fn(prcoords.Coords(y, x))
    return run


def main() -> None:
    rng = np.random.default_rng(0)
    lon = rng.uniform(115.4, 117.6, N)  # Beijing's bounding box
    lat = rng.uniform(39.4, 41.1, N)
    gcj = crs.wgs84_to_gcj02(lon, lat)
    bd = crs.wgs84_to_bd09(lon, lat)
    try:
        import prcoords
        baselines = {"gcj02_to_wgs84": prcoords.gcj_wgs_bored, "bd09_to_wgs84": prcoords.bd_wgs_bored,
                     "wgs84_to_gcj02": prcoords.wgs_gcj}
    except ImportError:
        baselines = {}
        print("prcoords not installed: no baseline (pip install -e '.[test]')")

    cases = [("gcj02_to_wgs84", crs.gcj02_to_wgs84, gcj), ("bd09_to_wgs84", crs.bd09_to_wgs84, bd),
             ("wgs84_to_gcj02", crs.wgs84_to_gcj02, (lon, lat))]
    print(f"{'conversion':<16} {'geo.crs (1M pts)':>18} {'prcoords loop (20k)':>20} {'ratio':>7}")
    for name, fn, (x, y) in cases:
        ours = N / best_seconds(fn, x, y)
        line = f"{name:<16} {ours:>14,.0f} p/s"
        if name in baselines:
            theirs = N_BASELINE / best_seconds(prcoords_loop(baselines[name]), x[:N_BASELINE], y[:N_BASELINE])
            line += f" {theirs:>16,.0f} p/s {ours / theirs:>6.0f}x"
        print(line)
    back = crs.gcj02_to_wgs84(*gcj)
    err_m = crs.geodesic_distance_m(back[0][:N_BASELINE], back[1][:N_BASELINE], lon[:N_BASELINE], lat[:N_BASELINE])
    print(f"round trip WGS84->GCJ-02->WGS84, max error on 20k points: {err_m.max() * 1000:.2e} mm")


if __name__ == "__main__":
    main()
