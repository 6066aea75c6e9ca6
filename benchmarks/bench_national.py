"""National scale, simulated: a synthetic zone set the size of a national red-line dataset.

``national_zones(n_zones, vertices, n_counties)`` generates schema-complete zones over
China's extent (73–135°E, 18–53°N): ``n_zones`` red-line polygons of ``vertices`` vertices
each (irregular star shapes, 0.5–4 km across, a tenth of them with a hole) and
``n_counties`` county units (a jittered grid, 100 vertices each) as the ``admin`` layer.
They are synthetic benchmark data (``method`` says so), never shipped, never served.

Prints, for one run: generation time; store import (GeoPackage ``save``: validation,
geodesic areas, content hash, one transaction) time and file size; store load time; lookup
index build time, saved size (with the zones' properties) and load time; a restart's first
point answer from the saved index and the store's geometries, without the zone table; lookup rate on 1 M random points inside the
extent and on 1 M points inside zones; distances (boundary distance and zones within 500 m,
boundary chunks built lazily) for 10 000 points inside zones, first and second time;
GeoPackage export time; peak memory (RSS) after each step. The bundled Beijing zones go
through the same steps first, as the baseline. Each line is printed (flushed) when its step
ends, so a run stopped early still leaves its figures.

National size is 300 000 zones / 30 M vertices + 2 800 counties
(``ZONING_NATIONAL_ZONES=300000``: 12–26 min on the shared 2-core machine, ~5 min of CPU,
peak RSS 7.1 GiB; docs/scaling.md has the measured runs); the default is a tenth of the zones,
which takes a few minutes. ``ZONING_NATIONAL_TMP`` names the folder for the stores (1.9 GiB at
full size; default: the system's temporary folder). ``ZONING_NATIONAL_VERTICES`` sets the vertices per zone (default 100).

    python benchmarks/bench_national.py      (or python -m benchmarks.run national)
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402

from api.answers import check_answer  # noqa: E402
from geo import index_files, schema  # noqa: E402
from geo.catalog import RECORDS_ARRAY, ZoneCatalog, zone_records  # noqa: E402
from geo.export import write_export  # noqa: E402
from geo.lookup import ZoneIndex, build_arrays  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from geo.store import store_at  # noqa: E402

EXTENT = (73.0, 18.0, 135.0, 53.0)
N_ZONES = int(os.environ.get("ZONING_NATIONAL_ZONES", 30_000))
VERTICES = int(os.environ.get("ZONING_NATIONAL_VERTICES", 100))
N_COUNTIES = 2_800
LOOKUPS = 1_000_000
DISTANCE_POINTS = 10_000


def _star(cx: np.ndarray, cy: np.ndarray, radius_deg: np.ndarray, vertices: int, rng) -> np.ndarray:
    """Irregular star-shaped rings around (cx, cy): one ring per centre, ``vertices`` vertices."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, (cx.size, vertices)), axis=1)
    r = radius_deg[:, None] * rng.uniform(0.6, 1.0, (cx.size, vertices))
    x = cx[:, None] + r * np.cos(angles) / np.cos(np.radians(cy))[:, None]
    y = cy[:, None] + r * np.sin(angles)
    coords = np.stack([x, y], axis=-1)
    return np.concatenate([coords, coords[:, :1]], axis=1)  # closed


