"""The recipe engine: every geometry operation on small synthetic inputs, and its errors.

The base layers and recipes here are test fixtures written to a temporary folder, never
shipped data. Areas are compared with pyproj's geodesic area, independent of geo.crs.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
import yaml
from pyproj import Geod

from geo import crs as geocrs
from geo import recipe_context
from geo.recipes import BaseLayers, BuildContext, RecipeError, build_order, load_recipe, load_recipes

GEOD = Geod(ellps="GRS80")
BOX_A = shapely.box(116.0, 40.0, 116.2, 40.2)  # synthetic district 990001
BOX_B = shapely.box(116.2, 40.0, 116.4, 40.2)  # synthetic district 990002, east of A


def km2(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e6


def metres(lon1, lat1, lon2, lat2) -> float:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """Two adjacent box districts, a river with a side loop and a tributary, one lake."""
    folder = tmp_path / "base"
    folder.mkdir()
    gpd.GeoDataFrame({"adcode": ["990001", "990002"], "name_zh": ["甲区", "乙区"]},
                     geometry=[BOX_A, BOX_B], crs="EPSG:4326").to_file(folder / "districts.geojson", driver="GeoJSON")
    main = shapely.LineString([(116.02, 40.10), (116.10, 40.10), (116.18, 40.10), (116.30, 40.10)])
    loop = shapely.LineString([(116.10, 40.10), (116.11, 40.12), (116.12, 40.10)])  # side loop
    tributary = shapely.LineString([(116.18, 40.10), (116.18, 40.19)])
    gpd.GeoDataFrame({"note": ["main", "loop", "tributary"]}, geometry=[main, loop, tributary],
                     crs="EPSG:4326").to_file(folder / "test_rivers.geojson", driver="GeoJSON")
    lake = shapely.box(116.05, 40.15, 116.07, 40.17)
    gpd.GeoDataFrame({"note": ["Test Lake"]}, geometry=[lake], crs="EPSG:4326") \
        .to_file(folder / "test_lakes.geojson", driver="GeoJSON")
    return folder


PLACES = {
    "west": {"name_zh": "西点", "lon": 116.04, "lat": 40.101, "crs": "wgs84", "source": "test fixture"},
    "east": {"name_zh": "东点", "lon": 116.16, "lat": 40.099, "crs": "wgs84", "source": "test fixture"},
    "north": {"name_zh": "北点", "lon": 116.10, "lat": 40.18, "crs": "wgs84", "source": "test fixture"},
    "south": {"name_zh": "南点", "lon": 116.10, "lat": 40.02, "crs": "wgs84", "source": "test fixture"},
    "centre": {"name_zh": "中点", "lon": 116.10, "lat": 40.10, "crs": "wgs84", "source": "test fixture"},
    "mars": {"name_zh": "火星点", "lon": 116.10, "lat": 40.10, "crs": "gcj02", "source": "test fixture"},
}


def zone(zid: str, geometry: dict, **extra) -> dict:
    entry = {"id": zid, "layer": "livestock_ban", "kind": "test", "name_zh": f"测试{zid}", "name_en": zid,
             "document": "d", "rules": ["r"], "accuracy": "approximate", "geometry": geometry}
    entry.update(extra)
    return entry


def write_recipe(folder: Path, zones: list[dict], name: str = "t.yaml", **sections) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    recipe = {
        "district": {"code": "990001", "name_zh": "甲区", "name_en": "Test district"},
        "documents": {"d": {"doc_no": "测试〔2020〕1号", "title": "测试文件", "issuer": "测试机关",
                            "issued_on": "2020-02-25", "effective_from": "2020-02-25"}},
        "rules": {"r": {"text_zh": "禁止规模化畜禽养殖", "text_en": "No scale livestock farms", "governs": "none"}},
        "places": PLACES,
        "zones": zones,
        **sections,
    }
    path = folder / name
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def build(tmp_path: Path, base: Path, zones: list[dict], **sections):
    path = write_recipe(tmp_path / "recipes", zones, **sections)
    return BuildContext([load_recipe(path)], BaseLayers(base)).build_all()


# ---------------------------------------------------------------- base-layer operations


def test_admin_by_adcode_and_by_name_give_the_base_district(tmp_path, base):
    built = build(tmp_path, base, [zone("a1", {"op": "admin", "adcode": "990001"}),
                                   zone("a2", {"op": "admin", "name": "乙区"})])
    assert built["a1"].geometry.equals(BOX_A)
    assert built["a2"].geometry.equals(BOX_B)


def test_admin_that_matches_no_district_names_the_zone(tmp_path, base):
    with pytest.raises(RecipeError, match=r"t.yaml: zone a1: admin adcode 123456 matches 0"):
        build(tmp_path, base, [zone("a1", {"op": "admin", "adcode": "123456"})])


def test_lake_selects_the_base_lake_by_name(tmp_path, base):
    built = build(tmp_path, base, [zone("l1", {"op": "lake", "name": "Test Lake"})])
    assert built["l1"].geometry.equals(shapely.box(116.05, 40.15, 116.07, 40.17))


# ---------------------------------------------------------------- set operations and refs


def test_union_difference_intersection_and_clip_combine_zones(tmp_path, base):
    a, b = {"op": "admin", "adcode": "990001"}, {"op": "admin", "adcode": "990002"}
    disc = {"op": "buffer_point", "place": "east", "radius_m": 5000}
    built = build(tmp_path, base, [
        zone("a", a), zone("b", b),
        zone("u", {"op": "union", "of": ["a", "b"]}),
        zone("d", {"op": "difference", "of": "u", "minus": ["b"]}),
        zone("i", {"op": "intersection", "of": ["a", disc]}),
        zone("c", {"op": "clip", "geometry": disc, "to": "b"}),
    ])
    assert km2(built["u"].geometry) == pytest.approx(km2(BOX_A) + km2(BOX_B), rel=1e-6)
    assert km2(built["d"].geometry) == pytest.approx(km2(BOX_A), rel=1e-6)
    # the disc around "east" straddles the A|B border: the two clipped halves make the whole disc
    whole = km2(build(tmp_path / "x", base, [zone("w", disc)])["w"].geometry)
    assert km2(built["i"].geometry) + km2(built["c"].geometry) == pytest.approx(whole, rel=1e-4)


def test_ref_returns_another_zones_geometry(tmp_path, base):
    built = build(tmp_path, base, [zone("a", {"op": "admin", "adcode": "990001"}), zone("r", {"op": "ref", "id": "a"})])
    assert built["r"].geometry.equals(built["a"].geometry)


def test_zones_may_reference_zones_of_another_recipe_file(tmp_path, base):
    folder = tmp_path / "recipes"
    write_recipe(folder, [zone("a", {"op": "admin", "adcode": "990001"})], name="one.yaml")
    write_recipe(folder, [zone("z", {"op": "buffer", "of": "a", "distance_m": 100})], name="two.yaml")
    built = BuildContext(load_recipes(folder), BaseLayers(base)).build_all()
    assert built["z"].geometry.contains(BOX_A)


def test_not_digitised_zone_is_reported_with_its_reason_and_has_no_geometry(tmp_path, base):
    built = build(tmp_path, base, [zone("n", {"op": "not_digitised", "reason": "no cited coordinate"})])
    assert built["n"].geometry is None and built["n"].reason == "no cited coordinate"


def test_union_can_skip_components_that_are_not_digitised_and_says_so(tmp_path, base):
    built = build(tmp_path, base, [
        zone("a", {"op": "admin", "adcode": "990001"}),
        zone("n", {"op": "not_digitised", "reason": "unknown location"}),
        zone("u", {"op": "union", "of": ["a", "n"], "skip_not_digitised": True}),
        zone("v", {"op": "union", "of": ["n"], "skip_not_digitised": True}),
    ])
    assert built["u"].geometry.equals(BOX_A)
    assert "not digitised and left out: n" in built["u"].method
    assert built["v"].geometry is None  # nothing left to draw: the zone itself is not digitised


def test_referring_to_a_zone_that_is_not_digitised_is_an_error_unless_skipped(tmp_path, base):
    with pytest.raises(RecipeError, match="zone u: .*'n', which is not digitised"):
        build(tmp_path, base, [zone("n", {"op": "not_digitised", "reason": "x"}),
                               zone("u", {"op": "union", "of": ["n"]})])


# ---------------------------------------------------------------- metric operations


def test_buffer_point_is_a_disc_of_the_radius_in_metres(tmp_path, base):
    built = build(tmp_path, base, [zone("p", {"op": "buffer_point", "place": "centre", "radius_m": 1000})])
    assert km2(built["p"].geometry) == pytest.approx(math.pi, rel=0.002)
    x0, y0, x1, y1 = built["p"].geometry.bounds
    assert metres(x0, 40.10, x1, 40.10) == pytest.approx(2000, rel=0.001)  # metres, not degrees
    assert "1000 m around 中点 (test fixture)" in built["p"].method


def test_buffer_point_with_inline_coordinates(tmp_path, base):
    spec = {"op": "buffer_point", "lon": 116.1, "lat": 40.1, "crs": "wgs84", "source": "test", "radius_m": 500}
    built = build(tmp_path, base, [zone("p", spec)])
    assert km2(built["p"].geometry) == pytest.approx(math.pi / 4, rel=0.002)


def test_buffer_grows_and_negative_buffer_shrinks_a_polygon(tmp_path, base):
    built = build(tmp_path, base, [
        zone("a", {"op": "admin", "adcode": "990001"}),
        zone("out", {"op": "buffer", "of": "a", "distance_m": 1000}),
        zone("in", {"op": "buffer", "of": "a", "distance_m": -1000}),
    ])
    side_we, side_sn = metres(116.0, 40.1, 116.2, 40.1), metres(116.1, 40.0, 116.1, 40.2)
    assert km2(built["in"].geometry) == pytest.approx((side_we - 2000) * (side_sn - 2000) / 1e6, rel=0.003)
    assert km2(built["out"].geometry) > km2(BOX_A) + 2 * (side_we + side_sn) / 1000


def test_point_converts_a_gcj02_place_to_wgs84(tmp_path, base):
    built = build(tmp_path, base, [zone("p", {"op": "point", "place": "mars"}, layer="monitoring_section")])
    p = built["p"].geometry
    assert p.geom_type == "Point"
    lon, lat = geocrs.gcj02_to_wgs84(116.10, 40.10)
    assert (p.x, p.y) == pytest.approx((float(lon), float(lat)), abs=1e-9)
    assert 300 < metres(p.x, p.y, 116.10, 40.10) < 900  # the GCJ-02 offset was removed


def test_polygon_from_cited_coordinates(tmp_path, base):
    coords = [[116.05, 40.05], [116.15, 40.05], [116.15, 40.15], [116.05, 40.15]]
    built = build(tmp_path, base, [zone("p", {"op": "polygon", "coords": coords, "crs": "wgs84", "source": "test"})])
    assert built["p"].geometry.equals(shapely.box(116.05, 40.05, 116.15, 40.15))


def test_polygon_without_a_source_is_refused(tmp_path, base):
    coords = [[116.05, 40.05], [116.15, 40.05], [116.15, 40.15]]
    with pytest.raises(RecipeError, match="polygon needs 'crs' and 'source'"):
        build(tmp_path, base, [zone("p", {"op": "polygon", "coords": coords, "crs": "wgs84"})])


# ---------------------------------------------------------------- buffer_line


def test_buffer_line_through_places_is_a_flat_ended_corridor(tmp_path, base):
    built = build(tmp_path, base, [zone("c", {"op": "buffer_line", "places": ["west", "east"], "distance_m": 100})])
    length = metres(116.04, 40.101, 116.16, 40.099)
    assert km2(built["c"].geometry) == pytest.approx(2 * 100 * length / 1e6, rel=0.003)


def test_buffer_line_follows_the_river_between_anchors_despite_loops_and_tributaries(tmp_path, base):
    spec = {"op": "buffer_line", "river": "nearest", "from": "west", "to": "east", "distance_m": 50}
    built = build(tmp_path, base, [zone("c", spec)])
    corridor = built["c"].geometry
    length = metres(116.04, 40.10, 116.16, 40.10)  # the main stem between the anchors' feet
    assert km2(corridor) == pytest.approx(2 * 50 * length / 1e6, rel=0.01)
    assert not corridor.intersects(shapely.Point(116.18, 40.15))  # not up the tributary
    assert corridor.bounds[0] == pytest.approx(116.04, abs=0.001) and corridor.bounds[2] == pytest.approx(116.16, abs=0.001)
    assert re.search(r"西点 11[01] m from the line \(test fixture\)", built["c"].method)


def test_buffer_line_calibrates_its_width_to_the_stated_area(tmp_path, base):
    spec = {"op": "buffer_line", "river": "nearest", "from": "west", "to": "east",
            "calibrate_area_km2": 5.0, "clip_to": {"op": "admin", "adcode": "990001"}}
    built = build(tmp_path, base, [zone("c", spec, accuracy="approximate")])
    assert km2(built["c"].geometry) == pytest.approx(5.0, rel=0.002)
    assert "half-width calibrated by bisection to" in built["c"].method


def test_calibration_is_refused_unless_the_zone_is_approximate(tmp_path, base):
    spec = {"op": "buffer_line", "places": ["west", "east"], "calibrate_area_km2": 5.0}
    for accuracy in ("official", "schematic", "indicative"):
        with pytest.raises(RecipeError, match="calibrate_area_km2 is only allowed with accuracy: approximate"):
            build(tmp_path, base, [zone("c", spec, accuracy=accuracy)])


def test_buffer_line_with_an_unknown_place_names_it(tmp_path, base):
    spec = {"op": "buffer_line", "river": "nearest", "from": "west", "to": "nowhere", "distance_m": 50}
    with pytest.raises(RecipeError, match=r"zone c: unknown place 'nowhere'"):
        build(tmp_path, base, [zone("c", spec)])


def test_buffer_line_by_name_needs_a_named_base_river(tmp_path, base):
    spec = {"op": "buffer_line", "river": "永定河", "from": "west", "to": "east", "distance_m": 50}
    with pytest.raises(RecipeError, match="no base river named '永定河'"):
        build(tmp_path, base, [zone("c", spec)])


# ---------------------------------------------------------------- partitions


def test_partition_cells_cover_the_area_without_overlap_and_meet_cited_areas(tmp_path, base, monkeypatch):
    calls = []
    real = recipe_context.build_partition
    monkeypatch.setattr(recipe_context, "build_partition", lambda *a: calls.append(1) or real(*a))
    partitions = {"p": {"of": {"op": "admin", "adcode": "990001"},
                        "seeds": {"w": "west", "e": "east", "n": ["north", "centre"], "s": "south"},
                        "target_areas_km2": {"w": 150.0, "s": 90.0}}}
    cells = ["w", "e", "n", "s"]
    built = build(tmp_path, base, [zone(c, {"op": "partition_cell", "partition": "p", "cell": c}) for c in cells],
                  partitions=partitions)
    assert len(calls) == 1  # built once, referenced four times
    geoms = [built[c].geometry for c in cells]
    assert km2(shapely.union_all(geoms)) == pytest.approx(km2(BOX_A), rel=1e-5)
    assert sum(km2(g) for g in geoms) == pytest.approx(km2(BOX_A), rel=1e-5)  # no overlap
    assert km2(built["w"].geometry) == pytest.approx(150.0, rel=0.01)
    assert km2(built["s"].geometry) == pytest.approx(90.0, rel=0.01)
    assert built["n"].geometry.covers(shapely.Point(116.10, 40.18))  # each seed lies in its own cell
    assert "calibrated km² (target→achieved): w 150→" in built["e"].method


def test_partition_seed_outside_the_area_is_refused(tmp_path, base):
    partitions = {"p": {"of": {"op": "admin", "adcode": "990002"}, "seeds": {"a": "west", "b": "east"}}}
    with pytest.raises(RecipeError, match="seed 'west'.*outside the partitioned area"):
        build(tmp_path, base, [zone("a", {"op": "partition_cell", "partition": "p", "cell": "a"})],
              partitions=partitions)


def test_partition_cell_that_does_not_exist_is_named(tmp_path, base):
    partitions = {"p": {"of": {"op": "admin", "adcode": "990001"}, "seeds": {"a": "west", "b": "east"}}}
    with pytest.raises(RecipeError, match="partition 'p' has no cell 'c'; cells: a, b"):
        build(tmp_path, base, [zone("c", {"op": "partition_cell", "partition": "p", "cell": "c"})],
              partitions=partitions)


# ---------------------------------------------------------------- recipe errors


def test_unknown_op_is_refused_when_the_recipe_is_loaded(tmp_path):
    path = write_recipe(tmp_path, [zone("a", {"op": "teleport"})])
    with pytest.raises(RecipeError, match="t.yaml: zone a: unknown op 'teleport'"):
        load_recipe(path)


def test_unknown_zone_reference_is_named(tmp_path, base):
    with pytest.raises(RecipeError, match="zone a: refers to unknown zone 'ghost'"):
        build(tmp_path, base, [zone("a", {"op": "union", "of": ["ghost"]})])


def test_reference_cycle_is_an_error_naming_the_cycle(tmp_path, base):
    zones = [zone("a", {"op": "ref", "id": "b"}), zone("b", {"op": "buffer", "of": "c", "distance_m": 1}),
             zone("c", {"op": "union", "of": ["a"]})]
    with pytest.raises(RecipeError, match="reference cycle between zones: a -> b -> c -> a"):
        build(tmp_path, base, zones)


def test_build_order_puts_dependencies_first(tmp_path):
    path = write_recipe(tmp_path, [zone("z", {"op": "ref", "id": "m"}), zone("m", {"op": "ref", "id": "a"}),
                                   zone("a", {"op": "admin", "adcode": "990001"})])
    order = build_order({e.id: e for e in load_recipe(path).zones})
    assert order.index("a") < order.index("m") < order.index("z")


def test_duplicate_zone_ids_across_files_are_refused(tmp_path, base):
    folder = tmp_path / "recipes"
    write_recipe(folder, [zone("a", {"op": "admin", "adcode": "990001"})], name="one.yaml")
    write_recipe(folder, [zone("a", {"op": "admin", "adcode": "990002"})], name="two.yaml")
    with pytest.raises(RecipeError, match="zone a: duplicate zone id"):
        BuildContext(load_recipes(folder), BaseLayers(base))


def test_misspelt_zone_key_is_refused(tmp_path):
    path = write_recipe(tmp_path, [zone("a", {"op": "admin", "adcode": "990001"}, stated_area=3.0)])
    with pytest.raises(RecipeError, match="zone a: unknown key.*stated_area"):
        load_recipe(path)


def test_unknown_rule_document_or_layer_is_refused(tmp_path):
    cases = [({"rules": ["nope"]}, "unknown rule 'nope'"), ({"document": "nope"}, "unknown document 'nope'"),
             ({"layer": "moon"}, "layer 'moon' is unknown")]
    for extra, message in cases:
        path = write_recipe(tmp_path, [zone("a", {"op": "admin", "adcode": "990001"}, **extra)])
        with pytest.raises(RecipeError, match=message):
            load_recipe(path)


def test_non_admin_zone_without_a_document_is_refused(tmp_path):
    entry = zone("a", {"op": "admin", "adcode": "990001"})
    del entry["document"]
    with pytest.raises(RecipeError, match="document is required"):
        load_recipe(write_recipe(tmp_path, [entry]))


def test_place_without_a_source_is_refused(tmp_path):
    places = {"p": {"name_zh": "某地", "lon": 116.1, "lat": 40.1, "crs": "wgs84"}}
    path = tmp_path / "t.yaml"
    write_recipe(tmp_path, [], name="t.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["places"] = places
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RecipeError, match="place p: source is required"):
        load_recipe(path)


def test_method_text_starts_with_the_method_note_and_names_the_recipe(tmp_path, base):
    built = build(tmp_path, base, [zone("a", {"op": "admin", "adcode": "990001"}, method_note="Why: because.")])
    assert built["a"].method == "Why: because. | recipe: admin(adcode=990001)"
