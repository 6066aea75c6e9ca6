"""geo.crs: GCJ-02/BD-09 against the independent CC0 prcoords package, exact inverses,
CRS names, Gauss-Krüger zones, validation messages and geodesic measures."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import prcoords
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import crs

# Beijing municipality's bounding box, and mainland China's extent for property tests.
BEIJING = dict(lon=(115.4, 117.6), lat=(39.4, 41.1))
china_lon = st.floats(73.5, 135.0)
china_lat = st.floats(18.0, 53.5)

# Tiananmen, roughly (WGS84).
TIANANMEN = (116.3975, 39.9087)


def beijing_grid(n=101):
    lon, lat = np.meshgrid(np.linspace(*BEIJING["lon"], n), np.linspace(*BEIJING["lat"], n))
    return lon.ravel(), lat.ravel()


def prcoords_apply(fn, lon, lat):
    """Run a prcoords per-point function over arrays; returns (lon, lat) arrays."""
    out = np.array([fn(prcoords.Coords(b, a)) for a, b in zip(np.ravel(lon), np.ravel(lat), strict=True)])
    return out[:, 1], out[:, 0]


def metres_apart(lon1, lat1, lon2, lat2):
    return crs.geodesic_distance_m(lon1, lat1, lon2, lat2)


# ---------------------------------------------------------------- reference values


def test_wgs84_to_gcj02_matches_prcoords():
    lon, lat = beijing_grid(31)
    np.testing.assert_allclose(crs.wgs84_to_gcj02(lon, lat), prcoords_apply(prcoords.wgs_gcj, lon, lat),
                               rtol=0, atol=1e-12)


def test_gcj02_to_bd09_matches_prcoords_both_ways():
    lon, lat = crs.wgs84_to_gcj02(*beijing_grid(31))
    blon, blat = crs.gcj02_to_bd09(lon, lat)
    np.testing.assert_allclose((blon, blat), prcoords_apply(prcoords.gcj_bd, lon, lat), rtol=0, atol=1e-12)
    # prcoords' iterative BD inverse stops at ~1e-7°; ours must agree at least that well.
    np.testing.assert_allclose(crs.bd09_to_gcj02(blon, blat), prcoords_apply(prcoords.bd_gcj_bored, blon, blat),
                               rtol=0, atol=2e-7)


def test_gcj02_inverse_reproduces_input_under_independent_forward():
    # The inverse is judged by prcoords' forward formula, not by our own.
    glon, glat = crs.wgs84_to_gcj02(*beijing_grid(31))
    again = prcoords_apply(prcoords.wgs_gcj, *crs.gcj02_to_wgs84(glon, glat))
    assert metres_apart(*again, glon, glat).max() < 1e-4


def test_exact_inverse_beats_one_step_inverse():
    # The usual one-step inverse (prcoords.gcj_wgs) is off by metres; ours by nothing.
    lon, lat = beijing_grid(31)
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    rough = prcoords_apply(prcoords.gcj_wgs, glon, glat)
    assert metres_apart(*rough, lon, lat).max() > 0.5
    assert metres_apart(*crs.gcj02_to_wgs84(glon, glat), lon, lat).max() < 1e-3


def test_offsets_in_beijing_have_the_known_size():
    glon, glat = crs.wgs84_to_gcj02(*TIANANMEN)
    blon, blat = crs.wgs84_to_bd09(*TIANANMEN)
    assert 450 < metres_apart(*TIANANMEN, glon, glat) < 650
    assert 1100 < metres_apart(*TIANANMEN, blon, blat) < 1500


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(("forward", "inverse"), [
    (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84),
    (crs.wgs84_to_bd09, crs.bd09_to_wgs84),
    (crs.gcj02_to_bd09, crs.bd09_to_gcj02),
])
def test_round_trip_across_beijing_is_below_one_millimetre(forward, inverse):
    lon, lat = beijing_grid()
    back = inverse(*forward(lon, lat))
    assert metres_apart(*back, lon, lat).max() < 1e-3


@settings(max_examples=300, deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_round_trips_hold_anywhere_in_china(lon, lat):
    for forward, inverse in ((crs.wgs84_to_gcj02, crs.gcj02_to_wgs84),
                             (crs.wgs84_to_bd09, crs.bd09_to_wgs84)):
        back = inverse(*forward(lon, lat))
        assert metres_apart(*back, lon, lat) < 1e-3


@settings(max_examples=300, deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_forward_matches_prcoords_anywhere_in_china(lon, lat):
    ref = prcoords.wgs_bd(prcoords.Coords(lat, lon))
    blon, blat = crs.wgs84_to_bd09(lon, lat)
    assert abs(blon - ref.lon) < 1e-11 and abs(blat - ref.lat) < 1e-11


def test_scalars_give_scalars_and_arrays_keep_their_shape():
    lon, lat = crs.gcj02_to_wgs84(116.4, 39.9)
    assert np.ndim(lon) == 0 and isinstance(float(lat), float)
    grid = np.full((3, 4), 116.4), np.full((3, 4), 39.9)
    out = crs.bd09_to_wgs84(*grid)
    assert out[0].shape == (3, 4) and out[1].shape == (3, 4)


def test_conversions_do_not_modify_their_input():
    lon, lat = beijing_grid(5)
    before = lon.copy(), lat.copy()
    crs.gcj02_to_wgs84(lon, lat)
    crs.bd09_to_wgs84(lon, lat)
    np.testing.assert_array_equal(lon, before[0])
    np.testing.assert_array_equal(lat, before[1])


def test_one_million_points_convert_exactly():
    rng = np.random.default_rng(1)
    lon = rng.uniform(*BEIJING["lon"], 1_000_000)
    lat = rng.uniform(*BEIJING["lat"], 1_000_000)
    wlon, wlat = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    assert np.abs(wlon - lon).max() < 1e-9 and np.abs(wlat - lat).max() < 1e-9
    blon, blat = crs.bd09_to_wgs84(*crs.wgs84_to_bd09(lon, lat))
    assert np.abs(blon - lon).max() < 1e-9 and np.abs(blat - lat).max() < 1e-9


# ---------------------------------------------------------------- outside China


@pytest.mark.parametrize(("lon", "lat"), [
    (2.3522, 48.8566),     # Paris
    (139.6917, 35.6895),   # Tokyo: east of the rectangle
    (151.2093, -33.8688),  # Sydney
    (71.9, 40.0),          # just west of the rectangle
    (116.4, 56.0),         # just north of it
])
def test_points_outside_china_are_returned_unchanged(lon, lat):
    assert crs.out_of_china(lon, lat)
    for fn in (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84, crs.wgs84_to_bd09, crs.bd09_to_wgs84,
               crs.gcj02_to_bd09, crs.bd09_to_gcj02):
        assert fn(lon, lat) == (lon, lat)


def test_out_of_china_is_the_documented_rectangle():
    inside = crs.out_of_china([72.004, 137.8347, 100.0, 100.0], [30.0, 30.0, 0.8293, 55.8271])
    outside = crs.out_of_china([72.0039, 137.8348, 100.0, 100.0], [30.0, 30.0, 0.8292, 55.8272])
    assert not inside.any() and outside.all()


def test_mixed_arrays_convert_only_the_points_in_china():
    lon, lat = np.array([116.4, 2.35]), np.array([39.9, 48.85])
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    assert glon[0] != lon[0] and (glon[1], glat[1]) == (lon[1], lat[1])


# ---------------------------------------------------------------- CRS names


@pytest.mark.parametrize(("name", "expected"), [
    ("wgs84", "wgs84"), ("EPSG:4326", "wgs84"), ("4326", "wgs84"), (4326, "wgs84"),
    ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "wgs84"), ("CRS84", "wgs84"),
    ("cgcs2000", "cgcs2000"), ("EPSG:4490", "cgcs2000"),
    ("GCJ02", "gcj02"), ("amap", "gcj02"), ("Tencent", "gcj02"), ("wechat", "gcj02"),
    ("gaode", "gcj02"), ("mars", "gcj02"), ("bd09", "bd09"), ("Baidu", "bd09"),
    ("EPSG:4548", "EPSG:4548"), ("epsg:4527", "EPSG:4527"),
    ("http://www.opengis.net/def/crs/EPSG/0/4549", "EPSG:4549"),
    (pyproj.CRS("EPSG:3857"), "EPSG:3857"), (pyproj.CRS("OGC:CRS84"), "wgs84"),
])
def test_parse_crs_normalises_names(name, expected):
    assert crs.parse_crs(name) == expected


@pytest.mark.parametrize("name", ["utm", "EPSG:999999", "", None, "gcj-03", True])
def test_unknown_crs_names_the_value_and_lists_accepted_names(name):
    with pytest.raises(crs.UnknownCRSError) as err:
        crs.parse_crs(name)
    assert repr(name) in str(err.value) or str(name) in str(err.value)
    if name != "EPSG:999999":
        assert "gcj02" in str(err.value) and "EPSG:" in str(err.value)
    assert isinstance(err.value, ValueError)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(("lon", "lat", "fragment"), [
    ([116.4, np.nan], [39.9, 39.9], "lon[1]=nan"),
    ([116.4, 116.4], [39.9, np.inf], "lat[1]=inf"),
    ([116.4, 190.0], [39.9, 39.9], "point 1 (lon=190.0, lat=39.9)"),
    ([116.4, 16.0], [39.9, -91.0], "point 1 (lon=16.0, lat=-91.0)"),
])
@pytest.mark.parametrize("system", ["wgs84", "gcj02", "bd09", "cgcs2000"])
def test_bad_lonlat_values_are_named_with_their_index(lon, lat, fragment, system):
    with pytest.raises(crs.CoordinateError, match=re.escape(fragment)):
        crs.to_wgs84(lon, lat, system)


def test_swapped_lonlat_gets_a_hint():
    with pytest.raises(crs.CoordinateError, match="did you swap lon and lat"):
        crs.to_wgs84([39.9], [116.4], "gcj02")
    with pytest.raises(crs.CoordinateError, match="did you swap lon and lat"):
        crs.from_wgs84([39.9], [116.4], "EPSG:4548")


def test_out_of_range_without_a_swap_pattern_gets_no_swap_hint():
    with pytest.raises(crs.CoordinateError) as err:
        crs.to_wgs84([200.0], [10.0], "wgs84")
    assert "swap" not in str(err.value)


def test_projected_coordinates_outside_the_area_of_use_are_rejected():
    with pytest.raises(crs.CoordinateError, match="outside the area of use of EPSG:4548"):
        crs.to_wgs84([500000.0], [-4_000_000.0], "EPSG:4548")


def test_absurd_projected_magnitudes_are_rejected():
    with pytest.raises(crs.CoordinateError, match=r"point 0 \(x=1000000000000.0, y=4400000.0\) is not a plausible EPSG:4548"):
        crs.to_wgs84([1e12], [4.4e6], "EPSG:4548")


def test_zone_prefixed_easting_in_unprefixed_crs_suggests_the_prefixed_code():
    with pytest.raises(crs.CoordinateError, match="zone prefix"):
        crs.to_wgs84([39_450_000.0], [4_420_000.0], "EPSG:4548")


def test_projected_nan_is_named():
    with pytest.raises(crs.CoordinateError, match=r"y\[0\]=nan"):
        crs.to_wgs84([450000.0], [np.nan], "EPSG:4548")


# ---------------------------------------------------------------- to/from WGS84 and GK


def test_to_and_from_wgs84_dispatch_to_the_named_systems():
    lon, lat = beijing_grid(5)
    np.testing.assert_array_equal(crs.from_wgs84(lon, lat, "amap")[0], crs.wgs84_to_gcj02(lon, lat)[0])
    np.testing.assert_array_equal(crs.to_wgs84(lon, lat, "baidu")[1], crs.bd09_to_wgs84(lon, lat)[1])
    np.testing.assert_array_equal(crs.to_wgs84(lon, lat, "cgcs2000")[0], lon)


def test_convert_between_any_two_systems():
    x, y = crs.convert(*TIANANMEN, "wgs84", "EPSG:4548")
    blon, blat = crs.convert(x, y, "EPSG:4548", "bd09")
    lon, lat = crs.convert(blon, blat, "bd09", "gcj02")
    assert metres_apart(*crs.gcj02_to_wgs84(lon, lat), *TIANANMEN) < 1e-3


@pytest.mark.parametrize("epsg", ["EPSG:4547", "EPSG:4548", "EPSG:4549", "EPSG:4526", "EPSG:4527", "EPSG:4528"])
def test_gauss_kruger_forward_and_inverse_agree_with_pyproj(epsg):
    lon, lat = beijing_grid(11)
    direct = pyproj.Transformer.from_crs("EPSG:4326", epsg, always_xy=True)
    x, y = crs.from_wgs84(lon, lat, epsg)
    ex, ey = direct.transform(lon, lat)
    np.testing.assert_allclose(x, ex, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y, ey, rtol=0, atol=1e-6)
    back = crs.to_wgs84(x, y, epsg)
    assert metres_apart(*back, lon, lat).max() < 1e-3


def test_prefixed_easting_is_the_unprefixed_one_plus_zone_millions():
    x, y = crs.from_wgs84(*TIANANMEN, "EPSG:4548")
    px, py = crs.from_wgs84(*TIANANMEN, "EPSG:4527")
    assert px[()] == pytest.approx(39_000_000 + x[()], abs=1e-6) and py[()] == pytest.approx(y[()], abs=1e-6)


def test_detect_gk_crs_tells_prefixed_from_unprefixed():
    x, y = crs.from_wgs84(*beijing_grid(5), "EPSG:4527")
    guess = crs.detect_gk_crs(x, y)
    assert guess.crs == "EPSG:4527" and "zone prefix 39" in guess.reason
    x, y = crs.from_wgs84(*beijing_grid(5), "EPSG:4548")
    guess = crs.detect_gk_crs(x, y)
    assert guess.crs == "EPSG:4548" and "assumed 117" in guess.reason
    assert crs.detect_gk_crs(x, y, central_meridian=114).crs == "EPSG:4547"
    assert crs.detect_gk_crs([40_500_000.0], [4_400_000.0]).crs == "EPSG:4528"
    assert crs.detect_gk_crs([38_500_000.0], [4_400_000.0]).crs == "EPSG:4526"


@pytest.mark.parametrize(("x", "y", "kwargs"), [
    ([2_000_000.0], [4_400_000.0], {}),              # neither plain nor prefixed
    ([500_000.0], [-10.0], {}),                       # southern northing
    ([500_000.0], [4_400_000.0], {"central_meridian": 116}),   # not a 3-degree meridian
    ([39_500_000.0, 40_500_000.0], [4.4e6, 4.4e6], {}),        # two zones mixed
])
def test_detect_gk_crs_rejects_what_is_not_gauss_kruger(x, y, kwargs):
    with pytest.raises(crs.CoordinateError):
        crs.detect_gk_crs(x, y, **kwargs)


ESRI_GK_CM_117 = (
    'PROJCS["CGCS2000_3_Degree_GK_CM_117E",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",'
    'DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Gauss_Kruger"],PARAMETER["False_Easting",500000.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",117.0],PARAMETER["Scale_Factor",1.0],'
    'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]')


def test_crs_from_prj_identifies_cgcs2000_gauss_kruger():
    assert crs.crs_from_prj(ESRI_GK_CM_117) == "EPSG:4548"
    zone_39 = (ESRI_GK_CM_117.replace("CM_117E", "Zone_39")
               .replace('"False_Easting",500000.0', '"False_Easting",39500000.0'))
    assert crs.crs_from_prj(zone_39) == "EPSG:4527"
    assert crs.crs_from_prj(pyproj.CRS("EPSG:4326").to_wkt()) == "wgs84"


def test_crs_from_prj_recognises_renamed_gk_by_its_parameters():
    renamed = ESRI_GK_CM_117.replace("CGCS2000_3_Degree_GK_CM_117E", "my_local_grid")
    assert crs.crs_from_prj(renamed) == "EPSG:4548"
    prefixed = renamed.replace('"False_Easting",500000.0', '"False_Easting",39500000.0')
    assert crs.crs_from_prj(prefixed) == "EPSG:4527"


def test_crs_from_prj_returns_none_for_unidentifiable_text():
    assert crs.crs_from_prj("not a projection") is None
    odd = ESRI_GK_CM_117.replace("CGCS2000_3_Degree_GK_CM_117E", "x").replace(
        '"Scale_Factor",1.0', '"Scale_Factor",0.9996')
    assert crs.crs_from_prj(odd) is None


# ---------------------------------------------------------------- geometries and frames


def test_geometry_round_trip_through_gcj02_keeps_vertices():
    poly = shapely.Polygon([(116.3, 39.9), (116.4, 39.9), (116.4, 40.0), (116.3, 39.9)])
    there = crs.geometry_from_wgs84(poly, "gcj02")
    assert shapely.hausdorff_distance(there, poly) > 0.004
    back = crs.geometry_to_wgs84(there, "gcj02")
    assert shapely.equals_exact(back, poly, tolerance=1e-9)


def test_geometry_validation_names_the_bad_vertex():
    with pytest.raises(crs.CoordinateError, match="lon=39.9, lat=116.4"):
        crs.geometry_to_wgs84(shapely.LineString([(116.4, 39.9), (39.9, 116.4)]), "wgs84")


def test_frames_in_gcj02_carry_no_crs_and_need_one_to_come_back():
    gdf = gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.Point(TIANANMEN)], crs="EPSG:4326")
    mars = crs.frame_from_wgs84(gdf, "gcj02")
    assert mars.crs is None and list(mars.columns) == ["name", "geometry"]
    with pytest.raises(crs.UnknownCRSError, match="pass crs="):
        crs.frame_to_wgs84(mars)
    back = crs.frame_to_wgs84(mars, "gcj02")
    assert back.crs.to_epsg() == 4326
    assert back.geometry.iloc[0].distance(shapely.Point(TIANANMEN)) < 1e-9
    assert gdf.crs.to_epsg() == 4326 and gdf.geometry.iloc[0].equals(shapely.Point(TIANANMEN))


def test_projected_frames_use_their_own_crs():
    gdf = gpd.GeoDataFrame(geometry=[shapely.Point(TIANANMEN)], crs="EPSG:4326")
    gk = crs.frame_from_wgs84(gdf, "EPSG:4548")
    assert gk.crs.to_epsg() == 4548
    assert crs.frame_to_wgs84(gk).geometry.iloc[0].distance(shapely.Point(TIANANMEN)) < 1e-9
    series = crs.frame_from_wgs84(gdf.geometry, "bd09")
    assert isinstance(series, gpd.GeoSeries) and series.crs is None


# ---------------------------------------------------------------- metric work


def test_metric_crs_round_trip():
    poly = shapely.box(116.0, 40.0, 116.1, 40.1)
    metric = crs.to_metric(poly)
    assert 8_000 < metric.length / 4 < 12_000
    assert shapely.equals_exact(crs.from_metric(metric), poly, tolerance=1e-9)
    series = crs.to_metric(gpd.GeoSeries([poly], crs="EPSG:4326"))
    assert series.crs.to_epsg() == 4548


@pytest.mark.parametrize(("src", "dst"), list(crs.KNOWN_PIPELINES))
def test_known_pipelines_are_what_pyproj_finds_and_transform_identically(src, dst):
    """The metric transformers skip pyproj's database search; they must be the very pipeline it finds."""
    searched = pyproj.Transformer.from_crs(src, dst, always_xy=True)
    assert crs.KNOWN_PIPELINES[src, dst] == searched.definition
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(115.4, 117.6, 1000), rng.uniform(39.4, 41.1, 1000)
    x, y = (lon, lat) if src == "EPSG:4326" else pyproj.Transformer.from_crs(dst, src, always_xy=True).transform(lon, lat)
    assert np.array_equal(np.array(crs._transformer(src, dst).transform(x, y)), np.array(searched.transform(x, y)))