def national_zones(n_zones: int = N_ZONES, vertices: int = VERTICES, n_counties: int = N_COUNTIES,
                   seed: int = 2024) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = EXTENT
    cols = int(np.ceil(np.sqrt(n_counties * (maxx - minx) / (maxy - miny))))
    rows = int(np.ceil(n_counties / cols))
    xs, ys = np.linspace(minx, maxx, cols + 1), np.linspace(miny, maxy, rows + 1)
    county_geoms, county_codes = [], []
    for k in range(n_counties):
        i, j = k % cols, k // cols
        t = np.linspace(0, 1, 26)[:-1]
        x0, x1, y0, y1 = xs[i], xs[i + 1], ys[j], ys[j + 1]
        ring = np.r_[np.c_[x0 + t * (x1 - x0), np.full(25, y0)], np.c_[np.full(25, x1), y0 + t * (y1 - y0)],
                     np.c_[x1 - t * (x1 - x0), np.full(25, y1)], np.c_[np.full(25, x0), y1 - t * (y1 - y0)]]
        county_geoms.append(shapely.Polygon(ring))
        county_codes.append(f"{990000 + k:06d}")
    cx, cy = rng.uniform(minx + 0.1, maxx - 0.1, n_zones), rng.uniform(miny + 0.1, maxy - 0.1, n_zones)
    radius = rng.uniform(0.0025, 0.02, n_zones)
    rings = _star(cx, cy, radius, vertices, rng)
    holes = rng.random(n_zones) < 0.1
    zone_geoms = shapely.polygons(rings)
    hole_rings = _star(cx[holes], cy[holes], radius[holes] * 0.3, 8, rng)
    zone_geoms[holes] = shapely.polygons(rings[holes], holes=[[h] for h in hole_rings]) if holes.any() else []
    zone_geoms = shapely.make_valid(zone_geoms)  # sorted angles give simple rings; this only guards
    county_of = np.minimum(((cx - minx) / (maxx - minx) * cols).astype(int), cols - 1) + \
        np.minimum(((cy - miny) / (maxy - miny) * rows).astype(int), rows - 1) * cols
    county_of = np.minimum(county_of, n_counties - 1)
    base = {"parent_id": None, "kind": "synthetic", "district_name": "合成县", "source_doc_no": "合成〔2024〕1号",
            "source_title": "合成基准数据", "source_article": None, "issuer": "基准", "issued_on": "2024-01-01",
            "effective_from": "2024-01-01", "effective_to": None, "stated_area_km2": None, "area_km2": None,
            "rules": [], "accuracy": "schematic", "method": "synthetic benchmark data (benchmarks/bench_national.py)",
            "notes": None}
    records = [{**base, "zone_id": f"cn-county-{c}", "layer": "admin", "name_zh": f"合成县{c}",
                "name_en": f"Synthetic county {c}", "district_code": c, "geometry": g}
               for c, g in zip(county_codes, county_geoms, strict=True)]
    records += [{**base, "zone_id": f"cn-redline-{k}", "layer": "eco_redline", "name_zh": f"合成红线{k}",
                 "name_en": f"Synthetic red line {k}", "district_code": county_codes[county_of[k]], "geometry": g}
                for k, g in enumerate(zone_geoms)]
    return schema.zones_from_records(records)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_cpu = [0.0]


