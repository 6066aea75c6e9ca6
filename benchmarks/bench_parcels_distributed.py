"""Distributed parcel batch throughput: ``geo.parcels_distributed.check_parcels`` on 200 000
parcels (8 GeoParquet partitions) against the bundled zones, all in one run:

* in-process (the baseline): ``check-file --sites``' code — ``geo.parcels.read_parcels`` of the
  same parcels in one GeoParquet file, ``iter_results``, ``write_results`` (GeoParquet);
* the dask job's code in this process (``engine="local"``, the partitions in turn);
* dask.distributed LocalCluster of 1 and of 2 worker processes (start-up shown apart);
* the engines on the parcels in memory: ours (``geo.parcels.parcel_overlaps``: its pair step
  alone, and the whole with geodesic areas), geopandas ``sjoin`` (pairs; and pairs plus
  ``intersection`` and geodesic areas, the quantities the answer carries), and Apache SedonaDB
  (``sedonadb``, the Apache Sedona project's single-node engine, if installed: ``pip install
  '.[bench]'``) for the pairs, and the pairs with ``ST_Intersection`` — the two that intersect
  every pair on a 20 000-parcel sample, being an order of magnitude slower.

Every figure is parcels/s (the dask rows end to end: read, answer, write) and the time the
200 000 would take at that rate as a multiple of the in-process time; the in-process baseline
is run again at the end to show how much the machine's load drifted. The dask outputs are
checked equal to the in-process answer.

    python -m benchmarks.run parcels_distributed
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402

from benchmarks.bench_parcels import parcels as random_parcels  # noqa: E402
from benchmarks.timing import best_seconds, on_local_cluster  # noqa: E402
from geo import parcels as gparcels  # noqa: E402
from geo.catalog import ZoneCatalog  # noqa: E402
from geo.crs import geodesic_area_m2  # noqa: E402
from geo.parcels_distributed import check_parcels  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from geo.store import open_store  # noqa: E402

N_PARCELS = 200_000
PARTITIONS = 8
SAMPLE = 20_000  # for the two peers that intersect every pair: an order of magnitude slower
AS_OF = "2024-06-01"


def in_process(store, src: Path, out: Path) -> None:
    parcels = gparcels.read_parcels(src, workdir=out.parent, max_parcels=10**9)
    snap = ZoneCatalog(store).snapshot()
    index = snap.lookup_index()
    frames = gparcels.iter_results(index, parcels, as_of=AS_OF, layers=None,
                                   verdict_columns={"rules": gparcels.rule_codes_column(index.zones)})
    gparcels.write_results(frames, "parquet", out)


def sjoin_peer(src: Path, zones: gpd.GeoDataFrame, areas: bool) -> int:
    """geopandas: read, ``sjoin`` (intersects); with ``areas`` also each pair's intersection and
    the geodesic areas of the pieces and parcels. Returns the pairs found."""
    frame = gpd.read_parquet(src)
    pairs = gpd.sjoin(frame, zones, predicate="intersects", how="inner")
    if areas:
        zone_geoms = zones.geometry.values[pairs["index_right"].to_numpy()]
        geodesic_area_m2(shapely.intersection(pairs.geometry.values, zone_geoms))
        geodesic_area_m2(frame.geometry.values)
    return len(pairs)


def sedonadb_peer(frame: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, areas: bool) -> int:
    """SedonaDB: the spatial join in SQL; with ``areas`` each pair's ``ST_Intersection``, its
    geodesic area computed after (SedonaDB's ST_Area is planar) and the parcels'."""
    import sedonadb

    sd = sedonadb.connect()
    sd.create_data_frame(gpd.GeoDataFrame({"zi": np.arange(len(zones))}, geometry=zones.geometry.values,
                                          crs=zones.crs)).to_view("zones")
    sd.create_data_frame(frame[["parcel", "geometry"]]).to_view("parcels")
    piece = ", ST_AsBinary(ST_Intersection(p.geometry, z.geometry)) AS piece" if areas else ""
    table = sd.sql(f"SELECT p.parcel, z.zi{piece} FROM parcels p JOIN zones z "
                   "ON ST_Intersects(p.geometry, z.geometry)").to_arrow_table()
    if areas:
        geodesic_area_m2(shapely.from_wkb(table.column("piece").to_numpy(zero_copy_only=False)))
        geodesic_area_m2(frame.geometry.values)
    return table.num_rows


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="zoning-parcels-dask-") as tmp:
        tmp = Path(tmp)
        store = open_store(tmp / "zones.gpkg", BUNDLED_ZONES)
        frame = random_parcels(N_PARCELS)
        single, parts = tmp / "parcels.parquet", tmp / "parcels"
        frame.to_parquet(single)
        parts.mkdir()
        for k, rows in enumerate(np.array_split(np.arange(N_PARCELS), PARTITIONS)):
            frame.iloc[rows].to_parquet(parts / f"part.{k}.parquet")
        print(f"{N_PARCELS:,} parcels (rectangles ~100 m-1 km over four districts) in {PARTITIONS} GeoParquet "
              f"partitions -> GeoParquet; bundled zones; machine shared (load {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores)")

        def show(name: str, seconds: float, extra: str = "", n: int = N_PARCELS) -> None:
            rate = n / seconds
            print(f"  {name:<44} {rate:9,.0f} parcels/s  ({seconds:.1f} s for {n:,}; "
                  f"{(N_PARCELS / rate) / base:.2f}x in-process time{extra})")

        base = best_seconds(in_process, store, single, tmp / "in-process.parquet", repeats=2)
        show("in-process (baseline, best of 2)", base)
        expected = gpd.read_parquet(tmp / "in-process.parquet")
        show("dask job code in this process (best of 2)",
             best_seconds(lambda: check_parcels(parts, tmp / "out-local", store.location, engine="local",
                                                as_of=AS_OF), repeats=2))
        for workers in (1, 2):
            started, run, _ = on_local_cluster(workers, lambda address, w=workers: check_parcels(
                parts, tmp / f"out-{w}", store.location, engine="dask", scheduler=address, as_of=AS_OF))
            got = gpd.read_parquet(tmp / f"out-{workers}")
            assert got["zone_id"].tolist() == expected["zone_id"].tolist(), "dask answer differs from in-process"
            assert np.array_equal(got["overlap_m2"].to_numpy(), expected["overlap_m2"].to_numpy())
            show(f"dask.distributed LocalCluster, {workers} worker(s)", run,
                 f"; +{started:.1f} s to start the cluster")

        index = ZoneCatalog(store).snapshot().lookup_index()
        zones = index.zones[["zone_id", "geometry"]].reset_index(drop=True)
        geoms = np.asarray(frame.geometry.values, dtype=object)
        sample = frame.iloc[:SAMPLE]
        show("ours: (parcel, zone) pairs only, in memory", best_seconds(our_pairs, index, geoms, repeats=2))
        show("ours: overlaps + geodesic areas, in memory",
             best_seconds(lambda: gparcels.parcel_overlaps(index, geoms, as_of=AS_OF), repeats=2))
        start = time.perf_counter()
        pairs = sjoin_peer(single, zones, areas=False)
        show("geopandas sjoin (pairs only)", time.perf_counter() - start, f"; {pairs:,} pairs")
        sample.to_parquet(tmp / "sample.parquet")
        start = time.perf_counter()
        pairs = sjoin_peer(tmp / "sample.parquet", zones, areas=True)
        show("geopandas sjoin + intersection + areas", time.perf_counter() - start, f"; {pairs:,} pairs", SAMPLE)
        try:
            import sedonadb  # noqa: F401
        except ImportError:
            print("  SedonaDB: not installed (pip install '.[bench]'), not measured")
        else:
            for areas, parcels in ((False, frame), (True, sample)):
                start = time.perf_counter()
                pairs = sedonadb_peer(parcels, zones, areas)
                show(f"SedonaDB {'ST_Intersection + areas' if areas else 'join (pairs only)'}, in memory",
                     time.perf_counter() - start, f"; {pairs:,} pairs", len(parcels))
        start = time.perf_counter()
        in_process(store, single, tmp / "in-process.parquet")
        show("in-process again (drift of the machine's load)", time.perf_counter() - start)


def our_pairs(index, geoms: np.ndarray) -> int:
    """The pair step of ``geo.parcels.parcel_overlaps``: STRtree boxes, then the zone's
    prepared geometry's exact test."""
    pi, zi = index._zone_tree.query(geoms)
    return int(shapely.intersects(index.geoms[zi], geoms[pi]).sum())


if __name__ == "__main__":
    main()
