"""geo.lookup on synthetic zones: exact covers semantics, dates, layers, distances, sites."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo import schema
from geo.lookup import ZoneIndex
from geo.selection import SelectionError
from tests.conftest import make_zone

GEOD = pyproj.Geod(ellps="GRS80")  # independent of geo.crs, to check its figures


@pytest.fixture
def zones(sample_zones):
    """The sample zones plus a two-part zone touching the square and a point zone."""
    multi = shapely.MultiPolygon([shapely.box(116.10, 39.90, 116.15, 39.93), shapely.box(116.40, 39.90, 116.45, 39.95)])
    extra = schema.zones_from_records([
        make_zone("t-multi", multi, layer="river_management"),
        make_zone("t-station", shapely.Point(116.5, 39.9), layer="monitoring_section"),
    ])
    return schema.normalize_zones(pd.concat([sample_zones, extra], ignore_index=True))


@pytest.fixture
def index(zones):
    return ZoneIndex.from_frame(zones)


def ids_at(index, lon, lat, **kwargs) -> list[str]:
    hits = index.lookup_points([lon], [lat], **kwargs)
    return index.zones["zone_id"].to_numpy()[hits.zones_of(0)].tolist()


@pytest.mark.parametrize(("lon", "lat", "expected"), [
    (116.0999, 39.92, ["t-square"]),             # just inside the east edge
    (116.1001, 39.92, ["t-multi"]),              # just outside it, in the multipart zone's first part
    (115.9999, 39.92, []),                        # just outside the west edge
    (116.42, 39.92, ["t-multi"]),                # the second part
    (116.35, 39.92, []),                          # between the holed zone and the second part
    (116.21, 39.95, ["t-holed"]),                # in the holed zone's ring
    (116.25, 39.95, []),                          # inside the hole
    (116.2401, 39.95, []),                        # just inside the hole
    (116.2399, 39.95, ["t-holed"]),              # just outside the hole
])
def test_points_on_either_side_of_boundaries_holes_and_parts(index, lon, lat, expected):
    assert ids_at(index, lon, lat, as_of="2022-01-01") == expected


@pytest.mark.parametrize(("lon", "lat", "expected"), [
    (116.00, 39.90, ["t-square"]),               # corner
    (116.00, 39.95, ["t-square"]),               # west edge
    (116.10, 39.91, ["t-square", "t-multi"]),    # shared edge: both zones cover it
    (116.24, 39.95, ["t-holed"]),                # on the hole's ring: the zone's boundary
    (116.25, 39.96, ["t-holed"]),                # on the hole's top edge
    (116.30, 40.00, ["t-holed"]),                # outer corner
    (116.5, 39.9, ["t-station"]),                # exactly on a point zone
])
def test_points_exactly_on_a_boundary_are_covered(index, lon, lat, expected):
    assert ids_at(index, lon, lat, as_of="2022-01-01") == expected


def test_a_point_zone_covers_only_its_own_position(index):
    assert ids_at(index, 116.5 + 1e-9, 39.9) == []


@pytest.mark.parametrize(("as_of", "expected"), [
    ("2020-02-24", []),                            # the day before effective_from
    ("2020-02-25", ["t-square", "t-repealed"]),    # effective_from is inclusive
    ("2020-12-31", ["t-square", "t-repealed"]),    # last day in force
    ("2021-01-01", ["t-square"]),                  # effective_to is exclusive: repealed that day
    (None, ["t-square", "t-repealed"]),            # no date: every zone, repealed ones too
])
def test_as_of_selects_zones_in_force_that_day(index, as_of, expected):
    assert ids_at(index, 116.07, 39.97, as_of=as_of) == expected


def test_layer_filter_keeps_only_the_named_layers(index):
    assert ids_at(index, 116.10, 39.91, layers=["river_management"]) == ["t-multi"]
    assert ids_at(index, 116.10, 39.91, layers="livestock_ban,river_management") == ["t-square", "t-multi"]
    assert ids_at(index, 116.21, 39.95, layers=["livestock_ban"]) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layers": ["no_such_layer"]}, "unknown layer"),
    ({"as_of": "2021-02-30"}, "not a YYYY-MM-DD date"),
])
def test_bad_filters_raise_naming_the_problem(index, kwargs, message):
    with pytest.raises(SelectionError, match=message):
        index.lookup_points([116.0], [39.9], **kwargs)


def test_nan_and_far_away_points_match_nothing(index):
    hits = index.lookup_points([np.nan, 0.0, 116.05], [39.95, 0.0, np.nan])
    assert hits.zone.size == 0 and hits.n_points == 3


def test_an_empty_zone_table_matches_nothing():
    hits = ZoneIndex.from_frame(schema.empty_zones()).lookup_points([116.0], [40.0])
    assert hits.zone.size == 0 and hits.by_point()[0].size == 0


def _reference_pairs(zones, lon, lat) -> set[tuple[int, int]]:
    points = shapely.points(lon, lat)
    return {(int(p), z) for z, geom in enumerate(zones.geometry.values)
            for p in np.flatnonzero(shapely.covers(geom, points))}


def _probe_points(index, rng, n=4000):
    """Random points plus points the grid and the zones make hard: cell edges, zone vertices."""
    minx, miny, maxx, maxy = shapely.total_bounds(index.geoms)
    coords = shapely.get_coordinates(index.geoms)
    lon = np.concatenate([rng.uniform(minx - 0.01, maxx + 0.01, n), rng.choice(index.xs, n), coords[:, 0]])
    lat = np.concatenate([rng.uniform(miny - 0.01, maxy + 0.01, n), rng.choice(index.ys, n), coords[:, 1]])
    return lon, lat


@pytest.mark.parametrize("grid_size", [1, 8, 64, 1024])
def test_engine_agrees_with_shapely_covers_at_every_grid_size(zones, grid_size):
    index = ZoneIndex.from_frame(zones, grid_size=grid_size)
    lon, lat = _probe_points(index, np.random.default_rng(grid_size))
    hits = index.lookup_points(lon, lat)
    assert set(zip(hits.point.tolist(), hits.zone.tolist(), strict=True)) == _reference_pairs(zones, lon, lat)


# Coordinates of the zones' edges, so that generated points often lie exactly on a boundary.
EDGE_LONS = [116.0, 116.05, 116.1, 116.15, 116.2, 116.24, 116.26, 116.3, 116.4, 116.45, 116.5]
EDGE_LATS = [39.9, 39.93, 39.94, 39.95, 39.96, 40.0, 40.05]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.one_of(st.floats(115.99, 116.51), st.sampled_from(EDGE_LONS)),
                          st.one_of(st.floats(39.89, 40.06), st.sampled_from(EDGE_LATS))), min_size=1, max_size=50))
def test_engine_agrees_with_shapely_covers_on_any_points(zones, points):
    # zones is read-only here, so sharing it between examples is safe
    index = ZoneIndex.from_frame(zones, grid_size=16)
    lon, lat = np.array(points).T
    hits = index.lookup_points(lon, lat)
    assert set(zip(hits.point.tolist(), hits.zone.tolist(), strict=True)) == _reference_pairs(zones, lon, lat)


def test_points_one_ulp_either_side_of_a_grid_line_land_on_the_right_side():
    # A zone whose edges lie exactly on grid lines: arithmetic alone would put some points
    # a floating-point step across a line in the wrong cell.
    size, (minx, miny, maxx, maxy) = 64, (115.4168483, 39.6156023, 117.7906854, 40.7997117)
    xs, ys = np.linspace(minx, maxx, size + 1), np.linspace(miny, maxy, size + 1)
    zones = schema.zones_from_records([
        make_zone("t-frame", shapely.box(minx, miny, maxx, maxy).difference(
            shapely.box(minx + 0.01, miny + 0.01, maxx - 0.01, maxy - 0.01))),
        make_zone("t-on-grid", shapely.box(xs[10], ys[10], xs[37], ys[50])),
    ])
    index = ZoneIndex.from_frame(zones, grid_size=size)
    assert np.array_equal(index.xs, xs) and np.array_equal(index.ys, ys)
    near_x = np.concatenate([np.nextafter(xs[k], [-np.inf, 0, np.inf]) for k in range(8, 40)])
    near_y = np.concatenate([np.nextafter(ys[k], [-np.inf, 0, np.inf]) for k in range(8, 53)])
    lon = np.concatenate([near_x, np.full(near_y.size, (xs[20] + xs[21]) / 2)])
    lat = np.concatenate([np.full(near_x.size, (ys[30] + ys[31]) / 2), near_y])
    hits = index.lookup_points(lon, lat)
    assert set(zip(hits.point.tolist(), hits.zone.tolist(), strict=True)) == _reference_pairs(zones, lon, lat)


def test_hits_are_grouped_by_point_in_input_order(index):
    hits = index.lookup_points([116.42, 115.0, 116.10], [39.92, 39.0, 39.91], as_of="2022-01-01")
    names = index.zones["zone_id"].to_numpy()
    assert [names[z].tolist() for z in hits.by_point()] == [["t-multi"], [], ["t-square", "t-multi"]]


def test_grid_size_must_be_a_power_of_two(zones):
    with pytest.raises(ValueError, match="power of two"):
        ZoneIndex.from_frame(zones, grid_size=1000)


# ---------------------------------------------------------------- distances


def test_distance_to_boundary_is_in_metres_to_the_nearest_edge(index):
    lon, lat = np.array([116.05]), np.array([39.95])
    hits = index.lookup_points(lon, lat, as_of="2022-01-01")
    assert index.zones["zone_id"][hits.zone[0]] == "t-square"
    distance = index.distance_to_boundary_m(index.metric_points(lon, lat), hits)[0]
    # The nearest edges are the meridians 0.05° east and west (~4.27 km; the parallels are ~5.55 km away).
    _, _, expected = GEOD.inv(116.05, 39.95, 116.00, 39.95)
    assert distance == pytest.approx(expected, rel=1e-3)


def test_a_point_on_the_boundary_is_zero_metres_from_it(index):
    hits = index.lookup_points([116.10], [39.95], as_of="2022-01-01")
    assert index.distance_to_boundary_m(index.metric_points(116.10, 39.95), hits) == pytest.approx([0.0], abs=1e-6)


def test_a_point_in_a_hole_has_the_zone_nearby_at_the_distance_to_the_hole_ring(index):
    lon, lat = np.array([116.25]), np.array([39.95])
    hits = index.lookup_points(lon, lat)
    nearby = index.nearby(index.metric_points(lon, lat), 2000, hits)
    assert index.zones["zone_id"].to_numpy()[nearby.zone].tolist() == ["t-holed"]
    _, _, expected = GEOD.inv(116.25, 39.95, 116.24, 39.95)  # ~853 m to the ring's west and east edges
    assert nearby.distance_m[0] == pytest.approx(expected, rel=1e-3)
    assert index.nearby(index.metric_points(lon, lat), expected - 5, hits).zone.size == 0


def test_nearby_lists_only_zones_not_covering_the_point_sorted_by_distance(index):
    lon, lat = np.array([116.0999]), np.array([39.92])  # in the square, 8.5 m from t-multi
    hits = index.lookup_points(lon, lat, as_of="2022-01-01")
    points_m = index.metric_points(lon, lat)
    nearby = index.nearby(points_m, 20_000, hits, as_of="2022-01-01")
    names = index.zones["zone_id"].to_numpy()[nearby.zone].tolist()
    assert "t-square" not in names and names[0] == "t-multi"
    assert nearby.distance_m[0] == pytest.approx(GEOD.inv(116.0999, 39.92, 116.10, 39.92)[2], rel=1e-3)
    assert list(nearby.distance_m) == sorted(nearby.distance_m)
    assert "t-repealed" not in names  # not in force on 2022-01-01
    assert "t-repealed" in index.zones["zone_id"].to_numpy()[index.nearby(points_m, 20_000, hits).zone]


def test_distance_to_a_point_zone_is_to_the_point(index):
    lon, lat = np.array([116.5]), np.array([39.91])
    nearby = index.nearby(index.metric_points(lon, lat), 5000, index.lookup_points(lon, lat))
    assert index.zones["zone_id"][nearby.zone[0]] == "t-station"
    assert nearby.distance_m[0] == pytest.approx(GEOD.inv(116.5, 39.91, 116.5, 39.9)[2], rel=1e-3)


# ---------------------------------------------------------------- sites


def geodesic_area(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def test_site_half_inside_a_square_reports_overlap_and_shares(index):
    site = shapely.box(116.05, 39.91, 116.15, 39.92)  # west half in the square, east half in t-multi
    result = index.site_overlaps(site, as_of="2022-01-01")
    names = index.zones["zone_id"].to_numpy()[result.zone].tolist()
    assert names == ["t-square", "t-multi"]
    half = geodesic_area(shapely.box(116.05, 39.91, 116.10, 39.92))
    assert result.site_area_m2 == pytest.approx(geodesic_area(site), rel=1e-9)
    assert result.overlap_m2[0] == pytest.approx(half, rel=1e-6)
    assert result.share_of_site[0] == pytest.approx(0.5, rel=1e-3)
    assert result.share_of_zone[0] == pytest.approx(half / geodesic_area(shapely.box(116.0, 39.9, 116.1, 40.0)),
                                                    rel=1e-6)
    other_half = geodesic_area(shapely.box(116.10, 39.91, 116.15, 39.92))
    multi_area = geodesic_area(shapely.box(116.10, 39.90, 116.15, 39.93)) + geodesic_area(
        shapely.box(116.40, 39.90, 116.45, 39.95))
    assert result.overlap_m2[1] == pytest.approx(other_half, rel=1e-6)
    assert result.share_of_zone[1] == pytest.approx(other_half / multi_area, rel=1e-6)


def test_site_over_a_hole_does_not_count_the_hole(index):
    site = shapely.box(116.23, 39.94, 116.25, 39.96)  # half over the hole
    result = index.site_overlaps(site)
    assert index.zones["zone_id"][result.zone[0]] == "t-holed"
    assert result.overlap_m2[0] == pytest.approx(geodesic_area(shapely.box(116.23, 39.94, 116.24, 39.96)), rel=1e-6)


def test_a_site_touching_a_zone_is_listed_with_zero_overlap(index):
    result = index.site_overlaps(shapely.box(115.9, 39.95, 116.0, 39.96), as_of="2022-01-01")
    assert index.zones["zone_id"].to_numpy()[result.zone].tolist() == ["t-square"]
    assert result.overlap_m2[0] == 0.0


def test_a_point_zone_inside_a_site_has_no_share_of_zone(index):
    result = index.site_overlaps(shapely.box(116.49, 39.89, 116.51, 39.91))
    assert index.zones["zone_id"][result.zone[0]] == "t-station"
    assert result.overlap_m2[0] == 0.0 and np.isnan(result.share_of_zone[0])


# ---------------------------------------------------------------- metric CRS per zone


def test_every_bundled_zone_measures_distances_in_epsg_4548(bundled_zones):
    # Beijing's answers were always in EPSG:4548 (CM 117°E); the per-zone choice keeps them there.
    assert set(ZoneIndex.from_frame(bundled_zones, grid_size=64).zone_crs.tolist()) == {4548}


def test_a_zone_far_from_beijing_measures_in_its_own_gauss_kruger_zone(sample_zones):
    # Kashgar (76°E) is 41° from EPSG:4548's meridian, where its scale is off by tens of per cent.
    kashgar = make_zone("t-kashgar", shapely.box(75.95, 39.45, 76.05, 39.55), district_code="653101")
    zones = schema.normalize_zones(pd.concat([sample_zones, schema.zones_from_records([kashgar])],
                                                    ignore_index=True))
    index = ZoneIndex.from_frame(zones, grid_size=256)
    crs = dict(zip(index.zones["zone_id"], index.zone_crs.tolist(), strict=True))
    assert crs["t-kashgar"] == 4534 and crs["t-square"] == 4548  # CM 75°E and CM 117°E
    lon, lat = np.array([76.0, 76.07, 116.05]), np.array([39.5, 39.5, 39.95])
    hits = index.lookup_points(lon, lat, as_of="2022-01-01")
    points_m = index.metric_points(lon, lat)
    inside = index.distance_to_boundary_m(points_m, hits)
    zone_of = index.zones["zone_id"].to_numpy()[hits.zone]
    assert inside[zone_of == "t-kashgar"][0] == pytest.approx(GEOD.inv(76.0, 39.5, 76.05, 39.5)[2], rel=1e-3)
    nearby = index.nearby(points_m, 5000, hits, as_of="2022-01-01")
    from_east = nearby.distance_m[(nearby.point == 1) & (index.zones["zone_id"].to_numpy()[nearby.zone] == "t-kashgar")]
    assert from_east == pytest.approx([GEOD.inv(76.07, 39.5, 76.05, 39.5)[2]], rel=1e-3)
