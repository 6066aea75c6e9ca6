"""Parcel batch against geopandas ``overlay`` plus geodesic areas, measured in one run.

Random rectangular parcels (~100 m to 1 km) over the four districts' extent against the
bundled zones; both paths produce the same quantities — every (parcel, zone) overlap in
geodesic m² and each parcel's geodesic area (for the shares):

* baseline: ``geopandas.overlay(parcels, zones, how="intersection")``, then
  ``geo.crs.geodesic_area_m2`` of the pieces and of the parcels;
* ``geo.parcels.parcel_overlaps`` (in-process), and the whole ``POST /v1/check/sites``
  answer (GeoPackage in, CSV out) on a uvicorn server.

Best of ``REPEATS`` for ours, one run of the slow baseline; ratio = baseline / ours.

    python -m benchmarks.run parcels
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import geopandas as gpd  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pyogrio  # noqa: E402
import shapely  # noqa: E402

from benchmarks.bench_lookup import four_district_bounds, start_server  # noqa: E402
from geo import schema  # noqa: E402
from geo.crs import geodesic_area_m2  # noqa: E402
from geo.lookup import ZoneIndex  # noqa: E402
from geo.parcels import parcel_overlaps  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from geo.selection import select_zones  # noqa: E402

N = 20_000
REPEATS = 3
AS_OF = "2024-01-01"


def parcels(n: int) -> gpd.GeoDataFrame:
    minx, miny, maxx, maxy = four_district_bounds()
    rng = np.random.default_rng(3)
    x, y, w = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n), rng.uniform(0.001, 0.01, n)
    return gpd.GeoDataFrame({"parcel": np.arange(n)}, geometry=shapely.box(x, y, x + w, y + w * 0.7),
                            crs="EPSG:4326")


def main() -> None:
    zones = select_zones(schema.zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8")), as_of=AS_OF)
    zones = zones[zones.geometry.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
    frame = parcels(N)
    geoms = frame.geometry.values

    start = time.perf_counter()
    pieces = gpd.overlay(frame, zones[["zone_id", "geometry"]], how="intersection", keep_geom_type=True)
    piece_area = geodesic_area_m2(pieces.geometry.values)
    geodesic_area_m2(geoms)
    base_s = time.perf_counter() - start

    index = ZoneIndex(zones)
    ours_s, found = float("inf"), None
    for _ in range(REPEATS):
        start = time.perf_counter()
        found = parcel_overlaps(index, np.asarray(geoms, dtype=object))
        ours_s = min(ours_s, time.perf_counter() - start)
    positive = found.overlap_m2 > 0
    expected = dict(zip(zip(pieces["parcel"], pieces["zone_id"], strict=True), piece_area, strict=True))
    zone_ids = index.zones["zone_id"].to_numpy()
    errors = [abs(a - expected[(int(p), zone_ids[z])]) / expected[(int(p), zone_ids[z])]
              for p, z, a in zip(found.parcel[positive], found.zone[positive], found.overlap_m2[positive],
                                 strict=True) if expected.get((int(p), zone_ids[z]), 0) > 0]

    with tempfile.TemporaryDirectory() as tmp:
        gpkg = Path(tmp) / "parcels.gpkg"
        pyogrio.write_dataframe(frame, gpkg, driver="GPKG")
        body = gpkg.read_bytes()
        server, base = start_server(Path(tmp))
        try:
            with httpx.Client(timeout=600) as client:
                http_s = float("inf")
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    answer = client.post(base + "/v1/check/sites", params={"as_of": AS_OF}, content=body,
                                         headers={"content-type": "application/geopackage+sqlite3"})
                    answer.raise_for_status()
                    http_s = min(http_s, time.perf_counter() - start)
                assert answer.text.rstrip().split("\n")[-1].startswith("#complete")
        finally:
            server.terminate()
            server.wait(timeout=30)

    print("parcel batch (bench_parcels.py); machine shared with other jobs")
    print(f"  {N:,} parcels, {len(zones)} zones, {int(positive.sum()):,} overlaps > 0 m² "
          f"(overlay: {len(pieces):,} pieces)")
    print(f"  geopandas overlay + geodesic areas (baseline)   {base_s:8.2f} s")
    print(f"  geo.parcels.parcel_overlaps (in-process)        {ours_s:8.2f} s — {base_s / ours_s:.1f}× the baseline; "
          f"max relative area difference {max(errors):.1e} over {len(errors):,} pairs")
    print(f"  POST /v1/check/sites, GeoPackage in, CSV out    {http_s:8.2f} s — {base_s / http_s:.1f}× the baseline")


if __name__ == "__main__":
    main()
