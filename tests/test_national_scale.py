"""The national-scale paths: the streamed content hash, the all-zones quadtree, the synthetic set."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import shapely

from benchmarks.bench_national import national_zones
from geo import schema
from geo.lookup import ZoneIndex, _grid_cells
from geo.store import changes


def test_the_streamed_content_hash_is_the_hash_of_the_whole_canonical_text(bundled_zones, monkeypatch):
    # The definition every stored data_version was made with: one SHA-256 over the GeoJSON text.
    ordered = bundled_zones.sort_values("zone_id")
    text = json.dumps(schema.zones_to_geojson(ordered), ensure_ascii=False, sort_keys=True)
    expected = hashlib.sha256(text.encode()).hexdigest()
    monkeypatch.setattr(changes, "HASH_BATCH", 4)  # several batches, the last one short
    assert changes.content_hash(bundled_zones.iloc[::-1]) == expected
    assert changes.content_hash(schema.empty_zones()) == hashlib.sha256(
        b'{"features": [], "type": "FeatureCollection"}').hexdigest()


def test_the_quadtree_finds_exactly_the_cells_each_zone_covers_or_touches(sample_zones):
    geoms = np.asarray(sample_zones.geometry.values, dtype=object)
    shapely.prepare(geoms)
    size = 64
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    xs, ys = np.linspace(minx - 0.01, maxx + 0.01, size + 1), np.linspace(miny - 0.01, maxy + 0.01, size + 1)
    cells, zone, covered = _grid_cells(geoms, xs, ys)
    ix, iy = np.meshgrid(np.arange(size), np.arange(size))
    ix, iy = ix.ravel(), iy.ravel()
    boxes = shapely.box(xs[ix], ys[iy], xs[ix + 1], ys[iy + 1])
    for z, geom in enumerate(geoms):  # brute force: every cell against the zone
        touched = shapely.intersects(shapely.boundary(geom), boxes)
        inside = ~touched & shapely.intersects_xy(geom, (xs[ix] + xs[ix + 1]) / 2, (ys[iy] + ys[iy + 1]) / 2)
        mine = zone == z
        assert sorted(cells[mine & covered].tolist()) == np.flatnonzero(inside).tolist()
        assert sorted(cells[mine & ~covered].tolist()) == np.flatnonzero(touched).tolist()


def test_the_synthetic_national_set_is_schema_complete_and_looked_up_exactly():
    zones = national_zones(n_zones=300, vertices=40, n_counties=28)
    schema.validate_zones(zones)
    assert (zones["layer"] == "admin").sum() == 28 and (zones["layer"] == "eco_redline").sum() == 300
    assert set(zones["accuracy"]) == {"schematic"} and "synthetic" in zones["method"].iloc[0]
    index = ZoneIndex(zones, grid_size=256)
    assert len(set(index.zone_crs.tolist())) > 10  # 73–135°E: many Gauss-Krüger zones
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(73, 135, 20_000), rng.uniform(18, 53, 20_000)
    hits = index.lookup_points(lon, lat)
    tree = shapely.STRtree(index.geoms)
    pi, zi = tree.query(shapely.points(lon, lat), predicate="intersects")
    order = np.lexsort((zi, pi))
    assert np.array_equal(hits.point, pi[order]) and np.array_equal(hits.zone, zi[order])
    # Distances are metres in each zone's own CRS: inside a red line (at most 0.02° ≈ 2.3 km
    # from its centre to a vertex), never more than that from its boundary.
    centres = shapely.get_coordinates(shapely.point_on_surface(index.geoms[index.zones["layer"] == "eco_redline"]))
    hits = index.lookup_points(centres[:, 0], centres[:, 1], layers="eco_redline")
    assert np.unique(hits.point).size == len(centres)
    inside = index.distance_to_boundary_m(index.metric_points(centres[:, 0], centres[:, 1]), hits)
    assert ((inside > 0) & (inside < 2_300)).all()


@pytest.mark.parametrize("lon, epsg", [(73.6, 4534), (116.4, 4548), (115.49, 4547), (134.7, 4554), (87.6, 4538)])
def test_the_metric_crs_is_the_nearest_gauss_kruger_meridian(lon, epsg):
    from geo.crs import local_metric_epsg

    assert local_metric_epsg([lon]).tolist() == [epsg]