def test_geodesic_area_of_a_cell_agrees_with_epsg_4548():
    cell = shapely.box(116.0, 40.0, 116.01, 40.01)
    geodesic = crs.geodesic_area_m2(cell)
    planar = crs.to_metric(cell).area
    assert abs(geodesic - planar) / geodesic < 1e-3
    assert 940_000 < geodesic < 960_000  # ~0.01° × 0.01° at 40°N


def test_geodesic_area_ignores_winding_and_subtracts_holes():
    outer = shapely.box(116.0, 40.0, 116.1, 40.1)
    hole = shapely.box(116.02, 40.02, 116.03, 40.03)
    clockwise = shapely.Polygon(outer.exterior.coords[::-1], [hole.exterior.coords])
    counter = shapely.Polygon(outer.exterior.coords, [hole.exterior.coords[::-1]])
    expected = crs.geodesic_area_m2(outer) - crs.geodesic_area_m2(hole)
    areas = crs.geodesic_area_m2([clockwise, counter, shapely.MultiPolygon([outer, hole]), shapely.Point(1, 1)])
    assert areas[0] == pytest.approx(expected, rel=1e-12)
    assert areas[1] == pytest.approx(expected, rel=1e-12)
    assert areas[2] == pytest.approx(crs.geodesic_area_m2(outer) + crs.geodesic_area_m2(hole))
    assert areas[3] == 0.0


def test_geodesic_area_accepts_a_geoseries():
    s = gpd.GeoSeries([shapely.box(116.0, 40.0, 116.01, 40.01), None], crs="EPSG:4326")
    areas = crs.geodesic_area_m2(s)
    assert areas.shape == (2,) and areas[1] == 0.0 and areas[0] > 9e5


def test_geodesic_length_and_distance():
    meridian_degree = crs.geodesic_distance_m(116.0, 0.0, 116.0, 1.0)
    assert meridian_degree == pytest.approx(110_574, abs=2)
    line = shapely.LineString([(116.0, 0.0), (116.0, 1.0)])
    assert crs.geodesic_length_m(line) == pytest.approx(meridian_degree, rel=1e-12)
    square = shapely.box(116.0, 40.0, 116.01, 40.01)
    assert crs.geodesic_length_m(square) == pytest.approx(2 * (1112 + 852), rel=0.01)