def timed(fn):
    """(result, wall seconds); the CPU seconds of the same call go to ``cpu()``: on a shared
    machine the process gets a fraction of a core, and CPU time says what the step costs."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = fn()
    _cpu[0] = time.process_time() - cpu_start
    return result, time.perf_counter() - start


def cpu() -> str:
    return f"cpu {_cpu[0]:.1f} s"


def say(text: str) -> None:
    print(text, flush=True)


def measure(label: str, zones: gpd.GeoDataFrame, workdir: Path) -> None:
    """Every step on ``zones`` (the caller keeps no reference: the frame is dropped once stored)."""
    vertices = int(shapely.get_num_coordinates(zones.geometry.values).sum())
    say(f"\n{label}: {len(zones):,} zones, {vertices:,} vertices")
    store = store_at(workdir / "zones.gpkg")
    info, t_import = timed(partial(store.save, zones, action="import", base_version=0))
    del zones
    say(f"  store import (GeoPackage, one transaction)  {t_import:8.1f} s   file {store.path.stat().st_size / 2**20:,.0f} MiB"
        f"   ({cpu()}; RSS peak {peak_rss_mib():,.0f} MiB)")
    (loaded, _), t_load = timed(lambda: store.snapshot())
    say(f"  store load                                   {t_load:8.1f} s   ({cpu()}; RSS peak {peak_rss_mib():,.0f} MiB)")
    geoms = np.asarray(loaded.geometry.values, dtype=object)
    arrays, t_build = timed(lambda: build_arrays(geoms))
    build_cpu = cpu()
    ids = loaded["zone_id"].tolist()
    index_root = workdir / "index"
    directory = index_root / info.data_version
    records = json.dumps(zone_records(loaded), ensure_ascii=False).encode()  # as geo.catalog saves them
    arrays[RECORDS_ARRAY] = np.frombuffer(records, dtype=np.uint8)
    index_files.save(directory, arrays, zone_ids=ids, grid_size=arrays["xs"].size - 1)
    del arrays
    size = sum(p.stat().st_size for p in directory.iterdir()) / 2**20
    saved, t_index_load = timed(lambda: index_files.load(directory, zone_ids=ids))
    index, t_wrap = timed(lambda: ZoneIndex(loaded, arrays=saved))
    say(f"  lookup index build                           {t_build:8.1f} s   ({build_cpu}) saved {size:,.0f} MiB "
        f"(of which the zones' properties {len(records) / 2**20:,.0f} MiB), loaded+verified in {t_index_load:.2f} s "
        f"(+{t_wrap:.2f} s to wrap)   (RSS peak {peak_rss_mib():,.0f} MiB)")
    restart = ZoneCatalog(store, index_dir=index_root).snapshot()  # a new process: nothing loaded
    point = shapely.get_coordinates(shapely.point_on_surface(geoms[len(geoms) // 2]))[0]
    first, t_first_answer = timed(lambda: check_answer(restart, point[0], point[1], crs="wgs84", as_of=None,
                                                         layers=None, near_m=500, lang="zh"))
    say(f"  restart: first point answered without the zone table {t_first_answer:8.1f} s ({cpu()}; "
        f"{len(first['inside'])} zone(s) inside; the table loaded: {restart._zones is not None})")
    rng = np.random.default_rng(1)
    minx, miny, maxx, maxy = loaded.total_bounds
    lon, lat = rng.uniform(minx, maxx, LOOKUPS), rng.uniform(miny, maxy, LOOKUPS)
    hits, t_lookup = timed(lambda: index.lookup_points(lon, lat))
    lookup_cpu = cpu()
    _, t_again = timed(lambda: index.lookup_points(lon, lat))  # zones' prepared geometries are built lazily
    again_cpu = cpu()
    inside = shapely.get_coordinates(shapely.point_on_surface(geoms[rng.integers(0, len(geoms), LOOKUPS)]))
    hits_in, t_inside = timed(lambda: index.lookup_points(inside[:, 0], inside[:, 1]))
    say(f"  lookup, {LOOKUPS:,} random points            {LOOKUPS / t_lookup / 1e6:8.2f} M points/s "
        f"({lookup_cpu}; again {LOOKUPS / t_again / 1e6:.2f} M points/s, {again_cpu}; {np.unique(hits.point).size:,} inside a zone)")
    say(f"  lookup, {LOOKUPS:,} points inside zones      {LOOKUPS / t_inside / 1e6:8.2f} M points/s "
        f"({cpu()}; {np.unique(hits_in.point).size:,} inside)")
    few = inside[:DISTANCE_POINTS]

    def distances():
        near_hits = index.lookup_points(few[:, 0], few[:, 1])
        points_m = index.metric_points(few[:, 0], few[:, 1])
        index.distance_to_boundary_m(points_m, near_hits)
        return index.nearby(points_m, 500, near_hits)

    nearby, t_first = timed(distances)
    first_cpu = cpu()
    _, t_second = timed(distances)
    say(f"  distances, {DISTANCE_POINTS:,} points (boundary + within 500 m)  first {t_first:.2f} s, {first_cpu} "
        f"(builds {len(index._boundary_trees):,} zones' boundaries), again {t_second:.2f} s, {cpu()}; "
        f"{nearby.zone.size:,} zones nearby")
    _, t_export = timed(lambda: write_export(loaded, "gpkg", workdir / "export.gpkg", data_version=info.data_version))
    say(f"  export GeoPackage                            {t_export:8.1f} s   ({cpu()}) "
        f"{(workdir / 'export.gpkg').stat().st_size / 2**20:,.0f} MiB")
    say(f"  peak memory (RSS) so far                     {peak_rss_mib():8,.0f} MiB")


def main() -> None:
    say(f"machine shared: load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="zoning-national-", dir=os.environ.get("ZONING_NATIONAL_TMP")) as tmp:
        base = Path(tmp) / "beijing"
        base.mkdir()
        measure("baseline: bundled Beijing zones", schema.zones_from_geojson(BUNDLED_ZONES.read_text("utf-8")), base)
        zones, t_gen = timed(lambda: national_zones())
        say(f"\ngenerated the synthetic national set in {t_gen:.1f} s ({cpu()}; RSS {peak_rss_mib():,.0f} MiB)")
        national = Path(tmp) / "national"
        national.mkdir()
        label = f"synthetic national set ({N_ZONES:,} red-line zones x {VERTICES} vertices + {N_COUNTIES:,} counties)"
        holder = [zones]
        del zones
        measure(label, holder.pop(), national)


if __name__ == "__main__":
    main()
